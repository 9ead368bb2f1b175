"""``retouch`` and ``select``: the offline studio retouch and the candidate auto-filter.

Contracts (stable; other tools parse them):

* ``retouch PHOTO... --style NAME --out DIR`` writes one retouched image per photo (plus one per
  ``--crop``), each labelled as a retouched photo (IPTC ``compositeWithTrainedAlgorithmicMedia``),
  and prints their paths, one per line. ``--json`` prints ``{"outputs": [{"photo", "paths",
  "retouch": {...}}], "errors": [{"photo", "code", "message", "fix"}]}`` instead.
* ``select DIR... --reference SELFIE_DIR [--top-k N] --json`` prints
  ``{"kept": [{"path", "scores"}], "rejected": [{"path", "reasons": [{"code", "message"}]}], "encoder"}``
  with ``kept`` best first.

Exit codes: 0 when the command did its job (a selection that rejects everything is still a
selection), 1 when it could not (no usable reference, no photo could be retouched).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headshot_lab.cli import print_json
from headshot_lab.cli.check import expand_photo_args
from headshot_lab.errors import HeadshotLabError

if TYPE_CHECKING:
    from headshot_lab.retouch import RetouchResult

OUTPUT_FORMATS = ("png", "jpg", "webp")


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


def _output_stem(photo: Path, style: str) -> str:
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in photo.stem) or "photo"
    return f"{stem}-{style}-retouched"


def run_retouch(args: argparse.Namespace) -> int:
    from headshot_lab.io import load_rgb
    from headshot_lab.retouch import DEFAULT_LIGHT, resolve_backdrop, retouch

    style_name, _ = resolve_backdrop(args.style)  # fail fast on an unknown style
    photos = expand_photo_args(args.photos)
    if not photos:
        raise HeadshotLabError("No photos were given.", fix="Pass photo files or a folder of photos.", code="no_input")
    out_dir = Path(args.out)
    light = DEFAULT_LIGHT if args.light is None else args.light
    outputs, errors = [], []
    for photo in photos:
        try:
            result = retouch(load_rgb(photo), args.style, light=light, white_balance=not args.no_white_balance)
            paths = _write(result, out_dir / _output_stem(photo, style_name), args.format, args.crop)
        except HeadshotLabError as exc:
            errors.append({"photo": str(photo), **exc.to_dict()})
            continue
        outputs.append({"photo": str(photo), "paths": [str(p) for p in paths], "retouch": result.to_dict()})
    if args.json:
        print_json({"outputs": outputs, "errors": errors})
    else:
        for output in outputs:
            for path in output["paths"]:
                print(path)
        for error in errors:
            print(f"error: {error['photo']}: {error['message']}\nfix: {error['fix']}", file=sys.stderr)
    return 0 if outputs else 1


def _write(result: RetouchResult, base: Path, fmt: str, crops: list[str]) -> list[Path]:
    """Write the retouched image (and its crops) with the retouch disclosure; return the paths."""
    save = _writer()
    suffix = "." + fmt
    paths = [save(result.image, base.with_name(base.name + suffix))]
    if crops:
        from headshot_lab.export import crop_image

        for crop in crops:
            cropped = crop_image(result.image, crop)
            paths.append(save(cropped.pixels[..., :3], base.with_name(f"{base.name}-{cropped.crop}{suffix}")))
    return paths


def _writer() -> Callable[[Any, Path], Path]:
    """``save(image, path) -> Path``: with the provenance disclosure when that module is installed."""
    try:
        from headshot_lab.provenance import save_with_provenance
    except ImportError:  # pragma: no cover - provenance is part of the package
        from headshot_lab.io import save_image

        return save_image
    return lambda image, path: save_with_provenance(image, path, kind="retouched")


def run_select(args: argparse.Namespace) -> int:
    from headshot_lab.select import ReferenceProfile, select_candidates

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
    profile = ReferenceProfile.from_images([str(p) for p in references], backend=args.backend)
    selection = select_candidates([str(p) for p in candidates], profile, top_k=args.top_k, backend=args.backend)
    payload = selection.to_dict()
    if args.json:
        print_json(payload)
        return 0
    print(f"kept {len(payload['kept'])} of {len(selection.candidates)}  ({payload['encoder']})")
    for rank, item in enumerate(payload["kept"], start=1):
        scores = item["scores"]
        print(f"  {rank}. {item['path']}  identity {scores['identity']:.3f}  sharpness {scores['sharpness']:.0f}")
    for item in payload["rejected"]:
        print(f"  ✗ {item['path']}")
        for reason in item["reasons"]:
            print(f"      {reason['code']}: {reason['message']}")
    return 0
