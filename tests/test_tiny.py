"""The tiny random models: offline tokenizer, loadable folders, determinism, the CLI, lazy imports."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from headshot_lab.testing import tiny_pipeline
from headshot_lab.testing.tiny import RARE_TOKEN, learn_merges, load_clip_tokenizer, prompt_words, write_clip_tokenizer

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_tokenizer_makes_the_rare_token_one_token(tmp_path):
    tokenizer = load_clip_tokenizer(write_clip_tokenizer(tmp_path / "tok"))
    ids = tokenizer("a photo of sks person").input_ids
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.convert_tokens_to_ids(f"{RARE_TOKEN}</w>") in ids
    assert tokenizer.model_max_length == 77
    # CLIP puts the start/end tokens last, so argmax(input_ids) finds the end token.
    assert tokenizer.eos_token_id == len(tokenizer) - 1
    padded = tokenizer("sks", padding="max_length", max_length=77).input_ids
    assert len(padded) == 77


def test_learned_merges_make_every_word_one_token(tmp_path):
    merges = learn_merges(["sks"])
    assert len(merges) == 2 and "".join(merges[-1]) == "sks</w>"
    tokenizer = load_clip_tokenizer(write_clip_tokenizer(tmp_path / "tok", ["headshot", "shoulders", "sks"]))
    for word in ("headshot", "shoulders", "sks"):
        assert len(tokenizer(word).input_ids) == 3  # start, the word, end
    assert len(tokenizer("hat").input_ids) == 5  # an unknown word falls back to its letters


def test_style_prompts_fit_the_tiny_tokenizer(tmp_path):
    """Like CLIP, the tiny tokenizer gives one token per word: prompts fit in 77 tokens, no truncation."""
    from headshot_lab.styles import clip_token_estimate, list_styles, load_style

    tokenizer = load_clip_tokenizer(write_clip_tokenizer(tmp_path / "tok"))
    assert RARE_TOKEN in prompt_words()
    for name in list_styles():
        style = load_style(name)
        for text in (style.render_prompt("sks person"), style.negative_prompt):
            count = len(tokenizer(text).input_ids)
            assert count == clip_token_estimate(text) <= 77


@pytest.mark.parametrize(("arch", "cls"), [("sd15", "StableDiffusionPipeline"), ("sdxl", "StableDiffusionXLPipeline")])
def test_tiny_folder_is_a_base_model(tmp_path, arch, cls):
    from headshot_lab.models import load_pipeline, locate_base

    folder = tiny_pipeline(arch, tmp_path / arch)
    assert json.loads((folder / "model_index.json").read_text())["_class_name"] == cls
    assert (folder / "tokenizer" / "vocab.json").is_file() and (folder / "tokenizer" / "merges.txt").is_file()
    located = locate_base(folder)
    assert located.family == arch
    pipe, _ = load_pipeline(located)
    import torch

    image = pipe(
        "a photo of sks person",
        num_inference_steps=2,
        height=64,
        width=64,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    ).images[0]
    assert image.shape == (64, 64, 3)
    assert np.isfinite(image).all() and image.std() > 0


def _weights(folder: Path) -> bytes:
    return (folder / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()


def test_tiny_models_are_seeded(tmp_path):
    a = tiny_pipeline("sd15", tmp_path / "a", seed=3)
    b = tiny_pipeline("sd15", tmp_path / "b", seed=3)
    c = tiny_pipeline("sd15", tmp_path / "c", seed=4)
    assert _weights(a) == _weights(b)
    assert _weights(a) != _weights(c)


def test_tiny_pipeline_without_folder_returns_a_pipeline():
    pipe = tiny_pipeline("sd15")
    assert type(pipe).__name__ == "StableDiffusionPipeline"
    with pytest.raises(ValueError, match="sd15"):
        tiny_pipeline("sd3")


def test_tiny_model_command(tmp_path, capsys):
    from headshot_lab.cli import generate as commands

    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["tiny-model", str(tmp_path / "m"), "--arch", "sdxl"])
    assert args.handler(args) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload == {"path": str(tmp_path / "m"), "arch": "sdxl"}
    assert (tmp_path / "m" / "text_encoder_2").is_dir()


def test_generation_modules_import_without_torch():
    """`import headshot_lab.generate` (and the CLI module) must stay light: torch loads on first use."""
    code = (
        "import sys, headshot_lab.generate, headshot_lab.train, headshot_lab.models, headshot_lab.control, "
        "headshot_lab.styles, headshot_lab.cli.generate, headshot_lab.testing.tiny; "
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'peft', 'controlnet_aux') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"


def test_t5_tokenizer_makes_each_prompt_word_one_piece(tmp_path):
    from headshot_lab.styles import list_styles, load_style
    from headshot_lab.testing.tiny import load_t5_tokenizer, write_t5_tokenizer

    tokenizer = load_t5_tokenizer(write_t5_tokenizer(tmp_path / "t5"))
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1, 2)
    ids = tokenizer("a photo of sks person").input_ids
    assert tokenizer.convert_ids_to_tokens(ids) == ["▁a", "▁photo", "▁of", "▁sks", "▁person", "</s>"]
    assert tokenizer.unk_token_id not in tokenizer("Zebra, 42% (odd)!").input_ids  # unknown words split, never <unk>
    for name in list_styles():
        text = load_style(name).render_prompt("sks person", family="flux")
        pieces = tokenizer.convert_ids_to_tokens(tokenizer(text).input_ids)
        words = [p for p in pieces if p.startswith("▁")]
        assert len(words) == len(text.split())  # one piece per word (punctuation apart)
    padded = tokenizer("sks", padding="max_length", max_length=256).input_ids
    assert len(padded) == 256 and padded[-1] == tokenizer.pad_token_id


@pytest.mark.parametrize("arch", ["flux", "flux-dev"])
def test_tiny_flux_loads_with_the_stock_pipeline_and_draws(tmp_path, arch):
    import torch
    from diffusers import FluxPipeline

    folder = tiny_pipeline(arch, tmp_path / arch)
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "FluxPipeline" and index["transformer"][1] == "FluxTransformer2DModel"
    assert index["tokenizer_2"][1].startswith("T5Tokenizer")
    pipe = FluxPipeline.from_pretrained(str(folder))
    pipe.set_progress_bar_config(disable=True)
    assert pipe.transformer.config.guidance_embeds is (arch == "flux-dev")
    assert pipe.transformer.config.in_channels == 4 * pipe.vae.config.latent_channels

    def draw(seed: int) -> np.ndarray:
        return pipe(
            "a photo of sks person", num_inference_steps=2, height=64, width=48, guidance_scale=3.5,
            max_sequence_length=64, generator=torch.Generator().manual_seed(seed), output_type="np",
        ).images[0]  # fmt: skip

    image = draw(0)
    assert image.shape == (64, 48, 3) and np.isfinite(image).all() and image.std() > 0
    np.testing.assert_array_equal(draw(0), image)
    assert not np.array_equal(draw(1), image)
