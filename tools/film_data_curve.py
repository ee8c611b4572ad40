"""How film naming grows with the number of training backgrounds: the identifier's film-region
head (``valvereader.training.film_head``) fitted on the regions of a random share of the
training films' backgrounds, read on validation regions' true boxes (a diagnostic: nothing is
chosen or shipped from it).

    python tools/film_data_curve.py --train DIR [DIR ...] --validation DIR --out curve.json \\
        [--weights weights] [--decay 0.01] [--counts 45,90,135,180] [--repeats 3]

``--train`` and ``--validation`` are ``film_regions`` folders cut at the identifier card's input
size. Each region set is read once by the shipped identifier (as the program reads a box on a
film, its mirror reading included) and cached beside ``--out``. For each count of backgrounds and
each repeat, that many training backgrounds are drawn at random, the head is fitted at
``--decay`` on all their regions (every film of theirs, true and jittered boxes), and the share
of the validation true boxes it names right is recorded; also without a head.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def features(weights: Path, folder: Path, cache: Path) -> dict[str, np.ndarray]:
    """The shipped identifier's pooled features and logits for every region of ``folder``."""
    from valvereader.training.film_head import region_features

    if cache.is_file():
        with np.load(cache) as saved:
            return {key: saved[key] for key in saved.files}
    data = region_features(weights, folder)
    np.savez(cache, **data)
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, nargs="+", required=True)
    parser.add_argument("--validation", type=Path, required=True)
    parser.add_argument("--weights", type=Path, default=Path("weights"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--decay", type=float, default=0.01)
    parser.add_argument("--counts", default="45,90,135,180")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from valvereader.training.film_head import fit_head, joined, named_right

    args.out.parent.mkdir(parents=True, exist_ok=True)
    sets = [features(args.weights, folder, args.out.with_name(f"{args.out.stem}_{folder.name}.npz")) for folder in args.train]
    train = joined(sets)
    val = features(args.weights, args.validation, args.out.with_name(f"{args.out.stem}_{args.validation.name}.npz"))
    true_box = val["variant"] == 0
    vp, vl, vy = val["pooled"][true_box], val["logits"][true_box], val["label"][true_box]
    backgrounds = np.unique(train["background"])
    rng = np.random.default_rng(args.seed)
    result = {"train": [str(f) for f in args.train], "validation": str(args.validation), "decay": args.decay,
              "validation_true_boxes": int(true_box.sum()), "backgrounds": len(backgrounds),
              "no_head": round(float(named_right(vp, vl, vy, None).mean()), 4), "curve": []}
    for count in (int(c) for c in args.counts.split(",")):
        shares = []
        for _ in range(args.repeats if count < len(backgrounds) else 1):
            chosen = rng.choice(backgrounds, min(count, len(backgrounds)), replace=False)
            keep = np.isin(train["background"], chosen)
            head = fit_head(train["pooled"][keep], train["logits"][keep], train["label"][keep], args.decay)
            shares.append(float(named_right(vp, vl, vy, head).mean()))
        result["curve"].append({"backgrounds": count, "named_right": [round(s, 4) for s in shares],
                                "mean": round(float(np.mean(shares)), 4)})
        print(json.dumps(result["curve"][-1]), file=sys.stderr, flush=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
