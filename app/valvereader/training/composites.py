"""The training data of a recipe: real crops, and composite radiographs made from them.

A recipe (``valvereader.training.recipe``) trains the identifier on the real crops of the
split's train part plus *composite regions*: every crop pasted ``per_crop`` times into a phantom
radiograph by the program's own generator (``valvereader.phantoms``), written as DICOM and read
back with the program's loader, then cut around the valve as the program cuts a located valve.
Each composite gives two regions: the true box squared (``REGION_SQUARES["true_box"]``; the
validation and test regions) and a jittered box squared at a random scale in a range. The
locator trains on the whole rendered radiographs (and on rendered phantoms) at its input size.

Everything is prepared once into ``work/`` (uint8 arrays and ``meta.json``) and memory-mapped by
the training loops, so a member or the locator can be trained again without rendering again.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

# How each composite's two training regions are squared around the valve's box.
REGION_SQUARES: dict[str, Any] = {"true_box": 1.25, "jittered_box": (1.0, 1.25)}
# A crop pasted whole into a film (tools/paste_films.py) is found loosely by the locator (the
# located box spans a median 2.3 x the crop's area), so its squares are looser.
PASTED_SQUARES: dict[str, Any] = {"true_box": 1.5, "jittered_box": (1.0, 2.2)}
PASTED_FILM = (2500, 2000)  # rows, columns: the benchmark's film


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- crops -----------------------------------------------------------------------------------
def load_grey(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def copy_crop(source: Path, target: Path, max_side: int | None, quality: int | None) -> Path:
    """The crop as the recipe reads it: grey, its longest side at most ``max_side`` (Lanczos)
    and stored as JPEG of ``quality`` when given (the shipped identifier's members read such
    copies), else as PNG."""
    from PIL import Image

    with Image.open(source) as image:
        grey = image.convert("L")
    width, height = grey.size
    scale = min(1.0, max_side / max(width, height)) if max_side else 1.0
    if scale < 1.0:
        grey = grey.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.LANCZOS)
    target.parent.mkdir(parents=True, exist_ok=True)
    if quality:
        target = target.with_suffix(".jpg")
        buffer = io.BytesIO()
        grey.save(buffer, "JPEG", quality=quality)
        target.write_bytes(buffer.getvalue())
    else:
        target = target.with_suffix(".png")
        grey.save(target)
    return target


# --- geometry of the regions -----------------------------------------------------------------
def box_jitter(box, rng: np.random.Generator):
    """The box moved (centre ± 8 % of its side, normal) and scaled (× exp(N(0, 0.12)))."""
    from ..geometry import Box

    side = max(box.width, box.height)
    dx, dy = rng.normal(0, 0.08 * side, 2)
    s = float(np.exp(rng.normal(0, 0.12)))
    cx, cy = box.center
    half_w, half_h = box.width * s / 2, box.height * s / 2
    x0, y0, x1, y1 = (float(v) for v in (cx + dx - half_w, cy + dy - half_h, cx + dx + half_w, cy + dy + half_h))
    return Box(round(x0), round(y0), round(x1), round(y1))


def fit_to_film(crop: np.ndarray, film: tuple[int, int] = PASTED_FILM) -> np.ndarray:
    """A crop (float 0..1) at its own size, shrunk (Lanczos) where it would exceed 60 % of the
    film's side, as a crop is pasted whole into a film."""
    from PIL import Image

    height, width = film
    lines, columns = crop.shape
    if lines <= height * 0.6 and columns <= width * 0.6:
        return crop
    f = min(height * 0.6 / lines, width * 0.6 / columns)
    shrunk = Image.fromarray(np.round(crop * 255).astype(np.uint8)).resize((int(columns * f), int(lines * f)), Image.Resampling.LANCZOS)
    return np.asarray(shrunk, dtype=np.float32) / 255.0


