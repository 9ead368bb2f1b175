"""Helpers for tests, notebooks and smoke tests: real photos from registry packages, tiny models."""

from headshot_lab.testing.photos import PhotoSourceUnavailable, real_photo, real_photos

__all__ = ["PhotoSourceUnavailable", "real_photo", "real_photos"]
