"""Choose an unknown-valve score, single or combined, from the leave-one-class-out runs'
per-image scores (``loco_scores.npz`` of scripts/gpu_session.py), on one half, and report it on
the other.

    python scripts/loco_combine.py runs/gpu_session5/loco_scores.npz [more.npz ...] [--out FILE.json]

Halves, as in scripts/openset_scores.py: *selection* (``v_real``: validation-split crops of the
seven known valves against the held-out valve's train/validation crops) and *test* (``t_real``:
test-split crops of both). A combined score is the sum of its parts, each standardised by the
known selection-half crops of its run (``training.openset.standardised``), so that no unknown
image sets the scale. The candidate list is fixed here, before any result: every single score
and the pairs and triple below. The one with the best mean AUROC on the selection half is
chosen; its test-half AUROC is the figure to report.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from valvereader.training.openset import auroc, standardised

SINGLES = ("mahalanobis_l2", "mahalanobis_none", "max_softmax", "energy")
CANDIDATES = tuple((s,) for s in SINGLES) + (
    ("mahalanobis_l2", "max_softmax"), ("mahalanobis_l2", "energy"), ("mahalanobis_none", "max_softmax"),
    ("mahalanobis_none", "energy"), ("mahalanobis_l2", "mahalanobis_none", "max_softmax"),
)


def read_runs(paths: list[Path]) -> dict[str, dict[str, np.ndarray]]:
    """{run name: {"v_real_known_energy": array, ...}}; a run in several files: the last one."""
    runs: dict[str, dict[str, np.ndarray]] = {}
    for path in paths:
        with np.load(path) as data:
            found: dict[str, dict[str, np.ndarray]] = {}
            for key in data.files:
                run, _, field = key.partition("_")
                found.setdefault(run, {})[field] = np.asarray(data[key], dtype=np.float64)
        runs.update(found)
    return runs


def combined(scores: dict[str, np.ndarray], parts: tuple[str, ...], half: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(known, unknown) combined score of one run on one half, or None if a part is missing."""
    known_total, unknown_total = 0.0, 0.0
    for part in parts:
        names = (f"v_real_known_{part}", f"{half}_known_{part}", f"{half}_unknown_{part}")
        if any(n not in scores for n in names):
            return None
        reference = scores[names[0]]
        stacked = np.concatenate([reference, scores[names[1]], scores[names[2]]])
        z = standardised(stacked, np.arange(len(reference)))
        known_total = known_total + z[len(reference):len(reference) + len(scores[names[1]])]
        unknown_total = unknown_total + z[len(reference) + len(scores[names[1]]):]
    return np.asarray(known_total), np.asarray(unknown_total)


def evaluate(runs: dict[str, dict[str, np.ndarray]]) -> list[dict]:
    rows = []
    for parts in CANDIDATES:
        row = {"score": " + ".join(parts), "parts": list(parts)}
        for half, label in (("v_real", "selection"), ("t_real", "test")):
            values = {}
            for name, scores in sorted(runs.items()):
                pair = combined(scores, parts, half)
                if pair is not None and len(pair[0]) and len(pair[1]):
                    values[name] = auroc(*pair)
            row[label] = {"per_run": values, "mean": float(np.mean(list(values.values()))) if values else float("nan"),
                          "sd": float(np.std(list(values.values()), ddof=1)) if len(values) > 1 else 0.0}
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scores", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    runs = read_runs(args.scores)
    if not runs:
        print("no leave-one-class-out scores in the files given", file=sys.stderr)
        return 2
    rows = evaluate(runs)
    chosen = max((r for r in rows if np.isfinite(r["selection"]["mean"])), key=lambda r: r["selection"]["mean"])
    print(f"{len(runs)} runs. | score | selection AUROC | test AUROC |\n|---|---:|---:|")
    for r in rows:
        mark = " **(chosen)**" if r is chosen else ""
        print(f"| {r['score']}{mark} | {r['selection']['mean']:.3f} ± {r['selection']['sd']:.3f} | {r['test']['mean']:.3f} ± {r['test']['sd']:.3f} |")
    if args.out:
        args.out.write_text(json.dumps({"runs": sorted(runs), "candidates": rows, "chosen": chosen["score"]}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
