"""Real skull radiographs with real valve crops blended in: training and test films for the
whole-radiograph pipeline on real anatomy and real non-valve metal.

Backgrounds: real lateral skull radiographs without a valve (a folder with ``manifest.csv``:
path, width, height, pixel_spacing_mm, ...; see ``../shared/data/skull-radiographs``). They
are split by image into train, validation and test (``realfilm_split.csv`` beside this
module: the same image never on two sides). Valve crops come from the identifier's own split
(train crops into train films, and so on), are blended in the attenuation domain
(:func:`valvereader.phantoms.composite.place_crop`) at true size for the film's pixel spacing
(valves 15-45 mm across), where shunt valves sit (parietal, occipital, frontal vault, behind
the ear; some cut by the film's edge), at any rotation, often with their catheter, beside
other shunt parts that are not valves (a burr-hole reservoir, connectors, catheter loops).
Every background is also kept without a valve, as a negative. Films are mirrored, reversed
in polarity, collimated and made grainy at random, and written as DICOM (MONOCHROME2 and
MONOCHROME1, with the pixel spacing), PNG and JPEG, with a ground-truth CSV (an empty box
for a film without a valve).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..geometry import Box
from .composite import Crop, find_crops, load_crop, place_crop

SPLIT_FILE = Path(__file__).with_name("realfilm_split.csv")
PARTS = ("train", "validation", "test")
# Where shunt valves sit on a lateral skull film, as fractions of the film (vault upper left,
# face to the right, as in the background set): name -> (x0, y0, x1, y1) of the valve centre.
SITES = {
    "parietal": (0.15, 0.05, 0.55, 0.30),
    "occipital": (0.03, 0.22, 0.22, 0.50),
    "frontal": (0.45, 0.05, 0.68, 0.24),
    "behind_ear": (0.12, 0.38, 0.34, 0.55),
}
FORMATS = ("dicom", "dicom_mono1", "png", "jpeg")
TRUTH_COLUMNS = ("file", "kind", "valve_id", "source_crop", "background", "site", "valve_mm", "format",
                 "reversed", "mirrored", "edge_cut", "box_x0", "box_y0", "box_x1", "box_y1")
_OPACITY = 0.95  # display = (1 - exp(-mu)) / _OPACITY: the film's dense end saturates as film does


def make_split(manifest: Path, seed: int = 0, fractions: tuple[float, float] = (0.6, 0.2)) -> list[dict[str, str]]:
    """Backgrounds split by image: (file, sha256, part), ``fractions`` train and validation,
    the rest test, in a seeded random order."""
    with Path(manifest).open(newline="", encoding="utf-8") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda r: r["path"])
    order = np.random.default_rng(seed).permutation(len(rows))
    n_train, n_val = round(fractions[0] * len(rows)), round(fractions[1] * len(rows))
    parts = {int(i): ("train" if k < n_train else "validation" if k < n_train + n_val else "test") for k, i in enumerate(order)}
    return [{"file": r["path"], "sha256": r["sha256"], "part": parts[i]} for i, r in enumerate(rows)]


def read_split(path: Path = SPLIT_FILE) -> dict[str, list[str]]:
    """The committed split: part -> background file names.

    Raises:
        ValueError: a file on two sides.
    """
    with Path(path).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    split: dict[str, list[str]] = {part: [] for part in PARTS}
    seen: dict[str, str] = {}
    for row in rows:
        if row["file"] in seen or row["sha256"] in seen:
            raise ValueError(f"background {row['file']} is on two sides of the split")
        seen[row["file"]] = seen[row["sha256"]] = row["part"]
        split[row["part"]].append(row["file"])
    return split


def crops_by_part(crops_dir: Path, split_json: Path) -> dict[str, list[Crop]]:
    """The identifier's crop split (a split.json with ``paths`` and ``split`` index lists)."""
    data = json.loads(Path(split_json).read_text())
    crops = {c.source: c for c in find_crops(crops_dir)}
    out: dict[str, list[Crop]] = {}
    sources = ["/".join(Path(p).parts[-2:]) for p in data["paths"]]
    for part in PARTS:
        out[part] = [crops[sources[i]] for i in data["split"][part] if sources[i] in crops]
    return out


