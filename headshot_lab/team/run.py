"""``team run``: every person of a roster through one style guide, one engine task per person.

Per person (:func:`process_person`, a top-level function so every engine can ship it to a worker):

1. **inputs** — each photo is decoded safely and re-saved pixels-only into ``people/<id>/inputs/`` (no EXIF,
   GPS, XMP or camera data is kept); a photo that cannot be read keeps its own error in the checklist.
2. **check** — the capture checklist (:func:`headshot_lab.workflow.check_photos`); a set with nothing usable (or
   no majority identity) makes the person ``skipped`` with the checklist's reason.
3. **make** — ``retouch`` (offline studio retouch onto the person's approved backdrop; the CI path) or
   ``lora`` / ``faceid`` (learn the identity, generate with the guide's style preset). Missing model weights
   make the person ``failed`` with the plain reason (looked up once for the whole roster, told to each person
   whose photos passed the checklist).
4. **select** — the best candidate against the person's own photos (:func:`headshot_lab.workflow.select_headshots`).
5. **export** — every crop of the guide, framed with the guide's eye line and face height (no per-photo zoom or
   slide), graded, named by the guide's template, written with the AI disclosure (IPTC digital source type), the
   sRGB ICC profile and the guide's name, version and SHA-256 in the file's XMP; each file's disclosure is read
   back from the file itself.
6. **measure + audit** — the primary crop's framing, backdrop and grade (for the team consistency check) and the
   person's audit card (identity and skin shift against their own photos, :func:`headshot_lab.workflow.audit_batch`).

People without consent, or with a bad roster row, are ``skipped`` with the reason and nothing of them is copied;
a person who now says *no* has their earlier files, inputs and intermediates removed (the opt-out). One bad person
never stops the run. Re-running on the same ``OUT`` resumes: a person already ``done`` (or skipped by the
checklist) with the same guide version and content, and the same photos, is kept (a ``failed`` one is retried); people already in ``OUT`` but not in this roster (the
published library) stay and are part of the consistency check, so a new hire is judged against them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from headshot_lab.atomic import copy_file_atomic, write_text_atomic
from headshot_lab.engine import EngineSpec, run_tasks, run_with_actors
from headshot_lab.errors import HeadshotLabError
from headshot_lab.team.guide import StyleGuideSpec, load_guide
from headshot_lab.team.layout import PersonStatus, TeamLayout
from headshot_lab.team.roster import Roster, RosterRow, read_roster

Mode = Literal["retouch", "lora", "faceid"]
MODES: tuple[str, ...] = ("retouch", "lora", "faceid")
KIND_OF_MODE = {"retouch": "retouched", "lora": "generated", "faceid": "generated"}
CANDIDATES_PER_PERSON = 4
"""Images generated per person in the lora/faceid modes (the selection keeps the best one)."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class PersonTask:
    """One person's work, as plain picklable data."""

    person_id: str
    out: str
    guide: StyleGuideSpec
    mode: str
    photos: tuple[str, ...]
    photos_sha256: tuple[str, ...]
    name: str = ""
    role: str = ""
    backdrop: str = ""
    notes: tuple[str, ...] = ()
    blocked: str = ""  # a reason known before any work (missing model weights): the person fails with it


@dataclass
class TeamRun:
    """What :func:`run_team` did: every person's status (this run's and the library's), and the files written."""

    out: Path
    guide: StyleGuideSpec
    mode: str
    engine: EngineSpec
    people: list[PersonStatus]
    processed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    roster_problems: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def by_state(self, state: str) -> list[str]:
        return [p.person_id for p in self.people if p.state == state]

    def to_dict(self) -> dict[str, Any]:
        layout = TeamLayout(self.out)
        return {
            "out": str(self.out),
            "guide": {"name": self.guide.name, "version": self.guide.version, "sha256": self.guide.sha256},
            "mode": self.mode,
            "engine": {"kind": self.engine.kind, "workers": self.engine.workers, "address": self.engine.address},
            "done": self.by_state("done"),
            "skipped": self.by_state("skipped"),
            "failed": self.by_state("failed"),
            "processed": list(self.processed),
            "kept": list(self.kept),
            "people": [{"person_id": p.person_id, "state": p.state, "reason": p.reason} for p in self.people],
            "roster_problems": list(self.roster_problems),
            "notes": list(self.notes),
            "report": str(layout.report_json),
            "report_md": str(layout.report_md),
            "contact_sheet": [str(layout.contact_sheet_png), str(layout.contact_sheet_pdf)],
            "seconds": round(self.seconds, 2),
        }


