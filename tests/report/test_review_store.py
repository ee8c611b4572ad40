"""valvereader.review: decisions survive reopening, crashes and damage."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from valvereader.geometry import Box
from valvereader.prediction import Prediction, Verdict
from valvereader.review import REVIEW_FILE, ResultCache, ReviewStore


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    folder = tmp_path / "batch"
    folder.mkdir()
    for name in ("a.dcm", "b.dcm", "c.png"):
        (folder / name).write_bytes(b"x")
    return folder


def test_decisions_survive_reopening_and_last_one_wins(batch: Path) -> None:
    store = ReviewStore(batch)
    store.record(batch / "a.dcm", "accepted", predicted="integra_dp", confidence=0.97)
    store.record(batch / "b.dcm", "rejected")
    store.record(batch / "a.dcm", "corrected", corrected_valve_id="codman_certas_plus", reading="4")
    assert (batch / REVIEW_FILE).exists()
    again = ReviewStore(batch)
    assert set(again.all()) == {"a.dcm", "b.dcm"}
    record = again.get(batch / "a.dcm")
    assert record is not None and record.decision == "corrected"
    assert record.final_valve_id == "codman_certas_plus" and record.reading == "4"
    assert again.get(batch / "c.png") is None


def test_decision_is_on_disk_when_the_process_is_killed_right_after(batch: Path) -> None:
    code = (
        "import os, sys\nfrom valvereader.review import ReviewStore\n"
        "ReviewStore(sys.argv[1]).record(sys.argv[1] + '/a.dcm', 'accepted')\nos._exit(9)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(batch)], check=False)
    record = ReviewStore(batch).get(batch / "a.dcm")
    assert record is not None and record.decision == "accepted"


def test_torn_last_line_is_ignored_with_a_warning(batch: Path, caplog: pytest.LogCaptureFixture) -> None:
    ReviewStore(batch).record(batch / "a.dcm", "accepted")
    with open(batch / REVIEW_FILE, "a") as handle:
        handle.write('{"image": "b.dcm", "decis')
    with caplog.at_level(logging.WARNING, logger="valvereader.review"):
        store = ReviewStore(batch)
    assert set(store.all()) == {"a.dcm"}
    assert any("cut off" in r.getMessage() for r in caplog.records)
    store.record(batch / "b.dcm", "rejected")
    assert set(ReviewStore(batch).all()) == {"a.dcm", "b.dcm"}
    assert not list(batch.glob("*.corrupt-*"))


def test_corrupt_review_file_is_set_aside_and_readable_decisions_kept(
    batch: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = ReviewStore(batch)
    store.record(batch / "a.dcm", "accepted")
    store.record(batch / "b.dcm", "rejected")
    path = batch / REVIEW_FILE
    lines = path.read_text().splitlines()
    path.write_bytes((lines[0] + "\n\x00\xff garbage\n" + lines[1] + "\n").encode("latin-1"))
    with caplog.at_level(logging.WARNING, logger="valvereader.review"):
        store = ReviewStore(batch)
    assert set(store.all()) == {"a.dcm", "b.dcm"}
    assert len(list(batch.glob(f"{REVIEW_FILE}.corrupt-*"))) == 1
    assert any("damaged" in r.getMessage() for r in caplog.records)
    assert set(ReviewStore(batch).all()) == {"a.dcm", "b.dcm"}


def test_invalid_decisions_are_refused(batch: Path) -> None:
    store = ReviewStore(batch)
    with pytest.raises(ValueError):
        store.record(batch / "a.dcm", "maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        store.record(batch / "a.dcm", "corrected")


def test_clear_removes_a_decision_durably(batch: Path) -> None:
    store = ReviewStore(batch)
    store.record(batch / "a.dcm", "accepted")
    store.clear(batch / "a.dcm")
    assert store.get(batch / "a.dcm") is None
    assert ReviewStore(batch).get(batch / "a.dcm") is None


def test_single_image_keeps_its_review_file_beside_it(batch: Path) -> None:
    store = ReviewStore(batch / "a.dcm")
    store.record(batch / "a.dcm", "rejected")
    assert store.path == (batch / REVIEW_FILE).resolve()


def test_result_cache_resumes_and_ignores_changed_files(batch: Path) -> None:
    prediction = Prediction(
        valve_ids=("integra_dp", "codman_certas_plus"),
        probabilities=np.array([0.8, 0.2], dtype=np.float32),
        verdict=Verdict.REVIEW,
        box=Box(1, 2, 30, 40),
        model="resnet-test",
        verdict_reason="film_look_alike",
        look_alikes=("codman_certas_plus",),
    )
    ResultCache(batch).put(batch / "a.dcm", prediction)
    cache = ResultCache(batch)
    got = cache.get(batch / "a.dcm", model="resnet-test")
    assert got is not None and got.predicted == "integra_dp" and got.box == Box(1, 2, 30, 40)
    assert got.verdict_reason == "film_look_alike" and got.look_alikes == ("codman_certas_plus",)  # the reason's words need them
    assert cache.get(batch / "a.dcm", model="other") is None
    (batch / "a.dcm").write_bytes(b"changed content")
    assert ResultCache(batch).get(batch / "a.dcm") is None


def test_a_kept_result_whose_file_cannot_be_checked_is_never_used(batch: Path) -> None:
    """A result kept for a path that cannot be stat'ed (stamp None) must not pass the staleness
    check by comparing None with None: the image could be another one by now."""
    prediction = Prediction(("integra_dp", "codman_certas_plus"), np.array([0.8, 0.2], dtype=np.float32), Verdict.REVIEW,
                            model="resnet-test")
    cache = ResultCache(batch)
    cache.put(batch / "gone.dcm", prediction)
    assert cache.entry(batch / "gone.dcm") is None and ResultCache(batch).get(batch / "gone.dcm") is None
    (batch / "gone.dcm").write_bytes(b"a new image under the old name")
    assert ResultCache(batch).get(batch / "gone.dcm") is None


def test_result_cache_keeps_every_finished_image_when_the_batch_is_killed(batch: Path) -> None:
    code = (
        "import os, sys\nimport numpy as np\n"
        "from valvereader.prediction import Prediction, Verdict\n"
        "from valvereader.review import ResultCache\n"
        "cache = ResultCache(sys.argv[1])\n"
        "for name in ('a.dcm', 'b.dcm'):\n"
        "    cache.put(os.path.join(sys.argv[1], name), Prediction(('x', 'y'), np.array([0.9, 0.1]), "
        "Verdict.CONFIDENT, model='m'))\n"
        "os._exit(9)  # killed before c.png\n"
    )
    subprocess.run([sys.executable, "-c", code, str(batch)], check=False)
    cache = ResultCache(batch)
    assert cache.get(batch / "a.dcm", model="m") is not None
    assert cache.get(batch / "b.dcm", model="m") is not None
    assert cache.get(batch / "c.png", model="m") is None


def test_decisions_kept_under_a_working_directory_path_are_found_again(batch: Path) -> None:
    """Earlier versions keyed a file opened as ``batch/a.dcm`` from the folder's parent under
    "batch/a.dcm" inside the batch folder; such a decision is still the file's, a newer line of
    the file's own wins, and a key that names another existing file is left alone."""
    import json

    (batch / "sub").mkdir()
    (batch / "sub" / "b.dcm").write_bytes(b"x")
    lines = [{"image": "batch/a.dcm", "decision": "accepted", "predicted": "integra_dp"},
             {"image": "work/batch/b.dcm", "decision": "rejected"},
             {"image": "b.dcm", "decision": "corrected", "corrected_valve_id": "codman_certas_plus"},
             {"image": "sub/b.dcm", "decision": "accepted"},
             {"image": "other/c.png", "decision": "rejected"}]
    (batch / REVIEW_FILE).write_text("".join(json.dumps(line) + "\n" for line in lines))
    store = ReviewStore(batch)
    a = store.get(batch / "a.dcm")
    assert a is not None and a.decision == "accepted"
    b = store.get(batch / "b.dcm")
    assert b is not None and b.decision == "corrected"  # its own line, written since, wins
    sub = store.get(batch / "sub" / "b.dcm")
    assert sub is not None and sub.decision == "accepted"
    assert store.get(batch / "c.png") is None  # "other/" is not the batch folder's name
