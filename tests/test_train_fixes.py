"""Issue 14's training defects, each with a test that failed before its fix (tiny models, real photos).

* mixed precision ``auto`` on a T4/V100 (bf16 only emulated there) must be fp16;
* class images are drawn without the SD1.5 safety checker (a false positive is a black prior image);
* the class-image pipeline is freed before the training models load (SDXL: no co-residency on the GPU);
* a kohya/A1111 LoRA file is written beside the diffusers one, with ``lora_unet_*`` keys, and loads back
  into diffusers with the same outputs;
* SDXL's ``original_size`` / crop conditioning is each photo's own, not the training resolution.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
from PIL import Image

from headshot_lab.train import (
    KOHYA_WEIGHT_NAME,
    LORA_WEIGHT_NAME,
    PreparedPhoto,
    TrainConfig,
    _mixed_precision,
    read_lora_card,
    train_identity_lora,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def photos(load_real):
    out = []
    for name in ("obama", "obama2", "obama3"):
        image = Image.fromarray(load_real(name))
        image.thumbnail((256, 256))
        out.append(np.asarray(image))
    return out


def quick(**changes) -> TrainConfig:
    values = {"steps": 2, "rank": 4, "learning_rate": 1e-3, "prior_preservation": False, "checkpoint_every": 100}
    return TrainConfig(**(values | changes))


# ------------------------------------------------------------------------------------------- precision
@pytest.mark.parametrize(
    ("capability", "expected"),
    [((7, 5), "fp16"), ((7, 0), "fp16"), ((8, 0), "bf16"), ((8, 9), "bf16"), ((9, 0), "bf16")],
)
def test_auto_precision_follows_native_bf16_not_emulation(monkeypatch, capability, expected):
    """torch's is_bf16_supported() says True on a T4 (emulated bf16): the compute capability decides."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert _mixed_precision("auto", "cuda") == expected
    assert _mixed_precision("auto", "cpu") == "no"
    assert _mixed_precision("bf16", "cuda") == "bf16"  # an explicit request is kept


# ------------------------------------------------------------------------------------------- class images
class _FlagEverything:
    """A stand-in SD1.5 safety checker that flags every image (a false positive: the pipeline blacks it out)."""

    dtype = None

    def __call__(self, images, clip_input):
        return images * 0, [True] * len(images)


class _Features:
    def __call__(self, images, return_tensors="pt"):
        import torch

        class Out:
            pixel_values = torch.zeros(len(images), 3, 8, 8)

            def to(self, *args, **kwargs):
                return self

        return Out()


def test_class_images_are_drawn_without_the_safety_checker(tiny_bases, photos, tmp_path, monkeypatch):
    """A base that ships a checker gets it unless the loader is told safety_checker=None: with it, every class
    image of a flagging checker would be black."""
    import headshot_lab.models as models

    real = models.load_pipeline
    seen: list[dict] = []

    def load_with_checker(base=None, **kwargs):
        seen.append(kwargs)
        pipe, located = real(base, **kwargs)
        if "safety_checker" not in kwargs:  # what the published SD1.5 base does by default
            pipe.safety_checker, pipe.feature_extractor = _FlagEverything(), _Features()
        return pipe, located

    monkeypatch.setattr(models, "load_pipeline", load_with_checker)
    config = quick(prior_preservation=True, num_class_images=2, class_image_steps=2)
    folder = tmp_path / "classes"
    train_identity_lora(photos, str(tiny_bases["sd15"]), tmp_path / "out", config, class_images=folder, progress=False)
    made = sorted(folder.glob("*.png"))
    assert len(made) == 2
    for path in made:
        assert np.asarray(Image.open(path)).max() > 0, f"{path.name} is black: the checker flagged it"
    assert seen and seen[0].get("safety_checker", "missing") is None


def test_the_class_image_pipeline_is_freed_before_training_loads(tiny_bases, photos, tmp_path, monkeypatch):
    """SDXL: the class-image pipeline is drawn, then deleted (gc + empty_cache) *before* the training UNet, both
    text encoders and the VAE are loaded, so the two never share the GPU."""
    import headshot_lab.models as models

    real_pipeline, real_parts = models.load_pipeline, models.load_training_components
    events: list[str] = []
    pipes: list[weakref.ref] = []

    def load_pipeline(base=None, **kwargs):
        pipe, located = real_pipeline(base, **kwargs)
        events.append("class pipeline loaded")
        pipes.append(weakref.ref(pipe))
        return pipe, located

    def load_training_components(base):
        gc.collect()
        alive = [ref for ref in pipes if ref() is not None]
        events.append(f"training components loaded ({len(alive)} class pipelines alive)")
        return real_parts(base)

    import headshot_lab.train as train

    real_free = train.free_accelerator_memory

    def free():
        events.append("freed")
        real_free()

    monkeypatch.setattr(models, "load_pipeline", load_pipeline)
    monkeypatch.setattr(models, "load_training_components", load_training_components)
    monkeypatch.setattr(train, "free_accelerator_memory", free)
    config = quick(prior_preservation=True, num_class_images=2, class_image_steps=2, mixed_precision="no")
    train_identity_lora(photos, str(tiny_bases["sdxl"]), tmp_path / "out", config, progress=False, device="cpu")
    assert events == ["class pipeline loaded", "freed", "training components loaded (0 class pipelines alive)"]


