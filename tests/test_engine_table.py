"""The identity-engine table: one definition for the CLI, the app and the README."""

from __future__ import annotations

from pathlib import Path

import pytest

from headshot_lab.errors import HeadshotLabError
from headshot_lab.identity_engines import ENGINES, check_engine, engines_for, get_engine, markdown_table
from headshot_lab.models import FAMILIES

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_table_is_the_generated_one():
    assert markdown_table() in README.read_text()


def test_every_family_has_an_engine_and_every_engine_a_known_family():
    for family in FAMILIES:
        assert engines_for(family), family
    for engine in ENGINES.values():
        assert set(engine.families) <= set(FAMILIES), engine.name
        assert engine.trains or engine.zero_gpu  # a tuning-free engine must fit ZeroGPU's short calls


def test_instantid_is_sdxl_only_with_a_message_naming_the_others():
    assert check_engine("instantid", "sdxl").name == "instantid"
    with pytest.raises(HeadshotLabError) as info:
        check_engine("instantid", "sd15")
    assert info.value.code == "engine_family" and "lora, faceid, faceid-plus" in info.value.fix
    with pytest.raises(HeadshotLabError) as info:
        get_engine("photomaker")
    assert info.value.code == "bad_engine" and "instantid" in info.value.fix


def test_zero_gpu_puts_the_tuning_free_engines_first():
    names = [engine.name for engine in engines_for("sdxl", zero_gpu=True)]
    assert names[-1] == "lora" and set(names) == {"lora", "faceid", "faceid-plus", "instantid"}


@pytest.mark.slow
def test_memory_figures_are_the_meta_device_estimates():
    """Each GiB figure of the table is the contracts' estimate rounded to 0.1 GiB (a meta forward per family)."""
    from headshot_lab.testing import contracts as c

    def figure(value) -> str:
        return f"{value.total_gib:.1f} GiB"

    assert figure(c.flux_generation_vram_estimate("schnell")) in ENGINES["lora"].memory
    assert f"{c.flux_training_vram_estimate('schnell').total_gib:.1f}" in ENGINES["lora"].memory
    for family in ("sd15", "sdxl"):
        unet = c.meta_unet(family)
        base = c.generation_vram_estimate(family, unet=unet)
        assert figure(base) in ENGINES["lora"].memory, family
        assert f"{c.training_vram_estimate(family, unet=unet).total_gib:.1f}" in ENGINES["lora"].memory, family
        for engine, name in (("faceid", "faceid"), ("faceid-plus", "faceid-plusv2"), ("instantid", "instantid")):
            if family in ENGINES[engine].families:
                estimate = c.engine_vram_estimate(name, family, unet=unet, base=base)
                assert figure(estimate) in ENGINES[engine].memory, (engine, family)
