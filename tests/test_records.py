"""Records from dataclasses (issue 12, deliverable 4): the LoRA card, the resume fingerprint and the manifest
line are built from ``asdict(config)``, so a new setting reaches all three by itself; records written before
a setting existed still load and resume; each choice list is defined once.

The pure-function tests take milliseconds; the one end-to-end test trains and generates on the tiny models
(about 15 s on one core).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from headshot_lab.errors import HeadshotLabError
from headshot_lab.generate import ControlOptions, FaceIDOptions, Identity, SpeedOptions
from headshot_lab.records import config_defaults, config_record, jsonable, record_changes
from headshot_lab.train import (
    CARD_EXCLUDE,
    CARD_NAME,
    CARD_RUN_KEYS,
    FINGERPRINT_EXCLUDE,
    FINGERPRINT_RUN_KEYS,
    TrainConfig,
    card_settings,
    fingerprint_mismatch,
    lora_card,
    read_lora_card,
    training_fingerprint,
)

ROOT = Path(__file__).resolve().parents[1]

#: A copy of TrainConfig with one setting more, as a future version of the code would have it.
TrainConfigPlus = dataclasses.make_dataclass("TrainConfigPlus", [("ema_decay", float, 0.0)], bases=(TrainConfig,))
SpeedOptionsPlus = dataclasses.make_dataclass("SpeedOptionsPlus", [("tome_ratio", float, 0.0)], bases=(SpeedOptions,))

#: The 22 settings the hand-written fingerprint of headshot-lab ≤ 2026-11 kept (train.py:564 then).
OLD_FINGERPRINT_SETTINGS = (
    "rank", "alpha", "learning_rate", "train_text_encoder", "text_encoder_lr", "batch_size",
    "gradient_accumulation_steps", "token", "class_noun", "instance_prompt", "class_prompt", "prior_preservation",
    "num_class_images", "prior_loss_weight", "flip_p", "face_scale", "face_crop", "lr_scheduler", "lr_warmup_steps",
    "max_grad_norm", "snr_gamma", "seed",
)  # fmt: skip


def old_fingerprint(config: TrainConfig, base: str, family: str, photos_sha: str, resolution: int) -> dict:
    """The fingerprint exactly as the hand-written ``_fingerprint`` stored it in checkpoints before."""
    data = {key: getattr(config, key) for key in OLD_FINGERPRINT_SETTINGS}
    data.update(base=base, family=family, photos_sha256=photos_sha, resolution=resolution)
    return data


def fingerprint(config: TrainConfig) -> dict:
    return training_fingerprint(config, "some/base", "sd15", "ab" * 32, 512, optimizer="AdamW (torch)")


# ------------------------------------------------------------------------------------------- config_record
def test_config_record_is_asdict_minus_the_exclusions_and_refuses_stale_ones():
    config = TrainConfig(rank=8, face_backend="insightface")
    assert config_record(config) == dataclasses.asdict(config)
    kept = config_record(config, {"seed": "why"})
    assert "seed" not in kept and kept == {k: v for k, v in dataclasses.asdict(config).items() if k != "seed"}
    with pytest.raises(ValueError, match="no_such_field"):
        config_record(config, {"no_such_field": "a renamed field must not slip back in"})
    with pytest.raises(TypeError):
        config_record(TrainConfig)  # the class, not an instance


def test_records_are_json_and_refuse_what_does_not_belong_in_one():
    assert jsonable({"p": Path("/a/b"), "t": (1, 2), "s": {3, 1}, "n": np.float32(0.5)}) == {
        "p": "/a/b",
        "t": [1, 2],
        "s": [1, 3],
        "n": 0.5,
    }
    with pytest.raises(TypeError, match="exclude the field"):
        jsonable(np.zeros((2, 2)))
    # An excluded field is never read: the selfie's pixels do not even have to be JSON.
    identity = Identity(lora=Path("/x/lora.safetensors"), selfie=np.zeros((8, 8, 3), np.uint8), card={"a": 1})
    from headshot_lab.generate import IDENTITY_NOT_IN_MANIFEST

    assert config_record(identity, IDENTITY_NOT_IN_MANIFEST) == {"scale": 1.0, "token": None, "class_noun": None}
    with pytest.raises(TypeError):
        config_record(identity)  # without the exclusions the pixels would have to go in


def test_every_exclusion_names_a_field_and_gives_a_reason():
    from headshot_lab.generate import CONTROL_NOT_IN_MANIFEST, IDENTITY_NOT_IN_MANIFEST

    tables = [
        (TrainConfig, FINGERPRINT_EXCLUDE),
        (TrainConfig, CARD_EXCLUDE),
        (Identity, IDENTITY_NOT_IN_MANIFEST),
        (ControlOptions, CONTROL_NOT_IN_MANIFEST),
    ]
    for cls, table in tables:
        names = {f.name for f in dataclasses.fields(cls)}
        assert set(table) <= names, (cls.__name__, set(table) - names)
        assert all(len(reason.split()) >= 4 for reason in table.values())  # a reason, not a placeholder


# ------------------------------------------------------------------------------------------- fingerprint
def test_the_fingerprint_holds_every_setting_but_the_listed_ones():
    keys = set(fingerprint(TrainConfig()))
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert keys == (fields - set(FINGERPRINT_EXCLUDE)) | set(FINGERPRINT_RUN_KEYS)
    assert set(OLD_FINGERPRINT_SETTINGS) <= keys  # nothing the old fingerprint checked is dropped


def test_a_new_setting_enters_the_fingerprint_by_itself():
    plain, changed = TrainConfigPlus(), TrainConfigPlus(ema_decay=0.999)
    assert fingerprint(plain)["ema_decay"] == 0.0
    assert fingerprint(plain) != fingerprint(changed)
    assert fingerprint_mismatch(fingerprint(plain), fingerprint(changed), changed) == ["changed: ema_decay"]
    assert fingerprint_mismatch(fingerprint(plain), fingerprint(TrainConfigPlus()), plain) == []
    # Excluded settings (bookkeeping, precision, the total steps) do not block a resume.
    later = TrainConfigPlus(steps=2000, checkpoint_every=10, mixed_precision="bf16", gradient_checkpointing=False)
    assert fingerprint_mismatch(fingerprint(plain), fingerprint(later), later) == []


def test_a_checkpoint_written_before_a_setting_existed_still_resumes():
    """The old 26-key layout against today's: settings it lacks count as their default."""
    config = TrainConfig(rank=4, learning_rate=1e-3, prior_preservation=False, face_crop=False)
    old = old_fingerprint(config, "some/base", "sd15", "ab" * 32, 512)
    assert fingerprint_mismatch(old, fingerprint(config), config) == []  # face_backend, optimizer: not in it
    plus = TrainConfigPlus(rank=4, learning_rate=1e-3, prior_preservation=False, face_crop=False)
    assert fingerprint_mismatch(old, fingerprint(plus), plus) == []  # a later field at its default
    moved = dataclasses.replace(plus, ema_decay=0.5, face_backend="insightface")
    reasons = fingerprint_mismatch(old, fingerprint(moved), moved)
    assert len(reasons) == 2 and all("predates it" in r for r in reasons)
    assert "ema_decay" in reasons[0] and "0.0" in reasons[0] and "face_backend" in reasons[1]
    other = dataclasses.replace(config, learning_rate=5e-4)
    assert fingerprint_mismatch(old, fingerprint(other), other) == ["changed: learning_rate"]
    assert "cannot be checked" in fingerprint_mismatch(None, fingerprint(config), config)[0]


