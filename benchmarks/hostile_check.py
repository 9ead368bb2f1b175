"""Benchmark: CPU seconds and peak RSS of ``headshot-lab check`` on every file of the hostile corpus.

Goal (issue 19): every file ≤ 5 s CPU and ≤ 1 GB peak RSS. The parent process imports the CLI and
forks one child per file; the child runs a warm-up check of a plain photo (models loaded, as in the
app's long-lived worker), then ``headshot_lab.cli.main(["check", FILE])`` (output discarded), and
reports the CPU seconds of that check alone (``getrusage`` before and after) and its peak RSS
(``VmHWM``: warm-up included, the RSS a check worker really has). Forking a parent that has run a
check deadlocks now and then (a worker thread's lock held across the fork): the parent only imports. A child past ``--timeout`` seconds of wall clock is killed and recorded as timed out.
``--per-kind N`` runs at most N files of each other kind (the decode-time kinds always in full).
``--cold N`` also runs the N costliest files through a fresh ``headshot-lab check`` process under
``/usr/bin/time -v`` (imports included).

To measure another version of the package (e.g. ``before`` a change), generate the corpus once with
this one and point ``PYTHONPATH`` at the other::

    .venv/bin/python -m headshot_lab.testing.hostile /tmp/hostile
    .venv/bin/python benchmarks/hostile_check.py --corpus /tmp/hostile --label after
    git archive main | tar -x -C /tmp/before
    PYTHONPATH=/tmp/before .venv/bin/python benchmarks/hostile_check.py --corpus /tmp/hostile --label before

Writes ``OUT/hostile_check_LABEL.json``: per file ``cpu_s``, ``wall_s``, ``max_rss_mb``, ``outcome`` (exit
code or ``timeout``), and a summary by kind, the worst files and whether the goal is met.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _common import write_result  # type: ignore[import-not-found]

GOAL_CPU_S = 5.0
GOAL_RSS_MB = 1024.0


def _peak_rss_mb() -> float:
    """VmHWM of this process (MB): the peak RSS since it started (since the fork, for a child)."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(path: Path, write_fd: int, warm: Path | None) -> None:
    """In the forked child: one warm-up check, then the file; report its own CPU and the peak RSS, exit."""
    code: object = "crash"
    cpu = 0.0
    try:
        from headshot_lab.cli import main

        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null), contextlib.redirect_stderr(null):
            if warm is not None:  # models loaded in this process, as in the app's long-lived worker
                main(["check", str(warm)])
            before = resource.getrusage(resource.RUSAGE_SELF)
            code = main(["check", str(path)])
            after = resource.getrusage(resource.RUSAGE_SELF)
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    except BaseException as exc:
        code = f"exception {type(exc).__name__}"
    payload = {"cpu_s": cpu, "max_rss_mb": _peak_rss_mb(), "outcome": code}
    os.write(write_fd, json.dumps(payload).encode())
    os._exit(0)


def run_one(path: Path, timeout: float, warm: Path | None = None) -> dict[str, Any]:
    """Check ``path`` in a forked child; ``{"cpu_s", "wall_s", "max_rss_mb", "outcome"}``.

    The parent has only imported modules (no check run, so no worker threads that could hold a lock
    across the fork); the child runs the warm-up check itself and times only the file.
    """
    read_fd, write_fd = os.pipe()
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _child(path, write_fd, warm)
    os.close(write_fd)
    ready, _, _ = select.select([read_fd], [], [], timeout)
    wall = time.perf_counter() - start
    if not ready:
        os.kill(pid, signal.SIGKILL)
        _, status, usage = os.wait4(pid, 0)
        os.close(read_fd)
        return {
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
            "wall_s": round(wall, 3),
            "max_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "outcome": "timeout",
        }
    payload = b""
    while chunk := os.read(read_fd, 65536):
        payload += chunk
    os.close(read_fd)
    _, status, usage = os.wait4(pid, 0)
    result = json.loads(payload) if payload else {"outcome": f"died {status}"}
    return {
        "cpu_s": round(float(result.get("cpu_s", usage.ru_utime + usage.ru_stime)), 3),
        "wall_s": round(wall, 3),
        "max_rss_mb": round(float(result.get("max_rss_mb", usage.ru_maxrss / 1024)), 1),
        "outcome": result.get("outcome"),
    }


