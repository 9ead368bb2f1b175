"""``python -m eval --engine ray`` (Ray Data, an actor pool of analysers) writes the local path's results.json.

One local Ray (2 CPUs, no dashboard) serves the whole module. The config is the fastest real-photo one
(four real faces of four people, no synthetic variants, 200 bootstrap resamples, no plots) with the exact
null, a tone canary and the identity canary (its donor faces travel to the actors).

Fields allowed to differ between the engines (and nothing else): ``results.json``'s
:data:`eval.runner.RUN_ENVIRONMENT_KEYS` (``seconds``, ``python``, ``engine``), each run's
``extra.seconds_per_image`` and each sample record's ``seconds``.
"""

from __future__ import annotations

import copy
import json

import pytest

from eval.runner import RUN_ENVIRONMENT_KEYS, RUN_TIMING_FIELDS, EvalConfig, read_samples, run_eval
from headshot_lab.engine import EngineSpec, quiet_ray_environment

FACES = ["obama", "obama2", "group_0", "group_1", "group_2"]


def _config(**changes) -> EvalConfig:
    base = {
        "name": "ray-vs-local",
        "dataset": "offline",
        "dataset_options": {"faces": FACES, "variants_per_face": 0},
        "generators": ["null", "lighten:3", "identity_blend:0.5"],
        "n_resamples": 200,
        "plots": False,
        "batch_size": 2,
        "donor_pool": 4,
    }
    base.update(changes)
    return EvalConfig(**base)


def _comparable_results(folder):
    results = json.loads((folder / "results.json").read_text())
    for key in RUN_ENVIRONMENT_KEYS:
        results.pop(key, None)
    for run in results["runs"]:
        for key in RUN_TIMING_FIELDS:
            run["extra"].pop(key, None)
    return results


def _comparable_records(folder):
    records, unreadable, features = read_samples(folder)
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records], unreadable, features


@pytest.fixture(scope="module")
def ray_local():
    quiet_ray_environment()
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def both(real_photos, ray_local, tmp_path_factory):
    root = tmp_path_factory.mktemp("ray-eval")
    local = run_eval(_config(), root / "local", progress=False)
    on_ray = run_eval(_config(), root / "ray", progress=False, engine=EngineSpec(kind="ray", workers=2))
    return root, local, on_ray


def test_ray_and_local_write_identical_results(both):
    root, local, on_ray = both
    assert on_ray["engine"] == "ray (local Ray), 2 workers" and local["engine"] == "local, 1 process"
    a, b = _comparable_results(root / "local"), _comparable_results(root / "ray")
    assert a == b  # same records → same metrics, CIs, flags, power, skipped list, config
    assert a["n_sources"] == len(FACES)
    assert "skin_lightening" in next(r for r in a["runs"] if r["generator"] == "lighten:3")["flags"]
    assert next(r for r in a["runs"] if r["generator"] == "null")["flags"] == []


def test_ray_and_local_write_identical_samples_and_features(both):
    root, _, _ = both
    records_local, unreadable_local, features_local = _comparable_records(root / "local")
    records_ray, unreadable_ray, features_ray = _comparable_records(root / "ray")
    assert records_local == records_ray and unreadable_local == unreadable_ray
    assert len(records_local) == len(FACES) * 3
    assert sorted(features_local) == sorted(features_ray)
    for key, value in features_local.items():
        assert value.tolist() == features_ray[key].tolist(), key


