"""The app on ZeroGPU, emulated (headshot_lab.testing.zerogpu): its real code paths on tiny models, with a fake
``spaces.GPU`` that refuses requests above the maximum before running and records every weight load.

Rules checked: no call asks more than the limit; no weights load inside a GPU call; the duration asked for scales
with the work; "Learn identity" never asks for the GPU (FaceID on the CPU; LoRA refused with a plain message);
the quick preview is one short call.
"""

from __future__ import annotations

import importlib.util
import shutil
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from headshot_lab import spaces_compat
from headshot_lab.testing.zerogpu import FakeZeroGPU, ZeroGPUError
from headshot_lab.ui import SessionState
from headshot_lab.ui.formatting import split_for_visitor
from headshot_lab.ui.gpu_time import MARGIN, GenerateWork, training_estimate_s

ROOT = Path(__file__).resolve().parents[1]
OPERATOR_WORDS = ("HEADSHOT_LAB_", "LCM", "IP-Adapter", "ZeroGPU", "duration", "LoRA `")


# -- the harness itself ----------------------------------------------------------------------------------
def test_fake_refuses_a_request_above_the_maximum_before_the_function_runs():
    fake = FakeZeroGPU()  # 300 s maximum, the strictest node's factor 1.5
    ran = []

    @fake.GPU(duration=600)
    def long(x):
        ran.append(x)

    with pytest.raises(ZeroGPUError, match="larger than the maximum allowed"):
        long(1)
    assert ran == [] and fake.calls[-1].refused and not fake.calls[-1].ran

    @fake.GPU(duration=lambda n: 40 * n)  # a callable of the call's own arguments
    def per_call(n):
        ran.append(n)
        return n

    assert per_call(5) == 5  # 200 s × 1.5 = 300: just allowed
    with pytest.raises(ZeroGPUError):
        per_call(6)  # 240 s × 1.5 = 360: refused unrun
    assert ran == [5] and [c.requested_s for c in fake.calls[-2:]] == [200, 240]

    @fake.GPU
    def default():
        return "ok"

    assert default() == "ok" and fake.calls[-1].requested_s == 60  # ZeroGPU's default
    assert fake.GPU(duration=timedelta(seconds=30))(lambda: 1)() == 1 and fake.calls[-1].requested_s == 30


def test_fake_pickles_arguments_and_records_loads_inside_a_call(tmp_path):
    import torch

    fake = FakeZeroGPU()
    path = tmp_path / "w.pt"
    torch.save({"w": torch.zeros(2)}, path)

    @fake.GPU(duration=10)
    def work(state):
        state["changed"] = True  # in the worker's copy: never comes back
        return torch.load(path)

    with fake.installed():
        state = {"changed": False}
        assert work(state)["w"].shape == (2,)
        torch.load(path)  # outside: allowed
    assert state == {"changed": False}
    ours = [load for load in fake.loads if load.target == str(path)]  # (unpickling a tensor calls torch.load too)
    assert [(load.call is None) for load in ours] == [False, True] and ours[0].call.endswith("work")
    with pytest.raises(AssertionError, match="inside a GPU call"):
        fake.assert_rules()

    @fake.GPU(duration=10)
    def unpicklable(callback):
        return callback()

    with pytest.raises((TypeError, AttributeError, Exception)):  # a lambda cannot cross into the worker
        unpicklable(lambda: 1)


def test_gpu_wrapper_clamps_every_request_under_the_maximum(monkeypatch):
    fake = FakeZeroGPU()
    monkeypatch.setitem(__import__("sys").modules, "spaces", fake.module())
    monkeypatch.setenv(spaces_compat.ZERO_GPU_ENV, "true")
    big = spaces_compat.gpu(duration=lambda n: n)(lambda n: n)
    assert big(10_000) == 10_000 and fake.calls[-1].requested_s == spaces_compat.SAFE_MAX_DURATION_S
    fixed = spaces_compat.gpu(duration=600)(lambda: "ran")
    assert fixed() == "ran" and fake.calls[-1].requested_s == spaces_compat.SAFE_MAX_DURATION_S
    assert spaces_compat.SAFE_MAX_DURATION_S * fake.duration_factor <= fake.max_duration_s