def test_freeing_empties_the_cuda_cache(monkeypatch):
    import torch

    from headshot_lab.train import free_accelerator_memory

    emptied: list[bool] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    free_accelerator_memory()
    assert emptied == [True]


# ------------------------------------------------------------------------------------------- kohya file
@pytest.fixture(scope="module")
def trained_sd15(tiny_bases, photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("kohya") / "lora"
    config = quick(steps=2, rank=4, alpha=8, learning_rate=5e-2)
    result = train_identity_lora(photos, str(tiny_bases["sd15"]), out, config, progress=False)
    return result


def test_a_kohya_file_is_written_beside_the_diffusers_one(trained_sd15):
    from safetensors import safe_open

    card = trained_sd15.card
    kohya = trained_sd15.lora_path.parent / KOHYA_WEIGHT_NAME
    assert card["kohya_file"] == KOHYA_WEIGHT_NAME and kohya.is_file()
    with safe_open(str(kohya), framework="pt") as handle:
        keys = set(handle.keys())
        meta = handle.metadata()
        alphas = {handle.get_tensor(k).item() for k in keys if k.endswith(".alpha")}
    with safe_open(str(trained_sd15.lora_path), framework="pt") as handle:
        diffusers_keys = set(handle.keys())
    assert keys and all(k.startswith("lora_unet_") for k in keys)
    modules = {k.split(".")[0] for k in keys}
    for module in modules:  # each module: down, up and alpha, the kohya layout
        assert {f"{module}.lora_down.weight", f"{module}.lora_up.weight", f"{module}.alpha"} <= keys
    assert all(k.count(".") == 2 or k.endswith(".alpha") for k in keys)
    assert len(modules) * 2 == len(diffusers_keys), "not every diffusers LoRA matrix has its kohya twin"
    assert "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_out_0" in modules
    assert alphas == {8.0}, "kohya scales by alpha/rank: the trained alpha (8), not the rank (4)"
    assert meta["ss_network_dim"] == "4" and meta["ss_base_model_version"] == "sd_v1"
    assert read_lora_card(kohya)["family"] == "sd15"


def test_the_kohya_file_loads_back_with_the_same_outputs(tiny_bases, trained_sd15):
    import torch
    from diffusers import StableDiffusionPipeline

    def render(weight_name):
        pipe = StableDiffusionPipeline.from_pretrained(str(tiny_bases["sd15"]))
        pipe.set_progress_bar_config(disable=True)
        if weight_name is not None:
            pipe.load_lora_weights(str(trained_sd15.lora_path.parent), weight_name=weight_name)
        out = pipe(
            "a photo of sks person",
            num_inference_steps=2,
            height=64,
            width=64,
            generator=torch.Generator().manual_seed(0),
            output_type="np",
        ).images[0]
        return out

    plain = render(None)
    diffusers_image = render(LORA_WEIGHT_NAME)
    kohya_image = render(KOHYA_WEIGHT_NAME)
    assert np.abs(diffusers_image - plain).max() > 1e-3, "the LoRA does nothing: the round trip would prove nothing"
    np.testing.assert_allclose(kohya_image, diffusers_image, atol=1e-5)


# ------------------------------------------------------------------------------------------- SDXL sizes
def test_sdxl_time_ids_are_the_photos_own_size_and_crop():
    photo = PreparedPhoto(
        pixels=np.zeros((64, 64, 3), np.uint8),
        sha256="",
        crop="face",
        box=(100, 40, 300, 240),
        original_size=(480, 640),
    )
    # crop side 200 → R 64: k = 0.32; top 40·k = 12.8 → 13, left 100·k = 32; mirrored: (640 − 300)·k = 108.8
    assert photo.sdxl_time_ids(64) == (480, 640, 13, 32, 64, 64)
    assert photo.sdxl_time_ids(64, flipped=True) == (480, 640, 13, 109, 64, 64)


def test_sdxl_training_conditions_on_the_real_photo_sizes(tiny_bases, photos, tmp_path, monkeypatch):
    import headshot_lab.models as models

    real_parts = models.load_training_components
    seen: list = []

    def load_training_components(base):
        parts = real_parts(base)

        def hook(module, args, kwargs):
            seen.append(kwargs["added_cond_kwargs"]["time_ids"].detach().clone())

        parts["unet"].register_forward_pre_hook(hook, with_kwargs=True)
        return parts

    monkeypatch.setattr(models, "load_training_components", load_training_components)
    config = quick(steps=3, face_crop=False, mixed_precision="no")
    train_identity_lora(photos, str(tiny_bases["sdxl"]), tmp_path / "out", config, progress=False, device="cpu")
    sizes = {tuple(int(v) for v in row[:2]) for ids in seen for row in ids}
    assert sizes and sizes <= {p.shape[:2] for p in photos}, sizes
    assert all(int(row[4]) == 64 and int(row[5]) == 64 for ids in seen for row in ids)


def test_a_chosen_cuda_index_becomes_the_current_device(monkeypatch):
    """HEADSHOT_LAB_DEVICE=cuda:1: accelerate's single-process device is the *current* CUDA device, so training
    binds it first (else it trains on GPU 0)."""
    import torch

    from headshot_lab.train import bind_cuda_device

    bound: list = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: bound.append(str(device)))
    bind_cuda_device(torch.device("cuda:1"))
    bind_cuda_device(torch.device("cuda"))  # no index: the current device stays
    bind_cuda_device(torch.device("cpu"))
    assert bound == ["cuda:1"]
