"""The contact sheet's labels: names with accents (a real roster's "José Müller") must render as letters, not as
the boxes a font without those glyphs draws. Known value: an accented letter draws differently from a private-use
code point (which every font draws as its missing-glyph box); null: two renders of the same name are identical."""

from __future__ import annotations

import numpy as np

from headshot_lab.team.contact_sheet import TILE, render_tile
from headshot_lab.team.layout import PersonStatus, TeamLayout

MISSING = "\ue000"  # private use: no font has a glyph for it, so it draws the missing-glyph box


def _label(tmp_path, name: str) -> np.ndarray:
    person = PersonStatus(person_id="p01", state="skipped", reason="No consent.", name=name, guide_version="1")
    tile = render_tile(TeamLayout(tmp_path), person)
    return np.asarray(tile.convert("L"))[TILE:]  # the label strip under the photo


def test_accented_names_render_as_letters_not_boxes(tmp_path):
    accented = _label(tmp_path, "José Müller")
    assert np.array_equal(accented, _label(tmp_path, "José Müller"))  # null: rendering is deterministic
    assert not np.array_equal(accented, _label(tmp_path, f"Jos{MISSING} M{MISSING}ller"))
    for letter in "éüøñçÅ…":
        assert not np.array_equal(_label(tmp_path, f"A{letter}"), _label(tmp_path, f"A{MISSING}")), letter
