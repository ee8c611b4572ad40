"""How the shipped program reads real crops that were changed the way another hospital's crops
might differ from the public data set: turned, inverted, darker or flatter, compressed, smaller,
noisier, cut looser. A measurement only (nothing is chosen on it).

    python scripts/shift_study.py validation OUT_DIR [--split runs/identifier/split.json] [--only NAME ...] [--weights DIR]

Each change is applied to every crop of the split's part, written as 8-bit PNG under
OUT_DIR/<change>/, and read by the program (``predict_many``, as ``valvereader classify`` does).
Prints a Markdown table: accuracy, verdicts, and the results that were confident and wrong
(the ones that matter for safety); writes OUT_DIR/results.json with every file's result.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import gpu_session  # (the crops read as the training scripts read them)


def _rotate(angle: float) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    def change(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        image = Image.fromarray(np.round(x * 255).astype(np.uint8))
        return np.asarray(image.rotate(angle, resample=Image.BILINEAR, expand=True, fillcolor=0), dtype=np.float32) / 255.0
    return change


def _turned_inside(angle: float) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    """Turned, then cut to the largest upright rectangle inside the turned crop (no corners)."""
    def change(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        image = Image.fromarray(np.round(x * 255).astype(np.uint8))
        turned = image.rotate(angle, resample=Image.BILINEAR, expand=True, fillcolor=0)
        w, h = image.size
        a = np.deg2rad(angle % 180)
        sin, cos = abs(np.sin(a)), abs(np.cos(a))
        # Largest axis-aligned rectangle inside a w × h rectangle turned by ``angle``.
        long_side, short_side = max(w, h), min(w, h)
        if short_side <= 2.0 * sin * cos * long_side or abs(sin - cos) < 1e-10:
            half = 0.5 * short_side
            wr, hr = (half / sin, half / cos) if w >= h else (half / cos, half / sin)
        else:
            cos2 = cos * cos - sin * sin
            wr, hr = (w * cos - h * sin) / cos2, (h * cos - w * sin) / cos2
        cx, cy = turned.width / 2.0, turned.height / 2.0
        box = (int(np.ceil(cx - wr / 2)), int(np.ceil(cy - hr / 2)), int(cx + wr / 2), int(cy + hr / 2))
        return np.asarray(turned.crop(box), dtype=np.float32) / 255.0
    return change


def _scale(factor: float) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    def change(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        image = Image.fromarray(np.round(x * 255).astype(np.uint8))
        size = (max(8, round(image.width * factor)), max(8, round(image.height * factor)))
        return np.asarray(image.resize(size, Image.BILINEAR, reducing_gap=None), dtype=np.float32) / 255.0
    return change


def _jpeg(quality: int) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    def change(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        buffer = io.BytesIO()
        Image.fromarray(np.round(x * 255).astype(np.uint8)).save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as image:
            return np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    return change


def _looser(margin: float) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    """The crop inside a grey frame ``margin`` × its side wide on every side (a looser cut
    whose surroundings carry no skull: the kindest stand-in for more context)."""
    def change(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = x.shape
        dy, dx = round(h * margin), round(w * margin)
        out = np.full((h + 2 * dy, w + 2 * dx), 0.3, dtype=np.float32)
        out[dy : dy + h, dx : dx + w] = x
        return out
    return change


# Fixed before any was run (fifteenth session).
CHANGES: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "none": lambda x, rng: x,
    "turned 30°": _rotate(30),
    "turned 90°": _rotate(90),
    "turned 270°": _rotate(270),
    "inverted": lambda x, rng: 1.0 - x,
    "gamma 0.5 (brighter)": lambda x, rng: x ** 0.5,
    "gamma 2 (darker)": lambda x, rng: x ** 2.0,
    "contrast × 0.5": lambda x, rng: np.clip(0.5 + (x - 0.5) * 0.5, 0.0, 1.0),
    "JPEG quality 30": _jpeg(30),
    "half size": _scale(0.5),
    "quarter size": _scale(0.25),
    "noise σ 0.05": lambda x, rng: np.clip(x + rng.normal(0.0, 0.05, x.shape), 0.0, 1.0),
    "looser cut (grey frame 25 %)": _looser(0.25),
    # Added after the first run, to see where the noise starts to matter (the validation crops'
    # own noise, Immerkaer's estimate: median 0.001, 99th percentile 0.013, largest 0.023).
    "noise σ 0.01": lambda x, rng: np.clip(x + rng.normal(0.0, 0.01, x.shape), 0.0, 1.0),
    "noise σ 0.02": lambda x, rng: np.clip(x + rng.normal(0.0, 0.02, x.shape), 0.0, 1.0),
    "noise σ 0.03": lambda x, rng: np.clip(x + rng.normal(0.0, 0.03, x.shape), 0.0, 1.0),
    # Added after the noise guard, to tell the harsh cases from the usual ones: JPEG as most
    # exports write it, and a turn without the black corners that ``expand`` adds.
    "JPEG quality 75": _jpeg(75),
    "turned 30°, corners cut away": _turned_inside(30),
    # Added later still: crops exported as 16-bit PNG, as a DICOM's stored values often are.
    "16-bit PNG, full range": lambda x, rng: x,
    "16-bit PNG, 12-bit values": lambda x, rng: x,
}
SIXTEEN_BIT = {"16-bit PNG, full range": 65535, "16-bit PNG, 12-bit values": 4095}  # the largest value written


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


def make(split: Path, part: str, out: Path, names: list[str], seed: int = 11) -> dict[str, list[tuple[Path, str]]]:
    doc = json.loads(split.read_text(encoding="utf-8"))
    files: dict[str, list[tuple[Path, str]]] = {}
    for name in names:
        rng = np.random.default_rng(seed)
        folder = out / slug(name)
        folder.mkdir(parents=True, exist_ok=True)
        files[name] = []
        for i in doc["split"][part]:
            path = Path(doc["paths"][i])
            if not path.is_absolute():
                path = (ROOT / path).resolve()
            changed = CHANGES[name](gpu_session.load_grey(path), rng)
            target = folder / f"{part}_{i:04d}.png"
            levels = SIXTEEN_BIT.get(name)
            if levels is None:
                Image.fromarray(np.round(np.clip(changed, 0.0, 1.0) * 255).astype(np.uint8)).save(target)
            else:  # a 16-bit PNG whose values span 0..levels
                Image.fromarray(np.round(np.clip(changed, 0.0, 1.0) * levels).astype(np.uint16)).save(target)
            files[name].append((target, doc["labels"][i]))
    return files


def read(files: dict[str, list[tuple[Path, str]]], guard: bool = True, weights: Path | None = None) -> tuple[list[str], dict]:
    from valvereader.predict import load_predictor

    predictor = load_predictor(weights, device="cpu")
    if not guard:  # the identifier's inputs as before the noise guard (valvereader.noise)
        predictor._identify.noise_limit = None
    lines = ["| change | n | accuracy | confident | review | unknown | confident and wrong | accuracy among confident |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    results: dict[str, list[dict]] = {}
    for name, items in files.items():
        labels = {path: label for path, label in items}
        rows = results[name] = []
        for path, _, result in predictor.predict_many([p for p, _ in items], with_heatmap=False):
            if isinstance(result, Exception):
                print(f"{path}: {result}", file=sys.stderr)
                continue
            rows.append({"file": path.name, "label": labels[path], "predicted": result.predicted,
                         "verdict": str(result.verdict.value if hasattr(result.verdict, "value") else result.verdict),
                         "confidence": float(result.confidence), "pipeline": result.pipeline,
                         "ood_score": None if result.ood_score is None else float(result.ood_score)})
        n = len(rows)
        right = sum(r["predicted"] == r["label"] for r in rows)
        count = {v: sum(r["verdict"] == v for r in rows) for v in ("confident", "review", "unknown")}
        bad = sum(r["verdict"] == "confident" and r["predicted"] != r["label"] for r in rows)
        among = (count["confident"] - bad) / count["confident"] if count["confident"] else float("nan")
        lines.append(f"| {name} | {n} | {right / max(n, 1):.3f} | {count['confident']} | {count['review']} | {count['unknown']} "
                     f"| {bad} | {among:.3f} |")
        print(lines[-1], flush=True)
    return lines, results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", help="the split's part: validation or test")
    parser.add_argument("out", type=Path)
    parser.add_argument("--split", type=Path, default=ROOT / "runs/identifier/split.json")
    parser.add_argument("--only", nargs="+", choices=list(CHANGES), help="these changes only")
    parser.add_argument("--no-noise-guard", action="store_true", help="read without valvereader.noise's smoothing")
    parser.add_argument("--weights", type=Path, help="a weights folder other than the shipped one (a candidate)")
    args = parser.parse_args()
    files = make(args.split, args.part, args.out, args.only or list(CHANGES))
    lines, results = read(files, guard=not args.no_noise_guard, weights=args.weights)
    (args.out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
