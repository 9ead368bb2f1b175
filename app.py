"""headshot-lab — Gradio Blocks app (Hugging Face Space entry point).

Thin by design: it lays out the page in the order of the work (upload & check → learn identity →
generate or retouch → select & export → audit) and maps every button to one method of
:class:`headshot_lab.ui.AppBackend`, which does the work and returns an ``ActionResult`` (status,
gallery, report, files). Every action has an ``api_name``, so ``gradio_client`` can drive the flow:
``check_photos``, ``train_identity``, ``generate``, ``preview``, ``retouch``, ``select``, ``export``, ``audit``,
``delete_my_data``.

Privacy: one private session folder per browser session (created on consent), Gradio's upload
cache under the data dir and emptied as soon as an upload is copied in, a TTL purge loop, a
"Delete my data now" button, Gradio analytics off, an upload size limit, no share links.
Run with ``make demo`` (or ``python app.py``); host/port come from ``GRADIO_SERVER_NAME`` /
``GRADIO_SERVER_PORT``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from headshot_lab.config import get_settings

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# Gradio's upload cache lives under the data dir (private), not in the system temp dir.
os.environ.setdefault("GRADIO_TEMP_DIR", str(get_settings().data_dir / "gradio"))

import gradio as gr

from headshot_lab import __version__
from headshot_lab.export import CROP_NAMES
from headshot_lab.identity_engines import ENGINES
from headshot_lab.io import IMAGE_SUFFIXES
from headshot_lab.spaces_compat import gpu, import_spaces_first, on_zero_gpu
from headshot_lab.ui import (
    CONSENT_TEXT,
    FORMATS,
    MAX_PICKS,
    MAX_UPLOAD_MB,
    MIN_PICKS,
    POSE_CHOICES,
    ActionResult,
    AppBackend,
    SessionState,
    audit_help,
    base_model_notice,
    style_swatches,
)
from headshot_lab.ui.actions import PREVIEW_IMAGES, GeneratePlan, RenderResult, gpu_seconds
from headshot_lab.ui.formatting import (
    CAPTURE_EXAMPLES,
    CAPTURE_GUIDANCE,
    base_model_setup,
    capture_examples,
    split_for_visitor,
    toggle_caption,
)
from headshot_lab.ui.server import middleware as security_middleware
from headshot_lab.ui.state import IDENTITY_MODES
from headshot_lab.ui.warmup import start_warm_up

import_spaces_first()  # ZeroGPU: `spaces` patches torch before anything touches CUDA

MAX_FILE_SIZE = f"{MAX_UPLOAD_MB}mb"
CROP_CHOICES = CROP_NAMES
#: What the upload box offers: any browser image type plus every suffix the photo loader reads (HEIC too).
UPLOAD_FILE_TYPES = ["image", *sorted(IMAGE_SUFFIXES)]
#: The identity engines (``IDENTITY_MODES``) in the visitor's words (one definition: ``identity_engines.ENGINES``).
IDENTITY_LABELS = {name: engine.label for name, engine in ENGINES.items()}
if on_zero_gpu():
    IDENTITY_LABELS["lora"] = "Train on my photos (needs a copy of this app with its own graphics card)"


def identity_choices() -> list[tuple[str, str]]:
    """The engines this page offers (those that fit the base model; on ZeroGPU the ones built at start-up first)."""
    return [(IDENTITY_LABELS[name], name) for name in backend().identity_engines() if name in IDENTITY_MODES]


#: Pose guide choices in words (the values are the service layer's names).
POSE_LABELS = {"none": "none", "face": "face outline", "pose": "body pose", "depth": "depth", "canny": "edges"}
#: Rough durations shown next to the long steps (measured on the 2-core test machine; a GPU for training).
TIMES = {
    "check": "Takes a few seconds per photo.",
    "train": "Takes roughly 10–20 minutes with a graphics card (the first run also prepares reference images, "
    "about 7 minutes more); the quick options take under a minute.",
    "generate": "Takes about half a minute per headshot with a graphics card.",
    "retouch": "Takes about 5–10 seconds per photo.",
    "select": "Takes a few seconds per headshot.",
    "audit": "Takes about a minute.",
}
#: The same, where they differ on ZeroGPU (no training there; the quick mode is the default).
TIMES_ZERO_GPU = {
    "train": "The quick options take a few seconds. Training on your photos needs a copy of this app with its own "
    "graphics card.",
}
#: Page CSS: galleries grow with their content (no inner scroll box) and captions wrap under the image.
APP_CSS = """
.auto-height .grid-wrap { max-height: none !important; min-height: 0 !important; overflow-y: visible !important; }
.auto-height .grid-container { grid-auto-rows: auto !important; align-items: start; }
.readable-captions .thumbnail-item { aspect-ratio: auto !important; height: auto !important;
  display: flex !important; flex-direction: column; }
