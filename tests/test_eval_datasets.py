"""Audit datasets: imagefolder, the offline set, sharding, and the offline Hub error (eval.datasets)."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest

from eval.datasets import (
    DatasetUnavailableError,
    ImageFolderDataset,
    OfflineDataset,
    open_dataset,
    parse_shard,
    shard_of,
)
from headshot_lab.errors import HeadshotLabError


@pytest.fixture()
def folder(tmp_path):
    """Six small images of three people (+ one broken file) with a metadata.csv."""
    from headshot_lab.io import save_image

    root = tmp_path / "faces"
    rows = []
    rng = np.random.default_rng(0)
    for person in ("ann", "bob", "cy"):
        for k in range(2):
            name = f"{person}/{person}{k}.png"
            save_image(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8), root / name)
            rows.append({"file_name": name, "identity": person, "group": "A" if person != "cy" else "B", "age": "30"})
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "notes.txt").write_text("ignored: not an image suffix")
    with (root / "metadata.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file_name", "identity", "group", "age"])
        writer.writeheader()
        writer.writerows(rows)
    return root


def test_imagefolder_reads_labels_and_counts_broken_files(folder):
    samples = list(open_dataset(f"imagefolder:{folder}"))
    assert [s.id for s in samples] == [
        "ann/ann0.png",
        "ann/ann1.png",
        "bob/bob0.png",
        "bob/bob1.png",
        "broken.jpg",
        "cy/cy0.png",
        "cy/cy1.png",
    ]
    ann = samples[0]
    assert ann.identity == "ann" and ann.labels == {"group": "A", "age": "30"}
    assert ann.image is not None and ann.image.shape == (40, 40, 3)
    broken = next(s for s in samples if s.id == "broken.jpg")
    assert broken.image is None and broken.error["code"] in {"truncated_image", "unsupported_format", "not_an_image"}
    assert broken.person == "id:broken.jpg"  # unknown people are each their own person


def test_imagefolder_without_metadata_and_missing_folder(tmp_path):
    from headshot_lab.io import save_image

    save_image(np.zeros((20, 20, 3), np.uint8), tmp_path / "a.png")
    (sample,) = list(ImageFolderDataset(tmp_path))
    assert sample.identity is None and sample.labels == {}
    with pytest.raises(DatasetUnavailableError, match="no such folder"):
        open_dataset(f"imagefolder:{tmp_path / 'nope'}")


def test_shards_partition_the_data_and_keep_people_together(folder):
    dataset = open_dataset(f"imagefolder:{folder}")
    everything = [s.id for s in dataset.iterate()]
    shards = [[s for s in dataset.iterate(shard=(i, 3))] for i in range(3)]
    ids = [s.id for shard in shards for s in shard]
    assert sorted(ids) == sorted(everything) and len(ids) == len(set(ids))
    for shard in shards:
        for person in {s.identity for s in shard if s.identity}:
            assert sum(1 for s in everything if s.startswith(person + "/")) == sum(
                1 for s in shard if s.identity == person
            )
    assert len(list(dataset.iterate(limit=2))) == 2
    assert shard_of("ann", 3) == shard_of("ann", 3)


def test_parse_shard():
    assert parse_shard("1/4") == (1, 4)
    assert parse_shard(None) is None
    for bad in ("4/4", "x/2", "1", "-1/2"):
        with pytest.raises(HeadshotLabError):
            parse_shard(bad)


def test_unknown_spec_is_a_clear_error():
    with pytest.raises(DatasetUnavailableError, match="imagefolder:PATH"):
        open_dataset("not-a-dataset")


def test_hub_dataset_offline_gives_one_message_naming_the_offline_alternatives(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DatasetUnavailableError) as info:
        open_dataset("HuggingFaceM4/FairFace", {"name": "1.25", "split": "validation", "label_columns": ["race"]})
    error = info.value
    assert "HuggingFaceM4/FairFace" in error.message and "HF_HUB_OFFLINE" in error.message
    assert "imagefolder:PATH" in error.fix and "offline.yaml" in error.fix
    assert error.code == "dataset_unavailable"
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_offline_set_frames_faces_and_adds_synthetic_variants(real_photos):
    from headshot_lab.faces.mesh import face_mesh
    from headshot_lab.skin import measure_skin, skin_mask

    dataset = OfflineDataset(faces=["astronaut", "tom_hanks"], variants_per_face=2)
    samples = dataset.build()
    real = [s for s in samples if not s.meta.get("synthetic")]
    synthetic = [s for s in samples if s.meta.get("synthetic")]
    assert [s.id for s in real] == ["tom_hanks.png", "astronaut.png"]
    assert len(synthetic) == 2  # tom_hanks is black-and-white: no tone variants
    assert all(s.labels["source"] == "synthetic" and s.identity == "astronaut" for s in synthetic)
    assert all(max(s.image.shape[:2]) <= 384 for s in samples)
    base = real[1]
    assert base.face_hint and len(base.face_hint["landmarks"]) == 68
    base_ita = measure_skin(base.image, skin_mask(base.image, face_mesh(base.image)[0])).ita
    for variant in synthetic:
        mesh = face_mesh(variant.image)[0]
        measured = measure_skin(variant.image, skin_mask(variant.image, mesh)).ita
        assert measured - base_ita == pytest.approx(variant.meta["tone_offset"], abs=3.0)
        assert variant.face_hint == base.face_hint
    with pytest.raises(HeadshotLabError):
        OfflineDataset(variants_per_face=6)
