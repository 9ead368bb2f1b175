"""Calibrate the capture checklist on a labelled set: real photos ("good") and controlled degradations ("bad").

Run ``python -m headshot_lab.testing.checklist_calibration [--out DIR]`` (default ``outputs/checklist-calibration``): it writes
``checklist_calibration.json`` (every sample's numbers, the ROC of each rule, the chosen operating points and the
TPR/FPR of the shipped thresholds) and ``checklist_calibration.png`` (the ROC curves).

The labelled set
----------------
* **good**: the real registry photos showing one person's whole face (:func:`headshot_lab.testing.real_photos`:
  obama, obama2, obama3, biden, obama_partial (its face is cut off, but its pixels are a sharp, well-lit face),
  astronaut), each also as photos people really upload: mirrored, re-saved as JPEG q 85, ±20 % exposure, soft
  even studio light (local contrast halved),
  downscaled to 1024 and 640 px, a 512 × 512 headshot crop and a 640 × 360 "video still" (the face ≈ 45 % of the
  frame's height), and under a mild white-balance error (5000 K, 7500 K: what phones leave in indoor or shade light).
* **bad**, at stated severities, in units of the face so that a severity means the same on every photo:

  =============  ==========================================  ===========================================
  degradation    advisory severity (must get the advisory)   blocking severity (must be blocked)
  =============  ==========================================  ===========================================
  Gaussian blur  σ = 1 % of the face-box width               σ = 2.5 %
  motion blur    a 6 % line kernel (horizontal)              a 15 % line kernel
  colour cast    uncorrected tungsten (3200 K), deep shade   (advisory only: a cast never blocks)
                 (15000 K), green or magenta tint (×0.7)
  downscale      face ≤ 120 px wide                          face < 64 px wide
  noise          Gaussian noise σ = 20 of 255 (``grainy``)   (advisory only)
  JPEG           q 8                                         (reported: no rule catches it)
  =============  ==========================================  ===========================================

Each rule's score is measured by the same functions the checklist uses (:func:`headshot_lab.analysis.face_sharpness`, :func:`~headshot_lab.analysis.face_noise`,
:func:`headshot_lab.analysis.colour_stats`) on the photo's own face box (found once on the original and carried
through the geometric changes), and judged by the same rules (:func:`headshot_lab.capture.photo_problems`).

Choosing an operating point (:func:`choose_threshold`): the most sensitive threshold that flags none of the samples
that must pass, placed halfway (on a log scale) into the gap between the lowest must-pass score and the highest bad
score below it (for a rule where bad scores lie above, such as the cast, mirrored). "Must pass" for the blocking
blur rule includes the advisory-severity blurs: a photo that is only a bit soft must never be blocked. The shipped defaults in :class:`headshot_lab.capture.CaptureThresholds`
are these thresholds rounded; ``tests/test_checklist_calibration.py`` checks that they still classify this set.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from headshot_lab.analysis import AnalysisOptions, analyse_photo, colour_stats, face_noise, face_sharpness
from headshot_lab.capture import CaptureThresholds, photo_problems
from headshot_lab.io import load_rgb
from headshot_lab.testing.photos import real_photos

#: The real photos of the good set (one person's face in each; see the module docstring).
GOOD_PHOTOS: tuple[str, ...] = ("obama", "obama2", "obama3", "biden", "obama_partial", "astronaut")

Box = tuple[float, float, float, float]


@dataclass
class Sample:
    """One labelled image: where it came from, how it was made, its label and its measured scores."""

    photo: str
    variant: str
    label: str  # "good", "advisory" (must get the rule's advisory) or "blocking" (must be blocked)
    rule: str  # the checklist rule this sample calibrates ("sharpness", "cast", "size", "other")
    scores: dict[str, Any] = field(default_factory=dict)
    codes: list[str] = field(default_factory=list)
    blocking: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------- image changes
def _scale(image: np.ndarray, box: Box, factor: float) -> tuple[np.ndarray, Box]:
    import cv2

    height, width = image.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    out = cv2.resize(image, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)
    return np.ascontiguousarray(out), tuple(v * factor for v in box)  # type: ignore[return-value]


def _crop(image: np.ndarray, box: Box, x0: int, y0: int, x1: int, y1: int) -> tuple[np.ndarray, Box]:
    return np.ascontiguousarray(image[y0:y1, x0:x1]), (box[0] - x0, box[1] - y0, box[2] - x0, box[3] - y0)


def framed(image: np.ndarray, box: Box, aspect: float, face_share: float, side: int) -> tuple[np.ndarray, Box]:
    """A crop of ``aspect`` (width / height) around the face whose height is the face width / ``face_share``,
    resized so its longer side is ``side`` px (a video still: ``aspect = 16/9``, ``side = 640``)."""
    height, width = image.shape[:2]
    face_w = box[2] - box[0]
    crop_h = min(face_w / face_share, height, width / aspect)
    crop_w = crop_h * aspect
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x0 = int(np.clip(cx - crop_w / 2, 0, width - crop_w))
    y0 = int(np.clip(cy - crop_h / 2, 0, height - crop_h))
    cropped, moved = _crop(image, box, x0, y0, x0 + int(crop_w), y0 + int(crop_h))
    return _scale(cropped, moved, side / max(cropped.shape[:2]))


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    return np.asarray(cv2.GaussianBlur(image, (0, 0), max(sigma, 0.1)))


def motion_blur(image: np.ndarray, length: float) -> np.ndarray:
    """A horizontal line kernel of ``length`` px (camera shake while panning)."""
    import cv2

    size = max(3, round(length) | 1)
    kernel = np.zeros((size, size), np.float32)
    kernel[size // 2, :] = 1.0 / size
    return np.asarray(cv2.filter2D(image, -1, kernel))


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def gaussian_noise(image: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    noisy = image.astype(np.float32) + np.random.default_rng(seed).normal(0.0, sigma, image.shape)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def flat_light(image: np.ndarray, contrast: float, radius: float = 30.0) -> np.ndarray:
    """Soft, even (studio) light: local contrast around a Gaussian-blurred base (σ = ``radius`` px) × ``contrast``."""
    import cv2

    pixels = image.astype(np.float32)
    base = cv2.GaussianBlur(pixels, (0, 0), radius)
    return np.clip(np.round(base + (pixels - base) * contrast), 0, 255).astype(np.uint8)


def exposure(image: np.ndarray, gain: float) -> np.ndarray:
    return np.clip(np.round(image.astype(np.float32) * gain), 0, 255).astype(np.uint8)


def white_balance_error(
    image: np.ndarray, cct: float | None = None, gains: Sequence[float] | None = None
) -> np.ndarray:
    """The photo as a camera balanced for D65 records it under an illuminant of ``cct`` kelvin (or linear ``gains``).

    In linear sRGB each channel is multiplied by the illuminant's white ``(R, G, B) / G``
    (``colour.temperature.CCT_to_xy`` → XYZ → linear sRGB): a von Kries-style colour cast.
    """
    import colour

    if gains is not None:
        factors = np.asarray(gains, dtype=np.float64)
    elif cct is not None:
        xy = colour.temperature.CCT_to_xy(float(cct), method="Kang 2002")
        rgb = np.asarray(colour.XYZ_to_RGB(colour.xy_to_XYZ(xy), "sRGB", apply_cctf_encoding=False), np.float64)
        factors = rgb / float(rgb[1])
    else:
        raise ValueError("give a colour temperature (cct) or channel gains")
    linear = colour.cctf_decoding(image.astype(np.float64) / 255.0, function="sRGB")
    cast = np.clip(linear * factors, 0.0, 1.0)
    return np.clip(np.round(colour.cctf_encoding(cast, function="sRGB") * 255.0), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------- the labelled set
Change = Callable[[np.ndarray, Box], tuple[np.ndarray, Box]]


def _pixels_only(change: Callable[[np.ndarray], np.ndarray]) -> Change:
    return lambda image, box: (change(image), box)


def _face_width(box: Box) -> float:
    return float(box[2] - box[0])


def good_variants() -> list[tuple[str, Change]]:
    """``[(variant, change)]``: the same good photo as people upload it (none of these may be refused or warned)."""
    return [
        ("original", lambda image, box: (image, box)),
        (
            "mirrored",
            lambda image, box: (
                image[:, ::-1].copy(),
                (image.shape[1] - box[2], box[1], image.shape[1] - box[0], box[3]),
            ),
        ),
        ("jpeg_q85", _pixels_only(lambda image: jpeg(image, 85))),
        ("exposure_0.8", _pixels_only(lambda image: exposure(image, 0.8))),
        ("exposure_1.2", _pixels_only(lambda image: exposure(image, 1.2))),
        ("flat_studio_light", _pixels_only(lambda image: flat_light(image, 0.5))),
        ("long_side_1024", lambda image, box: _scale(image, box, min(1.0, 1024 / max(image.shape[:2])))),
        ("long_side_640", lambda image, box: _scale(image, box, min(1.0, 640 / max(image.shape[:2])))),
        ("headshot_512", lambda image, box: framed(image, box, 1.0, 0.4, 512)),
        ("video_still_640x360", lambda image, box: framed(image, box, 16 / 9, 0.45, 640)),
        ("white_balance_5000K", _pixels_only(lambda image: white_balance_error(image, 5000))),
        ("white_balance_7500K", _pixels_only(lambda image: white_balance_error(image, 7500))),
    ]


def bad_variants() -> list[tuple[str, str, str, Change]]:
    """``[(variant, label, rule, change)]`` at the severities of the module table."""

    def blur(fraction: float) -> Change:
        return lambda image, box: (gaussian_blur(image, fraction * _face_width(box)), box)

    def shake(fraction: float) -> Change:
        return lambda image, box: (motion_blur(image, fraction * _face_width(box)), box)

    def face_at(px: float) -> Change:
        return lambda image, box: _scale(image, box, px / _face_width(box))

    return [
        ("gaussian_1%", "advisory", "sharpness", blur(0.01)),
        ("gaussian_2.5%", "blocking", "sharpness", blur(0.025)),
        ("motion_6%", "advisory", "sharpness", shake(0.06)),
        ("motion_15%", "blocking", "sharpness", shake(0.15)),
        ("tungsten_3200K", "advisory", "cast", _pixels_only(lambda image: white_balance_error(image, 3200))),
        ("shade_15000K", "advisory", "cast", _pixels_only(lambda image: white_balance_error(image, 15000))),
        (
            "green_tint",
            "advisory",
            "cast",
            _pixels_only(lambda image: white_balance_error(image, gains=(0.7, 1.0, 0.7))),
        ),
        (
            "magenta_tint",
            "advisory",
            "cast",
            _pixels_only(lambda image: white_balance_error(image, gains=(1.0, 0.7, 1.0))),
        ),
        ("face_120px", "advisory", "size", face_at(120)),
        ("face_56px", "blocking", "size", face_at(56)),
        ("jpeg_q8", "advisory", "other", _pixels_only(lambda image: jpeg(image, 8))),
        ("noise_20", "advisory", "noise", _pixels_only(lambda image: gaussian_noise(image, 20.0))),
    ]


# ---------------------------------------------------------------------------------- measuring and judging
def face_box(image: np.ndarray, name: str) -> Box:
    """The main face's box (original pixels), found once by the checklist's own analysis."""
    record = analyse_photo(image, name=name, options=AnalysisOptions(skin=False, embed=False))
    if record.primary is None:
        raise RuntimeError(f"no face found in the calibration photo {name}")
    return record.box_original(record.primary)


def measure(image: np.ndarray, box: Box, limits: CaptureThresholds) -> dict[str, Any]:
    """The checklist's numbers for the rules calibrated here, on ``box`` (no detection: the geometry is known)."""
    height, width = image.shape[:2]
    face_px = _face_width(box)
    metrics: dict[str, Any] = {
        "width": width,
        "height": height,
        "face_px": round(face_px),
        "face_fraction": round(face_px / min(width, height), 4),
        "sharpness": round(face_sharpness(image, box, limits.sharpness_size), 1),
        "noise": round(face_noise(image, box, limits.sharpness_size) or 0.0, 2),
    }
    metrics.update(colour_stats(image, limits))
    return metrics


