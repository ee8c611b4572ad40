"""The locator's data: ground-truth radiographs with their valve boxes, prepared as at inference
(:class:`valvereader.preprocess.Preprocess`), augmented, turned into CenterNet targets (a
Gaussian peak at the box centre's cell of the stride-8 map, the box size near it), the loss
on them and the box metrics. Training itself is ``valvereader.training.locator``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ..geometry import Box
from ..preprocess import PreparedImage, Preprocess
from .datasets import read_csv_rows

BOX_COLUMNS = ("box_x0", "box_y0", "box_x1", "box_y1")


# --- data ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class LocatorSample:
    """One whole radiograph with its valve box (source pixels)."""

    path: Path
    box: Box | None  # None: no valve on this radiograph
    kind: str = ""
    valve_id: str = ""
    patient_id: str = ""
    source_crop: str = ""


def read_ground_truth(path: str | Path) -> list[LocatorSample]:
    """Samples from a phantom/composite ground-truth CSV; file paths relative to its folder.

    Raises:
        DatasetError: file or columns missing, or no rows.
    """
    path = Path(path)
    rows = read_csv_rows(path, "ground-truth CSV")
    missing = {"file", *BOX_COLUMNS} - set(rows[0])
    if missing:
        raise DatasetError(f"ground-truth CSV {path} lacks column(s) {', '.join(sorted(missing))}")
    samples = []
    for row in rows:
        file = Path(row["file"])
        # An empty box: a radiograph without a valve (a negative).
        box = Box(*(round(float(row[c])) for c in BOX_COLUMNS)) if all(row.get(c, "") != "" for c in BOX_COLUMNS) else None
        samples.append(
            LocatorSample(
                file if file.is_absolute() else path.parent / file,
                box,
                row.get("kind", ""),
                row.get("valve_id", ""),
                row.get("patient_id", ""),
                row.get("source_crop", ""),
            )
        )
    return samples


def box_fractions(box: Box | None, prepared: PreparedImage) -> np.ndarray:
    """``box`` (source pixels) as x0, y0, x1, y1 fractions of the prepared input, clipped to 0..1
    (NaN for no box)."""
    if box is None:
        return np.full(4, np.nan, dtype=np.float32)
    crop = prepared.crop
    values = [
        (box.x0 - crop.x0) / crop.width,
        (box.y0 - crop.y0) / crop.height,
        (box.x1 - crop.x0) / crop.width,
        (box.y1 - crop.y0) / crop.height,
    ]
    return np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0)


@dataclass
class PreparedSet:
    """Model inputs of a set of radiographs and their boxes as fractions of the input."""

    images: np.ndarray  # (N, S, S) float16 in 0..1
    boxes: np.ndarray  # (N, 4) float32 x0, y0, x1, y1 in 0..1
    files: list[str]
    kinds: list[str]

    def __len__(self) -> int:
        return len(self.files)

    def save(self, path: Path) -> None:
        np.savez(path, images=self.images, boxes=self.boxes, files=np.asarray(self.files), kinds=np.asarray(self.kinds))

    @classmethod
    def load(cls, path: Path) -> PreparedSet:
        with np.load(path) as data:
            return cls(data["images"], data["boxes"], [str(f) for f in data["files"]], [str(k) for k in data["kinds"]])


def prepare_set(samples: Sequence[LocatorSample], size: int, threshold: float = 0.02, log: Callable[[str], None] = print) -> PreparedSet:
    """Load each radiograph with the project's loader and prepare it as at inference."""
    from ..io import load

    preprocess = Preprocess(size=size, threshold=threshold, crop_border=True)
    images = np.zeros((len(samples), size, size), dtype=np.float16)
    boxes = np.zeros((len(samples), 4), dtype=np.float32)
    for i, sample in enumerate(samples):
        prepared = preprocess(load(sample.path).pixels)
        images[i] = prepared.pixels
        boxes[i] = box_fractions(sample.box, prepared)
        if (i + 1) % 200 == 0:
            log(f"prepared {i + 1}/{len(samples)}")
    return PreparedSet(images, boxes, [str(s.path) for s in samples], [s.kind for s in samples])


