"""Offline studio retouch (headshot_lab.retouch) on the real photos, plus the ``retouch`` CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from headshot_lab.errors import HeadshotLabError
from headshot_lab.retouch import (
    BUILTIN_BACKDROPS,
    Backdrop,
    estimate_foreground,
    guided_filter,
    resolve_backdrop,
    retouch,
)

PHOTOS = ("obama", "biden", "astronaut")


@pytest.fixture(scope="module")
def retouched(load_real):
    """``{name: (original, RetouchResult)}`` with the corporate style (a gradient backdrop)."""
    return {name: (load_real(name), retouch(load_real(name), "corporate")) for name in PHOTOS}


def _far_from_person(alpha: np.ndarray, distance: float = 20.0) -> np.ndarray:
    import cv2

    return cv2.distanceTransform((alpha <= 0).astype(np.uint8), cv2.DIST_L2, 5) > distance


@pytest.mark.parametrize("name", PHOTOS)
def test_skin_tone_is_kept_within_one_degree_ita(retouched, name):
    from headshot_lab.skin import measure_skin

    original, result = retouched[name]
    assert result.skin_before is not None and result.skin_after is not None
    assert abs(result.delta_ita) <= 1.0, f"{name}: ΔITA {result.delta_ita:+.2f}°"
    # On the input's own skin pixels the change is just as small.
    same_pixels = result.skin_after.ita - result.skin_before.ita
    assert result.steps["delta_ita_same_pixels"] == pytest.approx(same_pixels, abs=1e-3)
    assert abs(same_pixels) <= 1.0, f"{name}: ΔITA on the same pixels {same_pixels:+.2f}°"
    # An independent measurement (its own mesh and skin mask on the output) agrees.
    independent = measure_skin(result.image).ita - measure_skin(original).ita
    assert abs(independent) <= 1.0, f"{name}: independent ΔITA {independent:+.2f}°"


@pytest.mark.parametrize("name", PHOTOS)
def test_background_far_from_the_person_is_the_style_backdrop(retouched, name):
    original, result = retouched[name]
    far = _far_from_person(result.mask)
    assert far.mean() > 0.1  # there is background to replace
    expected = result.backdrop.render(*original.shape[:2])
    assert np.array_equal(result.image[far], expected[far])
    assert not np.array_equal(original[far], expected[far])  # it really changed


@pytest.mark.parametrize("name", PHOTOS)
def test_person_pixels_are_largely_unchanged(retouched, name):
    original, result = retouched[name]
    solid = result.mask >= 1.0
    assert solid.mean() > 0.1
    difference = np.abs(result.image.astype(np.int16) - original.astype(np.int16)).max(axis=-1)[solid]
    assert difference.mean() < 6.0
    assert np.percentile(difference, 99) <= 20


@pytest.mark.parametrize("name", PHOTOS)
def test_the_face_is_inside_the_matte(retouched, name):
    from headshot_lab.skin import skin_mask

    original, result = retouched[name]
    skin = skin_mask(original)
    assert skin.sum() > 1000
    assert (result.mask[skin] >= 1.0).mean() > 0.99


def test_result_is_labelled_as_a_retouch_not_a_generated_headshot(retouched):
    _, result = retouched["obama"]
    assert result.kind == "retouched"
    assert result.digital_source_type == "compositeWithTrainedAlgorithmicMedia"
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["kind"] == "retouched" and summary["style"] == "corporate"
    assert summary["digital_source_type"] == "compositeWithTrainedAlgorithmicMedia"
    assert abs(summary["delta_ita"]) <= 1.0


def test_gradient_backdrop_runs_top_to_bottom(retouched):
    original, result = retouched["astronaut"]
    backdrop = result.backdrop
    assert backdrop.gradient_to is not None and backdrop.gradient_to != backdrop.color
    render = backdrop.render(*original.shape[:2])
    assert tuple(render[0, 0]) == backdrop.color
    assert tuple(render[-1, -1]) == backdrop.gradient_to
    assert np.all(render == render[:, :1])  # constant along each row


def test_builtin_backdrops_agree_with_the_style_presets():
    from headshot_lab.styles import load_style

    for name, builtin in BUILTIN_BACKDROPS.items():
        style = load_style(name)
        assert tuple(style.backdrop.color) == builtin.color, name
        gradient = tuple(style.backdrop.gradient_to) if style.backdrop.gradient_to is not None else None
        assert gradient == (builtin.gradient_to if builtin.gradient_to is not None else None), name
        # Same colours row by row as the style module's own gradient formula.
        rendered = builtin.render(97, 3)[:, 0]
        assert [tuple(int(v) for v in row) for row in rendered] == [tuple(r) for r in style.backdrop.gradient(97)]
        assert resolve_backdrop(name) == (name, builtin)


def test_unknown_style_is_a_clear_error():
    with pytest.raises(HeadshotLabError) as info:
        resolve_backdrop("disco")
    assert info.value.code in {"unknown_style", "bad_style"} and "disco" in info.value.message


def test_a_custom_backdrop_mapping_and_bad_colours():
    name, backdrop = resolve_backdrop({"color": "#102030"})
    assert name == "custom" and backdrop == Backdrop((16, 32, 48))
    with pytest.raises(HeadshotLabError) as info:
        resolve_backdrop({"color": [300, 0, 0]})
    assert info.value.code == "bad_style"


def test_no_person_is_a_clear_error():
    empty_room = np.zeros((256, 256, 3), dtype=np.uint8)
    empty_room[:] = (180, 170, 160)
    with pytest.raises(HeadshotLabError) as info:
        retouch(empty_room, "corporate")
    assert info.value.code == "no_person"


def test_without_light_and_white_balance_the_person_is_untouched(load_real):
    photo = load_real("astronaut")
    result = retouch(photo, "team", light=0.0, white_balance=False)
    solid = result.mask >= 1.0
    assert np.array_equal(result.image[solid], photo[solid])
    assert abs(result.steps["delta_ita_same_pixels"]) < 0.05  # the person's own pixels: no change at all
    # the reported shift re-detects the face on a new backdrop (its own mask), so it moves a little
    assert abs(result.delta_ita) < 1.0


def test_even_light_reduces_a_lighting_gradient_across_the_face(load_real):
    """Darken one side of the face, then check the retouch narrows the left/right gap without moving ITA."""
    from headshot_lab.skin import lab_to_rgb, rgb_to_lab, skin_mask

    photo = load_real("astronaut")
    mask = skin_mask(photo)
    _, xs = np.nonzero(mask)
    centre = int(np.median(xs))
    lab = rgb_to_lab(photo)
    ramp = np.clip((np.arange(photo.shape[1]) - xs.min()) / max(xs.max() - xs.min(), 1), 0, 1)
    lab[..., 0] *= 0.75 + 0.25 * ramp[None, :]  # the image-left side of the face up to 25 % darker
    side_lit = lab_to_rgb(lab)
    result = retouch(side_lit, "corporate", light=0.6)

    def gap(image: np.ndarray) -> float:
        lightness = rgb_to_lab(image)[..., 0]
        left, right = (
            mask & (np.arange(photo.shape[1])[None, :] < centre),
            mask & (np.arange(photo.shape[1])[None, :] >= centre),
        )
        return float(np.median(lightness[right]) - np.median(lightness[left]))

    assert gap(result.image) < 0.8 * gap(side_lit)
    assert abs(result.delta_ita) <= 1.0
    assert result.steps["light"]["max_change_L"] > 1.0


def _transition_width(row: np.ndarray) -> int:
    """Pixels between the 10 % and 90 % crossings of a rising edge."""
    return int(np.argmax(row >= 0.9) - np.argmax(row >= 0.1))


@pytest.mark.parametrize("contrib", [True, False], ids=["ximgproc", "fallback"])
def test_guided_filter_keeps_edges_that_the_photo_has(monkeypatch, contrib):
    import cv2

    if not contrib:
        monkeypatch.delattr(cv2, "ximgproc", raising=False)  # as without opencv-contrib
    mask = np.zeros((64, 64), dtype=np.float32)
    mask[:, 32:] = 1.0
    edged = np.zeros((64, 64, 3), dtype=np.float32)
    edged[:, 32:] = 1.0  # the photo has an edge where the mask has one
    flat = np.full((64, 64, 3), 0.5, dtype=np.float32)  # no edge in the photo
    along_edge = guided_filter(edged, mask, 8, 1e-2)[32]
    no_edge = guided_filter(flat, mask, 8, 1e-2)[32]
    assert _transition_width(along_edge) <= 2
    assert _transition_width(no_edge) >= 8  # feathered like a box blur where the photo gives no guidance


def test_grabcut_pulls_a_loose_mask_onto_the_person():
    import cv2

    from headshot_lab.retouch import grabcut_mask

    rng = np.random.default_rng(0)
    image = np.full((200, 200, 3), (200, 210, 220), dtype=np.uint8)
    cv2.circle(image, (100, 100), 50, (120, 70, 50), -1)
    image = np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)
    truth = np.zeros((200, 200), dtype=np.uint8)
    cv2.circle(truth, (100, 100), 50, 1, -1)
    loose = np.zeros((200, 200), dtype=np.float32)
    cv2.circle(loose, (102, 98), 54, 1.0, -1)  # too big and off-centre, like an upsampled segmentation

    def iou(mask: np.ndarray) -> float:
        mask = mask > 0.5
        return float((mask & (truth > 0)).sum() / (mask | (truth > 0)).sum())

    assert iou(grabcut_mask(image, loose)) > iou(loose) + 0.05


def test_foreground_estimate_removes_the_old_background_colour():
    red, blue = np.array([220.0, 30.0, 30.0]), np.array([30.0, 30.0, 220.0])
    alpha = np.tile(np.clip((np.arange(64) - 20) / 24.0, 0, 1), (64, 1)).astype(np.float32)
    image = (alpha[..., None] * red + (1 - alpha[..., None]) * blue).round().astype(np.uint8)
    foreground = estimate_foreground(image, alpha, radii=(16, 4)) * 255.0
    band = (alpha > 0.2) & (alpha < 0.8)
    before = np.abs(image[band].astype(float) - red).mean()
    after = np.abs(foreground[band] - red).mean()
    assert after < 0.5 * before
    solid = alpha >= 1.0
    assert np.allclose(foreground[solid], image[solid], atol=0.5)


@pytest.fixture()
def studio_cli():
    """``headshot-lab`` main entry point."""
    from headshot_lab.cli import main

    return main


def test_cli_retouch_writes_labelled_images_and_prints_their_paths(tmp_path, real_photos, studio_cli, capsys):
    from pathlib import Path

    from PIL import Image

    from headshot_lab.provenance import read_provenance

    out = tmp_path / "out"
    code = studio_cli(
        ["retouch", str(real_photos["astronaut"]), "--style", "creative", "--out", str(out), "--crop", "square"]
    )
    assert code == 0
    paths = [Path(line) for line in capsys.readouterr().out.split()]
    assert len(paths) == 2 and all(path.is_file() and path.parent == out for path in paths)
    full, square = paths
    assert Image.open(full).size == Image.open(real_photos["astronaut"]).size
    assert Image.open(square).size[0] == Image.open(square).size[1]
    for path in paths:
        provenance = read_provenance(path, c2pa=False)
        assert provenance["kind"] == "retouched"
        assert provenance["digital_source_type"].endswith("compositeWithTrainedAlgorithmicMedia")


def test_cli_retouch_json_and_errors(tmp_path, real_photos, studio_cli, capsys):
    out = tmp_path / "out"
    not_a_photo = tmp_path / "notes.png"
    not_a_photo.write_text("hello")
    code = studio_cli(["retouch", str(real_photos["astronaut"]), str(not_a_photo), "--out", str(out), "--json"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    (output,) = payload["outputs"]
    assert output["retouch"]["kind"] == "retouched" and abs(output["retouch"]["delta_ita"]) <= 1.0
    (error,) = payload["errors"]
    assert error["photo"].endswith("notes.png") and error["code"] and error["fix"]


def test_cli_retouch_unknown_style_exits_1(tmp_path, real_photos, studio_cli, capsys):
    code = studio_cli(["retouch", str(real_photos["astronaut"]), "--style", "disco", "--out", str(tmp_path)])
    assert code == 1
    assert "disco" in capsys.readouterr().err