def test_record_changes_compares_missing_keys_with_their_defaults():
    defaults = config_defaults(TrainConfig)
    assert defaults["rank"] == 16 and defaults["face_backend"] is None
    assert record_changes({"a": 1}, {"a": 1, "b": 2}, {"b": 2}) == ([], [])
    assert record_changes({"a": 1}, {"a": 1, "b": 3}, {"b": 2}) == (["b"], [])
    assert record_changes({"a": 1}, {"a": 2, "c": 0}, {}) == (["a"], ["c"])
    assert record_changes({"a": 1, "gone": 5}, {"a": 1}) == ([], [])  # a removed setting is not held against it


# ------------------------------------------------------------------------------------------- card
RUN = {"format": "headshot-lab-lora/1", "base_model": "some/base", "family": "sd15", "optimizer": "AdamW (torch)"}


def test_the_card_holds_every_setting_with_the_resolved_values_on_top():
    config = TrainConfigPlus(ema_decay=0.9, rank=8)
    card = lora_card(config, effective={"alpha": 8, "resolution": 512, "mixed_precision": "no"}, run=RUN)
    fields = {f.name for f in dataclasses.fields(config)}
    assert fields - set(CARD_EXCLUDE) <= set(card) and card["ema_decay"] == 0.9
    assert (card["alpha"], card["resolution"], card["mixed_precision"]) == (8, 512, "no")  # not None/None/auto
    assert card_settings(card) == {k: v for k, v in card.items() if k not in RUN}
    json.dumps(card)  # a JSON document as it is
    with pytest.raises(ValueError, match="no setting"):
        lora_card(config, effective={"not_a_setting": 1}, run=RUN)
    with pytest.raises(ValueError, match="outside CARD_RUN_KEYS"):
        lora_card(config, effective={}, run={**RUN, "surprise": 1})
    Clashing = dataclasses.make_dataclass("Clashing", [("device", str, "cpu")], bases=(TrainConfig,))
    with pytest.raises(ValueError, match="named like run keys"):
        lora_card(Clashing(), effective={}, run=RUN)  # a setting may not hide a run fact