def judge(sample: Sample, limits: CaptureThresholds) -> None:
    """Fill ``codes`` / ``blocking`` from the checklist's own rules on the sample's scores."""
    problems = photo_problems(sample.scores, limits, faces=1)
    sample.codes = [p.code for p in problems]
    sample.blocking = [p.code for p in problems if p.severity == "error"]


def build_samples(limits: CaptureThresholds | None = None, photos: Sequence[str] = GOOD_PHOTOS) -> list[Sample]:
    """Measure and judge every good photo, its good variants and its degradations."""
    limits = limits or CaptureThresholds()
    paths = real_photos(list(photos))
    samples: list[Sample] = []
    for name in photos:
        image = load_rgb(paths[name], min_side=0)
        box = face_box(image, name)
        for variant, change in good_variants():
            pixels, moved = change(image, box)
            samples.append(Sample(name, variant, "good", "all", measure(pixels, moved, limits)))
        for variant, label, rule, change in bad_variants():
            pixels, moved = change(image, box)
            samples.append(Sample(name, variant, label, rule, measure(pixels, moved, limits)))
    for sample in samples:
        judge(sample, limits)
    return samples


# ---------------------------------------------------------------------------------- ROC and operating points
@dataclass
class OperatingPoint:
    """A rule's threshold with its true- and false-positive rates on the labelled set."""

    rule: str
    score: str
    direction: str  # "below": bad when score < threshold; "above": bad when score > threshold
    chosen: float
    shipped: float
    auc: float
    tpr: float
    fpr: float
    n_good: int
    n_bad: int
    roc: list[tuple[float, float, float]]  # (threshold, fpr, tpr)


