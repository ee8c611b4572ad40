"""Synthetic skull radiographs and a fake predictor for the viewer tests (imported by name:
a module called ``conftest`` would be ambiguous beside the other test folders' conftests)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
from PIL import Image

from valvereader.catalogue import VALVE_IDS
from valvereader.geometry import Box
from valvereader.prediction import Prediction, VerdictThresholds


def skull_image(size: tuple[int, int] = (400, 320), valve_at: tuple[int, int] = (220, 120), seed: int = 0) -> np.ndarray:
    """A grey skull-like ellipse with a bright round 'valve' at (x, y)."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    ellipse = ((xx - w / 2) / (w * 0.42)) ** 2 + ((yy - h / 2) / (h * 0.45)) ** 2
    image = np.where(ellipse < 1, 0.35, 0.02) + np.where(np.abs(ellipse - 0.95) < 0.05, 0.4, 0)
    vx, vy = valve_at
    image = image + 0.5 * (((xx - vx) ** 2 + (yy - vy) ** 2) < 14 ** 2)
    image = image + rng.normal(0, 0.02, size)
    return np.clip(image, 0, 1).astype(np.float32)


def write_png(path: Path, pixels: np.ndarray) -> Path:
    Image.fromarray(np.rint(pixels * 255).astype(np.uint8)).save(path)
    return path


class FakePredictor:
    """Predicts from the file's brightness: a deterministic result per image, a heatmap and a box
    around the brightest blob. ``fail_on`` names files whose prediction raises."""

    model_name = "fake-model 0.0"
    card: ClassVar[dict[str, str]] = {"name": "fake-model", "version": "0.0", "license": "test only"}
    valve_ids = VALVE_IDS

    def __init__(self, fail_on: tuple[str, ...] = (), confidences: dict[str, float] | None = None):
        self.fail_on = fail_on
        self.confidences = confidences or {}
        self.calls: list[str] = []

    def predict(self, radiograph, with_heatmap: bool = True, region: Box | None = None, **_options) -> Prediction:
        """A ``region`` (the reader's) is read instead of the brightest blob: its box is the
        region, the valve named is VALVE_IDS[3] and ``box_source`` is "reader"."""
        name = Path(radiograph.meta.source).name
        self.calls.append(name if region is None else f"{name} {region.as_tuple()}")
        if any(part in name for part in self.fail_on):
            raise RuntimeError(f"model exploded on {name}")
        confidence = self.confidences.get(name, 0.95)
        p = np.full(len(VALVE_IDS), (1 - confidence) / (len(VALVE_IDS) - 1), dtype=np.float32)
        p[1 if region is None else 3] = confidence
        pixels = radiograph.pixels
        y, x = np.unravel_index(np.argmax(pixels), pixels.shape)
        if region is not None:
            if region.clip(pixels.shape).width <= 0:
                raise ValueError(f"the region {region.as_tuple()} lies outside the image")
            x, y = (int(c) for c in region.center)
        yy, xx = np.mgrid[0 : pixels.shape[0], 0 : pixels.shape[1]]
        heatmap = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 30.0**2)).astype(np.float32)
        verdict, reason = VerdictThresholds().decide(confidence, None)
        box = region if region is not None else Box(int(x) - 20, int(y) - 20, int(x) + 20, int(y) + 20)
        return Prediction(VALVE_IDS, p, verdict, None, box,
                          heatmap if with_heatmap else None, model=self.model_name,
                          pipeline="locate+identify" if region is None else "reader region",
                          verdict_reason=reason, box_source="located" if region is None else "reader")
