"""Shared fixtures. Real photos come from registry packages (see headshot_lab.testing.photos)."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(scope="session")
def real_photos() -> dict[str, Path]:
    """``{name: path}`` of every real test photo; skips (saying why) if the registry is unreachable."""
    from headshot_lab.testing.photos import PhotoSourceUnavailable, real_photos

    try:
        return real_photos()
    except PhotoSourceUnavailable as exc:
        pytest.skip(f"real test photos unavailable: {exc}")


@pytest.fixture(scope="session")
def load_real(real_photos):
    """``load_real("obama") -> (H, W, 3) uint8`` RGB array (cached)."""
    from headshot_lab.io import load_rgb

    cache: dict[str, np.ndarray] = {}

    def _load(name: str) -> np.ndarray:
        if name not in cache:
            cache[name] = load_rgb(real_photos[name], min_side=0)
        return cache[name].copy()

    return _load


@pytest.fixture()
def data_dir(tmp_path, monkeypatch) -> Path:
    """An isolated ``HEADSHOT_LAB_DATA_DIR`` for one test."""
    path = tmp_path / "data"
    monkeypatch.setenv("HEADSHOT_LAB_DATA_DIR", str(path))
    return path


@pytest.fixture(scope="module")
def torch_one_thread():
    """Run torch on one thread for a module: tiny models are faster so, above all on a shared 2-core CPU."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_bases(tmp_path_factory) -> dict[str, Path]:
    """``{"sd15": folder, "sdxl": folder}``: tiny random diffusers base models, built once per run."""
    from headshot_lab.testing import tiny_pipeline

    root = tmp_path_factory.mktemp("tiny-bases")
    return {arch: tiny_pipeline(arch, root / arch) for arch in ("sd15", "sdxl")}


@pytest.fixture(scope="session")
def tiny_flux_bases(tmp_path_factory) -> dict[str, Path]:
    """``{"flux": folder, "flux-dev": folder}``: tiny random FLUX.1-class bases (schnell-like, dev-like), built once."""
    from headshot_lab.testing import tiny_pipeline

    root = tmp_path_factory.mktemp("tiny-flux-bases")
    return {arch: tiny_pipeline(arch, root / arch) for arch in ("flux", "flux-dev")}


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    """``(url, backend)`` of the Gradio app launched in-process on 127.0.0.1 (a free port), data in a temp dir.

    One server per test module: importing the app stack takes a while.
    """
    names = ("HEADSHOT_LAB_DATA_DIR", "GRADIO_TEMP_DIR", "HEADSHOT_LAB_BASE_MODEL")
    root = tmp_path_factory.mktemp("app-server")
    saved = {name: os.environ.get(name) for name in names}
    os.environ["HEADSHOT_LAB_DATA_DIR"] = str(root / "data")
    os.environ["GRADIO_TEMP_DIR"] = str(root / "data" / "gradio")
    os.environ.pop("HEADSHOT_LAB_BASE_MODEL", None)
    app = importlib.import_module("app")
    from headshot_lab.testing.client import free_loopback_port
    from headshot_lab.ui import AppBackend

    backend = AppBackend()
    demo = app.build_demo(backend)
    _, url, _ = app.launch(
        demo,
        prevent_thread_lock=True,
        server_name="127.0.0.1",
        server_port=free_loopback_port(),
        quiet=True,
        ssr_mode=False,
    )
    try:
        yield url, backend
    finally:
        demo.close()
        backend.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def tiny_sd15_pipe(tiny_bases):
    """The tiny random SD1.5 base loaded as a pipeline (no safety checker, no progress bar), once per module."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(
        str(tiny_bases["sd15"]), safety_checker=None, requires_safety_checker=False
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="session")
def team_built(tmp_path_factory, real_photos):
    """A team output folder made once from real photos (tests/team_fixture.py's contract); copy it, never edit it."""
    from team_fixture import make_team

    root = tmp_path_factory.mktemp("team_built") / "team"
    make_team(root, real_photos)
    return root


@pytest.fixture()
def team(team_built, tmp_path):
    """A fresh copy of :func:`team_built` for one test to change."""
    import shutil

    root = tmp_path / "team"
    shutil.copytree(team_built, root)
    return root
