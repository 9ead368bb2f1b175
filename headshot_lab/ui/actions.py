"""The eight actions of the app, as methods of :class:`AppBackend` (one per ``api_name``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from headshot_lab.atomic import atomic_write
from headshot_lab.errors import HeadshotLabError
from headshot_lab.privacy import Session
from headshot_lab.ui.batch_audit import audit_batch
from headshot_lab.ui.files import SessionFiles
from headshot_lab.ui.formatting import (
    candidate_caption,
    format_capture_report,
    format_export,
    format_selection,
    photo_caption,
)
from headshot_lab.ui.state import (
    FORMATS,
    IDENTITY_MODES,
    MAX_PHOTOS,
    MAX_PICKS,
    MIN_PHOTOS,
    POSE_CHOICES,
    ActionResult,
    Item,
    Progress,
    SessionState,
    guarded,
    output_stem,
    report_progress,
)


class AppBackend(SessionFiles):
    """Sessions (:class:`SessionFiles`) plus the app's actions; each returns an :class:`ActionResult`, never raises."""

    # -- 1. upload & check -------------------------------------------------------------------------
    @guarded
    def check_photos(
        self,
        state: SessionState,
        files: Sequence[str] | None,
        consent: bool,
        *,
        progress: Progress | None = None,
    ) -> ActionResult:
        """Consent → session; copy the uploads in (pixels only); run the capture checklist."""
        from headshot_lab.capture import check_photos as capture_check

        paths = [str(getattr(f, "name", f)) for f in (files or [])]
        if not consent:
            for path in paths:
                self.discard_upload(path)
            raise HeadshotLabError(
                "Please tick the consent box first.",
                fix="Your photos are only processed after you agree; unticked, nothing is kept.",
                code="consent_required",
            )
        if not MIN_PHOTOS <= len(paths) <= MAX_PHOTOS:
            raise HeadshotLabError(
                f"Upload {MIN_PHOTOS}–{MAX_PHOTOS} photos of yourself (you uploaded {len(paths)}).",
                fix="15–20 varied, sharp, well-lit photos give the best likeness; 1 is enough for studio retouch.",
                code="photo_count",
            )
        session = self.open_session(state, create=True)
        known = {item.origin: item for item in state.uploads if item.origin}
        taken: set[str] = set()
        uploads: list[Item] = []
        for index, path in enumerate(paths):
            report_progress(progress, 0.1 * index / len(paths), "Copying your photos")
            item = known.get(path)
            if item is not None and Path(item.path or item.raw).is_file():
                taken.add(Path(item.name).stem)
            else:
                item = self.ingest(session, path, taken)
            uploads.append(item)
        for old in state.uploads:  # photos removed from the uploader leave the session too
            if all(old is not new for new in uploads):
                for leftover in (old.path, old.raw):
                    if leftover:
                        Path(leftover).unlink(missing_ok=True)
        state.uploads = uploads
        self.forget_memory(session.id)
        # The checklist reads the session copies; a file that is not a photo is passed as its bytes so that
        # the report says what it is in the checklist's own words ("this is a PDF document, not a photo").
        sources = {item.name: item.path or (Path(item.raw).read_bytes() if item.raw else b"") for item in uploads}

        def on_photo(done: int, total: int) -> None:
            report_progress(progress, 0.1 + 0.85 * done / max(total, 1), f"Checking photo {done}/{total}")

        report = capture_check(sources, progress=on_photo).to_dict()
        by_name = {photo["path"]: photo for photo in report["photos"]}
        for item in uploads:  # a file that could not even be read: its own error replaces "empty file"
            if item.error and item.name in by_name:
                by_name[item.name].update(ok=False, problems=[{**item.error, "severity": "error"}])
            elif item.notes and item.name in by_name:  # warnings from the copy-in (e.g. only the first frame kept)
                by_name[item.name]["problems"].extend(item.notes)
        gallery = []
        for item in uploads:
            photo = by_name.get(item.name, {})
            item.ok = bool(photo.get("ok")) and bool(item.path)
            gallery.append((self.thumbnail(session, item), photo_caption(item.name, photo)))
        report_progress(progress, 1.0, "Done")
        return ActionResult(state=state, status=format_capture_report(report), gallery=gallery, report=report)

    # -- 2. learn identity -------------------------------------------------------------------------
    @guarded
    def train_identity(
        self,
        state: SessionState,
        mode: str = "lora",
        steps: int = 800,
        rank: int = 16,
        prior_preservation: bool = True,
        seed: int = 0,
        *,
        progress: Progress | None = None,
    ) -> ActionResult:
        """``lora``: DreamBooth-LoRA on the usable photos; ``faceid``: the ArcFace embedding for IP-Adapter-FaceID."""
        session = self.open_session(state)
        photos = state.usable_uploads(strict=True)  # never learn from a photo the checklist refused
        if not photos:
            raise HeadshotLabError(
                "None of your photos passed the checklist, so there is nothing to learn from.",
                fix="Fix the problems listed under each photo in tab 1 and check again.",
                code="no_photos",
            )
        if mode not in IDENTITY_MODES:
            raise HeadshotLabError(f"Unknown mode {mode!r}.", fix="Use lora or faceid.", code="bad_option")
        if mode == "faceid":
            return self._faceid_identity(state, session, photos)
        from headshot_lab.train import TrainConfig, train_identity_lora

        config = TrainConfig(
            steps=int(steps), rank=int(rank), prior_preservation=bool(prior_preservation), seed=int(seed)
        )
        report_progress(progress, 0.0, "Training your identity LoRA")
        result = train_identity_lora(
            [item.path for item in photos],
            None,
            session.lora / "identity",
            config,
            class_images=session.cache / "class_images",
            progress=True,
        )
        state.identity = {"mode": "lora", "path": str(result.lora_path)}
        card = result.card
        notes = "".join(f"\n- {note}" for note in card.get("notes", []))
        status = (
            f"✅ Identity learned: {result.steps} steps on {len(photos)} photos in {result.seconds:.0f} s "
            f"(base `{card.get('base_model')}`, {card.get('family')}, rank {config.rank}). "
            "The LoRA stays in your session and is deleted with it." + notes
        )
        report = {k: v for k, v in card.items() if k not in {"photos_sha256"}}
        return ActionResult(state=state, status=status, report=report)

    def _faceid_identity(self, state: SessionState, session: Session, photos: list[Item]) -> ActionResult:
        from headshot_lab.faces import get_backend, largest_face
        from headshot_lab.io import load_rgb

        backend = get_backend("insightface")  # ModelUnavailableError names HEADSHOT_LAB_INSIGHTFACE_DIR
        embeddings = []
        for item in photos:
            face = largest_face(backend.analyze(load_rgb(item.path, min_side=0)))
            if face is not None and face.embedding is not None:
                embeddings.append(np.asarray(face.embedding, dtype=np.float32))
        if not embeddings:
            raise HeadshotLabError(
                "No face was found in your photos by the ArcFace model.",
                fix="Use photos where your face is clearly visible, facing the camera.",
                code="no_face",
            )
        mean = np.mean(embeddings, axis=0)
        mean /= max(float(np.linalg.norm(mean)), 1e-12)
        target = session.lora / "faceid_embedding.npy"
        with atomic_write(target) as handle:
            np.save(handle, mean.astype(np.float32))
        state.identity = {"mode": "faceid", "embedding": str(target)}
        status = (
            f"✅ Tuning-free identity ready: the mean ArcFace embedding of {len(embeddings)} photos "
            f"({backend.encoder}). No training needed; generation conditions on it with IP-Adapter-FaceID."
        )
        return ActionResult(state=state, status=status, report={"mode": "faceid", "photos": len(embeddings)})

    # -- 3. generate / retouch ---------------------------------------------------------------------
    def _generator_for(self, faceid: Any, control: Any) -> Any:
        """One loaded generator, reused while the setup (base, FaceID, ControlNet) stays the same."""
        from headshot_lab.config import get_settings
        from headshot_lab.generate import HeadshotGenerator

        key = (
            get_settings().base_model,
            None if faceid is None else (faceid.weights, faceid.weight_name, faceid.scale),
            None if control is None else (control.model, control.kind, control.scale),
        )
        with self._lock:
            if self._generator is not None and self._generator[0] == key:
                return self._generator[1]
            generator = HeadshotGenerator(None, faceid=faceid, control=control, progress=True)
            self._generator = (key, generator)
            return generator

    @guarded
    def generate(
        self,
        state: SessionState,
        style: str = "corporate",
        n: int = 4,
        seed: int | None = None,
        pose: str = "none",
        controlnet: str = "",
        faceid_weights: str = "",
        steps: int | None = None,
        *,
        progress: Progress | None = None,
    ) -> ActionResult:
        """Generate ``n`` headshots of the learned identity in ``style`` into the session."""
        from headshot_lab.generate import ControlOptions, FaceIDOptions, Identity
        from headshot_lab.models import resolve_base
        from headshot_lab.provenance import save_with_provenance
        from headshot_lab.styles import load_style

        session = self.open_session(state)
        load_style(style)
        if not 1 <= int(n) <= 8:
            raise HeadshotLabError(f"Ask for 1–8 images at a time (not {n}).", fix="Use e.g. 4.", code="bad_option")
        resolve_base()  # the plain "no base model" message before anything else
        if not state.identity:
            raise HeadshotLabError(
                "Your identity has not been learned yet.",
                fix="Run “Learn identity” (tab 2) first — or use studio retouch, which needs no training.",
                code="no_identity",
            )
        selfie = state.usable_uploads()[0].path if state.usable_uploads() else None
        faceid = None
        if state.identity["mode"] == "faceid":
            from headshot_lab.generate import FACEID_REPO

            identity = Identity(face_embedding=np.load(state.identity["embedding"]), selfie=selfie)
            faceid = FaceIDOptions(weights=faceid_weights.strip() or FACEID_REPO)
        else:
            identity = Identity.from_lora(state.identity["path"], selfie=selfie)
        control = None
        if pose not in POSE_CHOICES:
            raise HeadshotLabError(
                f"Unknown pose control {pose!r}.", fix=f"Use one of {', '.join(POSE_CHOICES)}.", code="bad_option"
            )
        if pose != "none":
            if not controlnet.strip():
                raise HeadshotLabError(
                    f"A {pose} ControlNet needs a ControlNet model.",
                    fix="Give a Hub id or folder of a ControlNet for your base model, or choose pose “none”.",
                    code="controlnet_missing",
                )
            control = ControlOptions(model=controlnet.strip(), kind=pose, image=selfie)
        generator = self._generator_for(faceid, control)
        run = state.next_run()
        out = session.outputs / "generated" / f"run-{run:03d}"
        report_progress(progress, 0.0, "Generating")
        result = generator(
            identity, style, int(n), None if seed in (None, "", -1) else int(seed), out, steps=steps or None
        )
        gallery, added = [], []
        for path, record in zip(result.images, result.records, strict=True):
            from PIL import Image

            with Image.open(path) as opened:
                pixels = np.asarray(opened.convert("RGB"))
            save_with_provenance(pixels, path, "generated", format="PNG")  # lossless: same pixels, now labelled
            item = Item(name=f"generated/run-{run:03d}/{Path(path).name}", path=str(path), kind="generated")
            added.append(item)
            gallery.append((self.publish(session, path), f"{style} · seed {record['seed']}"))
        state.outputs.extend(added)
        status = (
            f"✅ {len(added)} headshots in the {style} style ({result.seconds:.0f} s; base `{generator.base.source}`). "
            "Each file is labelled as AI-generated (IPTC trainedAlgorithmicMedia); the manifest can remake each one."
        )
        report = {
            "records": [{k: r[k] for k in ("file", "seed", "style", "steps", "guidance_scale")} for r in result.records]
        }
        return ActionResult(state=state, status=status, gallery=gallery, report=report)

    @guarded
    def retouch(
        self,
        state: SessionState,
        style: str = "corporate",
        light: float = 0.4,
        *,
        progress: Progress | None = None,
    ) -> ActionResult:
        """Studio retouch of every usable upload: new backdrop, refined matte, even light. No generative model."""
        from headshot_lab.io import load_rgb
        from headshot_lab.provenance import save_with_provenance
        from headshot_lab.retouch import retouch as studio_retouch
        from headshot_lab.styles import load_style

        session = self.open_session(state)
        load_style(style)
        photos = state.usable_uploads()
        if not photos:
            raise HeadshotLabError(
                "None of your photos can be retouched.", fix="Upload readable photos in tab 1 first.", code="no_photos"
            )
        gallery, lines, report = [], [], []
        for index, item in enumerate(photos):
            report_progress(progress, index / len(photos), f"Retouching {item.name}")
            try:
                result = studio_retouch(load_rgb(item.path, min_side=0), style, light=float(light))
            except HeadshotLabError as exc:
                lines.append(f"- {item.name}: **{exc.message}** — {exc.fix}")
                report.append({"source": item.name, "error": exc.to_dict()})
                continue
            name = f"retouched/{Path(item.name).stem}_{style}.png"
            path = save_with_provenance(result.image, session.outputs / name, "retouched", format="PNG")
            state.outputs = [o for o in state.outputs if o.name != name]
            state.outputs.append(Item(name=name, path=str(path), kind="retouched", source=item.name))
            shift = "" if result.delta_ita is None else f" · ΔITA {result.delta_ita:+.2f}°"
            gallery.append((self.publish(session, path), f"{name}{shift}"))
            report.append({"source": item.name, "output": name, **result.to_dict()})
        report_progress(progress, 1.0, "Done")
        if not gallery:
            raise HeadshotLabError(
                "No photo could be retouched.\n" + "\n".join(lines),
                fix="Use a photo of one person, from the chest up, facing the camera.",
                code="no_person",
            )
        status = (
            f"✅ {len(gallery)} photo(s) retouched in the {style} style — your real photo, not a generated one "
            "(labelled IPTC compositeWithTrainedAlgorithmicMedia). Skin tone is locked: ΔITA is shown per photo."
        )
        if lines:
            status += "\n\nSkipped:\n" + "\n".join(lines)
        return ActionResult(state=state, status=status, gallery=gallery, report={"retouched": report})

    # -- 4. select & export ------------------------------------------------------------------------
    def _profile(self, session: Session, state: SessionState) -> Any:
        from headshot_lab.select import ReferenceProfile

        references = state.usable_uploads()
        if not references:
            raise HeadshotLabError(
                "There are no usable selfies to compare with.", fix="Upload photos in tab 1.", code="no_reference"
            )
        key = (session.id, tuple(item.name for item in references))
        with self._lock:
            profile = self._profiles.get(key)
        if profile is None:  # measured outside the lock: one page's selfies never hold up the other pages
            profile = ReferenceProfile.from_images({i.name: i.path for i in references})
            with self._lock:
                profile = self._profiles.setdefault(key, profile)
        return profile

    @guarded
    def select(self, state: SessionState, top_k: int = 8, *, progress: Progress | None = None) -> ActionResult:
        """Filter and rank every output against the person's own photos; keep at most ``top_k``."""
        from headshot_lab.select import select_candidates

        session = self.open_session(state)
        if not state.outputs:
            raise HeadshotLabError(
                "There is nothing to select from yet.",
                fix="Generate or retouch headshots in tab 3 first.",
                code="no_outputs",
            )
        if not 1 <= int(top_k) <= MAX_PICKS:
            raise HeadshotLabError(f"Keep 1–{MAX_PICKS} headshots (not {top_k}).", fix="Use e.g. 8.", code="bad_option")
        report_progress(progress, 0.05, "Measuring your selfies")
        profile = self._profile(session, state)
        report_progress(progress, 0.4, "Checking the headshots")
        selection = select_candidates({o.name: o.path for o in state.outputs}, profile, top_k=int(top_k))
        payload = selection.to_dict()
        state.picks = [c.path for c in selection.kept]
        gallery = []
        for candidate in selection.candidates:
            item = state.output(candidate.path)
            assert item is not None
            gallery.append((self.publish(session, item.path), candidate_caption(candidate)))
        status = format_selection(payload, len(state.outputs))
        return ActionResult(
            state=state,
            status=status,
            gallery=gallery,
            report=payload,
            choices=[o.name for o in state.outputs],
            picks=list(state.picks),
        )

    @guarded
    def export(
        self,
        state: SessionState,
        picks: Sequence[str] | None = None,
        crops: Sequence[str] = ("square", "circle"),
        format: str = "jpeg",
        team: bool = False,
        *,
        progress: Progress | None = None,
    ) -> ActionResult:
        """Write the chosen headshots in the chosen crops with AI-disclosure metadata, plus one zip."""
        from headshot_lab.export import CROP_NAMES, StyleGuide, export_headshots, export_team, zip_exports
        from headshot_lab.provenance import read_provenance

        session = self.open_session(state)
        names = list(picks or state.picks)
        if not names:
            raise HeadshotLabError(
                "No headshots are picked.", fix="Run “Select” first, or tick the headshots to export.", code="no_picks"
            )
        items = []
        for name in names:
            item = state.output(name)
            if item is None:  # never a path: only names of this session's own outputs are accepted
                raise HeadshotLabError(
                    f"{name!r} is not one of your headshots.",
                    fix="Pick from the list shown after “Select”.",
                    code="unknown_pick",
                )
            items.append(item)
        if len(items) > MAX_PICKS:
            raise HeadshotLabError(
                f"Export at most {MAX_PICKS} headshots (you picked {len(items)}).",
                fix="Untick some.",
                code="too_many_picks",
            )
        crops = [c for c in crops or () if c]
        unknown = [c for c in crops if c not in CROP_NAMES]
        if not crops or unknown:
            raise HeadshotLabError(
                f"Choose at least one known crop{f' (unknown: {unknown})' if unknown else ''}.",
                fix=f"Crops: {', '.join(CROP_NAMES)}.",
                code="unknown_crop",
            )
        if format not in FORMATS:
            raise HeadshotLabError(f"Unknown format {format!r}.", fix=f"Use {', '.join(FORMATS)}.", code="bad_format")
        run = state.next_run()
        out = session.outputs / "export" / f"export-{run:03d}"
        written: list[Path] = []
        notes: list[str] = []
        consistency = []
        if team:
            for kind in ("generated", "retouched"):
                group = {output_stem(i.name): i.path for i in items if i.kind == kind}
                if len(group) >= 2:
                    team_result = export_team(group, out, StyleGuide(crop=crops[0]), format=format, kind=kind)
                    written += [image.path for image in team_result.images.values()]
                    consistency.append({"kind": kind, **team_result.consistency.to_dict()})
                elif group:
                    ((stem, path),) = group.items()
                    written += export_headshots(path, out, [crops[0]], format=format, kind=kind, stem=stem).paths
            notes.append(f"Team mode: one crop ({crops[0]}), one backdrop and one colour grade for everyone.")
        else:
            for index, item in enumerate(items):
                report_progress(progress, index / len(items), f"Exporting {item.name}")
                result = export_headshots(
                    item.path, out, crops, format=format, kind=item.kind, stem=output_stem(item.name)
                )
                written += result.paths
                notes += [f"{item.name}: {note}" for note in result.notes]
        zip_path = zip_exports(written, out / "headshots.zip")
        rows = []
        for path in written:
            meta = read_provenance(path, c2pa=False)
            rows.append({"file": path.name, "kind": meta.get("kind"), "disclosure": meta.get("disclosure")})
        files = [self.publish(session, path) for path in written]
        download = self.publish(session, zip_path)
        status = format_export(rows, notes, consistency)
        return ActionResult(
            state=state,
            status=status,
            files=files,
            download=download,
            report={"files": rows, "notes": notes, "team_consistency": consistency},
        )

    # -- 5. audit ----------------------------------------------------------------------------------
    @guarded
    def audit(self, state: SessionState, *, progress: Progress | None = None) -> ActionResult:
        """The audit card of this session's outputs against the person's own photos."""
        session = self.open_session(state)
        if not state.outputs:
            raise HeadshotLabError(
                "There is nothing to audit yet.", fix="Generate or retouch headshots in tab 3 first.", code="no_outputs"
            )
        references = {item.name: item.path for item in state.usable_uploads()}
        outputs = {item.name: item.path for item in state.outputs}
        sources = {item.name: item.source for item in state.outputs if item.source}
        run = state.next_run()
        card = audit_batch(
            references,
            outputs,
            sources=sources,
            out_dir=session.outputs / "audit" / f"audit-{run:03d}",
            progress=progress,
        )
        gallery = [(self.publish(session, path), path.stem.replace("_", " ")) for path in card.plots]
        return ActionResult(state=state, status=card.markdown, gallery=gallery, report=card.to_dict())

    # -- privacy -----------------------------------------------------------------------------------
    @guarded
    def delete_my_data(self, state: SessionState, files: Sequence[str] | None = None) -> ActionResult:
        """Delete the session folder, its published copies and pending uploads now."""
        for path in files or []:
            self.discard_upload(str(getattr(path, "name", path)))
        if not state.session_id:
            return ActionResult(state=SessionState(), status="Nothing to delete: no photos were kept for this page.")
        record = self.delete_session(state.session_id, reason="user")
        files_deleted = 0 if record is None else record.files
        size = 0 if record is None else record.bytes
        status = (
            f"🗑️ Deleted: {files_deleted} files ({size / 1e6:.1f} MB) — your photos, everything made from them, "
            "and the copies shown on this page. The deletion log keeps only the time and these counts."
        )
        return ActionResult(state=SessionState(), status=status, report={"files": files_deleted, "bytes": size})
