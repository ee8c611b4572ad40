"""Training data: where labelled images come from, and how they become model input.

Four sources give the same thing, a list of :class:`Sample` (path, label, patient id, optional
box): a manifest CSV (``path,label,patient_id``), a folder per class, a Label Studio JSON
export, and the phantom ground-truth CSV. Each image goes through the same
:class:`valvereader.preprocess.Preprocess` object as at inference; the prepared arrays can be
cached once in a ``.npy`` file so that epochs do not decode PNGs again.

Crops without a patient id get one group per image (``patient_id = "image:<path>"``): a split
then cannot keep two images of one patient apart, and reports must say so.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import numpy as np
from PIL import Image

from ..errors import DatasetError
from ..geometry import Box
from ..io.sniff import IMAGE_SUFFIXES
from ..preprocess import Preprocess

NO_PATIENT_PREFIX = "image:"



def _typed_errors(reader):
    """Any malformed content a reader trips over becomes a DatasetError naming the file."""

    @functools.wraps(reader)
    def wrapper(path, *args, **kwargs):
        try:
            return reader(path, *args, **kwargs)
        except DatasetError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, OSError, csv.Error, RecursionError) as exc:
            raise DatasetError(f"cannot read {path}: malformed content ({type(exc).__name__}: {exc})") from exc

    return wrapper

@dataclass(frozen=True)
class Sample:
    """One labelled image. ``box`` (source pixels) restricts it to the valve region."""

    path: Path
    label: str
    patient_id: str
    box: Box | None = None

    @property
    def has_patient_id(self) -> bool:
        return not self.patient_id.startswith(NO_PATIENT_PREFIX)


def _image_group(path: Path) -> str:
    return f"{NO_PATIENT_PREFIX}{path}"


def _resolve(root: Path, text: str) -> Path:
    path = Path(text)
    return path if path.is_absolute() else root / path



def read_csv_rows(path: Path, what: str) -> list[dict[str, str]]:
    """Rows of a CSV file (BOM tolerated).

    Raises:
        DatasetError: the file is missing or has no rows.
    """
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError as exc:
        raise DatasetError(f"{what} not found: {path}") from exc
    if not rows:
        raise DatasetError(f"{what} {path} has no rows")
    return rows

@_typed_errors
def read_manifest(path: str | Path) -> list[Sample]:
    """Samples from a CSV with columns ``path,label`` and optionally ``patient_id``.

    Relative paths are relative to the CSV's folder.

    Raises:
        DatasetError: file missing, columns missing, or a listed image missing.
    """
    path = Path(path)
    rows = read_csv_rows(path, "manifest")
    missing = {"path", "label"} - set(rows[0])
    if missing:
        raise DatasetError(f"manifest {path} lacks column(s) {', '.join(sorted(missing))}: expected path,label[,patient_id]")
    samples = []
    for number, row in enumerate(rows, start=2):
        image = _resolve(path.parent, row["path"])
        if not image.is_file():
            raise DatasetError(f"manifest {path} line {number}: image not found: {image}")
        patient = (row.get("patient_id") or "").strip()
        samples.append(Sample(image, row["label"].strip(), patient or _image_group(image)))
    return samples


@_typed_errors
def read_class_folders(root: str | Path, labels: Sequence[str] | None = None) -> list[Sample]:
    """Samples from ``root/<label>/*.png`` (one folder per class, searched recursively).

    Args:
        labels: only these folders (default: every sub-folder holding images).

    Raises:
        DatasetError: root missing or no images found.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    folders = [root / name for name in labels] if labels else sorted(p for p in root.iterdir() if p.is_dir())
    samples = []
    for folder in folders:
        for image in sorted(folder.rglob("*")):
            if image.suffix.lower() in IMAGE_SUFFIXES and image.is_file():
                samples.append(Sample(image, folder.name, _image_group(image)))
    if not samples:
        raise DatasetError(f"no images in class folders under {root}: expected {root}/<valve id>/*.png")
    return samples


def _label_studio_image(root: Path, reference: str) -> Path:
    # Exports name images as "/data/upload/3/abc-file.png" or "...?d=folder/file.png".
    if "?d=" in reference:
        reference = unquote(reference.split("?d=", 1)[1])
    candidate = _resolve(root, reference)
    if candidate.is_file():
        return candidate
    name = Path(unquote(reference)).name
    for attempt in (root / name, root / name.split("-", 1)[-1]):
        if attempt.is_file():
            return attempt
    raise DatasetError(f"Label Studio image {reference} not found under {root}")


def _choice_and_box(annotation: dict) -> tuple[str | None, Box | None, tuple[int, int] | None]:
    label, box, size = None, None, None
    for result in annotation.get("result", []):
        value = result.get("value", {})
        if value.get("choices"):
            label = value["choices"][0]
        if value.get("rectanglelabels"):
            label = label or value["rectanglelabels"][0]
            w, h = result.get("original_width"), result.get("original_height")
            if w and h:
                # Label Studio stores rectangles in percent of the image size.
                x0, y0 = value["x"] * w / 100.0, value["y"] * h / 100.0
                box = Box(int(x0), int(y0), round(x0 + value["width"] * w / 100.0), round(y0 + value["height"] * h / 100.0))
                size = (int(h), int(w))
    return label, box, size


@_typed_errors
def read_label_studio(path: str | Path, image_root: str | Path | None = None) -> list[Sample]:
    """Samples from a Label Studio JSON export (choices or rectangle labels).

    Image references are resolved against ``image_root`` (default: the export's folder).
    The first completed annotation of each task wins; a rectangle becomes the sample's box.
    A ``patient_id`` in the task's data is used when present.

    Raises:
        DatasetError: unreadable export, or no labelled task in it.
    """
    path = Path(path)
    root = Path(image_root) if image_root else path.parent
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DatasetError(f"Label Studio export not found: {path}") from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(f"Label Studio export {path} is not JSON: {exc}") from exc
    if not isinstance(tasks, list):
        raise DatasetError(f"Label Studio export {path} must be a JSON list of tasks (export as 'JSON')")
    samples = []
    for task in tasks:
        data = task.get("data", {})
        reference = data.get("image") or next((v for v in data.values() if isinstance(v, str)), None)
        annotations = [a for a in task.get("annotations", []) if not a.get("was_cancelled")]
        if not reference or not annotations:
            continue
        label, box, _ = _choice_and_box(annotations[0])
        if label is None:
            continue
        image = _label_studio_image(root, reference)
        patient = str(data.get("patient_id") or "").strip()
        samples.append(Sample(image, label, patient or _image_group(image), box))
    if not samples:
        raise DatasetError(f"no labelled tasks in Label Studio export {path}")
    return samples


@_typed_errors
def read_phantom_truth(path: str | Path, margin: float = 1.5) -> list[Sample]:
    """Samples from the phantom ground-truth CSV (``file, patient_id, kind, valve_id, box_x0..box_y1``).

    Rows without a valve box are skipped. Each sample's box is a square around the valve,
    ``margin`` times its longer side, so the identifier sees a crop like the real ones.

    Raises:
        DatasetError: file missing or columns missing.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError as exc:
        raise DatasetError(f"phantom ground truth not found: {path}") from exc
    needed = {"file", "valve_id", "box_x0", "box_y0", "box_x1", "box_y1"}
    if rows and needed - set(rows[0]):
        raise DatasetError(f"{path} lacks column(s) {', '.join(sorted(needed - set(rows[0])))}")
    samples = []
    for row in rows:
        valve = (row.get("valve_id") or "").strip()
        coords = [row.get(k, "") for k in ("box_x0", "box_y0", "box_x1", "box_y1")]
        if not valve or any(c in ("", None) for c in coords):
            continue
        box = Box(*(round(float(c)) for c in coords)).square(margin)
        image = _resolve(path.parent, row["file"])
        patient = (row.get("patient_id") or "").strip()
        samples.append(Sample(image, valve, patient or _image_group(image), box))
    return samples


def read_samples(source: str | Path, image_root: str | Path | None = None) -> list[Sample]:
    """Samples from any supported source, chosen by what ``source`` is.

    A folder → class folders (or its ``manifest.csv`` when it has one); ``.json`` → Label
    Studio; a CSV with a ``file`` column → phantom truth; other CSV → manifest.
    """
    source = Path(source)
    if source.is_dir():
        manifest = source / "manifest.csv"
        return read_manifest(manifest) if manifest.is_file() else read_class_folders(source)
    if source.suffix.lower() == ".json":
        return read_label_studio(source, image_root)
    if source.suffix.lower() == ".csv":
        try:
            header = source.read_text(encoding="utf-8-sig").splitlines()[0].split(",")
        except (FileNotFoundError, IndexError) as exc:
            raise DatasetError(f"cannot read {source}") from exc
        return read_phantom_truth(source) if "file" in header and "path" not in header else read_manifest(source)
    raise DatasetError(f"unknown dataset source {source}: give a folder, a manifest .csv or a Label Studio .json")


def read_extra_crops(folder: str | Path) -> list[Sample]:
    """The crops of a folder given to ``valvereader train --extra-crops``: its ``manifest.csv``
    (the csf-shuntvalves format, as ``valvereader export-reviews`` writes it).

    Raises:
        DatasetError: no manifest.csv there, or one that cannot be read.
    """
    manifest = Path(folder) / "manifest.csv"
    if not manifest.is_file():
        raise DatasetError(f"--extra-crops {folder}: no manifest.csv there (path,label,... as in csf-shuntvalves, "
                           "or as written by `valvereader export-reviews`)")
    return read_manifest(manifest)


def label_indices(samples: Sequence[Sample], class_ids: Sequence[str]) -> np.ndarray:
    """Class index of each sample in ``class_ids`` order.

    Raises:
        DatasetError: a label that is not one of ``class_ids``.
    """
    index = {c: i for i, c in enumerate(class_ids)}
    unknown = sorted({s.label for s in samples} - set(index))
    if unknown:
        raise DatasetError(f"labels not in the class list: {', '.join(unknown)} (known: {', '.join(class_ids)})")
    return np.array([index[s.label] for s in samples], dtype=np.int64)


def class_counts(samples: Sequence[Sample]) -> Counter[str]:
    return Counter(s.label for s in samples)


def load_grey(path: Path) -> np.ndarray:
    """A 2-D float32 image in 0..1 from an 8- or 16-bit image file (colour becomes grey).

    Raises:
        DatasetError: the file cannot be decoded.
    """
    try:
        with Image.open(path) as image:
            if image.mode in ("I;16", "I;16B", "I;16L", "I"):
                array = np.asarray(image, dtype=np.float32)
                return np.clip(array / 65535.0, 0.0, 1.0)
            if image.mode == "F":
                return np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
            return np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot decode image {path}: {exc}") from exc


def prepare(sample: Sample, preprocess: Preprocess) -> np.ndarray:
    """The model input (size, size) float32 of one sample: exactly what inference computes."""
    return preprocess(load_grey(sample.path), sample.box).pixels


def cache_key(samples: Sequence[Sample], preprocess: Preprocess) -> str:
    digest = hashlib.sha256(json.dumps(preprocess.config(), sort_keys=True).encode())
    for s in samples:
        digest.update(f"{s.path}|{s.box}|{s.path.stat().st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def prepare_all(samples: Sequence[Sample], preprocess: Preprocess, cache_dir: Path | None = None, progress: bool = False) -> np.ndarray:
    """Model inputs of all samples, (N, size, size) float32, cached in ``cache_dir`` if given.

    The cache file is named by a hash of the paths, boxes, file times and preprocessing, so
    a change to any of them prepares again.
    """
    target = None
    if cache_dir is not None:
        target = Path(cache_dir) / f"prepared-{cache_key(samples, preprocess)}.npy"
        if target.is_file():
            return np.load(target, mmap_mode="r")
    out = np.empty((len(samples), preprocess.size, preprocess.size), dtype=np.float32)
    iterator = samples
    if progress:
        from tqdm import tqdm

        iterator = tqdm(samples, desc="preparing images", unit="img")
    for i, sample in enumerate(iterator):
        out[i] = prepare(sample, preprocess)
    if target is not None:
        _save_once(target, out)
    return out


def _save_once(target: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``target`` through a file of this process's own, then rename it.

    Several processes (the ranks of a torchrun) may prepare the same samples at once: each
    writes a uniquely named temporary file, and ``os.replace`` puts a complete file in place
    whichever finishes first or last; a shared temporary name would let one rank rename the
    file away while another is still writing or renaming it.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".partial.npy", dir=target.parent)
    partial = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, array)
        os.chmod(partial, 0o644)  # mkstemp makes it private; the cache is an ordinary file
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
