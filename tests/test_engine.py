"""headshot_lab.engine: local and Ray give the same outcomes, in item order, with retries and built-once workers.

One local Ray (2 CPUs, no dashboard) is started for the whole module and shut down at the end.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

from headshot_lab.engine import (
    RAY_QUIET_ENV,
    EngineSpec,
    actor_count,
    quiet_ray_environment,
    run_tasks,
    run_with_actors,
)
from headshot_lab.errors import HeadshotLabError

ITEMS = [3, -1, 5, 0, 7, -2, 11]


def square_or_fail(x: int) -> int:
    """Squares; negative numbers fail with a plain error."""
    if x < 0:
        raise ValueError(f"negative item {x}")
    return x * x


def flaky(path: str) -> str:
    """Fails the first time it sees ``path`` (a marker file), works the second time: a transient error."""
    marker = Path(path)
    if not marker.exists():
        marker.write_text("seen")
        raise RuntimeError("transient failure")
    return marker.name


def die_once(path: str) -> str:
    """Kills its own worker process the first time it sees ``path``: a crash, not an exception."""
    marker = Path(path)
    if not marker.exists():
        marker.write_text("died")
        os._exit(3)
    return "survived"


class Dier:
    def work(self, path: str) -> str:
        return die_once(path)


class Counter:
    """A stateful worker: writes one file per construction into ``folder``, counts its calls."""

    def __init__(self, folder: str) -> None:
        self.name = uuid.uuid4().hex
        (Path(folder) / f"{self.name}.built").write_text(str(os.getpid()))
        self.calls = 0

    def work(self, x: int) -> tuple[int, str, int]:
        self.calls += 1
        return square_or_fail(x), self.name, self.calls


class CounterFactory:
    """Picklable ``factory()`` for :class:`Counter`."""

    def __init__(self, folder: Path) -> None:
        self.folder = str(folder)

    def __call__(self) -> Counter:
        return Counter(self.folder)


class Broken:
    def __init__(self) -> None:
        raise OSError("no model file")


@pytest.fixture(scope="module")
def ray_local():
    quiet_ray_environment()
    import ray
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers cannot import test modules
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def _plain(outcomes):
    return [(o.index, o.key, o.value, o.error, o.attempts) for o in outcomes]


def test_spec_is_checked_and_described():
    with pytest.raises(HeadshotLabError, match="Unknown engine"):
        EngineSpec(kind="spark")  # type: ignore[arg-type]
    with pytest.raises(HeadshotLabError):
        EngineSpec(workers=0)
    with pytest.raises(HeadshotLabError):
        EngineSpec(retries=-1)
    assert EngineSpec(kind="ray", workers=2, num_gpus=1).describe() == "ray (local Ray), 2 workers, 1 GPU each"
    assert EngineSpec(workers=3).describe() == "local, 3 processes"


def test_actor_count_is_one_per_gpu():
    assert actor_count(EngineSpec(kind="ray", workers=8, num_gpus=1), {"CPU": 32, "GPU": 4}) == 4
    assert actor_count(EngineSpec(kind="ray", workers=8, num_gpus=0.5), {"GPU": 2}) == 4
    assert actor_count(EngineSpec(kind="ray", workers=2, num_gpus=1), {"GPU": 4}) == 2
    assert actor_count(EngineSpec(kind="ray", workers=3), {"CPU": 2}) == 3


def test_telemetry_is_switched_off_before_ray_starts(monkeypatch):
    monkeypatch.delenv("RAY_USAGE_STATS_ENABLED", raising=False)
    quiet_ray_environment()
    assert os.environ["RAY_USAGE_STATS_ENABLED"] == RAY_QUIET_ENV["RAY_USAGE_STATS_ENABLED"] == "0"
    from ray._common.usage import usage_lib

    assert not usage_lib.usage_stats_enabled()


def test_in_process_outcomes_in_order_with_errors():
    outcomes = run_tasks(square_or_fail, ITEMS, keys=[f"k{i}" for i in ITEMS])
    assert [o.value for o in outcomes] == [9, None, 25, 0, 49, None, 121]
    assert [o.ok for o in outcomes] == [x >= 0 for x in ITEMS]
    assert outcomes[1].error == "ValueError: negative item -1" and "Traceback" in outcomes[1].detail
    assert [o.key for o in outcomes] == [f"k{i}" for i in ITEMS]
    with pytest.raises(HeadshotLabError, match="one key per item"):
        run_tasks(square_or_fail, ITEMS, keys=["a"])


def test_local_processes_ray_and_in_process_give_identical_outcomes(ray_local):
    expected = _plain(run_tasks(square_or_fail, ITEMS, spec=EngineSpec(retries=1)))
    local = _plain(run_tasks(square_or_fail, ITEMS, spec=EngineSpec(workers=2, retries=1)))
    on_ray = _plain(run_tasks(square_or_fail, ITEMS, spec=EngineSpec(kind="ray", workers=2, retries=1)))
    assert local == on_ray == expected
    assert [a for *_, a in expected] == [1, 2, 1, 1, 1, 2, 1]  # the failing items were tried twice
    assert ray_local.is_initialized()  # a session started by the caller is left running


@pytest.mark.parametrize("kind", ["local", "ray"])
def test_a_transient_failure_is_retried(tmp_path, ray_local, kind):
    paths = [str(tmp_path / f"{kind}-{i}") for i in range(3)]
    seen = []
    outcomes = run_tasks(
        flaky, paths, spec=EngineSpec(kind=kind, workers=2, retries=1), progress=lambda d, t: seen.append((d, t))
    )
    assert all(o.ok and o.attempts == 2 for o in outcomes)
    assert [o.value for o in outcomes] == [Path(p).name for p in paths]
    assert seen == [(1, 3), (2, 3), (3, 3)]  # progress counts finished items only
    no_retry = run_tasks(flaky, [str(tmp_path / f"{kind}-new")], spec=EngineSpec(kind=kind))
    assert no_retry[0].error == "RuntimeError: transient failure" and no_retry[0].attempts == 1


def test_progress_reaches_the_total_when_items_fail():
    seen = []
    run_tasks(square_or_fail, ITEMS, spec=EngineSpec(retries=2), progress=lambda d, t: seen.append((d, t)))
    assert [d for d, _ in seen] == list(range(1, len(ITEMS) + 1)) and {t for _, t in seen} == {len(ITEMS)}


@pytest.mark.parametrize(
    "spec,builders",
    [
        (EngineSpec(), 1),
        (EngineSpec(workers=2), 2),
        (EngineSpec(kind="ray", workers=2), 2),
    ],
    ids=["in-process", "local-2", "ray-2"],
)
def test_actors_are_built_once_per_worker_and_reused(tmp_path, ray_local, spec, builders):
    items = [*range(8), -3]
    outcomes = run_with_actors(CounterFactory(tmp_path), "work", items, spec=spec)
    assert [o.value[0] if o.ok else None for o in outcomes] == [x * x for x in range(8)] + [None]
    assert outcomes[-1].error == "ValueError: negative item -3"
    built = list(tmp_path.glob("*.built"))
    names = {o.value[1] for o in outcomes if o.ok}
    assert names <= {p.stem for p in built}
    assert len(built) <= builders  # never more than one build per worker, however many items
    if spec.workers == 1:
        assert len(built) == 1 and max(o.value[2] for o in outcomes if o.ok) == 8  # one object saw every call
    # every call landed on one of the built workers and the calls on each add up to the items
    assert sum(max(o.value[2] for o in outcomes if o.ok and o.value[1] == n) for n in names) == 8


@pytest.mark.parametrize("kind", ["local", "ray"])
def test_actor_results_match_tasks(tmp_path, ray_local, kind):
    tasks = run_tasks(square_or_fail, ITEMS, spec=EngineSpec(kind=kind, workers=2))
    actors = run_with_actors(CounterFactory(tmp_path), "work", ITEMS, spec=EngineSpec(kind=kind, workers=2))
    assert [o.value for o in tasks] == [o.value[0] if o.ok else None for o in actors]
    assert [o.error for o in tasks] == [o.error for o in actors]


@pytest.mark.parametrize("kind", ["local", "ray"])
def test_a_worker_that_cannot_be_built_fails_its_items_with_the_reason(ray_local, kind):
    outcomes = run_with_actors(Broken, "work", [1, 2, 3], spec=EngineSpec(kind=kind, workers=2, retries=1))
    assert all(not o.ok for o in outcomes)
    assert all(o.error == "the worker could not be built: OSError: no model file" for o in outcomes)
    assert all(o.attempts == 2 for o in outcomes)


@pytest.mark.parametrize("kind", ["local", "ray"])
def test_a_worker_that_dies_is_an_attempt_and_the_retry_gets_a_new_worker(tmp_path, ray_local, kind):
    # Two retries: a local pool that breaks also fails the items that had not run yet, so the second item
    # may die only in the second round; by the third each item has died once and then works.
    spec = EngineSpec(kind=kind, workers=2, retries=2)
    paths = [str(tmp_path / f"{kind}-task-{i}") for i in range(2)]
    tasks = run_tasks(die_once, paths, spec=spec)
    assert [o.value for o in tasks] == ["survived", "survived"]  # on Ray, Ray retries a lost task itself
    paths = [str(tmp_path / f"{kind}-actor-{i}") for i in range(2)]
    actors = run_with_actors(Dier, "work", paths, spec=spec)
    assert [o.value for o in actors] == ["survived", "survived"]
    assert all(2 <= o.attempts <= 3 for o in actors)
    fresh = [str(tmp_path / f"{kind}-once-{i}") for i in range(2)]
    once = run_with_actors(Dier, "work", fresh, spec=EngineSpec(kind=kind, workers=2))
    assert all(o.error.startswith("worker lost: ") and o.attempts == 1 for o in once)
