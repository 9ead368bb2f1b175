"""`team export`: the approved people's files in a DAM-ready folder (headshot_lab.team.dam)."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
from PIL import Image
from team_fixture import cli, rerun, tree

from headshot_lab.errors import HeadshotLabError
from headshot_lab.team import dam, review
from headshot_lab.team.layout import TeamLayout
from headshot_lab.train import file_sha256


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, list(reader)


def test_only_approved_people_with_unchanged_hashes_and_a_full_manifest(team, tmp_path):
    review.approve(team, ["p01", "p03"], by="Ana")
    review.reject(team, "p02", "too dark")
    dest = tmp_path / "dam"
    result = dam.export_approved(team, dest)
    assert result.exported == ["p01", "p03"]
    assert set(result.not_exported) == {"p02", "p04"}
    assert result.not_exported["p02"] == "rejected: too dark"
    assert result.not_exported["p04"].startswith("skipped: no consent")
    names = {p.name for p in dest.iterdir()}
    expected = {f"{pid}_{crop}.jpg" for pid in ("p01", "p03") for crop in ("square", "banner")}
    assert names == expected | {"manifest.csv", "manifest.json"}
    columns, rows = read_csv(dest / "manifest.csv")
    assert tuple(columns) == dam.MANIFEST_COLUMNS
    assert len(rows) == 4
    layout = TeamLayout(team)
    for row in rows:
        source = layout.files_dir(row["person_id"]) / row["file"]
        assert file_sha256(dest / row["file"]) == file_sha256(source) == row["sha256"]
        with Image.open(dest / row["file"]) as image:
            assert (int(row["width"]), int(row["height"])) == image.size
        assert row["format"] == "jpeg" and "srgb" in row["icc"].lower().replace(" ", "")
        assert (row["guide_name"], row["guide_version"]) == ("acme-directory", "3")
        assert row["ai_disclosure"].startswith("AI-edited") and row["approved_by"] == "Ana"
        assert row["approved_at"].endswith("Z")
    assert {(r["person_id"], r["crop"]) for r in rows} == {(p, c) for p in ("p01", "p03") for c in ("square", "banner")}
    assert {r["name"] for r in rows} == {"Ada Lovelace", "Eileen Collins"}
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["rows"] == [{**r, "width": int(r["width"]), "height": int(r["height"])} for r in rows]
    assert manifest["team"] == str(team.resolve()) and manifest["not_exported"] == result.not_exported
    assert str(dest.resolve()) in dam.read_exports(layout)  # so that `team delete` reaches it
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_reexport_replaces_cleanly(team, tmp_path):
    dest = tmp_path / "dam"
    review.approve(team, ["p01", "p03"])
    dam.export_approved(team, dest)
    first = tree(dest)
    again = dam.export_approved(team, dest)
    assert again.removed == []
    second = tree(dest)
    assert {k: v for k, v in second.items() if not k.startswith("manifest")} == {
        k: v for k, v in first.items() if not k.startswith("manifest")
    }
    review.reject(team, "p03", "tie askew")
    third = dam.export_approved(team, dest)
    assert third.removed == ["p03_banner.jpg", "p03_square.jpg"]
    assert sorted(p.name for p in dest.glob("*.jpg")) == ["p01_banner.jpg", "p01_square.jpg"]
    assert [r["person_id"] for r in read_csv(dest / "manifest.csv")[1]] == ["p01", "p01"]


def test_files_changed_after_approval_are_not_shipped(team, tmp_path, real_photos):
    review.approve(team, ["p01", "p03"])
    rerun(team, "p01", real_photos["obama2"])
    result = dam.export_approved(team, tmp_path / "dam")
    assert result.exported == ["p03"]
    assert "changed after approval" in result.not_exported["p01"]


def test_a_missing_file_is_named(team, tmp_path):
    review.approve(team, ["p01", "p03"])
    (team / "people/p01/files/p01_banner.jpg").unlink()
    result = dam.export_approved(team, tmp_path / "dam")
    assert result.exported == ["p03"] and result.not_exported["p01"] == "file missing: files/p01_banner.jpg"


def test_a_file_without_disclosure_or_profile_is_left_out(team, tmp_path):
    path = team / "people/p03/files/p03_square.jpg"
    with Image.open(path) as image:
        image.convert("RGB").save(path, "JPEG", quality=90)  # a plain re-save drops XMP and the ICC profile
    review.approve(team, ["p01", "p03"])
    result = dam.export_approved(team, tmp_path / "dam")
    assert result.exported == ["p01"]
    why = result.not_exported["p03"]
    assert "no AI disclosure" in why and "no embedded ICC" in why
    assert not list((tmp_path / "dam").glob("p03_*"))  # none of p03's files, not even the good banner


def test_inspect_file_reads_what_export_wrote(team):
    facts = dam.inspect_file(team / "people/p01/files/p01_square.jpg")
    assert facts["problems"] == [] and facts["format"] == "jpeg" and facts["width"] == facts["height"]
    assert "compositeWithTrainedAlgorithmicMedia" in facts["digital_source_type"]


def test_naming_template(team, tmp_path):
    guide = json.loads((team / "team.json").read_text())
    guide["guide"]["naming"] = "{guide}_v{version}_{person_id}-{role}-{crop}.{ext}"
    (team / "team.json").write_text(json.dumps(guide))
    review.approve(team, ["p01"])
    result = dam.export_approved(team, tmp_path / "dam")
    assert sorted(r["file"] for r in result.rows) == [
        "acme-directory_v3_p01-Engineer-banner.jpg",
        "acme-directory_v3_p01-Engineer-square.jpg",
    ]
    assert dam.parse_file_name("p01_hires.png", "p01", "{person_id}_{crop}.{ext}") == ("hires", "png")
    assert dam.parse_file_name("x-p01-bio.webp", "p01", "x-{person_id}-{crop}.{ext}") == ("bio", "webp")


@pytest.mark.parametrize("where", ["inside", "itself", "parent", "file", "foreign"])
def test_bad_destinations_are_refused_and_lose_nothing(team, tmp_path, where):
    review.approve(team, ["p01"])
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"mine")
    (tmp_path / "a-file").write_text("x")
    dest = {
        "inside": team / "dam",
        "itself": team,
        "parent": tmp_path,
        "file": tmp_path / "a-file",
        "foreign": foreign,
    }[where]
    before_team, before_foreign = tree(team), tree(foreign)
    with pytest.raises(HeadshotLabError) as excinfo:
        dam.export_approved(team, dest)
    assert excinfo.value.code in {
        "dest_inside_team",
        "dest_contains_team",
        "out_not_a_folder",
        "dest_not_empty",
    }
    assert tree(team) == before_team and tree(foreign) == before_foreign


def test_another_teams_export_is_not_replaced(team, tmp_path, team_built):
    other = tmp_path / "other"
    shutil.copytree(team_built, other)
    review.approve(other, ["p01"])
    dam.export_approved(other, tmp_path / "dam")
    with pytest.raises(HeadshotLabError) as excinfo:
        dam.export_approved(team, tmp_path / "dam")
    assert excinfo.value.code == "dest_other_team"


def test_cli_export(team, tmp_path, capsys):
    review.approve(team, ["p03"])
    assert cli(["export", str(team), "--out", str(tmp_path / "dam")]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1].endswith("manifest.csv")
    assert "not exported: p01: pending" in captured.err
    assert cli(["export", str(team), "--out", str(tmp_path / "dam"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["exported"] == ["p03"]
    assert cli(["export", str(team), "--out", str(team / "dam")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: The export folder") and err[1].startswith("fix:")
    assert not (team / "dam").exists()
