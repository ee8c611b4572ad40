"""Render one planned image: skull, valve or crop, tubing, clutter, exposure, DICOM."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..geometry import Box
from . import clutter, skull
from .canvas import Canvas, fractal_noise
from .composite import Crop, load_crop, place_crop
from .designs import build_design
from .dicom_out import DicomSpec, write_dicom
from .facts import indicator_angle
from .formation import Exposure, expose
from .valve import Pose, add_patch, render_valve

SKULL_MAGNIFICATION = 1.1


@dataclass(frozen=True)
class Job:
    """Everything needed to render one image, decided up front so that output is deterministic."""

    index: int
    seed: int
    patient_index: int
    patient_id: str
    kind: str  # phantom | composite
    valve_id: str  # catalogue id, unknown_* design, or "none"
    setting: str  # "" for fixed valves and none
    view: str  # lateral | ap
    position: str  # parietal | occipital | frontal; "edge" when the field edge cuts through it
    crop: Crop | None
    file: str  # relative to the output folder
    shape: tuple[int, int]
    spec: DicomSpec


@dataclass
class Truth:
    box: Box | None
    pose: Pose | None
    indicator_deg: float | None
    distractors: list[str]
    crop_scale: float | None = None
    crop_angle: float | None = None
    field: Box | None = None  # the exposed (not collimated) rectangle
    attenuation: np.ndarray | None = None  # only when render(..., keep_attenuation=True)


def _tube(mu: np.ndarray, points: np.ndarray, width_px: float, px_per_mm: float) -> None:
    """Barium silicone catheter with its denser radiopaque stripe."""
    pts = np.round(points * 16).astype(np.int32)
    layer = np.zeros(mu.shape, np.uint8)
    cv2.polylines(layer, [pts], False, 255, max(1, round(width_px)), cv2.LINE_AA, shift=4)
    mu += layer.astype(np.float32) * np.float32(0.12 / 255)
    layer[:] = 0
    cv2.polylines(layer, [pts], False, 255, max(1, round(0.25 * width_px)), cv2.LINE_AA, shift=4)
    mu += layer.astype(np.float32) * np.float32(0.3 / 255)


def _bezier(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, n: int = 40) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def _catheters(
    mu: np.ndarray,
    inlet: tuple[float, float],
    outlet: tuple[float, float],
    hub: tuple[float, float],
    ventricle: np.ndarray,
    route: np.ndarray,
    neck: np.ndarray,
    px_per_mm: float,
    rng: np.random.Generator,
) -> None:
    """Ventricular catheter from the inlet into the head; distal catheter from the outlet past
    ``route`` (behind the ear) down to ``neck``."""
    inlet_v, outlet_v = np.asarray(inlet), np.asarray(outlet)
    up = inlet_v - np.asarray(hub)
    up /= np.linalg.norm(up) + 1e-9
    down = outlet_v - np.asarray(hub)
    down /= np.linalg.norm(down) + 1e-9
    proximal = _bezier(inlet_v, inlet_v + up * rng.uniform(10, 25) * px_per_mm, ventricle)
    # The burr hole the ventricular catheter passes through: a round gap in the bone.
    hole = proximal[int(rng.integers(3, 10))]
    radius = rng.uniform(5.5, 7.5) * px_per_mm
    layer = np.zeros(mu.shape, np.uint8)
    cv2.circle(
        layer,
        (int(hole[0] * 16), int(hole[1] * 16)),
        int(radius * 16),
        255,
        -1,
        cv2.LINE_AA,
        shift=4,
    )
    mu -= cv2.GaussianBlur(layer, (0, 0), 0.4 * px_per_mm).astype(np.float32) * np.float32(
        rng.uniform(0.15, 0.3) / 255
    )
    np.maximum(mu, 0.0, out=mu)
    start = _bezier(outlet_v, outlet_v + down * rng.uniform(15, 30) * px_per_mm, route, 30)
    distal = np.vstack(
        [
            start,
            _bezier(
                route, route + (neck - route) * 0.3 + rng.normal(0, 8, 2) * px_per_mm, neck, 30
            ),
        ]
    )
    width = rng.uniform(2.2, 3.0) * px_per_mm
    _tube(mu, proximal, width, px_per_mm)
    _tube(mu, distal, width, px_per_mm)


def _edge_field(
    field: Box, site: tuple[float, float], reach_px: float, rng: np.random.Generator
) -> Box:
    """Move the nearest field edge so that it cuts through the valve at ``site``."""
    x, y = site
    distances = {"x0": x - field.x0, "y0": y - field.y0, "x1": field.x1 - x, "y1": field.y1 - y}
    edge = min(distances, key=distances.get)  # type: ignore[arg-type]
    offset = rng.uniform(-0.3, 0.6) * reach_px
    values = {"x0": field.x0, "y0": field.y0, "x1": field.x1, "y1": field.y1}
    if edge in ("x0", "y0"):
        values[edge] = int(max(0, (x if edge == "x0" else y) - offset))
    else:
        values[edge] = int((x if edge == "x1" else y) + offset)
    return Box(**values).clip((10**6, 10**6))


def render(
    job: Job, out_dir: Path, draw_valve: bool = True, keep_attenuation: bool = False
) -> Truth:
    """Render ``job`` into ``out_dir / job.file`` and return its ground truth.

    ``draw_valve=False`` leaves the valve out but draws everything else identically (tests use
    it to see exactly which pixels the valve changed); ``keep_attenuation`` returns the
    attenuation map before exposure in ``Truth.attenuation``.
    """
    rng = np.random.default_rng([job.seed, job.index, 1])
    anatomy_rng = np.random.default_rng(
        [job.seed, job.patient_index, 2, 0 if job.view == "lateral" else 1]
    )
    valve_rng = np.random.default_rng([job.seed, job.patient_index, 3])
    h, w = job.shape
    spacing = job.spec.pixel_spacing_mm
    px_per_mm = 1.0 / spacing
    head_ppm = SKULL_MAGNIFICATION * px_per_mm
    flip = bool(rng.random() < 0.5)
    # Vertex a little below the top edge; lateral heads sit back so that the face fits.
    back = (-1.0 if flip else 1.0) * 14.0 * head_ppm if job.view == "lateral" else 0.0
    centre = (
        w * 0.5 - back + rng.uniform(-0.06, 0.06) * w,
        h * rng.uniform(0.0, 0.1) + 80.0 * head_ppm,
    )
    # Anatomy at half resolution (4x faster); the detector blur hides the difference.
    canvas = Canvas(
        (h // 2, w // 2), head_ppm / 2, (centre[0] / 2, centre[1] / 2), rng.normal(0, 7), flip
    )
    anatomy = (
        skull.lateral(canvas, anatomy_rng)
        if job.view == "lateral"
        else skull.anteroposterior(canvas, anatomy_rng)
    )
    found = clutter.distractors(canvas, anatomy, job.view, rng)
    mu = np.asarray(cv2.resize(canvas.mu, (w, h), interpolation=cv2.INTER_LINEAR), dtype=np.float32)
    # Fine anatomical mottle (trabecular bone, overlapping tissue) that the half-resolution
    # anatomy cannot carry: a few per cent of the local attenuation.
    mottle = fractal_noise((h, w), rng, rng.uniform(0.8, 1.6) * px_per_mm, octaves=2)
    mu *= 1.0 + np.float32(rng.uniform(0.01, 0.03)) * mottle
    base_site = (
        job.position
        if job.position != "edge"
        else str(valve_rng.choice(["parietal", "occipital", "frontal"]))
    )
    site = tuple(
        2.0 * canvas.to_px([anatomy.sites[base_site]])[0] + rng.normal(0, 3, 2) * px_per_mm
    )
    field = clutter.collimation_field((h, w), rng)
    truth = Truth(None, None, None, found)
    reach = 12.0 * px_per_mm

    if job.kind == "phantom" and job.valve_id != "none":
        design = build_design(job.valve_id, valve_rng)
        angle = indicator_angle(job.valve_id, job.setting) if job.setting else None
        ear_x, ear_y = anatomy.ear
        # AP: the catheter runs down the valve's side of the head (in the head's own frame).
        side = (1.0 if site[0] >= centre[0] else -1.0) * (-1.0 if flip else 1.0)
        if job.view == "lateral":
            points = [
                (15.0 + rng.normal(0, 8), rng.normal(0, 8)),
                (ear_x - 25, ear_y - 5),
                (ear_x - 30, 260.0),
            ]
        else:
            points = [
                (rng.normal(0, 15), rng.normal(0, 8)),
                (side * (anatomy.vault[0] + 3), ear_y - 10),
                (side * 45.0, 260.0),
            ]
        ventricle, route, neck = 2.0 * canvas.to_px(points)
        # Surgeons point the outlet along the distal catheter's course (behind the ear,
        # down the neck): the drawn outlet (canonical +y) is turned toward the route.
        dx, dy = (route if np.hypot(*(route - site)) > 40 * px_per_mm else neck) - np.asarray(site)
        toward = float(np.degrees(np.arctan2(-dx, dy)))
        pose = Pose(
            rotation_deg=float(toward + valve_rng.normal(0, 20) + rng.normal(0, 6)),
            tilt_deg=float(rng.uniform(0, 50)),
            tilt_axis_deg=float(rng.uniform(0, 180)),
            mirrored=bool(valve_rng.random() < 0.5),
            magnification=float(rng.uniform(1.0, 1.3)),
        )
        layer = render_valve(design, angle, pose, px_per_mm, site)
        reach = design.extent() * px_per_mm * pose.magnification * 0.6
        if draw_valve:
            add_patch(mu, layer.attenuation, layer.x0, layer.y0)
        _catheters(
            mu,
            layer.inlet_xy,
            layer.outlet_xy,
            layer.hub_xy,
            ventricle,
            route,
            neck,
            px_per_mm,
            rng,
        )
        truth.box, truth.pose, truth.indicator_deg = layer.box(), pose, angle
    elif job.kind == "composite" and job.crop is not None:
        pixels = load_crop(job.crop)
        # Crops look near native resolution (a valve ~100 px): keep their scale, within limits.
        native = max(pixels.shape) * rng.uniform(0.55, 1.1) * min(h, w) / 1024.0
        side = float(np.clip(native, 0.1 * min(h, w), 0.45 * min(h, w)))
        angle_deg = float(rng.normal(0, 25))
        contrast = float(rng.uniform(1.0, 2.4))
        if draw_valve:
            truth.box = place_crop(mu, pixels, site, side, angle_deg, contrast, rng)
        truth.crop_scale, truth.crop_angle = side / max(pixels.shape), angle_deg
        reach = side * 0.35
    if job.position == "edge":
        field = _edge_field(field, site, reach, rng).clip((h, w))
    clutter.lead_marker(mu, field, "L" if rng.random() < 0.5 else "R", px_per_mm, rng)
    truth.field = field
    if keep_attenuation:
        truth.attenuation = mu.copy()
    display = expose(mu, Exposure.random(rng), px_per_mm, rng)
    clutter.collimate(display, field, rng)
    if rng.random() < 0.8:
        lines = [
            job.view.upper() if rng.random() < 0.5 else ("LAT" if job.view == "lateral" else "AP"),
            job.spec.study_date[:4]
            + "-"
            + job.spec.study_date[4:6]
            + "-"
            + job.spec.study_date[6:],
            f"{job.spec.kvp:.0f} kV  {job.spec.mas:.1f} mAs",
            job.spec.patient_id,
        ]
        clutter.burn_text(display, field, lines, rng)
    if truth.box is not None:
        clipped = Box(
            max(truth.box.x0, field.x0),
            max(truth.box.y0, field.y0),
            min(truth.box.x1, field.x1),
            min(truth.box.y1, field.y1),
        )
        truth.box = clipped if clipped.width > 0 and clipped.height > 0 else None
    path = out_dir / job.file
    path.parent.mkdir(parents=True, exist_ok=True)
    write_dicom(path, display, job.spec)
    return truth
