#!/usr/bin/env python
"""Compare the two pipelines on the same whole radiographs.

Usage: python tools/compare_pipelines.py --csv DATA/ground_truth.csv [--weights DIR]
       [--out docs/evaluation/pipelines.json] [--crop-scales 1.0,1.25,1.5] [--limit N]

(a) whole-image: the identifier sees the whole border-cropped radiograph (no locator);
(b) locate+identify: the locator's box, squared by the card's crop_scale, is classified;
(o) oracle crop: the true box squared the same way (what a perfect locator would give).

Each radiograph is loaded with the program's loader and run through ``load_predictor``'s
``Predictor`` exactly as the program does (ONNX Runtime on the CPU). Accuracy and macro-F1
count images whose valve is one of the 8 catalogue valves; real crops (composites) and
rendered phantom valves are reported apart, because the identifier was trained on real crops
only. Times are wall-clock seconds per image for ``Predictor.predict`` (attention map
included), loading excluded.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def _scores(truth: list[str], predicted: list[str], labels: tuple[str, ...]) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    if not truth:
        return {"images": 0}
    present = [c for c in labels if c in truth]
    return {
        "images": len(truth),
        "accuracy": float(accuracy_score(truth, predicted)),
        "macro_f1": float(f1_score(truth, predicted, labels=present, average="macro", zero_division=0)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, required=True, help="ground-truth CSV of whole radiographs")
    parser.add_argument("--weights", type=Path, default=None, help="folder with identifier.json and locator.json")
    parser.add_argument("--out", type=Path, default=Path("docs/evaluation/pipelines.json"))
    parser.add_argument("--crop-scales", default="", help="extra crop scales to try for (b), comma-separated")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--crops", type=Path, help="crop folder of the composites' source_crop: also classify each source crop itself")
    args = parser.parse_args(argv)

    from valvereader.catalogue import VALVE_IDS
    from valvereader.inference.cards import IDENTIFIER_CARD, LOCATOR_CARD
    from valvereader.inference.predictor import Predictor
    from valvereader.io import load
    from valvereader.model.card import ModelCard
    from valvereader.paths import weights_dir
    from valvereader.training.locator import box_metrics, read_ground_truth

    folder = args.weights or weights_dir()
    identifier = ModelCard.load(folder / IDENTIFIER_CARD)
    locator = ModelCard.load(folder / LOCATOR_CARD)
    whole = Predictor(identifier, None, device="cpu")
    located = Predictor(identifier, locator, device="cpu")
    scales = sorted({located.crop_scale, *(float(s) for s in args.crop_scales.split(",") if s.strip())})
    samples = read_ground_truth(args.csv)
    if args.limit:
        samples = samples[: args.limit]

    rows = []
    crop_verdicts: dict[str, str] = {}
    times = {"whole-image": [], "locate+identify": []}
    for number, sample in enumerate(samples, start=1):
        radiograph = load(sample.path)
        tick = time.perf_counter()
        a = whole.predict(radiograph)
        times["whole-image"].append(time.perf_counter() - tick)
        tick = time.perf_counter()
        b = located.predict(radiograph)
        times["locate+identify"].append(time.perf_counter() - tick)
        found = located.locate(radiograph)
        row = {
            "file": sample.path.name, "kind": sample.kind, "valve_id": sample.valve_id,
            "whole": a.predicted, "whole_confidence": round(a.confidence, 4), "whole_verdict": a.verdict.value,
            "located": b.predicted, "located_confidence": round(b.confidence, 4), "located_verdict": b.verdict.value,
            "locator_score": round(found.score, 4),
            "box": None if found.box is None else list(found.box.as_tuple()), "truth": list(sample.box.as_tuple()),
        }
        for scale in scales:
            for name, box in (("located", found.box), ("oracle", sample.box)):
                region = None if box is None else box.square(scale, minimum=32).clip(radiograph.shape)
                _, outputs = located.identify(radiograph, region)
                row[f"{name}@{scale:g}"] = VALVE_IDS[int(np.argmax(outputs["logits"][0]))]
        if args.crops is not None and sample.source_crop:
            if sample.source_crop not in crop_verdicts:
                crop = load(args.crops / sample.source_crop)
                _, outputs = located.identify(crop)
                crop_verdicts[sample.source_crop] = VALVE_IDS[int(np.argmax(outputs["logits"][0]))]
            row["source_crop_alone"] = crop_verdicts[sample.source_crop]
        rows.append(row)
        if number % 25 == 0:
            print(f"{number}/{len(samples)}", file=sys.stderr, flush=True)

    def subset(keep) -> dict[str, object]:
        chosen = [r for r in rows if keep(r) and r["valve_id"] in VALVE_IDS]
        truth = [r["valve_id"] for r in chosen]
        out: dict[str, object] = {
            "whole-image": _scores(truth, [r["whole"] for r in chosen], VALVE_IDS),
            "locate+identify": _scores(truth, [r["located"] for r in chosen], VALVE_IDS),
        }
        if chosen and all("source_crop_alone" in r for r in chosen):
            out["source-crop-alone"] = _scores(truth, [r["source_crop_alone"] for r in chosen], VALVE_IDS)
        for scale in scales:
            out[f"locate+identify@{scale:g}"] = _scores(truth, [r[f"located@{scale:g}"] for r in chosen], VALVE_IDS)
            out[f"oracle-box@{scale:g}"] = _scores(truth, [r[f"oracle@{scale:g}"] for r in chosen], VALVE_IDS)
        return out

    predicted = np.array([r["box"] if r["box"] else [np.nan] * 4 for r in rows], dtype=np.float64)
    truth_boxes = np.array([r["truth"] for r in rows], dtype=np.float64)
    kinds = sorted({r["kind"] for r in rows})
    result = {
        "csv": str(args.csv),
        "images": len(rows),
        "weights": {"identifier": identifier.title, "locator": locator.title, "crop_scale": located.crop_scale,
                    "locator_min_score": located.locator_min_score},
        "all_catalogue_valves": subset(lambda r: True),
        **{f"{kind}_only": subset(lambda r, k=kind: r["kind"] == k) for kind in kinds},
        "locator": {
            "all": box_metrics(predicted, truth_boxes),
            **{kind: box_metrics(predicted[[r["kind"] == kind for r in rows]], truth_boxes[[r["kind"] == kind for r in rows]]) for kind in kinds},
        },
        "seconds_per_image": {k: {"mean": float(np.mean(v)), "median": float(np.median(v))} for k, v in times.items()},
        "unknown_designs": {
            "images": sum(r["valve_id"] not in VALVE_IDS for r in rows),
            "whole_verdict_unknown": sum(r["valve_id"] not in VALVE_IDS and r["whole_verdict"] == "unknown" for r in rows),
            "located_verdict_unknown": sum(r["valve_id"] not in VALVE_IDS and r["located_verdict"] == "unknown" for r in rows),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": result, "images": rows}, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
