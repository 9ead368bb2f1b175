"""``team run`` on rosters of real photos: bad rows are reported one by one and nothing else is lost; files follow
the guide (names, crops, sRGB, disclosure, guide version in the metadata); re-runs resume; a new hire is checked
against the published library; a uniform team names no outlier and a planted one is named."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import shutil
from contextlib import redirect_stdout

import numpy as np
import pytest
import yaml
from PIL import Image

from headshot_lab.cli import main
from headshot_lab.io import srgb_icc_profile
from headshot_lab.provenance import read_properties, read_provenance
from headshot_lab.team.guide import SAMPLE_GUIDE
from headshot_lab.team.layout import TeamLayout

pytestmark = pytest.mark.usefixtures("real_photos")


def _cli(*args):
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        code = main(["team", "run", *map(str, args), "--json"])
    assert code == 0
    return json.loads(buffer.getvalue())


def _append_rows(roster, rows):
    with open(roster, "a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        for row in rows:
            writer.writerow(row)


@pytest.fixture(scope="module")
def small_team(tmp_path_factory):
    """One good person (a GPS-tagged photo + a truncated one) and every kind of bad row, through the CLI."""
    from skimage import data as skdata

    from headshot_lab.testing.team_roster import ordered_faces, write_roster

    root = tmp_path_factory.mktemp("team_small")
    roster = write_roster(root / "in", ordered_faces()[:1], exif_gps=True)
    photos = root / "in" / "photos"
    good = next((photos / "p01").iterdir())
    data = good.read_bytes()
    (photos / "p01" / "zz_truncated.jpg").write_bytes(data[: len(data) // 3])
    (photos / "broken").mkdir()
    (photos / "broken" / "only.jpg").write_bytes(data[: len(data) // 3])
    (photos / "cup").mkdir()
    Image.fromarray(skdata.coffee()).save(photos / "cup" / "coffee.jpg")
    _append_rows(
        roster,
        [
            ["ghost", "", "", "photos/nowhere", "yes", ""],
            ["p01", "Copy", "", "photos/p01", "yes", ""],
            ["optout", "", "", "photos/p01", "no", ""],
            ["broken", "", "", "photos/broken", "yes", ""],
            ["cup", "", "", "photos/cup", "yes", ""],
        ],
    )
    out = root / "out"
    payload = _cli(roster, "--style-guide", SAMPLE_GUIDE, "--out", out)
    return roster, out, payload


def test_each_bad_row_is_reported_and_the_good_person_is_done(small_team):
    _, out, payload = small_team
    states = {p["person_id"]: (p["state"], p["reason"]) for p in payload["people"]}
    assert states["p01"] == ("done", "")
    assert states["ghost"][0] == "skipped" and "nowhere" in states["ghost"][1]
    assert states["optout"][0] == "skipped" and "No consent" in states["optout"][1]
    assert states["broken"][0] == "skipped" and "Photo checklist" in states["broken"][1]
    assert states["cup"][0] == "skipped" and "face" in states["cup"][1].lower()
    (dup,) = payload["roster_problems"]
    assert dup["code"] == "duplicate_id" and dup["line"] == 4
    layout = TeamLayout(out)
    assert not layout.inputs_dir("optout").exists()  # nothing of a person without consent is copied
    p01 = layout.read_status("p01")
    assert p01.checklist["unreadable"] == ["zz_truncated.jpg"] and p01.checklist["usable"] == 1
    report = json.loads(layout.report_json.read_text())
    assert report["counts"] == {"done": 1, "skipped": 4, "failed": 0, "people": 5}
    text = layout.report_md.read_text()
    for words in ("ghost", "optout", "broken", "cup", "used more than once"):
        assert words in text


def test_files_follow_the_guide_with_disclosure_srgb_and_guide_version(small_team):
    _, out, payload = small_team
    layout = TeamLayout(out)
    status = layout.read_status("p01")
    assert status.files == [
        "files/p01_square.jpg",
        "files/p01_circle.png",
        "files/p01_banner.jpg",
        "files/p01_hires.jpg",
    ]
    sizes = {"square": (1080, 1080), "circle": (1080, 1080), "banner": (1584, 396)}
    for rel in status.files:
        path = layout.person_dir("p01") / rel
        meta = read_provenance(path, c2pa=False)
        assert meta["kind"] == "retouched" and "AI-edited" in meta["disclosure"]
        props = read_properties(path)
        assert props["StyleGuide"] == "company" and props["StyleGuideVersion"] == "2026.1"
        assert props["StyleGuideSha256"] == payload["guide"]["sha256"]
        with Image.open(path) as image:
            assert image.info["icc_profile"] == srgb_icc_profile()
            crop = path.stem.split("_")[1]
            if crop in sizes:
                assert image.size == sizes[crop]
    team = json.loads(layout.team_json.read_text())
    assert team["guide"] == {**team["guide"], "name": "company", "version": "2026.1"} and team["mode"] == "retouch"
    assert team["runs"][-1]["engine"] == "local" and team["runs"][-1]["started"] <= team["runs"][-1]["finished"]
    assert yaml.safe_load(layout.guide_copy.read_text())["version"] == "2026.1"


def test_inputs_are_pixels_only_copies(small_team):
    roster, out, _ = small_team
    original = next(p for p in (roster.parent / "photos" / "p01").iterdir() if not p.name.startswith("zz"))
    with Image.open(original) as image:
        assert image.getexif().get_ifd(0x8825)  # the roster's photo carries GPS
    (copy,) = TeamLayout(out).inputs_dir("p01").iterdir()
    with Image.open(copy) as image:
        assert not image.getexif() and "exif" not in image.info


def test_contact_sheet_png_and_pdf(small_team):
    _, out, _ = small_team
    layout = TeamLayout(out)
    with Image.open(layout.contact_sheet_png) as sheet:
        assert sheet.width >= 5 * 240 and sheet.height > 240
    assert layout.contact_sheet_pdf.read_bytes().startswith(b"%PDF")


def test_rerun_keeps_done_people_and_an_opt_out_removes_files(small_team, tmp_path):
    roster, out, _ = small_team
    again = tmp_path / "out"
    shutil.copytree(out, again)
    payload = _cli(roster, "--style-guide", SAMPLE_GUIDE, "--out", again)
    assert payload["kept"] == ["p01", "broken", "cup"] and payload["processed"] == []  # same photos, same verdict
    text = roster.read_text().replace("p01,Obama,Staff,photos/p01,yes", "p01,Obama,Staff,photos/p01,no")
    withdrawn = tmp_path / "in" / "roster.csv"
    withdrawn.parent.mkdir()
    shutil.copytree(roster.parent / "photos", withdrawn.parent / "photos")
    withdrawn.write_text(text)
    payload = _cli(withdrawn, "--style-guide", SAMPLE_GUIDE, "--out", again)
    layout = TeamLayout(again)
    assert layout.read_status("p01").state == "skipped" and not layout.files_dir("p01").exists()


def test_a_rejected_person_rerun_goes_back_for_review_and_only_approved_people_ship(small_team, tmp_path):
    """The whole team flow through the CLI: run → review → re-run → approve → export (only approved people ship)."""
    from headshot_lab.team import dam, review

    roster, out, _ = small_team
    again = tmp_path / "out"
    shutil.copytree(out, again)
    review.reject(again, "p01", "eye line too high", by="brand")
    assert review.review_state(again)["p01"].state == "rejected"
    assert dam.export_approved(again, tmp_path / "dam").exported == []  # nobody approved: nothing ships
    _cli(roster, "--style-guide", SAMPLE_GUIDE, "--out", again, "--force")
    assert review.review_state(again)["p01"].state == "resubmitted"
    review.approve(again, ["p01"], by="hr")
    shipped = dam.export_approved(again, tmp_path / "dam")
    assert {row["person_id"] for row in shipped.rows} == {"p01"}


def test_an_unchanged_rerun_says_a_rejected_person_stays_rejected(small_team, tmp_path, capsys):
    """A re-run re-submits only people it remakes; one whose photos and guide are unchanged is kept, so the run
    says they are still rejected and how to re-submit them (and says nothing of people not rejected)."""
    from headshot_lab.team import review

    roster, out, _ = small_team
    again = tmp_path / "out"
    shutil.copytree(out, again)
    review.reject(again, "p01", "eye line\ntoo high", by="brand")
    capsys.readouterr()
    assert main(["team", "run", str(roster), "--style-guide", str(SAMPLE_GUIDE), "--out", str(again)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert "roster   line 4  the person_id p01 is used more than once." in printed  # "line 4" said once
    lines = [line for line in printed if line.startswith("rejected")]
    assert lines == [
        "rejected p01  Still rejected (eye line too high): their photos and the style guide did not change, so "
        "nothing was remade. Give them new photos, or run again with --force, to re-submit them."
    ]
    assert review.review_state(again)["p01"].state == "rejected"  # saying so changes nothing
    review.mark_resubmitted(again, "p01")  # null: re-submitted by hand, so nobody is rejected now
    assert main(["team", "run", str(roster), "--style-guide", str(SAMPLE_GUIDE), "--out", str(again)]) == 0
    assert not [line for line in capsys.readouterr().out.splitlines() if line.startswith("rejected")]


def test_another_guide_in_the_same_folder_is_refused(small_team, tmp_path, capsys):
    roster, out, _ = small_team
    other = yaml.safe_load(SAMPLE_GUIDE.read_text()) | {"name": "other-co"}
    guide = tmp_path / "other.yaml"
    guide.write_text(yaml.safe_dump(other))
    assert main(["team", "run", str(roster), "--style-guide", str(guide), "--out", str(out)]) == 1
    assert "other-co" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ a real team (slow)
@pytest.fixture(scope="module")
def real_team(tmp_path_factory):
    from headshot_lab.team.run import run_team
    from headshot_lab.testing.team_roster import ordered_faces, write_roster

    root = tmp_path_factory.mktemp("team_real")
    faces = [f for f in ordered_faces() if f.person != "tom_hanks"][:6]
    roster = write_roster(root / "in", faces)
    return root, run_team(roster, SAMPLE_GUIDE, root / "out"), ordered_faces()


@pytest.mark.slow
def test_a_uniform_team_of_real_photos_names_no_outlier(real_team):
    _, run, _ = real_team
    assert len(run.by_state("done")) >= 5, run.to_dict()["people"]
    consistency = run.report["consistency"]
    assert consistency["enough"] and consistency["outliers"] == {}, consistency["checks"]


@pytest.mark.slow
def test_a_planted_regrade_and_reframe_are_named(real_team):
    from headshot_lab import export as exporting
    from headshot_lab.team.report import measure_person, team_consistency_check

    _, run, _ = real_team
    layout = TeamLayout(run.out)
    people = [layout.read_status(pid) for pid in run.by_state("done")]
    first, second = people[0], people[1]
    regraded = layout.person_dir(first.person_id) / "planted_grade.png"
    pixels = np.asarray(Image.open(layout.person_dir(first.person_id) / first.files[0]).convert("RGB"))
    Image.fromarray(exporting.ColourGrade(brightness=1.35).apply(pixels)).save(regraded)
    first.consistency = measure_person(regraded, backdrop=first.consistency["backdrop"])
    source = layout.person_dir(second.person_id) / second.files[-1]  # the hi-res file, reframed lower
    spec = exporting.CropSpec("square", (1080, 1080), eye_line=0.52, face_height=0.40, max_shift=0, max_zoom=1)
    reframed = exporting.crop_image(np.asarray(Image.open(source).convert("RGB")), spec).pixels
    Image.fromarray(reframed).save(layout.person_dir(second.person_id) / "planted_frame.png")
    second.consistency = measure_person(
        layout.person_dir(second.person_id) / "planted_frame.png", backdrop=second.consistency["backdrop"]
    )
    outliers = team_consistency_check(people, run.guide.version)["outliers"]
    assert "brightness" in outliers.get(first.person_id, []), outliers
    assert "eye_line" in outliers.get(second.person_id, []), outliers
    assert set(outliers) == {first.person_id, second.person_id}


@pytest.mark.slow
def test_a_new_hire_is_checked_against_the_published_library(real_team, tmp_path):
    from headshot_lab.team.run import run_team
    from headshot_lab.testing.team_roster import write_roster

    _, run, faces = real_team
    library = tmp_path / "library"
    shutil.copytree(run.out, library)
    hire = write_roster(tmp_path / "hire", [faces[7]])
    hire.write_text(hire.read_text().replace("p01,", "new01,"))
    (tmp_path / "hire" / "photos" / "p01").rename(tmp_path / "hire" / "photos" / "new01")
    hire.write_text(hire.read_text().replace("photos/p01", "photos/new01"))
    result = run_team(hire, SAMPLE_GUIDE, library)
    assert result.processed == ["new01"] and result.kept == []
    ids = {p.person_id for p in result.people}
    assert ids == {p.person_id for p in run.people} | {"new01"}
    assert result.report["consistency"]["people_measured"] == len(run.by_state("done")) + 1
    bumped = yaml.safe_load(SAMPLE_GUIDE.read_text()) | {"version": "2026.2"}
    guide = tmp_path / "v2.yaml"
    guide.write_text(yaml.safe_dump(bumped))
    later = run_team(hire, guide, library)
    assert later.processed == ["new01"]  # a new version remakes the people of this roster
    old = later.report["consistency"]["other_guide_version"]
    assert set(old) == set(run.by_state("done")) and set(old.values()) == {"2026.1"}
    assert json.loads(TeamLayout(library).team_json.read_text())["guide"]["version"] == "2026.2"


@pytest.mark.slow
def test_ray_and_local_give_the_same_people(tmp_path):
    from headshot_lab.engine import EngineSpec
    from headshot_lab.team.run import run_team
    from headshot_lab.testing.team_roster import ordered_faces, write_roster

    roster = write_roster(tmp_path / "in", ordered_faces()[:2])
    _append_rows(roster, [["ghost", "", "", "photos/nowhere", "yes", ""]])
    local = run_team(roster, SAMPLE_GUIDE, tmp_path / "local")
    ray = run_team(roster, SAMPLE_GUIDE, tmp_path / "ray", engine=EngineSpec(kind="ray", workers=2))
    assert [(p.person_id, p.state, p.files) for p in ray.people] == [
        (p.person_id, p.state, p.files) for p in local.people
    ]
    # Ray runs each task with OMP_NUM_THREADS=1 and its own thread pools: the retouch's matte and light can differ
    # in the last bits, and the measures re-detect the face on the output, so they agree to within a fifth of
    # the outlier margins (measured: ≤ 0.002 of the height), not bit for bit.
    from headshot_lab.team.report import MARGINS

    for a, b in zip(local.people, ray.people, strict=True):
        if a.state != "done":
            continue
        for key, margin in (("eye_line", "eye_line"), ("center_x", "face_axis")):
            assert a.consistency["framing"][key] == pytest.approx(
                b.consistency["framing"][key], abs=MARGINS[margin] / 5
            )
        assert a.consistency["framing"]["face_height"] == pytest.approx(
            b.consistency["framing"]["face_height"], rel=0.02
        )
        for key, value in a.consistency["grade"].items():
            assert value == pytest.approx(b.consistency["grade"][key], abs=MARGINS[key] / 5)


def test_photos_deleted_after_retention_keep_the_finished_person(small_team, tmp_path):
    roster, out, _ = small_team
    again, inputs = tmp_path / "out", tmp_path / "in"
    shutil.copytree(out, again)
    shutil.copytree(roster.parent, inputs)
    shutil.rmtree(inputs / "photos" / "p01")  # HR deleted the source photos; the published files stay
    payload = _cli(inputs / "roster.csv", "--style-guide", SAMPLE_GUIDE, "--out", again)
    assert "p01" in payload["kept"] and TeamLayout(again).read_status("p01").state == "done"


@pytest.mark.parametrize(("mode", "words"), [("lora", "HEADSHOT_LAB_BASE_MODEL"), ("faceid", "INSIGHTFACE")])
def test_without_weights_each_person_fails_with_the_reason(small_team, tmp_path, monkeypatch, mode, words):
    from headshot_lab.team.run import run_team

    monkeypatch.delenv("HEADSHOT_LAB_BASE_MODEL", raising=False)
    monkeypatch.setenv("HEADSHOT_LAB_INSIGHTFACE_DIR", str(tmp_path / "no-pack"))
    roster, _, _ = small_team
    result = run_team(roster, SAMPLE_GUIDE, tmp_path / "out", mode=mode)
    failed = {p.person_id: p.reason for p in result.people if p.state == "failed"}
    assert set(failed) == {"p01"} and words in failed["p01"]
    assert {p.person_id for p in result.people if p.state == "skipped"} == {"ghost", "optout", "broken", "cup"}
    assert result.report["counts"]["failed"] == 1


def test_an_unexpected_error_is_retried_then_reported(small_team, tmp_path, monkeypatch):
    from headshot_lab.engine import EngineSpec
    from headshot_lab.team import run as team_run

    roster, _, _ = small_team
    real, calls = team_run.copy_inputs, []

    def flaky(photos, inputs):
        calls.append(inputs)
        if len(calls) == 1 or "cup" in str(inputs):
            raise RuntimeError("disk hiccup")
        return real(photos, inputs)

    monkeypatch.setattr(team_run, "copy_inputs", flaky)
    result = team_run.run_team(roster, SAMPLE_GUIDE, tmp_path / "out", engine=EngineSpec(retries=1))
    people = {p.person_id: p for p in result.people}
    assert people["p01"].state == "done" and people["p01"].attempts == 2  # failed once, done on the retry
    assert people["cup"].state == "failed" and people["cup"].attempts == 2
    assert "after 2 attempt(s)" in people["cup"].reason and "disk hiccup" in people["cup"].reason
    assert people["broken"].state == "skipped"  # the others are not affected


def test_generative_modes_keep_one_pipeline_per_worker(tmp_path, monkeypatch):
    """--mode faceid|lora runs through one worker per device: built once, its generator cache shared by its people."""
    from headshot_lab.team import run as team_run
    from headshot_lab.testing.team_roster import ordered_faces, write_roster

    roster = write_roster(tmp_path / "in", ordered_faces()[:2])
    caches = []
    retouch = team_run._make_candidates

    def fake_make(task, usable, work, generators=None):  # the weights are not here: a retouch stands in
        caches.append(generators)
        return retouch(dataclasses.replace(task, mode="retouch"), usable, work)

    monkeypatch.setattr(team_run, "_blocked_reason", lambda mode: "")
    monkeypatch.setattr(team_run, "_make_candidates", fake_make)
    before = team_run.PersonWorker.built
    result = team_run.run_team(roster, SAMPLE_GUIDE, tmp_path / "out", mode="faceid")
    assert team_run.PersonWorker.built - before == 1  # one worker, not one per person
    assert len(caches) == 2 and caches[0] is caches[1] and caches[0] is not None
    assert {p.person_id for p in result.people} == {"p01", "p02"}


def test_a_print_crop_in_the_guide_gets_its_dpi_and_the_detail_warning(tmp_path):
    """A guide with the ``print`` crop: the file says 300 dpi, and a phone portrait (560 px) too small for a sharp
    4×5 in print is named in report.md (the upscale command only in the operator section); the square has no note."""
    from headshot_lab.testing.team_roster import ordered_faces, write_roster

    roster = write_roster(tmp_path / "in", ordered_faces()[:1])
    guide = yaml.safe_load(SAMPLE_GUIDE.read_text()) | {"crops": ["square", "print"]}
    (tmp_path / "guide.yaml").write_text(yaml.safe_dump(guide))
    out = tmp_path / "out"
    _cli(roster, "--style-guide", tmp_path / "guide.yaml", "--out", out)
    status = TeamLayout(out).read_status("p01")
    files = {f["crop"]: f for f in status.checklist["files"]}
    assert files["square"]["notes"] == [] and files["print"]["dpi"] == 300
    assert files["print"]["notes"] and "Too little detail for a sharp print" in files["print"]["notes"][0]
    with Image.open(out / "people" / "p01" / files["print"]["file"]) as image:
        assert image.size == (1200, 1500) and image.info["dpi"] == pytest.approx((300, 300))
    report = (out / "report.md").read_text()
    visible, operator = report.split("<details>", 1)
    assert "## Files that may not hold up" in visible and "p01_print.jpg: Too little detail" in visible
    assert "headshot-lab upscale" not in visible and "headshot-lab upscale" in operator
