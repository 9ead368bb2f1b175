"""The app's logic without a server: per-session state, the eight actions, and what they show.

``app.py`` only lays out Gradio components and maps each event to one method of :class:`AppBackend`;
everything here is plain Python, so it is tested without launching a server (``tests/test_app.py``)
and the same functions serve the UI, the ``gradio_client`` API and the command line.

Every action formats and calls one function of :mod:`headshot_lab.workflow`, the service layer the
``headshot-lab`` commands call too; the rules (consent, limits, disclosure labels, what a deletion removes)
live there, so the app and the command line behave the same.

======================  ===================================================  ==========================================
action (``api_name``)   what it does                                         service call (:mod:`headshot_lab.workflow`)
======================  ===================================================  ==========================================
``check_photos``        consent → session, uploads copied in (metadata-      :func:`~headshot_lab.workflow.admit_photos`,
                        stripped), the capture checklist                     :func:`~headshot_lab.workflow.check_photos`
``train_identity``      DreamBooth-LoRA, or the tuning-free FaceID embedding  ``train_identity`` / ``faceid_identity``
``generate``            headshots in a style (+ ControlNet pose)             ``generate_headshots``
``retouch``             studio retouch of the person's own photos            ``retouch_photos``
``select``              filter + rank with reasons                           ``select_headshots``
``export``              crops, disclosure metadata, zip (team mode)          ``export_single`` / ``export_team``
``audit``               the batch's audit card and plots                     ``audit_batch``
``delete_my_data``      delete the session and its published copies now      ``delete_session``
======================  ===================================================  ==========================================

Privacy model
-------------
* One :class:`~headshot_lab.privacy.Session` folder per browser session, created on the first
  upload with consent; its id lives only in the server-side ``gr.State`` (:class:`SessionState`).
* Uploads are decoded with :func:`headshot_lab.io.load_photo` in time-limited worker processes
  (:mod:`~headshot_lab.ui.decode`) and re-saved pixels-only (no EXIF or GPS) into ``uploads/``; Gradio's own
  upload copies are deleted right after. A refused request (count, consent) or a refused file (unreadable, too
  slow) leaves no copy anywhere; a request deletes only uploads its own page handed over, never the shared
  files every page is shown (style swatches), which live outside Gradio's cache.
* Gradio serves only Gradio's cache folder. A file is shown or downloaded by *publishing* it:
  copying its bytes unchanged (no re-encode: the disclosure XMP/C2PA stays intact) into
  ``<publish_root>/<sha256(session id)[:32]>/`` inside that cache. Session folders themselves are
  never served, so one visitor cannot read another's files even knowing their paths.
* "Delete my data now", a closed tab (``gr.State`` ``delete_callback``) and the TTL purge remove the
  session folder *and* its published copies.

Every action catches :class:`~headshot_lab.errors.HeadshotLabError` and returns its ``message``
and ``fix`` as the status (the same text the CLI prints); nothing a user does raises.

Modules: :mod:`~headshot_lab.ui.state` (session state, results, the error guard),
:mod:`~headshot_lab.ui.files` (session folders, publishing, deletion), :mod:`~headshot_lab.ui.actions`
(the actions), :mod:`~headshot_lab.ui.formatting` (Markdown, captions, style swatches),
:mod:`~headshot_lab.audit.batch` (the audit card), :mod:`~headshot_lab.ui.cli` (``audit-batch``,
``delete-session``). Importing this package is cheap: heavy libraries load inside the actions.
"""

from __future__ import annotations

from headshot_lab.audit.batch import BatchAudit, PersonTone, audit_batch
from headshot_lab.ui.actions import AppBackend
from headshot_lab.ui.files import SessionFiles
from headshot_lab.ui.formatting import audit_help, base_model_notice, format_capture_report, style_swatches
from headshot_lab.ui.state import (
    ACTIONS,
    CONSENT_TEXT,
    FORMATS,
    MAX_PHOTOS,
    MAX_PICKS,
    MAX_UPLOAD_MB,
    MIN_PICKS,
    POSE_CHOICES,
    ActionResult,
    Item,
    SessionState,
    format_error,
)

__all__ = [
    "ACTIONS",
    "CONSENT_TEXT",
    "FORMATS",
    "MAX_PHOTOS",
    "MAX_PICKS",
    "MAX_UPLOAD_MB",
    "MIN_PICKS",
    "POSE_CHOICES",
    "ActionResult",
    "AppBackend",
    "BatchAudit",
    "Item",
    "PersonTone",
    "SessionFiles",
    "SessionState",
    "audit_batch",
    "audit_help",
    "base_model_notice",
    "format_capture_report",
    "format_error",
    "style_swatches",
]