.readable-captions .thumbnail-lg > img { aspect-ratio: 1 / 1; height: auto !important; flex: none; }
.natural-size .thumbnail-lg > img { aspect-ratio: auto !important; }
.readable-captions .caption-label { position: static !important; max-width: none !important; white-space: normal !important;
  overflow: visible !important; text-overflow: clip !important; border: 0 !important; border-radius: 0 !important;
  border-top: 1px solid var(--border-color-primary) !important; opacity: 1 !important; line-height: 1.3; }
.labelled .grid-wrap { padding-top: 2rem !important; }
.time-note { opacity: 0.75; font-size: 0.9em; }
"""
BACKEND: AppBackend | None = None


def backend() -> AppBackend:
    """The process's backend (sessions under ``HEADSHOT_LAB_DATA_DIR``, published files in Gradio's cache)."""
    global BACKEND
    if BACKEND is None:
        BACKEND = AppBackend()
    return BACKEND


def _bar(progress: Any) -> Any:
    return lambda fraction, text: progress(fraction, desc=text)


def _shown(result: ActionResult) -> tuple[ActionResult, str]:
    """The result with its status in a visitor's words, and the operator's details (settings, libraries).

    A failed action also raises a toast with the first line of the visitor's status.
    """
    visitor, operator = split_for_visitor(result.status, result.error)
    result.status = visitor
    operator = f"**The last step, for the operator:**\n\n{operator}" if operator else ""
    if result.error:
        gr.Warning(visitor.split("\n")[0].replace("*", "").lstrip("⚠ ").strip())
    return result, operator


# -- event handlers: a few named values in, a few out -------------------------------------------------
def check_photos(files: list[str] | None, consent: bool, state: SessionState, progress=gr.Progress()):  # noqa: B008
    result, operator = _shown(backend().check_photos(state, files, consent, progress=_bar(progress)))
    return result.state, result.status, result.gallery, result.report, operator


def _train(state: SessionState, mode: str, steps: float, rank: int, prior: bool, seed: float) -> ActionResult:
    return backend().train_identity(state, mode, int(steps), int(rank), bool(prior), int(seed or 0))


def train_identity(
    state: SessionState,
    mode: str,
    steps: float,
    rank: int,
    prior: bool,
    seed: float,
    progress=gr.Progress(track_tqdm=True),  # noqa: B008
):
    result, operator = _shown(_train(state, mode, steps, rank, prior, seed))
    return result.state, result.status, result.report, operator


@gpu(duration=gpu_seconds)  # per call, from the plan's work; never above ZeroGPU's maximum
def _render(plan: GeneratePlan) -> RenderResult:
    """The one GPU call of a generation: the pipeline built before runs; nothing loads here."""
    return backend().render(plan)


def _generate(
    state: SessionState,
    style: str,
    n: float,
    seed: float | None,
    pose: str,
    controlnet: str,
    faceid_weights: str,
    steps: float,
    refine: bool = False,
) -> ActionResult:
    seed = None if seed is None or int(seed) < 0 else int(seed)
    return backend().generate(
        state,
        style,
        int(n),
        seed,
        pose,
        controlnet or "",
        faceid_weights or "",
        int(steps) or None,
        bool(refine),
        render=_render,
    )


def generate(
    state: SessionState,
    style: str,
    n: float,
    seed: float | None,
    pose: str,
    controlnet: str,
    faceid_weights: str,
    steps: float,
    refine: bool = False,
    progress=gr.Progress(track_tqdm=True),  # noqa: B008
):
    result, operator = _shown(_generate(state, style, n, seed, pose, controlnet, faceid_weights, steps, refine))
    return result.state, result.status, result.gallery, operator


def preview(state: SessionState, style: str, seed: float | None, faceid_weights: str, progress=gr.Progress()):  # noqa: B008
    """Quick preview: tuning-free likeness + the few-step path, one short GPU call."""
    seed = None if seed is None or int(seed) < 0 else int(seed)
    result = backend().preview(state, style, seed, faceid_weights or "", render=_render)
    result, operator = _shown(result)
    return result.state, result.status, result.gallery, operator


def retouch(state: SessionState, style: str, light: float, progress=gr.Progress()):  # noqa: B008
    result, operator = _shown(backend().retouch(state, style, float(light), progress=_bar(progress)))
    return result.state, result.status, result.gallery, operator


def select(state: SessionState, top_k: int, progress=gr.Progress()):  # noqa: B008
    result, operator = _shown(backend().select(state, int(top_k), progress=_bar(progress)))
    picks = gr.CheckboxGroup(choices=result.choices, value=result.picks) if result.ok else gr.CheckboxGroup()
    shown = result.choices[: len(result.gallery)] if result.ok else []
    return result.state, result.status, result.gallery, picks, shown, operator, result.report


def show_flagged(state: SessionState, report: dict[str, Any] | None):
    """The zoomed crops of what select flagged (eyes, skin …), each with its reason in words."""
    zooms = backend().flagged(state, report) if report else []
    return gr.Gallery(value=zooms), gr.Accordion(open=bool(zooms), label=_flagged_label(len(zooms)))


def _flagged_label(count: int) -> str:
    return f"What was flagged, zoomed in ({count})" if count else "What was flagged, zoomed in (nothing)"


def toggle_pick(
    shown: list[str], picks: list[str] | None, gallery: list[Any] | None, event: gr.SelectData
) -> tuple[Any, Any]:
    """A click on a headshot picks it, a second click drops it; the captions say which are picked."""
    index = event.index if isinstance(event.index, int) else -1
    picks = list(picks or [])
    if not 0 <= index < len(shown):
        return gr.skip(), gr.skip()
    name = shown[index]
    if name in picks:
        picks.remove(name)
    elif len(picks) >= MAX_PICKS:
        gr.Warning(f"At most {MAX_PICKS} headshots: click a picked one to drop it first.")
    else:
        picks.append(name)
    items = []
    for position, entry in enumerate(gallery or []):
        image, caption = (entry[0], entry[1]) if isinstance(entry, list | tuple) else (entry, "")
        picked = position < len(shown) and shown[position] in picks
        items.append((image, toggle_caption(caption or "", picked)))
    return picks, items


def export(state: SessionState, picks: list[str], crops: list[str], fmt: str, team: bool, progress=gr.Progress()):  # noqa: B008
    result, operator = _shown(backend().export(state, picks, crops, fmt, bool(team), progress=_bar(progress)))
    return result.state, result.status, result.download, result.files, result.gallery, operator


def audit(state: SessionState, progress=gr.Progress()):  # noqa: B008
    result, operator = _shown(backend().audit(state, progress=_bar(progress)))
    return result.state, result.status, result.gallery, result.report, operator


def delete_my_data(state: SessionState):
    result, _ = _shown(backend().delete_my_data(state))
    return result.state, result.status


def discard_uploads(files: list[str] | None) -> None:
    """Delete Gradio's copies of files still sitting in the uploader (never checked, so never copied in)."""
    backend().delete_my_data(SessionState(), files)


