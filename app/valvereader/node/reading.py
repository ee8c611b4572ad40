"""What the node does with one received file: classify it, write its row, its SR and its
Secondary Capture. Runs in the node's worker thread, never on an association's thread.

Rows have ``classify``'s columns plus ``NODE_COLUMNS``. Status "ok" (classified), "error" (the
file could not be read or classified: the reason is in "error") or "skipped" (not an image:
stored only). A row is written after the SR, so a row means the file is done.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import DISCLAIMER, atomic
from ..inference.classify import columns, prediction_row
from ..report.content import PROGRAM

log = logging.getLogger(__name__)

NODE_COLUMNS = ["study_instance_uid", "series_instance_uid", "sop_instance_uid", "calling_aet"]
RESULTS_NAME = "results.csv"
SC_SERIES_DESCRIPTION = "Shunt Valve Reader key image, NOT FOR DIAGNOSIS"


def node_columns(valve_ids) -> list[str]:
    return columns(valve_ids) + NODE_COLUMNS


@dataclass(frozen=True)
class Received:
    """A stored file waiting to be read, and who sent it."""

    path: Path
    calling_aet: str = ""


class Results:
    """``OUT/results.csv``: one row per received file, flushed and fsynced as it is written.
    An existing file is continued under its own header (a torn last line is cut first)."""

    def __init__(self, path: Path, fieldnames: list[str]):
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size > 0:
            _drop_torn_tail(path)
            with open(path, newline="", encoding="utf-8") as handle:
                fieldnames = next(csv.reader(handle), []) or fieldnames
            self._new = False
        else:
            self._new = True
        self.fieldnames = fieldnames

    def done_names(self) -> set[str]:
        """File names (``<SOP Instance UID>.dcm``) that already have a row."""
        if not self.path.exists():
            return set()
        with self._lock, open(self.path, newline="", encoding="utf-8") as handle:
            return {Path(row.get("path") or "").name for row in csv.DictReader(handle)}

    def append(self, row: dict[str, object]) -> None:
        with self._lock, open(self.path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.fieldnames, extrasaction="ignore")
            if self._new:
                writer.writeheader()
                self._new = False
            writer.writerow(row)
            handle.flush()
            os.fsync(handle.fileno())


def _drop_torn_tail(path: Path) -> None:
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)


def _header(path: Path) -> Any | None:
    from pydicom import dcmread

    try:
        return dcmread(path, stop_before_pixels=True)
    except Exception:  # noqa: BLE001 - a broken header is reported in the row, not raised
        return None


def _identifiers(path: Path, header: Any | None) -> dict[str, str]:
    def get(keyword: str) -> str:
        return str(header.get(keyword, "") or "") if header is not None else ""

    return {
        "study_instance_uid": get("StudyInstanceUID"),
        "series_instance_uid": get("SeriesInstanceUID"),
        # The file is named by the SOP Instance UID of the C-STORE request.
        "sop_instance_uid": get("SOPInstanceUID") or path.stem,
    }


def _is_image(header: Any | None) -> bool:
    """Whether the object carries a picture (headers read up to the pixel data say so by
    their image attributes: Rows, Columns)."""
    return header is not None and "Rows" in header and "Columns" in header


def read_one(item: Received, predictor: Any, algorithm: Any, out: Path, with_sc: bool = False,
             kept: Any | None = None) -> tuple[dict[str, object], list[Path]]:
    """Classify ``item.path`` and write its SR (and Secondary Capture): the row and the files
    to send. Never raises for anything the file or the model does; the row says what failed.

    ``kept``: a ``review.ResultCache`` of OUT/ where the prediction is kept too, so that the
    window opening OUT/ shows it without reading the film again."""
    from ..errors import InputError, NonImageObjectError, NoPixelDataError, ValveReaderError
    from ..io import load
    from ..logs import remember_identifiers

    path = item.path
    header = _header(path)
    extra = {**_identifiers(path, header), "calling_aet": item.calling_aet}

    def failed(status: str, message: str) -> tuple[dict[str, object], list[Path]]:
        return {"path": str(path), "status": status, "error": message, **extra}, []

    if header is not None and not _is_image(header):
        return failed("skipped", f"not an image ({_sop_class_name(header)}): stored, not classified")
    if header is not None and str(header.get("Manufacturer", "")) == PROGRAM:
        # Our own key image, routed back by PACS: reading it would send a result of a result.
        return failed("skipped", f"a {PROGRAM} result ({_sop_class_name(header)}): stored, not classified")
    try:
        radiograph = load(path)
        remember_identifiers(radiograph.meta)
        prediction = predictor.predict(radiograph, with_heatmap=False)
    except (NonImageObjectError, NoPixelDataError) as exc:
        return failed("skipped", f"not an image: {exc}")
    except InputError as exc:
        return failed("error", str(exc))
    except ValveReaderError as exc:
        return failed("error", f"{type(exc).__name__}: {exc}")
    except MemoryError:
        return failed("error", "out of memory while reading this file")
    except Exception as exc:  # one broken file must never stop the node
        log.exception("classifying %s failed", path.name)
        return failed("error", f"unexpected {type(exc).__name__}: {exc}")

    row: dict[str, object] = {**prediction_row(path, prediction), **extra}
    outgoing: list[Path] = []
    problems = []
    if kept is not None:
        try:
            kept.put(path, prediction, str(getattr(predictor, "weights_key", "") or ""),  # as the window keeps its own
                     thumbnail=worklist_thumbnail(radiograph.pixels), **kept_attention(prediction))
        except (OSError, ValueError) as exc:  # the window then reads the film itself
            log.warning("result for %s not kept for the window: %s", path.name, exc)
    try:
        outgoing.append(write_sr(header, prediction, algorithm, out))
    except Exception as exc:  # the row keeps the result; the SR's failure is noted
        log.exception("no structured report for %s", path.name)
        problems.append(f"structured report not written: {type(exc).__name__}: {exc}")
    if with_sc:
        try:
            outgoing.append(write_sc(radiograph, prediction, predictor, path, out))
        except Exception as exc:
            log.exception("no secondary capture for %s", path.name)
            problems.append(f"secondary capture not written: {type(exc).__name__}: {exc}")
    row["error"] = "; ".join(problems)
    return row, outgoing


THUMBNAIL_SIDE = 64  # the window's worklist thumbnails: grey PNG, longer side 64 px


def worklist_thumbnail(pixels: Any) -> str:
    """The worklist's thumbnail of the film (base64 PNG, as the window keeps its own)."""
    import base64

    import numpy as np
    from PIL import Image

    step = max(1, int(np.ceil(max(pixels.shape) / THUMBNAIL_SIDE)))
    small = np.ascontiguousarray(np.clip(np.rint(pixels[::step, ::step] * 255.0), 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    Image.fromarray(small, "L").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def kept_attention(prediction: Any) -> dict[str, Any]:
    """The model-attention map as the window keeps it (its cells, the image region they cover,
    the image's shape), so that the window draws the overlay on the node's results too;
    empty when the prediction has none."""
    import numpy as np

    attention, region, shape = prediction.attention, prediction.attention_region, prediction.image_shape
    if attention is None or region is None or shape is None or np.asarray(attention).ndim != 2:
        return {}
    return {
        "attention": np.round(np.clip(np.asarray(attention, dtype=np.float64), 0, 1), 3).tolist(),
        "attention_region": [int(v) for v in region.as_tuple()],
        "image_shape": [int(shape[0]), int(shape[1])],
    }


def _sop_class_name(header: Any) -> str:
    uid = header.get("SOPClassUID")
    return getattr(uid, "name", "") or str(uid or "unknown SOP class")


def write_sr(header: Any, prediction: Any, algorithm: Any, out: Path) -> Path:
    """OUT/sr/<SR SOP Instance UID>.dcm, atomically."""
    from .sr import build_sr, sr_bytes

    if header is None:
        raise ValueError("the image's header cannot be read")
    sr = build_sr(header, prediction, algorithm)
    return atomic.write_bytes(out / "sr" / f"{sr.SOPInstanceUID}.dcm", sr_bytes(sr))


def key_image_rgb(pixels: Any, prediction: Any) -> Any:
    """The image in grey with the valve's box drawn in green (uint8 RGB)."""
    import numpy as np

    grey = (np.clip(pixels, 0, 1) * 255).astype(np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    box = prediction.box
    if box is not None and prediction.named:
        width = max(2, rgb.shape[1] // 400)
        x0, y0, x1, y1 = box.as_tuple()
        x0, x1 = sorted((int(np.clip(x0, 0, rgb.shape[1] - 1)), int(np.clip(x1, 0, rgb.shape[1] - 1))))
        y0, y1 = sorted((int(np.clip(y0, 0, rgb.shape[0] - 1)), int(np.clip(y1, 0, rgb.shape[0] - 1))))
        green = np.array([0, 255, 0], dtype=np.uint8)
        rgb[y0:y0 + width, x0:x1 + 1] = green
        rgb[max(y1 - width + 1, 0):y1 + 1, x0:x1 + 1] = green
        rgb[y0:y1 + 1, x0:x0 + width] = green
        rgb[y0:y1 + 1, max(x1 - width + 1, 0):x1 + 1] = green
    return rgb


def write_sc(radiograph: Any, prediction: Any, predictor: Any, source: Path, out: Path) -> Path:
    """OUT/sc/<SOP Instance UID>.dcm: the image with the box and the result burned in, in the
    source's study, marked not for diagnosis (report.dicom_sc makes it)."""
    from ..report.content import ReportContent
    from ..report.dicom_sc import build_secondary_capture

    content = ReportContent(view_rgb=key_image_rgb(radiograph.pixels, prediction), prediction=prediction,
                            meta=radiograph.meta, model_name=predictor.model_name, deidentify=False,
                            heatmap_shown=False)
    sc = build_secondary_capture(content, source)
    sc.SeriesDescription = SC_SERIES_DESCRIPTION
    sc.DerivationDescription = (f"Key image of the Shunt Valve Reader's result, NOT FOR DIAGNOSIS; {DISCLAIMER}")[:1024]
    buffer = io.BytesIO()
    sc.save_as(buffer, enforce_file_format=True)
    return atomic.write_bytes(out / "sc" / f"{sc.SOPInstanceUID}.dcm", buffer.getvalue())
