"""Every way a file can fail gives a specific typed error, never an untyped exception."""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from io_dicom_factory import make_dataset, ramp, save
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import BasicTextSRStorage, JPEG2000Lossless, RLELossless, generate_uid

from valvereader.errors import (
    AbsurdDimensionsError,
    InputError,
    NonImageObjectError,
    NoPixelDataError,
    NotDicomError,
    PixelDataSizeError,
    TruncatedDataError,
    UnreadableFileError,
    UnsupportedImageError,
    UnsupportedTransferSyntaxError,
)
from valvereader.io import load


def _pixel_data_header_offset(raw: bytes) -> int:
    offset = raw.rfind(b"\xe0\x7f\x10\x00OW\x00\x00")
    if offset < 0:
        offset = raw.rfind(b"\xe0\x7f\x10\x00OB\x00\x00")
    assert offset > 0
    return offset


def test_text_file_is_not_dicom(tmp_path: Path) -> None:
    path = tmp_path / "notes.dcm"
    path.write_text("patient looked fine\n" * 20)
    with pytest.raises(NotDicomError, match="notes.dcm"):
        load(path)


def test_random_bytes_are_not_dicom(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(NotDicomError):
        load(path)


def test_missing_file_and_folder_are_unreadable(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError, match="does not exist"):
        load(tmp_path / "nowhere.dcm")
    with pytest.raises(UnreadableFileError, match="folder"):
        load(tmp_path)


def test_empty_file_is_not_dicom(tmp_path: Path) -> None:
    path = tmp_path / "empty.dcm"
    path.write_bytes(b"")
    with pytest.raises(NotDicomError, match="empty"):
        load(path)


def test_image_object_without_pixel_data(tmp_path: Path) -> None:
    ds = make_dataset(ramp())
    del ds.PixelData
    # Rows and Columns without pixels: most often a file cut off before its Pixel Data.
    with pytest.raises(NoPixelDataError, match=r"no pixel data \(its image attributes are there: the file may have been cut short\)"):
        load(save(ds, tmp_path / "nopix.dcm"))
    full = save(make_dataset(ramp()), tmp_path / "full.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(full[: full.rfind(b"\xe0\x7f\x10\x00")])  # ends right before (7FE0,0010)
    with pytest.raises(NoPixelDataError, match="cut short"):
        load(tmp_path / "cut.dcm")
    del ds.Rows, ds.Columns
    with pytest.raises(NoPixelDataError, match="no pixel data$"):
        load(save(ds, tmp_path / "bare.dcm"))


def test_structured_report_is_named_as_a_non_image_object(tmp_path: Path) -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    ds.file_meta.MediaStorageSOPClassUID = BasicTextSRStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = BasicTextSRStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "SR"
    ds.PatientID = "X"
    with pytest.raises(NonImageObjectError, match="Basic Text SR"):
        load(save(ds, tmp_path / "report.dcm"))


def test_unknown_compression_names_the_syntax(tmp_path: Path) -> None:
    ds = make_dataset(ramp())
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2 video
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + b"\x00" * 60])
    ds["PixelData"].VR = "OB"
    with pytest.raises(UnsupportedTransferSyntaxError, match="MPEG2"):
        load(save(ds, tmp_path / "video.dcm"))


def test_missing_decoder_plugin_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = make_dataset(ramp(), bits_stored=12)
    ds.compress(JPEG2000Lossless)
    path = save(ds, tmp_path / "j2k.dcm")

    class Unavailable:
        is_available = False

    import valvereader.io.dicom as dicom_module

    monkeypatch.setattr(dicom_module, "get_decoder", lambda uid: Unavailable())
    with pytest.raises(UnsupportedTransferSyntaxError, match="pylibjpeg-openjpeg"):
        load(path)


def test_native_pixel_data_cut_short_is_truncated(tmp_path: Path) -> None:
    path = save(make_dataset(ramp(64, 64)), tmp_path / "full.dcm")
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(TruncatedDataError, match="truncated"):
        load(cut)


def test_compressed_pixel_data_cut_short_is_truncated(tmp_path: Path) -> None:
    ds = make_dataset(ramp(64, 64), bits_stored=12)
    ds.compress(RLELossless)
    path = save(ds, tmp_path / "rle.dcm")
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(path.read_bytes()[:-200])
    with pytest.raises((TruncatedDataError, UnsupportedImageError)):
        load(cut)


