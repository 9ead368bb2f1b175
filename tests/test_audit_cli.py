"""``headshot-lab audit ...`` (headshot_lab.cli.audit), wired into a parser here until it is registered."""

from __future__ import annotations

import argparse
import csv
import json

import numpy as np
import pytest

from headshot_lab.cli import audit as audit_cli


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="headshot-lab")
    audit_cli.register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_audit_commands_parse():
    parser = _parser()
    args = parser.parse_args(
        ["audit", "run", "--config", "offline", "--output-path", "x", "--shard", "0/2", "--num-proc", "2"]
    )
    import eval.cli

    # run/merge come from the audit suite's plugin (entry point headshot_lab.audit_commands → eval.cli:register)
    assert args.handler is eval.cli.run_audit and args.shard == "0/2" and args.num_proc == 2
    assert parser.parse_args(["audit", "merge", "a", "b", "--output-path", "c"]).shards == ["a", "b"]
    with pytest.raises(SystemExit):
        parser.parse_args(["audit"])


def test_survey_and_score_round_trip(tmp_path, capsys):
    from headshot_lab.io import save_image

    rng = np.random.default_rng(0)
    for k in range(3):
        save_image(rng.integers(0, 80, (20, 20, 3), dtype=np.uint8), tmp_path / "real" / f"r{k}.png")
        save_image(rng.integers(150, 255, (20, 20, 3), dtype=np.uint8), tmp_path / "gen" / f"g{k}.png")
    parser = _parser()
    args = parser.parse_args(
        [
            "audit",
            "survey",
            "--real",
            str(tmp_path / "real"),
            "--generated",
            str(tmp_path / "gen"),
            "--output-path",
            str(tmp_path / "kit"),
        ]
    )
    assert args.handler(args) == 0
    with open(tmp_path / "kit" / "key.csv", newline="") as handle:
        key = list(csv.DictReader(handle))
    assert len(key) == 3
    with open(tmp_path / "answers.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["trial", "choice"])
        writer.writerows([[row["trial"], row["ai_side"]] for row in key])
    capsys.readouterr()
    args = parser.parse_args(
        ["audit", "score", str(tmp_path / "kit" / "key.csv"), str(tmp_path / "answers.csv"), "--json"]
    )
    assert args.handler(args) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["correct"] == 3 and payload["accuracy"] == 1.0 and payload["ci"][1] == 1.0


def test_survey_with_no_photos_is_a_user_error(tmp_path):
    from headshot_lab.errors import HeadshotLabError

    (tmp_path / "empty").mkdir()
    args = _parser().parse_args(
        [
            "audit",
            "survey",
            "--real",
            str(tmp_path / "empty"),
            "--generated",
            str(tmp_path / "empty"),
            "--output-path",
            str(tmp_path / "k"),
        ]
    )
    with pytest.raises(HeadshotLabError, match="No photos"):
        args.handler(args)
