"""Small helpers every layer that writes text for people uses: numbers, Markdown cells, progress callbacks."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

#: ``progress(fraction in [0, 1], text)``: what long steps report (the app passes ``gr.Progress``).
Progress = Callable[[float, str], None]


def number(value: Any, pattern: str) -> str:
    """``pattern.format(value)``, or an en dash for a missing value."""
    return "–" if value is None else pattern.format(float(value))


def table_cell(text: object) -> str:
    """``text`` safe inside a Markdown table cell (``|`` escaped, line breaks as ``<br>``)."""
    return str(text).replace("|", "\\|").replace("\n", "<br>")


def report_progress(progress: Progress | None, fraction: float, text: str) -> None:
    """Call ``progress`` if given; a progress bar must never break the work."""
    if progress is not None:
        with contextlib.suppress(Exception):
            progress(fraction, text)
