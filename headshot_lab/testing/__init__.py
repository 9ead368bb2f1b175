"""Helpers for tests, notebooks and smoke tests: real photos from registry packages, tiny models."""

from headshot_lab.testing.photos import PhotoSourceUnavailable, real_photo, real_photos
from headshot_lab.testing.tiny import tiny_pipeline

__all__ = ["PhotoSourceUnavailable", "real_photo", "real_photos", "tiny_pipeline"]
