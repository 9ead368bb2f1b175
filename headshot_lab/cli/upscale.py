"""``upscale``: enlarge photos 2× or 4× with a super-resolution model (or a labelled Lanczos fallback).

JSON contract (``--json``, stable, printed on stdout)::

    {"factor": 4, "method": "spandrel:ESRGAN" | "lanczos", "model": str | null, "note": str,
     "images": [{"source", "path", "width", "height", "method", "model", "passes", "source_size",
                 "fallback", "digital_source_type", "note", ...}],
     "skipped": [{"source", "code", "message", "fix"}], "seconds": float}

Exit codes: 0 when every photo was written, 1 when the model is unusable (nothing is written) or any photo could not
be read (the others are still written and listed), 2 on usage errors.
"""

from __future__ import annotations

import argparse
import sys
import time

from headshot_lab.cli import output_folder, print_json, print_line
from headshot_lab.errors import HeadshotLabError


def register(subparsers: argparse._SubParsersAction) -> None:
    up = subparsers.add_parser(
        "upscale", help="enlarge photos 2× or 4× (super-resolution model, else a labelled Lanczos fallback)"
    )
    up.add_argument("photos", nargs="+", metavar="PHOTO", help="photo files or folders")
    up.add_argument("--factor", type=int, required=True, choices=[2, 4], help="2 or 4")
    up.add_argument(
        "--model",
        default=None,
        help="checkpoint .pth/.safetensors, a Hub file owner/name:file.pth, or 'lanczos' "
        "(default: $HEADSHOT_LAB_UPSCALE_MODEL; none → Lanczos, labelled)",
    )
    up.add_argument("--out", required=True, help="output folder")
    up.add_argument("--format", default=None, choices=["jpeg", "png", "webp"], help="default: the input's")
    up.add_argument("--kind", default="retouched", choices=["generated", "retouched"], help="disclosure label")
    up.add_argument("--device", default=None, help="cpu, cuda, mps (default: $HEADSHOT_LAB_DEVICE or auto)")
    up.add_argument("--no-fallback", action="store_true", help="fail instead of falling back to Lanczos")
    up.add_argument("--json", action="store_true", help="print the machine-readable result")
    up.set_defaults(handler=run_upscale)


def _check_model(args: argparse.Namespace) -> None:
    """Refuse an unusable model before any file is written (a missing one falls back, unless --no-fallback)."""
    from headshot_lab import upscale

    given = upscale.configured_model(args.model)
    if given is None or given.lower() == upscale.LANCZOS:
        if given is None and args.no_fallback:
            raise upscale.UpscaleError(upscale.NO_MODEL_NOTE, fix=upscale.model_fix(), code="upscale_model_missing")
        return
    try:
        source = upscale.locate_model(given)
    except upscale.ModelMissing as exc:
        if args.no_fallback:
            raise upscale.UpscaleError(
                f"The super-resolution model {given} is not available ({exc}).",
                fix=upscale.model_fix(),
                code="upscale_model_missing",
            ) from None
        return
    upscale.load_model(source, args.device)


def run_upscale(args: argparse.Namespace) -> int:
    from headshot_lab.cli.check import expand_photo_args
    from headshot_lab.upscale import short_stem, upscale_file

    started = time.perf_counter()
    out = output_folder(args.out)
    _check_model(args)
    written, skipped = [], []
    used: dict[str, int] = {}
    for photo in expand_photo_args(args.photos):
        stem = short_stem(photo.stem or "photo")
        used[stem] = used.get(stem, 0) + 1
        if used[stem] > 1:  # a/x.jpg and b/x.jpg: both kept
            stem = f"{stem}-{used[stem]}"
        try:
            written.append(
                upscale_file(
                    photo,
                    out,
                    args.factor,
                    model=args.model,
                    device=args.device,
                    kind=args.kind,
                    format=args.format,
                    allow_fallback=not args.no_fallback,
                    stem=stem,
                )
            )
        except HeadshotLabError as exc:
            skipped.append({"source": str(photo), **exc.to_dict()})
    first = written[0].result if written else None
    payload = {
        "factor": args.factor,
        "method": first.method if first else None,
        "model": first.model if first else None,
        "note": first.note if first else None,
        "images": [item.to_dict() for item in written],
        "skipped": skipped,
        "seconds": round(time.perf_counter() - started, 2),
    }
    if args.json:
        print_json(payload)
    else:
        if first is not None:
            print_line(first.note)
        for item in written:
            print_line(f"{item.path}  {item.result.image.size[0]}×{item.result.image.size[1]}  {item.result.method}")
        for entry in skipped:
            print_line(f"skipped {entry['source']}: {entry['message']}", sys.stderr)
    return 1 if skipped else 0
