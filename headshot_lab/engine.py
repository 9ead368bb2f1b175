"""Where work runs: in this process, in local worker processes, or on a Ray cluster.

One small contract for every fan-out in the project (a team's roster, the audit's batches):

    outcomes = run_tasks(work, items, keys=ids, spec=EngineSpec(kind="local", workers=2))
    outcomes = run_with_actors(Pipeline, "generate", items, spec=EngineSpec(kind="ray", num_gpus=1))

``work`` is a top-level (picklable) function of one item. Each item becomes one :class:`TaskOutcome`
holding either its value or the error in plain words; one failing item never stops the others, and a
failed item is tried again up to ``spec.retries`` more times. Outcomes come back in the order of
``items`` whatever the engine, so a local run and a Ray run of the same work give the same list.
``progress(done, total)`` is called each time an item is finished (worked, or failed its last try).

:func:`run_with_actors` is the same contract for work that must hold state (a model, a pipeline):
``factory()`` builds one worker object per worker, once, and ``getattr(worker, method_name)(item)``
runs every item on it. Locally that is one object in this process (``workers <= 1``) or one per
worker process; on Ray one actor per worker (``num_gpus`` each: with ``num_gpus=1`` one actor per GPU).

Engines:

* ``local`` (the embedded default): ``workers <= 1`` runs in this process; more uses a
  ``spawn`` process pool of that size.
* ``ray``: one Ray task per item (``num_cpus=1``, ``num_gpus=spec.num_gpus``), on the cluster at
  ``spec.address`` (``ray://host:10001`` or ``auto``) or on a local Ray started with ``spec.workers``
  CPUs and no dashboard. Ray is imported only here and only for this engine.

Privacy: before Ray is imported, :func:`quiet_ray_environment` sets ``RAY_USAGE_STATS_ENABLED=0`` unless
the operator set it. In Ray 2.60 the usage report (cluster metadata to usage-stats.ray.io every hour,
``ray/_common/usage/usage_lib.py``, sent by the head node's dashboard module ``UsageStatsHead``) is on by
default for ``ray start --head`` clusters; ``ray.init()`` of a new local Ray switches it off itself
(``ray/_private/worker.py``). Ray's token authentication (``RAY_AUTH_MODE``, enabled by default for a new
local Ray in 2.60, token in ``~/.ray/auth_token``) is left as Ray sets it: it guards the local cluster's
ports and sends nothing anywhere.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from headshot_lab.errors import HeadshotLabError

T = TypeVar("T")
R = TypeVar("R")

EngineKind = Literal["local", "ray"]
ENGINES: tuple[str, ...] = ("local", "ray")

#: ``progress(done, total)``: items finished so far (worked, or failed their last try) of all items.
Progress = Callable[[int, int], None]

#: Environment set (``setdefault``: the operator's own value wins) before Ray is imported.
RAY_QUIET_ENV: dict[str, str] = {
    "RAY_USAGE_STATS_ENABLED": "0",  # no usage report to usage-stats.ray.io
    "RAY_USAGE_STATS_PROMPT_ENABLED": "0",  # and no prompt about it
    "RAY_DISABLE_IMPORT_WARNING": "1",
    "RAY_DEDUP_LOGS": "1",
}

#: Environment variables copied to Ray workers started by a cluster (local workers inherit them anyway).
FORWARDED_ENV: tuple[str, ...] = ("HF_HUB_OFFLINE", "GLOG_minloglevel", "RAY_USAGE_STATS_ENABLED")
FORWARDED_PREFIXES: tuple[str, ...] = ("HEADSHOT_LAB_",)


@dataclass(frozen=True)
class EngineSpec:
    """How to run a fan-out: ``kind`` (local | ray), ``workers`` (processes / local Ray CPUs / actors),
    ``address`` (a Ray cluster; ``None`` starts a local one), ``num_gpus`` per task or actor, ``retries`` per
    failed item, ``runtime_env`` (a Ray runtime environment for a cluster, e.g. ``{"py_modules": [...]}``).
    """

    kind: EngineKind = "local"
    workers: int = 1
    address: str | None = None
    num_gpus: float = 0.0
    retries: int = 0
    runtime_env: Mapping[str, Any] | None = field(default=None, hash=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in ENGINES:
            raise HeadshotLabError(
                f"Unknown engine {self.kind!r}.", fix=f"Use one of: {', '.join(ENGINES)}.", code="unknown_engine"
            )
        if self.workers < 1:
            raise HeadshotLabError("The number of workers must be at least 1.", code="bad_workers")
        if self.retries < 0:
            raise HeadshotLabError("The number of retries cannot be negative.", code="bad_retries")
        if self.num_gpus < 0:
            raise HeadshotLabError("The number of GPUs cannot be negative.", code="bad_gpus")

    def describe(self) -> str:
        """Plain words for a report: ``"local, 2 processes"`` / ``"ray (auto), 4 workers, 1 GPU each"``."""
        if self.kind == "local":
            return "local, 1 process" if self.workers <= 1 else f"local, {self.workers} processes"
        where = self.address or "local Ray"
        gpus = f", {self.num_gpus:g} GPU each" if self.num_gpus else ""
        return f"ray ({where}), {self.workers} worker{'s' if self.workers != 1 else ''}{gpus}"


@dataclass
class TaskOutcome(Generic[R]):
    """One item's result: ``value`` when it worked, else ``error`` (``"Type: message"``) and ``detail`` (traceback)."""

    index: int
    key: str
    value: R | None = None
    error: str | None = None
    detail: str = ""
    attempts: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


