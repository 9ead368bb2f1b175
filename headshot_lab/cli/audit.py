"""``headshot-lab audit ...``: the fairness audit from the command line.

``run`` and ``merge`` belong to the audit suite (``eval/``, which sits above the package and may
import it, never the reverse): the suite adds them through the ``headshot_lab.audit_commands``
entry point (``eval.cli:register``, declared in ``pyproject.toml``), the plugin pattern of pytest.

* ``audit run --config NAME|FILE --output-path DIR [--limit N] [--seed S] [--generator SPEC] [--dataset SPEC]
  [--num-proc N] [--shard I/N]`` — the same as ``python -m eval``;
* ``audit merge DIR... --output-path DIR`` — merge shards;
* ``audit survey --real DIR --generated DIR --output-path DIR`` — write a 2AFC survey for people;
* ``audit score KEY.csv ANSWERS.csv... [--json]`` — score it.

JSON contract of ``audit score --json``: ``{"n", "correct", "accuracy", "ci": [lo, hi], "p_value", "method",
"unanswered", "by_participant"}``.
"""

from __future__ import annotations

import argparse
from importlib.metadata import entry_points

from headshot_lab.cli import print_json

#: Entry-point group through which the audit suite adds ``audit run`` / ``audit merge``.
PLUGIN_GROUP = "headshot_lab.audit_commands"


def register(subparsers: argparse._SubParsersAction) -> None:
    audit = subparsers.add_parser(
        "audit", help="audit a generator for bias (identity, skin tone, smoothing, detectability)"
    )
    commands = audit.add_subparsers(dest="audit_command", metavar="AUDIT_COMMAND", required=True)

    for plugin in entry_points(group=PLUGIN_GROUP):
        plugin.load()(commands)

    survey = commands.add_parser("survey", help="write a two-alternative forced-choice survey (HTML + answer key)")
    survey.add_argument("--real", required=True, help="folder (or files) of real photos")
    survey.add_argument("--generated", required=True, help="folder (or files) of generated photos")
    survey.add_argument("--output-path", dest="output_path", required=True)
    survey.add_argument(
        "--trials", type=int, default=None, help="number of trials (default: as many pairs as possible)"
    )
    survey.add_argument("--seed", type=int, default=0)
    survey.add_argument("--paired", action="store_true", help="pair real[i] with generated[i] (sorted file names)")
    survey.set_defaults(handler=run_survey)

    score = commands.add_parser("score", help="score survey answers against the key")
    score.add_argument("key", help="key.csv written by `audit survey`")
    score.add_argument("answers", nargs="+", help="answers.csv files (one per participant)")
    score.add_argument("--json", action="store_true")
    score.set_defaults(handler=run_score)


def run_survey(args: argparse.Namespace) -> int:
    from headshot_lab.audit.survey import make_survey
    from headshot_lab.cli.check import expand_photo_args
    from headshot_lab.errors import HeadshotLabError

    real = expand_photo_args([args.real])
    generated = expand_photo_args([args.generated])
    if not real or not generated:
        raise HeadshotLabError(
            "No photos found: --real and --generated must name image files or folders.", code="survey_empty"
        )
    kit = make_survey(real, generated, args.output_path, seed=args.seed, n_trials=args.trials, paired=args.paired)
    print(f"wrote {kit.html} ({kit.n_trials} trials); answer key: {kit.key} (keep it away from participants)")
    return 0


def run_score(args: argparse.Namespace) -> int:
    from headshot_lab.audit.survey import score_survey

    score = score_survey(args.key, args.answers)
    if args.json:
        print_json(score.to_dict())
        return 0
    low, high = score.ci
    print(
        f"{score.correct}/{score.n} correct: accuracy {score.accuracy:.3f} "
        f"(95 % CI {low:.3f}–{high:.3f}, {score.method}; p = {score.p_value:.3g} vs. chance 0.5)"
    )
    return 0
