"""Unseen-valve AUROC of two networks joined, by the CPU's partial leave-one-class-out protocol.

``scripts/loco_partial.py`` fine-tunes the upper part of an ImageNet Lite0 once per held-out
valve and keeps every run's pooled features and logits (``--runs``). Given two such files (for
example 320 px and 384 px inputs), this joins each held-out valve's two runs the way identifier
2.0.0 joins its members: pooled features side by side, then the shipped score (Mahalanobis on
the L2-normalised vector, fitted on the known valves' train-split crops); logits averaged for
max softmax. The AUROC is that of the known valves' test-split crops against every crop of the
held-out valve, as in loco_partial.py. Each file alone is scored the same way, for comparison.

    python scripts/loco_partial_ensemble.py RUNS_A.npz RUNS_B.npz [--split runs/identifier/split.json] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def loco_aurocs(runs: list[dict[str, np.ndarray]], labels: np.ndarray, train: np.ndarray, test: np.ndarray,
                valve_ids: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Per held-out valve: AUROC of the joined runs' L2 Mahalanobis score and of max softmax."""
    from valvereader.training.openset import joined_aurocs

    out: dict[str, dict[str, float]] = {}
    for c, valve in enumerate(valve_ids):
        known = [k for k in range(len(valve_ids)) if k != c]
        pooled = [run[f"{valve}__pooled"] for run in runs]
        logits = [run[f"{valve}__logits"] for run in runs]
        fit_rows = np.array([i for i in train if labels[i] != c])
        known_test = np.array([i for i in test if labels[i] != c])
        unknown = np.flatnonzero(labels == c)
        out[valve] = joined_aurocs([p[fit_rows] for p in pooled], labels[fit_rows], [p[known_test] for p in pooled],
                                   [p[unknown] for p in pooled], [lg[known_test] for lg in logits], [lg[unknown] for lg in logits],
                                   known)
    return out


def summary(per_class: dict[str, dict[str, float]]) -> dict[str, float]:
    keys = next(iter(per_class.values())).keys()
    result = {}
    for key in keys:
        values = [entry[key] for entry in per_class.values()]
        result[f"mean_{key}"] = round(float(np.mean(values)), 4)
        result[f"sd_{key}"] = round(float(np.std(values, ddof=1)), 4)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs=2, type=Path, help="two --runs files of scripts/loco_partial.py")
    parser.add_argument("--split", type=Path, default=ROOT / "runs/identifier/split.json")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    from valvereader.catalogue import VALVE_IDS

    doc = json.loads(args.split.read_text(encoding="utf-8"))
    labels = np.array([VALVE_IDS.index(label) for label in doc["labels"]])
    train, test = np.asarray(doc["split"]["train"]), np.asarray(doc["split"]["test"])
    runs = [dict(np.load(path)) for path in args.runs]
    result: dict = {"protocol": __doc__.split("\n\n")[1].replace("\n", " "), "runs": [p.as_posix() for p in args.runs]}
    for name, chosen in (("a", runs[:1]), ("b", runs[1:]), ("joined", runs)):
        per_class = loco_aurocs(chosen, labels, train, test, VALVE_IDS)
        result[name] = {"per_class": per_class, **summary(per_class)}
        print(f"{name}: " + json.dumps(summary(per_class)) + " " + json.dumps({k: round(v["mahalanobis_l2"], 3) for k, v in per_class.items()}),
              file=sys.stderr)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
