"""Benchmark: the audit on local 1 process vs Ray (local mode) with 1 and 2 analyser actors.

The same small real-photo config in every mode (the 13 real faces of the offline set, 10 people, no
synthetic variants; ``null``, ``lighten:3`` and ``identity_blend:0.5``; batches of 2; no power, no plots):

* ``local-1``: ``run_eval(config, out)`` in one process (the embedded default);
* ``ray-1`` / ``ray-2``: a local Ray with that many CPUs (``headshot_lab.engine.start_ray``, timed on its own
  as ``ray_start_s``), then ``run_eval(config, out, engine=EngineSpec(kind="ray", workers=N))``.

Each mode runs in a fresh child process, so imports, model loading and peak memory are each mode's own.
``peak_rss_mb`` is the largest sum of RSS over the child's whole process tree (the driver, Ray's GCS,
raylet and every worker), sampled every 0.2 s with psutil; shared pages (Ray's object store in /dev/shm,
libraries) are counted once per process that maps them, so it over-counts, the same way in every mode.
``images_per_s`` = sources × generators / ``analyse_s`` (the fan-out alone: the part the engine runs; the
offline set's face finding, the donors and the aggregation run on the driver either way and are in ``run_s``,
which is ``run_eval`` after Ray's start-up; ``images_per_s_whole_run`` uses it). Ratios are
against ``local-1`` measured in the same invocation. ``marginal_images_per_s`` is the rate once the workers
are up: each mode runs again on the first ``--small`` faces and ``(images − images_small) / (analyse_s −
analyse_s_small)`` removes the fixed costs (each Ray actor imports the stack and loads its models). The results.json of every mode are compared
(identical apart from the timing/host fields): ``same_results``.

    .venv/bin/python benchmarks/ray_eval.py [--modes local-1,ray-1,ray-2] [--small 5] [--out benchmarks/results]

Writes ``OUT/ray_eval.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ratio, write_result  # type: ignore[import-not-found]

REPO = Path(__file__).resolve().parents[1]
FACES = [
    "obama",
    "obama2",
    "obama3",
    "obama_partial",
    "biden",
    "tom_hanks",
    "astronaut",
    *(f"group_{i}" for i in range(6)),
]
GENERATORS = ["null", "lighten:3", "identity_blend:0.5"]
MODES = ("local-1", "ray-1", "ray-2")


def _config(faces: int = len(FACES)) -> Any:
    from eval.runner import EvalConfig

    return EvalConfig(
        name="ray-bench",
        dataset="offline",
        dataset_options={"faces": FACES[:faces], "variants_per_face": 0},
        generators=list(GENERATORS),
        n_resamples=200,
        plots=False,
        batch_size=2,
        donor_pool=8,
        power={},
    )


def _time_analysis() -> list[float]:
    """Wrap the runner's two fan-outs (local ``analyse``, ``analyse_on_ray``); their wall seconds land in the list."""
    import eval.runner as runner

    seconds: list[float] = []
    for name in ("analyse", "analyse_on_ray"):
        original = getattr(runner, name)

        def timed_fanout(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            begin = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                seconds.append(time.perf_counter() - begin)

        setattr(runner, name, timed_fanout)
    return seconds


def child(mode: str, out: Path, faces: int = len(FACES)) -> dict[str, Any]:
    """Run one mode in this process; the timings as a dict (printed as the last line of stdout)."""
    started = time.perf_counter()
    from eval.runner import run_eval
    from headshot_lab.engine import EngineSpec, start_ray

    imported = time.perf_counter() - started
    engine, ray_start = None, 0.0
    if mode.startswith("ray-"):
        engine = EngineSpec(kind="ray", workers=int(mode.split("-")[1]))
        begin = time.perf_counter()
        start_ray(engine)
        ray_start = time.perf_counter() - begin
    analysis = _time_analysis()
    begin = time.perf_counter()
    results = run_eval(_config(faces), out, progress=False, engine=engine)
    run_s = time.perf_counter() - begin
    if engine is not None:
        import ray

        ray.shutdown()
    return {
        "import_s": round(imported, 3),
        "ray_start_s": round(ray_start, 3),
        "run_s": round(run_s, 3),
        "analyse_s": round(sum(analysis), 3),
        "n_sources": results["n_sources"],
        "images": results["n_sources"] * len(GENERATORS),
    }


def _tree_rss(process: Any) -> int:
    import psutil

    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def measure(mode: str, out: Path, faces: int = len(FACES)) -> dict[str, Any]:
    """Run ``mode`` in a child process, sampling its process tree's RSS; its timings plus ``peak_rss_mb``."""
    import psutil

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GLOG_minloglevel": "2", "PYTHONPATH": str(REPO)}
    command = [sys.executable, __file__, "--child", mode, "--child-out", str(out), "--faces", str(faces)]
    begin = time.perf_counter()
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    handle = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, _tree_rss(handle))
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - begin
    if proc.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{stderr[-3000:]}")
    timings = json.loads(stdout.strip().splitlines()[-1])
    timings["wall_s"] = round(wall, 3)
    timings["peak_rss_mb"] = round(peak / 2**20, 1)
    timings["images_per_s"] = round(timings["images"] / timings["analyse_s"], 3)
    timings["images_per_s_whole_run"] = round(timings["images"] / timings["run_s"], 3)
    return timings


