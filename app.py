"""headshot-lab — Gradio Blocks app (Hugging Face Space entry point).

Thin by design: it lays out the page, calls :mod:`headshot_lab`, and formats the results.
Privacy: Gradio analytics off, no share links, an upload size limit, uploads only in this
machine's temp cache. Run with ``make demo`` (or ``python app.py``); host/port come from the
usual ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT`` variables.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from headshot_lab import __version__  # noqa: E402
from headshot_lab.capture import check_photos  # noqa: E402
from headshot_lab.io import load_rgb  # noqa: E402

MAX_PHOTOS = 20
MAX_FILE_SIZE = "25mb"
THUMBNAIL_SIDE = 256
CONSENT_TEXT = (
    "I am the person in these photos (or have their permission). I understand that the photos are processed "
    "on this machine only, never shared, and deleted automatically after the retention period."
)


def _thumbnail(path: str) -> np.ndarray:
    """A small metadata-free preview; a grey tile for files that cannot be decoded."""
    try:
        image = Image.fromarray(load_rgb(path, min_side=0))
    except Exception:  # noqa: BLE001 - the report already explains the problem
        return np.full((THUMBNAIL_SIDE, THUMBNAIL_SIDE, 3), 200, dtype=np.uint8)
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    return np.asarray(image)


def _format_report(report: dict) -> str:
    lines = [f"### {'✅ Ready to use' if report['set']['ok'] else '⚠️ Some photos need attention'}", ""]
    for problem in report["set"]["problems"]:
        lines.append(f"- **{problem['message']}** — {problem['fix']}")
    lines.append("")
    lines.append("| photo | faces | result |")
    lines.append("|---|---|---|")
    for photo in report["photos"]:
        result = "ok" if photo["ok"] else "; ".join(p["message"] for p in photo["problems"])
        lines.append(f"| {os.path.basename(str(photo['path']))} | {photo['faces']} | {result} |")
    return "\n".join(lines)


def check_uploaded_photos(files: list[str] | None, consent: bool, progress=gr.Progress(track_tqdm=True)):  # noqa: B008
    """Run the capture checklist on the uploaded photos; returns (summary markdown, gallery, JSON report)."""
    if not consent:
        raise gr.Error("Please tick the consent box before uploading photos.")
    if not files:
        raise gr.Error("Upload 1–20 photos of yourself first.")
    if len(files) > MAX_PHOTOS:
        raise gr.Error(f"Upload at most {MAX_PHOTOS} photos (you uploaded {len(files)}).")
    paths = [str(f) for f in files]
    report = check_photos(paths, progress=lambda done, total: progress((done, total), desc="Checking photos"))
    payload = report.to_dict()
    gallery = []
    for path, photo in zip(paths, payload["photos"], strict=True):
        caption = "✅ ok" if photo["ok"] else "⚠️ " + "; ".join(p["code"] for p in photo["problems"])
        gallery.append((_thumbnail(path), f"{os.path.basename(path)} — {caption}"))
    return _format_report(payload), gallery, payload


def build_demo() -> gr.Blocks:
    with gr.Blocks(title="headshot-lab", analytics_enabled=False) as demo:
        gr.Markdown(
            f"# headshot-lab {__version__}\n"
            "AI professional headshots that measure their own bias. Step 1: upload 1–20 selfies and get a "
            "checklist of what to fix before training (15–20 varied, sharp, well-lit photos work best)."
        )
        with gr.Tab("1 · Upload & check"):
            consent = gr.Checkbox(label=CONSENT_TEXT, value=False, elem_id="consent")
            files = gr.File(
                label="Your photos (JPEG, PNG, WebP, HEIC; up to 20)",
                file_count="multiple",
                file_types=["image"],
                type="filepath",
                elem_id="photos",
            )
            check_button = gr.Button("Check photos", variant="primary", elem_id="check")
            summary = gr.Markdown(elem_id="summary")
            gallery = gr.Gallery(label="Your photos", columns=5, height="auto", elem_id="gallery")
            with gr.Accordion("Full report (JSON)", open=False):
                report_json = gr.JSON()
            check_button.click(
                check_uploaded_photos,
                inputs=[files, consent],
                outputs=[summary, gallery, report_json],
                api_name="check_photos",
            )
        gr.Markdown(
            "Nothing you upload leaves this machine. No analytics, no share links. "
            "Generated images carry an AI-disclosure label."
        )
    return demo


demo = build_demo()

if __name__ == "__main__":
    demo.queue(default_concurrency_limit=2).launch(share=False, max_file_size=MAX_FILE_SIZE, show_error=True)