@dataclass
class Film:
    """One made film: display pixels (0..1, white = dense), its valve box (or None) and what
    was drawn."""

    pixels: np.ndarray
    box: Box | None
    truth: dict[str, str]


def _to_mu(display: np.ndarray) -> np.ndarray:
    return -np.log1p(-_OPACITY * np.clip(display, 0.0, 1.0)).astype(np.float32)


def _to_display(mu: np.ndarray) -> np.ndarray:
    return ((1.0 - np.exp(-np.maximum(mu, 0.0))) / _OPACITY).clip(0.0, 1.0).astype(np.float32)


def _bezier(points: np.ndarray, n: int = 48) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    p0, p1, p2 = points
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def _line(mu: np.ndarray, points: np.ndarray, width: float, strength: float) -> None:
    layer = np.zeros(mu.shape, np.uint8)
    cv2.polylines(layer, [np.round(points * 16).astype(np.int32)], False, 255, max(1, round(width)), cv2.LINE_AA, shift=4)
    mu += layer.astype(np.float32) * np.float32(strength / 255)


def catheter(mu: np.ndarray, start: np.ndarray, px_per_mm: float, rng: np.random.Generator) -> None:
    """A silicone catheter with its radiopaque stripe, from ``start`` in a gentle curve."""
    length = rng.uniform(40, 140) * px_per_mm
    angle = rng.uniform(0, 2 * np.pi)
    end = start + length * np.array([np.cos(angle), np.sin(angle)])
    bend = (start + end) / 2 + rng.normal(0, 0.25 * length, 2)
    path = _bezier(np.stack([start, bend, end]))
    width = rng.uniform(2.0, 3.0) * px_per_mm
    _line(mu, path, width, rng.uniform(0.06, 0.15))
    _line(mu, path, max(1.0, 0.25 * width), rng.uniform(0.15, 0.35))


def other_part(mu: np.ndarray, centre: np.ndarray, px_per_mm: float, rng: np.random.Generator) -> str:
    """A shunt part that is not a valve: a burr-hole reservoir (dome with a metal base ring),
    a straight or right-angle connector, or a catheter loop. Returns its name."""
    kind = str(rng.choice(["reservoir", "connector", "catheter"]))
    layer: np.ndarray = np.zeros(mu.shape, np.float32)  # cv2's blur below gives a new array
    cx, cy = (round(v) for v in centre)
    if kind == "reservoir":
        radius = int(rng.uniform(6, 10) * px_per_mm)
        cv2.circle(layer, (cx, cy), radius, rng.uniform(0.05, 0.15), -1, cv2.LINE_AA)
        cv2.circle(layer, (cx, cy), radius, rng.uniform(0.3, 0.8), max(1, int(0.8 * px_per_mm)), cv2.LINE_AA)
        layer = cv2.GaussianBlur(layer, (0, 0), 0.8)
    elif kind == "connector":
        length, width = rng.uniform(8, 15) * px_per_mm, rng.uniform(2, 3.5) * px_per_mm
        angle = rng.uniform(0, 180)
        rect = ((cx, cy), (length, width), angle)
        cv2.fillPoly(layer, [np.round(cv2.boxPoints(rect)).astype(np.int32)], rng.uniform(0.3, 1.0), cv2.LINE_AA)
    mu += layer
    catheter(mu, np.asarray(centre, float), px_per_mm, rng)
    if kind == "catheter":
        catheter(mu, np.asarray(centre, float), px_per_mm, rng)
    return kind


def _site_point(shape: tuple[int, int], rng: np.random.Generator) -> tuple[str, np.ndarray]:
    site = str(rng.choice(list(SITES)))
    x0, y0, x1, y1 = SITES[site]
    h, w = shape
    return site, np.array([rng.uniform(x0, x1) * w, rng.uniform(y0, y1) * h])


