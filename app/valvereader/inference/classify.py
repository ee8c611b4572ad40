"""`valvereader classify PATH... --output results.csv`: identify valves in many files.

Rows are written (and flushed to disk) as each file is done, so Ctrl-C or a crash keeps them;
``--resume`` skips files already in the CSV. A broken file gets a row with status "error" and
the reason; the run goes on. Loading and preprocessing run ahead of the networks in a
background thread (``Predictor.predict_many``), so only the networks are on the critical path.

``--boxes BOXES.csv`` gives the valve's region for some or all files (columns
``path,box_x0,box_y0,box_x1,box_y1``): those files are read in that region, as the reader's
region is read in the window, instead of being located; the ``box_source`` column says which.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
from collections.abc import Collection, Iterable, Iterator
from contextlib import closing
from pathlib import Path

from .. import DISCLAIMER
from ..catalogue import VALVE_IDS
from ..geometry import Box

log = logging.getLogger(__name__)

BASE_COLUMNS = [
    "path", "status", "error", "predicted", "confidence", "entropy", "margin", "verdict",
    "box_x0", "box_y0", "box_x1", "box_y1", "box_source", "model", "ood_score", "verdict_reason",
    "smoothed", "locator_score", "inverted",
]
BOX_COLUMNS = ("path", "box_x0", "box_y0", "box_x1", "box_y1")
EPILOG = (
    "Columns: the file, ok or error, the valve named and the numbers behind it (verdict confident, review, "
    "unknown, or no_valve: nothing on the film looked enough like a valve, or the file is not a plain "
    "X-ray; then predicted and the box are empty), the region read "
    "(box_x0..box_y1, image pixels, end-exclusive) and box_source: 'reader' where the region came "
    "from --boxes (on error rows too), 'located' where the program found the valve's box itself, "
    "'attention' where it found no box and read the whole image (the box is then where the model "
    "looked), empty on an error row of a file without a given region. "
    "inverted: 'yes' where the file (PNG, JPEG: not DICOM) looked like a negative, bone dark, and was read "
    "with its grey scale inverted. "
    "--boxes BOXES.csv: a CSV with columns path,box_x0,box_y0,box_x1,box_y1 (pixels of the image as "
    "stored; more columns are ignored); path is the file as it is found from the command line "
    "(e.g. scans/a.dcm for the folder scans), the same file by another path, or the file name alone "
    "when no other file of the batch has that name. Files with a region are read in it; the others "
    "are located as usual. A region outside its image makes that file an error row. "
    f"{DISCLAIMER}"
)
SKIP_SUFFIXES = {".csv", ".md", ".txt", ".json", ".jsonl", ".py", ".yaml", ".yml", ".pdf", ".html"}
SKIP_NAMES = {"DICOMDIR", "LICENSE", "README"}


def columns(valve_ids: Iterable[str] = VALVE_IDS) -> list[str]:
    return BASE_COLUMNS + [f"p_{valve_id}" for valve_id in valve_ids]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("paths", nargs="+", type=Path, help="files or folders (searched recursively)")
    parser.add_argument("--output", "-o", type=Path, default=Path("results.csv"),
                        help="CSV to write (default: %(default)s in the current folder)")
    parser.add_argument("--heatmaps", type=Path, help="folder for model-attention overlay PNGs")
    parser.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda or mps")
    parser.add_argument("--weights", type=Path, help="weights folder (default: the bundled weights)")
    parser.add_argument("--runtime", choices=["onnx", "torch"], help="force a runtime")
    parser.add_argument("--resume", action="store_true", help="skip files already in --output")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--boxes", type=Path, metavar="BOXES.csv",
                        help="the valve's region for some or all files, read there instead of located "
                             "(columns path,box_x0,box_y0,box_x1,box_y1; see below)")


def iter_files(paths: Iterable[Path], exclude: Collection[Path] = frozenset()) -> Iterator[Path]:
    """Files under ``paths`` in a stable order, skipping hidden files and obvious non-images."""
    for path in paths:
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    candidate = Path(root) / name
                    if name.startswith(".") or name in SKIP_NAMES or candidate.suffix.lower() in SKIP_SUFFIXES:
                        continue
                    if candidate.resolve() not in exclude:
                        yield candidate
        else:
            yield path


def _drop_torn_tail(output: Path) -> None:
    """A run killed mid-write can leave a partial last line: cut it so resume starts clean."""
    data = output.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(output, "r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)


def _done_paths(output: Path) -> set[str]:
    """Paths with a complete row (status ok or error) in an earlier run's CSV."""
    if not output.exists():
        return set()
    _drop_torn_tail(output)
    with open(output, newline="", encoding="utf-8") as handle:
        return {row["path"] for row in csv.DictReader(handle) if row.get("status") in ("ok", "error")}


