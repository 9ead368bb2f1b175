"""Helpers for driving the app with ``gradio_client`` (tests and benchmarks)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def server_paths(value: Any) -> Iterator[str]:
    """Every server-side file path in a ``gradio_client`` result (``download_files=False`` keeps FileData dicts)."""
    if isinstance(value, dict):
        if isinstance(value.get("path"), str) and value.get("meta", {}).get("_type") == "gradio.FileData":
            yield value["path"]
        for item in value.values():
            yield from server_paths(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from server_paths(item)
