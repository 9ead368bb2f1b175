"""Hostile paths on the command line: very long names, --out naming a file, names that are not valid UTF-8.

Each must end in a clear ``error:``/``fix:`` or in valid output, never a traceback or invalid JSON.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from headshot_lab.atomic import NAME_MAX, is_temp_file, temp_name, write_bytes_atomic
from headshot_lab.cli import json_text, main, output_folder, print_line
from headshot_lab.cli.studio import MAX_STEM_BYTES, output_stem
from headshot_lab.errors import HeadshotLabError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def portrait(real_photos, tmp_path_factory) -> Path:
    """A 600-px JPEG of one person (quick to retouch)."""
    image = Image.open(real_photos["obama"]).convert("RGB")
    image.thumbnail((600, 600))
    path = tmp_path_factory.mktemp("portrait") / "me.jpg"
    image.save(path, quality=90)
    return path


def test_the_atomic_writers_temp_name_fits_any_destination_name(tmp_path):
    name = "x" * 250 + ".png"  # a legal name whose ".{name}.{token}.tmp" would pass 255 bytes
    temp = temp_name(name, "abcd1234")
    assert len(os.fsencode(temp)) <= NAME_MAX and is_temp_file(temp)
    accented = "é" * 126 + ".png"  # 256 bytes would be cut inside a two-byte character: still its own bytes
    assert len(os.fsencode(temp_name(accented[:120] + ".png", "abcd1234"))) <= NAME_MAX
    written = write_bytes_atomic(tmp_path / name, b"data")
    assert written.read_bytes() == b"data" and [p.name for p in tmp_path.iterdir()] == [name]
    with pytest.raises(HeadshotLabError) as info:
        write_bytes_atomic(tmp_path / ("y" * 300 + ".png"), b"data")
    assert info.value.code == "name_too_long" and "too long" in info.value.message


def test_long_output_stems_are_shortened_and_stay_apart():
    first, second = "a" * 240 + "1.jpg", "a" * 240 + "2.jpg"
    stems = {output_stem(first, "corporate"), output_stem(second, "corporate")}
    assert len(stems) == 2
    assert all(len(s.encode()) <= MAX_STEM_BYTES and s.endswith("-corporate-retouched") for s in stems)
    assert output_stem("me.jpg", "corporate") == "me-corporate-retouched"  # short names are as they were


@pytest.mark.slow
def test_retouch_of_a_photo_with_a_240_character_name(portrait, tmp_path, capsys):
    source = tmp_path / ("p" * 236 + ".jpg")
    shutil.copyfile(portrait, source)
    code = main(["retouch", str(source), "--out", str(tmp_path / "out"), "--crop", "banner", "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 0, payload
    (output,) = payload["outputs"]
    assert all(Path(p).is_file() and len(os.fsencode(Path(p).name)) <= NAME_MAX for p in output["paths"])


def test_out_naming_a_file_is_a_clear_error(portrait, tmp_path, capsys):
    existing = tmp_path / "results.txt"
    existing.write_text("not a folder")
    for out in (existing, existing / "inside"):
        code = main(["retouch", str(portrait), "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 1 and "Traceback" not in err
        assert err.startswith("error: --out ")
        assert "is a file, not a folder" in err or "part of this path is a file" in err
        assert "fix:" in err
    assert existing.read_text() == "not a folder"
    with pytest.raises(HeadshotLabError) as info:
        output_folder(existing)
    assert info.value.code == "out_not_a_folder"


def test_json_of_a_name_that_is_not_utf8_is_valid_and_gives_the_bytes_back():
    name = os.fsdecode(b"caf\xe9.jpg")  # how Python hands over a Latin-1 file name on a UTF-8 system
    text = json_text({"photos": [{"path": name}]})
    text.encode("utf-8")  # valid UTF-8: no lone surrogate left
    assert os.fsencode(json.loads(text)["photos"][0]["path"]) == b"caf\xe9.jpg"
    assert json.loads(json_text({"path": "café ✓"}))["path"] == "café ✓"  # other text stays readable
    stream = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    print_line(name, stream)
    stream.flush()
    assert stream.buffer.getvalue() == b"caf\xe9.jpg\n"  # the original bytes, for shell tools


def test_check_json_with_a_latin1_file_name_in_a_subprocess(portrait, tmp_path):
    folder = os.fsencode(str(tmp_path))
    raw = os.path.join(folder, b"caf\xe9.jpg")
    shutil.copyfile(portrait, raw)
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "PYTHONIOENCODING": "utf-8"}
    done = subprocess.run(
        [sys.executable, "-m", "headshot_lab", "check", os.fsdecode(raw), "--json"],
        capture_output=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    payload = json.loads(done.stdout.decode("utf-8"))  # strict UTF-8: valid JSON
    assert os.fsencode(payload["photos"][0]["path"]) == raw
