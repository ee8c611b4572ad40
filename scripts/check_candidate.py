"""A weights folder read through the program's path on the validation files of every kind
(docs/training.md, "Candidate 2.0.2"): crops, composites and phantoms, pasted films.

    python scripts/check_candidate.py WEIGHTS COMPOSITES_CSV PASTED_CSV OUT.json

WEIGHTS: a folder like weights/ (identifier and locator cards); COMPOSITES_CSV: the validation
radiographs of `valvereader phantoms` (pipelines.md, "Reproduce"); PASTED_CSV:
scripts/paste_films.py's skull/ground_truth.csv. Validation crops come from
runs/identifier/split.json. Prints and writes (right, count) per kind.
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from valvereader.predict import load_predictor

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    weights, composites, pasted, out = (Path(a) for a in sys.argv[1:5])
    predictor = load_predictor(weights, device="cpu")
    doc = json.loads((ROOT / "runs/identifier/split.json").read_text(encoding="utf-8"))
    sets = {"crops": [(Path(doc["paths"][i]), doc["labels"][i]) for i in doc["split"]["validation"]]}
    with composites.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for kind in ("composite", "phantom"):
        sets[kind] = [(composites.parent / r["file"], r["valve_id"]) for r in rows
                      if r["kind"] == kind and r["valve_id"] in predictor.valve_ids]
    with pasted.open(newline="", encoding="utf-8") as handle:
        sets["pasted"] = [(pasted.parent / r["file"], r["valve_id"]) for r in csv.DictReader(handle)]
    result = {}
    for name, items in sets.items():
        labels = dict(items)
        right = sum((not isinstance(r, Exception)) and r.predicted == labels[path]
                    for path, _, r in predictor.predict_many([path for path, _ in items], with_heatmap=False))
        result[name] = (right, len(items))
        print(f"{name}: {right} of {len(items)} ({right / max(1, len(items)):.3f})", flush=True)
    out.write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