def paste_place(shape: tuple[int, int], rng: np.random.Generator, film: tuple[int, int] = PASTED_FILM):
    """Where a crop of ``shape`` goes in the film: a random place at least a fifth of the film's
    side from its edges (a Box in film pixels)."""
    from ..geometry import Box

    (height, width), (ch, cw) = film, shape
    y0 = int(rng.integers(height // 5, height - ch - height // 5 + 1))
    x0 = int(rng.integers(width // 5, width - cw - width // 5 + 1))
    return Box(x0, y0, x0 + cw, y0 + ch)


# --- rendering -------------------------------------------------------------------------------
def composite_jobs(crops, per_crop: int, seed: int, shape: tuple[int, int]) -> list:
    """``per_crop`` composites of every crop, each its own patient (both views in turn)."""
    from ..phantoms.dataset import POSITIONS, VIEWS, _spec
    from ..phantoms.render import Job

    rng = np.random.default_rng([seed, 5])
    jobs: list[Job] = []
    for ci, crop in enumerate(crops):
        for k in range(per_crop):
            index = len(jobs)
            pid = f"GS{seed % 100:02d}{index:06d}"
            patient = {"name": f"PHANTOM^{index:06d}", "sex": "F", "birth": "19700101", "seed": f"{seed}-{index}",
                       "dates": ["20200101", "20210101"]}
            view = VIEWS[(ci + k) % 2]
            spec = dataclasses.replace(_spec(rng, pid, patient, 1, view, shape), syntax="explicit")
            position = str(rng.choice(POSITIONS, p=[0.5, 0.3, 0.2]))
            place = "edge" if rng.random() < 0.12 else position
            jobs.append(Job(index=index, seed=seed, patient_index=index + 1, patient_id=pid, kind="composite",
                            valve_id=crop.valve_id, setting="", view=view, position=place, crop=crop,
                            file=f"{pid}.dcm", shape=shape, spec=spec))
    return jobs


def phantom_jobs(count: int, seed: int, shape: tuple[int, int]) -> list:
    """``count`` rendered phantoms (catalogue and unknown designs) of the generator's plan."""
    from ..phantoms.dataset import plan

    jobs = plan(count, seed, (), shape=shape)
    return [dataclasses.replace(j, spec=dataclasses.replace(j.spec, syntax="explicit"), index=100000 + j.index) for j in jobs]


_WORK: dict = {}


def _init_render(sizes, locator_size, scratch) -> None:
    import cv2

    cv2.setNumThreads(1)
    _WORK.update(sizes=sizes, locator_size=locator_size, scratch=Path(scratch))


def render_one(job_and_crop: tuple) -> dict | None:
    """Render one job to DICOM, read it back as the program does, and cut what training needs."""
    job, crop_index = job_and_crop
    from ..catalogue import VALVE_IDS
    from ..io import load
    from ..phantoms.render import render
    from ..preprocess import Preprocess
    from .locator_data import box_fractions

    scratch = _WORK["scratch"] / f"w{os.getpid()}"
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        truth = render(job, scratch)
        path = scratch / job.file
        radiograph = load(path)
        path.unlink(missing_ok=True)
    except Exception as exc:  # noqa: BLE001 - one failed render must not stop the others
        return {"error": f"{job.file}: {type(exc).__name__}: {exc}"}
    if truth.box is None:
        return None
    pixels = radiograph.pixels
    prepared = Preprocess(_WORK["locator_size"], 0.02, True)(pixels)
    out = {
        "kind": job.kind, "valve_id": job.valve_id, "crop": crop_index, "position": str(job.position or ""),
        "locator": np.round(prepared.pixels * 255).astype(np.uint8),
        "box": box_fractions(truth.box, prepared),
        "regions": {},
    }
    # Regions for the identifier: every composite, and rendered phantoms of catalogue valves
    # (trained on only when the recipe asks for phantom regions).
    if job.kind == "composite" or (job.kind == "phantom" and job.valve_id in VALVE_IDS):
        rng = np.random.default_rng([job.seed, job.index, 77])
        boxes = [(truth.box, REGION_SQUARES["true_box"]),
                 (box_jitter(truth.box, rng), float(rng.uniform(*REGION_SQUARES["jittered_box"])))]
        for size in _WORK["sizes"]:
            pre = Preprocess(size, 0.02, True)
            out["regions"][size] = np.stack([
                np.round(pre(pixels, b.square(s, minimum=32).clip(pixels.shape)).pixels * 255).astype(np.uint8)
                for b, s in boxes
            ])
    return out


# --- preparation -----------------------------------------------------------------------------
def prepare(rows: list[dict], work: Path, sizes: list[int], locator_size: int, composites: dict, workers: int,
            class_ids: list[str]) -> dict:
    """Real crops at every size, composite regions and locator inputs, saved under ``work``.

    ``rows``: one dict per crop (``file``, ``label``, ``split``); ``composites``: the recipe's
    ``per_crop``, ``phantoms``, ``seed``, ``shape``. Returns (and writes) ``meta.json``.
    """
    import multiprocessing as mp

    from ..phantoms.composite import Crop
    from ..preprocess import Preprocess

    work.mkdir(parents=True, exist_ok=True)
    labels = np.array([class_ids.index(r["label"]) for r in rows], dtype=np.int64)
    split = [r["split"] for r in rows]
    images = [load_grey(Path(r["file"])) for r in rows]
    for size in sizes:
        pre = Preprocess(size, 0.02, True)
        np.save(work / f"real_{size}.npy", np.stack([np.round(pre(img).pixels * 255).astype(np.uint8) for img in images]))
    del images
    _log(f"real crops prepared: {len(rows)} at {sizes} px")
    crops = [Crop(Path(r["file"]), r["label"]) for r in rows]
    shape = tuple(composites["shape"])
    per_crop, seed = int(composites["per_crop"]), int(composites["seed"])
    jobs = [(j, int(j.index // per_crop)) for j in composite_jobs(crops, per_crop, seed, shape)] if per_crop else []
    jobs += [(j, -1) for j in phantom_jobs(int(composites.get("phantoms", 0)), seed + 1, shape)]
    jobs = [jobs[i] for i in np.random.default_rng(seed).permutation(len(jobs))]
    began = time.time()
    scratch = work / "scratch"
    if workers > 1 and len(jobs) > 1:
        with mp.get_context("fork").Pool(workers, initializer=_init_render, initargs=(sizes, locator_size, str(scratch))) as pool:
            results = []
            for i, res in enumerate(pool.imap(render_one, jobs, chunksize=4)):
                results.append(res)
                if (i + 1) % 500 == 0:
                    _log(f"rendered {i + 1}/{len(jobs)}")
    else:
        _init_render(sizes, locator_size, str(scratch))
        results = [render_one(j) for j in jobs]
    errors = [r["error"] for r in results if r and "error" in r]
    usable = [r for r in results if r and "error" not in r]
    _log(f"rendered {len(usable)} usable radiographs ({len(errors)} errors) in {time.time() - began:.0f} s")
    # Composites first, then catalogue phantoms (source crop -1, label from the phantom's valve).
    comp = [r for r in usable if r["kind"] == "composite"] + [r for r in usable if r["kind"] == "phantom" and r["regions"]]
    for size in sizes:
        arr = np.concatenate([r["regions"][size] for r in comp]) if comp else np.zeros((0, size, size), np.uint8)
        np.save(work / f"regions_{size}.npy", arr)
    if usable:
        np.save(work / "locator_images.npy", np.stack([r["locator"] for r in usable]))
        np.save(work / "locator_boxes.npy", np.stack([r["box"] for r in usable]).astype(np.float32))
    meta = {
        "labels": labels.tolist(), "split": split,
        "region_source": [r["crop"] for r in comp for _ in range(2)],
        "region_variant": [v for _ in comp for v in range(2)],
        "region_label": [int(labels[r["crop"]]) if r["crop"] >= 0 else class_ids.index(r["valve_id"]) for r in comp for _ in range(2)],
        # Where on the skull each region's valve sits ("edge": cut by the collimator's field edge).
        "region_position": [r["position"] for r in comp for _ in range(2)],
        "region_kind": [r["kind"] for r in comp for _ in range(2)],
        "locator_kind": [r["kind"] for r in usable], "locator_valve": [r["valve_id"] for r in usable],
        "locator_source": [int(r["crop"]) for r in usable],
        "region_squares": REGION_SQUARES, "composites": {**composites, "shape": list(shape)},
        "render_errors": errors[:20], "render_error_count": len(errors),
    }
    (work / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return meta


def write_crops_table(rows: list[dict], path: Path) -> None:
    """The crops the recipe read (file, label, split, source), for the record."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
