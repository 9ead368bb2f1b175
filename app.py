"""headshot-lab — Gradio Blocks app (Hugging Face Space entry point).

Thin by design: it lays out the page in the order of the work (upload & check → learn identity →
generate or retouch → select & export → audit) and maps every button to one method of
:class:`headshot_lab.ui.AppBackend`, which does the work and returns an ``ActionResult`` (status,
gallery, report, files). Every action has an ``api_name``, so ``gradio_client`` can drive the flow:
``check_photos``, ``train_identity``, ``generate``, ``retouch``, ``select``, ``export``, ``audit``,
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
from headshot_lab.io import IMAGE_SUFFIXES
from headshot_lab.spaces_compat import gpu
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
from headshot_lab.ui.server import middleware as security_middleware
from headshot_lab.ui.state import IDENTITY_MODES
from headshot_lab.ui.warmup import start_warm_up

MAX_FILE_SIZE = f"{MAX_UPLOAD_MB}mb"
CROP_CHOICES = CROP_NAMES
#: What the upload box offers: any browser image type plus every suffix the photo loader reads (HEIC too).
UPLOAD_FILE_TYPES = ["image", *sorted(IMAGE_SUFFIXES)]
#: The identity modes with their labels, in the order of ``IDENTITY_MODES``.
IDENTITY_LABELS = {
    "lora": "LoRA: DreamBooth training on your photos (best likeness; a GPU makes it minutes)",
    "faceid": "Tuning-free: IP-Adapter-FaceID (no training; needs the insightface model pack)",
}
IDENTITY_CHOICES = [(IDENTITY_LABELS[mode], mode) for mode in IDENTITY_MODES]
BACKEND: AppBackend | None = None


def backend() -> AppBackend:
    """The process's backend (sessions under ``HEADSHOT_LAB_DATA_DIR``, published files in Gradio's cache)."""
    global BACKEND
    if BACKEND is None:
        BACKEND = AppBackend()
    return BACKEND


def _bar(progress: Any) -> Any:
    return lambda fraction, text: progress(fraction, desc=text)


def _shown(result: ActionResult) -> ActionResult:
    """Raise a toast for a failed action (the status line already holds the message and the fix)."""
    if result.error:
        gr.Warning(result.error["message"])
    return result


# -- event handlers: a few named values in, a few out -------------------------------------------------
def check_photos(files: list[str] | None, consent: bool, state: SessionState, progress=gr.Progress()):  # noqa: B008
    result = _shown(backend().check_photos(state, files, consent, progress=_bar(progress)))
    return result.state, result.status, result.gallery, result.report


@gpu(duration=600)
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
    result = _shown(_train(state, mode, steps, rank, prior, seed))
    return result.state, result.status, result.report


@gpu(duration=180)
def _generate(
    state: SessionState,
    style: str,
    n: float,
    seed: float | None,
    pose: str,
    controlnet: str,
    faceid_weights: str,
    steps: float,
) -> ActionResult:
    seed = None if seed is None or int(seed) < 0 else int(seed)
    return backend().generate(
        state, style, int(n), seed, pose, controlnet or "", faceid_weights or "", int(steps) or None
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
    progress=gr.Progress(track_tqdm=True),  # noqa: B008
):
    result = _shown(_generate(state, style, n, seed, pose, controlnet, faceid_weights, steps))
    return result.state, result.status, result.gallery


def retouch(state: SessionState, style: str, light: float, progress=gr.Progress()):  # noqa: B008
    result = _shown(backend().retouch(state, style, float(light), progress=_bar(progress)))
    return result.state, result.status, result.gallery


def select(state: SessionState, top_k: int, progress=gr.Progress()):  # noqa: B008
    result = _shown(backend().select(state, int(top_k), progress=_bar(progress)))
    picks = gr.CheckboxGroup(choices=result.choices, value=result.picks) if result.ok else gr.CheckboxGroup()
    return result.state, result.status, result.gallery, picks


def export(state: SessionState, picks: list[str], crops: list[str], fmt: str, team: bool, progress=gr.Progress()):  # noqa: B008
    result = _shown(backend().export(state, picks, crops, fmt, bool(team), progress=_bar(progress)))
    return result.state, result.status, result.download, result.files


def audit(state: SessionState, progress=gr.Progress()):  # noqa: B008
    result = _shown(backend().audit(state, progress=_bar(progress)))
    return result.state, result.status, result.gallery, result.report


def delete_my_data(state: SessionState):
    result = backend().delete_my_data(state)
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
    # Files every page is shown (style swatches) live outside Gradio's cache: served in place, deletable by no one.
    gr.set_static_paths([str(backend().assets_root)])
    with gr.Blocks(
        title="headshot-lab",
        analytics_enabled=False,
        # Gradio's own copies (uploads, published files) go at the latest with the session's retention time.
        delete_cache=(int(min(max(ttl_s / 4, 60), 3600)), int(max(ttl_s, 60))),
    ) as demo:
        state = gr.State(SessionState(), time_to_live=max(ttl_s, 600), delete_callback=backend().forget)
        gr.Markdown(
            f"# headshot-lab {__version__}\n"
            "AI professional headshots that measure their own bias. Work through the tabs in order; every image "
            "made here carries an AI-disclosure label, and the audit tab shows what the AI changed about you."
        )
        with gr.Tab("1 · Upload & check"):
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
            check_status = gr.Markdown(elem_id="check-status")
            uploads = gr.Gallery(
                label="Your photos — problems and fixes under each", columns=5, height="auto",
                buttons=["fullscreen"], elem_id="upload-gallery",
            )  # fmt: skip
            with gr.Accordion("Full checklist (JSON)", open=False):
                check_json = gr.JSON()

        with gr.Tab("2 · Learn identity"):
            if notice:
                gr.Markdown(notice)
            mode = gr.Radio(
                IDENTITY_CHOICES,
                value="lora",
                label="How to learn your identity",
            )
            with gr.Accordion("Training settings", open=False):
                steps = gr.Slider(1, 2000, value=800, step=1, label="Steps (800–1200 is typical)")
                rank = gr.Dropdown([4, 8, 16, 32], value=16, label="LoRA rank")
                prior = gr.Checkbox(value=True, label="Prior preservation (class images keep other faces intact)")
                train_seed = gr.Number(value=0, precision=0, label="Seed")
            train_button = gr.Button("Learn identity", variant="primary", elem_id="train")
            train_status = gr.Markdown(elem_id="train-status")
            with gr.Accordion("LoRA card (JSON)", open=False):
                train_json = gr.JSON()

        with gr.Tab("3 · Generate"):
            if notice:
                gr.Markdown(notice)
            swatches = gr.Gallery(
                value=backend().shared_images(style_swatches(), "swatches"), label="Styles (click one)", columns=6, height="auto", allow_preview=False,
                buttons=[], elem_id="styles",
            )  # fmt: skip
            with gr.Row():
                style = gr.Dropdown(styles, value="corporate", label="Style", elem_id="style")
                count = gr.Slider(1, 8, value=4, step=1, label="How many")
                seed = gr.Number(value=-1, precision=0, label="Seed (−1 = random)")
                pose = gr.Dropdown(list(POSE_CHOICES), value="none", label="ControlNet pose guide")
            with gr.Accordion("Models", open=False):
                controlnet = gr.Textbox(label="ControlNet model (Hub id or folder), for a pose guide")
                faceid_weights = gr.Textbox(
                    label="IP-Adapter-FaceID weights (Hub id or folder; default h94/IP-Adapter-FaceID)"
                )
                gen_steps = gr.Slider(0, 100, value=0, step=1, label="Sampler steps (0 = the style's)")
            generate_button = gr.Button("Generate headshots", variant="primary", elem_id="generate")
            generate_status = gr.Markdown(elem_id="generate-status")
            generated = gr.Gallery(label="Generated", columns=4, height="auto", elem_id="generated")
            gr.Markdown(
                "### Studio retouch — no generative model\n"
                "Your own photo on the style's backdrop, with a refined cut-out, even light and neutral white balance. "
                "Skin tone is locked (ΔITA shown under each)."
            )
            light = gr.Slider(0.0, 1.0, value=0.4, step=0.05, label="Light evening")
            retouch_button = gr.Button("Retouch my photos", elem_id="retouch")
            retouch_status = gr.Markdown(elem_id="retouch-status")
            retouched = gr.Gallery(label="Retouched", columns=4, height="auto", elem_id="retouch-gallery")

        with gr.Tab("4 · Select & export"):
            top_k = gr.Slider(MIN_PICKS, MAX_PICKS, value=8, step=1, label="Keep at most")
            select_button = gr.Button("Select the best", variant="primary", elem_id="select")
            select_status = gr.Markdown(elem_id="select-status")
            candidates = gr.Gallery(label="Scores and reasons", columns=5, height="auto", elem_id="candidates")
            picks = gr.CheckboxGroup(choices=[], label=f"Export these (up to {MAX_PICKS})", elem_id="picks")
            with gr.Row():
                crops = gr.CheckboxGroup(list(CROP_CHOICES), value=["square", "circle"], label="Crops")
                fmt = gr.Radio(list(FORMATS), value="jpeg", label="Format")
                team = gr.Checkbox(value=False, label="Team mode: one crop, backdrop and colour grade for everyone")
            export_button = gr.Button("Export", variant="primary", elem_id="export")
            export_status = gr.Markdown(elem_id="export-status")
            zip_file = gr.File(label="Download all (zip, disclosure metadata intact)", elem_id="zip")
            export_files = gr.File(label="Files", file_count="multiple", elem_id="export-files")

        with gr.Tab("5 · Audit"):
            gr.Markdown(
                "How your headshots differ from your own photos: identity (an encoder the generator does not use), "
                "skin tone shift in your ITA group (positive ΔITA = lighter), skin texture, and whether a classifier "
                "can tell them from real photos."
            )
            with gr.Accordion("How to read the audit", open=False):
                gr.Markdown(audit_help(), elem_id="audit-help")
            audit_button = gr.Button("Audit this batch", variant="primary", elem_id="audit")
            audit_status = gr.Markdown(elem_id="audit-card")
            audit_plots = gr.Gallery(
                label="Plots", columns=2, height="auto", object_fit="contain", elem_id="audit-plots"
            )
            with gr.Accordion("Audit (JSON)", open=False):
                audit_json = gr.JSON()

        with gr.Row():
            delete_button = gr.Button("Delete my data now", variant="stop", elem_id="delete")
            delete_status = gr.Markdown(elem_id="delete-status")
        gr.Markdown(
            "Your photos stay on this server, in a private folder for this page only; they are never used for "
            "anything else and are deleted when you press the button above, when you close the page, or "
            f"automatically after {ttl_s / 3600:g} hours. No analytics, no share links."
        )

        # -- events: one per action, each with its api_name ------------------------------------------
        consent.change(consent_changed, [consent, files], files, api_visibility="private")
        gpu_queue = {"concurrency_limit": 1, "concurrency_id": "gpu"}
        # Decoding runs in the backend's worker pool (time-limited), one action at a time per page: as many checks
        # may run as there are decode workers, so a slow file of one visitor never holds up the others.
        check_button.click(
            check_photos, [files, consent, state], [state, check_status, uploads, check_json], api_name="check_photos",
            concurrency_limit=backend().decoder.workers, concurrency_id="check",
        )  # fmt: skip
        train_button.click(
            train_identity, [state, mode, steps, rank, prior, train_seed], [state, train_status, train_json],
            api_name="train_identity", **gpu_queue,
        )  # fmt: skip
        generate_button.click(
            generate, [state, style, count, seed, pose, controlnet, faceid_weights, gen_steps],
            [state, generate_status, generated], api_name="generate", **gpu_queue,
        )  # fmt: skip
        retouch_button.click(retouch, [state, style, light], [state, retouch_status, retouched], api_name="retouch")
        select_button.click(select, [state, top_k], [state, select_status, candidates, picks], api_name="select")
        export_button.click(
            export, [state, picks, crops, fmt, team], [state, export_status, zip_file, export_files], api_name="export"
        )
        audit_button.click(audit, [state], [state, audit_status, audit_plots, audit_json], api_name="audit")
        shown = [files, check_status, uploads, check_json, train_status, train_json, generate_status, generated,
                 retouch_status, retouched, select_status, candidates, export_status, zip_file, export_files,
                 audit_status, audit_plots, audit_json]  # fmt: skip

        def clear_page() -> dict:
            """After "Delete my data now": empty everything that showed something of the session."""
            return {**{component: None for component in shown}, picks: gr.CheckboxGroup(choices=[], value=[])}

        deleted = delete_button.click(delete_my_data, [state], [state, delete_status], api_name="delete_my_data")
        deleted.then(discard_uploads, [files], None, api_visibility="private").then(
            clear_page, None, [*shown, picks], api_visibility="private"
        )

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
    start_warm_up()  # the face models load while the server starts: the first click is not the slow one
    options.pop("share", None)
    settings = {
        "max_file_size": MAX_FILE_SIZE,
        "show_error": True,
        "run_history": False,  # no record of runs in the browser (or a linked bucket)
        "enable_monitoring": False,
        "footer_links": ["api", "gradio", "settings"],
        # Session folders and logs are never served nor taken as inputs, even if GRADIO_TEMP_DIR encloses them.
        "blocked_paths": [str(backend().store.sessions_dir), str(backend().store.logs_dir)],
        "app_kwargs": {"middleware": security_middleware()},  # X-Content-Type-Options: nosniff on every response
        **options,
    }
    return (app or demo).queue(default_concurrency_limit=2).launch(share=False, **settings)


demo = build_demo()

if __name__ == "__main__":
    launch()
