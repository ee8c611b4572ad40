"""Dataset sources: manifest, class folders, Label Studio export, phantom truth; prepared arrays."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from valvereader.catalogue import VALVE_IDS
from valvereader.errors import DatasetError
from valvereader.preprocess import Preprocess
from valvereader.training.datasets import (
    label_indices,
    load_grey,
    prepare,
    prepare_all,
    read_class_folders,
    read_label_studio,
    read_manifest,
    read_phantom_truth,
    read_samples,
)


def _png(path, value: int = 128, size=(20, 16)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.full(size[::-1], value, dtype=np.uint8)
    array[4:8, 5:9] = 255
    Image.fromarray(array).save(path)


def test_manifest_reads_patient_ids_and_gives_missing_ones_a_group_per_image(tmp_path) -> None:
    _png(tmp_path / "a.png")
    _png(tmp_path / "b.png")
    (tmp_path / "m.csv").write_text("path,label,patient_id\na.png,integra_dp,P1\nb.png,integra_dp,\n")
    samples = read_manifest(tmp_path / "m.csv")
    assert samples[0].patient_id == "P1" and samples[0].has_patient_id
    assert not samples[1].has_patient_id and samples[1].patient_id != samples[0].patient_id


def test_manifest_without_label_column_raises_dataset_error(tmp_path) -> None:
    (tmp_path / "m.csv").write_text("path\na.png\n")
    with pytest.raises(DatasetError, match="label"):
        read_manifest(tmp_path / "m.csv")


def test_manifest_naming_a_missing_image_raises_dataset_error(tmp_path) -> None:
    (tmp_path / "m.csv").write_text("path,label\nnothere.png,integra_dp\n")
    with pytest.raises(DatasetError, match="not found"):
        read_manifest(tmp_path / "m.csv")


def test_class_folders_label_by_folder_name(tmp_path) -> None:
    _png(tmp_path / "integra_dp" / "x.png")
    _png(tmp_path / "codman_certas_plus" / "sub" / "y.png")
    samples = read_samples(tmp_path)
    assert sorted(s.label for s in samples) == ["codman_certas_plus", "integra_dp"]
    assert label_indices(samples, VALVE_IDS).tolist() == [VALVE_IDS.index(s.label) for s in samples]


def test_empty_folder_raises_dataset_error(tmp_path) -> None:
    with pytest.raises(DatasetError, match="no images"):
        read_class_folders(tmp_path)


def test_label_studio_export_gives_labels_boxes_and_patients(tmp_path) -> None:
    _png(tmp_path / "img1.png", size=(200, 100))
    _png(tmp_path / "img2.png")
    tasks = [
        {"data": {"image": "/data/upload/1/abcd1234-img1.png", "patient_id": "P9"},
         "annotations": [{"result": [{"type": "rectanglelabels", "original_width": 200, "original_height": 100,
                                      "value": {"x": 10, "y": 20, "width": 50, "height": 40,
                                                "rectanglelabels": ["miethke_progav_2"]}}]}]},
        {"data": {"image": "/data/local-files/?d=img2.png"},
         "annotations": [{"result": [{"type": "choices", "value": {"choices": ["integra_dp"]}}]}]},
        {"data": {"image": "img2.png"}, "annotations": [{"was_cancelled": True, "result": []}]},
    ]
    (tmp_path / "export.json").write_text(json.dumps(tasks))
    samples = read_label_studio(tmp_path / "export.json")
    assert [s.label for s in samples] == ["miethke_progav_2", "integra_dp"]
    assert samples[0].patient_id == "P9"
    assert samples[0].box is not None and samples[0].box.as_tuple() == (20, 20, 120, 60)
    assert samples[1].box is None


def test_phantom_truth_gives_square_boxes_around_valves(tmp_path) -> None:
    _png(tmp_path / "ph.png", size=(300, 300))
    (tmp_path / "truth.csv").write_text(
        "file,patient_id,kind,valve_id,setting,box_x0,box_y0,box_x1,box_y1\n"
        "ph.png,PH1,phantom,integra_dp,,100,100,140,120\n"
        "ph.png,PH1,phantom,,,,,,\n"
    )
    samples = read_samples(tmp_path / "truth.csv")
    assert len(samples) == 1
    box = samples[0].box
    assert box.width == box.height == 60 and box.center == (120.0, 110.0)
    assert read_phantom_truth(tmp_path / "truth.csv")[0].patient_id == "PH1"


def test_unknown_label_raises_dataset_error(tmp_path) -> None:
    _png(tmp_path / "not_a_valve" / "x.png")
    with pytest.raises(DatasetError, match="not_a_valve"):
        label_indices(read_class_folders(tmp_path), VALVE_IDS)


def test_sixteen_bit_images_scale_to_unit_range(tmp_path) -> None:
    array = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    Image.fromarray(array).save(tmp_path / "x.png")
    grey = load_grey(tmp_path / "x.png")
    assert grey.dtype == np.float32 and grey.max() == pytest.approx(1.0) and grey.min() == 0.0


def test_cached_training_arrays_equal_the_inference_transform(tmp_path) -> None:
    for i in range(3):
        _png(tmp_path / "integra_dp" / f"{i}.png", value=40 * i + 10, size=(30 + i, 24))
    samples = read_samples(tmp_path)
    preprocess = Preprocess(32)
    first = prepare_all(samples, preprocess, cache_dir=tmp_path / "cache")
    again = prepare_all(samples, preprocess, cache_dir=tmp_path / "cache")
    for i, s in enumerate(samples):
        reference = preprocess(np.asarray(Image.open(s.path), dtype=np.float32) / 255.0).pixels
        np.testing.assert_array_equal(first[i], reference)
        np.testing.assert_array_equal(again[i], reference)
        np.testing.assert_array_equal(prepare(s, preprocess), reference)


def test_two_processes_preparing_the_same_cache_at_once_both_succeed(tmp_path, monkeypatch) -> None:
    """Two torchrun ranks prepare the same samples together: each must finish with the same file.

    The second preparation runs while the first is about to rename its finished file, the
    moment two ranks sharing one temporary name collided (one renamed the other's file away).
    """
    import os

    for i in range(3):
        _png(tmp_path / "integra_dp" / f"{i}.png", value=40 * i + 10)
    samples = read_samples(tmp_path)
    preprocess = Preprocess(32)
    real_replace = os.replace
    inner: list[np.ndarray] = []
    calls: list[str] = []

    def replace_after_another_rank(source, target):
        calls.append(str(source))
        if len(calls) == 1:  # the other rank writes and renames its file in between
            inner.append(np.asarray(prepare_all(samples, preprocess, cache_dir=tmp_path / "cache")))
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace_after_another_rank)
    outer = prepare_all(samples, preprocess, cache_dir=tmp_path / "cache")
    monkeypatch.setattr(os, "replace", real_replace)
    np.testing.assert_array_equal(outer, inner[0])
    assert len(calls) == 2 and calls[0] != calls[1]  # each rank wrote a file of its own
    cached = list((tmp_path / "cache").iterdir())
    assert [p.suffix for p in cached] == [".npy"] and ".partial" not in cached[0].name  # no leftovers
    np.testing.assert_array_equal(np.load(cached[0]), outer)


def test_training_input_equals_the_program_loader_on_real_crops(crops_dir) -> None:
    io = pytest.importorskip("valvereader.io")
    samples = read_samples(crops_dir)[::400]
    preprocess = Preprocess(64)
    prepared = prepare_all(samples, preprocess)
    for i, s in enumerate(samples):
        radiograph = io.load(s.path)
        np.testing.assert_allclose(preprocess(radiograph.pixels).pixels, prepared[i], atol=1e-6)
