"""Base-model location, family detection, device/dtype choice, and the two clear errors (no model, OOM)."""

from __future__ import annotations

import json

import pytest

from headshot_lab.errors import HeadshotLabError, ModelUnavailableError
from headshot_lab.models import (
    ENV_BASE_MODEL,
    choose_dtype,
    family_of,
    is_hub_id,
    locate_base,
    out_of_memory_guard,
    resolve_base,
)


@pytest.fixture()
def no_base(monkeypatch):
    monkeypatch.delenv(ENV_BASE_MODEL, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _assert_names_what_to_set(error: ModelUnavailableError) -> None:
    assert error.code == "model_unavailable"
    assert ENV_BASE_MODEL in error.fix
    assert "stable-diffusion-v1-5/stable-diffusion-v1-5" in error.fix
    assert "stabilityai/stable-diffusion-xl-base-1.0" in error.fix
    assert "tiny-model" in error.fix


def test_nothing_set_names_the_env_var(no_base):
    with pytest.raises(ModelUnavailableError) as info:
        resolve_base(None)
    assert ENV_BASE_MODEL in info.value.message
    _assert_names_what_to_set(info.value)


def test_env_var_is_the_default(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_BASE_MODEL, str(tmp_path))
    assert resolve_base(None) == str(tmp_path)
    assert resolve_base("explicit/model") == "explicit/model"


@pytest.mark.parametrize("case", ["missing_dir", "no_index", "single_file", "uncached_hub_id", "not_an_id"])
def test_unreachable_bases_give_one_clear_error(no_base, tmp_path, case):
    value = {
        "missing_dir": str(tmp_path / "nope" / "model"),
        "no_index": str(tmp_path),
        "single_file": str(tmp_path / "model.safetensors"),
        "uncached_hub_id": "headshot-lab-tests/certainly-not-cached",
        "not_an_id": "just some words",
    }[case]
    if case == "single_file":
        (tmp_path / "model.safetensors").write_bytes(b"x")
    with pytest.raises(ModelUnavailableError) as info:
        locate_base(value)
    _assert_names_what_to_set(info.value)


def test_hub_id_shape():
    assert is_hub_id("stabilityai/stable-diffusion-xl-base-1.0")
    assert not is_hub_id("/abs/path")
    assert not is_hub_id("a/b/c")
    assert not is_hub_id("../x")


@pytest.mark.parametrize(
    ("index", "family"),
    [
        ({"_class_name": "StableDiffusionPipeline", "unet": [], "text_encoder": []}, "sd15"),
        ({"_class_name": "StableDiffusionXLPipeline", "text_encoder_2": []}, "sdxl"),
        ({"_class_name": "StableDiffusionXLImg2ImgPipeline"}, "sdxl"),
        ({"_class_name": "FluxPipeline", "transformer": ["diffusers", "FluxTransformer2DModel"]}, "flux"),
        ({"_class_name": "FluxControlNetPipeline", "text_encoder_2": ["transformers", "T5EncoderModel"]}, "flux"),
        ({"_class_name": "DiffusionPipeline", "transformer": ["diffusers", "FluxTransformer2DModel"]}, "flux"),
    ],
)
def test_family_from_model_index(index, family):
    assert family_of(index) == family


@pytest.mark.parametrize(
    "index",
    [
        {"_class_name": "StableDiffusion3Pipeline", "transformer": [], "text_encoder_2": []},
        {"_class_name": "PixArtSigmaPipeline", "transformer": []},
    ],
)
def test_other_families_are_refused_clearly(index):
    with pytest.raises(HeadshotLabError) as info:
        family_of(index)
    assert info.value.code == "unsupported_model_family"
    assert "FLUX.1-schnell" in info.value.fix


def test_flux_defaults_licence_and_precision():
    import torch

    from headshot_lab.models import (
        EXAMPLE_BASES,
        FLUX_BASES,
        NATIVE_RESOLUTION,
        licence_note,
        pipeline_class,
        sampling_defaults,
        weights_variant,
    )

    assert EXAMPLE_BASES["flux"] == FLUX_BASES["schnell"][0] and FLUX_BASES["schnell"][1] == "Apache-2.0"
    assert "Non-Commercial" in FLUX_BASES["dev"][1]
    assert "non-commercial" in (licence_note("black-forest-labs/FLUX.1-dev") or "")
    assert licence_note("black-forest-labs/FLUX.1-schnell") is None
    assert NATIVE_RESOLUTION["flux"] == 1024
    schnell, dev = (
        sampling_defaults("flux", {"guidance_embeds": False}),
        sampling_defaults("flux", {"guidance_embeds": True}),
    )
    assert (schnell.steps, schnell.guidance_scale, schnell.max_sequence_length) == (4, 0.0, 256)
    assert (dev.steps, dev.guidance_scale, dev.max_sequence_length) == (28, 3.5, 512)
    assert sampling_defaults("sdxl") is None  # the style preset decides
    assert pipeline_class("flux").__name__ == "FluxPipeline"
    assert pipeline_class("flux", controlnet=True).__name__ == "FluxControlNetPipeline"
    # FLUX.1 repos publish bf16 files and no fp16 variant: half precision loads the main files
    assert weights_variant(torch.bfloat16, family="flux") is None
    assert weights_variant(torch.float16, family="sdxl") == "fp16"


def test_local_folder_is_located(tmp_path):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionXLPipeline"}))
    located = locate_base(tmp_path)
    assert located.family == "sdxl"
    assert located.local_dir == tmp_path


def test_dtype_choice():
    import torch

    assert choose_dtype("cpu") == torch.float32
    assert choose_dtype("cuda") == torch.float16
    assert choose_dtype("cpu", "bf16") == torch.bfloat16
    with pytest.raises(HeadshotLabError):
        choose_dtype("cpu", "fp8")


def test_out_of_memory_becomes_a_clear_error():
    import torch

    with pytest.raises(HeadshotLabError) as info, out_of_memory_guard("testing"):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert info.value.code == "out_of_memory"
    assert "out of GPU memory" in info.value.message
    assert "batch size" in info.value.fix
    assert "offload" in info.value.fix


def test_other_errors_pass_through_the_oom_guard():
    with pytest.raises(KeyError), out_of_memory_guard("testing"):
        raise KeyError("not memory")
