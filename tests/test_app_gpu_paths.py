"""The app's generative paths on a dedicated GPU (or the CPU), tiny models: images the safety filter blocked are
not published and the visitor is told; the cached generator leaves the GPU before training; HEADSHOT_LAB_DEVICE
(``cuda:1``) reaches every path; half-precision bases load their ``fp16`` weight files.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from headshot_lab import workflow
from headshot_lab.errors import HeadshotLabError
from headshot_lab.generate import HeadshotGenerator
from headshot_lab.privacy import SessionStore
from headshot_lab.testing.tiny import tiny_pipeline
from headshot_lab.ui import AppBackend, SessionState
from headshot_lab.ui.formatting import split_for_visitor


def make_backend(root: Path) -> AppBackend:
    gradio = root / "gradio"
    gradio.mkdir(parents=True, exist_ok=True)
    store = SessionStore(root / "data", ttl_hours=24)
    return AppBackend(
        store, publish_root=gradio / "published", upload_root=gradio, upload_registry=set(), zero_gpu=False
    )


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tiny_pipeline("sd15", tmp_path_factory.mktemp("tiny") / "sd15")


@pytest.fixture()
def page(tmp_path, base, real_photos, monkeypatch, torch_one_thread):
    """``(backend, state)``: a page with two checked photos of one person and a tiny base model."""
    monkeypatch.setenv("HEADSHOT_LAB_BASE_MODEL", str(base))
    monkeypatch.setenv("HEADSHOT_LAB_DEVICE", "cpu")
    backend = make_backend(tmp_path)
    paths = []
    for index, name in enumerate(("obama", "obama2")):
        folder = backend.upload_root / f"upload-{index}"
        folder.mkdir()
        image = Image.open(real_photos[name]).convert("RGB")
        image.thumbnail((600, 600))
        image.save(folder / f"{name}.jpg", quality=92)
        backend.upload_registry.add(str(folder / f"{name}.jpg"))
        paths.append(str(folder / f"{name}.jpg"))
    checked = backend.check_photos(SessionState(), paths, True)
    assert checked.ok, checked.status
    yield backend, checked.state
    backend.stop()


def published(backend: AppBackend) -> list[Path]:
    return [p for p in backend.publish_root.rglob("*.png")] if backend.publish_root.exists() else []


# -- NSFW-flagged images -----------------------------------------------------------------------------------
def flag_seeds(monkeypatch, flagged: set[int]) -> None:
    """The pipeline's safety checker 'flags' the images of these seeds (it returns them black)."""
    render = HeadshotGenerator.render

    def checked_render(self, prompt, negative, seeds, **kwargs):
        images, _ = render(self, prompt, negative, seeds, **kwargs)
        flags = [int(seed) in flagged for seed in seeds]
        images = [Image.new("RGB", image.size) if flag else image for image, flag in zip(images, flags, strict=True)]
        return images, flags

    monkeypatch.setattr(HeadshotGenerator, "render", checked_render)


def test_blocked_images_are_not_published_and_the_visitor_is_told(page, monkeypatch):
    backend, state = page
    trained = backend.train_identity(state, "lora", 2, 4, False, 0)
    assert trained.ok, trained.status
    flag_seeds(monkeypatch, {11})
    result = backend.generate(trained.state, "corporate", 3, 10, "none", "", "", 2)  # seeds 10, 11, 12
    assert result.ok, result.status
    visitor, operator = split_for_visitor(result.status)
    captions = [caption for _, caption in result.gallery]
    assert len(captions) == 2 and [c.split("seed ")[1] for c in captions] == ["10", "12"]
    assert "1 of the 3 pictures was blocked by the model's safety filter" in visitor
    assert "not shown" in visitor and "nsfw" not in visitor.lower()
    assert "nsfw_flagged" in operator
    names = [item.name for item in result.state.outputs if item.kind == "generated"]
    assert len(names) == 2 and not any(name.endswith("headshot-0001.png") for name in names)
    assert len(published(backend)) == 2  # the black one was never copied where the page can serve it
    assert result.report["blocked"] == 1


def test_when_every_image_is_blocked_nothing_is_shown_and_it_says_why(page, monkeypatch):
    backend, state = page
    trained = backend.train_identity(state, "lora", 2, 4, False, 0)
    flag_seeds(monkeypatch, {5, 6})
    result = backend.generate(trained.state, "corporate", 2, 5, "none", "", "", 2)
    assert not result.ok and result.error["code"] == "nsfw_blocked"
    assert "safety filter blocked all of them" in split_for_visitor(result.status, result.error)[0]
    assert result.gallery == [] and not [i for i in result.state.outputs if i.kind == "generated"]
    assert published(backend) == []


