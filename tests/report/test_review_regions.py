"""The valve region a reader chose is kept with the review decision: saved at once, restored on
reopening, kept by a later decision or a cleared one, undone by "back to the located box"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from valvereader.geometry import Box
from valvereader.review import ReviewStore


def test_a_region_is_saved_at_once_and_comes_back(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    ReviewStore(tmp_path).set_region(image, Box(10, 20, 110, 140))
    store = ReviewStore(tmp_path)  # a fresh reader of the file: what survives a crash
    assert store.region(image) == Box(10, 20, 110, 140)
    assert store.get(image) is None  # a region is no decision
    assert image not in store.all() and "a.png" not in store.all()


def test_decisions_keep_the_region_and_carry_it(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    store = ReviewStore(tmp_path)
    store.set_region(image, Box(1, 2, 30, 40))
    record = store.record(image, "corrected", corrected_valve_id="integra_dp")
    assert record.region == (1, 2, 30, 40)
    store.record(image, "accepted", predicted="integra_dp")  # a later decision keeps it
    assert ReviewStore(tmp_path).get(image).region == (1, 2, 30, 40)
    store.clear(image)
    again = ReviewStore(tmp_path)
    assert again.get(image) is None and again.region(image) == Box(1, 2, 30, 40)


def test_back_to_the_located_box_keeps_the_decision(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    store = ReviewStore(tmp_path)
    store.record(image, "rejected", region=Box(5, 5, 50, 50))
    store.set_region(image, None)
    again = ReviewStore(tmp_path)
    assert again.region(image) is None
    record = again.get(image)
    assert record.decision == "rejected" and record.region is None


def test_an_explicit_region_replaces_the_stored_one(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    store = ReviewStore(tmp_path)
    store.set_region(image, Box(1, 1, 9, 9))
    store.record(image, "accepted", region=Box(2, 2, 20, 20))
    assert store.region(image) == Box(2, 2, 20, 20)
    store.record(image, "accepted", region=None)
    assert store.region(image) is None
    with pytest.raises(ValueError, match="a region is a Box"):
        store.set_region(image, (1, 2, 3, 4))  # type: ignore[arg-type]


@pytest.mark.parametrize("stored", [[1, 2, 3], [1, 2, "3", 4], [5, 5, 5, 9], [-1, 0, 4, 4], [True, 0, 4, 4], "1,2,3,4"])
def test_a_damaged_region_reads_as_none_and_the_decision_stays(tmp_path: Path, stored: object) -> None:
    line = {"image": "a.png", "decision": "accepted", "predicted": "integra_dp", "region": stored}
    (tmp_path / "valvereader-review.jsonl").write_text(json.dumps(line) + "\n")
    store = ReviewStore(tmp_path)
    assert store.region(tmp_path / "a.png") is None
    assert store.get(tmp_path / "a.png").decision == "accepted"


def test_an_earlier_version_s_file_reads_without_regions(tmp_path: Path) -> None:
    line = {"image": "a.png", "decision": "corrected", "corrected_valve_id": "integra_dp", "time": "2026-01-01"}
    (tmp_path / "valvereader-review.jsonl").write_text(json.dumps(line) + "\n")
    store = ReviewStore(tmp_path)
    assert store.region(tmp_path / "a.png") is None
    assert store.get(tmp_path / "a.png").corrected_valve_id == "integra_dp"
