"""benchmarks/gpu_generate.py: refuses to run without CUDA, and its --tiny mode runs the same code on CPU."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_generate.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("gpu_generate_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pytestmark = pytest.mark.usefixtures("torch_one_thread")


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


def test_tiny_dry_run_writes_the_report(bench, tmp_path):
    out = tmp_path / "report.json"
    argv = ["--tiny", "--families", "sd15", "--configs", "baseline,batch4,few_step", "--steps", "2", "--few-steps", "2"]
    argv += ["--repeats", "1", "--train-steps", "2", "--workdir", str(tmp_path / "w"), "--out", str(out)]
    assert bench.main(argv) == 0
    report = json.loads(out.read_text())
    assert report["mode"] == "tiny" and report["machine"]["device"] == "cpu"
    rows = {row["config"]: row for row in report["families"]["sd15"]["generation"]}
    assert set(rows) == {"baseline", "batch4", "few_step"}
    assert rows["baseline"]["ratio_vs_baseline"] == 1.0
    assert rows["batch4"]["batch_size"] == 4 and rows["few_step"]["steps"] == 2
    assert all(row["per_image_s"] > 0 for row in rows.values())
    training = report["families"]["sd15"]["training"]
    assert [t["gradient_checkpointing"] for t in training] == [True, False]
    assert all(t["step_s"] > 0 for t in training)


def test_unknown_config_is_refused(bench, tmp_path):
    assert bench.main(["--tiny", "--configs", "warp_speed", "--out", str(tmp_path / "r.json")]) == 2
