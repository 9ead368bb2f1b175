"""Shared helpers for the benchmarks: machine info and JSON output."""

from __future__ import annotations

import json
import os
import platform
import time
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
