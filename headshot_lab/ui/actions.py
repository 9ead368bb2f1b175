"""The eight actions of the app, as methods of :class:`AppBackend` (one per ``api_name``).

Each method maps the page's state and widget values onto one function of :mod:`headshot_lab.workflow` (the service
layer the command line calls too) and formats what it returns: Markdown status, gallery captions, published copies.
The rules (what is allowed, what is written, how it is labelled) live in the service layer, not here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from headshot_lab import workflow
from headshot_lab.errors import HeadshotLabError
from headshot_lab.privacy import Session
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
        """Consent → session; copy the uploads in (pixels only); run the capture checklist."""
        paths = [str(getattr(f, "name", f)) for f in (files or [])]
        try:
            workflow.admit_photos(len(paths), consent=consent)
        except HeadshotLabError as exc:
            if exc.code == "consent_required":  # without consent nothing is kept, not even Gradio's copies
                for path in paths:
                    self.discard_upload(path)
            raise
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

        check = workflow.check_photos(
            sources,
            unreadable={item.name: item.error for item in uploads if item.error},
            notes={item.name: item.notes for item in uploads if item.notes},
            on_photo=on_photo,
        )
        gallery = []
        for item in uploads:
            item.ok = check.usable(item.name) and bool(item.path)
            gallery.append((self.thumbnail(session, item), photo_caption(item.name, check.photo(item.name))))
        report_progress(progress, 1.0, "Done")
        report = check.to_dict()
        status = format_capture_report(report, model=self.generator_ready)
        return ActionResult(state=state, status=status, gallery=gallery, report=report)

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
        result = workflow.train_identity(
            paths, session.lora / "identity", config, class_images=session.cache / "class_images", progress=True
        )
        state.identity = result.ref
        card = result.card
        status = with_operator_details(
            f"{OK_MARK} Your likeness is learned from {len(photos)} photos ({duration_words(result.seconds)}). "
            "It stays with this page's data and is deleted with it.\n\n" + next_step("train"),
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
        for path in files or []:
            self.discard_upload(str(getattr(path, "name", path)))
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