# ============================================================================== one person (in a worker)
def _clear(folder: Path) -> None:
    if folder.is_dir():
        shutil.rmtree(folder)


def copy_inputs(photos: Sequence[str], inputs: Path) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """Pixels-only copies of ``photos`` in ``inputs`` (EXIF, GPS and XMP dropped, orientation applied).

    Returns ``({name: copy or b""}, {name: error})``: a photo that cannot be read maps to ``b""`` with its
    error (``truncated_image``, ``not_an_image`` …), which the checklist then reports for it.
    """
    from headshot_lab.io import load_photo, save_image

    inputs.mkdir(parents=True, exist_ok=True)
    sources: dict[str, Any] = {}
    unreadable: dict[str, dict[str, str]] = {}
    for index, photo in enumerate(photos):
        path = Path(photo)
        name = path.name if path.name not in sources else f"{index:02d}-{path.name}"
        try:
            loaded = load_photo(path, min_side=0)
        except HeadshotLabError as exc:
            sources[name], unreadable[name] = b"", exc.to_dict()
            continue
        except OSError as exc:
            sources[name] = b""
            unreadable[name] = {"code": "unreadable", "message": f"{name} cannot be read ({exc}).", "fix": ""}
            continue
        suffix = ".jpg" if path.suffix.lower() in {".jpg", ".jpeg"} else ".png"
        sources[name] = save_image(loaded, inputs / f"{index:02d}{suffix}", quality=95)
    return sources, unreadable