def make_film(
    background: np.ndarray,
    spacing_mm: float,
    crop: Crop | None,
    rng: np.random.Generator,
    background_name: str = "",
) -> Film:
    """One film from a background (display 0..1): with ``crop`` a valve blended in, else a
    film without a valve (possibly with other shunt parts). Mirroring, polarity, edge cuts,
    collimation and grain are drawn here; the file format is the writer's."""
    px_per_mm = 1.0 / spacing_mm
    # Headroom for metal: the backgrounds' dense vault is near white as exported, and metal
    # over it must still show brighter (as on a film exposed for it).
    mu = _to_mu(background * float(rng.uniform(0.75, 0.92)))
    truth = {"background": background_name, "kind": "negative", "valve_id": "", "source_crop": "", "site": "",
             "valve_mm": "", "edge_cut": "no"}
    box = None
    if crop is not None:
        site, centre = _site_point(mu.shape, rng)
        valve_mm = float(rng.uniform(15, 45))
        box = place_crop(mu, load_crop(crop), (float(centre[0]), float(centre[1])), valve_mm * px_per_mm,
                         float(rng.uniform(0, 360)), float(rng.uniform(0.4, 1.3)), rng)
        if box is not None and rng.random() < 0.6:
            catheter(mu, centre, px_per_mm, rng)
        truth.update(kind="valve", valve_id=crop.valve_id, source_crop=crop.source, site=site, valve_mm=f"{valve_mm:.1f}")
    if rng.random() < (0.35 if crop is not None else 0.6):
        _, centre = _site_point(mu.shape, rng)
        truth["other_part"] = other_part(mu, centre, px_per_mm, rng)
    display = _to_display(mu)
    if box is not None and rng.random() < 0.15:  # the film's edge cuts the valve
        cut, moved = _cut_at_valve(display, box, rng)
        truth["edge_cut"] = "yes" if cut.shape != display.shape else "no"
        display, box = cut, moved
    if rng.random() < 0.3:
        display, box = _collimate(display, box, rng)
    mirrored = rng.random() < 0.3
    if mirrored:
        display = display[:, ::-1].copy()
        if box is not None:
            w = display.shape[1]
            box = Box(w - box.x1, box.y0, w - box.x0, box.y1)
    grain = float(rng.uniform(0.0, 0.025))
    if grain > 0.003:
        display = display + rng.normal(0.0, grain, display.shape).astype(np.float32)
    truth["mirrored"] = "yes" if mirrored else "no"
    return Film(np.clip(display, 0.0, 1.0).astype(np.float32), box, truth)


# What another machine's processing does to a film, for training (``another_machine``). Kept
# apart from the measurement's changes in tools/shift_films.py on purpose: local equalisation
# (CLAHE), a flatter contrast and a larger field are left out here, so that reading them
# there says something about changes the training never showed.
MACHINE_STEPS = ("resample", "tone", "unsharp", "detail")


def another_machine(display: np.ndarray, box: Box | None, spacing_mm: float, rng: np.random.Generator,
                    steps: int | None = None) -> tuple[np.ndarray, Box | None, str]:
    """The film as another machine might have processed it: one or two of a finer or coarser
    pixel grid (0.6-1.6 x the pixels, the box following), another tone curve (display to the
    power 0.55-1.8), unsharp masking (sigma 1-6 mm, amount 0.3-1.5) and a two-scale detail
    boost (sigma 0.5-1.5 and 4-10 mm). Returns (display, box, the steps taken joined by '+')."""
    x = display.astype(np.float32)
    count = steps if steps is not None else int(rng.integers(1, 3))
    taken = sorted(rng.choice(len(MACHINE_STEPS), size=count, replace=False))
    for k in taken:
        step = MACHINE_STEPS[k]
        if step == "resample":
            zoom = float(np.exp(rng.uniform(np.log(0.6), np.log(1.6))))
            h, w = x.shape
            size = (max(8, round(w * zoom)), max(8, round(h * zoom)))
            x = np.asarray(cv2.resize(x, size, interpolation=cv2.INTER_CUBIC if zoom > 1 else cv2.INTER_AREA), np.float32)
            fx, fy = size[0] / w, size[1] / h
            if box is not None:
                box = Box(round(box.x0 * fx), round(box.y0 * fy), round(box.x1 * fx), round(box.y1 * fy)).clip(x.shape)
            spacing_mm /= zoom
        elif step == "tone":
            x = np.clip(x, 0.0, 1.0) ** float(np.exp(rng.uniform(np.log(0.55), np.log(1.8))))
        elif step == "unsharp":
            sigma = float(rng.uniform(1.0, 6.0)) / spacing_mm
            x = x + float(rng.uniform(0.3, 1.5)) * (x - cv2.GaussianBlur(x, (0, 0), sigma))
        else:
            fine, coarse = float(rng.uniform(0.5, 1.5)) / spacing_mm, float(rng.uniform(4.0, 10.0)) / spacing_mm
            low1, low2 = cv2.GaussianBlur(x, (0, 0), fine), cv2.GaussianBlur(x, (0, 0), coarse)
            x = low2 + float(rng.uniform(1.2, 2.0)) * (low1 - low2) + float(rng.uniform(1.0, 1.6)) * (x - low1)
    return np.clip(x, 0.0, 1.0).astype(np.float32), box, "+".join(MACHINE_STEPS[k] for k in taken)


