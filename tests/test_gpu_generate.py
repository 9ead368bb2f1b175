"""benchmarks/gpu_generate.py: refuses to run without CUDA, and its --tiny mode runs every section on CPU.

No timing is asserted: the checks are on the report's structure, counts, goals and ratios.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import math
import shutil
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPT = BENCHMARKS / "gpu_generate.py"
TINY = ["--tiny", "--steps", "2", "--few-steps", "1", "--repeats", "1"]
BATCH_IMAGES = 3
TRAIN = ["--train-steps", "2", "--train-class-images", "2", "--train-photos", "3"]

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def bench():
    """The script as a module (its helper modules are imported from benchmarks/, as when it runs)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCHMARKS))
        spec = importlib.util.spec_from_file_location("gpu_generate_benchmark", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        goals = importlib.import_module("_gpu_goals")
    module.goals_module = goals
    return module


@pytest.fixture(scope="module")
def photo_dir(real_photos, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("person")
    for name in ("obama", "obama2", "obama3"):
        shutil.copy(real_photos[name], folder / real_photos[name].name)
    return folder


def _workdir(root: Path, tiny_bases: dict[str, Path]) -> Path:
    """A work folder holding the session's tiny bases (the benchmark reuses a base it finds there)."""
    workdir = root / "w"
    workdir.mkdir()
    for family, folder in tiny_bases.items():
        (workdir / family).symlink_to(folder, target_is_directory=True)
    return workdir


@pytest.fixture(scope="module")
def sd15_report(bench, photo_dir, tiny_bases, tmp_path_factory, torch_one_thread) -> dict:
    """One dry run of every section on the tiny SD1.5 model."""
    root = tmp_path_factory.mktemp("sd15-dry-run")
    argv = [*TINY, "--families", "sd15", "--configs", "baseline,bf16,few_step_bf16", *TRAIN]
    argv += ["--batch-images", str(BATCH_IMAGES), "--batch-size", "2", "--photos", str(photo_dir)]
    argv += ["--workdir", str(_workdir(root, tiny_bases)), "--out", str(root / "report.json")]
    assert bench.main(argv) == 0
    return json.loads((root / "report.json").read_text())


def _numbers(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)
    elif isinstance(value, float):
        yield value


def test_without_cuda_it_says_so_and_fails(bench, monkeypatch, capsys, tmp_path):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.main(["--out", str(tmp_path / "r.json")]) == 1
    assert "no CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_full_size_configs_match_the_published_architectures(bench):
    sdxl, sd15 = bench.FULL_SDXL, bench.FULL_SD15
    te1, te2 = sdxl["text_encoder"], sdxl["text_encoder_2"]
    assert sdxl["unet"]["cross_attention_dim"] == te1["hidden_size"] + te2["hidden_size"] == 2048
    time_dim = sdxl["unet"]["addition_time_embed_dim"]
    assert sdxl["unet"]["projection_class_embeddings_input_dim"] == 6 * time_dim + te2["projection_dim"] == 2816
    assert sd15["unet"]["cross_attention_dim"] == sd15["text_encoder"]["hidden_size"] == 768
    assert sd15["unet"]["sample_size"] * 8 == 512 and sdxl["unet"]["sample_size"] * 8 == 1024


def test_report_header_and_every_number_finite(sd15_report):
    assert sd15_report["benchmark"] == "gpu_generate" and sd15_report["mode"] == "tiny"
    assert sd15_report["device"]["device"] == "cpu" and sd15_report["device"]["torch"]
    assert sd15_report["machine"]["cpu_count"] >= 1  # from benchmarks/_common.write_result
    assert sd15_report["sections"] == ["generate", "offload", "batch", "train"]
    assert sd15_report["photos"]["distinct"] == 3
    assert all(math.isfinite(x) for x in _numbers(sd15_report))


def test_generation_rows_have_ratios_against_the_same_run_baseline(sd15_report):
    rows = {row["config"]: row for row in sd15_report["families"]["sd15"]["generation"]}
    assert list(rows) == ["baseline", "bf16", "few_step_bf16"]
    assert all(row["status"] == "ok" and row["per_image_s"] > 0 for row in rows.values())
    assert rows["baseline"]["per_image_s_ratio"] == 1.0
    assert rows["bf16"]["per_image_s_ratio"] > 0
    assert rows["few_step_bf16"]["per_image_s_ratio"] > 0  # the few-step speed-up (1 step vs 2 here)
    assert rows["few_step_bf16"]["steps"] == 1 and rows["few_step_bf16"]["guidance_scale"] == 1.0
    assert rows["bf16"]["precision_requested"] == "bf16" and rows["bf16"]["dtype"] == "float32"  # CPU: fp32
    assert rows["baseline"]["width"] == rows["baseline"]["height"] == 64  # the tiny base's native square


def test_offload_rows_record_peak_memory_fields(sd15_report):
    rows = {row["config"]: row for row in sd15_report["families"]["sd15"]["offload"]}
    assert list(rows) == ["no_offload", "offload_model", "offload_sequential"]
    assert all(row["status"] == "ok" for row in rows.values())
    assert all(row["peak_vram_gib"] is None and row["peak_vram_reserved_gib"] is None for row in rows.values())
    assert rows["offload_model"]["speed"]["cpu_offload"] == "model"
    assert any("needs a CUDA GPU" in note for note in rows["offload_sequential"]["notes"])  # ignored on the CPU
    assert rows["offload_sequential"]["steps"] == 2 and rows["offload_model"]["per_image_s_ratio"] > 0  # min(2, 4)


def test_batch_times_every_stage_and_counts_the_outcome(sd15_report):
    batch = sd15_report["families"]["sd15"]["batch"]
    assert batch["status"] == "ok", batch.get("error")
    assert batch["images_generated"] == batch["candidates"] == BATCH_IMAGES
    assert batch["kept"] + batch["rejected"] == BATCH_IMAGES
    assert sum(batch["reject_reasons"].values()) >= batch["rejected"]
    assert batch["control_kind"] == "face" and batch["identity_lora_rank"] == 16  # the product's default rank
    stages = batch["timings"]
    assert all(stages[f"{name}_s"] > 0 for name in ("load", "generate", "profile", "filter_rank"))
    assert batch["total_s"] == pytest.approx(
        sum(stages[f"{n}_s"] for n in ("load", "generate", "profile", "filter_rank")), abs=0.01
    )
    assert batch["calibration"]["images"] == batch["calibration"]["with_a_face"] == 3  # real faces: every check runs
    assert batch["total_est_s"] >= batch["total_s"] - 0.01
    assert batch["generate_per_image_ratio_vs_baseline"] > 0
    assert isinstance(batch["total_est_s_goal_met"], bool) and batch["total_est_s_goal"] == 90.0


def test_training_is_extrapolated_to_the_product_defaults(sd15_report):
    from headshot_lab.ui.actions import AppBackend

    app_steps = inspect.signature(AppBackend.train_identity).parameters["steps"].default
    training = sd15_report["families"]["sd15"]["training"]
    run = training["run"]
    assert run["status"] == "ok", run.get("error")
    assert run["steps"] == 2 and run["class_images"] == 2 and run["config"]["prior_preservation"] is True
    assert run["config"]["gradient_checkpointing"] is True and run["step_s"] > 0
    assert training["photos"]["count"] == 3 and training["product_defaults"]["steps"] == app_steps
    assert training["full_run_source"] == "extrapolated" and training["full_run_steps"] == app_steps
    expected = (
        run["class_images_s"]
        + run["class_image_s"] * (training["full_run_class_images"] - 2)
        + run["setup_and_first_step_s"]
        + run["step_s"] * (app_steps - 1)
        + run["export_s"]
    )
    assert training["full_run_s"] == pytest.approx(expected, rel=0.01, abs=0.05)
    assert training["steps_per_s"] == pytest.approx(1 / run["step_s"], rel=0.01)
    assert training["full_run_s_at_cli_default_steps"] > training["full_run_s"]
    off = training["checkpointing_off"]
    assert off["status"] == "ok" and off["config"]["gradient_checkpointing"] is False and off["steps"] == 3
    assert training["step_s_ratio_checkpointing_off"] > 0


def test_goals_block_names_every_goal(bench, sd15_report):
    block = sd15_report["goals"]
    assert block["comparable"] is False  # tiny models on the CPU
    rows = {row["goal"]: row for row in block["goals"]}
    assert set(rows) == {goal.name for goal in bench.goals_module.GOALS}
    assert all({"limit", "unit", "measured", "goal_met", "status"} <= set(row) for row in rows.values())
    for name in ("sd15_batch_40_end_to_end", "sd15_lora_training"):
        assert isinstance(rows[name]["goal_met"], bool) and rows[name]["measured"] > 0
    for name in ("sdxl_30_steps_bf16", "sdxl_lora_training", "sdxl_offload_peak_vram"):
        assert rows[name]["goal_met"] is None and rows[name]["status"] == "not measured"  # family not run
        assert rows[name]["reason"].startswith("sdxl ")
    assert block["measured"] == 2


def test_goal_evaluation_judges_and_annotates(bench):
    families = {
        "sdxl": {
            "generation": [
                {"config": "bf16", "status": "ok", "per_image_s": 1.2},
                {"config": "few_step_bf16", "status": "ok", "per_image_s": 0.4},
            ],
            "offload": [{"config": "offload_model", "status": "error", "error": {"code": "out_of_memory"}}],
        }
    }
    block = bench.goals_module.evaluate(families, comparable=True)
    rows = {row["goal"]: row for row in block["goals"]}
    assert rows["sdxl_30_steps_bf16"]["goal_met"] is True and rows["sdxl_4_steps_bf16"]["goal_met"] is False
    assert rows["sdxl_offload_peak_vram"]["goal_met"] is None  # the configuration failed…
    assert "out_of_memory" in rows["sdxl_offload_peak_vram"]["reason"]  # … and the goal says so
    assert rows["sdxl_batch_40_end_to_end"]["reason"] == "sdxl batch not run"
    assert families["sdxl"]["generation"][1]["per_image_s_goal_met"] is False
    assert block["all_measured_met"] is False and block["measured"] == 2 and block["met"] == 1


def test_out_of_memory_is_a_result_not_a_crash(bench, tiny_bases, monkeypatch, tmp_path):
    import torch

    from headshot_lab.generate import HeadshotGenerator

    real_render = HeadshotGenerator.render

    def render(self, prompt, negative_prompt, seeds, **kwargs):
        if len(seeds) == 4:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real_render(self, prompt, negative_prompt, seeds, **kwargs)

    monkeypatch.setattr(HeadshotGenerator, "render", render)
    out = tmp_path / "oom.json"
    argv = [*TINY, "--only", "generate", "--families", "sd15", "--configs", "batch4,few_step"]
    assert bench.main([*argv, "--workdir", str(_workdir(tmp_path, tiny_bases)), "--out", str(out)]) == 0
    rows = {row["config"]: row for row in json.loads(out.read_text())["families"]["sd15"]["generation"]}
    assert rows["batch4"]["status"] == "error" and rows["batch4"]["error"]["code"] == "out_of_memory"
    assert rows["batch4"]["error"]["message"].startswith("Ran out of GPU memory") and rows["batch4"]["error"]["fix"]
    assert rows["batch4"]["per_image_s_ratio"] is None
    assert rows["baseline"]["status"] == rows["few_step"]["status"] == "ok"  # the run went on


@pytest.mark.parametrize("bad", [["--configs", "warp_speed"], ["--only", "everything"], ["--families", "sd3"]])
def test_unknown_names_are_refused(bench, tmp_path, capsys, bad):
    assert bench.main(["--tiny", *bad, "--out", str(tmp_path / "r.json")]) == 2
    assert "unknown" in capsys.readouterr().err and not (tmp_path / "r.json").exists()


def test_full_size_controlnet_is_built_like_the_published_ones(bench, tiny_bases, tmp_path):
    """``from_unet`` with the published 4-level conditioning embedding (run here on the tiny SDXL UNet)."""
    import torch

    models = importlib.import_module("_gpu_models")
    folder = models.build_controlnet(tiny_bases["sdxl"], tmp_path / "cn", torch.device("cpu"), tiny=False)
    config = json.loads((folder / "config.json").read_text())
    unet = json.loads((tiny_bases["sdxl"] / "unet" / "config.json").read_text())
    assert config["_class_name"] == "ControlNetModel"
    assert config["conditioning_embedding_out_channels"] == [16, 32, 96, 256]
    for key in ("block_out_channels", "cross_attention_dim", "addition_embed_type", "transformer_layers_per_block"):
        assert config[key] == unet[key]
    assert models.build_controlnet(tiny_bases["sdxl"], tmp_path / "cn", torch.device("cpu"), tiny=False) == folder


def test_report_names(bench, tmp_path):
    assert bench._output(str(tmp_path / "x.json"), tiny=False) == (tmp_path, "x")
    assert bench._output(str(tmp_path), tiny=True) == (tmp_path, "gpu_generate_tiny")
    assert bench._output(None, tiny=False)[1] == "gpu_generate"  # a dry run never overwrites a GPU result


@pytest.mark.slow
def test_tiny_sdxl_dry_run_of_every_section(bench, photo_dir, tiny_bases, tmp_path):
    """The SDXL paths (two text encoders, SDXL ControlNet and LoRA training): adds ~30 s on 2 shared cores."""
    out = tmp_path / "sdxl.json"
    argv = [*TINY, "--families", "sdxl", "--configs", "bf16,few_step_bf16", *TRAIN, "--batch-images", "2"]
    argv += ["--photos", str(photo_dir), "--workdir", str(_workdir(tmp_path, tiny_bases)), "--out", str(out)]
    assert bench.main(argv) == 0
    report = json.loads(out.read_text())
    family = report["families"]["sdxl"]
    assert all(row["status"] == "ok" for row in family["generation"] + family["offload"])
    assert family["batch"]["status"] == "ok" and family["batch"]["images_generated"] == 2
    assert family["training"]["run"]["status"] == "ok" and family["training"]["full_run_source"] == "extrapolated"
    rows = {row["goal"]: row for row in report["goals"]["goals"]}
    for name in ("sdxl_30_steps_bf16", "sdxl_4_steps_bf16", "sdxl_batch_40_end_to_end", "sdxl_lora_training"):
        assert isinstance(rows[name]["goal_met"], bool), name
    assert rows["sdxl_offload_peak_vram"]["goal_met"] is None  # no GPU memory on the CPU


def test_the_issue14_preset_runs_every_section_in_tiny_mode(bench, photo_dir, tiny_bases, tmp_path):
    """The prepared GPU command (``--preset issue14``) as a CPU dry run, shortened by later arguments."""
    out = tmp_path / "issue14.json"
    argv = ["--preset", "issue14", *TINY, "--families", "sd15", "--batch-images", "2", "--batch-size", "2", *TRAIN]
    argv += ["--photos", str(photo_dir), "--workdir", str(_workdir(tmp_path, tiny_bases)), "--out", str(out)]
    assert bench.main(argv) == 0
    report = json.loads(out.read_text())
    assert report["settings"]["preset"] == "issue14" and report["settings"]["deadline_s"] == 540
    family = report["families"]["sd15"]
    assert [r["config"] for r in family["generation"]] == ["baseline", "bf16", "few_step_bf16"]
    assert [r["config"] for r in family["offload"]] == ["no_offload", "offload_model"]
    assert family["batch"]["status"] == "ok" and family["batch"]["control_kind"] == "canny"
    training = family["training"]
    assert training["run"]["status"] == "ok" and "checkpointing_off" not in training
    assert training["run"]["peak_includes_class_image_phase"] is True  # class images drawn inside the call
    assert training["run"]["class_images_s"] > 0 and training["full_run_steps"] == 800
    estimate = training["vram_estimate"]
    assert estimate["status"] == "ok" and estimate["architecture"] == "published sd15"
    assert 2 < estimate["total_gib"] < 12  # SD1.5 LoRA training: weights ~2 GiB + activations
    rows = {row["goal"]: row for row in report["goals"]["goals"]}
    assert rows["sdxl_training_peak_vram"]["limit"] == 14.9 and report["wall_s"] > 0


def test_a_spent_time_budget_skips_sections_not_the_report(bench, photo_dir, tiny_bases, tmp_path):
    out = tmp_path / "late.json"
    argv = [*TINY, "--families", "sd15", "--deadline-s", "0", "--photos", str(photo_dir)]
    assert bench.main([*argv, "--workdir", str(_workdir(tmp_path, tiny_bases)), "--out", str(out)]) == 0
    family = json.loads(out.read_text())["families"]["sd15"]
    assert family["generation"][0]["status"] == family["training"]["status"] == "skipped"
    assert "time budget" in family["batch"]["reason"]