def roc_curve(good: Sequence[float], bad: Sequence[float], direction: str) -> list[tuple[float, float, float]]:
    """``[(threshold, FPR, TPR)]`` for every distinct score; a sample is flagged when it lies beyond the threshold."""
    values = sorted(set(good) | set(bad))
    points = []
    g, b = np.asarray(good, float), np.asarray(bad, float)
    for t in values:
        flag_g = g < t if direction == "below" else g > t
        flag_b = b < t if direction == "below" else b > t
        points.append((float(t), float(flag_g.mean()), float(flag_b.mean())))
    edge = max(values) + 1 if direction == "below" else min(values) - 1
    points.append((float(edge), 1.0, 1.0))
    return sorted(points, key=lambda p: (p[1], p[2]))


def auc(good: Sequence[float], bad: Sequence[float], direction: str) -> float:
    """Probability that a bad sample scores beyond a good one (Mann–Whitney U / (n_g n_b); ties count ½)."""
    g, b = np.asarray(good, float)[:, None], np.asarray(bad, float)[None, :]
    beyond = (b < g) if direction == "below" else (b > g)
    return float((beyond.sum() + 0.5 * (b == g).sum()) / (g.size * b.size))


def choose_threshold(good: Sequence[float], bad: Sequence[float], direction: str) -> float:
    """The most sensitive threshold that flags no must-pass sample, halfway (geometric mean) into the gap.

    For ``direction = "below"``: with ``g₀ = min(good)`` and ``b₀`` the highest bad score below ``g₀``,
    ``t = √(g₀ · b₀)`` (every bad score below ``g₀`` is flagged, no good one is); mirrored for ``"above"``.
    """
    g, b = np.asarray(good, float), np.asarray(bad, float)
    if direction == "below":
        edge = float(g.min())
        inside = b[b < edge]
        other = float(inside.max()) if inside.size else edge / 2
    else:
        edge = float(g.max())
        inside = b[b > edge]
        other = float(inside.min()) if inside.size else edge * 2
    return float(math.sqrt(edge * other)) if edge > 0 and other > 0 else (edge + other) / 2