# -- the cost table --------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_requests_stay_within_the_limit_and_grow_with_the_work(family):
    for steps in (1, 4, 30, 50, 100):
        previous = 0
        for n in range(1, 9):
            work = GenerateWork(family, n, steps, guidance=5.0)
            assert 10 <= work.request_s() <= spaces_compat.SAFE_MAX_DURATION_S
            assert work.request_s() >= previous  # more images never ask for less
            previous = work.request_s()
            if work.fits():
                assert work.request_s() >= MARGIN * work.estimate_s() - 1  # the margin is really asked for
            else:
                with pytest.raises(Exception, match="more work than one turn") as refused:
                    work.require_fits()
                most = work.most_images()
                assert most < n and (most == 0 or GenerateWork(family, most, steps).fits())
                assert f"at most {most}" in refused.value.fix or most == 0
    slow = GenerateWork(family, 8, 100, control=True, where="t4")  # work one call cannot hold: refused, with what fits
    assert not slow.fits() and slow.request_s() == spaces_compat.SAFE_MAX_DURATION_S
    with pytest.raises(Exception, match="more work than one turn") as refused:
        slow.require_fits()
    most = slow.most_images()
    assert 0 < most < 8 and GenerateWork(family, most, 100, control=True, where="t4").fits()
    assert (
        not GenerateWork(family, most + 1, 100, control=True, where="t4").fits()
        and f"at most {most}" in refused.value.fix
    )
    few = GenerateWork(family, 4, 4, guidance=1.0)  # the few-step path: one UNet pass per step
    assert few.estimate_s() < GenerateWork(family, 4, 4, guidance=5.0).estimate_s()
    assert GenerateWork(family, 4, 30, control=True).estimate_s() > GenerateWork(family, 4, 30).estimate_s()


def test_training_estimate_is_more_than_one_call_can_hold():
    for family in ("sd15", "sdxl"):
        assert MARGIN * training_estimate_s(family, 800) > spaces_compat.SAFE_MAX_DURATION_S
        assert training_estimate_s(family, 1600) > training_estimate_s(family, 800)
        assert training_estimate_s(family, 800, prior=False) < training_estimate_s(family, 800)


