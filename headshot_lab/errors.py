"""One exception family for everything a user can cause.

Every error carries a stable ``code`` (for programs), a ``message`` (for people) and a
``fix`` (what to do about it). The CLI, the app and the capture report show exactly these.
"""

from __future__ import annotations


class HeadshotLabError(Exception):
    """Base class: a problem a user can understand and act on."""

    code: str = "error"
    fix: str = ""

    def __init__(self, message: str, *, fix: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if fix is not None:
            self.fix = fix
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, str]:
        """The ``{"code", "message", "fix"}`` form used in JSON reports."""
        return {"code": self.code, "message": self.message, "fix": self.fix}


class ImageError(HeadshotLabError):
    """A file could not be used as a photo."""

    code = "image_error"
    fix = "Upload a JPEG, PNG, WebP or HEIC photo straight from your camera or phone."


class EmptyFileError(ImageError):
    code = "empty_file"
    fix = "The file has no content; upload the photo again."


class NotAnImageError(ImageError):
    code = "not_an_image"


class UnsupportedFormatError(ImageError):
    code = "unsupported_format"


class TruncatedImageError(ImageError):
    code = "truncated_image"
    fix = "The file is incomplete (an interrupted upload or copy); upload it again."


class ImageTooLargeError(ImageError):
    code = "image_too_large"
    fix = "Export the photo at a smaller size (e.g. 12 megapixels or less) and upload it again."


class ImageTooSmallError(ImageError):
    code = "image_too_small"
    fix = "Upload the original photo, not a thumbnail or a screenshot of one."


class ModelUnavailableError(HeadshotLabError):
    """Model weights are missing or cannot be downloaded."""

    code = "model_unavailable"


class FaceNotFoundError(HeadshotLabError):
    code = "no_face"
    fix = "Use a photo where your whole face is visible, facing the camera, in good light."


class DiskFullError(HeadshotLabError):
    """The disk (or the user's quota) filled up while writing; nothing was half-written (see :mod:`headshot_lab.atomic`)."""

    code = "disk_full"
    fix = "Free some disk space and try again."


class ImageTooComplexError(ImageError):
    """A file whose structure alone would take minutes to decode (thousands of JPEG scans …)."""

    code = "image_too_complex"
    fix = "Save the photo again from your photo app as an ordinary JPEG or PNG and upload that copy."


class MetadataTooLargeError(ImageError):
    """Hidden data (EXIF, colour profile, text) far larger than any camera writes: a memory bomb."""

    code = "metadata_too_large"
    fix = "Open the photo in your photo app, save or export a copy, and upload that copy."