# --- augmentation -------------------------------------------------------------------------
def augment(image: np.ndarray, box: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random view of one prepared image: zoom into a window holding the box, mirror,
    exposure. Returns the new image (same size) and box fractions."""
    from ..preprocess import squish_resize

    size = image.shape[0]
    image = image.astype(np.float32)
    box = box.copy()
    if np.isnan(box).any():  # no valve: any window
        box = np.full(4, np.nan, dtype=np.float32)
        if rng.random() < 0.5:
            wx, wy = rng.uniform(0.6, 1.0, 2)
            c0, r0 = int(rng.uniform(0, 1 - wx) * size), int(rng.uniform(0, 1 - wy) * size)
            image = squish_resize(image[r0 : r0 + max(8, round(wy * size)), c0 : c0 + max(8, round(wx * size))], size)
        if rng.random() < 0.5:
            image = image[:, ::-1]
    elif rng.random() < 0.5:
        # Tighter collimation: a window of 60-100 % of each side that still holds the box.
        wx, wy = rng.uniform(0.6, 1.0, 2)
        wx, wy = max(wx, box[2] - box[0] + 0.02), max(wy, box[3] - box[1] + 0.02)
        x0 = rng.uniform(max(0.0, box[2] - wx), min(box[0], 1.0 - wx)) if wx < 1 else 0.0
        y0 = rng.uniform(max(0.0, box[3] - wy), min(box[1], 1.0 - wy)) if wy < 1 else 0.0
        wx, wy = min(wx, 1.0), min(wy, 1.0)
        c0, r0 = int(x0 * size), int(y0 * size)
        c1, r1 = max(c0 + 8, round((x0 + wx) * size)), max(r0 + 8, round((y0 + wy) * size))
        image = squish_resize(image[r0:r1, c0:c1], size)
        sx, sy = (c1 - c0) / size, (r1 - r0) / size
        box = np.array([(box[0] - c0 / size) / sx, (box[1] - r0 / size) / sy, (box[2] - c0 / size) / sx, (box[3] - r0 / size) / sy])
    if not np.isnan(box).any() and rng.random() < 0.5:
        image = image[:, ::-1]
        box = np.array([1.0 - box[2], box[1], 1.0 - box[0], box[3]])
    gamma = float(np.exp(rng.normal(0.0, 0.25)))
    contrast, brightness = rng.uniform(0.8, 1.2), rng.uniform(-0.08, 0.08)
    image = np.clip(image, 0.0, 1.0) ** gamma
    image = (image - 0.5) * contrast + 0.5 + brightness
    image = image + rng.normal(0.0, rng.uniform(0.0, 0.02), image.shape)
    return np.clip(image, 0.0, 1.0).astype(np.float32), np.clip(box, 0.0, 1.0).astype(np.float32)  # (NaN stays NaN)


# --- targets, loss, decoding --------------------------------------------------------------
def centre_targets(boxes: np.ndarray, grid: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CenterNet targets on a ``grid``×``grid`` map for boxes (N, 4) in fractions.

    Returns heat (N, 1, g, g) with exactly 1 at the centre cell, size (N, 2, g, g) = box
    width and height, and the size loss weight (N, 1, g, g): 1 where heat ≥ 0.5. A NaN box
    (no valve) gets an all-zero heat map and no size loss.
    """
    n = len(boxes)
    heat = np.zeros((n, 1, grid, grid), dtype=np.float32)
    size = np.zeros((n, 2, grid, grid), dtype=np.float32)
    yy, xx = np.mgrid[0:grid, 0:grid].astype(np.float32)
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        if np.isnan(x0):  # a radiograph without a valve: no peak anywhere
            continue
        cx = min(grid - 1, max(0, int((x0 + x1) / 2 * grid)))
        cy = min(grid - 1, max(0, int((y0 + y1) / 2 * grid)))
        sigma = max(0.7, min(x1 - x0, y1 - y0) * grid / 6.0)
        heat[i, 0] = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma * sigma))
        heat[i, 0, cy, cx] = 1.0
        size[i, 0], size[i, 1] = x1 - x0, y1 - y0
    weight = (heat >= 0.5).astype(np.float32)
    return heat, size, weight