def checklist_summary(check: Any, unreadable: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The checklist in short: photos, usable, left out (with why), set problems, advisories."""
    report = check.to_dict()
    photos = report.get("photos", [])
    warnings = sorted(
        {p["code"] for photo in photos for p in photo.get("problems", []) if p.get("severity") == "warning"}
    )
    return {
        "photos": len(photos),
        "usable": len(check.usable_names()),
        "left_out": check.left_out(),
        "unreadable": sorted(unreadable),
        "set_problems": [
            {"code": p.get("code"), "message": p.get("message"), "severity": p.get("severity")}
            for p in report.get("set", {}).get("problems", [])
        ],
        "advisories": warnings,
    }


def _make_candidates(
    task: PersonTask, usable: dict[str, Any], work: Path, generators: Any = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """``({candidate: path}, {candidate: source photo})`` by the task's mode.

    ``generators``: the worker's :class:`~headshot_lab.workflow.GeneratorCache` (one pipeline kept per device across
    people, :class:`PersonWorker`); it is released before a LoRA is trained, so training never shares the GPU with
    a resident pipeline.
    """
    from headshot_lab import workflow

    guide = task.guide
    backdrop = guide.backdrop(task.backdrop)
    if task.mode == "retouch":
        style = {"name": guide.style, "backdrop": {"color": list(backdrop.color)}}
        batch = workflow.retouch_photos(usable, style, work / "candidates", format="png", min_side=0)  # type: ignore[arg-type]
        batch.require_any()
        candidates = {out.paths[0].name: out.paths[0] for out in batch.outputs}
        sources = {out.paths[0].name: out.source for out in batch.outputs}
        return candidates, sources
    if task.mode == "lora":
        if generators is not None:
            generators.release()
        identity = workflow.train_identity(usable, work / "identity", progress=False)
    else:
        identity = workflow.faceid_identity(usable, work / "identity")
    request = workflow.GenerateRequest.for_identity(identity.ref, style=guide.style, n=CANDIDATES_PER_PERSON)
    outcome = workflow.generate_headshots(request, work / "candidates", generators=generators, progress=False)
    return {Path(p).name: Path(p) for p in outcome.images}, {}


def export_person(
    pixels: Any, guide: StyleGuideSpec, files: Path, person_id: str, *, kind: str, backdrop: str, replace: bool
) -> list[dict[str, Any]]:
    """Write every crop of ``guide`` for one person; return ``{"file", "crop", ...placement, "disclosure"}`` each.

    Each crop is framed with :meth:`StyleGuideSpec.crop_spec`, graded with the guide's colour grade, put on the
    approved backdrop when ``replace`` (generated images; a retouch already sits on it), and written by
    :func:`headshot_lab.provenance.save_with_provenance` with the guide's name/version/SHA-256 as XMP properties.
    """
    import numpy as np

    from headshot_lab import export as exporting
    from headshot_lab.provenance import read_properties, read_provenance, save_with_provenance

    files.mkdir(parents=True, exist_ok=True)
    face = exporting.find_face(pixels)
    colour = guide.backdrop(backdrop).color
    properties = {
        "StyleGuide": guide.name,
        "StyleGuideVersion": guide.version,
        "StyleGuideSha256": guide.sha256,
        "ColourProfile": guide.colour_profile,
    }
    written = []
    for crop in guide.crops:
        spec = guide.crop_spec(crop)
        plan = exporting.plan_crop(pixels.shape, spec, face)
        rendered = exporting.render_crop(pixels, plan, transparent_circle=spec.circle)
        rgb = guide.colour_grade.apply(rendered[..., :3])
        if replace:
            rgb = exporting.replace_backdrop(rgb, colour)
        out = np.dstack([rgb, rendered[..., 3]]) if rendered.shape[-1] == 4 else rgb
        path = files / guide.file_name(person_id, crop)
        fmt = exporting.image_format(path)
        detail = exporting.print_detail(plan, pixels.shape, spec)  # a print crop: dpi in the file, detail check
        dpi = None if spec.dpi is None else (spec.dpi, spec.dpi)
        save_with_provenance(out, path, kind, format=fmt, quality=guide.quality, properties=properties, dpi=dpi)
        meta = read_provenance(path, c2pa=False)
        notes = detail.notes() if detail is not None and detail.short else []
        written.append(
            {
                **({"print_short_by": round(detail.short_by, 2)} if detail and detail.short_by > 1 else {}),
                "file": f"files/{path.name}",
                "crop": crop,
                "format": fmt.lower(),
                "width": int(out.shape[1]),
                "height": int(out.shape[0]),
                "face_found": plan.face_found,
                "upscaled": plan.upscaled,
                "extended": round(float(plan.extended), 3),
                "kind": meta.get("kind"),
                "disclosure": meta.get("disclosure"),
                "guide": read_properties(path),
                "dpi": spec.dpi,
                "notes": notes,
            }
        )
    return written


def _audit(usable: dict[str, Any], chosen: str, path: Path, source: str | None, work: Path) -> dict[str, Any]:
    """The person's audit card in short (identity and skin shift vs their own photos); never raises."""
    from headshot_lab import workflow

    try:
        card = workflow.audit_batch(
            usable,
            {chosen: path},
            sources={chosen: source} if source else None,
            out_dir=work / "audit",
            new_scene={chosen} if source else (),  # made from one photo = retouched onto the guide's backdrop
        ).to_dict()
    except Exception as exc:  # the audit never stops a person's files
        return {"error": f"The audit could not run: {exc}"}
    image = (card.get("images") or [{}])[0]
    return {
        "encoder": card.get("encoder"),
        "group": card.get("group"),
        "person_ita": card.get("person_ita"),
        "flags": card.get("flags", []),
        "verdicts": {
            k: {"status": v.get("status"), "sentence": v.get("sentence"), "n": v.get("n"), "min_n": v.get("min_n")}
            for k, v in card.get("verdicts", {}).items()
            if isinstance(v, dict)
        },
        "identity": image.get("identity_cosine"),
        "identity_change": image.get("identity_delta"),
        "delta_ita": image.get("skin_delta_ita"),
        "texture_ratio": image.get("texture_ratio"),
    }


class PersonWorker:
    """One worker of the generative modes: holds a :class:`~headshot_lab.workflow.GeneratorCache` for its device.

    ``team run --mode lora|faceid`` builds one per worker (a Ray actor with ``--num-gpus`` each on a cluster, so one
    per GPU with ``--num-gpus 1``) and runs :meth:`process` for each person it is given, so the pipeline is loaded
    once per device, not once per person.
    """

    built = 0  # how many workers were built in this process (tests: one per worker, not one per person)

    def __init__(self) -> None:
        from headshot_lab import workflow

        self.generators = workflow.GeneratorCache()
        PersonWorker.built += 1

    def process(self, task: PersonTask) -> dict[str, Any]:
        return process_person(task, self.generators)