OLD_CARD = {  # a card exactly as headshot-lab ≤ 2026-11 wrote it (the hand-listed layout)
    "format": "headshot-lab-lora/1", "base_model": "org/sd15-base", "family": "sd15",
    "pipeline_class": "StableDiffusionPipeline", "token": "zxq", "class_noun": "woman",
    "instance_prompt": "a photo of zxq woman", "class_prompt": None, "steps": 800, "rank": 16, "alpha": 16,
    "learning_rate": 0.0001, "train_text_encoder": False, "text_encoder_lr": None, "resolution": 512,
    "batch_size": 1, "gradient_accumulation_steps": 1, "prior_preservation": False, "num_class_images": 0,
    "prior_loss_weight": None, "mixed_precision": "bf16", "gradient_checkpointing": True,
    "optimizer": "AdamW8bit (bitsandbytes)", "lr_scheduler": "constant", "snr_gamma": None, "seed": 0,
    "device": "cuda", "photos": {"count": 12, "sha256": "cd" * 32, "face_crops": 12, "centre_crops": []},
    "resumed_from_step": None, "final_loss": 0.11, "notes": [], "versions": {"torch": "2.5.1"},
    "created": "2026-11-02T10:00:00+00:00", "lora_file": "pytorch_lora_weights.safetensors", "lora_sha256": "ef" * 32,
}  # fmt: skip


def test_a_card_written_before_still_loads_and_names_the_person(tmp_path):
    (tmp_path / CARD_NAME).write_text(json.dumps(OLD_CARD), encoding="utf-8")
    card = read_lora_card(tmp_path)  # the folder: no weights file, so the sidecar card
    assert card == OLD_CARD
    assert Identity(lora=tmp_path / "w.safetensors", card=card).subject == "zxq woman"
    settings = card_settings(card)
    assert settings["rank"] == 16 and settings["steps"] == 800
    assert not set(settings) & CARD_RUN_KEYS and "photos" not in settings