# --------------------------------------------------------------------------------------------
# One attempt
# --------------------------------------------------------------------------------------------

Attempt = tuple[bool, Any, str]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, HeadshotLabError):
        return f"{exc.code}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


def _attempt(fn: Callable[[T], R], item: T) -> Attempt:
    """Run ``fn(item)``; ``(True, value, "")`` or ``(False, description, traceback)`` — never raises."""
    try:
        return True, fn(item), ""
    except Exception as exc:  # one bad item never stops the run
        return False, _describe(exc), traceback.format_exc(limit=8)


def _lost(exc: BaseException) -> Attempt:
    """A worker that died (killed, out of memory, node lost) is one failed attempt of its item."""
    return False, f"worker lost: {_describe(exc)}", traceback.format_exception_only(type(exc), exc)[-1]


# --------------------------------------------------------------------------------------------
# Ray session
# --------------------------------------------------------------------------------------------


def quiet_ray_environment() -> None:
    """Set :data:`RAY_QUIET_ENV` (``setdefault``) and quieten Ray's Python loggers to warnings."""
    for name, value in RAY_QUIET_ENV.items():
        os.environ.setdefault(name, value)
    for name in ("ray", "ray.data", "ray.train", "ray.tune"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # "Token authentication is enabled for this Ray cluster": said on every local start; the README says it once
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)


def _forwarded_env() -> dict[str, str]:
    return {
        k: v for k, v in os.environ.items() if k in FORWARDED_ENV or any(k.startswith(p) for p in FORWARDED_PREFIXES)
    }


def _import_ray() -> Any:
    quiet_ray_environment()
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - ray is in requirements.txt
        raise HeadshotLabError(
            "The Ray engine needs the `ray` package.", fix="pip install 'ray[data]==2.60.0'", code="ray_missing"
        ) from exc
    return ray


def start_ray(spec: EngineSpec) -> bool:
    """Connect to ``spec.address`` or start a local Ray with ``spec.workers`` CPUs; ``True`` when started here.

    Nothing is started when Ray is already initialised in this process (a test fixture, a caller's session).
    Local Ray: ``num_cpus=workers``, no dashboard, worker output not echoed to this terminal. Cluster:
    the ``runtime_env`` of the spec plus the project's offline/privacy variables in ``env_vars``.
    """
    ray = _import_ray()
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    try:
        if spec.address:
            runtime_env = dict(spec.runtime_env or {})
            runtime_env["env_vars"] = {**_forwarded_env(), **dict(runtime_env.get("env_vars") or {})}
            ray.init(address=spec.address, runtime_env=runtime_env, **options)
        else:
            ray.init(
                num_cpus=spec.workers,
                num_gpus=None if spec.num_gpus else 0,
                include_dashboard=False,
                runtime_env=dict(spec.runtime_env) if spec.runtime_env else None,
                **options,
            )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise HeadshotLabError(
            f"Ray could not start or reach the cluster at {spec.address or 'this machine'} ({exc}).",
            fix="Start a cluster with `ray start --head` and pass --address auto, or drop --address for a local Ray.",
            code="ray_unavailable",
        ) from exc
    return True


@contextmanager
def ray_session(spec: EngineSpec) -> Iterator[Any]:
    """``with ray_session(spec) as ray:`` — Ray ready for ``spec``; shut down at the end if started here."""
    ray = _import_ray()
    started = start_ray(spec)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


# --------------------------------------------------------------------------------------------
# The retry loop shared by every engine
# --------------------------------------------------------------------------------------------

#: ``runner(indices, finished)`` runs one attempt of those items and calls ``finished(i, attempt)`` once for each.
_Runner = Callable[[list[int], Callable[[int, Attempt], None]], None]