def process_person(task: PersonTask, generators: Any = None) -> dict[str, Any]:
    """Check → make → select → export → measure one person; write and return their ``status.json`` (as a dict).

    A problem of this person's (a :class:`HeadshotLabError`) gives ``skipped`` or ``failed`` with the reason and
    no exception; an unexpected error is recorded as ``failed`` and raised again, so that the engine's
    ``retries`` try the person again (the caller records the last error).
    """
    layout = TeamLayout(task.out)
    status = PersonStatus(
        person_id=task.person_id,
        state="failed",
        guide_name=task.guide.name,
        guide_version=task.guide.version,
        mode=task.mode,
        name=task.name,
        role=task.role,
        created=now_iso(),
    )
    try:
        _process(task, layout, status, generators)
    except HeadshotLabError as exc:
        status.state, status.reason = "failed", f"{exc.message} {exc.fix}".strip()
    except Exception as exc:  # recorded, then raised so the engine tries again (``retries``); never stops the team
        status.state, status.reason = "failed", f"Unexpected error: {type(exc).__name__}: {exc}"
        layout.write_status(status)
        raise
    layout.write_status(status)
    return status.to_dict()


def _process(task: PersonTask, layout: TeamLayout, status: PersonStatus, generators: Any = None) -> None:
    from headshot_lab import workflow
    from headshot_lab.io import load_rgb
    from headshot_lab.team.report import measure_person

    for folder in (layout.work_dir(task.person_id), layout.inputs_dir(task.person_id)):
        _clear(folder)  # files/ is replaced only once new files are ready: a failed re-run keeps the earlier ones
    status.checklist = {"sources_sha256": list(task.photos_sha256), "notes": list(task.notes)}
    sources, unreadable = copy_inputs(task.photos, layout.inputs_dir(task.person_id))
    check = workflow.check_photos(sources, unreadable=unreadable)
    status.checklist.update(checklist_summary(check, unreadable))
    try:
        usable, _ = workflow.usable_sources(check, sources)
    except HeadshotLabError as exc:
        status.state, status.reason = "skipped", f"Photo checklist: {exc.message}"
        return
    if task.blocked:  # after the checklist: the photos' problems are worth knowing while the weights are missing
        status.state, status.reason = "failed", task.blocked
        return
    work = layout.work_dir(task.person_id)
    candidates, made_from = _make_candidates(task, usable, work, generators)
    selection = workflow.select_headshots(  # a retouch sits on the guide's backdrop: another scene than its photo
        candidates, usable, top_k=1, sources=made_from or None, new_scene=set(made_from)
    )
    if not selection.kept:
        reasons = sorted({r.message for c in selection.rejected for r in c.reasons})
        status.state, status.reason = "failed", "No headshot passed the selection: " + "; ".join(reasons[:3])
        return
    chosen = Path(selection.kept[0].path).name
    pixels = load_rgb(candidates[chosen], min_side=0)
    kind = KIND_OF_MODE[task.mode]
    _clear(layout.files_dir(task.person_id))
    files = export_person(
        pixels,
        task.guide,
        layout.files_dir(task.person_id),
        task.person_id,
        kind=kind,
        backdrop=task.backdrop,
        replace=task.mode != "retouch",
    )
    status.files = [f["file"] for f in files]
    status.checklist["files"] = files
    primary = layout.person_dir(task.person_id) / files[0]["file"]
    status.consistency = measure_person(primary, backdrop=task.guide.backdrop(task.backdrop).name)
    status.audit = _audit(usable, chosen, candidates[chosen], made_from.get(chosen), work)
    status.state, status.reason = "done", ""


# ============================================================================== the team (in the caller)
def _keep(layout: TeamLayout, row: RosterRow, guide: StyleGuideSpec, mode: str, sha: tuple[str, ...]) -> bool:
    """A person already ``done`` (or skipped by the checklist) with this guide version and content, this mode and
    the same photos is kept; a ``failed`` person is tried again."""
    try:
        old = layout.read_status(row.person_id)
    except (HeadshotLabError, ValueError, OSError):
        return False
    same_guide = old.guide_name == guide.name and old.guide_version == guide.version
    recorded = (old.checklist.get("guide_sha256") or "") if isinstance(old.checklist, dict) else ""
    same_photos = list(sha) == list(old.checklist.get("sources_sha256", []))
    files_there = all((layout.person_dir(row.person_id) / f).is_file() for f in old.files)
    checked_out = old.state == "skipped" and "usable" in old.checklist  # the checklist's verdict on these photos
    return (
        (old.state == "done" or checked_out)
        and same_guide
        and old.mode == mode
        and same_photos
        and files_there
        and (not recorded or recorded == guide.sha256)
    )


