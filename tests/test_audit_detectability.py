"""AI-detectability: features, AUROC with a cluster bootstrap, the C2ST, a pretrained Hub detector."""

from __future__ import annotations

import numpy as np
import pytest

from headshot_lab.audit.detectability import (
    FEATURE_NAMES,
    PretrainedDetector,
    auroc_with_ci,
    classifier_two_sample_test,
    face_crop,
    image_features,
    radial_power_spectrum,
)
from headshot_lab.errors import HeadshotLabError, ModelUnavailableError


def _power_law_noise(size: int, exponent: float, seed: int) -> np.ndarray:
    """Gaussian noise whose power spectrum falls as f^exponent."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.fftfreq(size)[None, :]
    radius = np.sqrt(fx**2 + fy**2)
    radius[0, 0] = 1.0
    spectrum = np.fft.fft2(rng.normal(size=(size, size))) * radius ** (exponent / 2.0)
    return np.real(np.fft.ifft2(spectrum))


def test_spectrum_slope_of_white_and_brown_noise():
    _, white = radial_power_spectrum(_power_law_noise(128, 0.0, 0))
    _, brown = radial_power_spectrum(_power_law_noise(128, -2.0, 1))
    assert white == pytest.approx(0.0, abs=0.3)
    assert brown == pytest.approx(-2.0, abs=0.3)


def test_features_have_the_documented_columns(load_real):
    image = load_real("astronaut")
    features = image_features(image, box=(175, 76, 266, 167))
    assert features.shape == (len(FEATURE_NAMES),)
    assert np.all(np.isfinite(features))
    with_embedding = image_features(image, box=(175, 76, 266, 167), embedding=np.ones(128))
    assert with_embedding.shape == (len(FEATURE_NAMES) + 128,)
    assert face_crop(image, (175, 76, 266, 167)).shape == (128, 128, 3)
    assert face_crop(image).shape == (128, 128, 3)


def test_features_see_blur_and_colour():
    import cv2

    rng = np.random.default_rng(0)
    noisy = np.clip(128 + rng.normal(0, 20, (64, 64, 3)), 0, 255).astype(np.uint8)  # the canonical size
    blurred = cv2.GaussianBlur(noisy, (0, 0), 1.5)
    f_noisy, f_blur = image_features(noisy), image_features(blurred)
    high = FEATURE_NAMES.index(f"spectrum_{len([n for n in FEATURE_NAMES if n.startswith('spectrum_')]) - 2}")
    assert f_blur[high] < f_noisy[high] - 1.0  # high-frequency ring loses power (log10)
    assert f_blur[FEATURE_NAMES.index("noise_std")] < f_noisy[FEATURE_NAMES.index("noise_std")]
    reddish = noisy.copy()
    reddish[..., 0] = 200
    a_mean = FEATURE_NAMES.index("a_mean")
    assert image_features(reddish, normalise=False)[a_mean] > image_features(noisy, normalise=False)[a_mean] + 10


def test_light_normalisation_undoes_exposure_and_white_balance(load_real):
    from colour.models import eotf_inverse_sRGB, eotf_sRGB

    from headshot_lab.audit.detectability import normalise_light

    face = face_crop(load_real("astronaut"), (175, 76, 266, 167), 64)
    linear = eotf_sRGB(face / 255.0)
    changed = np.rint(eotf_inverse_sRGB(np.clip(linear * [0.85, 0.8, 0.7], 0, 1)) * 255).astype(np.uint8)
    assert np.abs(changed.astype(int) - face).mean() > 10  # a visible change …
    difference = np.abs(normalise_light(changed).astype(int) - normalise_light(face).astype(int))
    assert difference.mean() < 1.0  # … undone up to rounding
    b_mean = FEATURE_NAMES.index("b_mean")  # the warmer light moves b* (yellow–blue)
    assert abs(image_features(changed)[b_mean] - image_features(face)[b_mean]) < 0.5
    assert abs(image_features(changed, normalise=False)[b_mean] - image_features(face, normalise=False)[b_mean]) > 2


def test_identical_score_sets_give_exactly_one_half():
    scores = np.random.default_rng(0).normal(size=15)
    labels = np.r_[np.zeros(15), np.ones(15)].astype(int)
    pairs = list(range(15)) * 2
    result = auroc_with_ci(labels, np.r_[scores, scores], clusters=pairs)
    assert result.auroc == pytest.approx(0.5)
    assert result.ci == pytest.approx((0.5, 0.5))


def test_auroc_known_value_and_interval_contains_it():
    labels = np.array([0, 0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.3, 0.9])  # 7 of 9 pairs ordered → 7/9
    result = auroc_with_ci(labels, scores, n_resamples=500)
    assert result.auroc == pytest.approx(7 / 9)
    assert result.ci[0] <= result.auroc <= result.ci[1]
    assert result.n_real == 3 and result.n_fake == 3
    assert result.fpr[0] == 0.0 and result.tpr[-1] == 1.0
    with pytest.raises(HeadshotLabError):
        auroc_with_ci([0, 0], [0.1, 0.2])


def test_cluster_bootstrap_is_not_biased_by_paired_clusters():
    # Each cluster = one real and its slightly-higher "generated" twin, clusters far apart:
    # the within-pair AUROC is 1, the pooled AUROC about 0.5; the interval must contain the point value.
    rng = np.random.default_rng(3)
    centres = rng.normal(0, 10, 12)
    labels = np.r_[np.zeros(12), np.ones(12)].astype(int)
    scores = np.r_[centres, centres + 0.01]
    result = auroc_with_ci(labels, scores, clusters=list(range(12)) * 2, n_resamples=2000)
    assert result.ci[0] <= result.auroc <= result.ci[1]


def test_c2st_separates_different_distributions_and_not_equal_ones():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(40, 5))
    shifted = rng.normal(size=(40, 5)) + np.array([2.0, 0, 0, 0, 0])
    result = classifier_two_sample_test(real, shifted, seed=0, n_resamples=500)
    assert result.auroc > 0.85 and result.ci[0] > 0.5
    assert result.method == "c2st"
    same = classifier_two_sample_test(real, rng.normal(size=(40, 5)), seed=0, n_resamples=500)
    assert same.ci[0] < 0.5 < same.ci[1] or abs(same.auroc - 0.5) < 0.15


def test_c2st_on_identical_pairs_is_exactly_chance():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(20, 4))
    groups = [f"p{i // 2}" for i in range(20)]
    result = classifier_two_sample_test(real, real.copy(), real_groups=groups, fake_groups=groups, n_resamples=300)
    assert result.auroc == pytest.approx(0.5)
    assert result.ci == pytest.approx((0.5, 0.5))


def test_c2st_needs_two_of_each():
    with pytest.raises(HeadshotLabError):
        classifier_two_sample_test(np.zeros((1, 3)), np.ones((1, 3)))
    with pytest.raises(ValueError):
        classifier_two_sample_test(np.zeros((3, 3)), np.ones((3, 2)))


@pytest.fixture(scope="module")
def tiny_detector_dir(tmp_path_factory):
    """A tiny random ViT image classifier with labels real/fake, saved locally (no download)."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    folder = tmp_path_factory.mktemp("tiny-vit")
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        id2label={0: "real", 1: "fake"},
        label2id={"real": 0, "fake": 1},
    )
    ViTForImageClassification(config).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def test_pretrained_detector_wiring_with_a_tiny_local_vit(tiny_detector_dir):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (40, 48, 3), dtype=np.uint8) for _ in range(4)]
    detector = PretrainedDetector(str(tiny_detector_dir), device="cpu")
    assert detector.label == "fake"
    scores = detector.score(images)
    assert scores.shape == (4,)
    assert np.all((scores > 0) & (scores < 1))
    assert detector.score(images[:1]) == pytest.approx(scores[:1])  # one image, same score
    result = detector.evaluate(images[:2], images[2:])
    assert result.method == f"pretrained:{tiny_detector_dir}"
    assert 0.0 <= result.auroc <= 1.0


def test_pretrained_detector_label_choice(tiny_detector_dir):
    with pytest.raises(HeadshotLabError, match="no label"):
        _ = PretrainedDetector(str(tiny_detector_dir), fake_label="synthetic").label
    assert PretrainedDetector(str(tiny_detector_dir), fake_label="real").label == "real"


def test_pretrained_detector_offline_gives_one_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    detector = PretrainedDetector("no-such-org/no-such-ai-image-detector")
    with pytest.raises(ModelUnavailableError) as info:
        detector.score([np.zeros((32, 32, 3), np.uint8)])
    assert "no-such-org/no-such-ai-image-detector" in info.value.message
    assert "HF_HUB_OFFLINE" in info.value.fix