def consent_changed(consent: bool, files: list[str] | None):
    """The uploader opens only with consent; unticking it empties the uploader and deletes what was in it."""
    if consent:
        return gr.File(interactive=True)
    discard_uploads(files)
    return gr.File(value=None, interactive=False)


def photos_changed(train_status: str | None):
    """New or removed uploads make the last checklist (and a training message) stale: clear them, say what to do."""
    trained = "Your photos changed since your likeness was learned: check them, then press **Learn identity** again."
    return "Your photos changed: press **Check photos** to check them.", None, None, trained if train_status else ""


def _note(text: str) -> gr.Markdown:
    return gr.Markdown(text, elem_classes=["time-note"])


def _gallery(label: str, elem_id: str, *, columns: int = 5, natural: bool = False, **options: Any) -> gr.Gallery:
    """A gallery that grows with its content, keeps each image whole and small, and shows whole captions."""
    classes = ["auto-height", "readable-captions"] + (["natural-size"] if natural else [])
    if options.get("show_label", True):
        classes.append("labelled")  # room above the first row for the label
    options.setdefault("buttons", ["fullscreen", "download"])
    return gr.Gallery(
        label=label, columns=columns, height="auto", object_fit="contain", fit_columns=False,
        elem_id=elem_id, elem_classes=classes, **options,
    )  # fmt: skip


