"""Folder scans: header only, DICOM without extension found, non-images skipped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from io_dicom_factory import make_dataset, ramp, save
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ComprehensiveSRStorage, generate_uid

from valvereader.io import is_supported_file, scan


def _sr(path: Path) -> Path:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    ds.file_meta.MediaStorageSOPClassUID = ComprehensiveSRStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = ComprehensiveSRStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "SR"
    ds.save_as(path, enforce_file_format=True)
    return path


def _folder(tmp_path: Path) -> Path:
    root = tmp_path / "study"
    (root / "series" / "deeper").mkdir(parents=True)
    (root / ".hidden").mkdir()
    save(make_dataset(ramp(), PatientID="P1", StudyDate="20240102", Modality="DX"), root / "IM0001")
    save(make_dataset(ramp()), root / "series" / "b.dcm")
    save(make_dataset(ramp()), root / ".hidden" / "c.dcm")
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(root / "series" / "deeper" / "photo.png")
    (root / "notes.txt").write_text("hello")
    (root / "table.csv").write_text("a,b\n1,2\n")
    (root / "README").write_text("not an image, no extension")
    save(make_dataset(ramp()), root / "DICOMDIR")  # any file named DICOMDIR is an index
    _sr(root / "report.dcm")
    return root


def test_scan_finds_dicom_without_extension_and_skips_non_images(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    entries = list(scan([root]))
    names = [entry.path.name for entry in entries]
    assert names == ["IM0001", "report.dcm", "b.dcm", "photo.png"]
    first = entries[0]
    assert (first.kind, first.patient_id, first.study_date, first.modality, first.error) == (
        "dicom", "P1", "20240102", "DX", None
    )
    report = entries[1]
    assert report.kind == "non-image" and "SR" in str(report.error)
    assert entries[3].kind == "image"


def test_a_damaged_file_named_like_an_x_ray_is_listed_with_its_error(tmp_path: Path) -> None:
    """One broken file in a folder is reported, not passed over: a .dcm or .png whose content
    is neither gets an entry with its error; an unnamed non-image is still skipped."""
    root = tmp_path / "batch"
    root.mkdir()
    save(make_dataset(ramp()), root / "a.dcm")
    (root / "b.dcm").write_bytes(b"\0" * 4096)  # zero-filled: a copy that failed
    (root / "c.PNG").write_bytes(b"not a picture")
    (root / "d").write_text("no extension, not an image")
    entries = list(scan([root]))
    assert [(e.path.name, e.kind) for e in entries] == [("a.dcm", "dicom"), ("b.dcm", "unknown"), ("c.PNG", "unknown")]
    assert entries[0].error is None
    assert all("neither DICOM" in str(e.error) for e in entries[1:])


def test_scan_without_recursion_stays_in_the_folder(tmp_path: Path) -> None:
    names = [entry.path.name for entry in scan([_folder(tmp_path)], recursive=False)]
    assert names == ["IM0001", "report.dcm"]


def test_scan_reads_headers_only(tmp_path: Path) -> None:
    # Pixel data cut in half: a header-only scan must not notice (load() would).
    path = save(make_dataset(ramp(64, 64)), tmp_path / "cut.dcm")
    path.write_bytes(path.read_bytes()[:-3000])
    (entry,) = scan([path])
    assert entry.kind == "dicom" and entry.error is None


def test_named_files_always_give_an_entry(tmp_path: Path) -> None:
    text = tmp_path / "x.txt"
    text.write_text("nope")
    missing = tmp_path / "gone.dcm"
    entries = list(scan([text, missing]))
    assert [e.kind for e in entries] == ["unknown", "unknown"]
    assert "neither DICOM" in str(entries[0].error) and "does not exist" in str(entries[1].error)


def test_is_supported_file_by_content(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    assert is_supported_file(root / "IM0001")
    assert is_supported_file(root / "series" / "deeper" / "photo.png")
    assert not is_supported_file(root / "README")
    assert not is_supported_file(root / "DICOMDIR")
    assert not is_supported_file(root)
    assert not is_supported_file(root / "missing.dcm")