def _cut_at_valve(display: np.ndarray, box: Box, rng: np.random.Generator) -> tuple[np.ndarray, Box]:
    """Crop the film at the edge nearest the valve so that the edge passes through it (30-70 %
    of the valve kept); a valve far from every edge (more than a quarter of the film) is left."""
    h, w = display.shape
    gaps = (box.x0, box.y0, w - box.x1, h - box.y1)
    side = int(np.argmin(gaps))
    if gaps[side] > 0.25 * (w if side in (0, 2) else h):
        return display, box
    keep = rng.uniform(0.3, 0.7)
    x0, y0, x1, y1 = 0, 0, w, h
    if side == 0:
        x0 = int(box.x1 - keep * box.width)
    elif side == 1:
        y0 = int(box.y1 - keep * box.height)
    elif side == 2:
        x1 = int(box.x0 + keep * box.width)
    else:
        y1 = int(box.y0 + keep * box.height)
    cut = display[y0:y1, x0:x1].copy()
    moved = Box(box.x0 - x0, box.y0 - y0, box.x1 - x0, box.y1 - y0).clip(cut.shape)
    return cut, moved


def _collimate(display: np.ndarray, box: Box | None, rng: np.random.Generator) -> tuple[np.ndarray, Box | None]:
    """Shutters: dark (or, as some consoles show them, white) bands outside a field that keeps the valve."""
    h, w = display.shape
    margins = rng.uniform(0.0, 0.12, 4) * np.array([w, h, w, h])
    x0, y0, x1, y1 = int(margins[0]), int(margins[1]), w - int(margins[2]), h - int(margins[3])
    if box is not None:
        x0, y0, x1, y1 = min(x0, box.x0), min(y0, box.y0), max(x1, box.x1), max(y1, box.y1)
    out = display.copy()
    level = float(rng.uniform(0.0, 0.02)) if rng.random() < 0.85 else float(rng.uniform(0.9, 1.0))
    out[:y0], out[y1:], out[:, :x0], out[:, x1:] = level, level, level, level
    return out, box


def encode(display: np.ndarray, fmt: str, rng: np.random.Generator, reverse: bool) -> tuple[str, bytes | np.ndarray]:
    """The film as its file's content: (suffix, bytes) for PNG/JPEG, (suffix, display) for DICOM
    (written by the caller). ``reverse``: an image file exported with reversed polarity."""
    if fmt.startswith("dicom"):
        return ".dcm", display
    shown = 1.0 - display if reverse else display
    image = Image.fromarray(np.round(shown * 255).astype(np.uint8))
    buffer = io.BytesIO()
    if fmt == "jpeg":
        image.save(buffer, "JPEG", quality=int(rng.integers(40, 96)))
        return ".jpg", buffer.getvalue()
    image.save(buffer, "PNG")
    return ".png", buffer.getvalue()


