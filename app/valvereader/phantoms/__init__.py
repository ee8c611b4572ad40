"""Phantom skull radiographs with known valves, and composites of real valve crops.

Public API (import is cheap; numpy, OpenCV and pydicom load on first call):

    generate(count, out_dir, seed=0, composites_from=None, views=("lateral", "ap"),
             workers=2, size=(1024, 1280), composite_fraction=0.5, none_fraction=0.0,
             unknown_fraction=0.12) -> Path

renders ``count`` DICOM files under ``out_dir/images/`` and returns the path of
``out_dir/ground_truth.csv``. ``size`` is (rows, columns). The same seed gives the same
files and CSV, whatever the number of workers.

CSV columns (one row per file; all strings):
    file                 path relative to the CSV's folder
    patient_id           2-5 images per patient (both views, follow-up films)
    kind                 "phantom" (drawn valve) or "composite" (real crop placed in a phantom skull)
    valve_id             catalogue id, "unknown_spitz_holter" / "unknown_codman_fixed" (designs that
                         are none of the 8), or "none" (no valve; only with none_fraction > 0)
    setting              programmable phantom valves: mmH2O (Codman Hakim, Sophy), position 1-8
                         (Certas Plus), cmH2O (proGAV), performance level (Strata); empty for fixed
                         valves and for composites (the crop's setting is not known)
    box_x0..box_y1       valve's radiopaque parts (phantom) or the placed crop (composite), pixel
                         coordinates of the saved image, end-exclusive, clipped to the exposed
                         field; empty when no valve is visible
    view                 "lateral" or "ap"
    rotation_deg         in-plane rotation of the valve's inlet from image-up, clockwise (composite:
                         rotation of the crop)
    tilt_deg, mirrored   3-D pose of a phantom valve (tilt 0-50 deg; mirrored 1 = seen through its base)
    magnification        phantom: geometric magnification 1.0-1.3; composite: crop resize factor
    position             parietal | occipital | frontal | edge (the field's edge cuts through the valve)
    source_crop          composite: crop path relative to the crop folder, e.g. integra_dp/dp_3.png
    indicator_angle_deg  the setting's indicator angle in the canonical view (facts file), clockwise
                         from the inlet; the image shows it turned by rotation_deg (reversed if mirrored)
    photometric, bits_stored, transfer_syntax, modality, pixel_spacing_mm, distractors

Command line: ``valvereader phantoms --count N --out DIR --seed S [--composites-from DIR]``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .composite import Crop


def generate(
    count: int,
    out_dir: str | os.PathLike[str],
    seed: int = 0,
    composites_from: str | os.PathLike[str] | Sequence[Crop] | None = None,
    views: Sequence[str] = ("lateral", "ap"),
    workers: int = 2,
    size: tuple[int, int] = (1024, 1280),
    composite_fraction: float = 0.5,
    none_fraction: float = 0.0,
    unknown_fraction: float = 0.12,
) -> Path:
    """Render ``count`` phantom/composite radiographs; returns the ground-truth CSV path.

    ``unknown_fraction``: the share of drawn (not composite) valves that are one of the
    non-catalogue designs (1.0: only those, a stand-in set for valve types the identifier never saw).

    Raises:
        DatasetError: ``composites_from`` (a crop folder, or the crops themselves) holds no valve crops.
        ValueError: an unknown view or a count below 1.
    """
    from .dataset import generate as _generate

    return _generate(
        count,
        out_dir,
        seed,
        composites_from,
        views,
        workers,
        size,
        composite_fraction,
        none_fraction,
        unknown_fraction,
    )


__all__ = ["generate"]
