"""`valvereader export-reviews`: a reviewed batch becomes de-identified training crops."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from valvereader.catalogue import VALVE_IDS
from valvereader.geometry import Box
from valvereader.prediction import Prediction, Verdict
from valvereader.review import ResultCache, ReviewStore

SHAPE = (160, 200)  # rows, columns
LOCATED = Box(80, 60, 120, 90)


def study_image(path: Path, valve_index: int, seed: int = 0) -> Path:
    """A grey film with a bright valve-like block at (80..120, 60..90) whose stripe tells the class."""
    rng = np.random.default_rng(seed)
    pixels = (rng.random(SHAPE) * 60 + 20).astype(np.uint8)
    pixels[60:90, 80:120] = 200
    pixels[62 + 3 * valve_index:65 + 3 * valve_index, 82:118] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def put_result(cache: ResultCache, image: Path, valve: str, verdict: Verdict = Verdict.CONFIDENT,
               box: Box | None = LOCATED) -> Prediction:
    """The window's kept result of ``image``: ``valve`` most probable, the located ``box``."""
    probabilities = np.full(len(VALVE_IDS), 0.02, dtype=np.float32)
    probabilities[VALVE_IDS.index(valve)] = 1 - 0.02 * (len(VALVE_IDS) - 1)
    prediction = Prediction(valve_ids=tuple(VALVE_IDS), probabilities=probabilities, verdict=verdict,
                            box=None if verdict is Verdict.NO_VALVE else box, model="tiny-test 0")
    cache.put(image, prediction)
    return prediction


def review_batch(folder: Path) -> dict[str, Path]:
    """A batch reviewed as the window records it: every kind of decision once."""
    names = ["accepted", "corrected_region", "rejected", "undecided", "no_valve", "unknown_fix", "accepted_unknown",
             "missing"]
    images = {name: study_image(folder / f"Doe^Jane_{name}.png", k % len(VALVE_IDS), seed=k) for k, name in enumerate(names)}
    cache, store = ResultCache(folder), ReviewStore(folder)
    for name, image in images.items():
        verdict = {"no_valve": Verdict.NO_VALVE, "accepted_unknown": Verdict.UNKNOWN}.get(name, Verdict.CONFIDENT)
        put_result(cache, image, VALVE_IDS[0], verdict)
    def decide(name: str, decision: str, corrected: str | None = None) -> None:
        store.record(images[name], decision, corrected_valve_id=corrected, predicted=VALVE_IDS[0], confidence=0.86)
    decide("accepted", "accepted")
    store.set_region(images["corrected_region"], Box(70, 50, 130, 100))
    decide("corrected_region", "corrected", VALVE_IDS[3])
    decide("rejected", "rejected")
    decide("no_valve", "accepted")
    decide("unknown_fix", "corrected", "unknown")
    decide("accepted_unknown", "accepted")
    decide("missing", "accepted")
    images["missing"].unlink()
    return images


