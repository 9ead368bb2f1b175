"""``check``, ``skin`` and ``similarity``: the offline analysis commands.

JSON contracts (stable):

* ``check PHOTO... --json`` → ``{"photos": [{"path", "ok", "faces", "problems": [{"code", "message", "fix"}], ...}],
  "set": {"ok", "problems": [...], ...}}``
* ``skin PHOTO... --json`` → ``[{"path", "ita", "ita_group", "monk", "skin_pixels", ...}]`` (an entry with
  ``"error": {"code", "message", "fix"}`` for a photo that could not be measured)
* ``similarity A B --json`` → ``{"cosine", "encoder"}``
"""

from __future__ import annotations

import argparse
from pathlib import Path

from headshot_lab.cli import print_json
from headshot_lab.io import IMAGE_SUFFIXES


def expand_photo_args(paths: list[str]) -> list[Path]:
    """Files as given; folders expand to the image files inside them (sorted, not recursive)."""
    expanded: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            expanded += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        else:
            expanded.append(path)
    return expanded


def register(subparsers: argparse._SubParsersAction) -> None:
    check = subparsers.add_parser("check", help="check source photos (the capture checklist)")
    check.add_argument("photos", nargs="+", help="photo files or folders")
    check.add_argument("--json", action="store_true", help="print the machine-readable report")
    check.add_argument("--backend", default=None, help="face backend (default: dlib)")
    check.set_defaults(handler=run_check)

    skin = subparsers.add_parser("skin", help="measure skin tone (ITA°, ITA group, Monk scale)")
    skin.add_argument("photos", nargs="+", help="photo files or folders")
    skin.add_argument("--json", action="store_true", help="print JSON")
    skin.set_defaults(handler=run_skin)

    sim = subparsers.add_parser("similarity", help="identity similarity (cosine) of the faces in two photos")
    sim.add_argument("a")
    sim.add_argument("b")
    sim.add_argument("--backend", default=None, help="face backend (default: dlib)")
    sim.add_argument("--json", action="store_true", help="print JSON")
    sim.set_defaults(handler=run_similarity)


def run_check(args: argparse.Namespace) -> int:
    from headshot_lab.capture import check_photos

    report = check_photos(expand_photo_args(args.photos), backend=args.backend)
    payload = report.to_dict()
    if args.json:
        print_json(payload)
        return 0
    for photo in payload["photos"]:
        status = "ok " if photo["ok"] else "FIX"
        print(f"[{status}] {photo['path']}  faces={photo['faces']}")
        for problem in photo["problems"]:
            print(f"      {problem['code']}: {problem['message']}\n        → {problem['fix']}")
    print(f"set: {'ok' if payload['set']['ok'] else 'needs attention'}")
    for problem in payload["set"]["problems"]:
        print(f"      {problem['code']}: {problem['message']}\n        → {problem['fix']}")
    return 0


def run_skin(args: argparse.Namespace) -> int:
    """One row per face (every face of a group photo), from the same analysis record the audit reads."""
    from headshot_lab.analysis import AnalysisOptions, analyse_photo, judge_finder
    from headshot_lab.errors import HeadshotLabError

    finder, options = judge_finder(), AnalysisOptions(embed=False, faces="all")
    rows: list[dict[str, object]] = []
    for path in expand_photo_args(args.photos):
        try:
            photo = analyse_photo(path, name=str(path), backend=finder, options=options)
        except HeadshotLabError as exc:
            rows.append({"path": str(path), "error": exc.to_dict()})
            continue
        if not photo.faces:
            rows.append({"path": str(path), "error": {"code": "no_face", "message": "No face was found."}})
        for index, face in enumerate(photo.faces):
            row: dict[str, object] = {"path": str(path), "face": index, "box": face.to_dict(photo.scale)["box"]}
            if face.tone is not None:
                rows.append({**row, **face.tone.to_dict()})
            elif not photo.has_colour:
                rows.append(
                    {**row, "error": {"code": "no_colour", "message": "The photo has no colour (black and white)."}}
                )
            else:
                problem = face.errors[-1] if face.errors else {"code": "no_skin", "message": "Too little skin."}
                rows.append({**row, "error": {"code": problem["code"], "message": problem["message"]}})
    if args.json:
        print_json(rows)
        return 0
    for row in rows:
        where = f"{row['path']}" + (f" face {row['face']}" if "face" in row else "")
        if "error" in row:
            print(f"{where}: {row['error']['message']}")  # type: ignore[index]
        else:
            print(
                f"{where}: ITA {row['ita']:.1f}° ({row['ita_group_label']}, {row['ita_band']}), "
                f"Monk {row['monk']}, {row['skin_pixels']} skin pixels"
            )
    return 0


def run_similarity(args: argparse.Namespace) -> int:
    from headshot_lab.faces import embed, get_backend, similarity
    from headshot_lab.io import load_rgb

    backend = get_backend(args.backend)
    cosine = similarity(embed(load_rgb(args.a), backend.name), embed(load_rgb(args.b), backend.name))
    payload = {"cosine": round(cosine, 4), "encoder": backend.encoder, "backend": backend.name}
    if args.json:
        print_json(payload)
    else:
        print(f"cosine {cosine:.3f}  ({backend.encoder})")
    return 0