def _header(output: Path) -> list[str]:
    with open(output, newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle), [])


def _load(path: Path):
    from ..io import load
    from ..logs import remember_identifiers

    radiograph = load(path)
    remember_identifiers(radiograph.meta)
    return radiograph


def _error_row(path: Path, message: str) -> dict[str, object]:
    return {"path": str(path), "status": "error", "error": message}


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError, ValveReaderError, WeightsMissingError
    from ..logs import setup_logging
    from .predictor import load_predictor

    if not any(getattr(h, "_valvereader", False) for h in logging.getLogger("valvereader").handlers):
        setup_logging()

    output: Path = args.output
    done = _done_paths(output) if args.resume else set()
    files = [p for p in iter_files(args.paths, {output.resolve()}) if str(p) not in done]
    regions: dict[Path, Box] = {}
    if args.boxes is not None:
        try:
            regions = match_boxes(read_boxes(args.boxes), files)
        except BoxesError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    try:
        predictor = load_predictor(args.weights, args.device, args.runtime)
    except WeightsMissingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except ValveReaderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3

    fieldnames = columns(predictor.valve_ids)
    append = args.resume and output.exists()
    if append:  # rows go on under the header already there (an older version's has fewer columns)
        fieldnames = _header(output) or fieldnames
    output.parent.mkdir(parents=True, exist_ok=True)
    if args.heatmaps:
        args.heatmaps.mkdir(parents=True, exist_ok=True)
    print(f"{DISCLAIMER}  Model: {predictor.model_name} ({predictor.pipeline}, {predictor.device})", file=sys.stderr)
    if args.boxes is not None:
        print(f"{len(regions)} of {len(files)} file(s) read in the region given in {args.boxes}", file=sys.stderr)

    from tqdm import tqdm

    ok = errors = 0
    with open(output, "a" if append else "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames, extrasaction="ignore")
        if not append:
            writer.writeheader()
        # The loader thread loads and preprocesses the next two files while the networks work
        # on this one; results come back in file order, a failure as the exception it raised.
        # closing(): on Ctrl-C (or any exception here) the generator is closed at once, which
        # cancels the queued loads instead of leaving them to the garbage collector.
        results = _predictions(predictor, files, regions, bool(args.heatmaps))
        progress = tqdm(total=len(files), unit="file", file=sys.stderr, disable=args.no_progress)
        with closing(results):
            for index, (path, radiograph, result) in enumerate(results):
                try:
                    if isinstance(result, Exception):
                        raise result  # handled below as if predict had raised it here
                    row = prediction_row(path, result)
                    if args.heatmaps:
                        save_overlay(radiograph.pixels, result, args.heatmaps / f"{index:05d}_{path.stem}.png")
                    ok += 1
                except InputError as exc:
                    row, errors = _error_row(path, str(exc)), errors + 1
                except ValveReaderError as exc:
                    row, errors = _error_row(path, f"{type(exc).__name__}: {exc}"), errors + 1
                except MemoryError:
                    row, errors = _error_row(path, "out of memory while reading this file"), errors + 1
                except Exception as exc:  # noqa: BLE001 - one broken file must not end a batch of thousands
                    row, errors = _error_row(path, f"unexpected {type(exc).__name__}: {exc}"), errors + 1
                if row["status"] == "error":
                    row["box_source"] = "reader" if path in regions else ""
                    log.warning("skipped %s: %s", path, row["error"])
                    progress.write(f"failed: {path}: {row['error']}", file=sys.stderr)  # above the bar
                writer.writerow(row)
                handle.flush()
                os.fsync(handle.fileno())
                progress.update(1)
        progress.close()
    log.info("classify: %d classified, %d failed, %d skipped -> %s", ok, errors, len(done), output)
    print(f"{ok} classified, {errors} failed, {len(done)} skipped (already done) -> {output}", file=sys.stderr)
    return 0 if ok > 0 or (not files and done) else 1


def prediction_row(path: Path, prediction) -> dict[str, object]:
    no_valve = prediction.verdict.value == "no_valve"  # nothing named: no valve, no box
    box = None if no_valve else prediction.box
    row: dict[str, object] = {
        "path": str(path),
        "status": "ok",
        "error": "",
        "predicted": prediction.named,
        "confidence": f"{prediction.confidence:.4f}",
        "entropy": f"{prediction.entropy:.4f}",
        "margin": f"{prediction.margin:.4f}",
        "verdict": prediction.verdict.value,
        "box_x0": box.x0 if box else "",
        "box_y0": box.y0 if box else "",
        "box_x1": box.x1 if box else "",
        "box_y1": box.y1 if box else "",
        "box_source": prediction.box_source if prediction.box_source in ("reader", "located", "attention") and not no_valve else "",
        "model": prediction.model,
        # (higher = less like the training valves) and the rule that gave the verdict
        "ood_score": "" if prediction.ood_score is None else f"{prediction.ood_score:.4f}",
        "verdict_reason": prediction.verdict_reason,
        # "yes": the view read was noisier than any training image and was blurred first
        "smoothed": "yes" if prediction.smoothed else "",
        # the locator's peak score of the region read (how valve-like the locator found it)
        "locator_score": "" if prediction.locator_score is None else f"{prediction.locator_score:.4f}",
        # "yes": the file looked like a negative and was read with its grey scale inverted
        "inverted": "yes" if prediction.inverted else "",
    }
    for valve_id, p in zip(prediction.valve_ids, prediction.probabilities):
        row[f"p_{valve_id}"] = f"{float(p):.5f}"
    return row


class BoxesError(ValueError):
    """A --boxes file that cannot be used as it is (the message says where and why)."""


def read_boxes(path: Path) -> dict[str, Box]:
    """The regions of a --boxes CSV, by its ``path`` text.

    Raises:
        BoxesError: unreadable file, missing columns, a coordinate that is not a number, an
            empty region (x1 <= x0 or y1 <= y0), or a path given twice.
    """
    import math

    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in BOX_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise BoxesError(f"{path}: columns {', '.join(BOX_COLUMNS)} are needed; "
                                 f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing")
            boxes: dict[str, Box] = {}
            for line, row in enumerate(reader, start=2):
                name = (row.get("path") or "").strip()
                if not name:
                    raise BoxesError(f"{path}, line {line}: the path is empty")
                try:
                    values = [float((row.get(c) or "").strip()) for c in BOX_COLUMNS[1:]]
                except ValueError:
                    raise BoxesError(f"{path}, line {line}: box_x0..box_y1 must be numbers (pixels), not "
                                     f"{[row.get(c) for c in BOX_COLUMNS[1:]]}") from None
                if not all(math.isfinite(v) for v in values):
                    raise BoxesError(f"{path}, line {line}: box_x0..box_y1 must be finite numbers")
                box = Box(*(round(v) for v in values))
                if box.width <= 0 or box.height <= 0:
                    raise BoxesError(f"{path}, line {line}: the region {box.as_tuple()} is empty "
                                     "(box_x1 must exceed box_x0, box_y1 box_y0)")
                if name in boxes:
                    raise BoxesError(f"{path}, line {line}: {name} is given twice")
                boxes[name] = box
    except OSError as exc:
        raise BoxesError(f"{path} cannot be read: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise BoxesError(f"{path} is not a readable CSV: {exc}") from exc
    return boxes


def match_boxes(boxes: dict[str, Box], files: list[Path]) -> dict[Path, Box]:
    """The region of each file that has one: its path as found from the command line, the same
    file by another path, or its file name when no other file of the batch has that name.
    Rows that match no file are reported on stderr (a file done in an earlier run is not in
    ``files``).

    Raises:
        BoxesError: a file name alone that names several files of the batch.
    """
    by_text = {str(f): f for f in files}
    by_place: dict[str, Path] = {}
    by_name: dict[str, list[Path]] = {}
    for each in files:
        by_place.setdefault(os.path.normcase(os.path.abspath(each)), each)
        by_name.setdefault(each.name, []).append(each)
    found: dict[Path, Box] = {}
    unmatched: list[str] = []
    for text, box in boxes.items():
        file: Path | None = by_text.get(text) or by_place.get(os.path.normcase(os.path.abspath(text)))
        if file is None and "/" not in text and os.sep not in text:
            named = by_name.get(text, [])
            if len(named) > 1:
                raise BoxesError(f"{text} names {len(named)} files ({', '.join(map(str, named[:3]))}"
                                 f"{', ...' if len(named) > 3 else ''}): give its path instead")
            file = named[0] if named else None
        if file is None:
            unmatched.append(text)
        elif found.setdefault(file, box) != box:
            raise BoxesError(f"{file} is given two different regions")
    if unmatched:
        print(f"note: {len(unmatched)} row(s) of the boxes file match no file to read: "
              f"{', '.join(unmatched[:5])}{', ...' if len(unmatched) > 5 else ''}", file=sys.stderr)
    return found


def _predictions(predictor, files: list[Path], regions: dict[Path, Box], with_heatmap: bool):
    """``(path, radiograph, prediction or exception)`` for every file, in order: files with a
    region read in it (loaded one ahead on a thread of their own), the others through
    ``predict_many``."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    from ..errors import InputError

    located = predictor.predict_many([f for f in files if f not in regions], load=_load,
                                     with_heatmap=with_heatmap, ahead=2)
    boxed = iter([f for f in files if f in regions])
    with closing(located), ThreadPoolExecutor(max_workers=1, thread_name_prefix="valvereader-boxes") as pool:
        loading: deque = deque()

        def top_up() -> None:
            while len(loading) < 2 and (file := next(boxed, None)) is not None:
                loading.append(pool.submit(_load, file))

        top_up()
        try:
            for path in files:
                if path not in regions:
                    yield next(located)
                    continue
                radiograph = None
                try:
                    radiograph = loading.popleft().result()
                    top_up()
                    try:
                        result = predictor.predict(radiograph, with_heatmap=with_heatmap, region=regions[path])
                    except ValueError as exc:  # the region lies outside this image
                        raise InputError(str(exc)) from exc
                except Exception as exc:  # noqa: BLE001 - one bad file must not end a batch
                    top_up()
                    result = exc
                yield path, radiograph, result
        finally:
            for future in loading:
                future.cancel()


def save_overlay(pixels, prediction, path: Path) -> None:
    """Grey image with the model-attention map in a jet-like palette and the box."""
    import numpy as np
    from PIL import Image, ImageDraw

    grey = (np.clip(pixels, 0, 1) * 255).astype(np.uint8)
    rgb = np.stack([grey] * 3, axis=-1).astype(np.float32)
    if prediction.heatmap is not None:
        h = prediction.heatmap
        colour = np.stack([np.clip(1.5 - abs(4 * h - 3), 0, 1), np.clip(1.5 - abs(4 * h - 2), 0, 1),
                           np.clip(1.5 - abs(4 * h - 1), 0, 1)], axis=-1) * 255
        alpha = (0.45 * (h > 0.05))[..., None]
        rgb = rgb * (1 - alpha) + colour * alpha
    image = Image.fromarray(rgb.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    if prediction.box is not None:
        draw.rectangle(prediction.box.as_tuple(), outline=(0, 255, 0), width=max(2, image.width // 400))
    draw.text((8, 8), f"{prediction.predicted} {prediction.confidence:.2f} ({prediction.verdict.label}) - model attention", fill=(255, 255, 0))
    draw.text((8, image.height - 16), DISCLAIMER, fill=(255, 255, 0))
    import io as _io

    from ..atomic import write_bytes  # written atomically, like every export

    buffer = _io.BytesIO()
    image.save(buffer, format="PNG")
    write_bytes(path, buffer.getvalue())