def rates(good: Sequence[float], bad: Sequence[float], threshold: float, direction: str) -> tuple[float, float]:
    """``(TPR, FPR)`` at ``threshold``."""
    g, b = np.asarray(good, float), np.asarray(bad, float)
    if direction == "below":
        return float((b < threshold).mean()), float((g < threshold).mean())
    return float((b > threshold).mean()), float((g > threshold).mean())


#: (rule name, score key, direction, labels that must pass, labels that must be flagged, the shipped field).
#: Good samples of every kind count on the "must pass" side; degraded ones only for their own rule.
RULES: tuple[tuple[str, str, str, tuple[str, ...], tuple[str, ...], str], ...] = (
    ("soft (advisory)", "sharpness", "below", ("good",), ("advisory", "blocking"), "min_sharpness"),
    ("blurry (blocking)", "sharpness", "below", ("good", "advisory"), ("blocking",), "min_sharpness_blocking"),
    ("color_cast (advisory)", "cast_chroma", "above", ("good",), ("advisory",), "max_cast_chroma"),
    ("grainy (advisory)", "noise", "above", ("good",), ("advisory",), "max_face_noise"),
)
#: The degradation kind (``Sample.rule``) each score calibrates.
_KIND = {"sharpness": "sharpness", "cast_chroma": "cast", "noise": "noise"}


def _scores(samples: Sequence[Sample], score: str, kind: str, labels: tuple[str, ...]) -> list[float]:
    return [
        float(s.scores[score])
        for s in samples
        if s.label in labels and (s.label == "good" or s.rule == kind) and s.scores.get(score) is not None
    ]


