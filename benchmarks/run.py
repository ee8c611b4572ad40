"""Performance benchmark: the program against its own floor and the paper's way.

Usage:  python benchmarks/run.py [--weights DIR] [--batch 200] [--memory-files 1000] [--quick]

Everything is measured in one run on this machine and reported as ratios where it matters
(the machine is noisy). Writes benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


# --- test data -------------------------------------------------------------------------------
def write_dicom(path: Path, pixels: np.ndarray, photometric: str = "MONOCHROME2", patient: str = "BENCH") -> None:
    """A DX image, 12 bits stored, uncompressed, like a skull radiograph from a CR/DX plate."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import (
        DigitalXRayImageStorageForPresentation,
        ExplicitVRLittleEndian,
        generate_uid,
    )

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DigitalXRayImageStorageForPresentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientName, ds.PatientID = "DX", patient, patient
    ds.BodyPartExamined, ds.ViewPosition = "SKULL", "LL"
    stored = np.clip(pixels * 4095, 0, 4095).astype(np.uint16)
    if photometric == "MONOCHROME1":
        stored = 4095 - stored
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.ImagerPixelSpacing = [0.139, 0.139]
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    ds.PixelData = stored.tobytes()
    ds.save_as(path, enforce_file_format=True)


def synthetic_skull(shape: tuple[int, int], rng: np.random.Generator, crop: np.ndarray | None) -> np.ndarray:
    """A cheap stand-in radiograph: smooth skull-like ellipse, noise, and a real crop pasted in."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = ((yy - h / 2) / (0.42 * h)) ** 2 + ((xx - w / 2) / (0.40 * w)) ** 2
    img = np.where(r < 1, 0.35 + 0.25 * np.exp(-((np.sqrt(r) - 0.95) ** 2) / 0.002), 0.08).astype(np.float32)
    img += rng.normal(0, 0.02, shape).astype(np.float32)
    img[:, : w // 40] = 0  # collimation border
    if crop is not None:
        ch, cw = crop.shape
        y0, x0 = rng.integers(h // 5, h - ch - h // 5), rng.integers(w // 5, w - cw - w // 5)
        img[y0 : y0 + ch, x0 : x0 + cw] = np.maximum(img[y0 : y0 + ch, x0 : x0 + cw], crop)
    return np.clip(img, 0, 1)


def real_crops(limit: int, folder: Path | None = None) -> list[np.ndarray]:
    """Up to ``limit`` crops spread over every valve: from ``folder`` (PNG/JPEG, any depth), or
    the shared dataset's (none without it)."""
    from PIL import Image

    from valvereader.paths import shared_dir

    if folder is None:
        shared = shared_dir()
        if shared is None:
            return []
        folder = shared / "data" / "csf-shuntvalves"
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    files = files[:: max(1, len(files) // limit)][:limit]
    crops = []
    for f in files:
        im = Image.open(f).convert("L")
        im.thumbnail((500, 500))
        crops.append(np.asarray(im, dtype=np.float32) / 255.0)
    return crops


def make_files(folder: Path, count: int, shape: tuple[int, int], seed: int, crops_from: Path | None = None) -> list[Path]:
    rng = np.random.default_rng(seed)
    crops = real_crops(min(count, 50), crops_from) or [None]
    paths = []
    for i in range(count):
        path = folder / f"img{i:04d}.dcm"
        write_dicom(path, synthetic_skull(shape, rng, crops[i % len(crops)]), "MONOCHROME1" if i % 2 else "MONOCHROME2")
        paths.append(path)
    return paths


# --- measurements ----------------------------------------------------------------------------
def network_inputs(predictor, r) -> tuple[np.ndarray | None, list[np.ndarray]]:
    """The inputs of the network runs predict() makes for radiograph ``r``: the locator's, then
    the identifier's views, stacked into one batch where the runtime takes batches (as predict
    does), each view's mirror image too where the card reads it."""
    from valvereader.inference.views import Prepare

    loc = predictor._locate(r.pixels).pixels[None, None] if predictor._locate else None
    # the regions predict() reads: every candidate the locator card's verification keeps, and
    # the whole image where predict reads it too
    _, _, regions = predictor.regions_read(r, Prepare(r))
    views = [predictor._identify(r.pixels, region).pixels[None] for region in regions]
    if len(views) > 1 and getattr(predictor._identifier, "batches", False):
        batches = [np.stack(views)]
    else:
        batches = [view[None] for view in views]
    return loc, [inputs for batch in batches for inputs in predictor.identifier_inputs(batch)]


def run_networks(owner, inputs: tuple[np.ndarray | None, list[np.ndarray]]) -> None:
    """The network runs of ``network_inputs``, on ``owner``'s sessions."""
    loc, idents = inputs
    if loc is not None:
        owner._locator.run(loc)
    for ident in idents:
        owner._identifier.run(ident)


def timed(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import onnxruntime

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{cpu}, {len(os.sched_getaffinity(0))} cores usable, {mem:.0f} GiB RAM, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
            f"onnxruntime {onnxruntime.__version__}")


def old_runtime_forward(predictor, loc_input, views, repeat: int) -> float:
    """The same network passes as sessions were set up before 2026-11-26: each session's pool
    spin-waiting for work, one identifier run per view."""
    from valvereader.model.runtime import OnnxBackend

    if not isinstance(predictor._identifier, OnnxBackend):
        return float("nan")
    identifier = OnnxBackend(predictor.identifier_card, spin=True)
    locator = OnnxBackend(predictor.locator_card, spin=True) if loc_input is not None else None
    singles = [view[i : i + 1] for view in views for i in range(len(view))]

    def forward() -> None:
        if locator is not None:
            locator.run(loc_input)
        for view in singles:
            identifier.run(view)

    forward()
    time_taken = statistics.median(timed(forward, repeat))
    return time_taken


# Opens the window as `valvereader view` does, opens argv[1] three seconds later, prints the time
# from opening to the first result on screen.
_OPEN_LATER = """
import sys, time
from pathlib import Path
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from valvereader.gui.main_window import MainWindow
from valvereader.gui.theme import apply_theme
app = QApplication(sys.argv[:1])
apply_theme(app)
window = MainWindow()
window.resize(1600, 1000)
window.show()
window.preload_model()
opened = []
def settled():
    if opened and len(opened) == 1:
        opened.append(time.perf_counter())
        print(f"first-result {opened[1] - opened[0]:.3f}")
        QTimer.singleShot(0, app.quit)
window.settled.connect(settled)
QTimer.singleShot(3000, lambda: (opened.append(time.perf_counter()), window.open_paths([Path(sys.argv[1])])))
QTimer.singleShot(60000, app.quit)
app.exec()
window.cancel_analysis()
window.close()
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--memory-files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke test")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.memory_files, args.repeat = 8, 20, 3

    from valvereader import halves
    from valvereader.inference.predictor import load_predictor
    from valvereader.io import load

    load_before = os.getloadavg()[0]
    predictor = load_predictor(args.weights, device="cpu")
    rows: list[tuple[str, str, str]] = []
    work = Path(tempfile.mkdtemp(prefix="vr-bench-"))

    # 1. one 2000×2500 DICOM: open → valve, verdict and heatmap, against the bare forward pass(es)
    (work / "big").mkdir()
    big = make_files(work / "big", 1, (2500, 2000), seed=1)[0]
    radiograph = load(big)

    film_inputs = network_inputs(predictor, radiograph)
    loc_input, views = film_inputs
    n_views = sum(len(v) for v in views)

    def forward_only() -> None:
        run_networks(predictor, film_inputs)

    def end_to_end() -> None:  # the viewer asks for the heatmap at screen resolution (≤ 1024 px a side)
        predictor.predict(load(big), with_heatmap=True, heatmap_max_side=1024)

    def end_to_end_one_thread() -> None:  # the same without valvereader.halves (one thread around the networks)
        halves.enabled = False
        try:
            end_to_end()
        finally:
            halves.enabled = True

    # Where the time beyond the networks goes: loading, and preparing every network input.
    regions = predictor.views(radiograph.shape, predictor.locate(radiograph), radiograph.meta.pixel_spacing)

    def prepare_all() -> None:
        prepared = predictor.prepare(radiograph)
        for region in regions:
            prepared(predictor._identify, region)

    forward_only()
    end_to_end()
    forward_times, end_times, one_thread_times, load_times, prepare_times = [], [], [], [], []
    # Interleaved, so that the machine's load hits all alike; a film is cheap to time, so three
    # times the repeats (this shared machine's timings of one film vary by ±10 %).
    for _ in range(3 * args.repeat):
        forward_times += timed(forward_only, 1)
        end_times += timed(end_to_end, 1)
        one_thread_times += timed(end_to_end_one_thread, 1)
        load_times += timed(lambda: load(big), 1)
        prepare_times += timed(prepare_all, 1)
    t_forward, t_end = statistics.median(forward_times), statistics.median(end_times)
    t_one_thread = statistics.median(one_thread_times)
    t_old_forward = old_runtime_forward(predictor, loc_input, views, args.repeat)
    t_load, t_prepare = statistics.median(load_times), statistics.median(prepare_times)
    paired_ratios = [end / forward for end, forward in zip(end_times, forward_times)]
    paired = statistics.quantiles(paired_ratios, n=4)
    rest = t_end - t_forward - t_load - t_prepare
    rows += [
        ("One 2000×2500 DICOM: bare forward passes (locator + identifier on each view)", f"{t_forward * 1000:.0f} ms",
         (f"{int(loc_input is not None) + len(views)} network runs ({n_views} identifier {'image' if predictor.mirror else 'view'}"
         f"{'s' if n_views != 1 else ''}{' in one batch' if len(views) < n_views else ''}"
         f"{': each view and its mirror image' if predictor.mirror else ''}; a film is read through the located square alone)")),
        ("One 2000×2500 DICOM: open → valve, verdict, heatmap", f"{t_end * 1000:.0f} ms",
         (f"{t_end / t_forward:.2f} × forward (target ≤ 1.3 ×, ≤ 500 ms); each film against the forward passes "
         f"timed just before it: median {paired[1]:.2f} ×, quartiles {paired[0]:.2f}–{paired[2]:.2f} × over {len(paired_ratios)}")),
        ("One 2000×2500 DICOM: the same, preprocessing on one thread", f"{t_one_thread * 1000:.0f} ms",
         (f"{t_one_thread / t_forward:.2f} × forward; without valvereader.halves (windowing and block means in two "
         "halves at once; one thread before 2026-11-26)")),
        ("One 2000×2500 DICOM: the same passes with the earlier runtime settings", f"{t_old_forward * 1000:.0f} ms",
         "spinning ONNX Runtime pools, one run per identifier view (as before 2026-11-26)"),
        ("One 2000×2500 DICOM: beyond the networks", f"{(t_end - t_forward) * 1000:.0f} ms",
         f"load {t_load * 1000:.0f} ms, preprocess {t_prepare * 1000:.0f} ms, rest (open-set score, CAM, "
         f"heatmap, Python) " + (f"{rest * 1000:.0f} ms" if rest > 0.0005 else "within this run's noise (the parts' medians, "
                                 f"timed alone, add up to {(t_load + t_prepare - (t_end - t_forward)) * 1000:.1f} ms more than the whole)")),
    ]

    # 2. batch of N DICOMs: pipelined loading vs model-only throughput
    (work / "batch").mkdir()
    files = make_files(work / "batch", args.batch, (1280, 1024), seed=2)
    tensors = [network_inputs(predictor, load(f)) for f in files[: min(20, len(files))]]

    def network_runs(owner, indices) -> None:  # the network runs predict makes, on ``owner``'s sessions
        for i in indices:
            run_networks(owner, tensors[i % len(tensors)])

    def model_only(chunk: list[Path]) -> None:
        network_runs(predictor, range(len(chunk)))

    twin = predictor._stream_predictor()  # the one-thread sessions predict_many's streams run on
    streams = predictor._default_streams()

    def model_streams(chunk: list[Path]) -> None:  # the same network runs, `streams` at once on one-thread sessions
        with ThreadPoolExecutor(max_workers=streams) as pool:
            list(pool.map(lambda k: network_runs(twin, range(k, len(chunk), streams)), range(streams)))

    def through_predict_many(chunk: list[Path], streams: int | None = None) -> None:
        for _, _, result in predictor.predict_many(chunk, with_heatmap=False, streams=streams):
            if isinstance(result, Exception):
                raise result

    def prepare_ahead(chunk: list[Path]) -> None:  # Predictor.predict_many as `classify` runs it (its default streams)
        through_predict_many(chunk)

    def one_stream(chunk: list[Path]) -> None:  # predict_many as it was: one stream, loading one thread ahead
        through_predict_many(chunk, streams=1)

    def load_one_thread(path: Path):
        with halves.off():
            return load(path)

    def load_ahead(chunk: list[Path]) -> None:  # only loading runs ahead (the loop of `valvereader classify`)
        with ThreadPoolExecutor(max_workers=1) as pool, halves.off():  # (no helper thread, as then)
            pending = [pool.submit(load_one_thread, f) for f in chunk[:2]]
            for i in range(len(chunk)):
                rad = pending.pop(0).result()
                if i + 2 < len(chunk):
                    pending.append(pool.submit(load_one_thread, chunk[i + 2]))
                predictor.predict(rad, with_heatmap=False)

    # The machine's speed drifts (it is shared): the loops take turns on quarters of the
    # batch, so that a drift hits each alike; each loop sees every file once.
    for warm_up in (model_only, model_streams, prepare_ahead, one_stream, load_ahead):
        warm_up(files[:4])
    rounds = 4 if len(files) >= 40 else 1
    chunks = [files[i::rounds] for i in range(rounds)]
    spent = {"model": 0.0, "streams": 0.0, "ahead": 0.0, "one": 0.0, "load": 0.0}
    ratios = []
    for chunk in chunks:
        t_m = timed(lambda chunk=chunk: model_only(chunk), 1)[0]
        t_s = timed(lambda chunk=chunk: model_streams(chunk), 1)[0]
        t_a = timed(lambda chunk=chunk: prepare_ahead(chunk), 1)[0]
        t_o = timed(lambda chunk=chunk: one_stream(chunk), 1)[0]
        t_l = timed(lambda chunk=chunk: load_ahead(chunk), 1)[0]
        spent["model"] += t_m
        spent["streams"] += t_s
        spent["ahead"] += t_a
        spent["one"] += t_o
        spent["load"] += t_l
        ratios.append(min(t_m, t_s) / t_a)
    t_model, t_streams, t_batch, t_one, t_load_ahead = (spent[k] for k in ("model", "streams", "ahead", "one", "load"))
    t_floor = min(t_model, t_streams)  # the networks' best throughput: the floor the batch is held to
    rows += [
        (f"Batch of {len(files)} DICOMs (1280×1024): model only, one stream", f"{len(files) / t_model:.1f} img/s",
         f"the network runs predict makes (locator, identifier views batched), two-thread sessions; {rounds} rounds interleaved with the rows below"),
        (f"Batch of {len(files)} DICOMs: model only, {streams} streams", f"{len(files) / t_streams:.1f} img/s",
         f"the same runs, {streams} at once on one-thread sessions (what predict_many's streams use)"),
        (f"Batch of {len(files)} DICOMs: load + preprocess + predict", f"{len(files) / t_batch:.1f} img/s",
         (f"{t_floor / t_batch * 100:.0f} % of the faster model-only row (target ≥ 90 %; rounds {min(ratios) * 100:.0f}–{max(ratios) * 100:.0f} %); "
         f"`Predictor.predict_many` (what `valvereader classify` runs): {streams} streams, each file from disk to result")),
        (f"Batch of {len(files)} DICOMs: the same in one stream", f"{len(files) / t_one:.1f} img/s",
         f"{t_floor / t_one * 100:.0f} % of the faster model-only row; predict_many before the streams: loading and preprocessing one thread ahead"),
        (f"Batch of {len(files)} DICOMs: only loading ahead", f"{len(files) / t_load_ahead:.1f} img/s",
         f"{t_floor / t_load_ahead * 100:.0f} % of the faster model-only row; the loop `valvereader classify` ran before 2026-11-26"),
    ]

    # 4. the paper's pipeline: DICOM → JPEG on disk → read → resize → predict (same model)
    from PIL import Image

    jpeg_dir = work / "jpeg"
    jpeg_dir.mkdir()
    subset = files[: min(40, len(files))]
    from valvereader.inference.predictor import Predictor

    whole = Predictor(predictor.identifier_card, None, device="cpu")  # the paper's pipeline shape
    whole.mirror = False  # one network pass, as the paper's pipeline makes (the full program's row reads the mirror too)

    def paper(f: Path) -> None:
        r = load(f)
        out = jpeg_dir / (f.stem + ".jpg")
        Image.fromarray((r.pixels * 255).astype(np.uint8)).save(out, quality=95)
        img = np.asarray(Image.open(out).convert("L").resize((predictor._identify.size,) * 2), dtype=np.float32) / 255
        predictor._identifier.run(img[None, None])

    paper(subset[0])
    whole.predict(load(subset[0]), with_heatmap=False)
    spent = {"paper": 0.0, "whole": 0.0, "ours": 0.0}
    for f in subset:  # file by file in turn, so that the machine's drift hits all three alike
        spent["paper"] += timed(lambda f=f: paper(f), 1)[0]
        spent["whole"] += timed(lambda f=f: whole.predict(load(f), with_heatmap=False), 1)[0]
        spent["ours"] += timed(lambda f=f: predictor.predict(load(f), with_heatmap=False), 1)[0]
    t_paper, t_whole, t_ours = (spent[k] / len(subset) for k in ("paper", "whole", "ours"))
    extra = (["runs the locator"] if predictor._locator else []) + (["reads each view mirrored"] if predictor.mirror else [])
    rows += [
        ("Ours, same files, same single network pass (whole-image pipeline), per image", f"{t_whole * 1000:.0f} ms",
         f"speed-up over the paper's pipeline {t_paper / t_whole:.2f} ×"),
        ("Paper's pipeline (DICOM → JPEG file → resize → predict), per image", f"{t_paper * 1000:.0f} ms", ""),
        ("Ours, full program (locator + identifier views + open-set score), per image", f"{t_ours * 1000:.0f} ms",
         f"speed-up {t_paper / t_ours:.2f} ×" + (f" (ours also {' and '.join(extra)})" if extra else "")),
    ]

    # 6. memory over a long batch stays flat
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(rss_mb())
            time.sleep(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    checkpoints = []
    for i in range(args.memory_files):
        predictor.predict(load(files[i % len(files)]), with_heatmap=True, heatmap_max_side=1024)
        if i in (min(99, args.memory_files // 10), args.memory_files - 1):
            checkpoints.append(rss_mb())
    stop.set()
    thread.join()
    rows += [(f"Peak RSS over {args.memory_files} files", f"{max(samples):.0f} MB",
              f"RSS after {min(100, args.memory_files // 10 + 1)} files {checkpoints[0]:.0f} MB, after all {checkpoints[-1]:.0f} MB")]

    # 3. start-up: window visible, first result (the viewer's own probe, VALVEREADER_TIMING), and
    # the whole process; three runs, medians
    probe = [sys.executable, "-m", "valvereader", "view", str(big), "--screenshot", str(work / "shot.png")]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", VALVEREADER_TIMING="1")
    shown, first, after_open, whole, codes = [], [], [], [], []
    for _ in range(3):
        start = time.perf_counter()
        proc = subprocess.run(probe, check=False, env=env, capture_output=True, text=True, timeout=120)
        whole.append(time.perf_counter() - start)
        codes.append(proc.returncode)
        for line in proc.stderr.splitlines():
            if line.startswith("window shown after "):
                shown.append(float(line.split(" after ")[1].split(" s")[0]))
            elif line.startswith("first result shown after "):
                first.append(float(line.split(" after ")[1].split(" s")[0]))
                after_open.append(float(line.split("(")[1].split(" s")[0]))

    # A reader who opens the file a few seconds after the window came up (the model preloaded).
    later = []
    for _ in range(3):
        proc = subprocess.run([sys.executable, "-c", _OPEN_LATER, str(big)], check=False, env=env, capture_output=True, text=True,
                              timeout=120)
        later += [float(line.split()[1]) for line in proc.stdout.splitlines() if line.startswith("first-result ")]

    def median_s(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} s" if values else "not printed"

    rows += [
        ("Start-up: process start → window shown", median_s(shown),
         f"target ≤ 2 s; runs {', '.join(f'{v:.2f}' for v in shown)} s (offscreen, the 2000×2500 DICOM on the command line)"),
        ("Start-up: file opened → its first result on screen, model load included", median_s(after_open),
         (f"target ≤ 3 s; runs {', '.join(f'{v:.2f}' for v in after_open)} s; from process start "
         f"{median_s(first)} (the model loads in the background from start-up, beside the file)")),
        ("Start-up: a file opened 3 s after the window → its first result", median_s(later),
         f"runs {', '.join(f'{v:.2f}' for v in later)} s: what a reader choosing a file waits, the model already loaded"),
        ("`valvereader view FILE --screenshot` whole process (start → result → picture → exit)",
         median_s(whole), f"exit {', '.join(str(c) for c in codes)}"),
    ]

    # 5. GPU
    earlier = sorted(ROOT.glob("benchmarks/gpu_*.json")) + sorted(ROOT.glob("benchmarks/gpu_runs/*/gpu_program.json"))
    rows.append(("CUDA latency / throughput", "not measured in this run",
                 f"no GPU on this machine; earlier GPU runs: {', '.join(str(p.relative_to(ROOT / 'benchmarks')) for p in earlier)} "
                 "(`benchmarks/gpu.py`: the networks; `benchmarks/gpu_program.py`: the program; section \"On a GPU\" below)"
                 if earlier else "no GPU on this machine or task"))

    load_after = os.getloadavg()[0]
    busy = max(load_before, load_after) > 2.5
    lines = [
        "# Benchmark results", "",
        f"Machine: {machine()}.", f"Model: {predictor.model_name}; pipeline {predictor.pipeline}; runtime ONNX Runtime on the CPU.",
        f"Command: `python benchmarks/run.py{' --quick' if args.quick else ''}` ({time.strftime('%Y-%m-%d %H:%M')}).",
        f"Load average (1 min) {load_before:.2f} before the run, {load_after:.2f} after"
        + (" — the machine was busy: timings are slower and noisier than on a quiet one." if busy else "."),
        "Timings are medians where repeated; ratios are within this one run.", "",
        "| measurement | value | note |", "| --- | --- | --- |",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows], "",
    ]
    args.output.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
