"""Stand-ins for valve types the identifier never saw, read through the program: how many the verdict
calls "confident", and whether other open-set evidence would separate them better.

    python tools/openset_standins.py make validation --films FILMS --out runs/standins
    python tools/openset_standins.py make train --out runs/standins          # only for --heads
    python tools/openset_standins.py extract --out runs/standins             # every set made so far
    python tools/openset_standins.py report --runs runs/standins --out docs/evaluation/openset-verdict/standins.json [--heads]

Two stand-in sets, neither of them a real unseen valve:
- ``unknown``: phantom radiographs (``valvereader.phantoms``) of the two drawn non-catalogue designs only
  (a Spitz-Holter-like and a fixed-pressure-Codman-like valve), each cut around its true box
  (1.1-1.5 times its longer side), saved as 8-bit PNG as the public crops are;
- ``negative``: the locator's most valve-like candidate on valve-free films (real anatomy, real
  non-valve metal, other shunt parts): for ``validation`` the valve-free films of FILMS (a folder
  with ``ground_truth.csv``, rows of kind ``negative``); for ``train`` the train-part skull
  radiographs of ``phantoms/realfilm_split.csv`` (two candidates each). They come from research-use
  radiographs: they stay under ``--out`` and are never committed.

``extract`` reads every crop (and the identifier's own validation and train crops) through
``Predictor.predict`` as ``classify`` does, and keeps its verdict inputs and the pooled features
of the view read, as it is and mirrored. ``report`` gives, for the shipped and the previous
thresholds, the share of each set called confident, and the AUROC (known validation crops against
each set) of the shipped score and of alternatives: the k-th nearest training crop's cosine distance
(k = 1, 5, 10) and the Mahalanobis score of the mean of the view's and its mirror image's features.
``--heads`` adds leave-one-class-out runs of a linear head on the shipped (frozen) features, trained
with and without outlier exposure (the ``train`` stand-ins, pushed towards a uniform probability):
optimistic, since the backbone saw every class, but the two heads are measured alike.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SEEDS = {"validation": 902, "train": 904}  # phantom seeds of the two parts (never the test seeds)
PREVIOUS = {"ood_review": 95.65132071979745, "ood_unknown": 225.223505910495}  # 2.2.0 as first shipped


def make(part: str, out: Path, films: Path | None, count: int = 300) -> None:
    from outside_films import cut_crops, save_crop

    from valvereader.inference.predictor import load_predictor
    from valvereader.io import load
    from valvereader.phantoms import generate

    phantoms = out / f"phantoms_{part}"
    truth = generate(count, phantoms, seed=SEEDS[part], composite_fraction=0.0, unknown_fraction=1.0, workers=1)
    unknown = out / f"unknown_{part}"
    unknown.mkdir(parents=True, exist_ok=True)
    made = len(cut_crops(truth, SEEDS[part], lambda row: unknown / f"{row['valve_id']}__{Path(row['file']).stem}.png"))
    print(f"{unknown}: {made} crops", flush=True)
    predictor = load_predictor(device="cpu")
    negative = out / f"negative_{part}"
    negative.mkdir(parents=True, exist_ok=True)
    if part == "validation":
        if films is None:
            raise SystemExit("make validation needs --films (valve-free films with a ground_truth.csv)")
        sources = [(films / r["file"], 1) for r in csv.DictReader((films / "ground_truth.csv").open(encoding="utf-8"))
                   if r["kind"] == "negative"]
    else:
        split = ROOT / "app/valvereader/phantoms/realfilm_split.csv"
        radiographs = ROOT.parent / "shared/data/skull-radiographs"
        sources = [(radiographs / r["file"], 2) for r in csv.DictReader(split.open(encoding="utf-8")) if r["part"] == "train"]
    made = 0
    for path, keep in sources:
        radiograph = load(path)
        found, _ = predictor.locate_candidates(radiograph)
        for k, candidate in enumerate(found[:keep]):
            made += save_crop(radiograph.pixels, candidate.box.as_tuple(), negative / f"{path.stem}_{k}.png", 1.0)  # type: ignore[union-attr]
    print(f"{negative}: {made} crops", flush=True)


def _read(files: list[str], labels: list[int], out: Path, weights: Path | None) -> None:
    from valvereader.geometry import Box
    from valvereader.inference.predictor import load_predictor
    from valvereader.io import load

    predictor = load_predictor(weights, device="cpu")
    keys = ("path", "label", "pred", "confidence", "ood", "ratio", "verdict", "feat", "distances", "distances_mean")
    rows: dict[str, list] = {k: [] for k in keys}
    for path, label in zip(files, labels):
        radiograph = load(path)
        prediction = predictor.predict(radiograph, with_heatmap=False)
        read = prediction.candidates[0]["read"] if prediction.candidates else None
        _, outputs = predictor.identify(radiograph, None if read is None else Box(*read))
        pooled = outputs["features"].mean(axis=(2, 3))
        mirrored = outputs["mirror_features"].mean(axis=(2, 3)) if "mirror_features" in outputs else pooled
        values = (path, label, prediction.index, prediction.confidence,
                  np.nan if prediction.ood_score is None else prediction.ood_score,
                  np.nan if prediction.distance_ratio is None else prediction.distance_ratio,
                  prediction.verdict.value, pooled[0].astype(np.float32),
                  predictor._scorer.class_distances(pooled)[0], predictor._scorer.class_distances((pooled + mirrored) / 2)[0])
        for key, value in zip(keys, values):
            rows[key].append(value)
    np.savez(out, **{k: np.asarray(v) for k, v in rows.items()})
    print(f"{out}: {len(files)}", flush=True)


def extract(out: Path, weights: Path | None) -> None:
    from valvereader.catalogue import VALVE_IDS

    split = json.loads((ROOT / "docs/evaluation/identifier/split.json").read_text(encoding="utf-8"))
    for part in ("validation", "train"):
        if not (out / f"known_{part}.npz").exists():
            indices = split["split"][part]
            _read([str((ROOT / split["paths"][i]).resolve()) for i in indices],
                  [VALVE_IDS.index(split["labels"][i]) for i in indices], out / f"known_{part}.npz", weights)
    for folder in sorted(p for p in out.iterdir() if p.is_dir() and p.name.split("_")[0] in ("unknown", "negative")):
        target = out / f"{folder.name}.npz"
        if not target.exists():
            files = sorted(str(p) for p in folder.glob("*.png"))
            _read(files, [-1] * len(files), target, weights)


def _confident(d: dict, t: dict, review: float) -> np.ndarray:
    """The verdict rule's "confident" at the card's probability threshold and a cap ``review``."""
    from valvereader.prediction import Verdict, VerdictThresholds

    rule = VerdictThresholds(t["confident"], t["unknown_confidence"], review, t.get("ood_unknown"), t.get("between_ratio"))
    return np.array([v != "no_valve" and rule.verdict(float(c), float(o), None if np.isnan(r) else float(r)) is Verdict.CONFIDENT
                     for c, o, r, v in zip(d["confidence"], d["ood"], d["ratio"], d["verdict"])])


def report(runs: Path, out: Path, heads: bool) -> dict:
    from valvereader.training.openset import auroc, knn_distances, tightest_cap

    t = json.loads((ROOT / "weights/identifier.json").read_text(encoding="utf-8"))["thresholds"]
    data = {p.stem: dict(np.load(p)) for p in sorted(runs.glob("*.npz"))}
    known, train = data["known_validation"], data["known_train"]
    stand_ins = [name for name in data if name.endswith("_validation") and not name.startswith("known")]
    scores = {"mahalanobis (shipped)": lambda d: d["distances"].min(1),
              "mahalanobis of view + mirror mean": lambda d: d["distances_mean"].min(1)}

    def nearest(k: int):  # k-th nearest training crop (the training crops first, each query after them)
        return lambda d: knn_distances(np.concatenate([train["feat"], d["feat"]]).astype(np.float64),
                                       np.arange(len(train["feat"])), (k,))[k][len(train["feat"]):]
    for k in (1, 5, 10):
        scores[f"{k}-th nearest training crop"] = nearest(k)
    result: dict = {"n": {name: len(data[name]["pred"]) for name in ["known_validation", *stand_ins]}, "confident": {}, "auroc": {}}
    for label, review in (("shipped", t["ood_review"]), ("previous", PREVIOUS["ood_review"])):
        result["confident"][label] = {name: round(float(_confident(data[name], t, review).mean()), 4) for name in ["known_validation", *stand_ins]}
    passes = known["confidence"] >= t["confident"]
    share = float(_confident(known, t, t["ood_review"]).mean())
    for name, score in scores.items():
        s_known = score(known)
        cap = tightest_cap(s_known, passes, share)
        row = {}
        for other in stand_ins:
            s = score(data[other])
            row[other] = {"auroc": round(auroc(s_known, s), 4),
                          "confident_at_same_known_share": round(float(((data[other]["confidence"] >= t["confident"]) & (s < cap)).mean()), 4)}
        result["auroc"][name] = row
    # The ensemble's members' own readings (each member's half of the pooled features through its
    # half of the joined classifier layer): confident crops whose two members name different valves.
    from safetensors.numpy import load_file

    weight = load_file(str(ROOT / "weights/identifier.classifier.safetensors"))["classifier.weight"].astype(np.float64)
    half = weight.shape[1] // 2

    def disagree(d: dict) -> np.ndarray:
        f = d["feat"].astype(np.float64)
        return (f[:, :half] @ weight[:, :half].T).argmax(1) != (f[:, half:] @ weight[:, half:].T).argmax(1)
    result["members_disagree"] = {name: {"all": round(float(disagree(data[name]).mean()), 4),
                                         "confident": int((disagree(data[name]) & _confident(data[name], t, t["ood_review"])).sum())}
                                  for name in ["known_validation", *stand_ins]}
    if heads:
        from _standin_heads import loco_heads  # torch, only here

        outliers = np.concatenate([data[n]["feat"] for n in data if n.endswith("_train") and not n.startswith("known")])
        result["heads"] = loco_heads(train, known, outliers, {n: data[n]["feat"] for n in stand_ins})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make")
    m.add_argument("part", choices=sorted(SEEDS))
    m.add_argument("--out", type=Path, required=True)
    m.add_argument("--films", type=Path)
    m.add_argument("--count", type=int, default=300)
    e = sub.add_parser("extract")
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--weights", type=Path)
    r = sub.add_parser("report")
    r.add_argument("--runs", type=Path, required=True)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--heads", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "make":
        make(args.part, args.out, args.films, args.count)
    elif args.command == "extract":
        extract(args.out, args.weights)
    else:
        print(json.dumps(report(args.runs, args.out, args.heads), indent=1))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
