"""A second look at the attended part of a film's located square (docs/evaluation/pipelines.md,
"Films made by pasting a crop whole"): validation films only, a diagnostic.

    python scripts/attended_second_look.py COMPOSITES_CSV PASTED_CSV OUT.json

COMPOSITES_CSV: a ground-truth CSV of `valvereader phantoms` (composites and phantoms, with pixel
spacing); PASTED_CSV: scripts/paste_films.py's skull/ground_truth.csv. Each film is read as the
program reads it (its located square), then the part of that read's class activation map at
≥ half its peak (explain.attention_box) is squared ×1 and ×1.5 and read too. Writes the reads
(predicted class and view-choice score per view) to OUT.json and prints, per rule, the films
read right by kind.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from check_candidate import film_sets

SCALES = (1.0, 1.5)
# (second view, margin): None = the view alone; a number = the lower view-choice score wins, the
# first read's lowered by that margin (the rules written before the numbers).
RULES = [("first", None), ("att1", None), ("att1.5", None), ("att1", 0.0), ("att1", 10.0), ("att1.5", 0.0), ("att1.5", 10.0)]


def read_films(predictor, items: list[tuple[Path, str, str]]) -> list[dict]:
    from valvereader.explain import attention_box, class_activation_map
    from valvereader.io import load
    from valvereader.predict import _Prepare

    ids = list(predictor.valve_ids)
    rows = []
    for n, (path, label, kind) in enumerate(items, start=1):
        radiograph = load(path)
        prepare = _Prepare(radiograph)
        region = predictor.views(radiograph.shape, predictor.locate(radiograph, prepare), radiograph.meta.pixel_spacing)[0]
        row: dict = {"kind": kind, "label": label, "views": None}
        if region is not None:  # films: one view, the located square (None: nothing located)
            first = prepare(predictor._identify, region)
            outputs = predictor._identifier.run(first.pixels[None, None])
            cam = class_activation_map(outputs["features"][0], predictor._classifier_weights[int(np.argmax(outputs["logits"][0]))])
            attended = attention_box(cam, first.crop)
            second = [prepare(predictor._identify, attended.square(s, minimum=32).clip(radiograph.shape)).pixels for s in SCALES]
            more = predictor._identifier.run(np.stack(second)[:, None])
            logits = np.concatenate([outputs["logits"], more["logits"]]).astype(np.float64)
            pooled = np.concatenate([outputs["features"].mean(axis=(2, 3)), more["features"].mean(axis=(2, 3))])
            row.update(views=["first"] + [f"att{s:g}" for s in SCALES], pred=[ids[int(np.argmax(v))] for v in logits],
                       score=predictor._view_scorer(logits, pooled).tolist())
        rows.append(row)
        if n % 100 == 0:
            print(f"{n}/{len(items)}", file=sys.stderr, flush=True)
    return rows


def choose(row: dict, view: str, margin: float | None) -> str | None:
    if row["views"] is None:
        return None
    predicted, score = dict(zip(row["views"], row["pred"])), dict(zip(row["views"], row["score"]))
    if view == "first" or margin is None:
        return predicted[view]
    return predicted["first"] if score["first"] - margin <= score[view] else predicted[view]


def main() -> int:
    from valvereader.predict import load_predictor

    composites, pasted, out = (Path(a) for a in sys.argv[1:4])
    predictor = load_predictor(device="cpu")
    items = [(path, label, kind) for kind, pairs in film_sets(composites, pasted, predictor.valve_ids).items()
             for path, label in pairs]
    rows = read_films(predictor, items)
    out.write_text(json.dumps(rows), encoding="utf-8")
    for view, margin in RULES:
        right = {kind: (sum(choose(r, view, margin) == r["label"] for r in rows if r["kind"] == kind),
                        sum(r["kind"] == kind for r in rows)) for kind in ("composite", "pasted", "phantom")}
        print(view, margin, right)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
