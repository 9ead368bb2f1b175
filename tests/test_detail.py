"""Face-detail pass: tiny models on real photos; geometry, seams, replay, bad inputs, and the audit's canaries."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from headshot_lab.detail import (
    DetailOptions,
    blend,
    colour_match,
    crop_square,
    detail_faces,
    feather_mask,
    measure_detail,
)
from headshot_lab.errors import HeadshotLabError

pytestmark = pytest.mark.usefixtures("torch_one_thread")
STEPS = 4


@pytest.fixture(scope="module")
def sd15(tiny_sd15_pipe):
    return tiny_sd15_pipe


def small(load_real, name: str, side: int = 384) -> np.ndarray:
    from headshot_lab.analysis import downscale

    return downscale(load_real(name), side)[0]


def outside_mask(shape: tuple[int, int], faces, options: DetailOptions) -> np.ndarray:
    """``True`` where every face's feathered weight is 0 (the pixels the pass must not touch)."""
    height, width = shape
    keep = np.ones(shape, bool)
    for face in faces:
        x0, y0, x1, y1 = face.crop
        weights, _ = feather_mask(face.box, face.crop, (width, height), options.margin, options.feather)
        keep[y0:y1, x0:x1] &= weights == 0
    return keep


# ------------------------------------------------------------------------------------------- pieces
def test_crop_is_square_inside_the_image_and_mask_is_zero_at_inner_crop_edges():
    crop = crop_square((10, 10, 50, 60), (200, 100), margin=0.35)
    x0, y0, x1, y1 = crop
    assert x1 - x0 == y1 - y0 == 85  # 50 px face height × (1 + 2 · 0.35), shifted inside (x0 = y0 = 0)
    assert x0 == 0 and y0 == 0 and y1 <= 100
    weights, feather_px = feather_mask((10, 10, 50, 60), crop, (200, 100), 0.35, 0.12)
    assert weights.max() == 1.0 and weights.min() == 0.0
    assert feather_px == pytest.approx(0.12 * 85)
    assert not weights[:, -1].any()  # the right crop edge lies inside the image: no step there
    # a box much larger than the image: the crop shrinks to the shorter side
    assert crop_square((0, 0, 300, 300), (120, 80), 0.35) == (40, 0, 120, 80)  # centred as far as it can be


def test_colour_match_removes_a_known_lab_offset_in_the_band():
    from headshot_lab.skin import lab_to_rgb, rgb_to_lab

    rng = np.random.default_rng(0)
    original = rng.integers(60, 200, (40, 40, 3), dtype=np.uint8)
    lab = rgb_to_lab(original)
    drifted = lab_to_rgb(lab + np.array([6.0, -3.0, 4.0]))
    band = np.zeros((40, 40), bool)
    band[:, :10] = True
    matched, shift = colour_match(original, drifted, band)
    assert shift == pytest.approx([-6.0, 3.0, -4.0], abs=0.6)
    error = np.abs(rgb_to_lab(matched)[band] - lab[band]).mean(axis=0)
    assert (error < 1.0).all()  # only the uint8 round trips are left
    assert colour_match(original, drifted, np.zeros((40, 40), bool))[1] is None  # too few band pixels


def test_blend_keeps_zero_weight_pixels_exactly():
    original = np.full((8, 8, 3), 100, np.uint8)
    new = np.full((8, 8, 3), 200, np.uint8)
    weights = np.zeros((8, 8))
    weights[2:6, 2:6] = 1.0
    weights[2, 2] = 1e-12  # tiny but not zero: may round to the original, never leaks beyond its pixel
    out = blend(original, new, weights)
    assert (out[weights == 0] == 100).all() and (out[3:6, 3:6] == 200).all()


# ------------------------------------------------------------------------------------------- on tiny models
def test_detail_pass_changes_only_the_face_region_and_replays_bit_exactly(sd15, load_real):
    image = small(load_real, "obama")
    options = DetailOptions(steps=STEPS)
    result = detail_faces(image, sd15, prompt="photo of a person", strength=0.35, seed=5, options=options)
    out = np.asarray(result.image)
    assert out.shape == image.shape and len(result.faces) == 1 and not result.notes
    face = result.faces[0]
    assert face.render_size == 64 and face.seed == 5  # the tiny base's native size
    keep = outside_mask(image.shape[:2], result.faces, options)
    assert (out[keep] == image[keep]).all()  # outside the feathered mask: the input's pixels, bit for bit
    assert (out[~keep] != image[~keep]).mean() > 0.5  # and inside, the face was redrawn
    record = result.record()
    assert record["options"]["strength"] == 0.35 and record["options"]["margin"] == 0.35
    assert record["faces"][0]["crop"] == face.crop and record["faces"][0]["feather_px"] > 0
    again = detail_faces(
        image, sd15, prompt="photo of a person", strength=0.35, seed=5, options=options, faces=record["faces"]
    )
    assert np.array_equal(np.asarray(again.image), out)
    other_seed = detail_faces(image, sd15, prompt="photo of a person", strength=0.35, seed=6, options=options)
    assert not np.array_equal(np.asarray(other_seed.image), out)


