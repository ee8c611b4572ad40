"""Learning from a reader's corrections, end to end on tiny images: a batch reviewed as the window
records it → `valvereader export-reviews` → `valvereader train --extra-crops` (the crops in the
training split only) → evaluate → ship → the new weights load the way the window loads them and
read the batch."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from valvereader.catalogue import VALVE_IDS
from valvereader.geometry import Box
from valvereader.prediction import Prediction, Verdict
from valvereader.review import ResultCache, ReviewStore

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_train_evaluate_ship import write_tiny_crops

FILM = (96, 120)  # rows, columns
BOX = Box(40, 30, 80, 66)


def _film(path: Path, valve_index: int, seed: int) -> Path:
    """A film with a valve-like block whose bright bar stands at the class's height, as in the public crops."""
    rng = np.random.default_rng(seed)
    pixels = (rng.random(FILM) * 60).astype(np.uint8)
    y = BOX.y0 + valve_index * 3
    pixels[y:y + 8, BOX.x0 + 12:BOX.x1 - 12] = 250
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def _reviewed_batch(folder: Path) -> dict[str, str]:
    """Six films read by a model (results kept as the window keeps them) and reviewed: three
    accepted, two corrected (one in a region the reader drew), one rejected. Returns the label
    each exported film should carry, by file name."""
    folder.mkdir()
    cache, store = ResultCache(folder), ReviewStore(folder)
    expected = {}
    for k in range(6):
        truth = VALVE_IDS[k % len(VALVE_IDS)]
        said = truth if k < 3 else VALVE_IDS[(k + 1) % len(VALVE_IDS)]  # the model was wrong on 3..5
        path = _film(folder / f"study{k}.png", VALVE_IDS.index(truth), seed=k)
        probabilities = np.full(len(VALVE_IDS), 0.05, dtype=np.float32)
        probabilities[VALVE_IDS.index(said)] = 0.65
        prediction = Prediction(tuple(VALVE_IDS), probabilities, Verdict.REVIEW, box=BOX, model="before 1.0")
        cache.put(path, prediction)
        if k < 3:
            store.record(path, "accepted", predicted=said, confidence=0.65)
            expected[path.name] = truth
        elif k < 5:
            if k == 4:
                store.set_region(path, Box(BOX.x0 - 4, BOX.y0 - 4, BOX.x1 + 4, BOX.y1 + 4))
            store.record(path, "corrected", corrected_valve_id=truth, predicted=said, confidence=0.65)
            expected[path.name] = truth
        else:
            store.record(path, "rejected", predicted=said, confidence=0.65)
    return expected


