"""Records from dataclasses: settings objects become the dicts written to cards, fingerprints and manifests.

One function, :func:`config_record`, turns a settings dataclass into a JSON-safe dict — the fields of
``dataclasses.asdict(config)`` minus an explicit exclusion table — so a field added to
:class:`~headshot_lab.train.TrainConfig` (or to the generator's option classes) reaches the LoRA card, the
resume fingerprint and the manifest line by itself. Leaving a field out of a record is a decision written
next to the record (``{"field": "why it is left out"}``), never an omission; an exclusion that names no
field is an error, so a renamed field cannot silently slip back in.

:func:`record_changes` compares a saved record with a new one. A key the saved record lacks was added to
the code after it was written: it counts as that setting's *default* (the old code behaved as the default
does), so records written before a field existed stay comparable.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

#: ``{field name: why it is left out of the record}``.
Exclusions = Mapping[str, str]

__all__ = ["Exclusions", "config_defaults", "config_record", "jsonable", "record_changes"]


def jsonable(value: Any) -> Any:
    """``value`` as JSON types: paths → ``str``, tuples/sets → lists, enums → their value, NumPy scalars →
    Python numbers, nested dataclasses → :func:`config_record`; ``None``/bool/int/float/str unchanged.

    Raises:
        TypeError: for anything else (an array, an image, a model), which does not belong in a record.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return config_record(value)
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted(jsonable(item) for item in value)
    if hasattr(value, "item") and getattr(value, "shape", None) == ():  # a NumPy / torch scalar
        return jsonable(value.item())
    raise TypeError(f"{type(value).__name__} cannot go into a record; exclude the field and say why")


def config_record(config: Any, exclude: Exclusions | None = None) -> dict[str, Any]:
    """``dataclasses.asdict(config)`` without the ``exclude`` fields, JSON-safe (:func:`jsonable`).

    Excluded fields are never read, so a field holding pixels (a selfie) is not even copied.

    Raises:
        TypeError: ``config`` is not a dataclass instance, or a kept field holds a non-record value.
        ValueError: ``exclude`` names a field ``config`` does not have (a stale exclusion).
    """
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"config_record needs a dataclass instance, got {type(config).__name__}")
    exclude = exclude or {}
    names = [f.name for f in dataclasses.fields(config)]
    stale = sorted(set(exclude) - set(names))
    if stale:
        raise ValueError(f"exclusions name no field of {type(config).__name__}: {', '.join(stale)}")
    return {name: jsonable(getattr(config, name)) for name in names if name not in exclude}


def config_defaults(config: Any) -> dict[str, Any]:
    """The declared default of every field of ``config`` (class or instance) that has one, JSON-safe."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        if f.default is not dataclasses.MISSING:
            out[f.name] = jsonable(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = jsonable(f.default_factory())
    return out


def record_changes(
    saved: Mapping[str, Any], current: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
) -> tuple[list[str], list[str]]:
    """``(changed, unrecorded)``: the keys of ``current`` whose value differs from ``saved``.

    A key missing from ``saved`` is compared with ``defaults[key]`` (it was added after ``saved`` was
    written, and the older code behaved as its default does); when it has no default it cannot be checked
    and is listed in ``unrecorded`` instead. Keys only in ``saved`` (settings since removed) are ignored.
    """
    defaults = defaults or {}
    changed: list[str] = []
    unrecorded: list[str] = []
    for key, value in current.items():
        if key in saved:
            if saved[key] != value:
                changed.append(key)
        elif key in defaults:
            if defaults[key] != value:
                changed.append(key)
        else:
            unrecorded.append(key)
    return sorted(changed), sorted(unrecorded)
