"""Unseen-valve AUROC of networks joined as an ensemble, from GPU leave-one-class-out runs.

``scripts/gpu_session.py`` returns, for each leave-one-class-out run, the pooled features and
logits of the crops it scores (``loco_features_<k>.npz``). Given the sessions that trained the
members of an ensemble on the same held-out valves (for identifier 2.0.0: one at 320 px, one at
384 px), this joins each held-out valve's runs the way the ensemble joins its members: pooled
features side by side, then the shipped score (Mahalanobis on the L2-normalised vector, fitted
on the known valves' training crops), and the logits averaged for max softmax. The AUROC is the
card's protocol (``t_real``): the seven known valves' test-split crops against the held-out
valve's test-split crops. Each member alone is scored the same way, for comparison.

    python scripts/loco_join.py runs/gpu_session8 runs/gpu_session9 [--out FILE.json]

The runs must have scored the same images in the same order (the script stops otherwise).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from valvereader.catalogue import VALVE_IDS
from valvereader.training.openset import joined_aurocs

KEYS = ("fit_real", "known_t_real", "unknown_t_real")


def read_session(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    """run name → its arrays (``<key>_features``, ``_logits``, ``_index``, ``_labels``)."""
    runs: dict[str, dict[str, np.ndarray]] = {}
    for path in sorted(Path(folder).glob("loco_features_*.npz")):
        with np.load(path) as data:
            for name in data.files:
                run, _, field = name.partition("_")
                runs.setdefault(run, {})[field] = data[name]
    return runs


def score_runs(members: list[dict[str, np.ndarray]], left_out: int) -> dict[str, float]:
    """AUROC of the L2 Mahalanobis score and of max softmax, for the members joined."""
    for key in KEYS:
        first = members[0][f"{key}_index"]
        if any(not np.array_equal(m[f"{key}_index"], first) for m in members[1:]):
            raise ValueError(f"{key}: the runs scored other images; they cannot be joined")
    known = [c for c in range(len(VALVE_IDS)) if c != left_out]

    def parts(key: str, field: str) -> list[np.ndarray]:
        return [m[f"{key}_{field}"] for m in members]

    return joined_aurocs(parts("fit_real", "features"), members[0]["fit_real_labels"].astype(np.int64),
                         parts("known_t_real", "features"), parts("unknown_t_real", "features"),
                         [lg[:, known] for lg in parts("known_t_real", "logits")],
                         [lg[:, known] for lg in parts("unknown_t_real", "logits")], known)


def _epochs(sessions: list[Path], names: list[str]) -> list[int]:
    """The epochs each joined run trained for, from the sessions' results.json (empty where a
    session has none)."""
    done = set()
    for folder in sessions:
        path = Path(folder) / "results.json"
        if path.is_file():
            results = json.loads(path.read_text(encoding="utf-8")).get("results", {})
            done |= {int(results[n]["epochs_done"]) for n in names if "epochs_done" in results.get(n, {})}
    return sorted(done)


def join(sessions: list[Path]) -> dict:
    runs = [read_session(folder) for folder in sessions]
    common = sorted(set.intersection(*(set(r) for r in runs)), key=lambda n: int(n.removeprefix("loco")))
    per_valve, alone = {}, {str(s): {} for s in sessions}
    for name in common:
        left_out = int(name.removeprefix("loco"))
        members = [r[name] for r in runs]
        per_valve[VALVE_IDS[left_out]] = score_runs(members, left_out)
        for folder, member in zip(sessions, members):
            alone[str(folder)][VALVE_IDS[left_out]] = score_runs([member], left_out)

    def mean_sd(table: dict[str, dict[str, float]]) -> dict[str, list[float]]:
        out = {}
        for score in ("mahalanobis_l2", "max_softmax"):
            values = [v[score] for v in table.values()]
            if values:
                out[score] = [float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0, len(values)]
        return out

    return {"sessions": [str(s) for s in sessions], "epochs": _epochs(sessions, common),
            "joined": per_valve, "joined_mean_sd": mean_sd(per_valve),
            "alone": alone, "alone_mean_sd": {k: mean_sd(v) for k, v in alone.items()},
            "protocol": ("per held-out valve: pooled features side by side, Mahalanobis on the L2-normalised vector fitted on "
                         "the known valves' training crops; logits averaged for max softmax; AUROC of the known valves' "
                         "test-split crops against the held-out valve's test-split crops")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sessions", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    try:
        doc = join(args.sessions)
    except ValueError as exc:
        print(f"loco_join: {exc}", file=sys.stderr)
        return 2
    if not doc["joined"]:
        print("loco_join: no held-out valve has features in every session", file=sys.stderr)
        return 2
    lines = ["| held out | joined: Mahalanobis L2 | max softmax | " + " | ".join(Path(s).name for s in doc["sessions"]) + " |",
             "|---|---:|---:|" + "---:|" * len(doc["sessions"])]
    for valve, scores in doc["joined"].items():
        lines.append(f"| {valve} | {scores['mahalanobis_l2']:.3f} | {scores['max_softmax']:.3f} | " +
                     " | ".join(f"{doc['alone'][s][valve]['mahalanobis_l2']:.3f}" for s in doc["sessions"]) + " |")
    m = doc["joined_mean_sd"]
    lines.append(f"| **mean ± SD** | {m['mahalanobis_l2'][0]:.3f} ± {m['mahalanobis_l2'][1]:.3f} | "
                 f"{m['max_softmax'][0]:.3f} ± {m['max_softmax'][1]:.3f} | " +
                 " | ".join(f"{doc['alone_mean_sd'][s]['mahalanobis_l2'][0]:.3f}" for s in doc["sessions"]) + " |")
    print("\n".join(lines))
    if args.out:
        args.out.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