def test_accepted_and_corrected_studies_become_crops_with_a_manifest_and_label_studio_tasks(tmp_path: Path) -> None:
    from valvereader.review_export import MANIFEST_COLUMNS, export_reviews
    from valvereader.training.datasets import read_label_studio, read_manifest

    batch = tmp_path / "batch"
    review_batch(batch)
    out = tmp_path / "export"
    summary = export_reviews(batch, out)
    assert sorted(c.label for c in summary.written) == sorted([VALVE_IDS[0], VALVE_IDS[3]])
    reasons = dict(summary.skipped)
    assert len(summary.skipped) == 6
    assert reasons["Doe^Jane_rejected.png"] == "rejected"
    assert reasons["Doe^Jane_undecided.png"] == "not decided"
    assert "no valve found" in reasons["Doe^Jane_no_valve.png"]
    assert "unknown valve" in reasons["Doe^Jane_unknown_fix.png"] and "8 catalogue valves" in reasons["Doe^Jane_unknown_fix.png"]
    assert "unknown valve" in reasons["Doe^Jane_accepted_unknown.png"]
    assert "missing" in reasons["Doe^Jane_missing.png"]

    with (out / "manifest.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == MANIFEST_COLUMNS
    by_label = {row["label"]: row for row in rows}
    for row in rows:
        crop = out / row["path"]
        data = crop.read_bytes()
        assert hashlib.sha256(data).hexdigest() == row["sha256"] and crop.name == f"{row['sha256'][:16]}.png"
        with Image.open(crop) as image:
            assert image.mode == "L" and image.size == (int(row["width"]), int(row["height"]))
        assert row["source_uid"].startswith("2.25.") and row["source_uid"][5:].isdigit()
    # The located box (40 x 30) with 10 % on each side; the reader's region (60 x 50) likewise.
    assert (int(by_label[VALVE_IDS[0]]["width"]), int(by_label[VALVE_IDS[0]]["height"])) == (48, 36)
    assert (int(by_label[VALVE_IDS[3]]["width"]), int(by_label[VALVE_IDS[3]]["height"])) == (72, 60)
    # The pixels are the study's own, as displayed: the crop of the accepted study is its film's.
    with Image.open(out / by_label[VALVE_IDS[0]]["path"]) as image:
        crop = np.asarray(image)
    with Image.open(batch / "Doe^Jane_accepted.png") as image:
        film = np.asarray(image)
    np.testing.assert_array_equal(crop, film[57:93, 76:124])
    # The training readers take both files: the manifest, and the Label Studio tasks whose box
    # is the region inside the crop (the margin outside it).
    assert sorted(s.label for s in read_manifest(out / "manifest.csv")) == sorted(by_label)
    tasks = read_label_studio(out / "label-studio.json")
    located = next(t for t in tasks if t.label == VALVE_IDS[0])
    assert located.box == Box(4, 3, 44, 33) and located.path == out / by_label[VALVE_IDS[0]]["path"]
    raw = json.loads((out / "label-studio.json").read_text())
    assert raw[0]["annotations"][0]["result"][0]["type"] == "rectanglelabels"


def test_the_export_holds_no_names_ids_or_dates_of_the_source(tmp_path: Path) -> None:
    from valvereader.review_export import export_reviews

    batch = tmp_path / "batch"
    images = review_batch(batch)
    out = tmp_path / "export"
    export_reviews(batch, out)
    store = ReviewStore(batch)
    times = {record.time[:10] for record in store.all().values()}
    text = "".join(p.read_text(errors="replace") for p in out.rglob("*") if p.suffix in {".csv", ".json", ".md"})
    for needle in ["Doe", "Jane", *(p.stem for p in images.values()), *times]:
        assert needle not in text, needle
    assert all("Doe" not in str(p.relative_to(out)) for p in out.rglob("*"))
    assert "not for diagnostic use" in (out / "README.md").read_text()
    # A new UID per export: the same batch exported again cannot be linked by its UIDs.
    again = tmp_path / "again"
    export_reviews(batch, again)
    first = {r["sha256"]: r["source_uid"] for r in csv.DictReader((out / "manifest.csv").open())}
    second = {r["sha256"]: r["source_uid"] for r in csv.DictReader((again / "manifest.csv").open())}
    assert first.keys() == second.keys() and not set(first.values()) & set(second.values())


def test_films_of_one_dicom_study_share_one_new_uid_and_declared_burned_in_text_is_left_out(tmp_path: Path) -> None:
    pytest.importorskip("pydicom")
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    from valvereader.review_export import export_reviews

    batch = tmp_path / "batch"
    batch.mkdir()
    study_uid = generate_uid()
    cache, store = ResultCache(batch), ReviewStore(batch)
    for k in range(3):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.PatientName = study_uid, generate_uid(), "Doe^Jane"
        ds.Modality, ds.PhotometricInterpretation, ds.SamplesPerPixel = "OT", "MONOCHROME2", 1
        pixels = (np.random.default_rng(k).random(SHAPE) * 4000).astype(np.uint16)
        ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = *SHAPE, 16, 12, 11, 0
        ds.PixelData = pixels.tobytes()
        if k == 2:
            ds.BurnedInAnnotation = "YES"
        path = batch / f"film{k}.dcm"
        ds.save_as(path, enforce_file_format=True)
        put_result(cache, path, VALVE_IDS[1])
        store.record(path, "accepted", predicted=VALVE_IDS[1])
    summary = export_reviews(batch, tmp_path / "export")
    assert len(summary.written) == 2
    assert summary.skipped == [("film2.dcm", summary.skipped[0][1])] and "burned into its pixels" in summary.skipped[0][1]
    kept = export_reviews(batch, tmp_path / "kept", keep_burned_in=True)
    assert len(kept.written) == 3 and not kept.skipped and len({c.source_uid for c in kept.written}) == 1
    assert "--keep-burned-in" in (tmp_path / "kept" / "README.md").read_text()
    uids = {crop.source_uid for crop in summary.written}
    assert len(uids) == 1 and study_uid not in uids
    text = (tmp_path / "export" / "manifest.csv").read_text() + (tmp_path / "export" / "label-studio.json").read_text()
    assert study_uid not in text and "Doe" not in text


def test_a_damaged_image_is_skipped_and_the_others_are_exported(tmp_path: Path) -> None:
    from valvereader.review_export import export_reviews

    batch = tmp_path / "batch"
    good = study_image(batch / "good.png", 2)
    bad = study_image(batch / "bad.png", 2, seed=5)
    cache, store = ResultCache(batch), ReviewStore(batch)
    for image in (good, bad):
        put_result(cache, image, VALVE_IDS[2])
        store.record(image, "accepted", predicted=VALVE_IDS[2])
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # changed since it was read, and unreadable
    store.record(bad, "corrected", corrected_valve_id=VALVE_IDS[4], region=Box(10, 10, 50, 50))
    summary = export_reviews(batch, tmp_path / "export")
    assert [c.label for c in summary.written] == [VALVE_IDS[2]]
    assert len(summary.skipped) == 1 and "cannot be read" in summary.skipped[0][1]


def test_the_command_prints_a_summary_and_refuses_bad_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from valvereader.cli import main

    batch = tmp_path / "batch"
    review_batch(batch)
    out = tmp_path / "export"
    assert main(["export-reviews", str(batch), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"written 2 crop(s) to {out}" in printed and "skipped 6" in printed and "rejected" in printed
    assert "not for diagnostic use" in printed
    assert main(["export-reviews", str(batch), "--out", str(out)]) == 2  # not empty: nothing overwritten
    assert "not empty" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["export-reviews", str(empty), "--out", str(tmp_path / "x")]) == 2
    assert "no review decisions" in capsys.readouterr().err
    assert main(["export-reviews", str(tmp_path / "nowhere"), "--out", str(tmp_path / "y")]) == 2
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_a_film_read_inverted_is_exported_as_the_model_read_it(tmp_path: Path) -> None:
    """A negative PNG that the program read with its grey scale inverted gives a crop with the
    valve bright, as the training crops have it; the same film as it is gives the same crop."""
    from valvereader.review_export import export_reviews

    batch = tmp_path / "batch"
    plain = study_image(batch / "plain.png", 2, seed=4)
    negative = batch / "negative.png"
    Image.fromarray(255 - np.asarray(Image.open(plain))).save(negative)
    cache, store = ResultCache(batch), ReviewStore(batch)
    put_result(cache, plain, VALVE_IDS[2])
    read_inverted = put_result(cache, negative, VALVE_IDS[2])
    read_inverted.inverted = True
    cache.put(negative, read_inverted)
    for image in (plain, negative):
        store.record(image, "accepted", predicted=VALVE_IDS[2], confidence=0.9)
    summary = export_reviews(batch, tmp_path / "export")
    assert len(summary.written) == 1  # the two crops are the same pixels: the second is left out
    assert [why for _, why in summary.skipped] == ["the same crop as another study in this export"]
    crop = np.asarray(Image.open(tmp_path / "export" / summary.written[0].path))
    assert crop.max() == 255  # the valve's stripe bright
