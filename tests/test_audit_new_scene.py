"""A studio retouch onto a new backdrop is another scene: its skin is compared as photographed.

Known value: a real face-filling portrait retouched onto the company guide's light-grey backdrop keeps its skin
(ΔE00 well under 1); its pHash stays within the same-scene bound, and light-matching on the swapped backdrop
used to read the backdrop's new colour as a change of light (ΔITA +100.6° reported for this very person in
``team run``). With ``new_scene`` the headline ΔITA is the as-photographed one and small; null: an output not
named in ``new_scene`` keeps the photo-hash rule (its reading is unchanged by the new argument).
"""

from __future__ import annotations

import pytest

from headshot_lab import workflow
from headshot_lab.testing.team_roster import ordered_faces, portrait

pytestmark = pytest.mark.usefixtures("real_photos")


@pytest.fixture(scope="module")
def retouched(tmp_path_factory):
    root = tmp_path_factory.mktemp("new_scene")
    face = next(f for f in ordered_faces() if f.person == "feat_f15")
    source = portrait(face, root / "in" / "feat_f15.jpg")
    style = {"name": "team", "backdrop": {"color": [200, 203, 208]}}  # company.yaml's light-grey
    batch = workflow.retouch_photos({source.name: source}, style, root / "out", format="png", min_side=0)  # type: ignore[arg-type]
    out = batch.outputs[0].paths[0]
    return {source.name: source}, out, source.name, batch.outputs[0].delta_ita


def _row(retouched, **options):
    refs, out, source, _ = retouched
    card = workflow.audit_batch(refs, {out.name: out}, sources={out.name: source}, **options).to_dict()
    return card["images"][0]


def test_a_new_backdrop_is_compared_as_photographed(retouched):
    row = _row(retouched, new_scene={retouched[1].name})
    assert row["skin_delta_e2000"] < 1.0  # the skin itself did not change
    assert row["skin_measure"] == "as photographed"
    assert row["skin_delta_ita"] == pytest.approx(row["skin_delta_ita_photographed"])
    assert abs(row["skin_delta_ita"]) < 3.0


def test_outputs_not_named_keep_the_photo_hash_rule(retouched):
    plain, other = _row(retouched), _row(retouched, new_scene={"some-other-output.png"})
    assert plain["skin_delta_ita"] == pytest.approx(other["skin_delta_ita"])
    assert plain["skin_delta_ita_photographed"] == pytest.approx(other["skin_delta_ita_photographed"])


def test_the_retouch_reports_the_same_shift_as_the_audit(retouched):
    """One definition: the retouch's own ΔITA (shown when it finishes) is the audit's, as photographed."""
    row = _row(retouched, new_scene={retouched[1].name})
    assert retouched[3] == pytest.approx(row["skin_delta_ita"], abs=0.011) and abs(retouched[3]) < 3.0


def test_select_reads_the_same_shift_as_the_audit(retouched):
    """Select's candidate ΔITA is the audit's: as photographed for a new backdrop (it showed ~+100° before)."""
    refs, out, source, _ = retouched
    kwargs = {"sources": {out.name: source}}
    moved = workflow.select_headshots({out.name: out}, refs, new_scene={out.name}, **kwargs).candidates[0]
    row = _row(retouched, new_scene={out.name})
    assert moved.scores["delta_ita"] == pytest.approx(row["skin_delta_ita"], abs=0.011)
    assert abs(moved.scores["delta_ita"]) < 3.0
    plain = workflow.select_headshots({out.name: out}, refs, **kwargs).candidates[0]  # not named: photo-hash rule
    assert plain.scores["delta_ita"] == pytest.approx(_row(retouched)["skin_delta_ita"], abs=0.011)