# ------------------------------------------------------------------------------------------- end to end
@pytest.mark.usefixtures("torch_one_thread")
def test_a_new_setting_reaches_card_fingerprint_and_manifest_and_old_checkpoints_resume(
    tiny_bases, load_real, tmp_path
):
    import torch

    from headshot_lab.generate import generate, read_manifest
    from headshot_lab.train import train_identity_lora

    photos = [np.asarray(Image.fromarray(load_real(n)).resize((64, 64))) for n in ("obama", "obama2", "obama3")]
    base = str(tiny_bases["sd15"])
    settings = {"rank": 4, "learning_rate": 1e-3, "prior_preservation": False, "face_crop": False}
    config = TrainConfigPlus(steps=2, checkpoint_every=2, ema_decay=0.25, **settings)
    out = tmp_path / "lora"
    first = train_identity_lora(photos, base, out, config, progress=False)
    assert first.card["ema_decay"] == 0.25 and read_lora_card(first.lora_path)["ema_decay"] == 0.25

    # The checkpoint holds the new layout; rewrite it to the old one (what an older headshot-lab left).
    state_file = out / "checkpoints" / "step-000002" / "state.pt"
    state = torch.load(state_file, map_location="cpu", weights_only=True)
    assert state["fingerprint"]["ema_decay"] == 0.25 and state["fingerprint"]["optimizer"] == "AdamW (torch)"
    state["fingerprint"] = old_fingerprint(config, base, "sd15", first.card["photos"]["sha256"], 64)
    torch.save(state, state_file)
    with pytest.raises(HeadshotLabError) as info:  # the old checkpoint cannot know ema_decay=0.25: taken as 0.0
        train_identity_lora(photos, base, out, dataclasses.replace(config, steps=3), progress=False)
    assert info.value.code == "checkpoint_mismatch" and "ema_decay" in info.value.message
    at_default = dataclasses.replace(config, steps=3, ema_decay=0.0)
    resumed = train_identity_lora(photos, base, out, at_default, progress=False)
    assert resumed.resumed_from == 2 and resumed.card["resumed_from_step"] == 2 and len(resumed.losses) == 3
    with pytest.raises(HeadshotLabError, match="past the 2 steps"):  # a run may grow on resume, not shrink
        train_identity_lora(photos, base, out, dataclasses.replace(at_default, steps=2), progress=False)

    shots = tmp_path / "shots"
    speed = SpeedOptionsPlus(tome_ratio=0.5)
    generate(resumed.lora_path, "corporate", n=1, seed=1, out_dir=shots, base=base, steps=2, speed=speed,
             progress=False)  # fmt: skip
    line = json.loads((shots / "manifest.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert line["speed"]["tome_ratio"] == 0.5  # a new generator option, by itself
    assert line["lora"]["training"]["ema_decay"] == 0.0 and line["lora"]["training"]["steps"] == 3
    assert line["lora"]["training"] == card_settings(resumed.card)
    assert {"scale", "token", "class_noun", "path", "sha256", "family"} <= set(line["lora"])
    assert read_manifest(shots)[0] == line


# ------------------------------------------------------------------------------------------- choice lists
SOURCES = [ROOT / "app.py", *sorted((ROOT / "headshot_lab").rglob("*.py")), *sorted((ROOT / "eval").rglob("*.py"))]


def test_each_choice_list_is_written_once():
    """No module but its home spells out the list again (the drift of train.py/check.py/datasets.py)."""
    patterns = {
        "IMAGE_SUFFIXES": (re.compile(r"^IMAGE_SUFFIXES\s*=", re.M), {"headshot_lab/io.py"}),
        "crop names": (re.compile(r"""["']square["'],\s*["']circle["'],\s*["']bio["']"""), set()),
        "export formats": (re.compile(r"""\(\s*["']jpeg["'],\s*["']png["'],\s*["']webp["']\s*\)"""), set()),
    }
    for what, (pattern, homes) in patterns.items():
        found = {str(p.relative_to(ROOT)) for p in SOURCES if pattern.search(p.read_text(encoding="utf-8"))}
        assert found == homes, (what, found)


def test_the_folder_listers_share_one_suffix_list():
    import eval.datasets
    import headshot_lab.cli.check
    import headshot_lab.io
    import headshot_lab.train

    suffixes = headshot_lab.io.IMAGE_SUFFIXES
    assert headshot_lab.train.IMAGE_SUFFIXES is suffixes
    assert headshot_lab.cli.check.IMAGE_SUFFIXES is suffixes
    assert eval.datasets.IMAGE_SUFFIXES is suffixes
    assert all(s == s.lower() and s.startswith(".") for s in suffixes)
    registered = Image.registered_extensions()
    optional = {".heic", ".heif", ".avif"}  # Pillow plugins that may be absent
    for suffix in suffixes - optional:
        assert registered[suffix] in headshot_lab.io.ACCEPTED_FORMATS or registered[suffix] == "TIFF", suffix


def test_the_folder_listers_pick_the_same_files(tmp_path):
    from headshot_lab.cli.check import expand_photo_args
    from headshot_lab.train import collect_photos

    names = ["a.JPG", "b.jpeg", "c.png", "d.webp", "e.gif", "f.tiff"]
    for value, name in enumerate(names):
        Image.new("RGB", (300, 300), (value * 30, 90, 120)).save(tmp_path / "tmp.png")
        (tmp_path / "tmp.png").rename(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not a photo", encoding="utf-8")
    (tmp_path / "model.safetensors").write_bytes(b"x")
    listed = [p.name for p in expand_photo_args([str(tmp_path)])]
    assert listed == names
    assert len(collect_photos(tmp_path, min_side=0)) == len(names)  # train once skipped .gif (no longer)


def test_one_canonical_format_name_with_aliases():
    from headshot_lab.export import FORMAT_CHOICES, format_name

    assert FORMAT_CHOICES == ("jpeg", "png", "webp")
    assert [format_name(f) for f in ("jpg", "JPG", ".jpeg", "JPEG", "png", "WebP")] == [
        "jpeg", "jpeg", "jpeg", "jpeg", "png", "webp",
    ]  # fmt: skip
    with pytest.raises(HeadshotLabError):
        format_name("gif")


def test_an_alias_exports_under_the_canonical_name(tmp_path):
    from headshot_lab.export import export_headshots

    pixels = np.full((420, 420, 3), 128, np.uint8)
    result = export_headshots(pixels, tmp_path, ["hires"], format="jpg", face=None)
    (image,) = result.images
    assert image.path.suffix == ".jpg" and image.to_dict()["format"] == "jpeg"


def _parser(module) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    module.register(parser.add_subparsers(dest="command"))
    return parser


def _choices(parser: argparse.ArgumentParser, command: str, option: str):
    sub = parser._subparsers._group_actions[0].choices[command]
    action = next(a for a in sub._actions if option in a.option_strings)
    return action.choices, action.default


def test_command_line_choices_match_the_library_lists():
    """Guards the CLI's copies (``headshot_lab/cli``) against drifting from the library's one definition."""
    from headshot_lab.cli import generate as gen_cli
    from headshot_lab.cli import ship, studio
    from headshot_lab.control import CONTROL_KINDS
    from headshot_lab.export import CROP_NAMES, FORMAT_CHOICES, format_name
    from headshot_lab.generate import ATTENTION_MODES, OFFLOAD_MODES
    from headshot_lab.models import FAMILIES, PRECISIONS
    from headshot_lab.provenance import DISCLOSURES
    from headshot_lab.train import MIXED_PRECISIONS

    assert ship.CROP_CHOICES == CROP_NAMES and ship.FORMAT_CHOICES == FORMAT_CHOICES
    ship_parser, gen_parser, studio_parser = _parser(ship), _parser(gen_cli), _parser(studio)
    assert tuple(_choices(ship_parser, "export", "--kind")[0]) == tuple(DISCLOSURES)
    assert tuple(_choices(gen_parser, "train", "--mixed-precision")[0]) == MIXED_PRECISIONS
    assert tuple(_choices(gen_parser, "generate", "--precision")[0]) == PRECISIONS
    assert tuple(_choices(gen_parser, "generate", "--attention")[0]) == ATTENTION_MODES
    assert tuple(_choices(gen_parser, "generate", "--cpu-offload")[0]) == OFFLOAD_MODES
    assert tuple(_choices(gen_parser, "generate", "--control-kind")[0]) == CONTROL_KINDS
    from headshot_lab.testing.tiny import ARCHES

    assert tuple(_choices(gen_parser, "tiny-model", "--arch")[0]) == ARCHES
    assert set(FAMILIES) <= set(ARCHES)  # every family has a tiny model (FLUX two: schnell- and dev-like)
    from headshot_lab.train_flux import WEIGHTING_SCHEMES

    assert tuple(_choices(gen_parser, "train", "--weighting-scheme")[0]) == WEIGHTING_SCHEMES
    studio_formats = _choices(studio_parser, "retouch", "--format")[0]
    assert {format_name(f) for f in studio_formats} == set(FORMAT_CHOICES)  # "jpg" there is the alias
    defaults = TrainConfig()
    for option, field in [("--steps", "steps"), ("--rank", "rank"), ("--lr", "learning_rate"), ("--seed", "seed"),
                          ("--token", "token"), ("--class-noun", "class_noun"),
                          ("--num-class-images", "num_class_images"), ("--checkpoint-every", "checkpoint_every"),
                          ("--mixed-precision", "mixed_precision"), ("--resolution", "resolution"),
                          ("--weighting-scheme", "weighting_scheme"), ("--flux-guidance", "guidance_scale")]:  # fmt: skip
        assert _choices(gen_parser, "train", option)[1] == getattr(defaults, field), option


def test_options_records_match_asdict_for_the_generator():
    """The manifest's option blocks are ``asdict`` of the options (the control image excepted)."""
    from headshot_lab.generate import CONTROL_NOT_IN_MANIFEST

    speed, faceid = SpeedOptions(batch_size=2), FaceIDOptions(scale=0.5)
    control = ControlOptions(model="m", image=Image.new("RGB", (4, 4)))
    assert config_record(speed) == dataclasses.asdict(speed)
    assert config_record(faceid) == dataclasses.asdict(faceid)
    assert config_record(control, CONTROL_NOT_IN_MANIFEST) == {
        "model": "m", "kind": "face", "scale": 0.8, "annotators": "lllyasviel/Annotators", "subfolder": None,
    }  # fmt: skip
