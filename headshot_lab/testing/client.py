"""Helpers for driving the app on this machine with ``gradio_client`` (tests and benchmarks)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any


def free_loopback_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now (the app is only ever launched on loopback here)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
