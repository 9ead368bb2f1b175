"""The CPU benchmarks run end to end in a tiny mode and write the documented JSON (no timing thresholds).

Each script runs once per module as a subprocess, as ``make bench`` runs it, into a temporary ``--out``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
MACHINE_KEYS = {"platform", "python", "cpu_count", "load_average_1m", "processor"}


def run_script(name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def load_result(folder: Path, name: str) -> dict:
    payload = json.loads((folder / f"{name}.json").read_text())
    assert payload["benchmark"] == name
    assert set(payload["machine"]) >= MACHINE_KEYS and payload["machine"]["cpu_count"] >= 1
    return payload


def assert_timing(timing: dict) -> None:
    assert set(timing) >= {"wall_s", "cpu_s"}
    assert timing["wall_s"] > 0 and timing["cpu_s"] > 0


@pytest.fixture(scope="module")
def cpu_check(real_photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("cpu_check")
    run_script("cpu_check.py", "--photos", "2", "--out", str(out), "--profile")
    return out, load_result(out, "cpu_check")


@pytest.fixture(scope="module")
def cpu_audit(real_photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("cpu_audit")
    run_script("cpu_audit.py", "--faces", "5", "--num-proc", "1", "--out", str(out))
    return load_result(out, "cpu_audit")


def test_cpu_check_times_check_embed_and_skin_against_the_naive_loop(cpu_check):
    _, result = cpu_check
    assert result["photos"] == 2 and result["megapixels"] == 12.0
    for key in ("check_embed_skin", "check_only", "naive_loop"):
        assert_timing(result[key])
    for key in ("speedup_vs_naive", "cpu_speedup_vs_naive", "skin_cost_ratio"):
        assert result[key] > 0
    assert result["goal_wall_s"] == 10.0 and isinstance(result["goal_met"], bool)
    # the measured path really embeds every face and measures every face's skin, as the naive loop does
    assert result["faces_found"] == [1, 1]
    assert result["embedded"] == result["skin_measured"] == result["naive_skin_measured"] == 2
    assert all(-90.0 <= ita <= 90.0 for ita in result["ita"])
    assert result["sanity"] is True


def test_cpu_check_profile_is_written(cpu_check):
    out, _ = cpu_check
    text = (out / "cpu_check.profile.txt").read_text()
    assert "check_photos" in text and "measure_skin" in text  # the profile covers the measured path
    assert (out / "cpu_check.profile.html").stat().st_size > 0


def test_cpu_audit_reports_faces_per_second_against_the_naive_loop(cpu_audit):
    result = cpu_audit
    assert result["faces"] == 5 and result["face_size"] == 512
    assert result["generators"] == ["null", "lighten:3"]
    run = result["runner"]["num_proc_1"]
    assert_timing(run)
    assert run["faces_per_s"] > 0 and run["images_per_s"] == pytest.approx(2 * run["faces_per_s"], rel=0.02)
    assert_timing(result["naive_loop"])
    assert result["speedup_vs_naive"] > 0 and result["cpu_speedup_vs_naive"] > 0
    assert result["best_faces_per_s"] == run["faces_per_s"]
    assert result["goal_faces_per_s"] == 10.0 and result["goal_met"] == (run["faces_per_s"] >= 10.0)
    # every crop shows a face the runner and the naive loop both find, and its skin is measured where it has colour
    assert result["faces_found"] == result["naive_faces_found"] == 5
    assert result["skin_measured"] == 4  # the fifth crop is of the grayscale tom_hanks photo: no skin tone
    # 5 faces > one batch of 4: the rate once the worker runs is measured too (from a separate run)
    assert run["marginal_faces_per_s"] is None or run["marginal_faces_per_s"] > 0
    assert result["same_results_across_num_proc"] is True and result["sanity"] is True


def test_audit_face_crops_are_distinct_512_faces(real_photos, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from cpu_audit import make_faces

    from headshot_lab.io import load_rgb

    files = make_faces(tmp_path, 12)
    images = [load_rgb(path, min_side=0) for path, _ in files]
    assert all(image.shape == (512, 512, 3) for image in images)
    assert len({image.tobytes() for image in images}) == 12  # crops, shifts and flips: no two alike
    assert len({person for _, person in files}) >= 6
    assert (tmp_path / "metadata.csv").read_text().splitlines()[0] == "file_name,identity"


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("cpu_check.py", ["--photos", "0"]),
        ("cpu_audit.py", ["--num-proc", "0"]),
        ("app_startup.py", ["--repeats", "0"]),
    ],
)
def test_bad_arguments_are_refused_with_a_message(script, args, tmp_path):
    result = run_script(script, *args, "--out", str(tmp_path), check=False)
    assert result.returncode == 2 and "at least 1" in result.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_app_startup_reports_cold_start_memory_and_first_call(real_photos, tmp_path):
    run_script("app_startup.py", "--repeats", "1", "--out", str(tmp_path))
    result = load_result(tmp_path, "app_startup")
    median = result["median"]
    steps = ("python_started_s", "import_app_s", "launched_s", "http_ready_s")
    assert all(median[key] > 0 for key in (*steps, "build_demo_s", "first_check_s", "warm_check_s"))
    assert median["python_started_s"] < median["import_app_s"] < median["launched_s"]  # order, not speed
    assert median["rss_started_mb"] > 50 and median["rss_after_check_mb"] > 50
    assert result["import_gradio_s"] > 0 and len(result["runs"]) == result["repeats"] == 1
    for key in ("import_app_vs_gradio", "http_ready_vs_gradio", "first_check_vs_warm"):
        assert result[key] > 0
    assert result["sanity"] is True  # the check through gradio_client found the one face