def roundtrip(display: np.ndarray, fmt: str, rng: np.random.Generator, reverse: bool) -> np.ndarray:
    """What the program's loader sees of a film written as ``fmt`` (for in-memory training sets):
    8 or 12 bits, JPEG artefacts, reversed polarity in an image file (DICOM MONOCHROME1 is
    shown right side up by the loader)."""
    suffix, content = encode(display, fmt, rng, reverse)
    if suffix == ".dcm":
        return np.round(np.asarray(content) * 4095) / 4095
    with Image.open(io.BytesIO(content)) as image:  # type: ignore[arg-type]
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def load_background(folder: Path, name: str) -> np.ndarray:
    with Image.open(Path(folder) / name) as image:
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def spacings(folder: Path) -> dict[str, float]:
    with (Path(folder) / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        return {r["path"]: float(r["pixel_spacing_mm"]) for r in csv.DictReader(handle)}


def films(
    backgrounds_dir: Path, names: list[str], crops: list[Crop], per_background: int, seed: int, negatives: int = 1,
    machine: float = 0.0,
) -> Iterator[tuple[Film, np.random.Generator]]:
    """For each background: ``per_background`` films with a valve (crops drawn in a seeded
    order that uses every crop before repeating) and ``negatives`` without. A ``machine`` share
    of them is then processed as another machine's (:func:`another_machine`; its draws are
    apart from the film's, so every share makes the same films before processing; the steps
    taken are the truth's ``machine``)."""
    spacing = spacings(backgrounds_dir)
    rng = np.random.default_rng(seed)
    order = list(rng.permutation(len(crops))) if crops else []
    k = 0
    index = 0
    for name in names:
        background = load_background(backgrounds_dir, name)
        for j in range(per_background + negatives):
            film_rng = np.random.default_rng([seed, int(hashlib.sha256(name.encode()).hexdigest()[:8], 16), j])
            crop = None
            if j < per_background and crops:
                if k and k % len(crops) == 0:
                    order = list(rng.permutation(len(crops)))
                crop = crops[order[k % len(crops)]]
                k += 1
            film = make_film(background, spacing.get(name, 0.2), crop, film_rng, name)
            if machine and (machine_rng := np.random.default_rng([seed, index, 7331])).random() < machine:
                film.pixels, film.box, film.truth["machine"] = another_machine(film.pixels, film.box, spacing.get(name, 0.2),
                                                                              machine_rng)
            index += 1
            yield film, film_rng


def write_films(
    backgrounds_dir: Path, names: list[str], crops: list[Crop], out_dir: Path, per_background: int, seed: int,
    negatives: int = 1,
) -> Path:
    """Films as files under ``out_dir`` (format drawn per film) and ``ground_truth.csv``."""
    from .dicom_out import DicomSpec, write_dicom

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spacing = spacings(backgrounds_dir)
    rows = []
    for i, (film, rng) in enumerate(films(backgrounds_dir, names, crops, per_background, seed, negatives)):
        fmt = str(rng.choice(FORMATS, p=[0.3, 0.2, 0.25, 0.25]))
        reverse = fmt in ("png", "jpeg") and rng.random() < 0.15
        suffix, content = encode(film.pixels, fmt, rng, reverse)
        name = f"film_{i:05d}{suffix}"
        if suffix == ".dcm":
            spec = DicomSpec(patient_id=f"RF{i:05d}", patient_name=f"FILM^{i:05d}", patient_sex="O", birth_date="19700101",
                             study_date="20260101", study_seed=f"realfilm-{seed}-{i}", instance=1, view="lateral",
                             photometric="MONOCHROME1" if fmt == "dicom_mono1" else "MONOCHROME2",
                             pixel_spacing_mm=spacing.get(film.truth["background"], 0.2))
            write_dicom(out_dir / name, np.asarray(content), spec)
        else:
            (out_dir / name).write_bytes(content)  # type: ignore[arg-type]
        box = film.box.as_tuple() if film.box is not None else ("", "", "", "")
        rows.append({"file": name, "format": fmt, "reversed": "yes" if reverse else "no", **film.truth,
                     **dict(zip(("box_x0", "box_y0", "box_x1", "box_y1"), box))})
    truth = out_dir / "ground_truth.csv"
    with truth.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*TRUTH_COLUMNS, "other_part"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return truth