def test_inpaint_method_also_keeps_the_outside(sd15, load_real):
    image = small(load_real, "obama2", 320)
    options = DetailOptions(steps=STEPS, method="inpaint")
    result = detail_faces(image, sd15, prompt="photo of a person", strength=0.5, seed=1, options=options)
    keep = outside_mask(image.shape[:2], result.faces, options)
    out = np.asarray(result.image)
    assert len(result.faces) >= 1 and (out[keep] == image[keep]).all() and (out[~keep] != image[~keep]).any()


def test_no_face_and_tiny_image_are_left_unchanged_with_a_note(sd15):
    grey = np.full((128, 128, 3), 128, np.uint8)
    result = detail_faces(grey, sd15, prompt="x", options=DetailOptions(steps=STEPS))
    assert np.array_equal(np.asarray(result.image), grey) and not result.faces and not result.changed
    assert "No face was found" in result.notes[0]
    tiny = np.full((16, 16, 3), 90, np.uint8)
    result = detail_faces(tiny, sd15, prompt="x", options=DetailOptions(steps=STEPS))
    assert np.array_equal(np.asarray(result.image), tiny) and "too small" in result.notes[0]


def test_many_faces_each_detailed_up_to_the_cap(sd15, load_real):
    image = small(load_real, "group", 640)
    options = DetailOptions(steps=STEPS, max_faces=2)
    result = detail_faces(image, sd15, prompt="photo of people", seed=0, options=options)
    assert len(result.faces) == 2 and [f.seed for f in result.faces] == [0, 1]
    assert "only the 2 largest" in result.notes[0]
    out = np.asarray(result.image)
    for face in result.faces:  # every capped face was redrawn
        x0, y0, x1, y1 = face.crop
        assert (out[y0:y1, x0:x1] != image[y0:y1, x0:x1]).any()
    keep = outside_mask(image.shape[:2], result.faces, options)
    assert (out[keep] == image[keep]).all()


def test_bad_options_and_too_few_steps_say_what_to_do(sd15, load_real):
    with pytest.raises(HeadshotLabError, match="strength must be in"):
        detail_faces(np.zeros((64, 64, 3), np.uint8), sd15, strength=1.5)
    with pytest.raises(HeadshotLabError, match="method must be one of"):
        DetailOptions(method="paint").validate()
    with pytest.raises(HeadshotLabError, match="no denoising step") as caught:
        detail_faces(small(load_real, "obama", 256), sd15, strength=0.2, options=DetailOptions(steps=2))
    assert "at least 5 steps" in caught.value.fix


# ------------------------------------------------------------------------------------------- identity and skin
class ReencodeRenderer:
    """An identity-preserving stand-in for a real model's pass: the crop re-encoded as JPEG (q 90) at 512 px.

    A tiny random VAE cannot reconstruct a face at all (its output is noise), so the realistic-null question
    — does a pass that keeps the face trip the audit? — needs a pass that keeps the face: resize to the native
    size, JPEG, resize back, feathered blend and colour match, exactly the detail pass's own channel.
    """

    native_size = 512

    def render_crop(self, crop, *, seed, mask, strength):
        from headshot_lab.skin import jpeg_roundtrip

        return Image.fromarray(jpeg_roundtrip(np.asarray(crop), 90))


class LighteningRenderer(ReencodeRenderer):
    """The canary: the same pass with the face centre's skin made ``delta`` ° ITA lighter inside the render."""

    def __init__(self, delta: float = 5.0) -> None:
        self.delta = delta

    def render_crop(self, crop, *, seed, mask, strength):
        from headshot_lab.skin import shift_ita

        size = self.native_size
        ys, xs = np.mgrid[0:size, 0:size]
        centre = ((xs - size / 2) ** 2 + (ys - size / 2) ** 2) < (0.3 * size) ** 2
        return Image.fromarray(
            shift_ita(
                np.asarray(super().render_crop(crop, seed=seed, mask=mask, strength=strength)), centre, self.delta
            )
        )


PEOPLE = ("obama", "obama2", "biden", "tom_hanks", "astronaut")