def test_a_ray_shard_merges_with_a_local_shard_into_the_whole(both, tmp_path, monkeypatch):
    """``--shard`` on Ray and ``merge`` share the local code: shard 0 on Ray + shard 1 locally = the whole run.

    The Ray shard (two people) is fed to Ray Data one entry at a time: two windows, each with its own actor pool.
    """
    import eval.runner
    from eval.merge import merge_runs

    monkeypatch.setattr(eval.runner, "RAY_WINDOW", 1)

    _, local, _ = both
    # identity_blend is left out: its donors are drawn from the shard's own faces, so it differs by design
    generators = ["null", "lighten:3"]
    ray_spec = EngineSpec(kind="ray", workers=2)
    run_eval(_config(shard="0/2", generators=generators), tmp_path / "s0", progress=False, engine=ray_spec)
    run_eval(_config(shard="1/2", generators=generators), tmp_path / "s1", progress=False)
    assert json.loads((tmp_path / "s0" / "results.json").read_text())["n_sources"] == 2
    merged = merge_runs([tmp_path / "s0", tmp_path / "s1"], tmp_path / "merged", progress=False)
    assert merged["n_sources"] == local["n_sources"]
    whole = [run for run in local["runs"] if run["generator"] in generators]
    for before, after in zip(whole, merged["runs"], strict=True):
        for name in ("skin_delta_ita", "identity_cosine", "identity_delta"):
            assert after["metrics"][name]["overall"] == before["metrics"][name]["overall"]
            assert after["metrics"][name]["by_group"] == before["metrics"][name]["by_group"]
        assert after["flags"] == before["flags"]


def test_a_missing_model_stops_the_ray_run_with_the_same_clear_error(both, tmp_path, monkeypatch):
    from headshot_lab.errors import ModelUnavailableError

    monkeypatch.delenv("HEADSHOT_LAB_BASE_MODEL", raising=False)
    config = copy.deepcopy(
        _config(generators=["pipeline"], dataset_options={"faces": ["obama"], "variants_per_face": 0})
    )
    with pytest.raises(ModelUnavailableError) as info:
        run_eval(config, tmp_path / "out", progress=False, engine=EngineSpec(kind="ray", workers=1))
    assert "HEADSHOT_LAB_BASE_MODEL" in info.value.message + info.value.fix


def test_engine_flags_are_parsed_and_checked(monkeypatch):
    from eval.__main__ import build_run_parser, engine_from_args
    from eval.runner import load_config
    from headshot_lab.errors import HeadshotLabError

    parser = build_run_parser()
    args = parser.parse_args(
        ["--config", "offline", "--output-path", "x", "--engine", "ray", "--address", "auto", "--workers", "3"]
    )
    spec = engine_from_args(args, load_config("offline"))
    assert (spec.kind, spec.address, spec.workers, spec.num_gpus) == ("ray", "auto", 3, 0.0)
    args = parser.parse_args(["--config", "offline", "--output-path", "x", "--engine", "ray", "--num-gpus", "1"])
    assert engine_from_args(args, load_config("offline")).num_gpus == 1.0
    args = parser.parse_args(["--config", "offline", "--output-path", "x", "--address", "auto"])
    with pytest.raises(HeadshotLabError, match="needs --engine ray"):
        engine_from_args(args, load_config("offline"))
    assert engine_from_args(parser.parse_args(["--config", "offline", "--output-path", "x"]), None) is None


def test_bad_input_on_ray_is_decoded_in_the_actors_and_counted_like_local(ray_local, tmp_path, load_real):
    """An image folder (entries are paths; the actors decode): a broken file and a faceless crop are listed, not fatal."""
    import pickle

    from eval.datasets import open_dataset
    from headshot_lab.io import save_image

    images = tmp_path / "in"
    save_image(load_real("astronaut"), images / "astronaut.png")
    save_image(load_real("astronaut")[:60, :60], images / "corner.png")  # no face in it
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 damaged")
    dataset = open_dataset(f"imagefolder:{images}")
    entries = list(dataset.entries())
    view = pickle.loads(pickle.dumps(dataset.worker_view()))
    assert [view.load(pickle.loads(pickle.dumps(e))).id for e in entries] == [s.id for s in dataset.iterate()]
    config = {
        "name": "bad-input",
        "dataset": f"imagefolder:{images}",
        "generators": ["null", "lighten:3"],
        "n_resamples": 200,
        "plots": False,
        "detectability": {"enabled": False},
    }
    run_eval(EvalConfig(**config), tmp_path / "local", progress=False)
    on_ray = run_eval(EvalConfig(**config), tmp_path / "ray", progress=False, engine=EngineSpec(kind="ray", workers=2))
    assert _comparable_results(tmp_path / "local") == _comparable_results(tmp_path / "ray")
    assert {s["id"] for s in on_ray["skipped"]} >= {"broken.jpg", "corner.png"}
    assert _comparable_records(tmp_path / "local")[:2] == _comparable_records(tmp_path / "ray")[:2]
