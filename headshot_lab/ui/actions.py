"""The eight actions of the app, as methods of :class:`AppBackend` (one per ``api_name``).

Each method maps the page's state and widget values onto one function of :mod:`headshot_lab.workflow` (the service
layer the command line calls too) and formats what it returns: Markdown status, gallery captions, published copies.
The rules (what is allowed, what is written, how it is labelled) live in the service layer, not here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from headshot_lab import workflow
from headshot_lab.errors import HeadshotLabError
from headshot_lab.privacy import Session
from headshot_lab.ui.decode import DecodeBudget
from headshot_lab.ui.files import SessionFiles
from headshot_lab.ui.formatting import (
    OK_MARK,
    candidate_caption,
    duration_words,
    embed_images,
    export_caption,
    format_capture_report,
    format_export,
    format_selection,
    next_step,
    photo_caption,
    plot_caption,
    rank_order,
    with_operator_details,
)
from headshot_lab.ui.state import (
    IDENTITY_MODES,
    MAX_PICKS,
    ActionResult,
    Item,
    Progress,
    SessionState,
    guarded,
    output_stem,
    report_progress,
)

RETRAINED_NOTE = (
    "Your photos or the training settings changed since the last training, so this training started fresh and "
    "replaced the earlier one."
)


def same_photo_groups(paths: Sequence[str], is_upload: Callable[[str], bool]) -> dict[str, list[str]]:
    """``{first path: every path of the same photo}``, in upload order.

    Gradio stores an upload in a folder named by the SHA-256 of its bytes, so two uploads of one photo share a
    folder (the same path, or another name in it); any other path stands for itself.
    """
    groups: dict[str, list[str]] = {}
    first_of: dict[str, str] = {}
    for path in paths:
        key = str(Path(path).parent) if is_upload(path) else path
        first = first_of.setdefault(key, path)
        groups.setdefault(first, []).append(path)
    return groups


def duplicate_note(group: Sequence[str]) -> dict[str, str]:
    """The one warning for ``len(group)`` uploads of the same photo (it is checked and used once)."""
    names = sorted({Path(path).name for path in group})
    also = f" ({', '.join(names)})" if len(names) > 1 else ""
    return {
        "code": "duplicate",
        "message": f"These {len(group)} photos are the same photo{also}; it is checked and used once.",
        "fix": "Add different photos of yourself instead: varied angles, light and expressions give a better likeness.",
        "severity": "warning",
    }


class AppBackend(SessionFiles):
    """Sessions (:class:`SessionFiles`) plus the app's actions; each returns an :class:`ActionResult`, never raises."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.generators = workflow.GeneratorCache()

    @property
    def generator_ready(self) -> bool:
        """Whether a base model is configured (else Learn identity and Generate are off; retouch still works)."""
        from headshot_lab.ui.formatting import base_model_setup

        return base_model_setup() is None

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
        """Consent → session; copy the uploads in (pixels only); run the capture checklist.

        Nothing of a refused request is kept: a wrong count or missing consent deletes Gradio's copies of every
        upload handed over; a file that cannot be read is refused on its own (its copy deleted, only the refusal
        reported) and never fails the others; a batch in which nothing could be read leaves no session behind.
        """
        paths = [str(getattr(f, "name", f)) for f in (files or [])]
        self.receive(state, paths)
        try:
            workflow.admit_photos(len(paths), consent=consent)
        except HeadshotLabError:
            self.discard_all(state, paths)  # refused before anything is copied in: nothing stays
            raise
        session = self.open_session(state, create=True)
        groups = same_photo_groups(paths, self.is_upload)
        uploads = self._copy_in(session, state, list(groups), progress)
        for item, group in zip(uploads, groups.values(), strict=True):
            for extra in group[1:]:  # the other copies of the same photo
                self.discard_upload(extra, state)
            item.notes = [n for n in item.notes if n.get("code") != "duplicate"]  # a reused item: said afresh
            if len(group) > 1:
                item.notes.append(duplicate_note(group))
        state.uploads = uploads
        self.forget_memory(session.id)

        def on_photo(done: int, total: int) -> None:
            report_progress(progress, 0.1 + 0.85 * done / max(total, 1), f"Checking photo {done}/{total}")

        check = workflow.check_photos(
            {item.name: item.path or b"" for item in uploads},
            unreadable={item.name: item.error for item in uploads if item.error},
            notes={item.name: item.notes for item in uploads if item.notes},
            on_photo=on_photo,
        )
        gallery = []
        for item in uploads:
            item.ok = check.usable(item.name) and bool(item.path)
            gallery.append((self.thumbnail(session, item), photo_caption(item.name, check.photo(item.name))))
        if not any(item.path for item in uploads) and not state.outputs and not state.identity:
            self._drop_empty_session(state)  # nothing could be read: nothing of this request stays
        report_progress(progress, 1.0, "Done")
        report = check.to_dict()
        status = format_capture_report(report, model=self.generator_ready)
        return ActionResult(state=state, status=status, gallery=gallery, report=report)

    def _copy_in(
        self, session: Session, state: SessionState, paths: list[str], progress: Progress | None
    ) -> list[Item]:
        """The session's uploads for ``paths``: kept copies reused, new files copied in, dropped ones deleted.

        The copies of photos no longer in the uploader are deleted *before* new ones are written, so a new photo
        of the same name never loses its copy to the clean-up of the old one.
        """
        known = {item.origin: item for item in state.uploads if item.origin}
        reused: dict[str, Item] = {}
        for path in paths:
            item = known.get(path)
            if item is None:
                continue
            kept = bool(item.path) and Path(item.path).is_file()
            refused = bool(item.error) and not Path(path).is_file()  # refused before, nothing new to read
            if kept or refused:
                reused[path] = item
        for old in state.uploads:  # photos removed from the uploader leave the session too
            if all(old is not item for item in reused.values()) and old.path:
                Path(old.path).unlink(missing_ok=True)
        taken = {Path(item.name).stem for item in reused.values()}
        budget = DecodeBudget(self.request_budget_s)  # CPU seconds of decoding for this request, all files together
        uploads: list[Item] = []
        for index, path in enumerate(paths):
            report_progress(progress, 0.1 * index / len(paths), "Copying your photos")
            if path in reused:
                self.discard_upload(path, state)  # uploaded again: the session already has its copy
                uploads.append(reused[path])
            else:
                uploads.append(self.ingest(session, path, taken, state, budget=budget))
        return uploads

    def _drop_empty_session(self, state: SessionState) -> None:
        """Delete a session that holds nothing (every file refused) and forget it: "Delete my data" finds nothing."""
        if state.session_id:
            self.delete_session(state.session_id, reason="orphan")
            with self._lock:
                self._deleted.pop(state.session_id, None)  # not "deleted while running": nothing was kept
            state.session_id = None
        state.uploads = []

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
        paths = [item.path for item in photos]
        workflow.require_learnable(paths)
        if mode not in IDENTITY_MODES:
            raise HeadshotLabError(f"Unknown mode {mode!r}.", fix="Use lora or faceid.", code="bad_option")
        if mode == "faceid":
            result = workflow.faceid_identity(paths, session.lora / workflow.FACEID_EMBEDDING_NAME)
            state.identity = result.ref
            status = with_operator_details(
                f"{OK_MARK} Your likeness is ready, from {result.photos} photos — no training needed.\n\n"
                + next_step("train"),
                f"tuning-free identity: mean ArcFace embedding ({result.encoder}) for IP-Adapter-FaceID",
            )
            return ActionResult(state=state, status=status, report={"mode": "faceid", "photos": result.photos})
        config = workflow.TrainConfig(
            steps=int(steps), rank=int(rank), prior_preservation=bool(prior_preservation), seed=int(seed)
        )
        report_progress(progress, 0.0, "Training your identity LoRA")
        fresh_note = ""
        train = functools.partial(
            workflow.train_identity,
            paths,
            session.lora / "identity",
            config,
            # Shared by every page (the base model's pictures of "a person": nothing of any visitor): paid once.
            class_image_cache=self.store.data_dir / "shared" / "class_images",
            progress=True,
        )
        try:
            result = train()
        except HeadshotLabError as exc:
            if exc.code != "checkpoint_mismatch":
                raise
            # The photos or the settings changed since the last training: a new run replaces the old one.
            result = train(resume=False)
            fresh_note = RETRAINED_NOTE
        state.identity = result.ref
        card = result.card
        fresh = f"\n\n{fresh_note}" if fresh_note else ""
        status = with_operator_details(
            f"{OK_MARK} Your likeness is learned from {len(photos)} photos ({duration_words(result.seconds)}). "
            "It stays with this page's data and is deleted with it." + fresh + "\n\n" + next_step("train"),
            [
                f"{result.steps} steps, base `{card.get('base_model')}` ({card.get('family')}), LoRA rank {config.rank}",
                *result.notes,
            ],
        )
        return ActionResult(state=state, status=status, report=card)

    # -- 3. generate / retouch ---------------------------------------------------------------------
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
        session = self.open_session(state)
        usable = state.usable_uploads()
        request = workflow.GenerateRequest.for_identity(
            state.identity,
            style=style,
            n=n,
            seed=seed,
            selfie=usable[0].path if usable else None,
            faceid_weights=faceid_weights if (state.identity or {}).get("mode") == "faceid" else None,
            pose=pose,
            controlnet=controlnet,
            steps=steps or None,
        )
        run = state.next_run()
        report_progress(progress, 0.0, "Generating")
        result = workflow.generate_headshots(
            request,
            session.outputs / "generated" / f"run-{run:03d}",
            generators=self.generators,
            require_identity=True,
            max_images=workflow.MAX_IMAGES_PER_RUN,
        )
        gallery, added = [], []
        for path, record in zip(result.images, result.records, strict=True):
            item = Item(name=f"generated/run-{run:03d}/{Path(path).name}", path=str(path), kind="generated")
            added.append(item)
            gallery.append((self.publish(session, path), f"{result.style} · seed {record['seed']}"))
        state.outputs.extend(added)
        status = with_operator_details(
            f"{OK_MARK} {len(added)} headshots in the {result.style} style ({duration_words(result.seconds)}). Each file is "
            "labelled inside as AI-generated.\n\n" + next_step("generate"),
            f"base `{result.base}`; IPTC trainedAlgorithmicMedia; the manifest can remake each one",
        )
        report = {"records": result.to_dict()["records"]}
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
        session = self.open_session(state)
        photos = {item.name: item.path for item in state.usable_uploads(strict=True)}  # the one verdict
        batch = workflow.retouch_photos(
            photos,
            style,
            session.outputs,
            light=float(light),
            stem=lambda name, style_name: f"retouched/{Path(name).stem}_{style_name}",
            min_side=0,  # the checklist has already judged each photo's size
            progress=progress,
        )
        batch.require_any()
        gallery, report = [], []
        for output in batch.outputs:
            path = output.paths[0]
            name = path.relative_to(session.outputs).as_posix()
            state.outputs = [o for o in state.outputs if o.name != name]
            state.outputs.append(Item(name=name, path=str(path), kind="retouched", source=output.source))
            shift = "" if output.delta_ita is None else f" · skin tone change {output.delta_ita:+.1f}°"
            gallery.append((self.publish(session, path), f"{name}{shift}"))
            report.append({"source": output.source, "output": name, **output.facts})
        lines = [f"- {f.source}: **{f.error['message']}** — {f.error.get('fix', '')}" for f in batch.failures]
        report += [{"source": f.source, "error": f.error} for f in batch.failures]
        status = (
            f"{OK_MARK} {len(gallery)} photo(s) retouched in the {batch.style} style — your real photo on a new "
            "backdrop, labelled as an edited photo. Skin tone is kept: the change is shown under each "
            "(in degrees; + = lighter)."
        )
        if lines:
            status += "\n\nSkipped:\n" + "\n".join(lines)
        status = with_operator_details(
            status + "\n\n" + next_step("retouch"), "IPTC compositeWithTrainedAlgorithmicMedia; ΔITA per photo"
        )
        return ActionResult(state=state, status=status, gallery=gallery, report={"retouched": report})

    # -- 4. select & export ------------------------------------------------------------------------
    def _profile(self, session: Session, state: SessionState) -> Any:
        """The person's measured photos, cached per session and set of photos (a memory cache, not a policy)."""
        references = state.usable_uploads(strict=True)  # the majority identity only
        key = (session.id, tuple(item.name for item in references))
        with self._lock:
            profile = self._profiles.get(key)
        if profile is None:  # measured outside the lock: one page's selfies never hold up the other pages
            profile = workflow.reference_profile({i.name: i.path for i in references})
            with self._lock:
                profile = self._profiles.setdefault(key, profile)
        return profile

    @guarded
    def select(self, state: SessionState, top_k: int = 8, *, progress: Progress | None = None) -> ActionResult:
        """Filter and rank every output against the person's own photos; keep at most ``top_k``."""
        session = self.open_session(state)
        candidates = {o.name: o.path for o in state.outputs}
        workflow.check_selection(len(candidates), top_k, max_keep=MAX_PICKS)  # before the selfies are measured
        report_progress(progress, 0.05, "Measuring your selfies")
        profile = self._profile(session, state)
        report_progress(progress, 0.4, "Checking the headshots")
        sources = {item.name: item.source for item in state.outputs if item.source}
        selection = workflow.select_headshots(
            candidates, profile, top_k=int(top_k), max_keep=MAX_PICKS, sources=sources
        )
        payload = selection.to_dict()
        state.picks = [c.path for c in selection.kept]
        gallery, shown = [], []
        for candidate in rank_order(selection.candidates):  # best first, then the ones left out
            item = state.output(candidate.path)
            assert item is not None
            picked = candidate.path in state.picks
            gallery.append((self.publish(session, item.path), candidate_caption(candidate, picked=picked)))
            shown.append(item.name)
        status = format_selection(payload, len(state.outputs))
        return ActionResult(
            state=state,
            status=status,
            gallery=gallery,
            report=payload,
            choices=shown + [o.name for o in state.outputs if o.name not in shown],
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
        session = self.open_session(state)
        items = []
        for name in list(picks or state.picks):
            item = state.output(name)
            if item is None:  # never a path: only names of this session's own outputs are accepted
                raise HeadshotLabError(
                    f"{name!r} is not one of your headshots.",
                    fix="Pick from the list shown after “Select”.",
                    code="unknown_pick",
                )
            items.append(workflow.ExportItem(item.path, kind=item.kind, stem=output_stem(item.name), name=item.name))
        out = session.outputs / "export" / f"export-{state.next_run():03d}"
        if team:
            crop = next((c for c in crops or () if c), "")
            outcome = workflow.export_team(
                items, out, crop, format=format, zip_name=workflow.ZIP_NAME, max_items=MAX_PICKS
            )
        else:
            outcome = workflow.export_single(
                items, out, crops, format=format, zip_name=workflow.ZIP_NAME, max_items=MAX_PICKS, progress=progress
            )
        outcome.require_any()
        notes = outcome.notes + [f"{f.source}: {f.error['message']}" for f in outcome.failures]
        files = [self.publish(session, path) for path in outcome.paths]
        assert outcome.zip_path is not None
        download = self.publish(session, outcome.zip_path)
        file_notes = {image.path.name: list(image.notes) for image in outcome.images}
        status = format_export(outcome.disclosures, notes, outcome.consistency, file_notes)
        gallery = [(path, export_caption(Path(path).name, file_notes.get(Path(path).name, []))) for path in files]
        return ActionResult(
            state=state,
            status=status,
            files=files,
            download=download,
            gallery=gallery,
            report={
                "files": outcome.disclosures,
                "notes": notes,
                "file_notes": file_notes,
                "team_consistency": outcome.consistency,
            },
        )

    # -- 5. audit ----------------------------------------------------------------------------------
    @guarded
    def audit(self, state: SessionState, *, progress: Progress | None = None) -> ActionResult:
        """The audit card of this session's outputs against the person's own photos."""
        session = self.open_session(state)
        card = workflow.audit_batch(
            {item.name: item.path for item in state.usable_uploads()},
            {item.name: item.path for item in state.outputs},
            sources={item.name: item.source for item in state.outputs if item.source},
            out_dir=session.outputs / "audit" / f"audit-{state.next_run():03d}",
            progress=progress,
        )
        gallery = [(self.publish(session, path), plot_caption(path.stem)) for path in card.plots]
        status = embed_images(card.markdown, {path.name: path for path in card.plots}) + "\n\n" + next_step("audit")
        return ActionResult(state=state, status=status, gallery=gallery, report=card.to_dict())

    # -- privacy -----------------------------------------------------------------------------------
    @guarded
    def delete_my_data(self, state: SessionState, files: Sequence[str] | None = None) -> ActionResult:
        """Delete the session folder, its published copies and pending uploads now."""
        self.discard_all(state, [str(getattr(path, "name", path)) for path in files or []])
        if not state.session_id:
            return ActionResult(state=SessionState(), status="Nothing to delete: no photos were kept for this page.")
        deletion = self.delete_session(state.session_id, reason="user")
        status = (
            f"{OK_MARK} Deleted: {deletion.files} files ({deletion.bytes / 1e6:.1f} MB) — your photos, everything "
            "made from them, and the copies shown on this page. The deletion log keeps only the time and these "
            "counts.\n\n" + next_step("delete")
        )
        return ActionResult(
            state=SessionState(), status=status, report={"files": deletion.files, "bytes": deletion.bytes}
        )
