"""Plan a data set of phantom and composite radiographs, render it in parallel, write the CSV."""

from __future__ import annotations

import csv
import multiprocessing as mp
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..catalogue import VALVE_IDS
from .composite import Crop, find_crops
from .dicom_out import DicomSpec
from .facts import UNKNOWN_DESIGNS, settings_of
from .render import Job, Truth, render

CSV_NAME = "ground_truth.csv"
COLUMNS = (
    "file",
    "patient_id",
    "kind",
    "valve_id",
    "setting",
    "box_x0",
    "box_y0",
    "box_x1",
    "box_y1",
    "view",
    "rotation_deg",
    "tilt_deg",
    "mirrored",
    "magnification",
    "position",
    "source_crop",
    "indicator_angle_deg",
    "photometric",
    "bits_stored",
    "transfer_syntax",
    "modality",
    "pixel_spacing_mm",
    "distractors",
)
VIEWS = ("lateral", "ap")
POSITIONS = ("parietal", "occipital", "frontal")


def _spec(
    rng: np.random.Generator,
    patient_id: str,
    patient: dict,
    instance: int,
    view: str,
    shape: tuple[int, int],
) -> DicomSpec:
    syntax = str(rng.choice(["explicit", "rle", "jpeg2000"], p=[0.35, 0.35, 0.30]))
    bits = int(rng.choice([8, 10, 12, 14, 16], p=[0.15, 0.2, 0.35, 0.2, 0.1]))
    # A 24x30 cm (or larger) field over 1280 px, as a downsampled CR/DX; scaled for other sizes.
    # One film in five is coned in: the head fills the field and runs off its edges.
    zoomed = rng.random() < 0.2
    spacing = float(rng.uniform(0.16, 0.23) if zoomed else rng.uniform(0.23, 0.33)) * 1280.0 / max(shape)
    return DicomSpec(
        patient_id=patient_id,
        patient_name=patient["name"],
        patient_sex=patient["sex"],
        birth_date=patient["birth"],
        study_date=patient["dates"][min(instance - 1, 2) // 2],
        study_seed=f"{patient['seed']}-{instance // 3}",
        instance=instance,
        view=view,
        modality=str(rng.choice(["DX", "CR"], p=[0.6, 0.4])),
        photometric="MONOCHROME1" if rng.random() < 0.3 else "MONOCHROME2",
        bits_stored=bits,
        syntax=syntax,
        pixel_spacing_mm=round(spacing, 4),
        kvp=float(rng.choice([60, 63, 66, 70, 73, 77, 81])),
        mas=float(rng.uniform(4, 25)),
    )


def plan(
    count: int,
    seed: int,
    crops: Sequence[Crop] = (),
    views: Sequence[str] = VIEWS,
    shape: tuple[int, int] = (1024, 1280),
    composite_fraction: float = 0.5,
    unknown_fraction: float = 0.12,
    none_fraction: float = 0.0,
) -> list[Job]:
    """Decide every image: patients with 2-5 images each, valve, setting, view, format.

    Each crop goes to one patient (crops are reused, by further patients, only when ``count``
    needs more composites than there are crops), so patient-grouped splits do not leak crops.
    """
    for view in views:
        if view not in VIEWS:
            raise ValueError(f"unknown view '{view}': use {' or '.join(VIEWS)}")
    rng = np.random.default_rng([seed, 0])
    crop_order = list(rng.permutation(len(crops))) if crops else []
    next_crop = 0
    jobs: list[Job] = []
    patient_index = 0
    while len(jobs) < count:
        patient_index += 1
        patient_id = f"PH{seed % 10000:04d}{patient_index:05d}"
        year = int(rng.integers(1935, 2020))
        patient = {
            "name": f"PHANTOM^{patient_index:05d}",
            "sex": str(rng.choice(["F", "M"])),
            "birth": f"{year}{int(rng.integers(1, 13)):02d}{int(rng.integers(1, 29)):02d}",
            "seed": f"{seed}-{patient_index}",
            "dates": [
                f"{int(rng.integers(2008, 2025))}{m:02d}{int(rng.integers(1, 29)):02d}"
                for m in sorted(rng.integers(1, 13, 2))
            ],
        }
        n_images = min(int(rng.integers(2, 6)), count - len(jobs))
        crop: Crop | None = None
        draw = rng.random()
        if crops and draw < composite_fraction:
            kind = "composite"
            crop = crops[crop_order[next_crop % len(crop_order)]]
            next_crop += 1
            valve_id = crop.valve_id
        elif (
            draw < composite_fraction + (1 - composite_fraction) * none_fraction
            and none_fraction > 0
        ):
            kind, valve_id = "phantom", "none"
        else:
            kind = "phantom"
            if rng.random() < unknown_fraction:
                valve_id = str(rng.choice(UNKNOWN_DESIGNS))
            else:
                valve_id = str(rng.choice(VALVE_IDS))
        position = str(rng.choice(POSITIONS, p=[0.5, 0.3, 0.2]))
        settings = settings_of(valve_id) if kind == "phantom" else ()
        setting = str(rng.choice(settings)) if settings else ""
        first_view = int(rng.integers(len(views)))
        for k in range(n_images):
            view = views[(first_view + k) % len(views)]
            if settings and k > 0 and rng.random() < 0.4:
                setting = str(rng.choice(settings))  # re-programmed between films
            index = len(jobs)
            spec = _spec(rng, patient_id, patient, k + 1, view, shape)
            place = "edge" if rng.random() < 0.12 else position
            jobs.append(
                Job(
                    index=index,
                    seed=seed,
                    patient_index=patient_index,
                    patient_id=patient_id,
                    kind=kind,
                    valve_id=valve_id,
                    setting=setting,
                    view=view,
                    position=place,
                    crop=crop,
                    file=f"images/{patient_id}_{k + 1:02d}_{view}.dcm",
                    shape=shape,
                    spec=spec,
                )
            )
    return jobs


def _fmt(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def row(job: Job, truth: Truth) -> dict[str, str]:
    box = truth.box
    pose = truth.pose
    return {
        "file": job.file,
        "patient_id": job.patient_id,
        "kind": job.kind,
        "valve_id": job.valve_id,
        "setting": job.setting,
        "box_x0": str(box.x0) if box else "",
        "box_y0": str(box.y0) if box else "",
        "box_x1": str(box.x1) if box else "",
        "box_y1": str(box.y1) if box else "",
        "view": job.view,
        "rotation_deg": _fmt(pose.rotation_deg if pose else truth.crop_angle, 1),
        "tilt_deg": _fmt(pose.tilt_deg if pose else None, 1),
        "mirrored": ("1" if pose.mirrored else "0") if pose else "",
        "magnification": _fmt(pose.magnification if pose else truth.crop_scale, 3),
        "position": job.position,
        "source_crop": job.crop.source if job.crop else "",
        "indicator_angle_deg": _fmt(truth.indicator_deg, 1),
        "photometric": job.spec.photometric,
        "bits_stored": str(job.spec.bits_stored),
        "transfer_syntax": job.spec.syntax,
        "modality": job.spec.modality,
        "pixel_spacing_mm": f"{job.spec.pixel_spacing_mm:.4f}",
        "distractors": ";".join(truth.distractors),
    }


def _render_row(args: tuple[Job, str]) -> dict[str, str]:
    job, out_dir = args
    return row(job, render(job, Path(out_dir)))


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)


def generate(
    count: int,
    out_dir: str | os.PathLike[str],
    seed: int = 0,
    composites_from: str | os.PathLike[str] | Sequence[Crop] | None = None,
    views: Sequence[str] = VIEWS,
    workers: int = 2,
    size: tuple[int, int] = (1024, 1280),
    composite_fraction: float = 0.5,
    none_fraction: float = 0.0,
    unknown_fraction: float = 0.12,
) -> Path:
    """Render ``count`` radiographs into ``out_dir`` and return the ground-truth CSV's path.

    See the package docstring for the CSV columns. ``size`` is (rows, columns).
    ``composites_from`` is a crop folder (see ``find_crops``) or the crops themselves; either
    way they are taken in the order of their ``source``, so a folder and its list plan alike.

    Raises:
        DatasetError: ``composites_from`` holds no valve crops.
        ValueError: an unknown view or a count below 1.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if composites_from is None:
        crops: list[Crop] = []
    elif isinstance(composites_from, (str, os.PathLike)):
        crops = find_crops(Path(composites_from))
    else:
        crops = sorted(composites_from, key=lambda c: c.source)
    jobs = plan(
        count,
        seed,
        crops,
        tuple(views),
        (int(size[0]), int(size[1])),
        composite_fraction if crops else 0.0,
        none_fraction=none_fraction,
        unknown_fraction=unknown_fraction,
    )
    tasks = [(job, str(out)) for job in jobs]
    if workers <= 1:
        _init_worker()
        rows = [_render_row(task) for task in tasks]
    else:
        with mp.get_context("spawn").Pool(workers, initializer=_init_worker) as pool:
            rows = list(pool.imap(_render_row, tasks, chunksize=2))
            pool.close()
            pool.join()
    path = out / CSV_NAME
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path