# -- layout ----------------------------------------------------------------------------------------
def build_demo(app_backend: AppBackend | None = None) -> gr.Blocks:
    """The whole app; ``app_backend`` defaults to :func:`backend` (tests pass one bound to a temp dir)."""
    global BACKEND
    if app_backend is not None:
        BACKEND = app_backend
    ttl_s = backend().store.ttl_seconds
    Path(os.environ["GRADIO_TEMP_DIR"]).mkdir(mode=0o700, parents=True, exist_ok=True)
    from headshot_lab.styles import list_styles

    styles = list_styles()
    notice = base_model_notice()
    setup = base_model_setup()
    ready = notice is None
    # Files every page is shown (style swatches) live outside Gradio's cache: served in place, deletable by no one.
    gr.set_static_paths([str(backend().assets_root)])
    with gr.Blocks(
        title="headshot-lab",
        analytics_enabled=False,
        # Gradio's own copies (uploads, published files) go at the latest with the session's retention time.
        delete_cache=(int(min(max(ttl_s / 4, 60), 3600)), int(max(ttl_s, 60))),
    ) as demo:
        state = gr.State(SessionState(), time_to_live=max(ttl_s, 600), delete_callback=backend().forget)
        operator_log = gr.State("")
        shown_names = gr.State([])
        export_gallery_items = gr.State([])
        gr.Markdown(
            f"# headshot-lab {__version__}\n"
            "Professional headshots from your own photos, with a check of what the AI changed about you. "
            "Work through the tabs in order; every image made here is labelled as made with AI."
        )
        with gr.Tab("1 · Upload & check"):
            gr.Markdown(CAPTURE_GUIDANCE, elem_id="capture-guidance")
            _gallery(
                "Examples (drawings)", "capture-examples", columns=len(CAPTURE_EXAMPLES), value=capture_examples(),
                allow_preview=False, buttons=[], show_label=False,
            )  # fmt: skip
            consent = gr.Checkbox(label=CONSENT_TEXT, value=False, elem_id="consent")
            files = gr.File(
                label=f"Your photos (JPEG, PNG, WebP, HEIC; 1–20, up to {MAX_UPLOAD_MB} MB each)",
                file_count="multiple",
                file_types=UPLOAD_FILE_TYPES,
                type="filepath",
                interactive=False,  # opens when the consent box is ticked
                elem_id="photos",
            )
            check_button = gr.Button("Check photos", variant="primary", elem_id="check")
            _note(TIMES["check"])
            check_status = gr.Markdown(elem_id="check-status")
            uploads = _gallery("Your photos — what to fix is under each", "upload-gallery")

        with gr.Tab("2 · Learn identity"):
            if notice:
                gr.Markdown(notice, elem_id="train-off")
            choices = identity_choices()
            mode = gr.Radio(
                choices, value=choices[0][1], label="How to learn your likeness", interactive=ready,
            )  # fmt: skip
            with gr.Accordion("Training settings", open=False):
                steps = gr.Slider(
                    1,
                    2000,
                    value=800,
                    step=1,
                    label="Training steps (more is closer to you but slower; 800–1200 is typical)",
                )
            train_button = gr.Button("Learn identity", variant="primary", elem_id="train", interactive=ready)
            _note(TIMES["train"] if not on_zero_gpu() else TIMES_ZERO_GPU["train"])
            train_status = gr.Markdown(elem_id="train-status")

        with gr.Tab("3 · Generate"):
            if notice:
                gr.Markdown(notice, elem_id="generate-off")
            swatches = _gallery(
                "Styles (click one)", "styles", columns=6, value=backend().shared_images(style_swatches(), "swatches"),
                allow_preview=False, buttons=[],
            )  # fmt: skip
            with gr.Row():
                style = gr.Dropdown(styles, value="corporate", label="Style", elem_id="style")
                count = gr.Slider(1, 8, value=4, step=1, label="How many", interactive=ready)
                seed = gr.Number(value=-1, precision=0, label="Variation number (−1 = surprise me)", interactive=ready)
                pose = gr.Dropdown(
                    [(POSE_LABELS.get(p, p), p) for p in POSE_CHOICES],
                    value="none",
                    label="Pose guide",
                    interactive=ready,
                )
            with gr.Column(variant="panel", elem_id="preview-box"):  # tuning-free likeness, few steps, one short call
                gr.Markdown(
                    f"**Quick preview** — {PREVIEW_IMAGES} headshots from your checked photos in seconds, with no "
                    "training (a little less like you, and less polished).",
                    elem_id="preview-intro",
                )
                preview_button = gr.Button("Quick preview", variant="secondary", elem_id="preview", interactive=ready)
                preview_status = gr.Markdown(elem_id="preview-status")
                previewed = _gallery("Quick preview", "preview-gallery", columns=4, visible=ready)
            # Refine faces (issue 16): the face-detail pass, self-contained: one checkbox and its note.
            refine = gr.Checkbox(value=False, label="Refine faces", elem_id="refine-faces", interactive=ready)
            _note(
                "Refine faces redraws each face a second time at full detail (eyes, teeth, hairline), then blends it "
                "back; the rest of the picture stays exactly as it was. It takes a little longer, and your likeness "
                "and skin tone are measured before and after."
            )
            generate_button = gr.Button("Generate headshots", variant="primary", elem_id="generate", interactive=ready)
            _note(TIMES["generate"])
            generate_status = gr.Markdown(elem_id="generate-status")
            generated = _gallery("Generated", "generated", columns=4, visible=ready)
            gr.Markdown(
                "### Studio retouch — works without any AI model\n"
                "Your own photo on the style's backdrop, with a clean cut-out, even light and neutral colour. "
                "Your skin tone is kept; the change is measured and shown under each."
            )
            light = gr.Slider(0.0, 1.0, value=0.4, step=0.05, label="Light evening (0 = as photographed)")
            retouch_button = gr.Button(
                "Retouch my photos", variant="secondary" if ready else "primary", elem_id="retouch"
            )
            _note(TIMES["retouch"])
            retouch_status = gr.Markdown(elem_id="retouch-status")
            retouched = _gallery("Retouched", "retouch-gallery", columns=4)

        with gr.Tab("4 · Select & export"):
            top_k = gr.Slider(MIN_PICKS, MAX_PICKS, value=8, step=1, label="Keep at most")
            select_button = gr.Button("Select the best", variant="primary", elem_id="select")
            _note(TIMES["select"])
            select_status = gr.Markdown(elem_id="select-status")
            candidates = _gallery(
                "Best first — click a headshot to pick it, click again to drop it", "candidates", allow_preview=False,
                interactive=False,  # an input of the click handler, but never an upload box
            )  # fmt: skip
            select_report = gr.State(None)
            with gr.Accordion(_flagged_label(0), open=False, elem_id="flagged-accordion") as flagged_box:
                flagged = _gallery("Zoomed in on the flagged part, with the reason", "flagged", columns=3)
            picks = gr.CheckboxGroup(
                choices=[], label=f"Picked for export (up to {MAX_PICKS}; click the headshots above)", elem_id="picks"
            )
            with gr.Row():
                crops = gr.CheckboxGroup(list(CROP_CHOICES), value=["square", "circle"], label="Crops")
                fmt = gr.Radio(list(FORMATS), value="jpeg", label="Format (a circle is always saved as PNG)")
                team = gr.Checkbox(value=False, label="Team mode: one crop, backdrop and colour grade for everyone")
            export_button = gr.Button("Export", variant="primary", elem_id="export")
            export_status = gr.Markdown(elem_id="export-status")
            exported = _gallery("Your files — notes under each", "export-gallery", columns=4)
            zip_file = gr.File(label="Download all (zip, the labels inside each file intact)", elem_id="zip")
            export_files = gr.File(label="Files", file_count="multiple", elem_id="export-files")

        with gr.Tab("5 · Audit"):
            gr.Markdown(
                "How your headshots differ from your own photos: whether they still look like you, whether your "
                "skin tone and skin texture were kept, and whether a computer can tell them from real photos."
            )
            with gr.Accordion("How to read the audit", open=False):
                gr.Markdown(audit_help(), elem_id="audit-help")
            audit_button = gr.Button("Audit this batch", variant="primary", elem_id="audit")
            _note(TIMES["audit"])
            audit_status = gr.Markdown(elem_id="audit-card")
            audit_plots = _gallery("Plots", "audit-plots", columns=2, natural=True)

        with gr.Row():
            delete_button = gr.Button("Delete my data now", variant="stop", elem_id="delete")
            delete_status = gr.Markdown(elem_id="delete-status")
        with gr.Row(visible=False) as confirm_row:
            gr.Markdown(
                "**Delete everything now?** Your photos, everything made from them and this page's results go "
                "at once; this cannot be undone.",
                elem_id="delete-question",
            )
            confirm_button = gr.Button("Yes, delete everything", variant="stop", elem_id="delete-confirm")
            cancel_button = gr.Button("Cancel", variant="secondary", elem_id="delete-cancel")
        gr.Markdown(
            "Your photos stay on this server, in a private folder for this page only; they are never used for "
            "anything else and are deleted when you press the button above, when you close the page, or "
            f"automatically after {ttl_s / 3600:g} hours. No analytics, no share links."
        )

        with gr.Accordion("For the operator", open=False, elem_id="operator"):
            gr.Markdown(
                setup or "A base model is configured: Learn identity and Generate are on.", elem_id="operator-setup"
            )
            operator_md = gr.Markdown(elem_id="operator-log")
            with gr.Row():
                rank = gr.Dropdown([4, 8, 16, 32], value=16, label="LoRA rank")
                prior = gr.Checkbox(value=True, label="Prior preservation (class images keep other faces intact)")
                train_seed = gr.Number(value=0, precision=0, label="Training seed")
            with gr.Row():
                controlnet = gr.Textbox(label="ControlNet model (Hub id or folder), for a pose guide")
                faceid_weights = gr.Textbox(
                    label="IP-Adapter-FaceID weights (Hub id or folder; default h94/IP-Adapter-FaceID)"
                )
                gen_steps = gr.Slider(0, 100, value=0, step=1, label="Sampler steps (0 = the style's)")
            gr.Markdown(
                "The audit's nulls, margins and measured calibration: `python -m eval calibrate` and the README's "
                "Calibration section."
            )
            with gr.Accordion("Checklist (JSON)", open=False):
                check_json = gr.JSON()
            with gr.Accordion("LoRA card (JSON)", open=False):
                train_json = gr.JSON()
            with gr.Accordion("Audit (JSON)", open=False):
                audit_json = gr.JSON()

        # -- events: one per action, each with its api_name ------------------------------------------
        consent.change(consent_changed, [consent, files], files, api_visibility="private")
        for event in (files.upload, files.clear):
            event(
                photos_changed, train_status, [check_status, uploads, check_json, train_status],
                api_visibility="private",
            )  # fmt: skip
        operator_log.change(lambda text: text, operator_log, operator_md, api_visibility="private")
        gpu_queue = {"concurrency_limit": 1, "concurrency_id": "gpu"}
        # Decoding runs in the backend's worker pool (time-limited), one action at a time per page: as many checks
        # may run as there are decode workers, so a slow file of one visitor never holds up the others.
        check_button.click(
            check_photos, [files, consent, state], [state, check_status, uploads, check_json, operator_log],
            api_name="check_photos", concurrency_limit=backend().decoder.workers, concurrency_id="check",
        )  # fmt: skip
        train_button.click(
            train_identity, [state, mode, steps, rank, prior, train_seed], [state, train_status, train_json, operator_log],
            api_name="train_identity", **gpu_queue,
        )  # fmt: skip
        generate_button.click(
            generate, [state, style, count, seed, pose, controlnet, faceid_weights, gen_steps, refine],
            [state, generate_status, generated, operator_log], api_name="generate", **gpu_queue,
        )  # fmt: skip
        preview_button.click(
            preview, [state, style, seed, faceid_weights], [state, preview_status, previewed, operator_log],
            api_name="preview", **gpu_queue,
        )  # fmt: skip
        retouch_button.click(
            retouch, [state, style, light], [state, retouch_status, retouched, operator_log], api_name="retouch"
        )
        select_button.click(
            select, [state, top_k], [state, select_status, candidates, picks, shown_names, operator_log, select_report],
            api_name="select",
        ).then(show_flagged, [state, select_report], [flagged, flagged_box], api_visibility="private")  # fmt: skip
        candidates.select(toggle_pick, [shown_names, picks, candidates], [picks, candidates], api_visibility="private")
        export_button.click(
            export, [state, picks, crops, fmt, team],
            [state, export_status, zip_file, export_files, export_gallery_items, operator_log], api_name="export",
        ).then(lambda items: items, export_gallery_items, exported, api_visibility="private")  # fmt: skip
        audit_button.click(
            audit, [state], [state, audit_status, audit_plots, audit_json, operator_log], api_name="audit"
        )
        shown = [files, uploads, check_json, train_json, generated, retouched, candidates, zip_file, export_files,
                 exported, audit_plots, audit_json, previewed]  # fmt: skip
        statuses = [check_status, train_status, generate_status, retouch_status, select_status, export_status,
                    audit_status, operator_md, preview_status]  # fmt: skip

        def clear_page() -> dict:
            """After "Delete my data now": empty everything that showed something of the session."""
            return {
                **{component: None for component in shown},
                **{component: "" for component in statuses},
                picks: gr.CheckboxGroup(choices=[], value=[]),
                shown_names: [],
                operator_log: "",
            }

        delete_button.click(lambda: gr.Row(visible=True), None, confirm_row, api_visibility="private")
        cancel_button.click(lambda: gr.Row(visible=False), None, confirm_row, api_visibility="private")
        deleted = confirm_button.click(delete_my_data, [state], [state, delete_status], api_name="delete_my_data")
        deleted.then(lambda: gr.Row(visible=False), None, confirm_row, api_visibility="private").then(
            discard_uploads, [files], None, api_visibility="private"
        ).then(clear_page, None, [*shown, *statuses, picks, shown_names, operator_log], api_visibility="private")

        def pick_style(event: gr.SelectData) -> str:
            return styles[event.index] if isinstance(event.index, int) else "corporate"

        swatches.select(pick_style, None, style, api_visibility="private")
    backend().track_uploads(demo.upload_file_set)  # only files Gradio's upload route stored count as uploads
    return demo


