"""``export``, ``provenance`` and ``purge``: getting finished headshots out, and data gone.

Contracts (stable; tools parse them):

* ``headshot-lab export PHOTO... --out DIR [--formats square,circle,bio,banner,hires] [--format jpeg|png|webp]
  [--kind generated|retouched] [--zip] [--json]`` — writes the crops with disclosure metadata and prints
  their paths, one per line (the zip last); notes (no face, upscaled, extended backdrop) go to stderr.
  ``--json`` prints a JSON list instead: one object per file with ``path``, ``crop``, ``source``,
  ``format``, ``width``, ``height``, ``face_found``, ``fallback``, ``upscaled``, ``upscale_factor``,
  ``extended``, ``eye_line``, ``center_x``, ``digital_source_type``, ``notes`` (the zip as
  ``{"path", "crop": "zip", "files"}``). Exit 1 if any photo could not be exported (the others are).
* ``headshot-lab provenance FILE [--json]`` — ``{"digital_source_type", "disclosure", "software", "c2pa", "kind"}``.
* ``headshot-lab purge [--data-dir D] [--json]`` — deletes expired sessions and prints how many
  (``--json``: ``{"purged", "remaining"}``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

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
    export.add_argument("--zip", action="store_true", help=f"also write DIR/{ZIP_NAME} with every file")
    export.add_argument("--json", action="store_true", help="print a JSON list instead of paths")
    export.set_defaults(handler=run_export)

    provenance = subparsers.add_parser("provenance", help="read the AI-disclosure metadata (XMP, C2PA) of an image")
    provenance.add_argument("file", type=Path, metavar="FILE")
    provenance.add_argument("--json", action="store_true", help="print JSON")
    provenance.set_defaults(handler=run_provenance)

    purge = subparsers.add_parser("purge", help="delete sessions older than the retention time (TTL)")
    purge.add_argument("--data-dir", type=Path, default=None, metavar="D", help="data folder (default: settings)")
    purge.add_argument("--json", action="store_true", help="print JSON")
    purge.set_defaults(handler=run_purge)


def run_export(args: argparse.Namespace) -> int:
    from headshot_lab.errors import HeadshotLabError
    from headshot_lab.export import export_headshots, zip_exports

    records: list[dict[str, Any]] = []
    failed = 0
    stems: dict[str, int] = {}
    for photo in args.photos:
        stem = photo.stem
        stems[stem] = stems.get(stem, 0) + 1
        if stems[stem] > 1:  # two photos with one name: keep both
            stem = f"{stem}-{stems[stem]}"
        try:
            result = export_headshots(
                photo, args.out, args.formats, format=args.format, kind=args.kind, stem=stem, zip_name=None
            )
        except HeadshotLabError as exc:
            failed += 1
            print(f"error: {photo.name}: {exc.message}", file=sys.stderr)
            if exc.fix:
                print(f"fix: {exc.fix}", file=sys.stderr)
            continue
        for note in result.notes:
            print(f"note: {photo.name}: {note}", file=sys.stderr)
        for image in result.images:
            records.append(image.to_dict())
            for note in image.notes:
                print(f"note: {image.path.name}: {note}", file=sys.stderr)
    if args.zip and records:
        files = [record["path"] for record in records]
        zip_path = zip_exports(files, args.out / ZIP_NAME)
        records.append({"path": str(zip_path), "crop": "zip", "files": [Path(f).name for f in files]})
    if args.json:
        print_json(records)
    else:
        for record in records:
            print(record["path"])
    return 1 if failed else 0


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

    store = SessionStore(data_dir=args.data_dir)
    purged = store.purge_expired()
    if args.json:
        print_json({"purged": purged, "remaining": len(store.list_sessions())})
    else:
        print(purged)
    return 0
