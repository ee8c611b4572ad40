"""--send-to: the SR (and the key image with --with-sc) reach a second node; dcmtk's storescu
can send to the node."""

from __future__ import annotations

import csv
import shutil
import subprocess
import threading

import pytest
from node_helpers import LOOPBACK, SAMPLE, SAMPLE_VALVE, sample_dataset, send


@pytest.fixture
def pacs():
    """A plain Storage SCP on 127.0.0.1 (AE PACS) keeping what it receives: (port, received)."""
    from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt

    received: list = []
    lock = threading.Lock()

    def on_store(event):
        with lock:
            received.append(event.dataset)
        return 0x0000

    ae = AE(ae_title="PACS")
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    server = ae.start_server((LOOPBACK, 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    yield server.server_address[1], received
    server.shutdown()


def test_sr_and_key_image_are_sent_to_the_destination(start_node, pacs, tmp_path):
    from valvereader.node.send import Peer

    port, received = pacs
    node = start_node(send_to=Peer("PACS", LOOPBACK, port), with_sc=True)
    sent = sample_dataset()
    assert send(node.port, [sent]) == [0x0000]
    assert node.wait_idle(60)

    by_class = {str(ds.SOPClassUID): ds for ds in received}
    assert set(by_class) == {"1.2.840.10008.5.1.4.1.1.88.34", "1.2.840.10008.5.1.4.1.1.7"}  # 3D SR, SC
    sr, sc = by_class["1.2.840.10008.5.1.4.1.1.88.34"], by_class["1.2.840.10008.5.1.4.1.1.7"]
    for result in (sr, sc):
        assert result.StudyInstanceUID == sent.StudyInstanceUID and result.PatientID == sent.PatientID
        assert result.SeriesInstanceUID != sent.SeriesInstanceUID
    assert sr.VerificationFlag == "UNVERIFIED"
    assert "NOT FOR DIAGNOSIS" in sc.SeriesDescription
    assert "not for diagnostic use" in sc.ImageComments
    # What was sent is what the node keeps in OUT/sr and OUT/sc.
    assert (tmp_path / "out" / "sr" / f"{sr.SOPInstanceUID}.dcm").is_file()
    assert (tmp_path / "out" / "sc" / f"{sc.SOPInstanceUID}.dcm").is_file()
    assert [p.name for p in node.outbox.sent] == [f"{sr.SOPInstanceUID}.dcm", f"{sc.SOPInstanceUID}.dcm"]


def test_an_unreachable_destination_is_noted_and_the_result_kept(start_node, tmp_path):
    import socket

    from valvereader.node.send import Peer

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind((LOOPBACK, 0))
        closed = probe.getsockname()[1]
    node = start_node(send_to=Peer("PACS", LOOPBACK, closed), send_attempts=2, send_delay=0.05)
    assert send(node.port, [sample_dataset()]) == [0x0000]
    assert node.wait_idle(60)
    [sr] = (tmp_path / "out" / "sr").glob("*.dcm")
    assert node.outbox.failed == [sr]
    assert (tmp_path / "out" / "unsent.txt").read_text().startswith(f"{sr}\tPACS@{LOOPBACK}:{closed}")


def test_storescu_can_send_to_the_node(start_node, tmp_path):
    if shutil.which("storescu") is None:
        pytest.skip("storescu (dcmtk) is not installed: scripts/install-system-deps.sh")
    node = start_node()
    result = subprocess.run(["storescu", "-aet", "MODALITY", "-aec", "VALVEREADER", "-xv", LOOPBACK,
                             str(node.port), str(SAMPLE)], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert node.wait_idle(30)
    with open(tmp_path / "out" / "results.csv", newline="", encoding="utf-8") as handle:
        [row] = list(csv.DictReader(handle))
    assert row["status"] == "ok" and row["predicted"] == SAMPLE_VALVE and row["calling_aet"] == "MODALITY"


def test_a_key_image_routed_back_is_stored_not_read_again(start_node, pacs, tmp_path):
    """PACS forwarding the node's own key image back must not start a loop of results."""
    from valvereader.node.send import Peer

    port, received = pacs
    node = start_node(send_to=Peer("PACS", LOOPBACK, port), with_sc=True)
    assert send(node.port, [sample_dataset()]) == [0x0000]
    assert node.wait_idle(60)
    [key_image] = [ds for ds in received if ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"]
    from pydicom.dataset import FileMetaDataset

    key_image.file_meta = FileMetaDataset()
    key_image.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"  # explicit VR little endian
    assert send(node.port, [key_image]) == [0x0000]
    assert node.wait_idle(60)
    with open(tmp_path / "out" / "results.csv", newline="", encoding="utf-8") as handle:
        statuses = [row["status"] for row in csv.DictReader(handle)]
    assert statuses == ["ok", "skipped"]
    assert len(received) == 2  # nothing more was sent
    assert (tmp_path / "out" / "in" / f"{key_image.SOPInstanceUID}.dcm").is_file()
