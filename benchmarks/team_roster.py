"""Benchmark: a team roster in retouch mode, local processes vs Ray local (throughput and peak memory).

The roster is built from the real test photos (:mod:`headshot_lab.testing.team_roster`: one distinct real face per
person, a head-and-shoulders portrait at 560 px on the shorter side), written once and then run through
``headshot_lab.team.run_team`` with the bundled example style guide, into a fresh output folder per engine:

* ``local-1``: the embedded default, one process (the baseline; ratios are against it, measured in the same run);
* ``local-2``: two spawned worker processes;
* ``ray-2``: Ray started locally with 2 CPUs (one task per person), its start-up included in the wall time.

For each: wall and CPU seconds, people/s (people processed / wall), and peak RSS of the whole process tree
(this process and every descendant: pool workers, Ray's raylet, GCS and workers), sampled every 0.2 s with psutil.
Every run must give the same per-person states (checked; ``same_states`` in the JSON).

    .venv/bin/python benchmarks/team_roster.py [--people 50] [--engines local-1,local-2,ray-2] [--out benchmarks/results]

Writes ``OUT/team_roster.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _common import cpu_seconds, ratio, write_result  # type: ignore[import-not-found]  # noqa: E402

ENGINES = {"local-1": ("local", 1), "local-2": ("local", 2), "ray-2": ("ray", 2)}


class PeakRSS:
    """Peak resident memory (bytes) of this process and all its descendants, sampled in a thread."""

    def __init__(self, interval: float = 0.2) -> None:
        import psutil

        self._root = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.peak = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        import psutil

        total = 0
        for proc in [self._root, *self._root.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self._interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())


def build_roster(folder: Path, people: int) -> Path:
    from headshot_lab.testing.team_roster import ordered_faces, write_roster

    faces = ordered_faces()
    chosen = [faces[i % len(faces)] for i in range(people)]  # past 58 people, faces repeat (as new hires)
    return write_roster(folder, chosen)


def run_engine(name: str, roster: Path, out: Path) -> dict[str, Any]:
    from headshot_lab.engine import EngineSpec
    from headshot_lab.team.guide import SAMPLE_GUIDE
    from headshot_lab.team.run import run_team

    kind, workers = ENGINES[name]
    wall, cpu = time.perf_counter(), cpu_seconds()
    with PeakRSS() as memory:
        result = run_team(roster, SAMPLE_GUIDE, out, engine=EngineSpec(kind=kind, workers=workers))  # type: ignore[arg-type]
    wall_s, cpu_s = time.perf_counter() - wall, cpu_seconds() - cpu
    people = len(result.processed)
    return {
        "engine": kind,
        "workers": workers,
        "people": people,
        "done": len(result.by_state("done")),
        "skipped": len(result.by_state("skipped")),
        "failed": len(result.by_state("failed")),
        "wall_s": round(wall_s, 2),
        "cpu_s": round(cpu_s, 2),  # this process and its waited-for children (Ray workers are not counted)
        "people_per_s": round(people / wall_s, 4) if wall_s > 0 else None,
        "peak_rss_mb": round(memory.peak / 2**20, 1),
        "states": {p.person_id: p.state for p in result.people},
        "not_done": {
            p.person_id: f"{p.state}: {' '.join(p.reason.split())[:160]}" for p in result.people if p.state != "done"
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=50, help="people in the roster (default 50)")
    parser.add_argument("--engines", default="local-1,local-2,ray-2", help=f"comma-separated, of {', '.join(ENGINES)}")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder for team_roster.json")
    args = parser.parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown or not engines:
        parser.error(f"unknown engine {unknown}; use {', '.join(ENGINES)}")
    with tempfile.TemporaryDirectory(prefix="team-bench-") as tmp:
        roster = build_roster(Path(tmp) / "roster", args.people)
        runs = {name: run_engine(name, roster, Path(tmp) / f"out-{name}") for name in engines}
    base = runs[engines[0]]
    for run in runs.values():
        run["speedup_vs_baseline"] = ratio(base["wall_s"], run["wall_s"])
        run["rss_vs_baseline"] = ratio(run["peak_rss_mb"], base["peak_rss_mb"])
    states = [run.pop("states") for run in runs.values()]
    not_done = [run.pop("not_done") for run in runs.values()]
    write_result(
        "team_roster",
        {
            "people": args.people,
            "mode": "retouch",
            "baseline": engines[0],
            "same_states": all(s == states[0] for s in states),
            "not_done": not_done[0],  # the baseline's skipped and failed people, with why
            "runs": runs,
        },
        args.out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
