"""Single-photo identity engines on the tiny models: IP-Adapter-FaceID-Plus / PlusV2 and InstantID.

Random weights in the published key layouts (``headshot_lab.testing.tiny``): each engine generates on the CPU, its
identity input reaches the model (another embedding, face crop or keypoint layout changes the image; IdentityNet's
cross-attention reads the face tokens, not the text), a manifest line regenerates bit-exactly, and the refusals
(SD1.5 for InstantID, missing weights, impossible variants) say what to do before anything heavy loads.
"""

from __future__ import annotations

import numpy as np
import pytest

import headshot_lab.faces as faces
import headshot_lab.models as models
from headshot_lab.errors import HeadshotLabError, ModelUnavailableError
from headshot_lab.faceid_plus import FaceClipHook, FaceIDPlusError
from headshot_lab.faces import Face
from headshot_lab.generate import FaceIDOptions, HeadshotGenerator, Identity, faceid_weight_name, regenerate
from headshot_lab.instantid import InstantIDError, InstantIDOptions, draw_kps, face_tokens
from headshot_lab.testing.tiny import (
    tiny_clip_image_encoder,
    tiny_instantid,
    tiny_ip_adapter_faceid,
    tiny_ip_adapter_faceid_plus,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")
STEPS = 2
#: Five points of a face in a 64 px selfie (image-left eye first), and the same face moved and turned.
KPS = np.array([[22, 26], [42, 26], [32, 36], [24, 46], [40, 46]], np.float32)
KPS_MOVED = np.array([[10, 14], [26, 18], [16, 26], [9, 34], [23, 37]], np.float32)


def unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(512).astype(np.float32)
    return vector / np.linalg.norm(vector)


def selfie(seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random((64, 64, 3)) * 255).astype(np.uint8)


@pytest.fixture
def fake_arcface(monkeypatch):
    """An ``insightface`` backend stand-in: the largest face has :data:`KPS` (or ``kps[id(image)]``) and the
    embedding ``unit(1)`` (or ``embeddings[id(image)]``)."""
    state: dict[str, dict[int, np.ndarray]] = {"kps": {}, "embeddings": {}}

    class FakeArcFace:
        def detect(self, image):
            return [Face(box=(0, 0, 60, 60), landmarks5=state["kps"].get(id(image), KPS), backend="insightface")]

        def analyze(self, image):
            [face] = self.detect(image)
            face.embedding = state["embeddings"].get(id(image), unit(1))
            return [face]

    monkeypatch.setattr(faces, "get_backend", lambda name=None, **options: FakeArcFace())
    return state


def pixels_of(path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


# ------------------------------------------------------------------------------------------- FaceID-Plus
@pytest.fixture(scope="module")
def plus_weights(tiny_bases, tmp_path_factory):
    root = tmp_path_factory.mktemp("plus")
    return {
        "clip": tiny_clip_image_encoder(root / "clip"),
        **{family: tiny_ip_adapter_faceid_plus(tiny_bases[family], root / family) for family in ("sd15", "sdxl")},
    }


@pytest.fixture(scope="module")
def plus_generators(tiny_bases, plus_weights):
    def build(family: str, **options) -> HeadshotGenerator:
        weights = plus_weights[family]
        faceid = FaceIDOptions(
            str(weights.parent), weights.name, scale=1.0, clip_encoder=str(plus_weights["clip"]), **options
        )
        return HeadshotGenerator(str(tiny_bases[family]), faceid=faceid, progress=False)

    return build


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_faceid_plusv2_generates_and_the_face_crop_and_embedding_reach_the_model(
    plus_generators, plus_weights, fake_arcface, family, tmp_path
):
    generator = plus_generators(family)
    photo, other_photo = selfie(0), selfie(1)

    def shot(folder, picture, embedding=None):
        identity = Identity(selfie=picture, face_embedding=embedding)
        return generator(identity, "corporate", n=1, seed=3, out_dir=tmp_path / folder, steps=STEPS)

    base, other_face, other_id = shot("a", photo), shot("b", other_photo), shot("c", photo, unit(2))
    image = pixels_of(base.images[0])
    assert not np.array_equal(image, pixels_of(other_face.images[0])), "the CLIP features of the crop are unused"
    assert not np.array_equal(image, pixels_of(other_id.images[0])), "the ArcFace embedding is unused"
    projection = generator.pipe.unet.encoder_hid_proj.image_projection_layers[0]
    assert type(projection).__name__ == "IPAdapterFaceIDPlusImageProjection" and projection.shortcut is True
    record = base.records[0]
    assert record["engine"] == "faceid-plusv2" and record["faceid"]["variant"] == "plusv2"
    assert record["faceid"]["clip_encoder"] == str(plus_weights["clip"])
    assert record["faceid"]["weight_name"].endswith(".safetensors")
    clip = np.load(tmp_path / "a" / record["faceid"]["clip_file"])
    assert clip.shape == (2, 17, 32) and not np.array_equal(clip[0], clip[1])  # C(0) and C(crop)
    np.testing.assert_array_equal(np.asarray(regenerate(record, root=tmp_path / "a")), image)


def test_faceid_plus_v1_keeps_the_shortcut_off_and_needs_a_selfie(plus_generators, fake_arcface, tmp_path):
    generator = plus_generators("sd15", variant="plus")
    result = generator(Identity(selfie=selfie(0)), "corporate", n=1, seed=3, out_dir=tmp_path, steps=STEPS)
    assert result.records[0]["engine"] == "faceid-plus"
    assert generator.pipe.unet.encoder_hid_proj.image_projection_layers[0].shortcut is False
    with pytest.raises(FaceIDPlusError, match="selfie") as info:
        generator(Identity(face_embedding=unit(1)), "corporate", n=1, seed=3, out_dir=tmp_path, steps=STEPS)
    assert info.value.code == "faceid_plus_needs_selfie"


def test_clip_rows_follow_the_unconditional_rows_of_any_batch():
    """``[0, e, 0, e']`` (guidance, 2 images) and ``[e]`` (no guidance) get ``C(0)`` exactly on the zero rows."""
    import torch
    from diffusers.models.embeddings import IPAdapterFaceIDPlusImageProjection

    projection = IPAdapterFaceIDPlusImageProjection(embed_dims=8, output_dims=8, hidden_dims=6, heads=1, depth=1)
    hook = FaceClipHook(projection)
    features = np.stack([np.zeros((3, 6)), np.ones((3, 6))]).astype(np.float32)
    hook.set(features)
    e = torch.ones(1, 512)
    rows = hook.rows(torch.cat([torch.zeros(1, 512), e, torch.zeros(1, 512), 2 * e]))
    assert rows.shape == (4, 1, 3, 6)
    assert [float(r.mean()) for r in rows] == [0.0, 1.0, 0.0, 1.0]
    assert float(hook.rows(e).mean()) == 1.0
    out = projection(torch.cat([torch.zeros(1, 512), e]))
    assert out.shape == (2, 4, 8)
    hook.remove()
    assert projection.clip_embeds is None


def test_faceid_variants_resolve_and_refuse_clearly(tiny_bases, tmp_path, plus_weights):
    assert faceid_weight_name(FaceIDOptions(variant="plusv2"), "sdxl") == "ip-adapter-faceid-plusv2_sdxl.bin"
    assert faceid_weight_name(FaceIDOptions(variant="plus"), "sd15") == "ip-adapter-faceid-plus_sd15.bin"
    with pytest.raises(HeadshotLabError, match="no FaceID-plus weights") as info:
        faceid_weight_name(FaceIDOptions(variant="plus"), "sdxl")
    assert "plusv2" in info.value.fix
    plain = tiny_ip_adapter_faceid(tiny_bases["sd15"], tmp_path / "plain")
    generator = HeadshotGenerator(
        str(tiny_bases["sd15"]), faceid=FaceIDOptions(str(plain.parent), plain.name, variant="plusv2"), progress=False
    )
    with pytest.raises(FaceIDPlusError, match="plain FaceID layout"):
        generator.load()


def test_a_missing_clip_encoder_names_the_setting(tiny_bases, plus_weights, tmp_path):
    weights = plus_weights["sd15"]
    faceid = FaceIDOptions(str(weights.parent), weights.name, clip_encoder=str(tmp_path / "no-clip"))
    generator = HeadshotGenerator(str(tiny_bases["sd15"]), faceid=faceid, progress=False)
    with pytest.raises(ModelUnavailableError, match="CLIP image encoder") as info:
        generator.load()
    assert "HEADSHOT_LAB_CLIP_IMAGE_ENCODER" in info.value.fix and "laion/CLIP-ViT-H-14" in info.value.fix


# ------------------------------------------------------------------------------------------- InstantID
@pytest.fixture(scope="module")
def instantid_weights(tiny_bases, tmp_path_factory):
    return tiny_instantid(tiny_bases["sdxl"], tmp_path_factory.mktemp("instantid") / "InstantID")


@pytest.fixture(scope="module")
def instantid_generator(tiny_bases, instantid_weights):
    options = InstantIDOptions(weights=str(instantid_weights), scale=1.0, controlnet_scale=1.0)
    return HeadshotGenerator(str(tiny_bases["sdxl"]), instantid=options, progress=False)


def test_instantid_generates_and_identitynet_reads_the_face_tokens(instantid_generator, fake_arcface, tmp_path):
    import torch

    generator = instantid_generator
    pipe = generator.load()
    assert type(pipe).__name__ == "StableDiffusionXLControlNetPipeline"
    projection = pipe.unet.encoder_hid_proj.image_projection_layers[0]
    assert type(projection).__name__ == "IPAdapterPlusImageProjection" and projection.latents.shape[1] == 16
    seen: dict[str, list] = {"controlnet": [], "unet": []}

    def recorder(where):
        def hook(module, args, kwargs):
            seen[where].append(kwargs.get("encoder_hidden_states"))

        return hook

    block = "down_blocks.1.attentions.0.transformer_blocks.0.attn2"
    hooks = [
        pipe.controlnet.get_submodule(block).register_forward_pre_hook(recorder("controlnet"), with_kwargs=True),
        pipe.unet.get_submodule(block).register_forward_pre_hook(recorder("unet"), with_kwargs=True),
    ]
    photo = selfie(0)
    try:
        result = generator(Identity(selfie=photo), "corporate", n=2, seed=5, out_dir=tmp_path / "a", steps=STEPS)
    finally:
        for hook in hooks:
            hook.remove()
    embeds = torch.from_numpy(unit(1)).reshape(1, 1, 1, -1)
    expected = face_tokens(pipe, [torch.cat([torch.zeros_like(embeds), embeds])], num_images=1, guidance=True)
    controlnet_states = seen["controlnet"][0]  # one image per call (batch size 1) under guidance: 2 rows
    assert controlnet_states.shape == (2, 16, 64), "IdentityNet must read the 16 face tokens, not 77 text tokens"
    torch.testing.assert_close(controlnet_states, expected)
    text, ip_tokens = seen["unet"][0]  # the UNet: text tokens + the IP-Adapter's face tokens
    assert text.shape[1] == 77 and ip_tokens[0].shape[-2:] == (16, 64)

    record = result.records[0]
    assert record["engine"] == "instantid" and record["instantid"]["weights"] == str(generator.instantid.source)
    assert record["control"] is None and (tmp_path / "a" / record["instantid"]["keypoints_file"]).is_file()
    other_face = Identity(selfie=photo, face_embedding=unit(2))
    changed = generator(other_face, "corporate", n=1, seed=5, out_dir=tmp_path / "b", steps=STEPS)
    image = pixels_of(result.images[0])
    assert not np.array_equal(image, pixels_of(changed.images[0])), "the face embedding is unused"
    np.testing.assert_array_equal(np.asarray(regenerate(record, root=tmp_path / "a")), image)


def test_instantid_follows_the_keypoints(instantid_generator, fake_arcface, tmp_path):
    """The same face with its keypoints elsewhere: another keypoint map, another image."""
    moved = selfie(0)
    fake_arcface["kps"][id(moved)] = KPS_MOVED
    shots = [
        instantid_generator(Identity(selfie=p), "corporate", n=1, seed=5, out_dir=tmp_path / n, steps=STEPS)
        for n, p in (("a", selfie(0)), ("b", moved))
    ]
    maps = [
        pixels_of(tmp_path / n / s.records[0]["instantid"]["keypoints_file"]) for n, s in zip("ab", shots, strict=True)
    ]
    assert not np.array_equal(maps[0], maps[1])
    assert not np.array_equal(pixels_of(shots[0].images[0]), pixels_of(shots[1].images[0]))


def test_instantid_refuses_sd15_and_a_second_engine_before_loading(tiny_bases, monkeypatch):
    monkeypatch.setattr(models, "load_pipeline", lambda *a, **k: pytest.fail("loaded before the check"))
    with pytest.raises(InstantIDError, match="SDXL-class base models only") as info:
        HeadshotGenerator(str(tiny_bases["sd15"]), instantid=InstantIDOptions(), progress=False)
    assert info.value.code == "instantid_needs_sdxl" and "FaceID on SD1.5" in info.value.fix
    with pytest.raises(InstantIDError, match="cannot be combined with IP-Adapter-FaceID"):
        HeadshotGenerator(str(tiny_bases["sdxl"]), instantid=InstantIDOptions(), faceid=FaceIDOptions())


def test_missing_instantid_weights_name_the_setting(tiny_bases, tmp_path):
    generator = HeadshotGenerator(
        str(tiny_bases["sdxl"]), instantid=InstantIDOptions(weights=str(tmp_path / "none")), progress=False
    )
    with pytest.raises(ModelUnavailableError, match="InstantID IdentityNet") as info:
        generator.load()
    assert "HEADSHOT_LAB_INSTANTID_WEIGHTS" in info.value.fix and "ip-adapter.bin" in info.value.fix


def test_an_adapter_that_is_not_instantid_is_refused(tiny_bases, instantid_weights, tmp_path):
    import shutil

    folder = tmp_path / "mixed"
    shutil.copytree(instantid_weights / "ControlNetModel", folder / "ControlNetModel")
    plain = tiny_ip_adapter_faceid(tiny_bases["sdxl"], folder)
    options = InstantIDOptions(weights=str(folder), weight_name=plain.name)
    with pytest.raises(InstantIDError, match="not an InstantID adapter"):
        HeadshotGenerator(str(tiny_bases["sdxl"]), instantid=options, progress=False).load()
    missing = InstantIDOptions(weights=str(folder))  # IdentityNet there, ip-adapter.bin not
    with pytest.raises(ModelUnavailableError, match="InstantID IP-Adapter") as info:
        HeadshotGenerator(str(tiny_bases["sdxl"]), instantid=missing, progress=False).load()
    assert "HEADSHOT_LAB_INSTANTID_WEIGHTS" in info.value.fix


def test_draw_kps_draws_the_reference_map():
    """Black canvas, a disc of each keypoint's colour at the point, limbs at 60 % of their first point's colour."""
    image = np.asarray(draw_kps((64, 64), KPS, stickwidth=2, radius=2))
    assert image.shape == (64, 64, 3) and image[0, 0].tolist() == [0, 0, 0]
    for (x, y), colour in zip(
        KPS.astype(int), [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255)], strict=True
    ):
        assert image[y, x].tolist() == list(colour)
    between = ((KPS[0] + KPS[2]) / 2).astype(int)  # on the left-eye → nose limb, away from the discs
    assert image[between[1], between[0]].tolist() == [153, 0, 0]


@pytest.mark.slow
def test_keypoints_from_dlib_landmarks_on_a_real_photo(load_real):
    """Offline, dlib's 68 points reduced to 5 give the keypoints: the eyes' discs sit left/right above the nose."""
    from headshot_lab.instantid import face_keypoints, keypoint_map

    photo = load_real("obama")
    kps, size = face_keypoints(photo, backend="dlib")
    assert size == (photo.shape[1], photo.shape[0])
    assert kps[0, 0] < kps[2, 0] < kps[1, 0] and kps[2, 1] > max(kps[0, 1], kps[1, 1])
    drawn = np.asarray(keypoint_map(kps, size, 64, 64))
    assert drawn.shape == (64, 64, 3) and drawn.any()


# ------------------------------------------------------------------------------------------- realism passes
def test_the_hires_fix_keeps_each_engine_and_regenerates(plus_generators, instantid_generator, fake_arcface, tmp_path):
    """The hires fix's img2img shares the UNet: FaceID-Plus's CLIP rows follow its own batch (one image) and
    InstantID's Resampler gets its 1-long embedding sequence; both replay bit-exactly from the manifest."""
    from headshot_lab.hires import HiresOptions

    hires = HiresOptions(scale=1.5, strength=0.5, steps=STEPS)
    for name, generator in (("plus", plus_generators("sd15")), ("instantid", instantid_generator)):
        out = tmp_path / name
        result = generator(Identity(selfie=selfie(0)), "corporate", n=1, seed=4, out_dir=out, steps=STEPS, hires=hires)
        image = pixels_of(result.images[0])
        assert max(image.shape[:2]) > 64 and result.records[0]["hires"] is not None  # the enlarged image
        np.testing.assert_array_equal(np.asarray(regenerate(result.records[0], root=out)), image)
