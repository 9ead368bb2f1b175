"""The roster CSV: every row problem is collected on its row, whole-file problems are one clear error."""

from __future__ import annotations

import pytest
from PIL import Image

from headshot_lab.errors import HeadshotLabError
from headshot_lab.team.roster import parse_consent, read_roster


def _photo(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), (120, 90, 80)).save(path)
    return path


@pytest.fixture()
def folder(tmp_path):
    _photo(tmp_path / "alice" / "a1.jpg")
    _photo(tmp_path / "alice" / "a2.png")
    (tmp_path / "alice" / "notes.txt").write_text("not a photo")
    _photo(tmp_path / "bob.jpg")
    _photo(tmp_path / "bob2.jpg")
    (tmp_path / "empty").mkdir()
    return tmp_path


def _write(folder, text, name="roster.csv", encoding="utf-8"):
    path = folder / name
    path.write_bytes(text.encode(encoding))
    return path


def test_rows_read_with_folders_and_semicolon_files(folder):
    roster = read_roster(
        _write(
            folder, "person_id,photos,consent,name,role\nalice,alice,yes,Alice A,Designer\nbob,bob.jpg; bob2.jpg,1,,\n"
        )
    )
    assert [r.person_id for r in roster.ready] == ["alice", "bob"]
    alice, bob = roster.rows
    assert [p.name for p in alice.photos] == ["a1.jpg", "a2.png"]  # the .txt is not a photo
    assert alice.name == "Alice A" and alice.role == "Designer" and alice.consent
    assert [p.name for p in bob.photos] == ["bob.jpg", "bob2.jpg"]
    assert all(p.is_absolute() or p.exists() for p in alice.photos + bob.photos)


def test_every_row_problem_is_reported_and_nothing_else_is_lost(folder):
    text = (
        "person_id,photos,consent\n"
        "alice,alice,yes\n"
        "ghost,missing_folder,yes\n"
        "hollow,empty,yes\n"
        "alice,bob.jpg,yes\n"
        "../evil,bob.jpg,yes\n"
        "nope,bob.jpg,no\n"
        "unsure,bob.jpg,maybe\n"
        ",bob.jpg,yes\n"
        "blank,,yes\n"
        "bob,bob.jpg,TRUE\n"
    )
    roster = read_roster(_write(folder, text))
    codes = {r.line: r.problem_code for r in roster.rows}
    assert codes == {
        2: "",
        3: "missing_photos",
        4: "no_photos",
        5: "duplicate_id",
        6: "bad_person_id",
        7: "no_consent",
        8: "no_consent",
        9: "bad_person_id",
        10: "no_photos",
        11: "",
    }
    assert [r.person_id for r in roster.ready] == ["alice", "bob"]
    unsure = next(r for r in roster.rows if r.person_id == "unsure")
    assert "'maybe'" in unsure.problem and "counts as no" in unsure.problem
    assert "missing_folder" in next(r for r in roster.rows if r.person_id == "ghost").problem


@pytest.mark.parametrize(
    ("value", "consent"),
    [
        ("yes", True),
        ("YES ", True),
        ("true", True),
        ("1", True),
        ("no", False),
        ("0", False),
        ("false", False),
        ("", False),
        ("ja", False),
        ("2", False),
    ],
)
def test_consent_values(value, consent):
    given, problem = parse_consent(value)
    assert given is consent
    assert bool(problem) is (not consent)


def test_the_roster_is_email_free(folder):
    text = "person_id,photos,consent,Email,name,role\nalice,alice,yes,alice@example.com,alice@example.com,Lead\n"
    roster = read_roster(_write(folder, text))
    (row,) = roster.rows
    assert row.ok and row.name == "" and row.role == "Lead"
    assert any("Email" in note and "e-mail-free" in note for note in roster.notes)
    assert "@" not in str(roster.to_dict())
    bad = read_roster(_write(folder, "person_id,photos,consent\nbob@example.com,bob.jpg,yes\n", "r2.csv"))
    assert bad.rows[0].problem_code == "bad_person_id" and "@" not in str(bad.to_dict())


def test_bom_utf16_and_semicolon_dialects(folder):
    text = "person_id;photos;consent;name\nalice;alice;yes;Zoë\n"
    for encoding, name in (("utf-8-sig", "bom.csv"), ("utf-16", "u16.csv")):
        roster = read_roster(_write(folder, text, name, encoding))
        assert roster.rows[0].ok and roster.rows[0].name == "Zoë", encoding


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a CSV"),
        (b"id,photos,consent\na,b,yes\n", "no person_id column"),
        (b"person_id,files\na,b\n", "no photos, consent columns"),
        (b"", "no person_id"),
    ],
)
def test_whole_file_problems_are_one_clear_error(folder, data, words):
    path = folder / "bad.csv"
    path.write_bytes(data)
    with pytest.raises(HeadshotLabError, match=words) as info:
        read_roster(path)
    assert info.value.code == "bad_roster" and info.value.fix


def test_missing_roster_file(tmp_path):
    with pytest.raises(HeadshotLabError, match="not found"):
        read_roster(tmp_path / "nope.csv")


def test_a_line_in_another_encoding_is_a_row_problem(folder):
    data = "person_id,photos,consent,name\nalice,alice,yes,Alice\nbob,bob.jpg,yes,Zoë\n".encode("latin-1")
    path = folder / "latin1.csv"
    path.write_bytes(data.replace(b"Alice", "Alicé".encode()))
    roster = read_roster(path)
    alice, bob = roster.rows
    assert alice.ok and alice.name == "Alicé"
    assert bob.problem_code == "bad_encoding" and "UTF-8" in bob.problem and bob.line == 3


def test_windows_separators_and_mac_unicode_folder_names_are_found(folder):
    """A roster typed on Windows (``photos\\Ann Lee``) and a folder copied from a Mac (``José`` decomposed, NFD,
    while the CSV has it composed) still find the photos; a folder that exists in no spelling is still reported."""
    import unicodedata

    _photo(folder / "photos" / "Ann Lee" / "a.jpg")
    _photo(folder / unicodedata.normalize("NFD", "José Müller") / "j.jpg")
    _photo(folder / "photos" / "sub" / "s.jpg")
    text = (
        "person_id,photos,consent\r\n"
        "ann,photos\\Ann Lee,yes\r\n"
        f"jose,{unicodedata.normalize('NFC', 'José Müller')},yes\r\n"
        "sub,photos\\sub\\s.jpg,yes\r\n"
        "ghost,photos\\Nobody,yes\r\n"
    )
    rows = {row.person_id: row for row in read_roster(_write(folder, text)).rows}
    assert [p.name for p in rows["ann"].photos] == ["a.jpg"] and rows["ann"].ok
    assert [p.name for p in rows["jose"].photos] == ["j.jpg"] and rows["jose"].ok
    assert [p.name for p in rows["sub"].photos] == ["s.jpg"] and rows["sub"].ok
    assert rows["ghost"].problem_code == "missing_photos" and "photos\\Nobody" in rows["ghost"].problem
