"""Retention purge and `team delete` (headshot_lab.team.retention)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import yaml
from PIL import Image
from team_fixture import CREATED, cli, tree

from headshot_lab.errors import HeadshotLabError
from headshot_lab.team import dam, retention, review
from headshot_lab.team.contact_sheet import render_sheet
from headshot_lab.team.layout import TeamLayout
from headshot_lab.train import file_sha256

DONE = ("p01", "p02", "p03")
DAY_29 = "2026-11-30T08:59:59Z"  # CREATED + 29 days 23:59:59
DAY_30 = "2026-12-01T09:00:00Z"  # CREATED + 30 days


def edit_json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


# ------------------------------------------------------------------------------------------- purge
def test_nothing_goes_before_the_retention_time(team):
    before = tree(team)
    result = retention.purge_expired(team, now=DAY_29)
    assert result.purged == {} and result.files == 0 and "Nothing has passed" in result.note
    assert result.kept["p01"] == DAY_30
    assert tree(team) == before


def test_inputs_and_work_go_at_the_retention_time_and_finished_files_stay(team):
    layout = TeamLayout(team)
    files_before = {pid: tree(layout.files_dir(pid)) for pid in DONE}
    result = retention.purge_expired(team, now=DAY_30)
    assert result.purged == {
        "p01": ["inputs", "work"],
        "p02": ["inputs", "work"],
        "p03": ["inputs", "work"],
        "p04": ["inputs"],
    }
    assert result.files == 7 and result.bytes > 0  # 4 photos + 3 intermediates
    for pid in DONE:
        assert not layout.inputs_dir(pid).exists() and not layout.work_dir(pid).exists()
        assert tree(layout.files_dir(pid)) == files_before[pid]
        assert layout.status_file(pid).is_file()
    log = [json.loads(line) for line in layout.purge_log.read_text().splitlines()]
    assert [entry["person_id"] for entry in log] == ["p01", "p02", "p03", "p04"]
    assert retention.purge_expired(team, now=DAY_30).purged == {}  # a second purge: nothing left to purge


def test_each_person_by_their_own_last_change(team):
    layout = TeamLayout(team)
    edit_json(layout.status_file("p02"), lambda s: s.update(updated="2026-11-20T00:00:00Z"))  # re-run later
    result = retention.purge_expired(team, now=DAY_30)
    assert "p02" not in result.purged and result.kept["p02"] == "2026-12-20T00:00:00Z"
    assert layout.inputs_dir("p02").is_dir() and not layout.inputs_dir("p01").exists()


def test_retention_days_from_guide_yaml_when_team_json_has_none(team):
    edit_json(team / "team.json", lambda t: t["guide"].pop("retention_days"))
    guide = yaml.safe_load((team / "guide.yaml").read_text())
    guide["retention_days"] = 60
    (team / "guide.yaml").write_text(yaml.safe_dump(guide))
    assert retention.retention_days(TeamLayout(team)) == 60
    assert retention.purge_expired(team, now=DAY_30).purged == {}
    assert set(retention.purge_expired(team, now="2026-12-31T09:00:00Z").purged) == {*DONE, "p04"}


def test_no_retention_keeps_everything_and_says_so(team):
    edit_json(team / "team.json", lambda t: t["guide"].pop("retention_days"))
    guide = yaml.safe_load((team / "guide.yaml").read_text())
    guide.pop("retention_days")
    (team / "guide.yaml").write_text(yaml.safe_dump(guide))
    before = tree(team)
    result = retention.purge_expired(team, now="2030-01-01T00:00:00Z")
    assert result.purged == {} and "no retention_days" in result.note and tree(team) == before


def test_purge_files_when_the_guide_says_so(team):
    edit_json(team / "team.json", lambda t: t["guide"].update(purge_files=True))
    result = retention.purge_expired(team, now=DAY_30)
    assert result.purged["p01"] == ["inputs", "work", "files"]
    assert not TeamLayout(team).files_dir("p01").exists()


def test_purged_files_undo_an_approval_in_words(team):
    review.approve(team, ["p01"])
    edit_json(team / "team.json", lambda t: t["guide"].update(purge_files=True))
    retention.purge_expired(team, now=DAY_30)
    entry = review.review_state(team)["p01"]
    assert entry.state == "resubmitted" and entry.note.startswith("File missing since the last review")


@pytest.mark.parametrize("value", ["abc", -1, True])
def test_bad_retention_is_refused(team, value):
    edit_json(team / "team.json", lambda t: t["guide"].update(retention_days=value))
    before = tree(team)
    with pytest.raises(HeadshotLabError) as excinfo:
        retention.purge_expired(team, now=DAY_30)
    assert excinfo.value.code == "bad_retention" and tree(team) == before


def test_cli_purge(team, tmp_path, capsys):
    assert cli(["purge", str(team), "--now", DAY_29]) == 0
    assert "0 purged" in capsys.readouterr().out
    assert cli(["purge", str(team), "--now", "yesterday"]) == 1
    assert capsys.readouterr().err.startswith("error: 'yesterday' is not a date")
    assert cli(["purge", str(team), "--now", DAY_30, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == 7
    assert cli(["purge", str(tmp_path / "nowhere")]) == 1


# ------------------------------------------------------------------------------------------- delete
def test_delete_reaches_everything_and_the_exports(team, tmp_path):
    review.approve(team, ["p01", "p03"])
    dests = [tmp_path / "dam-a", tmp_path / "dam-b"]
    for dest in dests:
        dam.export_approved(team, dest)
    p03_files = {name: file_sha256(dests[0] / name) for name in ("p03_square.jpg", "p03_banner.jpg")}
    result = retention.delete_person(team, "p01")
    assert not result.nothing_left and result.files == 5  # the photo, an intermediate, two finished files, status.json
    assert set(result.exports) == {str(d.resolve()) for d in dests}
    layout = TeamLayout(team)
    assert not layout.person_dir("p01").exists() and "p01" not in layout.person_ids()
    assert "p01" not in review.review_state(team)
    assert "p01" not in json.dumps(json.loads(layout.report_json.read_text()))
    assert "p01" not in json.loads(layout.team_json.read_text())["people"]
    assert "p01" not in layout.report_md.read_text() and "Ada Lovelace" not in layout.report_md.read_text()
    assert "p02" in layout.report_md.read_text()
    # the sign-off sheet is drawn again with everyone else (p01's tile gone), not lost
    remaining = [layout.read_status(pid) for pid in layout.person_ids()]
    with Image.open(layout.contact_sheet_png) as sheet:
        redrawn = np.asarray(sheet.convert("RGB"))
    expected = render_sheet(layout, remaining, "acme-directory 3")
    assert np.array_equal(redrawn, np.asarray(expected)) and [p.person_id for p in remaining] == ["p02", "p03", "p04"]
    assert any("redrawn" in line for line in result.removed)
    for dest in dests:
        assert not list(dest.glob("p01_*"))
        assert {name: file_sha256(dest / name) for name in p03_files} == p03_files  # the others stay
        rows = json.loads((dest / "manifest.json").read_text())["rows"]
        assert {r["person_id"] for r in rows} == {"p03"}
        assert "p01" not in (dest / "manifest.csv").read_text()
    log = layout.deletion_log.read_text()
    assert "p01" not in log and json.loads(log)["files"] == 5
    again = retention.delete_person(team, "p01")
    assert again.nothing_left and again.message.startswith("Nothing left of p01")
    assert dam.export_approved(team, dests[0]).exported == ["p03"]  # the export still works after


def test_delete_leaves_other_people_untouched(team):
    layout = TeamLayout(team)
    others = {pid: tree(layout.person_dir(pid)) for pid in ("p02", "p03", "p04")}
    retention.delete_person(team, "p01")
    assert {pid: tree(layout.person_dir(pid)) for pid in others} == others


def test_delete_bad_input(team, tmp_path):
    before = tree(team)
    with pytest.raises(HeadshotLabError) as excinfo:
        retention.delete_person(team, "../team")
    assert excinfo.value.code == "bad_person_id"
    with pytest.raises(HeadshotLabError) as excinfo:
        retention.delete_person(tmp_path / "nowhere", "p01")
    assert excinfo.value.code == "not_a_team_folder"
    assert retention.delete_person(team, "nobody").nothing_left
    assert tree(team) == before


def test_cli_delete(team, capsys):
    assert cli(["delete", str(team), "p02", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["person_id"] == "p02" and not payload["nothing_left"]
    assert cli(["delete", str(team), "p02"]) == 0
    assert capsys.readouterr().out.startswith("Nothing left of p02")
    assert cli(["delete", str(team), "../x"]) == 1
    assert "cannot be used as a person id" in capsys.readouterr().err


def test_created_time_reads(team):
    assert retention.last_change(TeamLayout(team), "p01") == review.parse_time(CREATED)


def test_an_id_that_is_also_a_setting_name_removes_no_setting():
    data = {"mode": "retouch", "people": ["mode", "p01"], "audit": {"mode": {"x": 1}, "p01": {"x": 2}}}
    clean, dropped = retention.scrub(data, "mode")
    assert clean == {"mode": "retouch", "people": ["p01"], "audit": {"p01": {"x": 2}}} and dropped == 2
    settings = {"guide": {"name": "acme", "version": "3"}}
    assert retention.scrub(settings, "name") == (settings, 0)


def test_the_updated_field_of_the_status_counts(team):
    layout = TeamLayout(team)
    status = layout.read_status("p03")
    status.updated = "2026-11-25T00:00:00Z"
    layout.write_status(status)
    assert retention.last_change(layout, "p03") == review.parse_time("2026-11-25T00:00:00Z")
    assert "p03" in retention.purge_expired(team, now=DAY_30).kept


def test_a_symlinked_inputs_folder_is_unlinked_never_followed(team, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "keep.jpg").write_bytes(b"not the team's")
    inputs = TeamLayout(team).inputs_dir("p01")
    shutil.rmtree(inputs)
    inputs.symlink_to(outside, target_is_directory=True)
    assert "inputs" in retention.purge_expired(team, now=DAY_30).purged["p01"]
    assert not inputs.is_symlink() and (outside / "keep.jpg").read_bytes() == b"not the team's"


def test_a_damaged_guide_copy_is_said_in_words(team):
    edit_json(team / "team.json", lambda t: t["guide"].pop("retention_days"))
    (team / "guide.yaml").write_text("name: [unclosed\n")
    before = tree(team)
    with pytest.raises(HeadshotLabError) as excinfo:
        retention.purge_expired(team, now=DAY_30)
    assert excinfo.value.code == "bad_guide" and tree(team) == before


def test_per_person_maps_of_plain_values_lose_the_person():
    """The team report maps ids to plain values (who was made with another guide version, how far an outlier
    is); a deleted person's key goes there too, while a setting or another person's entry with the same value
    stays."""
    report = {
        "mode": "retouch",
        "consistency": {
            "other_guide_version": {"frank": "2026.1", "ann": "2026.1"},
            "checks": {"eye_line": {"outliers": {"frank": 0.09}, "margin": 0.03}},
            "outliers": {"frank": ["eye_line"]},
        },
        "guide": {"name": "frank", "version": "2026.1"},
    }
    clean, dropped = retention.scrub(report, "frank")
    assert "frank" not in json.dumps(clean["consistency"]) and dropped == 3
    assert clean["consistency"]["other_guide_version"] == {"ann": "2026.1"}
    assert clean["consistency"]["checks"]["eye_line"] == {"outliers": {}, "margin": 0.03}
    assert clean["guide"] == {"name": "frank", "version": "2026.1"}  # a setting's value is not a person key
    assert retention.scrub(report, "nobody") == (report, 0)


def test_delete_updates_the_reports_counts(team):
    """The summary line and ``counts`` stop counting a deleted person; the other lines stay as they were."""
    layout = TeamLayout(team)
    report = json.loads(layout.report_json.read_text())
    report["counts"] = {"done": 3, "skipped": 1, "failed": 0, "people": 4}
    layout.report_json.write_text(json.dumps(report))
    text = layout.report_md.read_text()
    layout.report_md.write_text(
        text.replace("# Team report\n", "# Team report\n\n**4 people: 3 done, 1 skipped, 0 failed.**\n")
    )
    result = retention.delete_person(team, "p01")
    assert json.loads(layout.report_json.read_text())["counts"] == {"done": 2, "skipped": 1, "failed": 0, "people": 3}
    md = layout.report_md.read_text()
    assert "**3 people: 2 done, 1 skipped, 0 failed.**" in md and "4 people" not in md and "p02" in md
    assert "one person from the report's counts" in result.removed
    assert not retention._recount_report(layout)  # null: counts already right, nothing rewritten