def locator_loss(logits, size, heat, size_target, weight, size_weight: float = 5.0):
    """Penalty-reduced focal loss on the centre map (CenterNet) + weighted L1 on the size."""
    import torch.nn.functional as F

    positive = heat >= 1.0
    log_p, log_not_p = F.logsigmoid(logits), F.logsigmoid(-logits)
    p = log_p.exp()
    pos = -(log_p * (1 - p) ** 2)[positive].sum()
    neg = -(log_not_p * p**2 * (1 - heat) ** 4)[~positive].sum()
    focal = (pos + neg) / positive.sum().clamp(min=1)
    l1 = ((size - size_target).abs() * weight).sum() / weight.sum().clamp(min=1)
    return focal + size_weight * l1, focal.detach(), l1.detach()


def decode_fractions(heatmap: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (N, 4) as fractions of the input and peak scores (N,) from locator outputs,
    by :func:`valvereader.inference.locating.decode_locator` itself (on a 10 000-pixel frame)."""
    from ..inference.locating import decode_locator

    frame = 10_000
    prepared = PreparedImage(np.zeros((1, 1), np.float32), Box(0, 0, frame, frame), (frame, frame))
    boxes = np.full((len(heatmap), 4), np.nan, dtype=np.float64)
    scores = np.zeros(len(heatmap))
    for i in range(len(heatmap)):
        located = decode_locator({"heatmap": heatmap[i : i + 1], "size": size[i : i + 1]}, prepared, 0, 0.0)
        scores[i] = located.score
        if located.box is not None:
            boxes[i] = np.asarray(located.box.as_tuple(), dtype=np.float64) / frame
    return boxes, scores


def box_metrics(predicted: np.ndarray, truth: np.ndarray, scores: np.ndarray | None = None, min_score: float = 0.0) -> dict[str, float]:
    """How often the predicted box finds the valve. Boxes (N, 4) in any common frame; NaN = none.

    found_centre: the predicted box contains the true box's centre; found_iou03: IoU ≥ 0.3;
    centre_in_truth: the predicted centre lies inside the true box.
    """
    predicted = np.asarray(predicted, dtype=np.float64).copy()
    truth = np.asarray(truth, dtype=np.float64)
    if scores is not None:
        predicted[np.asarray(scores) < min_score] = np.nan
    valid = ~np.isnan(predicted).any(axis=1)
    tcx, tcy = (truth[:, 0] + truth[:, 2]) / 2, (truth[:, 1] + truth[:, 3]) / 2
    pcx, pcy = (predicted[:, 0] + predicted[:, 2]) / 2, (predicted[:, 1] + predicted[:, 3]) / 2
    with np.errstate(invalid="ignore"):
        contains = (predicted[:, 0] <= tcx) & (tcx <= predicted[:, 2]) & (predicted[:, 1] <= tcy) & (tcy <= predicted[:, 3])
        inside = (truth[:, 0] <= pcx) & (pcx <= truth[:, 2]) & (truth[:, 1] <= pcy) & (pcy <= truth[:, 3])
        iw = np.clip(np.minimum(predicted[:, 2], truth[:, 2]) - np.maximum(predicted[:, 0], truth[:, 0]), 0, None)
        ih = np.clip(np.minimum(predicted[:, 3], truth[:, 3]) - np.maximum(predicted[:, 1], truth[:, 1]), 0, None)
        inter = iw * ih
        union = (predicted[:, 2] - predicted[:, 0]) * (predicted[:, 3] - predicted[:, 1]) + (truth[:, 2] - truth[:, 0]) * (truth[:, 3] - truth[:, 1]) - inter
        iou = np.where(valid, inter / np.maximum(union, 1e-12), 0.0)
    n = max(1, len(truth))
    return {
        "images": len(truth),
        "found_centre": float((contains & valid).sum() / n),
        "found_iou03": float(((iou >= 0.3) & valid).sum() / n),
        "found_either": float(((contains | (iou >= 0.3)) & valid).sum() / n),
        "centre_in_truth": float((inside & valid).sum() / n),
        "mean_iou": float(iou.mean()) if len(iou) else 0.0,
        "median_iou": float(np.median(iou)) if len(iou) else 0.0,
        "no_box": float((~valid).sum() / n),
    }
