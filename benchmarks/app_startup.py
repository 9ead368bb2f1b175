"""CPU benchmark: app cold start, memory and first-call latency (the Gradio app in a fresh process).

Each repeat starts a fresh Python process that imports ``app`` (which builds the page once at import),
builds it again with a fresh backend (``build_demo()`` alone) and launches it on a free 127.0.0.1
port; the parent times, from just before the process is started, when each step is done and when the
server first answers HTTP, then reads the process's RSS (psutil), calls ``check_photos`` once through
``gradio_client`` (the first call loads the face models) and once more (warm), and reads the RSS again.

Baseline, measured in the same run: the cold start of a bare ``python -c "import gradio"`` (ratios).
Medians over ``--repeats`` (≥ 3 by default).

    .venv/bin/python benchmarks/app_startup.py [--repeats 3] [--out benchmarks/results] [--profile]

Writes ``OUT/app_startup.json`` (keys in benchmarks/README.md); ``--profile`` also writes pyinstrument
profiles of the start (``app_startup.profile.*``) and of a first ``check_photos`` call
(``app_first_call.profile.*``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from headshot_lab.testing.client import free_loopback_port

from _common import ratio, write_result  # type: ignore[import-not-found]

ROOT = Path(__file__).resolve().parents[1]

#: The app process: prints ``{"mark": name, "t": epoch seconds}`` lines, then serves until stdin closes.
CHILD = r"""
import json, sys, time
def mark(name):
    print(json.dumps({"mark": name, "t": time.time()}), flush=True)
mark("python_started")
port, profile = int(sys.argv[1]), sys.argv[2]
if profile:
    from pyinstrument import Profiler
    profiler = Profiler(interval=0.001)
    profiler.start()
import app
mark("import_app")
from headshot_lab.ui import AppBackend
demo = app.build_demo(AppBackend())
mark("build_demo")
app.launch(demo, prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True, ssr_mode=False)
mark("launched")
if profile:
    profiler.stop()
    open(profile + ".txt", "w").write(profiler.output_text(unicode=True, color=False))
    open(profile + ".html", "w").write(profiler.output_html())