# -- the app on emulated ZeroGPU -------------------------------------------------------------------------
def _load_app(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def zerogpu(tmp_path_factory, torch_one_thread):
    """``(app module, fake)``: ``app.py`` imported on emulated ZeroGPU with a tiny SD1.5 base, tiny FaceID
    weights, a tiny LoRA standing in for the LCM-LoRA and an ArcFace stand-in (the insightface pack is not
    available offline)."""
    import headshot_lab.faces as faces
    from headshot_lab.faces import Face
    from headshot_lab.testing.tiny import tiny_ip_adapter_faceid, tiny_lora, tiny_pipeline

    root = tmp_path_factory.mktemp("zerogpu")
    base = tiny_pipeline("sd15", root / "base")
    weights = tiny_ip_adapter_faceid(base, root / "faceid", weight_name="ip-adapter-faceid_tiny.safetensors")
    lcm = tiny_lora(base, root / "lcm")
    embedding = np.random.default_rng(0).standard_normal(512).astype(np.float32)
    original = faces.get_backend

    class FakeArcFace:
        encoder = "fake-arcface"

        def analyze(self, image):
            return [Face(box=(0, 0, 10, 10), embedding=embedding, backend="insightface")]

    def get_backend(name=None, **options):
        return FakeArcFace() if name == "insightface" else original(name, **options)

    env = {
        "HEADSHOT_LAB_BASE_MODEL": str(base),
        "HEADSHOT_LAB_FACEID_WEIGHTS": str(weights.parent),
        "HEADSHOT_LAB_FACEID_WEIGHT_NAME": weights.name,
        "HEADSHOT_LAB_FEW_STEP_LORA": str(lcm),
        "HEADSHOT_LAB_DEVICE": "cpu",  # ZeroGPU's patched torch would say cuda; this machine has none
        "HEADSHOT_LAB_DATA_DIR": str(root / "data"),
        "GRADIO_TEMP_DIR": str(root / "data" / "gradio"),
        "HF_HUB_OFFLINE": "1",
    }
    fake = FakeZeroGPU()
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        patch.setattr(faces, "get_backend", get_backend)
        with fake.installed():
            app = _load_app("app_on_zerogpu")  # decorators applied and pipelines built now, as on a Space
            yield app, fake
            app.backend().stop()


@pytest.fixture()
def checked(zerogpu, real_photos):
    """A page whose photos were checked (two photos of one person)."""
    app, _fake = zerogpu
    backend = app.backend()
    paths = []
    for index, name in enumerate(("obama", "obama2")):
        folder = backend.upload_root / f"zerogpu-upload-{index}"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{name}.jpg"
        image = Image.open(real_photos[name])
        image.thumbnail((600, 600))
        image.convert("RGB").save(target, quality=92)
        backend.upload_registry.add(str(target))
        paths.append(str(target))
    result = backend.check_photos(SessionState(), paths, True)
    assert result.ok, result.status
    return result.state


def test_pipelines_are_built_at_import_outside_any_gpu_call(zerogpu):
    app, fake = zerogpu
    backend = app.backend()
    assert backend.zero_gpu and len(backend.generators) == 2 and not backend.preload_errors
    built = [load for load in fake.loads if "Pipeline.from_pretrained" in load.what]
    assert built and all(load.call is None for load in built)
    assert [c.function for c in fake.calls] == []  # importing asks for no GPU


def test_learn_identity_never_asks_for_the_gpu(zerogpu, checked):
    app, fake = zerogpu
    before = len(fake.calls)
    _state, status, _report, _operator = app.train_identity(checked, "lora", 800, 16, True, 0)
    visitor = split_for_visitor(status)[0]
    assert "not offered here" in visitor and "minutes of graphics-card time" in visitor
    assert "Quick, no training" in visitor and not any(word in visitor for word in OPERATOR_WORDS)
    assert len(fake.calls) == before  # refused before any GPU request (was: 600 s asked, refused by ZeroGPU)
    state, status, report, _operator = app.train_identity(checked, "faceid", 800, 16, True, 0)
    assert report["mode"] == "faceid" and state.identity["mode"] == "faceid", status
    assert len(fake.calls) == before  # the embedding is made on the CPU
    fake.assert_rules()


def test_generate_asks_for_time_from_the_work_and_loads_nothing_inside(zerogpu, checked):
    app, fake = zerogpu
    state = app.train_identity(checked, "faceid", 800, 16, True, 0)[0]
    requested = []
    for n in (1, 6):
        before = len(fake.calls)
        state, status, gallery, _operator = app.generate(state, "corporate", n, 5, "none", "", "", 10)
        assert len(gallery) == n, status
        assert len(fake.calls) == before + 1 and fake.calls[-1].ran
        requested.append(fake.calls[-1].requested_s)
    assert requested[0] < requested[1] <= spaces_compat.SAFE_MAX_DURATION_S  # more work, more time asked
    fake.assert_rules()  # no weights loaded inside either call (the pipeline was built at import)


def test_quick_preview_is_one_short_gpu_call(zerogpu, checked):
    from headshot_lab.ui.actions import PREVIEW_IMAGES

    app, fake = zerogpu
    before = len(fake.calls)
    state, status, gallery, operator = app.preview(checked, "corporate", 3, "")
    assert len(gallery) == PREVIEW_IMAGES, status
    call = fake.calls[-1]
    assert len(fake.calls) == before + 1 and call.ran and call.requested_s < 60 and not call.loads
    visitor = split_for_visitor(status)[0]  # the handler already split it: the details are the operator's
    assert "without training" in visitor and not any(word in visitor for word in OPERATOR_WORDS)
    assert "LCMScheduler" in operator and "GPU time asked for" in operator
    assert state.identity["mode"] == "faceid"  # made on the way, on the CPU
    records = [r for r in state.outputs if r.kind == "generated"]
    assert len(records) >= PREVIEW_IMAGES
    fake.assert_rules()


def test_an_option_not_built_at_start_up_is_refused_without_loading(zerogpu, checked, tmp_path):
    app, fake = zerogpu
    state = app.train_identity(checked, "faceid", 800, 16, True, 0)[0]
    other = tmp_path / "other-faceid"
    shutil.copytree(Path(app.backend().faceid_options().weights), other)
    loads, calls = len(fake.loads), len(fake.calls)
    state, status, gallery, _operator = app.generate(state, "corporate", 1, 5, "none", "", str(other), 2)
    assert gallery == [] and "not available on this shared graphics card" in status
    assert len(fake.loads) == loads and len(fake.calls) == calls  # nothing loaded, no GPU asked for