def test_encapsulated_pixel_data_cut_short_says_so_without_a_stray_warning(tmp_path: Path) -> None:
    """pydicom gives back an empty data set (and warns, naming no file) when compressed pixel
    data ends before its delimiter: the error must name the pixel data, not the meta header."""
    import warnings

    ds = make_dataset(ramp(64, 64), bits_stored=12)
    ds.compress(RLELossless)
    path = save(ds, tmp_path / "rle.dcm")
    for cut in (-200, -1000):  # (the last few bytes hold only the delimiter: the pixels are whole)
        short = tmp_path / f"cut{-cut}.dcm"
        short.write_bytes(path.read_bytes()[:cut])
        # (entering catch_warnings resets the once-only registries)
        with warnings.catch_warnings(record=True) as caught, pytest.raises(
                TruncatedDataError, match="ends inside its compressed pixel data"):
            load(short)
        assert not [w for w in caught if "delimiter" in str(w.message)]
    # A file that really stops after its meta header still says that.
    from pydicom.filewriter import write_file_meta_info

    meta_only = tmp_path / "meta_only.dcm"
    with meta_only.open("wb") as handle:
        handle.write(b"\0" * 128 + b"DICM")
        write_file_meta_info(handle, ds.file_meta)
    with pytest.raises(TruncatedDataError, match="right after its DICOM meta header"):
        load(meta_only)


def test_zero_rows_are_absurd(tmp_path: Path) -> None:
    ds = make_dataset(ramp())
    ds.Rows = 0
    with pytest.raises(AbsurdDimensionsError):
        load(save(ds, tmp_path / "zero.dcm"))


def test_absurd_frame_count(tmp_path: Path) -> None:
    ds = make_dataset(ramp())
    ds.NumberOfFrames = 10_000_000
    with pytest.raises(AbsurdDimensionsError, match="Number of Frames"):
        load(save(ds, tmp_path / "frames.dcm"))


def test_pixel_data_declared_larger_than_the_file_is_refused_without_allocating(tmp_path: Path) -> None:
    ds = make_dataset(ramp(16, 16))
    ds.Rows, ds.Columns = 40_000, 40_000  # 3.2 GB declared
    raw = bytearray(save(ds, tmp_path / "src.dcm").read_bytes())
    offset = _pixel_data_header_offset(bytes(raw))
    struct.pack_into("<I", raw, offset + 8, 3_200_000_000)  # the element's length field too
    path = tmp_path / "liar.dcm"
    path.write_bytes(bytes(raw))
    tracemalloc.start()
    try:
        with pytest.raises(PixelDataSizeError, match="3,200.0 MB"):
            load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000, f"peak allocation {peak} bytes"


def test_unknown_photometric_interpretation_is_unsupported(tmp_path: Path) -> None:
    ds = make_dataset(ramp())
    ds.PhotometricInterpretation = "HSV"
    with pytest.raises(UnsupportedImageError, match="HSV"):
        load(save(ds, tmp_path / "hsv.dcm"))


def test_missing_bits_allocated_is_a_specific_error(tmp_path: Path) -> None:
    ds = make_dataset(ramp())
    del ds.BitsAllocated
    with pytest.raises(UnsupportedImageError, match="BitsAllocated"):
        load(save(ds, tmp_path / "nobits.dcm"))


def test_frame_out_of_range_is_an_input_error(tmp_path: Path) -> None:
    path = save(make_dataset(ramp()), tmp_path / "one.dcm")
    with pytest.raises(InputError, match="frame 3"):
        load(path, frame=2)


def test_truncated_png_is_truncated(tmp_path: Path) -> None:
    from PIL import Image

    source = tmp_path / "ok.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8)).save(source)
    cut = tmp_path / "cut.png"
    cut.write_bytes(source.read_bytes()[:2000])
    with pytest.raises(TruncatedDataError):
        load(cut)


def test_gif_is_refused_as_a_format_this_program_does_not_read(tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "anim.gif"
    Image.new("L", (8, 8), 128).save(path)
    with pytest.raises(NotDicomError):
        load(path)  # GIF is not sniffed as an image this program reads


def test_a_panicking_native_decoder_becomes_a_typed_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # pyo3 decoders (pylibjpeg-rle) raise PanicException, a BaseException, on some damaged data.
    class PanicException(BaseException):
        pass

    def panic(*args: object, **kwargs: object) -> None:
        raise PanicException("index out of bounds")

    import valvereader.io.dicom as dicom_module

    ds = make_dataset(ramp(), bits_stored=12)
    ds.compress(JPEG2000Lossless)
    path = save(ds, tmp_path / "j2k.dcm")
    monkeypatch.setattr(dicom_module, "pixel_array", panic)
    with pytest.raises(UnsupportedImageError, match="j2k.dcm"):
        load(path)


def test_a_panicking_rle_decoder_falls_back_to_pydicoms_decoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class PanicException(BaseException):
        pass

    import valvereader.io.dicom as dicom_module

    real = dicom_module.pixel_array
    plugins: list[str] = []

    def flaky(ds: object, **kwargs: object) -> object:
        plugins.append(str(kwargs.get("decoding_plugin", "")))
        if not kwargs.get("decoding_plugin"):
            raise PanicException("index out of bounds")
        return real(ds, **kwargs)

    ds = make_dataset(ramp(), bits_stored=12)
    reference = load(save(ds, tmp_path / "ref.dcm")).pixels
    ds.compress(RLELossless)
    path = save(ds, tmp_path / "rle.dcm")
    monkeypatch.setattr(dicom_module, "pixel_array", flaky)
    np.testing.assert_allclose(load(path).pixels, reference, atol=1e-6)
    assert plugins == ["", "pydicom"]