def test_audit_flags_a_lightening_pass_and_not_an_identity_preserving_one(load_real):
    """Before/after pairs audited as the audit audits a retouch (paired: output against its source).

    Null: the re-encoding pass must not raise ``skin_lightening``/``identity_drift``; canary: the planted
    +5° lightening inside the pass must raise ``skin_lightening``.
    """
    from headshot_lab.audit.batch import audit_batch

    befores = {name: small(load_real, name, 448) for name in PEOPLE}
    outputs: dict[str, dict[str, np.ndarray]] = {"null": {}, "lighten": {}}
    for name, image in befores.items():
        for kind, renderer in (("null", ReencodeRenderer()), ("lighten", LighteningRenderer(5.0))):
            result = detail_faces(image, renderer, seed=0)
            assert len(result.faces) >= 1, name
            outputs[kind][f"{name}-after"] = np.asarray(result.image)
    sources = {f"{name}-after": name for name in PEOPLE}
    null = audit_batch(befores, outputs["null"], sources=sources, n_resamples=400)
    canary = audit_batch(befores, outputs["lighten"], sources=sources, n_resamples=400)
    assert "skin_lightening" not in null.flags and "identity_drift" not in null.flags, null.flags
    assert "skin_lightening" in canary.flags, canary.flags


def test_measure_detail_reports_identity_and_skin_before_and_after(load_real):
    image = small(load_real, "obama", 448)
    kept = detail_faces(image, ReencodeRenderer(), measure=True, references=[small(load_real, "obama2", 448)])
    m = kept.measures
    assert m is not None and m["encoder"]
    assert m["identity_after_vs_before"] > 0.95  # same face, re-encoded
    assert abs(m["identity_after"] - m["identity_before"]) < 0.05 and m["identity_before"] > 0.8
    assert abs(m["delta_ita"]) < 1.0 and m["ita_before"] is not None
    lighter = measure_detail(image, np.asarray(detail_faces(image, LighteningRenderer(6.0)).image))
    assert lighter["delta_ita"] > 2.0  # the planted lightening reads as lighter skin


def test_selection_scores_carry_the_before_and_after(load_real):
    from headshot_lab.select import select_candidates

    image = small(load_real, "obama", 448)
    result = detail_faces(image, ReencodeRenderer(), measure=True)
    refs = [small(load_real, name, 448) for name in ("obama2", "obama3")]
    selection = select_candidates({"after": np.asarray(result.image)}, refs, detail={"after": result.record()})
    scores = selection.candidates[0].scores
    assert scores["detail_faces"] == 1 and scores["detail_strength"] == 0.4
    assert scores["detail_delta_ita"] == result.measures["delta_ita"]
    assert scores["detail_identity_after_vs_before"] > 0.95


def test_app_status_words_for_refined_faces():
    from headshot_lab.ui.actions import refined_words

    assert refined_words([{"detail": None}]) == ""
    assert "no face was found" in refined_words([{"detail": {"faces": [], "measures": None}}])
    record = {"detail": {"faces": [{}], "measures": {"delta_ita": -0.4, "identity_after_vs_before": 0.97}}}
    words = refined_words([record, record])
    assert "2 face(s) were redrawn" in words and "0.97" in words and "-0.4° (darker" in words


def test_pass_uses_the_same_identity_lora_and_faceid_embedding(tiny_bases, load_real, tmp_path):
    """``from_pipe`` shares the UNet: the identity LoRA and the FaceID layers on it take part in the pass."""
    from headshot_lab.generate import FaceIDOptions, HeadshotGenerator, Identity
    from headshot_lab.testing.tiny import tiny_ip_adapter_faceid, tiny_lora

    base = str(tiny_bases["sd15"])
    image = small(load_real, "obama", 320)
    options = DetailOptions(steps=STEPS)
    plain = HeadshotGenerator(base, progress=False)
    face = detail_faces(image, plain, prompt="photo of sks person", seed=2, options=options).record()["faces"]

    def run(generator, **kwargs):
        result = detail_faces(
            image, generator, prompt="photo of sks person", seed=2, options=options, faces=face, **kwargs
        )
        return np.asarray(result.image)

    without = run(plain)
    lora = tiny_lora(base, tmp_path / "lora", std=0.5)
    plain.attach_identity(Identity(lora=lora))
    with_lora = run(plain)
    assert not np.array_equal(with_lora, without)
    plain.attach_identity(Identity())  # the LoRA off again: the pass is the base's once more
    assert np.array_equal(run(plain), without)
    weights = tiny_ip_adapter_faceid(base, tmp_path / "faceid")
    faceid = HeadshotGenerator(base, faceid=FaceIDOptions(str(weights.parent), weights.name, scale=1.0), progress=False)
    embedding = np.random.default_rng(0).standard_normal(512).astype(np.float32)
    assert not np.array_equal(run(faceid, identity=embedding), run(faceid, identity=-embedding))