sys.stdin.read()
demo.close()
app.backend().stop()
"""

#: A first ``check_photos`` through the backend, in a fresh process, under the profiler.
FIRST_CALL = r"""
import sys
import app
from headshot_lab.ui import AppBackend, SessionState
from pyinstrument import Profiler
backend, profile = AppBackend(), sys.argv[1]
profiler = Profiler(interval=0.001)
profiler.start()
result = backend.check_photos(SessionState(), [sys.argv[2]], True)
profiler.stop()
open(profile + ".txt", "w").write(profiler.output_text(unicode=True, color=False))
open(profile + ".html", "w").write(profiler.output_html())
backend.stop()
"""


def child_env(data_dir: Path) -> dict[str, str]:
    """A private data dir, no analytics, no network lookups; ``app`` importable from the repository root."""
    env = dict(os.environ)
    env.update(
        HEADSHOT_LAB_DATA_DIR=str(data_dir),
        GRADIO_TEMP_DIR=str(data_dir / "gradio"),
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_OFFLINE="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")])),
    )
    env.pop("HEADSHOT_LAB_BASE_MODEL", None)
    return env


def import_gradio_s() -> float:
    """Seconds from starting a fresh interpreter to the end of ``import gradio`` (and exit)."""
    env = child_env(Path(tempfile.gettempdir()))
    started = time.time()
    subprocess.run([sys.executable, "-c", "import gradio"], env=env, check=True, capture_output=True, cwd=ROOT)
    return time.time() - started


def _exited(process: subprocess.Popen[str], log: Path) -> RuntimeError:
    return RuntimeError(f"the app exited early (code {process.returncode}): {log.read_text()[-2000:]}")


def _wait_http(url: str, process: subprocess.Popen[str], log: Path, timeout: float) -> float:
    """Poll ``url`` until it answers 200; return the epoch time it did."""
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise _exited(process, log)
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return time.time()
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"the app did not answer on {url} within {timeout:.0f} s")


def _read_marks(process: subprocess.Popen[str], log: Path, until: str, timeout: float) -> dict[str, float]:
    marks: dict[str, float] = {}
    deadline = time.time() + timeout
    assert process.stdout is not None
    while until not in marks and time.time() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                raise _exited(process, log)
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a library printing to stdout
        if isinstance(entry, dict) and "mark" in entry:
            marks[entry["mark"]] = float(entry["t"])
    if until not in marks:
        raise TimeoutError(f"the app did not report {until!r} within {timeout:.0f} s")
    return marks


def one_start(photo: Path, timeout: float, profile: str = "") -> dict[str, Any]:
    """Start the app once; time its steps, its RSS and two ``check_photos`` calls."""
    import psutil
    from gradio_client import Client, handle_file

    with tempfile.TemporaryDirectory() as tmp, (Path(tmp) / "app.log").open("w") as errors:
        port, log = free_loopback_port(), Path(errors.name)
        started = time.time()
        with subprocess.Popen(
            [sys.executable, "-c", CHILD, str(port), profile],
            env=child_env(Path(tmp) / "data"),
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,  # a file, not a pipe: a chatty library must not fill it and block the app
            text=True,
        ) as process:
            try:
                url = f"http://127.0.0.1:{port}/"
                answered = _wait_http(url, process, log, timeout)
                marks = _read_marks(process, log, "launched", timeout)
                memory = psutil.Process(process.pid)
                rss_started = memory.memory_info().rss
                client = Client(
                    url, verbose=False, download_files=str(Path(tmp) / "downloads"), analytics_enabled=False
                )
                calls = []
                for _ in range(2):
                    begin = time.perf_counter()
                    _, _, report = client.predict([handle_file(str(photo))], True, api_name="/check_photos")
                    calls.append(time.perf_counter() - begin)
                rss_called = memory.memory_info().rss
            finally:
                assert process.stdin is not None
                process.stdin.close()  # the app's signal to close its server and exit
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
    return {
        "python_started_s": marks["python_started"] - started,
        "import_app_s": marks["import_app"] - started,
        "build_demo_s": marks["build_demo"] - marks["import_app"],
        "launched_s": marks["launched"] - started,
        "http_ready_s": answered - started,
        "rss_started_mb": rss_started / 2**20,
        "first_check_s": calls[0],
        "warm_check_s": calls[1],
        "rss_after_check_mb": rss_called / 2**20,
        "check_faces": [photo.get("faces") for photo in report.get("photos", [])],
    }


def profile_first_call(photo: Path, out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-c", FIRST_CALL, str(out / "app_first_call.profile"), str(photo)],
            env=child_env(Path(tmp) / "data"),
            cwd=ROOT,
            check=True,
            capture_output=True,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="fresh app processes (median reported; ≥ 1)")
    parser.add_argument("--out", default="benchmarks/results", help="folder for app_startup.json")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the app to answer")
    parser.add_argument("--profile", action="store_true", help="also write pyinstrument profiles")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    from headshot_lab.testing.photos import real_photos

    photo = real_photos(["obama"])["obama"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.profile:  # extra, untimed runs: the profiler slows down what it measures
        one_start(photo, args.timeout, str((out / "app_startup.profile").resolve()))
        profile_first_call(photo, out.resolve())
    runs, baseline = [], []
    for _ in range(args.repeats):
        baseline.append(import_gradio_s())
        runs.append(one_start(photo, args.timeout))

    median = {key: round(statistics.median(run[key] for run in runs), 3) for key in runs[0] if key != "check_faces"}
    gradio_s = round(statistics.median(baseline), 3)
    write_result(
        "app_startup",
        {
            "repeats": args.repeats,
            "median": median,
            "runs": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in run.items()} for run in runs],
            "import_gradio_s": gradio_s,
            "import_gradio_runs_s": [round(v, 3) for v in baseline],
            "import_app_vs_gradio": ratio(median["import_app_s"], gradio_s),
            "http_ready_vs_gradio": ratio(median["http_ready_s"], gradio_s),
            "first_check_vs_warm": ratio(median["first_check_s"], median["warm_check_s"]),
            "model_loading_s": round(median["first_check_s"] - median["warm_check_s"], 3),
            "sanity": all(run["check_faces"] == [1] for run in runs),
        },
        out,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
