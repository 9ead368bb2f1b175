"""Shared helpers for the benchmarks: machine info, JSON output, timing and profiling."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def machine_info() -> dict[str, Any]:
    """CPU count, load, Python and key library versions: every result says where it was measured."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "processor": platform.processor() or platform.machine(),
    }
    try:
        with open("/proc/meminfo") as handle:
            info["mem_total_gb"] = round(int(handle.readline().split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return info


def write_result(name: str, payload: dict[str, Any], out_dir: str | Path = "benchmarks/results") -> Path:
    """Write ``payload`` (plus machine info and a timestamp) to ``out_dir/name.json`` and print it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine_info(), **payload}
    path = out / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2))
    print(json.dumps(payload, indent=2))
    return path


# -- timing and profiling (shared by the CPU benchmarks) ----------------------------------------------


def cpu_seconds() -> float:
    """User + system CPU seconds of this process (all threads) and of its finished, waited-for children."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


@dataclass(frozen=True)
class Timing:
    """Wall-clock and CPU seconds of one run.

    CPU time is what to compare on a shared machine: other people's jobs stretch the wall clock, not
    the CPU seconds a run needs (``cpu_s > wall_s`` means it used more than one core).
    """

    wall_s: float
    cpu_s: float

    def to_dict(self) -> dict[str, float]:
        return {"wall_s": round(self.wall_s, 3), "cpu_s": round(self.cpu_s, 3)}


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, Timing]:
    """``(fn(*args, **kwargs), Timing)``."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = fn(*args, **kwargs)
    return result, Timing(time.perf_counter() - wall, cpu_seconds() - cpu)


def median_timing(timings: Sequence[Timing]) -> Timing:
    """Per-field median of repeated runs."""
    return Timing(
        float(statistics.median(t.wall_s for t in timings)), float(statistics.median(t.cpu_s for t in timings))
    )


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator`` to 2 decimals (``None`` when the denominator is not positive)."""
    return round(numerator / denominator, 2) if denominator > 0 else None


@contextmanager
def profiled(name: str, out_dir: str | Path, enabled: bool = True, interval: float = 0.002) -> Iterator[None]:
    """Profile the block with pyinstrument; write ``out_dir/name.profile.html`` and ``.txt`` (when ``enabled``)."""
    if not enabled:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=interval)
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{name}.profile.txt").write_text(profiler.output_text(unicode=True, color=False))
        (out / f"{name}.profile.html").write_text(profiler.output_html())
        print(f"profile: {out / f'{name}.profile.html'}", file=sys.stderr)
