"""Fine-tune one member of the shipped identifier on real crops plus the located squares of
those crops (docs/training.md, "Candidate 2.0.2"), on the CPU.

    python scripts/tight_squares.py prepare WORK [--member 0] [--size 320] [--paste]
    python scripts/tight_squares.py train WORK OUT [--epochs 2] [--max-lr 3e-4] [--invert P] [--noise S]

``prepare`` runs the shipped locator on every crop of runs/identifier/split.json as the program
loads it and keeps, for each crop where it fires, the box squared ×1 (what the program reads
of a film) and a jittered copy (centre ±8 %, scale × exp(N(0, 0.12))), both prepared at the
member's input size (with ``--paste``: the located square of the crop pasted whole into a
2000 x 2500 film, as scripts/paste_films.py makes them, instead of the crop alone; docs/training.md,
"Candidate 2.0.3"), beside the crops themselves (the files scripts/gpu_session.py's
``train_worker`` reads: real_<size>.npy, regions_<size>.npy, meta.json), and the member's
weights as member.safetensors. ``train`` fine-tunes it there with the 2.0.1 recipe and writes
OUT/identifier_final_a.fp16.safetensors and OUT/result.json (validation numbers only; the
test-split indices are not evaluated).
"""
from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))


def _film_maker(seed: int, backgrounds: int = 24):
    """A function pasting a crop (float 0..1) whole into a 2000 x 2500 film at a random place away
    from the edges, as scripts/paste_films.py does (the crop shrunk to 60 % of the film's side at
    most): on one of ``backgrounds`` synthetic skulls (the benchmark's) or, one film in three, on a
    flat field of a random grey with noise. Returns (film, paste box)."""
    import gpu_session

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from run import synthetic_skull

    film = gpu_session.PASTED_FILM
    rng = np.random.default_rng([seed, 9])
    skulls = [synthetic_skull(film, rng, None) for _ in range(backgrounds)]

    def make(crop: np.ndarray):
        crop = gpu_session.fit_to_film(crop, film)
        if rng.random() < 1 / 3:
            pixels = np.clip(rng.uniform(0.15, 0.5) + rng.normal(0, 0.02, film), 0, 1).astype(np.float32)
        else:
            pixels = skulls[int(rng.integers(len(skulls)))].copy()
        box = gpu_session.paste_place(crop.shape, rng, film)
        pixels[box.y0 : box.y1, box.x0 : box.x1] = crop
        return pixels, box

    return make


def prepare(work: Path, member: int, size: int, seed: int = 52, paste: bool = False) -> None:
    from safetensors.numpy import load_file, save_file

    import gpu_session
    from valvereader.catalogue import VALVE_IDS
    from valvereader.io import load
    from valvereader.predict import load_predictor
    from valvereader.preprocess import Preprocess

    work.mkdir(parents=True, exist_ok=True)
    doc = json.loads((ROOT / "runs/identifier/split.json").read_text(encoding="utf-8"))
    n = len(doc["paths"])
    split = ["test"] * n
    for part in ("train", "validation"):
        for i in doc["split"][part]:
            split[i] = part
    labels = [list(VALVE_IDS).index(label) for label in doc["labels"]]
    pre = Preprocess(size, 0.02, True)
    predictor = load_predictor(device="cpu")
    rng = np.random.default_rng(seed)
    film = _film_maker(seed) if paste else None
    real = np.zeros((n, size, size), np.uint8)
    regions, source, variant = [], [], []
    for i, path in enumerate(doc["paths"]):
        path = Path(path) if Path(path).is_absolute() else ROOT / path
        real[i] = np.round(pre(gpu_session.load_grey(path)).pixels * 255).astype(np.uint8)
        if split[i] == "test":
            continue  # never trained or validated on
        if film is not None:  # the crop pasted whole into a film, located there
            from valvereader.radiograph import Radiograph, RadiographMeta

            radiograph = Radiograph(pixels=film(gpu_session.load_grey(path))[0], meta=RadiographMeta())
        else:
            radiograph = load(path)
        pixels, found = radiograph.pixels, predictor.locate(radiograph)
        if found.box is None:
            continue
        for v, box in enumerate((found.box, gpu_session._box_jitter(found.box, rng))):
            region = box.square(1.0, minimum=32).clip(pixels.shape)
            regions.append(np.round(pre(pixels, region).pixels * 255).astype(np.uint8))
            source.append(i)
            variant.append(v)
        if i % 200 == 0:
            print(f"{i}/{n}", file=sys.stderr, flush=True)
    np.save(work / f"real_{size}.npy", real)
    np.save(work / f"regions_{size}.npy", np.stack(regions))
    meta = {"labels": labels, "split": split, "region_source": source, "region_variant": variant,
            "region_label": [labels[i] for i in source], "region_position": [""] * len(source)}
    (work / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    state = load_file(str(ROOT / "weights/identifier.safetensors"))
    prefix = f"members.{member}."
    save_file({k[len(prefix):]: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in state.items() if k.startswith(prefix)},
              str(work / "member.safetensors"))
    print(f"{len(source)} squares of {sum(s != 'test' for s in split)} train/validation crops", file=sys.stderr)


def train(work: Path, out: Path, epochs: int, max_lr: float, size: int, seed: int, augment: dict | None = None) -> None:
    import gpu_session

    gpu_session._setup(ROOT)
    meta = json.loads((work / "meta.json").read_text())
    split = np.asarray(meta["split"])
    src = np.asarray(meta["region_source"])
    var = np.asarray(meta["region_variant"])
    train_real, val_real = np.flatnonzero(split == "train"), np.flatnonzero(split == "validation")
    out.mkdir(parents=True, exist_ok=True)
    args = types.SimpleNamespace(device="cpu", work=str(work), threads=2, backbone="efficientnet_lite0",
                                 init_from=str(work / "member.safetensors"), cudnn_benchmark=False, deadline=10**7, out=str(out))
    spec = dict(name="final_a", role="final", size=size, epochs=epochs, max_lr=max_lr, pct_start=0.2, batch=32,
                weight_decay=1e-4, label_smoothing=0.05, seed=seed, region_ratio=1.0,
                train_real=train_real.tolist(), train_regions=np.flatnonzero(np.isin(src, train_real)).tolist(),
                eval={"val_real": val_real.tolist(), "val_regions": np.flatnonzero(np.isin(src, val_real) & (var == 0)).tolist()},
                save=epochs > 0, **({"augment": augment} if augment else {}))
    result = gpu_session.train_worker(spec, args)
    (out / "result.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(json.dumps({k: {m: v[m] for m in ("n", "accuracy", "macro_f1")} for k, v in result["metrics"].items()}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("work", type=Path)
    p.add_argument("--member", type=int, default=0)
    p.add_argument("--size", type=int, default=320)
    p.add_argument("--paste", action="store_true", help="locate each crop pasted whole into a film, not the crop alone")
    t = sub.add_parser("train")
    t.add_argument("work", type=Path)
    t.add_argument("out", type=Path)
    t.add_argument("--epochs", type=int, default=2)
    t.add_argument("--max-lr", type=float, default=3e-4)
    t.add_argument("--size", type=int, default=320)
    t.add_argument("--seed", type=int, default=0)
    import gpu_session

    gpu_session.add_augment_flags(t)
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.work, args.member, args.size, paste=args.paste)
    else:
        train(args.work, args.out, args.epochs, args.max_lr, args.size, args.seed, gpu_session.augment_overrides(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
