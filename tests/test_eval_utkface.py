"""UTKFace (``nlphuji/utk_faces``, a script dataset) read from its files, with a local fake of the repo layout."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from eval.datasets import UTK_ARCHIVE, UTK_METADATA, DatasetUnavailableError, UTKFaceDataset, open_dataset

NAMES = ["25_0_1_20170116174525125", "61_1_0_20170109142408075", "8_1_2_20161219203650636"]


@pytest.fixture()
def fake_hub(tmp_path, monkeypatch):
    """``hf_hub_download`` answering from a folder laid out like the Hub repo (CSV + zip of .chip.jpg)."""
    import huggingface_hub
    from PIL import Image

    repo = tmp_path / "hub"
    repo.mkdir()
    with (repo / UTK_METADATA).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["image_name", "age", "gender", "race"])
        writer.writeheader()
        for name in NAMES:
            age, gender, race, _ = name.split("_")
            writer.writerow({"image_name": name, "age": age, "gender": gender, "race": race})
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(repo / UTK_ARCHIVE, "w") as zipped:
        for name in NAMES:
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(buffer, format="JPEG")
            zipped.writestr(f"utk_faces_images/{name}.chip.jpg", buffer.getvalue())
        zipped.writestr("../escape.jpg", b"never written")
    calls: list[dict] = []

    def download(repo_id, filename, **kwargs):
        calls.append({"repo_id": repo_id, "filename": filename, **kwargs})
        if kwargs.get("local_files_only") and not (repo / ".cached").exists():
            raise FileNotFoundError(filename)
        return str(repo / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    return repo, calls


def test_utkface_is_read_from_its_files_with_labels(fake_hub, tmp_path):
    repo, calls = fake_hub
    dataset = open_dataset("nlphuji/utk_faces", {"label_columns": ["race", "gender", "age"], "split": "test"})
    assert isinstance(dataset, UTKFaceDataset)
    assert {c["filename"] for c in calls} == {UTK_METADATA, UTK_ARCHIVE}
    assert all(c["repo_type"] == "dataset" for c in calls)
    samples = list(dataset)
    assert [s.id for s in samples] == sorted(f"{n}.chip.jpg" for n in NAMES)
    assert all(s.image is not None and s.image.shape == (48, 48, 3) for s in samples)
    by_id = {s.id: s for s in samples}
    assert by_id[f"{NAMES[1]}.chip.jpg"].labels == {"age": "61", "gender": "1", "race": "0"}
    assert len({s.person for s in samples}) == 3  # UTKFace names no person: each photo its own
    assert not (repo.parent / "escape.jpg").exists() and not any(Path(dataset.root).rglob("escape.jpg"))


def test_the_old_parquet_revision_and_a_missing_column_are_handled(fake_hub):
    dataset = open_dataset("hf:nlphuji/utk_faces", {"revision": "refs/convert/parquet", "label_columns": ["ethnicity"]})
    assert isinstance(dataset, UTKFaceDataset)
    assert any("ethnicity" in note for note in dataset.notes)


def test_offline_and_not_cached_is_a_clear_error(fake_hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DatasetUnavailableError, match="HF_HUB_OFFLINE"):
        open_dataset("nlphuji/utk_faces")
    repo, _ = fake_hub
    (repo / ".cached").touch()  # in the cache: offline works
    assert len(list(open_dataset("nlphuji/utk_faces"))) == 3


def test_the_audit_config_opens_it(fake_hub):
    import yaml

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "eval/configs/utkface.yaml").read_text())
    dataset = open_dataset(config["dataset"], config["dataset_options"])
    assert isinstance(dataset, UTKFaceDataset) and not getattr(dataset, "notes", ())
