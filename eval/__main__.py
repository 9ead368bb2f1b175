"""``python -m eval``: run an audit, or merge shards.

    python -m eval --config eval/configs/offline.yaml --output-path outputs/audit \\
        [--limit N] [--seed S] [--generator SPEC ...] [--dataset SPEC] [--num-proc N] [--shard I/N]
        [--engine local|ray] [--address auto|ray://HOST:10001] [--workers N] [--num-gpus G] [--ship-code]
    python -m eval merge DIR1 DIR2 ... --output-path DIR
    python -m eval power DIR [--seeds 200] [--fraction 0.8]   # more resampling seeds on a finished run
    python -m eval calibrate --config offline --output-path DIR [--seeds K] [--sizes 4,8,16,50] [--from RUN]
                                       # false alarms and power by sample size over disjoint trials
    python -m eval generators          # list the registered generators

Exit codes: 0 done, 1 the audit could not run (the message says why and what to do), 2 usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any


def build_run_parser(prog: str = "python -m eval") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Audit a headshot generator for bias (headshot-lab).")
    add_run_arguments(parser)
    return parser


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", required=True, help="YAML config (a path, or a name in eval/configs: offline, fairface …)"
    )
    parser.add_argument(
        "--output-path", "--output_path", dest="output_path", required=True, help="folder for the results"
    )
    parser.add_argument("--limit", type=int, default=None, help="at most N source images (per shard)")
    parser.add_argument("--seed", type=int, default=None, help="seed of generators, bootstrap and folds")
    parser.add_argument(
        "--generator",
        action="append",
        default=None,
        metavar="SPEC",
        help="generator spec (repeat, or comma-separate): null, studio, pipeline, folder:PATH, lighten:D, darken:D, "
        "identity_blend:A, smooth:S, tone_jitter:D, reencode[:Q], relight[:E], 'A | reencode' — replaces the config's list",
    )
    parser.add_argument("--dataset", default=None, help="offline | imagefolder:PATH | a Hub id (replaces the config's)")
    parser.add_argument("--num-proc", "--num_proc", dest="num_proc", type=int, default=None, help="worker processes")
    parser.add_argument("--batch-size", dest="batch_size", type=int, default=None, help="images per worker batch")
    parser.add_argument("--shard", default=None, help="I/N: run shard I of N (people stay within one shard)")
    parser.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local processes (default) or a Ray actor pool (Ray Data); both write the same results.json",
    )
    parser.add_argument(
        "--address", default=None, help="Ray cluster: auto (after `ray start --head`) or ray://HOST:10001"
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="analysers: Ray actors (--engine ray) or processes (local)"
    )
    parser.add_argument("--num-gpus", dest="num_gpus", type=float, default=None, help="GPUs per Ray analyser")
    parser.add_argument(
        "--ship-code",
        dest="ship_code",
        action="store_true",
        help="send headshot_lab/ and eval/ to the cluster's workers (Ray py_modules) when they lack this checkout",
    )
    parser.add_argument(
        "--power-seeds", dest="power_seeds", type=int, default=None, help="resampling seeds for power (0 = off)"
    )
    parser.add_argument("--no-plots", dest="plots", action="store_false", default=None, help="skip the PNG plots")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run_from_args(args: argparse.Namespace) -> int:
    from eval.runner import load_config, run_eval

    generators = None
    if args.generator:
        generators = [spec.strip() for item in args.generator for spec in item.split(",") if spec.strip()]
    overrides = {
        "limit": args.limit,
        "seed": args.seed,
        "generators": generators,
        "dataset": args.dataset,
        "num_proc": args.num_proc,
        "batch_size": args.batch_size,
        "shard": args.shard,
        "plots": args.plots,
    }
    if args.dataset is not None:
        overrides["dataset_options"] = {} if args.dataset != "offline" else None
    engine_kind = getattr(args, "engine", "local") or "local"
    workers = getattr(args, "workers", None)
    if engine_kind == "local" and workers is not None and overrides["num_proc"] is None:
        overrides["num_proc"] = workers
    config = load_config(args.config, **overrides)
    if args.power_seeds is not None:
        config.power = {**(config.power or {}), "seeds": int(args.power_seeds)}
    results = run_eval(config, args.output_path, progress=not args.quiet, engine=engine_from_args(args, config))
    print(f"wrote {args.output_path}/results.json, samples.jsonl, report.md ({results.get('seconds')} s)")
    for run in results["runs"]:
        print(f"  {run['generator']:<22} n={run['n']:<5} flags: {', '.join(run['flags']) or 'none'}")
    return 0


def engine_from_args(args: argparse.Namespace, config: Any) -> Any:
    """The :class:`headshot_lab.engine.EngineSpec` of ``--engine/--address/--workers/--num-gpus`` (None: local)."""
    from headshot_lab.engine import EngineSpec
    from headshot_lab.errors import HeadshotLabError

    if (getattr(args, "engine", "local") or "local") != "ray":
        for flag in ("address", "num_gpus"):
            if getattr(args, flag, None) is not None:
                raise HeadshotLabError(
                    f"--{flag.replace('_', '-')} needs --engine ray.", fix="Add --engine ray.", code="bad_option"
                )
        return None
    runtime_env = None
    if getattr(args, "ship_code", False):
        import eval as suite
        import headshot_lab

        runtime_env = {"py_modules": [os.path.dirname(headshot_lab.__file__), os.path.dirname(suite.__file__)]}
    return EngineSpec(
        kind="ray",
        workers=int(args.workers or max(1, config.num_proc)),
        address=args.address,
        num_gpus=float(args.num_gpus or 0.0),
        runtime_env=runtime_env,
    )


def merge_from_args(argv: Sequence[str]) -> int:
    from eval.merge import merge_runs

    parser = argparse.ArgumentParser(prog="python -m eval merge", description="Merge audit shards into one result.")
    parser.add_argument("shards", nargs="+", help="output folders of the shard runs")
    parser.add_argument("--output-path", "--output_path", dest="output_path", required=True)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    results = merge_runs(args.shards, args.output_path, progress=not args.quiet)
    print(f"merged {len(args.shards)} shards ({results['n_sources']} sources) into {args.output_path}")
    for run in results["runs"]:
        print(f"  {run['generator']:<22} n={run['n']:<5} flags: {', '.join(run['flags']) or 'none'}")
    return 0


def power_from_args(argv: Sequence[str]) -> int:
    import dataclasses
    import json
    from pathlib import Path

    from eval.power import resampling_power
    from eval.runner import EvalConfig, read_samples
    from headshot_lab.atomic import write_json_atomic, write_text_atomic
    from headshot_lab.audit.report import render_power
    from headshot_lab.errors import HeadshotLabError

    parser = argparse.ArgumentParser(
        prog="python -m eval power", description="Power and false-alarm rate of a finished run, with more seeds."
    )
    parser.add_argument("run", help="output folder of a `python -m eval` run (or a merge)")
    parser.add_argument("--seeds", type=int, default=200, help="resampling seeds (default 200)")
    parser.add_argument("--fraction", type=float, default=0.8, help="share of the people kept in each subsample")
    parser.add_argument("--n-resamples", dest="n_resamples", type=int, default=500, help="inner bootstrap resamples")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    folder = Path(args.run)
    if not (folder / "results.json").is_file() or not (folder / "samples.jsonl").is_file():
        raise HeadshotLabError(
            f"{folder}: not an audit output (results.json and samples.jsonl are needed).", code="bad_run"
        )
    saved = json.loads((folder / "results.json").read_text(encoding="utf-8"))["config"]
    known = {f.name for f in dataclasses.fields(EvalConfig)}
    config = EvalConfig(**{k: v for k, v in saved.items() if k in known})
    config.power = {"seeds": args.seeds, "fraction": args.fraction, "n_resamples": args.n_resamples}
    records, _, _ = read_samples(folder)
    power = resampling_power(records, config, progress=not args.quiet)
    write_json_atomic(folder / "power.json", power)
    write_text_atomic(folder / "power.md", "\n".join(render_power(power)))
    print("\n".join(render_power(power)))
    print(f"wrote {folder / 'power.json'} and power.md")
    return 0


def calibrate_from_args(argv: Sequence[str]) -> int:
    import dataclasses
    import json
    from pathlib import Path

    from eval.calibrate import DEFAULT_SIZES, calibrate, parse_sizes
    from eval.runner import EvalConfig, load_config
    from headshot_lab.errors import HeadshotLabError

    parser = argparse.ArgumentParser(
        prog="python -m eval calibrate",
        description="False-alarm rate of the nulls and power of the canaries by sample size, over disjoint "
        "(independent) sets of people; the audit runs once and its records are re-aggregated.",
    )
    parser.add_argument("--config", default=None, help="YAML config (a path or a name in eval/configs)")
    parser.add_argument("--output-path", "--output_path", dest="output_path", required=True)
    parser.add_argument(
        "--from", dest="run", default=None, help="reuse a finished run's samples.jsonl (its config unless --config)"
    )
    parser.add_argument("--seeds", type=int, default=None, help="random partitions per size (default 5)")
    parser.add_argument(
        "--sizes", default=None, help=f"people per trial, comma-separated (default {','.join(map(str, DEFAULT_SIZES))})"
    )
    parser.add_argument("--n-resamples", dest="n_resamples", type=int, default=None, help="inner bootstrap (500)")
    parser.add_argument("--no-detectability", dest="detectability", action="store_false", help="skip the C2ST")
    parser.add_argument("--with-synthetic", dest="real_only", action="store_false", help="keep synthetic tone variants")
    parser.add_argument("--generator", action="append", default=None, metavar="SPEC", help="replace the config's list")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    try:
        sizes = parse_sizes(args.sizes) if args.sizes else None
    except ValueError as exc:
        parser.error(str(exc))
    generators = None
    if args.generator:
        generators = [spec.strip() for item in args.generator for spec in item.split(",") if spec.strip()]
    if args.config is not None:
        config = load_config(args.config, generators=generators)
    elif args.run is not None:
        folder = Path(args.run)
        if not (folder / "results.json").is_file() or not (folder / "samples.jsonl").is_file():
            raise HeadshotLabError(
                f"{folder}: not an audit output (results.json and samples.jsonl are needed).", code="bad_run"
            )
        saved = json.loads((folder / "results.json").read_text(encoding="utf-8"))["config"]
        known = {f.name for f in dataclasses.fields(EvalConfig)}
        config = EvalConfig(**{k: v for k, v in saved.items() if k in known})
        if generators:
            config.generators = generators
    else:
        parser.error("give --config (run the audit) or --from RUN (reuse a finished one)")
    calibration = calibrate(
        config,
        args.output_path,
        run=args.run,
        sizes=sizes,
        partitions=args.seeds,
        n_resamples=args.n_resamples,
        with_detectability=args.detectability,
        real_only=args.real_only,
        progress=not args.quiet,
    )
    print((Path(args.output_path) / "calibration.md").read_text(encoding="utf-8"))
    print(f"wrote {args.output_path}/calibration.json and calibration.md ({len(calibration['generators'])} generators)")
    return 0


def dispatch(argv: list[str]) -> int:
    """Route ``merge`` / ``power`` / ``calibrate`` / ``generators`` to their parsers; anything else is a run."""
    if argv and argv[0] == "merge":
        return merge_from_args(argv[1:])
    if argv and argv[0] == "power":
        return power_from_args(argv[1:])
    if argv and argv[0] == "calibrate":
        return calibrate_from_args(argv[1:])
    if argv and argv[0] == "generators":
        from eval.generators import available_generators

        print("\n".join(available_generators()))
        return 0
    return run_from_args(build_run_parser().parse_args(argv))


def main(argv: Sequence[str] | None = None) -> int:
    from headshot_lab.cli import run_reporting_errors

    os.environ.setdefault("GLOG_minloglevel", "2")
    return run_reporting_errors(dispatch, list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