def launch(app: gr.Blocks | None = None, **options: Any) -> Any:
    """Start the purge loop and launch ``app`` (default: :data:`demo`); ``options`` go to ``Blocks.launch``.

    Share links stay off whatever is asked; host and port come from ``GRADIO_SERVER_NAME`` /
    ``GRADIO_SERVER_PORT`` unless given.
    """
    backend().start()
    backend().decoder.warm()  # the decode workers start before the first upload
    # The face models (and, on a dedicated GPU, the base pipeline) load while the server starts: the first click is
    # not the slow one. On ZeroGPU the pipelines were built at import, on the main thread (see below).
    extra = {"generator": backend().preload} if not on_zero_gpu() and backend().generator_ready else {}
    start_warm_up(extra)
    options.pop("share", None)
    settings = {
        "max_file_size": MAX_FILE_SIZE,
        "show_error": True,
        "run_history": False,  # no record of runs in the browser (or a linked bucket)
        "enable_monitoring": False,
        "footer_links": ["api", "gradio", "settings"],
        "css": APP_CSS,
        # Session folders and logs are never served nor taken as inputs, even if GRADIO_TEMP_DIR encloses them.
        "blocked_paths": [str(backend().store.sessions_dir), str(backend().store.logs_dir)],
        "app_kwargs": {"middleware": security_middleware()},  # X-Content-Type-Options: nosniff on every response
        **options,
    }
    return (app or demo).queue(default_concurrency_limit=2).launch(share=False, **settings)


if on_zero_gpu():  # ZeroGPU: build the pipelines now and `.to("cuda")` them at import (recorded, replayed per call)
    backend().preload()
demo = build_demo()

if __name__ == "__main__":
    launch()
