"""Qt-free models of what the viewer shows (napari style: widgets bind to these, never the
other way round). Each model emits ``changed`` with the name of the field that changed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from ...geometry import Box
from ...prediction import Prediction, Verdict
from ...radiograph import RadiographMeta


class Event:
    """A minimal signal: ``connect(callback)``, ``emit(*args)``. No Qt, no threads."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., Any]] = []

    def connect(self, callback: Callable[..., Any]) -> None:
        self._callbacks.append(callback)

    def emit(self, *args: Any) -> None:
        for callback in list(self._callbacks):
            callback(*args)


class _Evented:
    """Setting a public attribute emits ``changed(name)`` when the value differs."""

    changed: Event

    def __init__(self) -> None:
        object.__setattr__(self, "changed", Event())

    def __setattr__(self, name: str, value: Any) -> None:
        old = getattr(self, name, None)
        object.__setattr__(self, name, value)
        if not name.startswith("_") and old != value:
            self.changed.emit(name)


class ViewState(_Evented):
    """How the radiograph is displayed. Window centre/width are in the radiograph's display
    grey units (0 = black, 1 = white, after the file's own VOI window)."""

    ROTATIONS = (0, 90, 180, 270)

    def __init__(self) -> None:
        super().__init__()
        self.window_center = 0.5
        self.window_width = 1.0
        self.invert = False
        self.zoom: float | None = None  # None = fit to the viewport
        self.pan = (0.0, 0.0)  # viewport pixels from the centre
        self.rotation = 0  # degrees clockwise, multiples of 90
        self.flip_horizontal = False
        self.flip_vertical = False
        self.show_heatmap = True
        self.heatmap_opacity = 0.45
        self.show_box = True
        self.show_corner_text = True

    def set_window(self, center: float, width: float) -> None:
        self.window_width = float(min(max(width, 0.01), 2.0))
        self.window_center = float(min(max(center, -0.5), 1.5))

    def rotate(self, degrees: int) -> None:
        self.rotation = (self.rotation + degrees) % 360

    def reset_geometry(self) -> None:
        self.zoom = None
        self.pan = (0.0, 0.0)
        self.rotation = 0
        self.flip_horizontal = False
        self.flip_vertical = False


class DialState(_Evented):
    """The reading-aid dial laid over the zoomed valve: centre in zoom-view fractions (0..1),
    rotation in degrees clockwise, mirrored when the valve is seen through its base, and the
    indicator direction the user marked (degrees clockwise from the view's 12 o'clock)."""

    def __init__(self) -> None:
        super().__init__()
        self.visible = True
        self.center = (0.5, 0.5)
        self.rotation = 0.0
        self.mirrored = False
        self.indicator_deg: float | None = None
        self.scale = 0.7  # dial radius as a fraction of half the view side

    def relative_indicator(self) -> float | None:
        """Indicator angle in the template's canonical frame, or None when not marked."""
        if self.indicator_deg is None:
            return None
        return (self.indicator_deg - self.rotation) % 360.0

    def position(self) -> dict:
        """Where the dial stands, as the review file keeps it (review.DIAL_KEYS)."""
        return {"center": list(self.center), "rotation": self.rotation, "mirrored": self.mirrored,
                "indicator_deg": self.indicator_deg, "scale": self.scale}

    def place(self, position: dict) -> None:
        """Put the dial where ``position`` (from ``position``, checked by the review file) says."""
        self.center = (float(position["center"][0]), float(position["center"][1]))
        self.rotation = float(position["rotation"])
        self.mirrored = bool(position["mirrored"])
        self.indicator_deg = None if position["indicator_deg"] is None else float(position["indicator_deg"])
        self.scale = float(position["scale"])

    def reset(self) -> None:
        self.center = (0.5, 0.5)
        self.rotation = 0.0
        self.mirrored = False
        self.indicator_deg = None


class ReviewDecision(str, Enum):
    NONE = ""
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    CORRECTED = "corrected"

    @property
    def label(self) -> str:
        return {"": "Not reviewed", "accepted": "Accepted", "rejected": "Rejected",
                "corrected": "Corrected"}[self.value]


@dataclass(eq=False)
class Study:
    """One file of the worklist and everything learnt about it so far."""

    path: Path
    patient_id: str | None = None
    study_date: str | None = None
    modality: str | None = None
    thumbnail: np.ndarray | None = field(default=None, repr=False)  # uint8 (h, w)
    prediction: Prediction | None = field(default=None, repr=False)
    error: str | None = None
    meta: RadiographMeta | None = field(default=None, repr=False)
    decision: ReviewDecision = ReviewDecision.NONE
    corrected_valve_id: str | None = None
    reading: str | None = None  # the setting the reader chose with the dial
    dial: dict | None = None  # where the dial stood for that reading (review.DIAL_KEYS)
    # The valve region the reader chose for the model to read (image pixels), and meanwhile the
    # located result it replaces (back again with "back to the located box").
    region: Box | None = None
    located_prediction: Prediction | None = field(default=None, repr=False)

    @property
    def region_by_reader(self) -> bool:
        """The result shown read the region the reader chose, not the located box."""
        return self.prediction is not None and self.prediction.box_source == "reader"

    @property
    def analysed(self) -> bool:
        return self.prediction is not None or self.error is not None

    @property
    def verdict_label(self) -> str:
        if self.error:
            return "Error"
        if self.prediction is None:
            return "…"
        return self.prediction.verdict.label

    @property
    def needs_review(self) -> bool:
        return self.error is not None or (
            self.prediction is not None and self.prediction.verdict is not Verdict.CONFIDENT
        )


class Worklist(_Evented):
    """The batch: studies in order, the current index; ``study_changed(index)`` fires when a
    study learns something (prediction, error, decision)."""

    study_changed: Event
    reset: Event

    def __init__(self) -> None:
        super().__init__()
        self.studies: list[Study] = []
        self.current = -1
        self.folder: Path | None = None
        object.__setattr__(self, "study_changed", Event())
        object.__setattr__(self, "reset", Event())

    def replace(self, studies: list[Study], folder: Path | None) -> None:
        self.studies = studies
        self.folder = folder
        object.__setattr__(self, "current", -1)
        self.reset.emit()
        if studies:
            self.current = 0

    def update(self, index: int, **values: Any) -> None:
        study = self.studies[index]
        for key, value in values.items():
            setattr(study, key, value)
        self.study_changed.emit(index)

    def step(self, delta: int) -> None:
        if self.studies:
            self.current = min(max(self.current + delta, 0), len(self.studies) - 1)

    @property
    def current_study(self) -> Study | None:
        return self.studies[self.current] if 0 <= self.current < len(self.studies) else None
