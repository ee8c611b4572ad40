"""Real valve crops placed into phantom skulls, blended in the attenuation domain."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..catalogue import VALVE_IDS
from ..errors import DatasetError
from ..geometry import Box


@dataclass(frozen=True)
class Crop:
    path: Path
    valve_id: str

    @property
    def source(self) -> str:
        return f"{self.path.parent.name}/{self.path.name}"


def find_crops(folder: Path) -> list[Crop]:
    """The crops under ``folder`` (its ``manifest.csv`` if present, else one folder per valve id).

    Raises:
        DatasetError: the folder holds no crop of a catalogue valve.
    """
    folder = Path(folder)
    crops: list[Crop] = []
    manifest = folder / "manifest.csv"
    if manifest.exists():
        with manifest.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row.get("label") in VALVE_IDS and (folder / row["path"]).exists():
                    crops.append(Crop(folder / row["path"], row["label"]))
    else:
        for valve_id in VALVE_IDS:
            for path in sorted((folder / valve_id).glob("*.png")):
                crops.append(Crop(path, valve_id))
    if not crops:
        raise DatasetError(
            f"no valve crops found in {folder}: expected manifest.csv or folders named "
            f"after the valve ids ({', '.join(VALVE_IDS[:2])}, ...)"
        )
    return sorted(crops, key=lambda c: c.source)


def load_crop(crop: Crop) -> np.ndarray:
    with Image.open(crop.path) as image:
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def place_crop(
    mu: np.ndarray,
    pixels: np.ndarray,
    centre_xy: tuple[float, float],
    side_px: float,
    angle_deg: float,
    contrast: float,
    rng: np.random.Generator,
) -> Box | None:
    """Blend ``pixels`` (a 0..1 crop) into ``mu`` in place; returns the box around the placed
    (rotated) crop rectangle, clipped to the image.

    Only the crop's detail is added (the crop minus its own large-scale background), scaled
    so that its brightest structure (the valve) stands ``contrast`` attenuation units above
    the phantom; the phantom's anatomy continues underneath. Air in the crop (black corners
    outside the head) and the crop's edges fade out.
    """
    h, w = mu.shape
    ch, cw = pixels.shape
    scale = side_px / max(ch, cw)
    new_w, new_h = max(8, round(cw * scale)), max(8, round(ch * scale))
    small = cv2.resize(
        pixels, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    )
    small = cv2.GaussianBlur(small, (0, 0), 0.7)  # its own noise would add to the simulated noise
    background = cv2.GaussianBlur(small, (0, 0), max(3.0, 0.08 * max(new_w, new_h)))
    detail = small - background
    # Keep strong structure (valve, catheter) at full strength but damp the crop's faint
    # background texture, which would otherwise show the crop as a patch.
    spread = 1.4826 * float(np.median(np.abs(detail))) + 1e-4
    strong = np.clip((np.abs(detail) - 2.0 * spread) / (4.0 * spread), 0.0, 1.0)
    detail = detail * (0.35 + 0.65 * strong)
    gain = contrast / max(float(np.percentile(detail, 99.7)), 0.03)
    feather = max(2.0, 0.15 * min(new_w, new_h))
    yy, xx = np.mgrid[0:new_h, 0:new_w].astype(np.float32)
    edge = np.minimum(
        np.minimum(xx + 0.5, new_w - xx - 0.5), np.minimum(yy + 0.5, new_h - yy - 0.5)
    )
    weight = np.clip(edge / feather, 0.0, 1.0) * np.clip((background - 0.04) / 0.08, 0.0, 1.0)
    weight = weight * weight * (3 - 2 * weight)  # smoothstep
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    offset = np.asarray(centre_xy) - rot @ np.array([new_w / 2.0, new_h / 2.0])
    matrix = np.hstack([rot, offset[:, None]]).astype(np.float64)
    added = cv2.warpAffine(
        (gain * detail * weight).astype(np.float32),
        matrix,
        (w, h),
        flags=cv2.INTER_LINEAR,
        borderValue=0.0,
    )
    mu += added
    np.maximum(mu, 0.0, out=mu)
    corners = (
        matrix[:, :2] @ np.array([[0, new_w, new_w, 0], [0, 0, new_h, new_h]], float)
        + matrix[:, 2:]
    )
    box = Box(
        int(np.floor(corners[0].min())),
        int(np.floor(corners[1].min())),
        int(np.ceil(corners[0].max())),
        int(np.ceil(corners[1].max())),
    ).clip((h, w))
    return box if box.width > 0 and box.height > 0 else None
