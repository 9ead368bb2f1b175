"""The analysis commands' JSON contracts (check, skin, similarity) and exit codes."""

from __future__ import annotations

import json

import pytest

from headshot_lab.cli import main


def run_json(capsys, argv: list[str]):
    code = main(argv)
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_check_json_contract_with_a_bad_file_among_good_ones(capsys, real_photos, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(real_photos["obama"].read_bytes()[:2000])
    code, payload = run_json(
        capsys, ["check", str(real_photos["obama"]), str(broken), str(real_photos["obama2"]), "--json"]
    )
    assert code == 0
    assert set(payload) >= {"photos", "set"}
    assert [p["path"] for p in payload["photos"]] == [
        str(real_photos["obama"]),
        str(broken),
        str(real_photos["obama2"]),
    ]
    for photo in payload["photos"]:
        assert set(photo) >= {"path", "ok", "faces", "problems"}
        for problem in photo["problems"]:
            assert set(problem) >= {"code", "message", "fix"}
    bad = payload["photos"][1]
    assert not bad["ok"]
    assert bad["problems"][0]["code"] in {"truncated_image", "unsupported_format"}
    assert payload["photos"][0]["faces"] == 1 and payload["photos"][2]["faces"] == 1
    assert set(payload["set"]) >= {"ok", "problems"}


def test_check_expands_folders(capsys, real_photos, tmp_path):
    for name in ("obama", "obama2"):
        (tmp_path / real_photos[name].name).write_bytes(real_photos[name].read_bytes())
    (tmp_path / "notes.txt").write_text("not a photo")
    code, payload = run_json(capsys, ["check", str(tmp_path), "--json"])
    assert code == 0
    assert len(payload["photos"]) == 2


def test_check_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["check"])
    assert info.value.code == 2


def test_skin_json_contract(capsys, real_photos, tmp_path):
    text = tmp_path / "x.png"
    text.write_text("hello")
    code, rows = run_json(
        capsys, ["skin", str(real_photos["obama"]), str(real_photos["astronaut"]), str(text), "--json"]
    )
    assert code == 0
    assert len(rows) == 3
    for row in rows[:2]:
        assert set(row) >= {"path", "ita", "ita_group", "monk", "skin_pixels"}
        assert 1 <= row["ita_group"] <= 6 and 1 <= row["monk"] <= 10 and row["skin_pixels"] > 500
    # Both are real faces of different tones: the lighter-skinned astronaut has the higher ITA.
    assert rows[1]["ita"] > rows[0]["ita"]
    assert rows[2]["error"]["code"] == "not_an_image"


def test_similarity_json_contract(capsys, real_photos):
    code, same = run_json(capsys, ["similarity", str(real_photos["obama"]), str(real_photos["obama2"]), "--json"])
    assert code == 0
    assert set(same) >= {"cosine", "encoder"}
    _, other = run_json(capsys, ["similarity", str(real_photos["obama"]), str(real_photos["biden"]), "--json"])
    assert same["cosine"] > other["cosine"]
    assert "dlib" in same["encoder"]


def test_similarity_without_face_is_a_clear_error(capsys, real_photos, tmp_path):
    import numpy as np
    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((400, 400, 3), 128, np.uint8)).save(blank)
    code = main(["similarity", str(real_photos["obama"]), str(blank)])
    err = capsys.readouterr().err
    assert code == 1
    assert "No face" in err and "fix:" in err