def _with_retries(
    count: int, keys: Sequence[str] | None, retries: int, runner: _Runner, progress: Progress | None
) -> list[TaskOutcome[Any]]:
    names = list(keys) if keys is not None else [str(i) for i in range(count)]
    if len(names) != count:
        raise HeadshotLabError("There must be one key per item.", code="bad_keys")
    outcomes: list[TaskOutcome[Any]] = [TaskOutcome(index=i, key=names[i], attempts=0) for i in range(count)]
    done = 0
    todo = list(range(count))
    for round_ in range(retries + 1):
        if not todo:
            break
        last = round_ == retries
        failing: list[int] = []

        def finished(i: int, attempt: Attempt, *, last: bool = last, failing: list[int] = failing) -> None:
            nonlocal done
            ok, payload, detail = attempt
            outcome = outcomes[i]
            outcome.attempts += 1
            if ok:
                outcome.value, outcome.error, outcome.detail = payload, None, ""
            else:
                outcome.error, outcome.detail = str(payload), detail
                failing.append(i)
            if ok or last:
                done += 1
                if progress is not None:
                    progress(done, count)

        runner(todo, finished)
        todo = sorted(failing)
    return outcomes


# --------------------------------------------------------------------------------------------
# run_tasks
# --------------------------------------------------------------------------------------------


def _local_task_runner(fn: Callable[[Any], Any], items: Sequence[Any], workers: int) -> _Runner:
    def run(indices: list[int], finished: Callable[[int, Attempt], None]) -> None:
        if workers <= 1 or len(indices) <= 1:
            for i in indices:
                finished(i, _attempt(fn, items[i]))
            return
        import multiprocessing
        from concurrent.futures.process import BrokenProcessPool

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(workers, len(indices)), mp_context=context) as pool:
            futures = {pool.submit(_attempt, fn, items[i]): i for i in indices}
            pending: set[Future[Attempt]] = set(futures)
            while pending:
                ready, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in ready:
                    try:
                        attempt = future.result()
                    except BrokenProcessPool as exc:
                        attempt = _lost(exc)
                    finished(futures[future], attempt)

    return run


def _ray_task_runner(fn: Callable[[Any], Any], items: Sequence[Any], spec: EngineSpec) -> _Runner:
    import ray

    remote: Any = ray.remote(_attempt).options(
        num_cpus=1, num_gpus=spec.num_gpus, max_retries=spec.retries, retry_exceptions=False
    )
    function = ray.put(fn)

    def run(indices: list[int], finished: Callable[[int, Attempt], None]) -> None:
        refs = {remote.remote(function, items[i]): i for i in indices}
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                try:
                    attempt = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the worker died; user errors come back as values
                    attempt = _lost(exc)
                finished(refs[ref], attempt)

    return run


def run_tasks(
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    keys: Sequence[str] | None = None,
    spec: EngineSpec | None = None,
    progress: Progress | None = None,
) -> list[TaskOutcome[R]]:
    """Run ``fn`` on every item with the engine of ``spec``; one :class:`TaskOutcome` per item, in order.

    Failed items are run again (all of them together) up to ``spec.retries`` times; ``attempts`` counts the tries.
    On Ray, a task whose worker dies is also retried by Ray itself (``max_retries=spec.retries``);
    ``retry_exceptions`` stays off because the item's own errors come back as values and are retried here.
    """
    spec = spec or EngineSpec()
    if spec.kind == "ray":
        with ray_session(spec):
            return _with_retries(len(items), keys, spec.retries, _ray_task_runner(fn, items, spec), progress)
    return _with_retries(len(items), keys, spec.retries, _local_task_runner(fn, items, spec.workers), progress)


# --------------------------------------------------------------------------------------------
# run_with_actors
# --------------------------------------------------------------------------------------------