def operating_points(samples: Sequence[Sample], limits: CaptureThresholds | None = None) -> list[OperatingPoint]:
    """The ROC, the chosen threshold and the shipped threshold's TPR/FPR of each rule in :data:`RULES`."""
    limits = limits or CaptureThresholds()
    points = []
    for rule, score, direction, passing, flagged, field_name in RULES:
        kind = _KIND[score]
        good, bad = _scores(samples, score, kind, passing), _scores(samples, score, kind, flagged)
        shipped = float(getattr(limits, field_name))
        tpr, fpr = rates(good, bad, shipped, direction)
        points.append(
            OperatingPoint(
                rule=rule,
                score=score,
                direction=direction,
                chosen=round(choose_threshold(good, bad, direction), 2),
                shipped=shipped,
                auc=round(auc(good, bad, direction), 4),
                tpr=round(tpr, 4),
                fpr=round(fpr, 4),
                n_good=len(good),
                n_bad=len(bad),
                roc=roc_curve(good, bad, direction),
            )
        )
    return points


def outcome_table(samples: Sequence[Sample]) -> list[dict[str, Any]]:
    """Per variant: how many samples were blocked, got any problem, and which codes fired."""
    rows: dict[str, dict[str, Any]] = {}
    for s in samples:
        row = rows.setdefault(
            s.variant,
            {"variant": s.variant, "label": s.label, "rule": s.rule, "n": 0, "blocked": 0, "flagged": 0, "codes": {}},
        )
        row["n"] += 1
        row["blocked"] += bool(s.blocking)
        row["flagged"] += bool(s.codes)
        for code in s.codes:
            row["codes"][code] = row["codes"].get(code, 0) + 1
    return list(rows.values())


def plot(points: Sequence[OperatingPoint], path: Path) -> None:
    """One ROC panel per rule, the shipped operating point marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(points), figsize=(4.2 * len(points), 4.0), squeeze=False)
    for axis, point in zip(axes[0], points, strict=True):
        fpr = [p[1] for p in point.roc]
        tpr = [p[2] for p in point.roc]
        axis.step([0.0, *fpr], [0.0, *tpr], where="post", color="tab:blue")
        axis.plot([0, 1], [0, 1], ":", color="grey")
        axis.scatter([point.fpr], [point.tpr], color="tab:red", zorder=3, label=f"shipped {point.shipped:g}")
        axis.set_title(f"{point.rule}\nAUC {point.auc:.3f} · n {point.n_good} good / {point.n_bad} bad", fontsize=9)
        axis.set_xlabel("false-positive rate (good photos flagged)")
        axis.set_ylabel("true-positive rate (degraded flagged)")
        axis.set_xlim(-0.02, 1.02)
        axis.set_ylim(-0.02, 1.02)
        axis.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(out: Path, limits: CaptureThresholds | None = None) -> dict[str, Any]:
    """Build the set, compute the operating points, write ``checklist_calibration.{json,png}`` into ``out``."""
    limits = limits or CaptureThresholds()
    samples = build_samples(limits)
    points = operating_points(samples, limits)
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "good_photos": list(GOOD_PHOTOS),
        "sharpness_size": limits.sharpness_size,
        "operating_points": [{k: v for k, v in asdict(p).items() if k != "roc"} for p in points],
        "outcomes": outcome_table(samples),
        "roc": {p.rule: p.roc for p in points},
        "samples": [asdict(s) for s in samples],
    }
    (out / "checklist_calibration.json").write_text(json.dumps(result, indent=1, default=float))
    plot(points, out / "checklist_calibration.png")
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("outputs/checklist-calibration"))
    args = parser.parse_args(argv)
    result = run(args.out)
    print(f"{'rule':24} {'chosen':>8} {'shipped':>8} {'AUC':>6} {'TPR':>6} {'FPR':>6}")
    for p in result["operating_points"]:
        print(f"{p['rule']:24} {p['chosen']:>8} {p['shipped']:>8} {p['auc']:>6} {p['tpr']:>6} {p['fpr']:>6}")
    print()
    for row in result["outcomes"]:
        print(
            f"{row['variant']:22} {row['label']:9} blocked {row['blocked']}/{row['n']} flagged {row['flagged']}/{row['n']} {row['codes']}"
        )
    print(f"\nwritten: {args.out}/checklist_calibration.json, .png")


if __name__ == "__main__":
    main()