# -- the resident generator leaves the GPU before training ------------------------------------------------
def test_the_cached_generator_is_freed_before_training(page, monkeypatch):
    backend, state = page
    trained = backend.train_identity(copy.deepcopy(state), "lora", 2, 4, False, 0)
    first = backend.generate(trained.state, "corporate", 1, 3, "none", "", "", 2)
    assert first.ok and len(backend.generators) == 1
    resident = backend.generators.cached(None, None)
    assert resident is not None and resident.pipe is not None
    seen = []
    train = workflow.train_identity

    def watching(*args, **kwargs):
        seen.append((len(backend.generators), resident.pipe))
        return train(*args, **kwargs)

    monkeypatch.setattr(workflow, "train_identity", watching)
    again = backend.train_identity(first.state, "lora", 3, 4, False, 1)
    assert again.ok, again.status
    assert seen and set(seen) == {(0, None)}  # nothing cached, and the old pipeline dropped, when training began
    assert "freed 1 loaded generator(s)" in split_for_visitor(again.status)[1]
    after = backend.generate(again.state, "corporate", 1, 3, "none", "", "", 2)  # loads again when asked for
    assert after.ok and len(backend.generators) == 1


def test_the_cache_keeps_at_most_its_capacity_and_frees_what_leaves(base, monkeypatch):
    monkeypatch.setenv("HEADSHOT_LAB_BASE_MODEL", str(base))
    monkeypatch.setenv("HEADSHOT_LAB_DEVICE", "cpu")
    cache = workflow.GeneratorCache(capacity=1)
    one = cache.get(None, None, progress=False)
    one.load()
    from headshot_lab.generate import SpeedOptions

    two = cache.get(None, None, speed=SpeedOptions(attention="eager"), progress=False)
    assert len(cache) == 1 and one.pipe is None and cache.cached(None, None) is None
    assert cache.get(None, None, speed=SpeedOptions(attention="eager")) is two
    assert cache.release() == 1 and len(cache) == 0


# -- HEADSHOT_LAB_DEVICE ----------------------------------------------------------------------------------
def test_device_setting_reaches_generation_and_training(page, monkeypatch):
    backend, state = page
    monkeypatch.setenv("HEADSHOT_LAB_DEVICE", "cuda:1")  # no GPU on this machine: said plainly, never ignored
    trained = backend.train_identity(copy.deepcopy(state), "lora", 2, 4, False, 0)
    assert not trained.ok and trained.error["code"] == "device_unavailable"
    assert "cuda:1" in trained.error["message"]
    key_gpu = workflow.GeneratorCache.key(None, None)
    monkeypatch.setenv("HEADSHOT_LAB_DEVICE", "cpu")
    assert workflow.GeneratorCache.key(None, None) != key_gpu  # a changed setting is a new generator


def test_training_runs_on_the_gpu_index_it_was_given(monkeypatch, base, tmp_path):
    """accelerate trains on the *current* CUDA device: training makes cuda:N current first."""
    import torch

    from headshot_lab import train

    class Stop(Exception):
        pass

    chosen = []

    def set_device(device):
        chosen.append(torch.device(device))
        raise Stop  # the rest needs a real GPU

    monkeypatch.setenv("HEADSHOT_LAB_DEVICE", "cuda:1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", set_device)
    photos = [np.full((64, 64, 3), 120, np.uint8)] * 2
    with pytest.raises(Stop):
        train.train_identity_lora(photos, str(base), tmp_path / "out", train.TrainConfig(steps=1, mixed_precision="no"))
    assert chosen == [torch.device("cuda", 1)]
    train.bind_cuda_device(torch.device("cpu"))  # other devices: nothing to do
    assert len(chosen) == 1


def test_arcface_runs_on_the_gpu_index_it_was_given(monkeypatch):
    import onnxruntime

    from headshot_lab.faces import insightface_backend

    monkeypatch.setattr(
        onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    assert insightface_backend._providers("cuda:1") == [
        ("CUDAExecutionProvider", {"device_id": 1}),
        "CPUExecutionProvider",
    ]
    assert insightface_backend._providers("cuda") == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert insightface_backend._providers("cpu") == ["CPUExecutionProvider"]


# -- fp16 weight files ------------------------------------------------------------------------------------
def test_half_precision_loads_the_fp16_files_and_falls_back_without_them(base, tmp_path):
    import torch
    from diffusers import StableDiffusionPipeline

    from headshot_lab.models import load_pipeline, weights_variant

    half = tmp_path / "with-fp16"
    StableDiffusionPipeline.from_pretrained(str(base)).save_pretrained(half, variant="fp16")
    assert list(half.glob("unet/*.fp16.safetensors")) and not list(half.glob("unet/*model.safetensors"))
    pipe, _ = load_pipeline(str(half), dtype=torch.float16)  # only the fp16 files exist: they are what loads
    assert pipe.unet.dtype == torch.float16
    plain, _ = load_pipeline(str(base), dtype=torch.float16)  # no fp16 files: the full ones, cast
    assert plain.unet.dtype == torch.float16
    full, _ = load_pipeline(str(base))  # fp32: never the variant
    assert full.unet.dtype == torch.float32
    assert weights_variant(torch.bfloat16) == "fp16" and weights_variant(torch.float32) is None
    assert weights_variant(torch.float16, None) is None
    shutil.rmtree(half)


def test_a_pose_guide_is_refused_before_any_model_loads(page):
    backend, state = page
    result = backend.generate(state, "corporate", 1, 0, "pose", "", "", 2)
    assert result.error["code"] in {"no_identity", "controlnet_missing"}
    assert len(backend.generators) == 0
    with pytest.raises(HeadshotLabError):
        workflow.check_generate_request(workflow.GenerateRequest(n=9), max_images=8)
