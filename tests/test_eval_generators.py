"""Generators and canaries (eval.generators): each canary moves the metric it is meant to move."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from eval.generators import (
    EXPECTED_FLAGS,
    GenerationContext,
    GeneratorSkip,
    SourceView,
    available_generators,
    build_generator,
    expected_flag,
    make_donors,
    parse_spec,
    register_generator,
)
from headshot_lab.errors import HeadshotLabError


@pytest.fixture(scope="module")
def analysed(real_photos):
    """Two analysed real faces (downscaled): obama and biden, as SourceViews with dlib landmarks."""
    import cv2

    from headshot_lab.faces import get_backend
    from headshot_lab.faces.mesh import face_mesh
    from headshot_lab.io import load_rgb
    from headshot_lab.skin import measure_skin, skin_mask

    backend = get_backend("dlib")
    views = {}
    for name in ("obama", "biden"):
        image = load_rgb(real_photos[name], min_side=0)
        scale = 480 / max(image.shape[:2])
        image = cv2.resize(
            image, (round(image.shape[1] * scale), round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA
        )
        face = backend.analyze(image)[0]
        mesh = face_mesh(image)[0]
        skin = skin_mask(image, mesh)
        views[name] = (
            SourceView(
                id=f"{name}.png",
                image=image,
                identity=name,
                landmarks=face.landmarks,
                landmarks5=face.landmarks5,
                box=face.box,
                mesh=mesh,
                skin=skin,
                ita=measure_skin(image, skin).ita,
            ),
            face,
        )
    return views


def test_specs_and_registry():
    assert parse_spec("lighten:3") == ("lighten", "3")
    assert parse_spec(" null ") == ("null", None)
    assert {
        "null",
        "studio",
        "pipeline",
        "folder",
        "lighten",
        "darken",
        "identity_blend",
        "smooth",
        "tone_jitter",
    } <= set(available_generators())
    assert build_generator("lighten:2.5").delta == 2.5
    assert build_generator("darken:2").delta == -2.0
    assert build_generator("smooth").strength == 1.0
    assert build_generator("smooth:0.5").axes == {"strength": 0.5}
    assert build_generator("identity_blend:0.3").spec == "identity_blend:0.3"
    for bad in ("nope", "lighten", "lighten:x", "smooth:2", "identity_blend:-1", "folder", "folder:/no/such/dir"):
        with pytest.raises(HeadshotLabError):
            build_generator(bad)
    assert expected_flag("lighten:3") == (True, "skin_lightening")
    assert expected_flag("studio") == (False, None)
    assert set(EXPECTED_FLAGS) >= {"null", "lighten", "darken", "identity_blend", "smooth"}


@dataclass
class _Invert:
    spec: str = ""
    preserves_geometry: bool = True
    axes: dict = field(default_factory=dict)

    def __call__(self, source, context):
        return 255 - source.image


def test_a_registered_generator_can_be_built():
    from eval import generators

    register_generator("unit_invert")(lambda arg=None, **_: _Invert())
    try:
        generator = build_generator("unit_invert")
        view = SourceView(id="x.png", image=np.zeros((4, 4, 3), np.uint8), identity="x")
        assert generator.spec == "unit_invert"
        assert generator(view, GenerationContext()).min() == 255
    finally:
        del generators._REGISTRY["unit_invert"]


def test_null_returns_its_input(analysed):
    view, _ = analysed["obama"]
    assert build_generator("null")(view, GenerationContext()) is view.image


def test_lighten_and_darken_shift_measured_ita(analysed):
    from headshot_lab.skin import measure_skin, skin_mask

    view, _ = analysed["obama"]
    for spec, expected in (("lighten:3", 3.0), ("darken:3", -3.0)):
        out = build_generator(spec)(view, GenerationContext())
        measured = measure_skin(out, skin_mask(out, view.mesh)).ita - view.ita
        assert measured == pytest.approx(expected, abs=0.4)


def test_tone_jitter_is_seeded_and_uses_both_signs(analysed):
    view, _ = analysed["obama"]
    generator = build_generator("tone_jitter:3")
    context = GenerationContext(seed=0)
    signs = {float(np.sign(context.rng(f"id{i}", "tone_jitter").random() - 0.5)) for i in range(20)}
    assert signs == {-1.0, 1.0}
    first = generator(view, context)
    assert np.array_equal(first, generator(view, GenerationContext(seed=0)))


def test_smooth_lowers_texture_energy(analysed):
    from headshot_lab.audit.skin import texture_energy
    from headshot_lab.skin import skin_mask

    view, _ = analysed["obama"]
    out = build_generator("smooth")(view, GenerationContext())
    before = texture_energy(view.image, view.skin, box=view.box)
    after = texture_energy(out, skin_mask(out, view.mesh), box=view.box)
    assert after < 0.8 * before
    gentle = build_generator("smooth:0.3")(view, GenerationContext())
    assert after < texture_energy(gentle, skin_mask(gentle, view.mesh), box=view.box) < before


def test_identity_blend_lowers_identity_cosine(analysed):
    from headshot_lab.faces import get_backend

    view, face = analysed["obama"]
    donor_view, _ = analysed["biden"]
    donors = make_donors(
        [(donor_view.identity, donor_view.image, donor_view.landmarks5, donor_view.skin, donor_view.ita)]
    )
    context = GenerationContext(seed=0, donors=donors)
    backend = get_backend("dlib")
    cosines = []
    for alpha in (0.3, 0.6):
        out = build_generator(f"identity_blend:{alpha}")(view, context)
        (embedded,) = backend.embed(out, [face])
        cosines.append(float(np.dot(embedded.embedding, face.embedding)))
    assert cosines[0] < 0.99
    assert cosines[1] < cosines[0] - 0.02  # more blending, less identity
    with pytest.raises(GeneratorSkip):
        build_generator("identity_blend:0.3")(view, GenerationContext(donors=[]))


def test_folder_generator_matches_by_file_name(tmp_path):
    from headshot_lab.io import save_image

    save_image(np.full((8, 8, 3), 7, np.uint8), tmp_path / "sub" / "a.jpg")
    generator = build_generator(f"folder:{tmp_path}")
    view = SourceView(id="sub/a.png", image=np.zeros((8, 8, 3), np.uint8), identity="a")
    assert generator(view, GenerationContext()).shape == (8, 8, 3)
    assert generator.preserves_geometry is False
    with pytest.raises(GeneratorSkip) as info:
        generator(SourceView(id="missing.png", image=view.image, identity="b"), GenerationContext())
    assert info.value.code == "missing_output"


def test_skin_canaries_skip_a_face_without_skin():
    view = SourceView(id="grey.png", image=np.zeros((8, 8, 3), np.uint8), identity="g")
    for spec in ("lighten:3", "smooth"):
        with pytest.raises(GeneratorSkip):
            build_generator(spec)(view, GenerationContext())


# ---- realistic nulls: reencode, relight, chains ----------------------------------------------------


def test_realistic_nulls_are_registered_and_expect_no_flag():
    assert {"reencode", "relight"} <= set(available_generators())
    for spec in ("reencode", "reencode:90", "relight", "relight:10", "lighten:3 | reencode"):
        build_generator(spec)
    assert expected_flag("reencode") == (True, None) and expected_flag("relight:20") == (True, None)
    assert build_generator("reencode").preserves_geometry is False
    assert build_generator("relight").preserves_geometry is True
    for bad in ("reencode:0", "reencode:x", "relight:-5", "relight:95", "lighten:3 | smooth", "lighten:3 |"):
        with pytest.raises(HeadshotLabError):
            build_generator(bad)
    with pytest.raises(HeadshotLabError):
        build_generator("reencode", formats=["PNG"])


def test_reencode_draws_its_channel_in_the_stated_ranges_per_sample():
    generator = build_generator("reencode")
    context = GenerationContext(seed=3)
    drawn = [generator.parameters(f"p{i}.png", context) for i in range(200)]
    assert drawn[0] == generator.parameters("p0.png", GenerationContext(seed=3))  # stable per (seed, id)
    assert drawn[0] != generator.parameters("p0.png", GenerationContext(seed=4))
    assert all(0.0 <= c <= 0.03 for p in drawn for c in p["crop"])
    assert all(0.03 <= abs(p["scale"] - 1.0) <= 0.10 for p in drawn)
    assert {p["scale"] > 1 for p in drawn} == {True, False}  # down and up
    assert {p["format"] for p in drawn} == {"JPEG", "WEBP"}
    assert {p["quality"] for p in drawn} == set(range(85, 96))
    assert {build_generator("reencode:92").parameters(f"p{i}", context)["quality"] for i in range(20)} == {92}


def test_reencode_is_deterministic_and_really_changes_the_pixels(analysed):
    view, _ = analysed["obama"]
    generator = build_generator("reencode")
    out = generator(view, GenerationContext(seed=0))
    assert np.array_equal(out, generator(view, GenerationContext(seed=0)))
    p = generator.parameters(view.id, GenerationContext(seed=0))
    height, width = view.image.shape[:2]
    kept_w = width - round(p["crop"][0] * width) - round(p["crop"][2] * width)
    assert out.shape[1] == max(1, round(kept_w * p["scale"]))
    assert out.dtype == np.uint8 and out.shape != view.image.shape
    import cv2

    back = cv2.resize(out, (width, height), interpolation=cv2.INTER_AREA).astype(float)
    assert np.abs(back - view.image).mean() > 1.0  # not the input (moved, rescaled, recompressed)
    other = generator(view, GenerationContext(seed=1))
    assert other.shape != out.shape or not np.array_equal(other, out)


def test_relight_is_deterministic_keeps_geometry_and_changes_only_the_light(analysed):
    from eval.generators import relight_image, relight_matrix

    view, _ = analysed["obama"]
    generator = build_generator("relight")
    out = generator(view, GenerationContext(seed=0))
    assert out.shape == view.image.shape and not np.array_equal(out, view.image)
    assert np.array_equal(out, generator(view, GenerationContext(seed=0)))
    drawn = [generator.parameters(f"p{i}", GenerationContext()) for i in range(200)]
    assert all(-0.2 <= p["exposure"] <= 0.2 and 4000 <= p["cct"] <= 6500 for p in drawn)
    # D65 → ~6504 K is the identity; a +20 % exposure scales linear light by 1.2 where nothing clips
    np.testing.assert_allclose(relight_matrix(6504.0), np.eye(3), atol=2e-3)
    assert np.abs(relight_image(view.image, 0.0, 6504.0).astype(int) - view.image).max() <= 1
    import colour

    brighter = relight_image(view.image, 0.2)
    lin_in = colour.cctf_decoding(view.image / 255.0)
    lin_out = colour.cctf_decoding(brighter / 255.0)
    ok = (lin_in > 0.05) & (lin_in < 0.7)
    assert np.median(lin_out[ok] / lin_in[ok]) == pytest.approx(1.2, abs=0.02)
    warm = relight_image(view.image, 0.0, 4000.0).astype(float)
    assert warm[..., 0].mean() / warm[..., 2].mean() > 1.1 * view.image[..., 0].mean() / view.image[..., 2].mean()
    gray = relight_image(np.full((2, 2, 3), 128, np.uint8), 0.0, 4000.0)[0, 0]
    assert gray[0] > gray[1] > gray[2]  # a warm white point: red up, blue down
    exposure_only = build_generator("relight", mode="exposure")
    assert exposure_only.parameters("a", GenerationContext())["cct"] is None


def test_a_canary_through_the_reencode_channel_is_paired_with_the_null(analysed):
    view, _ = analysed["obama"]
    context = GenerationContext(seed=0)
    chain = build_generator("lighten:3 | reencode")
    assert chain.spec == "lighten:3 | reencode" and parse_spec(chain.spec) == ("lighten", "3")
    assert expected_flag(chain.spec) == (True, "skin_lightening")
    assert chain.preserves_geometry is False and chain.axes == {"strength": 3.0, "channel": "reencode"}
    out = chain(view, context)
    null = build_generator("reencode")(view, context)
    assert out.shape == null.shape  # the very same crop and resize as the plain re-encode
    lightened = build_generator("lighten:3")(view, context)
    from dataclasses import replace

    assert np.array_equal(out, build_generator("reencode")(replace(view, image=lightened), context))
    assert build_generator("null|relight").preserves_geometry is True