def cold_run(path: Path, timeout: float) -> dict[str, Any]:
    """A fresh ``headshot-lab check FILE`` under ``/usr/bin/time -v``: CPU and peak RSS with imports."""
    script = "import sys; from headshot_lab.cli import main; sys.exit(main(sys.argv[1:]))"
    command = ["/usr/bin/time", "-v", sys.executable, "-c", script, "check", str(path)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=env, cwd=tempfile.gettempdir()
        )
    except subprocess.TimeoutExpired:
        return {"file": path.name, "outcome": "timeout"}
    fields = {}
    for line in done.stderr.splitlines():
        key, _, value = line.strip().partition(": ")
        fields[key] = value
    return {
        "file": path.name,
        "cpu_s": round(float(fields.get("User time (seconds)", 0)) + float(fields.get("System time (seconds)", 0)), 2),
        "max_rss_mb": round(int(fields.get("Maximum resident set size (kbytes)", 0)) / 1024, 1),
        "outcome": done.returncode,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, help="a corpus folder with cases.jsonl (default: generate one)")
    parser.add_argument("--label", default="after")
    parser.add_argument("--timeout", type=float, default=120.0, help="wall seconds per file before the child is killed")
    parser.add_argument("--kinds", default="", help="comma-separated kinds to run (default: all)")
    parser.add_argument(
        "--per-kind", type=int, default=0, help="at most N files of each kind not named in --full-kinds (0: all)"
    )
    parser.add_argument(
        "--full-kinds",
        default="many_scan_jpeg,many_page_tiff,exif_amplifier,exif_wrong_type,png_metadata_bomb,jpeg_metadata_bomb,"
        "icc_tagged,ai_labelled,decompression_bomb,exif_orientation,exif_broken,animated_gif,multipage_tiff",
        help="kinds always run in full with --per-kind",
    )
    parser.add_argument("--cold", type=int, default=0, help="also run the N costliest files as fresh CLI processes")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import headshot_lab
    from headshot_lab.testing.hostile import make_hostile_corpus, read_cases, write_cases

    with contextlib.ExitStack() as stack:
        if args.corpus is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hostile-")))
            write_cases(make_hostile_corpus(root), root / "cases.jsonl")
        else:
            root = args.corpus
        cases = read_cases(root / "cases.jsonl")
        kinds = {kind for kind in args.kinds.split(",") if kind}
        cases = [case for case in cases if not kinds or case.kind in kinds]
        if args.per_kind:
            full, seen = set(args.full_kinds.split(",")), Counter()
            kept = []
            for case in cases:
                seen[case.kind] += 1
                if case.kind in full or seen[case.kind] <= args.per_kind:
                    kept.append(case)
            cases = kept

        warm = (
            next(case.path for case in cases if case.kind == "real_photo")
            if any(case.kind == "real_photo" for case in cases)
            else None
        )
        import headshot_lab.capture
        import headshot_lab.cli.check

        parent_rss = _peak_rss_mb()

        rows = []
        start = time.perf_counter()
        for case in cases:
            row = {"file": case.path.name, "kind": case.kind, "bytes": case.path.stat().st_size}
            row.update(run_one(case.path, args.timeout, warm))
            rows.append(row)
        total_wall = time.perf_counter() - start
        worst_cpu = sorted(rows, key=lambda r: -r["cpu_s"])[:15]
        worst_rss = sorted(rows, key=lambda r: -r["max_rss_mb"])[:5]
        cold = [cold_run(root / row["file"], args.timeout * 2) for row in worst_cpu[: args.cold]]

    by_kind: dict[str, dict[str, float]] = {}
    for row in rows:
        entry = by_kind.setdefault(row["kind"], {"files": 0, "max_cpu_s": 0.0, "max_rss_mb": 0.0, "timeouts": 0})
        entry["files"] += 1
        entry["max_cpu_s"] = max(entry["max_cpu_s"], row["cpu_s"])
        entry["max_rss_mb"] = max(entry["max_rss_mb"], row["max_rss_mb"])
        entry["timeouts"] += row["outcome"] == "timeout"
    over = [r for r in rows if r["outcome"] == "timeout" or r["cpu_s"] > GOAL_CPU_S or r["max_rss_mb"] > GOAL_RSS_MB]
    payload = {
        "label": args.label,
        "package": str(Path(headshot_lab.__file__).parent),
        "files": len(rows),
        "timeout_s": args.timeout,
        "per_kind": args.per_kind,
        "parent_rss_mb": round(parent_rss, 1),
        "total_wall_s": round(total_wall, 1),
        "max_cpu_s": max((r["cpu_s"] for r in rows), default=0.0),
        "max_rss_mb": max((r["max_rss_mb"] for r in rows), default=0.0),
        "goal": {"cpu_s": GOAL_CPU_S, "rss_mb": GOAL_RSS_MB},
        "goal_met": not over,
        "over_goal": over,
        "worst_cpu": worst_cpu,
        "worst_rss": worst_rss,
        "cold_cli": cold,
        "by_kind": by_kind,
        "rows": rows,
    }
    write_result(f"hostile_check_{args.label}", payload, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