def _finished(layout: TeamLayout, row: RosterRow, guide: StyleGuideSpec, mode: str) -> bool:
    """Whether the person is already ``done`` with this guide version and mode, their files all there."""
    try:
        old = layout.read_status(row.person_id)
    except (HeadshotLabError, ValueError, OSError):
        return False
    files_there = all((layout.person_dir(row.person_id) / f).is_file() for f in old.files)
    return old.state == "done" and old.guide_version == guide.version and old.mode == mode and files_there


def _skip_row(layout: TeamLayout, row: RosterRow, guide: StyleGuideSpec, mode: str) -> PersonStatus:
    """A roster row that cannot be processed (no consent, photos missing): ``skipped``, nothing copied.

    A person who does not (or no longer) consent has their earlier files, inputs and intermediates removed.
    """
    if row.problem_code == "no_consent":
        for folder in (
            layout.files_dir(row.person_id),
            layout.work_dir(row.person_id),
            layout.inputs_dir(row.person_id),
        ):
            _clear(folder)
    status = PersonStatus(
        person_id=row.person_id,
        state="skipped",
        reason=row.problem,
        guide_name=guide.name,
        guide_version=guide.version,
        mode=mode,
        name=row.name,
        role=row.role,
        created=now_iso(),
        checklist={"roster_problem": row.problem_code, "notes": list(row.notes)},
    )
    layout.write_status(status)
    return status


def _blocked_reason(mode: str) -> str:
    """Why nobody can be made in ``mode`` on this machine (missing weights), or ``""``."""
    if mode == "retouch":
        return ""
    try:
        if mode == "lora":
            from headshot_lab import models

            models.resolve_base(None)
        else:
            from headshot_lab import faces

            faces.get_backend("insightface")
    except HeadshotLabError as exc:
        return f"{exc.message} {exc.fix}".strip()
    return ""


def _team_record(
    layout: TeamLayout, guide: StyleGuideSpec, mode: str, engine: EngineSpec, roster: Roster, *, force: bool
) -> dict[str, Any]:
    """The existing ``team.json`` (or a new one); another guide *name* in ``OUT`` is refused unless ``force``."""
    record: dict[str, Any] = {}
    if layout.team_json.is_file():
        record = json.loads(layout.team_json.read_text(encoding="utf-8"))
        old = (record.get("guide") or {}).get("name")
        if old and old != guide.name and not force:
            raise HeadshotLabError(
                f"{layout.root} holds the team of style guide {old!r}, not {guide.name!r}.",
                fix="Use another --out folder, or --force to remake everyone with the new guide.",
                code="other_guide",
            )
    record.setdefault("created", now_iso())
    record.setdefault("runs", [])
    record.update(
        guide={"name": guide.name, "version": guide.version, "sha256": guide.sha256, "source": guide.source},
        mode=mode,
        engine={"kind": engine.kind, "workers": engine.workers, "address": engine.address},
        roster=str(roster.path),
        retention_days=guide.retention_days,
    )
    return record


