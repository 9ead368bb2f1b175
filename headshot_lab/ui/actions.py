"""The nine actions of the app, as methods of :class:`AppBackend` (one per ``api_name``).

Each method maps the page's state and widget values onto one function of :mod:`headshot_lab.workflow` (the service
layer the command line calls too) and formats what it returns: Markdown status, gallery captions, published copies.
The rules (what is allowed, what is written, how it is labelled) live in the service layer, not here.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from headshot_lab import workflow
from headshot_lab.config import get_settings
from headshot_lab.errors import HeadshotLabError, ModelUnavailableError
from headshot_lab.identity_engines import TUNING_FREE, engines_for
from headshot_lab.privacy import Session
from headshot_lab.spaces_compat import on_zero_gpu
from headshot_lab.ui import gpu_time
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
from headshot_lab.workflow import FaceIDOptions, SpeedOptions

logger = logging.getLogger(__name__)
#: The operator's name of each tuning-free engine's method.
ENGINE_WORDS = {"faceid": "IP-Adapter-FaceID", "faceid-plus": "IP-Adapter-FaceID-PlusV2", "instantid": "InstantID"}

PREVIEW_IMAGES = 2
"""How many headshots one quick preview makes."""
PREVIEW_STEPS = 4
"""Sampler steps of the quick preview (the few-step LCM path: ~4 steps at guidance 1)."""

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


@dataclass
class GeneratePlan:
    """One generation, decided before the graphics card is asked for: plain data, so it crosses into ZeroGPU's
    worker process (which pickles the GPU function's arguments) and back.

    Attributes:
        request: what to generate (style, count, seed, identity files, FaceID and pose settings).
        out_dir: the session folder the images go to.
        speed: the few-step path for a preview (``None``: the style's sampler).
        work: the work, for the GPU time asked for (:class:`~headshot_lab.ui.gpu_time.GenerateWork`).
        preview: a quick preview (tuning-free identity + few steps).
    """

    request: workflow.GenerateRequest
    out_dir: Path
    speed: SpeedOptions | None
    work: gpu_time.GenerateWork
    preview: bool = False

    @property
    def gpu_seconds(self) -> int:
        """The seconds of GPU time to ask for (ZeroGPU's ``duration``), computed from :attr:`work`."""
        return self.work.request_s()


@dataclass
class RenderResult:
    """What the GPU call returns: the generator's files, or the error (plain data, never an exception object)."""

    outcome: workflow.GenerateOutcome | None = None
    error: dict[str, str] | None = None
    unavailable: bool = False


def gpu_seconds(plan: GeneratePlan) -> int:
    """ZeroGPU's ``duration`` callable for the render call: takes the call's own argument."""
    return plan.gpu_seconds


def nsfw_note(blocked: int, total: int) -> str:
    """The visitor's words for pictures the base model's safety filter blocked (they come out black)."""
    verb, it = ("was", "it is") if blocked == 1 else ("were", "they are")
    return (
        f"⚠ {blocked} of the {total} pictures {verb} blocked by the model's safety filter (it turns them black), so "
        f"{it} not shown and cannot be selected or exported. "
        "Try another variation number for more."
    )


class AppBackend(SessionFiles):
    """Sessions (:class:`SessionFiles`) plus the app's actions; each returns an :class:`ActionResult`, never raises."""

    def __init__(self, *args: Any, zero_gpu: bool | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: On ZeroGPU: no LoRA training; only the generators built at start-up run (see :meth:`preload`).
        self.zero_gpu = on_zero_gpu() if zero_gpu is None else bool(zero_gpu)
        # ZeroGPU keeps both start-up setups (FaceID, preview); a dedicated GPU one at a time (16 GB cards).
        self.generators = workflow.GeneratorCache(capacity=2 if self.zero_gpu else 1)
        self.preload_errors: dict[str, str] = {}

    # -- generators: built before any GPU call --------------------------------------------------------
    @property
    def _faceid_device(self) -> str | None:
        """ArcFace on the CPU on ZeroGPU (seconds of work, outside any GPU request); else ``HEADSHOT_LAB_DEVICE``."""
        return "cpu" if self.zero_gpu else None

    def faceid_options(self, weights: str = "") -> FaceIDOptions:
        """The FaceID setup: ``weights`` (the operator's field), else ``HEADSHOT_LAB_FACEID_WEIGHTS``, else
        ``h94/IP-Adapter-FaceID``; the weight file from ``HEADSHOT_LAB_FACEID_WEIGHT_NAME`` for the default weights."""
        settings = get_settings()
        chosen = weights.strip() or settings.faceid_weights or workflow.FACEID_REPO
        name = settings.faceid_weight_name if chosen == (settings.faceid_weights or workflow.FACEID_REPO) else None
        return FaceIDOptions(weights=chosen, weight_name=name)

    @staticmethod
    def preview_speed(family: str) -> SpeedOptions:
        """The quick preview's sampler: the family's LCM-LoRA (or ``HEADSHOT_LAB_FEW_STEP_LORA``), 4 steps."""
        lora = workflow.few_step_lora(family)
        return SpeedOptions(few_step_lora=lora, few_step_steps=PREVIEW_STEPS, few_step_guidance=1.0)

    def setups(self) -> dict[str, dict[str, Any]]:
        """The generator setups built before the first visitor: ``{name: GeneratorCache.get keyword arguments}``.

        On ZeroGPU the ones a visitor can run there (no LoRA training): each engine of ``HEADSHOT_LAB_ZERO_GPU_ENGINES``
        that fits the base family (default FaceID) and the quick preview. On a dedicated GPU the plain base (a trained
        LoRA attaches to it); other setups load when first asked for.
        """
        family = workflow.base_family()
        if not self.zero_gpu:
            return {"base": {"faceid": None}}
        wanted: dict[str, dict[str, Any]] = {}
        for engine in self.zero_gpu_engines(family):
            request = workflow.GenerateRequest(engine=engine)
            wanted[engine] = {"faceid": self.engine_faceid(engine), "instantid": request.instantid_options()}
        wanted["preview"] = {"faceid": self.faceid_options(), "speed": self.preview_speed(family)}
        return wanted

    @staticmethod
    def zero_gpu_engines(family: str) -> list[str]:
        """The tuning-free engines built at start-up on ZeroGPU (``HEADSHOT_LAB_ZERO_GPU_ENGINES``) that fit ``family``."""
        fitting = {engine.name for engine in engines_for(family)}
        return [name for name in get_settings().zero_gpu_engines if name in fitting and name in TUNING_FREE]

    def identity_engines(self) -> list[str]:
        """The engines the page offers for the configured base: all that fit its family on a dedicated GPU; on
        ZeroGPU the ones built at start-up, then ``lora`` (shown, and refused with a pointer to a dedicated GPU).
        No base model: ``lora`` and ``faceid`` (Learn identity is off anyway)."""
        try:
            family = workflow.base_family()
        except HeadshotLabError:
            return ["lora", "faceid"]
        if not self.zero_gpu:
            return [engine.name for engine in engines_for(family)]
        return [*self.zero_gpu_engines(family), "lora"]

    def engine_faceid(self, engine: str, weights: str = "") -> FaceIDOptions | None:
        """The FaceID setup of a tuning-free ``engine`` (``faceid``: :meth:`faceid_options`; ``faceid-plus``: the
        same weights, PlusV2's file; ``instantid`` and ``lora``: none)."""
        if engine == "faceid":
            return self.faceid_options(weights)
        if engine == "faceid-plus":
            base = self.faceid_options(weights)
            request = workflow.GenerateRequest(engine=engine, faceid_weights=base.weights)
            return request.faceid_options()
        return None

    def preload(self) -> dict[str, str]:
        """Build every setup of :meth:`setups` and move it to its device, now (never inside a GPU call).

        On ZeroGPU call it at import on the main thread: ``.to("cuda")`` there is recorded by ``spaces`` and replayed
        on the real GPU when a GPU call starts. Returns ``{setup: "ok" | "error: …"}`` (errors are kept in
        :attr:`preload_errors` and the action that needs the setup reports them).
        """
        try:
            wanted = self.setups()
        except HeadshotLabError as exc:  # no base model: nothing to build; the page says so
            return {"base": f"error: {exc.message}"}
        done: dict[str, str] = {}
        for name, setup in wanted.items():
            try:
                self.generators.get(control=None, progress=False, **setup).load()
            except Exception as exc:  # a missing download must not take the page down
                logger.warning("could not build the %s generator: %s", name, exc)
                self.preload_errors[name] = str(getattr(exc, "message", exc))
                done[name] = f"error: {self.preload_errors[name]}"
            else:
                self.preload_errors.pop(name, None)
                done[name] = "ok"
        return done

    def _ready_generator(self, request: workflow.GenerateRequest, speed: SpeedOptions | None) -> None:
        """The request's generator loaded (and its identity attached) *before* the GPU call.

        On ZeroGPU only a setup built at start-up can run: anything else would load weights inside the GPU call
        (charged to the visitor, and lost with the worker process), so it is refused with what to set.
        """
        faceid, control, instantid = request.faceid_options(), request.control_options(), request.instantid_options()
        if self.zero_gpu:
            if self.generators.cached(faceid, control, speed=speed, instantid=instantid) is None:
                reasons = "; ".join(f"{k}: {v}" for k, v in self.preload_errors.items())
                raise HeadshotLabError(
                    "This option is not available on this shared graphics card: its model was not loaded when "
                    "the app started.",
                    fix="Leave the pose guide at “none” and the other settings as they are, then try again."
                    "\nOperator: set HEADSHOT_LAB_FACEID_WEIGHTS / HEADSHOT_LAB_FEW_STEP_LORA before start-up, or run "
                    "the app on a dedicated GPU, where every option loads when asked for."
                    + (f" Start-up errors: {reasons}" if reasons else ""),
                    code="not_on_zero_gpu",
                )
            return
        generator = self.generators.get(faceid, control, speed=speed, instantid=instantid)
        generator.load()
        generator.attach_identity(request.identity())

    def render(self, plan: GeneratePlan) -> RenderResult:
        """The GPU part of a generation: run the pipeline built before, write the labelled images. Nothing else:
        no model loads here, no page state changes (ZeroGPU runs this in another process)."""
        try:
            outcome = workflow.generate_headshots(
                plan.request,
                plan.out_dir,
                speed=plan.speed,
                generators=self.generators,
                require_identity=True,
                max_images=workflow.MAX_IMAGES_PER_RUN,
            )
        except HeadshotLabError as exc:
            return RenderResult(error=exc.to_dict(), unavailable=isinstance(exc, ModelUnavailableError))
        return RenderResult(outcome=outcome)

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
        """``lora``: DreamBooth-LoRA on the usable photos; a tuning-free engine (``faceid``, ``faceid-plus``,
        ``instantid``): the ArcFace embedding it generates from (seconds on the CPU)."""
        session = self.open_session(state)
        photos = state.usable_uploads(strict=True)  # never learn from a photo the checklist refused
        paths = [item.path for item in photos]
        workflow.require_learnable(paths)
        if mode not in IDENTITY_MODES:
            raise HeadshotLabError(
                f"Unknown mode {mode!r}.", fix=f"Use one of: {', '.join(IDENTITY_MODES)}.", code="bad_option"
            )
        if mode in TUNING_FREE:  # seconds on the CPU: never a GPU request
            try:
                family = workflow.base_family()
            except ModelUnavailableError:  # no base model yet: the embedding is learned; Generate will say so
                family = None
            if family is not None:
                workflow.check_engine(mode, family)  # e.g. InstantID on SD1.5: said now, not after the embedding
            result = workflow.faceid_identity(
                paths, session.lora / workflow.FACEID_EMBEDDING_NAME, device=self._faceid_device, engine=mode
            )
            state.identity = result.ref
            status = with_operator_details(
                f"{OK_MARK} Your likeness is ready, from {result.photos} photos — no training needed.\n\n"
                + next_step("train"),
                f"tuning-free identity: mean ArcFace embedding ({result.encoder}) for the {mode} engine "
                f"({ENGINE_WORDS[mode]})",
            )
            return ActionResult(state=state, status=status, report={"mode": mode, "photos": result.photos})
        if self.zero_gpu:  # refused before any GPU request: see gpu_time.training_refusal for why
            raise gpu_time.training_refusal(workflow.base_family(), int(steps), prior=bool(prior_preservation))
        config = workflow.TrainConfig(
            steps=int(steps), rank=int(rank), prior_preservation=bool(prior_preservation), seed=int(seed)
        )
        freed = self.generators.release()  # the cached generator leaves the GPU: training needs its memory
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
                *([f"freed {freed} loaded generator(s) from the GPU before training"] if freed else []),
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
        detail_face: bool = False,
        *,
        preview: bool = False,
        render: Callable[[GeneratePlan], RenderResult] | None = None,
        progress: Progress | None = None,
    ) -> ActionResult:
        """Generate ``n`` headshots of the learned identity in ``style`` into the session (``detail_face``: the
        face-detail pass, :mod:`headshot_lab.detail`, after the images are made).

        Three parts, so the graphics card is held only for the middle one: :meth:`plan_generate` (checks, the GPU
        time from the work, the generator loaded — outside any GPU call), ``render(plan)`` (the app passes its
        ``spaces.GPU``-decorated :meth:`render`; default: :meth:`render` itself) and :meth:`finish_generate`
        (publish, page state). ``preview``: the quick preview — tuning-free identity + the few-step path,
        :data:`PREVIEW_IMAGES` images.
        """
        return self._generate(
            state, style, n, seed, pose, controlnet, faceid_weights, steps, preview=preview, render=render,
            detail_face=detail_face,
            progress=progress,
        )  # fmt: skip

    @guarded
    def preview(
        self,
        state: SessionState,
        style: str = "corporate",
        seed: int | None = None,
        faceid_weights: str = "",
        *,
        render: Callable[[GeneratePlan], RenderResult] | None = None,
        progress: Progress | None = None,
    ) -> ActionResult:
        """The quick preview: :data:`PREVIEW_IMAGES` headshots from the checked photos with no training (the FaceID
        likeness, made now on the CPU when the page has none) on the few-step path, in one short GPU call."""
        return self._generate(
            state, style, PREVIEW_IMAGES, seed, "none", "", faceid_weights, None, preview=True, render=render,
            progress=progress,
        )  # fmt: skip

    def _generate(
        self,
        state: SessionState,
        style: str,
        n: int,
        seed: int | None,
        pose: str,
        controlnet: str,
        faceid_weights: str,
        steps: int | None,
        *,
        preview: bool,
        render: Callable[[GeneratePlan], RenderResult] | None,
        progress: Progress | None,
        detail_face: bool = False,
    ) -> ActionResult:
        session = self.open_session(state)
        report_progress(progress, 0.0, "Getting ready")
        plan = self.plan_generate(
            session, state, style, n, seed, pose, controlnet, faceid_weights, steps, preview, detail_face=detail_face
        )
        report_progress(progress, 0.1, "Generating")
        rendered = (render or self.render)(plan)
        if rendered.error is not None:
            error = ModelUnavailableError if rendered.unavailable else HeadshotLabError
            raise error(rendered.error["message"], fix=rendered.error.get("fix"), code=rendered.error.get("code"))
        assert rendered.outcome is not None
        return self.finish_generate(session, state, plan, rendered.outcome)

    def plan_generate(
        self,
        session: Session,
        state: SessionState,
        style: str,
        n: int,
        seed: int | None,
        pose: str,
        controlnet: str,
        faceid_weights: str,
        steps: int | None,
        preview: bool = False,
        *,
        detail_face: bool = False,
    ) -> GeneratePlan:
        """Everything before the GPU call: the request, its checks, the GPU time it needs, its generator loaded."""
        usable = state.usable_uploads()
        identity = state.identity
        if preview:
            identity = self._preview_identity(session, state)
            n, steps, pose = PREVIEW_IMAGES, None, "none"
        faceid = self.engine_faceid((identity or {}).get("mode") or "lora", faceid_weights)
        request = workflow.GenerateRequest.for_identity(
            identity,
            style=style,
            n=n,
            seed=seed,
            selfie=usable[0].path if usable else None,
            faceid_weights=faceid.weights if faceid else None,
            faceid_weight_name=faceid.weight_name if faceid else None,
            pose=pose,
            controlnet=controlnet,
            steps=steps or None,
            detail_face=bool(detail_face),
        )
        workflow.check_generate_request(request, require_identity=True, max_images=workflow.MAX_IMAGES_PER_RUN)
        family = workflow.base_family()
        speed = self.preview_speed(family) if preview else None
        style_steps, style_guidance = workflow.sampling_defaults(style)
        base_steps = int(request.steps or (speed.few_step_steps if speed else style_steps))
        if request.detail_face:  # the face-detail pass re-renders one face crop at native size, ≤ 0.5 × the steps
            base_steps += math.ceil(0.5 * base_steps)
        work = gpu_time.GenerateWork(
            family=family,
            n=int(request.n),
            steps=base_steps,
            guidance=speed.few_step_guidance if speed else style_guidance,
            control=request.pose != "none",
            where=gpu_time.hardware(),
        )
        if self.zero_gpu:
            work.require_fits()  # refused before the request: ZeroGPU would refuse it unrun
        self._ready_generator(request, speed)
        out_dir = session.outputs / "generated" / f"run-{state.next_run():03d}"
        return GeneratePlan(request=request, out_dir=out_dir, speed=speed, work=work, preview=preview)

    def _preview_identity(self, session: Session, state: SessionState) -> dict[str, Any]:
        """The tuning-free identity for a preview: the page's FaceID one, else made now from the usable photos
        (ArcFace, seconds; outside any GPU call). A trained LoRA stays the page's identity."""
        if (state.identity or {}).get("mode") in TUNING_FREE:  # the preview runs FaceID on the same embedding
            return {**state.identity, "mode": "faceid"}  # type: ignore[dict-item]
        paths = [item.path for item in state.usable_uploads(strict=True)]
        workflow.require_learnable(paths)
        target = session.lora / workflow.FACEID_EMBEDDING_NAME
        result = workflow.faceid_identity(paths, target, device=self._faceid_device)
        if not state.identity:
            state.identity = result.ref  # nothing learned yet: this is the page's likeness now
        return result.ref

    def finish_generate(
        self, session: Session, state: SessionState, plan: GeneratePlan, result: workflow.GenerateOutcome
    ) -> ActionResult:
        """After the GPU call: publish the images (never one the safety filter blocked), update the page."""
        blocked = set(result.blocked)
        run = plan.out_dir.name
        gallery, added = [], []
        for index, (path, record) in enumerate(zip(result.images, result.records, strict=True)):
            if index in blocked:  # black, and not what was asked for: kept private, never shown or exported
                continue
            item = Item(name=f"generated/{run}/{Path(path).name}", path=str(path), kind="generated")
            added.append(item)
            gallery.append((self.publish(session, path), f"{result.style} · seed {record['seed']}"))
        state.outputs.extend(added)
        total = len(result.images)
        if not added:
            raise HeadshotLabError(
                f"None of the {total} pictures can be shown: the model's safety filter blocked "
                f"{'it' if total == 1 else 'all of them'} (they came out black).",
                fix="Try again with another variation number or another style.",
                code="nsfw_blocked",
            )
        what = "quick previews" if plan.preview else "headshots"
        first = (
            f"{OK_MARK} {len(added)} {what} in the {result.style} style ({duration_words(result.seconds)}). Each file is "
            "labelled inside as AI-generated." + refined_words(result.records)
        )
        if plan.preview:
            first += (
                " They are made without training, so they look a little less like you than trained headshots; "
                "“Generate headshots” makes more, at full quality."
            )
        if blocked:
            first += "\n\n" + nsfw_note(len(blocked), total)
        speed = plan.speed
        operator = [
            f"base `{result.base}`; IPTC trainedAlgorithmicMedia; the manifest can remake each one",
            f"GPU time asked for: {plan.gpu_seconds} s (estimate {plan.work.estimate_s():.0f} s for "
            f"{plan.work.n} × {plan.work.steps} steps on {plan.work.where}; ZeroGPU: {'yes' if self.zero_gpu else 'no'})",
        ]
        if speed is not None:
            operator.append(
                f"quick preview: IP-Adapter-FaceID + few-step LoRA `{speed.few_step_lora}` (LCMScheduler, "
                f"{speed.few_step_steps} steps, guidance {speed.few_step_guidance:g})"
            )
        if blocked:
            operator.append(
                f"{len(blocked)} image(s) flagged by the base's safety checker (nsfw_content_detected; manifest "
                "nsfw_flagged): kept in the session folder, not published"
            )
        status = with_operator_details(first + "\n\n" + next_step("generate"), operator)
        report = {"records": result.to_dict()["records"], "blocked": len(blocked), "gpu_seconds": plan.gpu_seconds}
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
        retouched = {item.name for item in state.outputs if item.kind == "retouched"}  # a new backdrop
        selection = workflow.select_headshots(
            candidates, profile, top_k=int(top_k), max_keep=MAX_PICKS, sources=sources, new_scene=retouched
        )
        payload = selection.to_dict(regions=True)  # regions: the zoomed crops of what was flagged (``flagged``)
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

    def flagged(self, state: SessionState, report: dict[str, Any] | None, *, size: int = 320) -> list[tuple[str, str]]:
        """Zoomed crops of what select flagged (:func:`headshot_lab.workflow.flagged_crops`), published:
        one ``(published path, "name: reason")`` per rejected headshot and reason that names a region of the face."""
        if not report or not state.session_id:
            return []
        session = self.open_session(state)
        files = {o.name: (o.path, o.kind) for o in state.outputs}
        crops = workflow.flagged_crops(report.get("rejected", []), files, session.outputs / "flagged", size=size)
        return [(self.publish(session, path), caption) for path, caption in crops]

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
            new_scene={item.name for item in state.outputs if item.kind == "retouched"},  # a new backdrop
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


def refined_words(records: list[dict[str, Any]]) -> str:
    """Plain words on the face-detail pass of a run ("" when it was off): how many faces were redrawn and whether
    likeness and skin tone held (the pass's own before/after measures)."""
    passes: list[dict[str, Any]] = [r["detail"] for r in records if r.get("detail")]
    if not passes:
        return ""
    faces = sum(len(p.get("faces") or []) for p in passes)
    if not faces:
        return " Refine faces was on, but no face was found to redraw."
    measures = [p.get("measures") or {} for p in passes if p.get("faces")]
    shifts = [m["delta_ita"] for m in measures if m.get("delta_ita") is not None]
    likeness = [m["identity_after_vs_before"] for m in measures if m.get("identity_after_vs_before") is not None]
    words = f" {faces} face(s) were redrawn in finer detail."
    if likeness:
        words += f" Likeness before → after: {min(likeness):.2f} (1 = the same face)."
    if shifts:
        worst = max(shifts, key=abs)
        direction = "lighter" if worst > 0 else "darker"
        words += f" Skin tone change: {worst:+.1f}° ({direction}; a change under 1° cannot be seen)."
    return words