class _Holder:
    """One worker object built by ``factory()`` once; :meth:`call` runs one item on it and never raises."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.worker: Any = None
        self.failure: Attempt | None = None
        try:
            self.worker = factory()
        except Exception as exc:  # reported on every item this worker was given
            self.failure = (False, f"the worker could not be built: {_describe(exc)}", traceback.format_exc(limit=8))

    def call(self, method_name: str, item: Any) -> Attempt:
        if self.failure is not None:
            return self.failure
        return _attempt(getattr(self.worker, method_name), item)

    def ping(self) -> bool:
        return self.failure is None


_PROCESS_HOLDER: _Holder | None = None


def _init_process_holder(factory: Callable[[], Any]) -> None:
    global _PROCESS_HOLDER
    _PROCESS_HOLDER = _Holder(factory)


def _call_process_holder(method_name: str, item: Any) -> Attempt:
    assert _PROCESS_HOLDER is not None, "worker not initialised"
    return _PROCESS_HOLDER.call(method_name, item)


def actor_count(spec: EngineSpec, cluster: Mapping[str, float] | None = None) -> int:
    """How many workers :func:`run_with_actors` builds: ``spec.workers``, capped by the GPUs when ``num_gpus > 0``.

    ``floor(GPUs / num_gpus)`` actors fit the cluster's GPUs (``num_gpus=1`` → one actor per GPU); at least one.
    """
    if spec.num_gpus > 0 and cluster is not None and cluster.get("GPU"):
        return max(1, min(spec.workers, int(float(cluster["GPU"]) // spec.num_gpus)))
    return spec.workers


def _local_actor_runner(factory: Callable[[], Any], method: str, items: Sequence[Any], workers: int) -> _Runner:
    state: dict[str, Any] = {}

    def run(indices: list[int], finished: Callable[[int, Attempt], None]) -> None:
        if workers <= 1:
            if "holder" not in state:
                state["holder"] = _Holder(factory)
            holder = state["holder"]
            for i in indices:
                finished(i, holder.call(method, items[i]))
            return
        import multiprocessing
        from concurrent.futures.process import BrokenProcessPool

        pool = state.get("pool")
        if pool is None:
            context = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(
                workers, mp_context=context, initializer=_init_process_holder, initargs=(factory,)
            )
            state["pool"] = pool
        futures = {pool.submit(_call_process_holder, method, items[i]): i for i in indices}
        pending: set[Future[Attempt]] = set(futures)
        while pending:
            ready, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in ready:
                try:
                    attempt = future.result()
                except BrokenProcessPool as exc:  # a worker process died: the next try gets a new pool
                    attempt = _lost(exc)
                    if state.get("pool") is pool:
                        state.pop("pool").shutdown(wait=False, cancel_futures=True)
                finished(futures[future], attempt)

    def close() -> None:
        pool = state.pop("pool", None)
        if pool is not None:
            pool.shutdown()

    run.close = close  # type: ignore[attr-defined]
    return run


def _ray_actor_runner(
    ray: Any, factory: Callable[[], Any], method: str, items: Sequence[Any], spec: EngineSpec
) -> _Runner:
    holder_class: Any = ray.remote(_Holder)
    options = {"num_cpus": 1, "num_gpus": spec.num_gpus, "max_restarts": spec.retries}
    actors = [
        holder_class.options(**options).remote(factory) for _ in range(actor_count(spec, ray.cluster_resources()))
    ]

    def run(indices: list[int], finished: Callable[[int, Attempt], None]) -> None:
        queue = list(indices)
        running: dict[Any, tuple[int, int]] = {}  # ref → (item, actor slot)

        def submit(slot: int) -> None:
            i = queue.pop(0)
            running[actors[slot].call.remote(method, items[i])] = (i, slot)

        for slot in range(min(len(actors), len(queue))):
            submit(slot)
        while running:
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                i, slot = running.pop(ref)
                try:
                    attempt = ray.get(ref)
                except ray.exceptions.RayActorError as exc:  # the actor is gone for good: a new one takes its slot
                    attempt = _lost(exc)
                    actors[slot] = holder_class.options(**options).remote(factory)
                except ray.exceptions.RayError as exc:
                    attempt = _lost(exc)
                finished(i, attempt)
                if queue:
                    submit(slot)

    def close() -> None:  # free the actors (and their GPUs) now, not when the handles are collected
        for actor in actors:
            ray.kill(actor)

    run.close = close  # type: ignore[attr-defined]
    return run


def run_with_actors(
    factory: Callable[[], Any],
    method_name: str,
    items: Sequence[T],
    *,
    spec: EngineSpec | None = None,
    keys: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> list[TaskOutcome[Any]]:
    """``getattr(worker, method_name)(item)`` for every item, each worker built once by ``factory()``.

    Workers: one in this process (local, ``workers <= 1``), one per spawned process (local, ``workers > 1``),
    one Ray actor per worker (ray; :func:`actor_count`, ``num_gpus`` each — one per GPU with ``num_gpus=1``).
    A factory that fails makes every item given to that worker fail with the reason; the run goes on.
    Outcomes, retries and progress as in :func:`run_tasks`; retries reuse the same workers.
    """
    spec = spec or EngineSpec()
    if spec.kind == "ray":
        with ray_session(spec) as ray:
            runner = _ray_actor_runner(ray, factory, method_name, items, spec)
            try:
                return _with_retries(len(items), keys, spec.retries, runner, progress)
            finally:
                runner.close()  # type: ignore[attr-defined]
    local = _local_actor_runner(factory, method_name, items, spec.workers)
    try:
        return _with_retries(len(items), keys, spec.retries, local, progress)
    finally:
        local.close()  # type: ignore[attr-defined]


__all__ = [
    "ENGINES",
    "RAY_QUIET_ENV",
    "EngineKind",
    "EngineSpec",
    "Progress",
    "TaskOutcome",
    "actor_count",
    "quiet_ray_environment",
    "ray_session",
    "run_tasks",
    "run_with_actors",
    "start_ray",
]