def comparable(folder: Path) -> dict[str, Any]:
    from eval.runner import RUN_ENVIRONMENT_KEYS, RUN_TIMING_FIELDS

    results = json.loads((folder / "results.json").read_text())
    for key in RUN_ENVIRONMENT_KEYS:
        results.pop(key, None)
    for run in results["runs"]:
        for key in RUN_TIMING_FIELDS:
            run["extra"].pop(key, None)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument(
        "--small", type=int, default=5, help="faces of the second, smaller run per mode (0: skip the marginal rate)"
    )
    parser.add_argument("--faces", type=int, default=len(FACES), help=argparse.SUPPRESS)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Path(args.child_out), args.faces)))
        return
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        measured = {mode: measure(mode, Path(tmp) / mode) for mode in modes}
        reference = comparable(Path(tmp) / modes[0])
        same = {mode: comparable(Path(tmp) / mode) == reference for mode in modes}
        if args.small:
            for mode in modes:
                small = measure(mode, Path(tmp) / f"{mode}-small", args.small)
                extra_images = measured[mode]["images"] - small["images"]
                extra_seconds = measured[mode]["analyse_s"] - small["analyse_s"]
                measured[mode]["small_run"] = small
                measured[mode]["marginal_images_per_s"] = (
                    round(extra_images / extra_seconds, 3) if extra_seconds > 0 else None
                )
    base = measured.get("local-1")
    ratios = {}
    if base:
        for mode, m in measured.items():
            ratios[mode] = {
                "images_per_s_vs_local_1": ratio(m["images_per_s"], base["images_per_s"]),
                "run_s_vs_local_1": ratio(m["run_s"], base["run_s"]),
                "wall_vs_local_1": ratio(m["wall_s"], base["wall_s"]),
                "peak_rss_vs_local_1": ratio(m["peak_rss_mb"], base["peak_rss_mb"]),
            }
            if m.get("marginal_images_per_s") and base.get("marginal_images_per_s"):
                ratios[mode]["marginal_images_per_s_vs_local_1"] = ratio(
                    m["marginal_images_per_s"], base["marginal_images_per_s"]
                )
    write_result(
        "ray_eval",
        {
            "config": {"faces": len(FACES), "generators": GENERATORS, "batch_size": 2},
            "modes": measured,
            "ratios": ratios,
            "same_results": same,
            "notes": "wall_s: the child process end to end (imports, Ray start-up, dataset build, audit, "
            "aggregation); run_s: run_eval only; analyse_s: the fan-out inside it; ray_start_s: ray.init alone; peak_rss_mb: summed RSS over "
            "the process tree (over-counts shared pages).",
        },
        args.out,
    )


if __name__ == "__main__":
    main()
