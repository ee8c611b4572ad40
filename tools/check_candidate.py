"""A weights folder read through the program's path on the validation files of every kind
(docs/training.md, "Candidate 2.0.2"): crops, composites and phantoms, pasted films.

    python tools/check_candidate.py WEIGHTS COMPOSITES_CSV PASTED_CSV OUT.json [--part test]

WEIGHTS: a folder like weights/ (identifier and locator cards); COMPOSITES_CSV: the validation
radiographs of `valvereader phantoms` (pipelines.md, "Reproduce"); PASTED_CSV:
tools/paste_films.py's skull/ground_truth.csv. Validation crops come from
runs/identifier/split.json (``--part test``: the test crops, for the one reading after a
decision; then pass the test films' CSVs). Prints right, confident and right, confident and
wrong per kind; writes (right, count) per kind, and
OUT's ``.files.json`` twin with every file's class, verdict and confidence.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def film_sets(composites: Path, pasted: Path, valve_ids) -> dict[str, list[tuple[Path, str]]]:
    """(file, valve id) of the validation films by kind: composite, phantom (catalogue valves
    only) and pasted, from two ground-truth CSVs (valvereader.training.locator's format)."""
    from valvereader.training.locator import read_ground_truth

    radiographs = read_ground_truth(composites)
    sets = {kind: [(s.path, s.valve_id) for s in radiographs if s.kind == kind and s.valve_id in valve_ids]
            for kind in ("composite", "phantom")}
    sets["pasted"] = [(s.path, s.valve_id) for s in read_ground_truth(pasted)]
    return sets


def main() -> int:
    from valvereader.inference.predictor import load_predictor

    weights, composites, pasted, out = (Path(a) for a in sys.argv[1:5])
    part = sys.argv[6] if len(sys.argv) > 6 and sys.argv[5] == "--part" else "validation"
    predictor = load_predictor(weights, device="cpu")
    doc = json.loads((ROOT / "runs/identifier/split.json").read_text(encoding="utf-8"))
    sets = {"crops": [(Path(doc["paths"][i]), doc["labels"][i]) for i in doc["split"][part]],
            **film_sets(composites, pasted, predictor.valve_ids)}
    result, files = {}, []
    for name, items in sets.items():
        labels = dict(items)
        right = confident_right = confident_wrong = 0
        for path, _, r in predictor.predict_many([path for path, _ in items], with_heatmap=False):
            if isinstance(r, Exception):
                files.append({"kind": name, "file": str(path), "label": labels[path], "error": str(r)})
                continue
            ok = r.predicted == labels[path]
            right += ok
            confident_right += ok and r.verdict.value == "confident"
            confident_wrong += (not ok) and r.verdict.value == "confident"
            files.append({"kind": name, "file": str(path), "label": labels[path], "predicted": r.predicted,
                          "verdict": r.verdict.value, "confidence": float(r.confidence)})
        result[name] = (right, len(items))
        # Confident and right: the readings a radiologist need not review (a candidate can gain
        # there with its accuracy unchanged).
        print(f"{name}: {right} of {len(items)} ({right / max(1, len(items)):.3f}), confident and right {confident_right}, "
              f"confident and wrong {confident_wrong}", flush=True)
    out.write_text(json.dumps(result), encoding="utf-8")
    out.with_suffix(".files.json").write_text(json.dumps(files, indent=0), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
