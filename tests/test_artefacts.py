"""Artefact checks of select: a planted artefact on real photos is caught, untouched real photos stay quiet.

The null is :func:`headshot_lab.testing.photos.independent_faces` (58 distinct people, untouched photos of every
pose in the set); the planted artefact is one eye enlarged with a feathered disc, as a generator's mismatched eyes.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from headshot_lab.analysis import face_mesh_near
from headshot_lab.faces.mesh import LEFT_EYE, FaceMesh
from headshot_lab.io import load_rgb
from headshot_lab.select import SelectThresholds, flagged_crop, iris_size_ratio, select_candidates
from headshot_lab.testing.photos import independent_faces, real_photo

LIMIT = SelectThresholds().max_iris_size_ratio


def enlarge_eye(image: np.ndarray, mesh: FaceMesh, scale: float = 1.4) -> np.ndarray:
    """The image-left eye (a disc 1.8 × the eye's width) enlarged ``scale`` ×, blended with a 30 % feather."""
    points = mesh.region(LEFT_EYE)
    cx, cy = points.mean(axis=0)
    half = int(0.9 * (points[:, 0].max() - points[:, 0].min()))
    x0, y0 = int(cx) - half, int(cy) - half
    patch = Image.fromarray(image[y0 : y0 + 2 * half, x0 : x0 + 2 * half])
    big = np.asarray(patch.resize((round(2 * half * scale),) * 2, Image.Resampling.LANCZOS), dtype=np.float32)
    offset = (big.shape[0] - 2 * half) // 2
    big = big[offset : offset + 2 * half, offset : offset + 2 * half]
    yy, xx = np.mgrid[0 : 2 * half, 0 : 2 * half]
    alpha = np.clip((1 - np.hypot(xx - half, yy - half) / half) / 0.3, 0, 1)[..., None]
    out = image.copy()
    region = out[y0 : y0 + 2 * half, x0 : x0 + 2 * half].astype(np.float32)
    out[y0 : y0 + 2 * half, x0 : x0 + 2 * half] = np.round(alpha * big + (1 - alpha) * region).astype(np.uint8)
    return out


@pytest.fixture(scope="module")
def faces():
    """``[(person, crop, box, mesh)]`` for every independent face (crop = the face box grown by 80 %)."""
    photos: dict[str, np.ndarray] = {}
    out = []
    for face in independent_faces():
        if face.photo not in photos:
            photos[face.photo] = load_rgb(real_photo(face.photo), min_side=0)
        image = photos[face.photo]
        left, top, right, bottom = face.box
        grow = int(0.8 * (right - left))
        y0, x0 = max(0, top - grow), max(0, left - grow)
        crop = np.ascontiguousarray(image[y0 : bottom + grow, x0 : right + grow])
        box = (left - x0, top - y0, right - x0, bottom - y0)
        out.append((face.person, crop, box, face_mesh_near(crop, box)))
    return out


def test_iris_size_check_is_quiet_on_untouched_real_faces(faces):
    """False rejects on the realistic null: measured 1 of 58 (1.7 %); the target is ≤ 5 %."""
    ratios = {person: iris_size_ratio(mesh) for person, _, _, mesh in faces if mesh is not None}
    assert len(ratios) >= 55  # the mesh finds (almost) every face of the set
    flagged = [person for person, ratio in ratios.items() if ratio is not None and ratio > LIMIT]
    assert len(flagged) / len(ratios) <= 0.05, flagged
    assert np.median([r for r in ratios.values() if r]) < 1.08  # two irises of one person: the same size


def test_an_enlarged_eye_is_caught_on_real_faces(faces):
    """Planted: one eye 1.4× on each of the 58 faces. Measured: 26 of 58 flagged (45 %), far above the null's 1.7 %;
    the mesh's iris model follows an enlarged eye only part of the way, so this is a partial detector."""
    hits = total = 0
    for _, crop, box, mesh in faces:
        if mesh is None:
            continue
        planted = face_mesh_near(enlarge_eye(crop, mesh), box)
        if planted is None:
            continue
        total += 1
        hits += int((iris_size_ratio(planted) or 0.0) > LIMIT)
    assert total >= 50 and hits / total >= 0.35, (hits, total)


def test_select_flags_the_planted_eye_with_its_region_and_a_zoomed_crop(load_real, tmp_path):
    clean = load_real("obama")
    mesh = face_mesh_near(clean, (0, 0, clean.shape[1], clean.shape[0]))
    assert mesh is not None
    planted = enlarge_eye(clean, mesh)
    selection = select_candidates(
        {"planted.png": planted, "clean.png": clean}, {"a": load_real("obama2"), "b": load_real("obama3")}
    )
    by_name = {c.path: c for c in selection.candidates}
    assert "eyes_asymmetric" not in by_name["clean.png"].codes
    reason = next(r for r in by_name["planted.png"].reasons if r.code == "eyes_asymmetric")
    assert "larger than the other" in reason.message and reason.region is not None
    left, top, right, bottom = reason.region
    eye_x, eye_y = mesh.region(LEFT_EYE).mean(axis=0)
    assert left < eye_x < right and top < eye_y < bottom  # the region is where the artefact was planted
    assert reason.to_dict(region=True)["region"] == [round(v, 1) for v in reason.region]
    assert set(reason.to_dict()) == {"code", "message"}  # the CLI contract is unchanged
    zoom = flagged_crop(planted, reason.region, size=240)
    assert zoom.shape[1] == 240 and zoom.shape[0] >= 60
    assert by_name["planted.png"].scores["iris_size_ratio"] > LIMIT
    # The app's path: the report with regions → zoomed crops written, labelled as their image.
    from headshot_lab import workflow
    from headshot_lab.provenance import read_provenance, save_with_provenance

    source = save_with_provenance(planted, tmp_path / "planted.png", "generated")
    rejected = selection.to_dict(regions=True)["rejected"]
    crops = workflow.flagged_crops(rejected, {"planted.png": (source, "generated")}, tmp_path / "zoom", size=240)
    with_region = [r for e in rejected if e["path"] == "planted.png" for r in e["reasons"] if r.get("region")]
    assert len(crops) == len(with_region) >= 1  # one crop per reason about a region (eyes; skin: the face box)
    assert any(caption.startswith("planted.png: The two eyes do not match") for _, caption in crops)
    for path, _ in crops:
        assert read_provenance(path, c2pa=False)["kind"] == "generated" and Image.open(path).width == 240


def test_flagged_crop_clips_and_keeps_small_regions_visible():
    image = np.zeros((100, 200, 3), dtype=np.uint8)
    image[40:60, 90:110] = 255
    zoom = flagged_crop(image, (95, 45, 105, 55), size=96, min_side=40)  # a 10 px region → 40 px square
    assert zoom.shape == (96, 96, 3) and zoom[48, 48].min() == 255 and zoom[2, 2].max() == 0
    edge = flagged_crop(image, (-50, -50, 10, 10), size=64)
    assert edge.shape[1] == 64  # clipped to the image, never empty


@pytest.mark.slow
@pytest.mark.browser
def test_flagged_zoom_and_print_warning_in_the_browser(app_server, real_photos, load_real, tmp_path):
    """Headless Chromium: a planted eye is shown zoomed in with its reason; a print export says how short it is."""
    from selenium.webdriver.common.by import By

    from tests.test_browser import (
        OPERATOR_WORDS,
        captions_fit,
        check,
        chromium_driver,
        click,
        give_consent,
        open_tab,
        set_photos,
        shot,
        text_of,
        visitor_text,
        wait_for,
    )

    clean = load_real("obama")
    mesh = face_mesh_near(clean, (0, 0, clean.shape[1], clean.shape[0]))
    planted = tmp_path / "obama_planted_eye.png"
    Image.fromarray(enlarge_eye(clean, mesh)).save(planted)
    shots = tmp_path / "screens"
    shots.mkdir()
    with chromium_driver(tmp_path / "profile") as driver:
        driver.get(app_server[0])
        give_consent(driver)
        set_photos(driver, [planted, real_photos["obama2"], real_photos["obama3"]])
        check(driver, 3)
        open_tab(driver, "Generate")
        click(driver, "#retouch", "the retouch button")
        wait_for(driver, lambda d: "retouched" in text_of(d, "#retouch-status"), 400, "the retouch")
        open_tab(driver, "Select")
        click(driver, "#select", "the select button")
        wait_for(driver, lambda d: "headshots kept" in text_of(d, "#select-status"), 300, "the selection")
        wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#flagged img"), 120, "the zoomed crop")
        captions = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#flagged .caption-label")]
        assert len(captions) == 1 and "eyes do not match" in captions[0], captions
        assert "(1)" in text_of(driver, "#flagged-accordion") and captions_fit(driver, "#flagged")
        shot(driver, shots, "20-flagged-zoom", "#flagged-accordion")
        for label in driver.find_elements(By.CSS_SELECTOR, "label"):
            if label.text.strip() == "print":
                label.click()
                break
        click(driver, "#export", "the export button")
        wait_for(driver, lambda d: "files written" in text_of(d, "#export-status"), 300, "the export")
        status = text_of(driver, "#export-status")
        assert "Too little detail for a sharp print at 4×5 in at 300 dpi" in status and "× short" in status, status
        visitor = visitor_text(driver)
        assert not [w for w in (*OPERATOR_WORDS, "headshot-lab upscale") if w in visitor]
        shot(driver, shots, "21-print-warning", "#export-status")
