"""The one analysis record: every tool reports the same skin shift, and every number of a face comes from that face."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from headshot_lab.analysis import AnalysisOptions, analyse_photo, judge_finder, skin_delta_ita
from headshot_lab.faces import box_iou

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def retouched(load_real, tmp_path_factory):
    """A real photo and its studio retouch, both written as lossless PNGs (what the app and CLI read)."""
    from PIL import Image

    from headshot_lab.retouch import retouch

    folder = tmp_path_factory.mktemp("same-shift")
    source = load_real("obama")
    result = retouch(source, style="corporate")
    Image.fromarray(source).save(folder / "obama.png")
    Image.fromarray(result.image).save(folder / "obama_corporate.png")
    return folder, source, result


def test_one_skin_shift_everywhere(retouched):
    """retouch, select, the audit card and ``headshot-lab skin`` agree on ΔITA to 0.01°, against the source photo."""
    from headshot_lab.audit.batch import audit_batch
    from headshot_lab.select import ReferenceProfile, select_candidates

    folder, _, result = retouched
    source_path, output_path = folder / "obama.png", folder / "obama_corporate.png"
    assert result.delta_ita is not None

    profile = ReferenceProfile.from_images({"obama.png": source_path})
    selection = select_candidates(
        {"obama_corporate.png": output_path}, profile, sources={"obama_corporate.png": "obama.png"}
    )
    (candidate,) = selection.candidates
    assert candidate.scores["delta_ita_vs"] == "source"

    card = audit_batch(
        {"obama.png": source_path},
        {"obama_corporate.png": output_path},
        sources={"obama_corporate.png": "obama.png"},
        n_resamples=50,
    )
    (row,) = card.images

    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    cli = subprocess.run(
        [sys.executable, "-m", "headshot_lab", "skin", str(source_path), str(output_path), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    before, after = json.loads(cli.stdout)
    from_cli = after["ita"] - before["ita"]

    values = {
        "retouch": result.delta_ita,
        "select": candidate.scores["delta_ita"],
        "audit card": row["skin_delta_ita"],
        "headshot-lab skin": from_cli,
    }
    # select rounds its scores to 0.01 and the CLI's ITA to 0.01°; the others are exact
    assert max(values.values()) - min(values.values()) <= 0.011, values


def test_the_record_is_the_source_of_the_reported_shift(retouched):
    """The shift is ITA(output record) − ITA(source record) and changes when the output's skin really changes."""
    from headshot_lab.skin import shift_ita

    _, source, result = retouched
    finder, options = judge_finder(), AnalysisOptions(embed=False)
    before = analyse_photo(source, backend=finder, options=options)
    after = analyse_photo(result.image, backend=finder, options=options)
    assert skin_delta_ita(before, after) == pytest.approx(result.delta_ita, abs=1e-9)
    face = after.primary
    assert face is not None and face.skin_mask is not None
    small = analyse_photo(after.small, backend=finder, options=options)  # the analysis copy itself as the output
    lighter = shift_ita(after.small, face.skin_mask.astype(np.float32), 4.0)
    baseline = skin_delta_ita(before, small)
    moved = skin_delta_ita(before, analyse_photo(lighter, backend=finder, options=options))
    assert baseline is not None and moved is not None
    assert 3.0 < moved - baseline < 5.0, (baseline, moved)


def test_group_photo_every_face_measured_from_itself(load_real):
    """On a group photo, mesh, skin mask, tone, texture and identity of each face come from that same face."""
    group = load_real("group")
    photo = analyse_photo(group, backend=judge_finder(), options=AnalysisOptions(faces="all"))
    assert photo.face_count >= 4 and len(photo.faces) == photo.face_count
    measured = [face for face in photo.faces if face.mesh is not None]
    assert len(measured) >= 4
    for face in measured:
        assert box_iou(face.box, face.mesh.box) > 0.3, (face.box, face.mesh.box)
        assert face.skin_mask is not None and face.tone is not None and face.embedding is not None
        ys, xs = np.nonzero(face.skin_mask)
        left, top, right, bottom = face.box
        grow = 0.3 * (right - left)
        inside = (xs >= left - grow) & (xs <= right + grow) & (ys >= top - grow) & (ys <= bottom + grow)
        assert inside.mean() > 0.95
    # different people: no two faces share an embedding
    embeddings = np.stack([face.embedding for face in measured])
    distances = np.linalg.norm(embeddings[:, None] - embeddings[None], axis=-1)
    assert distances[~np.eye(len(measured), dtype=bool)].min() > 0.3


def test_grayscale_photo_says_no_colour(load_real):
    grey = np.repeat(load_real("obama").mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    photo = analyse_photo(grey, backend=judge_finder(), options=AnalysisOptions(embed=False))
    assert photo.primary is not None, "a black-and-white face is still a face"
    assert not photo.has_colour
    assert photo.primary.tone is None
    assert any(error["code"] == "no_colour" for error in photo.primary.errors)