def test_reviewed_studies_train_a_model_that_the_window_loads(qtbot, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    from valvereader.cli import main as valvereader
    from valvereader.gui.models.analysis import load_model
    from valvereader.training import cli_evaluate, cli_train
    from valvereader.training.datasets import label_indices, read_samples
    from valvereader.training.ship import ship_identifier
    from valvereader.training.splits import holdout_split

    torch.set_num_threads(1)
    batch = tmp_path / "batch"
    expected = _reviewed_batch(batch)
    exported = tmp_path / "reviewed"
    assert valvereader(["export-reviews", str(batch), "--out", str(exported)]) == 0
    assert "written 5 crop(s)" in capsys.readouterr().out
    with (exported / "manifest.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["label"] for r in rows) == sorted(expected.values())

    public = tmp_path / "public"
    write_tiny_crops(public, per_class=5, shape=(40, 36), seed=0)
    run = tmp_path / "runs" / "with-reviews"
    assert cli_train.main(["--data", str(public), "--extra-crops", str(exported), "--out", str(run), "--input-size", "32",
                           "--epochs", "1", "--batch-size", "8", "--accumulate-to", "8", "--test-fraction", "0.2",
                           "--validation-fraction", "0.2", "--no-progress"]) == 0
    # The reviewed crops are in the training split only; validation and test are exactly those of
    # the public crops alone, so the test stays comparable with a run without them.
    split = json.loads((run / "split.json").read_text())
    paths = split["paths"]
    extra = {i for i, p in enumerate(paths) if Path(p).is_relative_to(exported)}
    assert len(extra) == 5 and extra <= set(split["split"]["train"])
    base = read_samples(public)
    alone = holdout_split(label_indices(base, VALVE_IDS), [s.patient_id for s in base], 0.2, 0.2, seed=0)
    assert split["split"]["test"] == alone.test.tolist() and split["split"]["validation"] == alone.validation.tolist()
    assert sorted(split["split"]["train"]) == sorted([*alone.train.tolist(), *extra])
    assert [paths[i] for i in alone.test] == [str(base[i].path) for i in alone.test]
    card = json.loads((run / "model.json").read_text())
    assert card["extra_crops"] == [{"folder": str(exported), "images": 5, "part": "train only"}]

    evaluation = tmp_path / "evaluation"
    assert cli_evaluate.main(["--run", str(run), "--out", str(evaluation), "--cam-examples", "0"]) == 0
    weights = tmp_path / "weights"
    shipped = json.loads(ship_identifier(run, evaluation, weights, version="1.0.1").read_text())
    assert shipped["training"]["extra_crops"] == card["extra_crops"]
    assert "in the training split only, 5 crops from reviewed" in shipped["training"]["data"]

    # The window with the new weights (loaded as it loads them): it reads the reviewed batch with
    # them and shows the reader's decisions again.
    from valvereader.gui.main_window import MainWindow
    from valvereader.gui.models.state import ReviewDecision
    from valvereader.settings import Settings

    status = load_model(weights, "cpu")
    assert status.predictor is not None and "1.0.1" in status.predictor.model_name, status.message
    window = MainWindow(settings=Settings.load(), model_loader=lambda: status)
    qtbot.addWidget(window)
    window.show()
    window.open_paths([batch])
    qtbot.waitUntil(lambda: len(window.worklist.studies) == 6 and all(s.analysed for s in window.worklist.studies),
                    timeout=30000)
    studies = window.worklist.studies
    assert {s.prediction.model for s in studies} == {status.predictor.model_name}
    decisions = {s.path.name: s.decision for s in studies}
    assert decisions["study0.png"] is ReviewDecision.ACCEPTED and decisions["study5.png"] is ReviewDecision.REJECTED
    assert {s.path.name: s.corrected_valve_id for s in studies if s.decision is ReviewDecision.CORRECTED} == {
        name: expected[name] for name in ("study3.png", "study4.png")}

def test_a_recipe_puts_the_extra_crops_in_its_training_part_only(tmp_path: Path) -> None:
    from valvereader.review_export import export_reviews
    from valvereader.training.recipe import _crops, _extra_rows, load_recipe, smoke

    batch = tmp_path / "batch"
    expected = _reviewed_batch(batch)
    exported = tmp_path / "reviewed"
    export_reviews(batch, exported)
    public = tmp_path / "public"
    write_tiny_crops(public, per_class=5, shape=(40, 36), seed=0)
    recipe = smoke(load_recipe("identifier-2.2.0"))
    out = tmp_path / "run"
    _, split_doc = _crops(recipe, public, out, None)
    before = json.loads(json.dumps(split_doc))
    extra = _extra_rows([exported], recipe, out, split_doc)
    assert len(extra) == len(expected) and {r["split"] for r in extra} == {"train"}
    assert all(Path(r["file"]).is_file() and Path(r["file"]).is_relative_to(out / "crops") for r in extra)
    assert split_doc["split"]["test"] == before["split"]["test"]
    assert split_doc["split"]["validation"] == before["split"]["validation"]
    added = split_doc["split"]["train"][len(before["split"]["train"]):]
    assert [split_doc["paths"][i] for i in added] == [r["file"] for r in extra]
    assert [split_doc["labels"][i] for i in added] == [r["label"] for r in extra]
    assert split_doc["extra_sources"] == [{"folder": str(exported), "images": len(expected), "part": "train only"}]
    # A folder without a manifest is refused by name, before anything is trained.
    from valvereader.errors import DatasetError

    with pytest.raises(DatasetError, match="no manifest.csv"):
        _extra_rows([tmp_path / "batch"], recipe, out, split_doc)
