"""``retouch`` and ``select``: the offline studio retouch and the candidate auto-filter.

Contracts (stable; other tools parse them):

* ``retouch PHOTO... --style NAME --out DIR`` writes one retouched image per photo (plus one per
  ``--crop``), each labelled as a retouched photo (IPTC ``compositeWithTrainedAlgorithmicMedia``),
  and prints their paths, one per line. ``--json`` prints ``{"outputs": [{"photo", "paths",
  "retouch": {...}}], "errors": [{"photo", "code", "message", "fix"}]}`` instead.
* ``select DIR... --reference SELFIE_DIR [--top-k N] --json`` prints
  ``{"kept": [{"path", "scores"}], "rejected": [{"path", "reasons": [{"code", "message"}]}], "encoder"}``
  with ``kept`` best first.

Both call :mod:`headshot_lab.workflow` (the service layer the app calls too).

Exit codes: 0 when the command did its job (a selection that rejects everything is still a
selection), 1 when it could not (no usable reference, no photo could be retouched).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys

from headshot_lab import workflow
from headshot_lab.cli import output_folder, print_json, print_line
from headshot_lab.cli.check import expand_photo_args
from headshot_lab.errors import HeadshotLabError

OUTPUT_FORMATS = ("png", "jpg", "webp")
MAX_STEM_BYTES = 150
"""Longest output stem (UTF-8 bytes): room for a crop name, a suffix and the atomic writer's temp name in 255."""


def output_stem(name: str, style: str) -> str:
    """:func:`~headshot_lab.workflow.retouched_stem`, shortened past :data:`MAX_STEM_BYTES`.

    A long stem keeps its start and gets ``-{sha256(name)[:8]}`` before ``-{style}-retouched``, so two long
    names that share a start still get two files.
    """
    stem = workflow.retouched_stem(name, style)
    if len(stem.encode()) <= MAX_STEM_BYTES:
        return stem
    tail = f"-{hashlib.sha256(os.fsencode(name)).hexdigest()[:8]}-{style}-retouched"
    head = stem[: -len(f"-{style}-retouched")]
    while len((head + tail).encode()) > MAX_STEM_BYTES:
        head = head[:-1]
    return head + tail


def register(subparsers: argparse._SubParsersAction) -> None:
    retouch = subparsers.add_parser(
        "retouch",
        help="offline studio retouch of a real photo (new backdrop, even light; no generative model)",
    )
    retouch.add_argument("photos", nargs="+", metavar="PHOTO", help="photo files or folders")
    retouch.add_argument("--style", default="corporate", help="style preset (default: corporate)")
    retouch.add_argument("--out", required=True, help="output folder")
    retouch.add_argument(
        "--crop",
        action="append",
        default=[],
        help="also write this crop (square, circle, bio, banner, hires); repeatable",
    )
    retouch.add_argument("--light", type=float, default=None, help="light evening strength 0–1 (default 0.4)")
    retouch.add_argument("--no-white-balance", action="store_true", help="leave the colour balance as it is")
    retouch.add_argument("--format", choices=OUTPUT_FORMATS, default="png", help="output format (default png)")
    retouch.add_argument("--json", action="store_true", help="print the machine-readable report")
    retouch.set_defaults(handler=run_retouch)

    select = subparsers.add_parser("select", help="filter and rank candidate headshots against the person's selfies")
    select.add_argument("candidates", nargs="+", metavar="DIR", help="candidate image folders or files")
    select.add_argument("--reference", required=True, action="append", help="the person's selfies (folder or files)")
    select.add_argument("--top-k", type=int, default=None, help="keep at most this many")
    select.add_argument("--backend", default=None, help="face backend (default: dlib)")
    select.add_argument("--json", action="store_true", help="print the machine-readable report")
    select.set_defaults(handler=run_select)


def run_retouch(args: argparse.Namespace) -> int:
    from headshot_lab.retouch import resolve_backdrop

    resolve_backdrop(args.style)  # fail fast on an unknown style, before the photos are looked for
    photos = expand_photo_args(args.photos)
    if not photos:
        raise HeadshotLabError("No photos were given.", fix="Pass photo files or a folder of photos.", code="no_input")
    out = output_folder(args.out)
    batch = workflow.retouch_photos(
        {str(photo): photo for photo in photos},
        args.style,
        out,
        stem=output_stem,
        light=args.light,
        white_balance=not args.no_white_balance,
        format=args.format,
        crops=args.crop,
    )
    payload = batch.to_dict()
    if args.json:
        print_json({"outputs": payload["outputs"], "errors": payload["errors"]})
    else:
        for output in batch.outputs:
            for path in output.paths:
                print_line(str(path))
        for error in payload["errors"]:
            print_line(f"error: {error['photo']}: {error['message']}\nfix: {error['fix']}", sys.stderr)
    return 0 if batch.outputs else 1


def run_select(args: argparse.Namespace) -> int:
    references = expand_photo_args(args.reference)
    if not references:
        raise HeadshotLabError(
            "No reference photos were found.",
            fix="Pass --reference with a folder of the person's own selfies.",
            code="no_reference",
        )
    candidates = expand_photo_args(args.candidates)
    if not candidates:
        raise HeadshotLabError(
            "No candidate images were found.", fix="Pass a folder of generated headshots.", code="no_input"
        )
    selection = workflow.select_headshots(
        [str(p) for p in candidates], [str(p) for p in references], top_k=args.top_k, backend=args.backend
    )
    payload = selection.to_dict()
    if args.json:
        print_json(payload)
        return 0
    print_line(f"kept {len(payload['kept'])} of {len(selection.candidates)}  ({payload['encoder']})")
    for rank, item in enumerate(payload["kept"], start=1):
        scores = item["scores"]
        print_line(f"  {rank}. {item['path']}  identity {scores['identity']:.3f}  sharpness {scores['sharpness']:.0f}")
    for item in payload["rejected"]:
        print_line(f"  ✗ {item['path']}")
        for reason in item["reasons"]:
            print_line(f"      {reason['code']}: {reason['message']}")
    return 0