def run_team(
    roster: str | Path | Roster,
    guide: str | Path | StyleGuideSpec,
    out: str | Path,
    *,
    mode: str = "retouch",
    engine: EngineSpec | None = None,
    force: bool = False,
) -> TeamRun:
    """Run a roster through a style guide into the team folder ``out`` (see the module docstring).

    Raises:
        HeadshotLabError: only for whole-run problems: an unreadable roster or guide, an unknown mode, another
            guide's team in ``out``. Every person's problem is in their status instead.
    """
    started = time.perf_counter()
    if mode not in MODES:
        raise HeadshotLabError(f"Unknown mode {mode!r}.", fix=f"Use one of: {', '.join(MODES)}.", code="bad_mode")
    spec = engine or EngineSpec()
    roster = roster if isinstance(roster, Roster) else read_roster(roster)
    guide = guide if isinstance(guide, StyleGuideSpec) else load_guide(guide)
    layout = TeamLayout(out)
    layout.root.mkdir(parents=True, exist_ok=True)
    record = _team_record(layout, guide, mode, spec, roster, force=force)
    if guide.source and Path(guide.source).is_file():
        copy_file_atomic(guide.source, layout.guide_copy)
    else:
        import yaml

        write_text_atomic(layout.guide_copy, yaml.safe_dump(guide.canonical(), sort_keys=False))
    run_started = now_iso()
    blocked = _blocked_reason(mode)
    notes = list(roster.notes)
    problems: list[dict[str, Any]] = []
    tasks: list[PersonTask] = []
    kept: list[str] = []
    for row in roster.rows:
        if row.problem_code in {"duplicate_id", "bad_person_id"}:
            problems.append(
                {"line": row.line, "person_id": row.person_id, "code": row.problem_code, "reason": row.problem}
            )
            continue
        if row.problem_code in {"missing_photos", "no_photos"} and not force and _finished(layout, row, guide, mode):
            kept.append(row.person_id)  # photos gone (e.g. deleted after the retention period): the files stay
            continue
        if not row.ok:
            _skip_row(layout, row, guide, mode)
            continue
        try:
            backdrop = guide.backdrop(row.backdrop).name
        except HeadshotLabError as exc:
            row.problem_code, row.problem = "unknown_backdrop", f"{exc.message} {exc.fix}"
            _skip_row(layout, row, guide, mode)
            continue
        sha = tuple(file_sha256(p) for p in row.photos)
        if not force and _keep(layout, row, guide, mode, sha):
            kept.append(row.person_id)
            continue
        tasks.append(
            PersonTask(
                person_id=row.person_id,
                out=str(layout.root),
                guide=guide,
                mode=mode,
                photos=tuple(str(p) for p in row.photos),
                photos_sha256=sha,
                name=row.name,
                role=row.role,
                backdrop=backdrop,
                notes=tuple(row.notes),
                blocked=blocked,
            )
        )
    keys = [t.person_id for t in tasks]
    if mode == "retouch" or blocked:  # CPU work with nothing to keep loaded: one task per person
        outcomes = run_tasks(process_person, tasks, keys=keys, spec=spec)
    else:  # one worker per device (a Ray actor with ``num_gpus`` each) keeps its pipeline across people
        outcomes = run_with_actors(PersonWorker, "process", tasks, keys=keys, spec=spec)
    for task, outcome in zip(tasks, outcomes, strict=True):
        if outcome.ok and outcome.value:
            data = PersonStatus.from_dict(outcome.value)
            data.attempts = outcome.attempts
            data.checklist["guide_sha256"] = guide.sha256
            layout.write_status(data)
            if data.state == "done" and layout.review_json.is_file():
                from headshot_lab.team.review import mark_resubmitted

                mark_resubmitted(layout.root, data.person_id)  # a re-run after a decision goes back for review
        else:  # an unexpected error (after every retry) or a worker that died: the parent records it
            layout.write_status(
                PersonStatus(
                    person_id=task.person_id,
                    state="failed",
                    reason=f"Unexpected error after {outcome.attempts} attempt(s): {outcome.error}",
                    guide_name=guide.name,
                    guide_version=guide.version,
                    mode=mode,
                    name=task.name,
                    role=task.role,
                    created=now_iso(),
                    attempts=outcome.attempts,
                )
            )
    people = [layout.read_status(pid) for pid in layout.person_ids()]
    record["people"] = [p.person_id for p in people]
    record["updated"] = now_iso()
    record["runs"].append(
        {
            "started": run_started,
            "finished": now_iso(),
            "guide_version": guide.version,
            "guide_sha256": guide.sha256,
            "mode": mode,
            "engine": spec.kind,
            "workers": spec.workers,
            "processed": [t.person_id for t in tasks],
            "kept": kept,
            "roster_problems": len(problems),
        }
    )
    record["roster_problems"] = problems
    write_text_atomic(layout.team_json, json.dumps(record, indent=2, ensure_ascii=False))
    result = TeamRun(
        out=layout.root,
        guide=guide,
        mode=mode,
        engine=spec,
        people=people,
        processed=[t.person_id for t in tasks],
        kept=kept,
        roster_problems=problems,
        notes=notes,
    )
    from headshot_lab.team.report import write_report

    result.report = write_report(result)
    result.seconds = time.perf_counter() - started
    return result


__all__ = [
    "MODES",
    "PersonTask",
    "PersonWorker",
    "TeamRun",
    "checklist_summary",
    "copy_inputs",
    "export_person",
    "process_person",
    "run_team",
]
