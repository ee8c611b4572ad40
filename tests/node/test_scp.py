"""The node receives, stores and reads: rows, stored files, refusals, failures, recovery."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from node_helpers import (
    LOOPBACK,
    SAMPLE_VALVE,
    broken_image_dataset,
    non_image_dataset,
    sample_dataset,
    send,
)


def rows(out: Path) -> list[dict[str, str]]:
    with open(out / "results.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_image_is_stored_classified_and_reported(start_node, tmp_path):
    from pydicom import dcmread

    from valvereader.inference.classify import columns

    node = start_node()
    sent = sample_dataset()
    assert send(node.port, [sent]) == [0x0000]
    assert node.wait_idle(30)

    stored = tmp_path / "out" / "in" / f"{sent.SOPInstanceUID}.dcm"
    assert stored.is_file()
    back = dcmread(stored)
    assert back.SOPInstanceUID == sent.SOPInstanceUID
    assert back.file_meta.SourceApplicationEntityTitle == "MODALITY"
    assert np.array_equal(back.pixel_array, sent.pixel_array)  # stored as it came
    assert not list((tmp_path / "out" / "in").glob(".*.tmp"))  # nothing half-written left

    [row] = rows(tmp_path / "out")
    assert list(row)[: len(columns())] == columns()  # classify's columns first, in its order
    assert row["status"] == "ok", row["error"]
    assert row["predicted"] == SAMPLE_VALVE
    assert row["path"] == str(stored.resolve())
    assert row["study_instance_uid"] == sent.StudyInstanceUID
    assert row["series_instance_uid"] == sent.SeriesInstanceUID
    assert row["sop_instance_uid"] == sent.SOPInstanceUID
    assert row["calling_aet"] == "MODALITY"
    assert row["box_x0"] != "" and float(row[f"p_{SAMPLE_VALVE}"]) > 0.5
    [sr] = (tmp_path / "out" / "sr").glob("*.dcm")
    assert dcmread(sr).CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0] \
        .ReferencedSOPSequence[0].ReferencedSOPInstanceUID == sent.SOPInstanceUID


def test_non_image_is_stored_not_classified_and_a_broken_image_gets_its_error(start_node, tmp_path):
    node = start_node()
    other, broken, good = non_image_dataset(), broken_image_dataset(), sample_dataset()
    assert send(node.port, [other, broken, good]) == [0x0000, 0x0000, 0x0000]
    assert node.wait_idle(30)

    inbox = tmp_path / "out" / "in"
    for ds in (other, broken, good):
        assert (inbox / f"{ds.SOPInstanceUID}.dcm").is_file()
    by_uid = {row["sop_instance_uid"]: row for row in rows(tmp_path / "out")}
    assert by_uid[other.SOPInstanceUID]["status"] == "skipped"
    assert "not an image" in by_uid[other.SOPInstanceUID]["error"]
    assert by_uid[other.SOPInstanceUID]["predicted"] == ""
    assert by_uid[broken.SOPInstanceUID]["status"] == "error"
    assert by_uid[broken.SOPInstanceUID]["error"]  # the loader's reason
    assert by_uid[good.SOPInstanceUID]["status"] == "ok"  # the node went on after the broken one
    assert len(list((tmp_path / "out" / "sr").glob("*.dcm"))) == 1  # a result only for the image read


def test_a_peer_not_allowed_is_refused(start_node, tmp_path):
    from valvereader.node.scp import Allowed

    node = start_node(allowed=[Allowed("MODALITY"), Allowed("PACS", "10.11.12.13")])
    assert send(node.port, [non_image_dataset()], calling_aet="STRANGER") is None
    # PACS is allowed only from 10.11.12.13, and this association comes from 127.0.0.1.
    assert send(node.port, [non_image_dataset()], calling_aet="PACS") is None
    assert node.rejected == [("STRANGER", LOOPBACK), ("PACS", LOOPBACK)]
    assert not list((tmp_path / "out" / "in").glob("*.dcm"))
    assert send(node.port, [non_image_dataset()], calling_aet="MODALITY") == [0x0000]


def test_the_refusal_is_an_association_reject_naming_the_calling_ae_title(start_node):
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    node = start_node()
    ae = AE(ae_title="STRANGER")
    ae.add_requested_context(Verification)
    assoc = ae.associate(LOOPBACK, node.port, ae_title="VALVEREADER")
    assert assoc.is_rejected and not assoc.is_aborted
    rejection = assoc.acceptor.primitive
    assert (rejection.result, rejection.result_source, rejection.diagnostic) == (0x01, 0x01, 0x03)


def test_allow_any_accepts_every_peer(start_node):
    node = start_node(allowed=[], allow_any=True)
    assert send(node.port, [non_image_dataset()], calling_aet="ANYONE") == [0x0000]


def test_allow_and_peer_parsing():
    from valvereader.node.scp import Allowed, stored_name
    from valvereader.node.send import Peer

    assert Allowed.parse("CT1") == Allowed("CT1", None)
    assert Allowed.parse("CT1@10.0.0.4") == Allowed("CT1", "10.0.0.4")
    assert Allowed("CT1", "127.0.0.1").admits("CT1", "127.0.0.1")
    assert not Allowed("CT1", "10.0.0.4").admits("CT1", "127.0.0.1")
    assert Peer.parse("PACS@pacs.example.org:104") == Peer("PACS", "pacs.example.org", 104)
    for bad in ("PACS", "PACS@host", "@host:104", "PACS@host:0", "A_TITLE_LONGER_THAN_16@h:1"):
        with pytest.raises(ValueError):
            Peer.parse(bad)
    with pytest.raises(ValueError):
        Allowed.parse("CT1@")
    assert stored_name("1.2.3") == "1.2.3.dcm"
    assert stored_name("../../etc/passwd").startswith("invalid-uid-")  # never a path


class FailingOnce:
    """The real model, except that its first prediction raises."""

    def __init__(self, predictor):
        self._predictor, self.calls = predictor, 0

    def __getattr__(self, name):
        return getattr(self._predictor, name)

    def predict(self, radiograph, **kwargs):
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("the runtime ran out of memory")
        return self._predictor.predict(radiograph, **kwargs)


def test_a_model_failure_keeps_the_file_and_the_node_goes_on(start_node, tmp_path, predictor):
    node = start_node(node_predictor=FailingOnce(predictor))
    first, second = sample_dataset(), sample_dataset()
    second.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    assert send(node.port, [first, second]) == [0x0000, 0x0000]
    assert node.wait_idle(30)
    by_uid = {row["sop_instance_uid"]: row for row in rows(tmp_path / "out")}
    assert by_uid[first.SOPInstanceUID]["status"] == "error"
    assert "ran out of memory" in by_uid[first.SOPInstanceUID]["error"]
    assert (tmp_path / "out" / "in" / f"{first.SOPInstanceUID}.dcm").is_file()
    assert by_uid[second.SOPInstanceUID]["status"] == "ok"


def test_files_received_but_not_read_are_read_at_the_next_start(start_node, tmp_path):
    from pydicom.uid import generate_uid

    out = tmp_path / "out"
    node = start_node(out=out)
    assert send(node.port, [sample_dataset()]) == [0x0000]
    assert node.wait_idle(30)
    node.stop()
    # A file stored just before a crash: in in/, no row yet.
    ds = sample_dataset()
    ds.SOPInstanceUID = generate_uid()
    ds.save_as(out / "in" / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)
    (out / "results.csv").open("a", encoding="utf-8").write("/torn/line,ok")  # killed mid-row

    again = start_node(out=out)
    assert again.wait_idle(30)
    table = rows(out)
    assert [row["status"] for row in table] == ["ok", "ok"]
    assert table[1]["sop_instance_uid"] == ds.SOPInstanceUID


def test_results_are_kept_for_the_window_without_reading_again(start_node, tmp_path, predictor):
    from valvereader.review import ResultCache

    node = start_node()
    sent, other = sample_dataset(), non_image_dataset()
    assert send(node.port, [sent, other]) == [0x0000, 0x0000]
    assert node.wait_idle(30)
    [row] = [r for r in rows(tmp_path / "out") if r["status"] == "ok"]
    # The window opening OUT/ keys its kept results by the path inside the folder opened.
    kept = ResultCache(tmp_path / "out")
    stored = tmp_path / "out" / "in" / f"{sent.SOPInstanceUID}.dcm"
    prediction = kept.get(stored, predictor.model_name)
    assert prediction is not None
    assert (prediction.predicted, prediction.verdict.value) == (row["predicted"], row["verdict"])
    assert list(prediction.box.as_tuple()) == [int(row[k]) for k in ("box_x0", "box_y0", "box_x1", "box_y1")]
    import base64
    import io

    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(kept.entry(stored)["thumbnail"]))) as thumbnail:
        assert max(thumbnail.size) == 64 and thumbnail.mode == "L"  # the worklist's thumbnail
    # kept with the weights that made it, as the window keeps its own (and checks them)
    from valvereader.gui.models.analysis import kept_result

    weights = predictor.weights_key
    assert kept.entry(stored)["weights"] == weights
    assert kept_result(kept, stored, predictor.model_name, weights) is not None
    assert kept_result(kept, stored, predictor.model_name, weights + " other") is None
    assert kept.entry(tmp_path / "out" / "in" / f"{other.SOPInstanceUID}.dcm") is None  # nothing to keep


def test_a_sender_that_aborts_mid_study_loses_nothing_it_sent(start_node, tmp_path):
    from pynetdicom import AE

    node = start_node()
    first = sample_dataset()
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(first.SOPClassUID, first.file_meta.TransferSyntaxUID)
    assoc = ae.associate(LOOPBACK, node.port, ae_title="VALVEREADER")
    assert assoc.is_established
    assert int(assoc.send_c_store(first).Status) == 0x0000
    assoc.abort()  # the modality goes away before the rest of its study
    assert node.wait_idle(30)
    [row] = rows(tmp_path / "out")
    assert row["sop_instance_uid"] == first.SOPInstanceUID and row["status"] == "ok"
    assert send(node.port, [non_image_dataset()]) == [0x0000]  # and the node still answers


def test_an_allowed_peer_can_verify_the_connection(start_node):
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    node = start_node()
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(Verification)
    assoc = ae.associate(LOOPBACK, node.port, ae_title="VALVEREADER")
    assert assoc.is_established
    try:
        assert int(assoc.send_c_echo().Status) == 0x0000
    finally:
        assoc.release()
