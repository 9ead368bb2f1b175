"""``export``, ``team-export``, ``provenance`` and ``purge``: getting finished headshots out, and data gone.

Contracts (stable; tools parse them):

* ``headshot-lab export PHOTO... --out DIR [--formats square,circle,bio,banner,hires,print] [--format jpeg|png|webp]
  [--kind generated|retouched] [--print-size WxH] [--print-dpi DPI] [--refuse-short-print] [--zip] [--json]`` — writes the crops with disclosure metadata and prints
  their paths, one per line (the zip last); notes (no face, upscaled, extended backdrop) go to stderr.
  ``--json`` prints a JSON list instead: one object per file with ``path``, ``crop``, ``source``,
  ``format``, ``width``, ``height``, ``face_found``, ``fallback``, ``upscaled``, ``upscale_factor``,
  ``extended``, ``eye_line``, ``center_x``, ``digital_source_type``, ``notes`` (the zip as
  ``{"path", "crop": "zip", "files"}``). Exit 1 if any photo could not be exported (the others are).
* ``headshot-lab team-export PHOTO... --out DIR [--crop square] [--format jpeg] [--kind generated|retouched]
  [--zip] [--json]`` — one style guide for everyone (:func:`headshot_lab.workflow.export_team`); prints the paths
  (the zip last) and the consistency score on stderr; ``--json``: ``{"images": [records as for export],
  "team_consistency": [{"kind", "score", ...}], "notes"}``.
* ``headshot-lab provenance FILE [--json]`` — ``{"digital_source_type", "disclosure", "software", "c2pa", "kind"}``.
* ``headshot-lab purge [--data-dir D] [--json]`` — deletes expired sessions, with the app's published copies of
  them, and prints how many (``--json``: ``{"purged", "remaining"}``).

Every command calls :mod:`headshot_lab.workflow`, the service layer the app calls too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from headshot_lab import export as exporting
from headshot_lab import workflow
from headshot_lab.cli import print_json
from headshot_lab.export import CROP_NAMES as CROP_CHOICES
from headshot_lab.export import FORMAT_CHOICES

KIND_CHOICES = ("generated", "retouched")
ZIP_NAME = "headshots.zip"


def _crop_list(value: str) -> list[str]:
    names = [part.strip().lower() for part in value.split(",") if part.strip()]
    unknown = [name for name in names if name not in CROP_CHOICES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown crop {', '.join(unknown) or '(none)'}; choose from {','.join(CROP_CHOICES)}"
        )
    return list(dict.fromkeys(names))


def _print_inches(value: str) -> tuple[float, float]:
    """``WxH`` in inches (``5x7``, ``8×10``, ``3.5x4.5``) → ``(width, height)``."""
    parts = value.lower().replace("×", "x").split("x")
    try:
        width, height = (float(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not WxH in inches (e.g. 4x5 or 8x10)") from None
    return width, height


def register(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser(
        "export",
        help="write profile crops (square, circle, bio, banner, hi-res) with AI-disclosure metadata",
        description="Frame each photo from its face and write the chosen crops, each carrying IPTC "
        "DigitalSourceType + a disclosure line in XMP (and a C2PA manifest when "
        "HEADSHOT_LAB_C2PA_CERT/KEY are set). Upload metadata (EXIF, GPS) is never copied.",
    )
    export.add_argument("photos", nargs="+", metavar="PHOTO", type=Path, help="image files to export")
    export.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder (created)")
    export.add_argument(
        "--formats",
        type=_crop_list,
        default=list(CROP_CHOICES),
        metavar="LIST",
        help=f"comma-separated crops (default: {','.join(CROP_CHOICES)})",
    )
    export.add_argument("--format", choices=FORMAT_CHOICES, default="jpeg", help="file format (default: jpeg)")
    export.add_argument(
        "--kind",
        choices=KIND_CHOICES,
        default="generated",
        help="generated = trainedAlgorithmicMedia; retouched = compositeWithTrainedAlgorithmicMedia",
    )
    export.add_argument(
        "--print-size",
        type=_print_inches,
        default=None,
        metavar="WxH",
        help="the print crop's size in inches (default 4x5), e.g. 5x7 or 8x10",
    )
    export.add_argument("--print-dpi", type=int, default=None, metavar="DPI", help="the print's dots per inch (300)")
    export.add_argument(
        "--refuse-short-print",
        action="store_true",
        help="fail a photo whose real detail is below the print size (default: write it with a warning)",
    )
    export.add_argument("--zip", action="store_true", help=f"also write DIR/{ZIP_NAME} with every file")
    export.add_argument("--json", action="store_true", help="print a JSON list instead of paths")
    export.set_defaults(handler=run_export)

    team = subparsers.add_parser(
        "team-export",
        help="one style for a whole team: the same crop, backdrop and colour grade, with a consistency score",
        description="Put every photo on one backdrop with one colour grade and one framing (faces on the same "
        "eye line at the same size), write each with its AI-disclosure metadata, and score how consistent "
        "the set is (backdrop ΔE, face-scale and eye-line spread). Photos are grouped by --kind.",
    )
    team.add_argument("photos", nargs="+", metavar="PHOTO", type=Path, help="one headshot per person")
    team.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder (created)")
    team.add_argument("--crop", choices=CROP_CHOICES, default="square", help="the team's crop (default: square)")
    team.add_argument("--format", choices=FORMAT_CHOICES, default="jpeg", help="file format (default: jpeg)")
    team.add_argument("--kind", choices=KIND_CHOICES, default="generated", help="as for export")
    team.add_argument("--zip", action="store_true", help=f"also write DIR/{ZIP_NAME} with every file")
    team.add_argument("--json", action="store_true", help="print JSON (images, team_consistency, notes)")
    team.set_defaults(handler=run_team_export)

    provenance = subparsers.add_parser("provenance", help="read the AI-disclosure metadata (XMP, C2PA) of an image")
    provenance.add_argument("file", type=Path, metavar="FILE")
    provenance.add_argument("--json", action="store_true", help="print JSON")
    provenance.set_defaults(handler=run_provenance)

    purge = subparsers.add_parser("purge", help="delete sessions older than the retention time (TTL)")
    purge.add_argument("--data-dir", type=Path, default=None, metavar="D", help="data folder (default: settings)")
    purge.add_argument("--json", action="store_true", help="print JSON")
    purge.set_defaults(handler=run_purge)


def run_export(args: argparse.Namespace) -> int:
    items = [workflow.ExportItem(photo, kind=args.kind, name=photo.name) for photo in args.photos]
    print_size = None
    if args.print_size or args.print_dpi:
        width, height = args.print_size or exporting.PRINT_INCHES
        print_size = (width, height, args.print_dpi or exporting.PRINT_DPI)
    outcome = workflow.export_single(
        items,
        args.out,
        args.formats,
        format=args.format,
        zip_name=_zip(args),
        print_size=print_size,
        refuse_short_print=args.refuse_short_print,
    )
    for failure in outcome.failures:
        print(f"error: {failure.source}: {failure.error['message']}", file=sys.stderr)
        if failure.error.get("fix"):
            print(f"fix: {failure.error['fix']}", file=sys.stderr)
    for note in outcome.notes:
        print(f"note: {note}", file=sys.stderr)
    records = _records(outcome)
    _print_records(args, records)
    return 1 if outcome.failures else 0


def run_team_export(args: argparse.Namespace) -> int:
    items = [workflow.ExportItem(photo, kind=args.kind, name=photo.name) for photo in args.photos]
    outcome = workflow.export_team(items, args.out, args.crop, format=args.format, zip_name=_zip(args))
    records = _records(outcome)
    if args.json:
        print_json({"images": records, "team_consistency": outcome.consistency, "notes": outcome.notes})
        return 0
    for note in outcome.notes:
        print(f"note: {note}", file=sys.stderr)
    for entry in outcome.consistency:
        print(f"note: team consistency ({entry['kind']}): {entry['score']:.2f}", file=sys.stderr)
    _print_records(args, records)
    return 0


def _zip(args: argparse.Namespace) -> str | None:
    return ZIP_NAME if args.zip else None


def _records(outcome: workflow.ExportOutcome) -> list[dict[str, Any]]:
    """One record per file (``ExportedImage.to_dict()``), then the zip as ``{"path", "crop": "zip", "files"}``."""
    records: list[dict[str, Any]] = [image.to_dict() for image in outcome.images]
    if outcome.zip_path is not None:
        files = [Path(record["path"]).name for record in records]
        records.append({"path": str(outcome.zip_path), "crop": "zip", "files": files})
    return records


def _print_records(args: argparse.Namespace, records: list[dict[str, Any]]) -> None:
    for record in records:
        for note in record.get("notes") or [] if record.get("crop") != "zip" else []:
            print(f"note: {Path(record['path']).name}: {note}", file=sys.stderr)
    if args.json:
        print_json(records)
        return
    for record in records:
        print(record["path"])


def run_provenance(args: argparse.Namespace) -> int:
    from headshot_lab.provenance import read_provenance

    info = read_provenance(args.file)
    payload = {key: info.get(key) for key in ("digital_source_type", "disclosure", "software", "c2pa", "kind")}
    if args.json:
        print_json(payload)
        return 0
    if not payload["digital_source_type"] and not payload["c2pa"]:
        print(f"{args.file.name}: no AI-disclosure metadata (never written, or stripped by a re-encode).")
        return 0
    for key in ("digital_source_type", "disclosure", "software"):
        print(f"{key}: {payload[key] or '-'}")
    c2pa = payload["c2pa"]
    print(f"c2pa: {c2pa['validation_state'] if isinstance(c2pa, dict) else 'none'}")
    return 0


def run_purge(args: argparse.Namespace) -> int:
    from headshot_lab.privacy import SessionStore

    report = workflow.purge_expired(store=SessionStore(data_dir=args.data_dir))
    if args.json:
        print_json({"purged": report.purged, "remaining": report.remaining})
    else:
        print(report.purged)
    return 0
