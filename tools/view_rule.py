"""Choose how the program reads a radiograph: the located square, the whole image, or both.

    python tools/view_rule.py dump OUT.json csv:DATA/ground_truth.csv split:validation
    python tools/view_rule.py select OUT.json [--temperature T]

``dump`` runs the shipped locator and identifier once per image and keeps, for every view
(the whole image; the located box squared x1, x1.25, x1.5, x2; the x1.25 square mirrored),
the identifier's logits and open-set score, with the image's field of view in millimetres
(from its pixel spacing, if any). Sources: ``csv:`` a ground-truth CSV of whole radiographs
(valvereader phantoms), ``split:NAME`` the crops of that part of runs/identifier/split.json.

``select`` prints the accuracy of each candidate rule on crops, composites and phantoms, and
the accuracy over all radiographs. Candidates were listed before looking at any numbers; the
choice is made on validation files only and then checked once on the test files
(docs/evaluation/pipelines.md, "View choice").
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from valvereader.inference.cards import softmax

ROOT = Path(__file__).resolve().parent.parent
SCALES = (1.0, 1.25, 1.5, 2.0)


def items_from(source: str) -> list[tuple[Path, str, str]]:
    kind, _, value = source.partition(":")
    if kind == "csv":
        from valvereader.training.locator import read_ground_truth

        return [(s.path, s.valve_id, s.kind) for s in read_ground_truth(Path(value))]
    if kind == "split":
        doc = json.loads((ROOT / "runs/identifier/split.json").read_text(encoding="utf-8"))
        return [(Path(doc["paths"][i]), doc["labels"][i], "crop") for i in doc["split"][value]]
    raise SystemExit(f"unknown source '{source}': use csv:FILE or split:NAME")


def dump(out: Path, sources: list[str]) -> None:
    from valvereader.inference.predictor import load_predictor
    from valvereader.inference.views import Prepare, field_of_view_mm
    from valvereader.io import load

    predictor = load_predictor(device="cpu")
    items = [item for source in sources for item in items_from(source)]
    rows, began = [], time.time()
    for n, (path, label, kind) in enumerate(items, start=1):
        radiograph = load(path)
        prepare = Prepare(radiograph)
        found = predictor.locate(radiograph, prepare)
        views: dict[str, object] = {"whole": None}
        if found.box is not None:
            for scale in SCALES:
                views[f"loc{scale:g}"] = found.box.square(scale, minimum=32).clip(radiograph.shape)
        names = list(views)
        batch = [prepare(predictor._identify, views[name]).pixels for name in names]
        if found.box is not None:
            batch.append(batch[names.index("loc1.25")][:, ::-1])
            names.append("loc1.25flip")
        outputs = predictor._identifier.run(np.ascontiguousarray(np.stack(batch)[:, None]))
        logits = outputs["logits"].astype(np.float64)
        scores = predictor._view_scorer(logits, outputs["features"].mean(axis=(2, 3)))  # the score the views are compared by
        rows.append({
            "file": str(path), "label": label, "kind": kind, "shape": radiograph.shape,
            "fov_mm": field_of_view_mm(radiograph.shape, radiograph.meta.pixel_spacing) or None,
            "views": names, "logits": logits.tolist(), "scores": None if scores is None else scores.tolist(),
            "box": None if found.box is None else [found.box.x0, found.box.y0, found.box.x1, found.box.y1],
        })
        if n % 100 == 0:
            print(f"{n}/{len(items)} ({time.time() - began:.0f} s)", file=sys.stderr, flush=True)
    out.write_text(json.dumps(rows), encoding="utf-8")


def square_fraction(row: dict) -> float | None:
    """The located square x1 (side = the box's longer side, at least 32 px, as the program
    squares it) against the image's shorter side; None without a box (older dumps too)."""
    box = row.get("box")
    if not box:
        return None
    side = max(32, max(box[2] - box[0], box[3] - box[1]))
    return side / min(row["shape"][:2])


def choose(row: dict, temperature: float, located: tuple[str, ...] = ("loc1.25",), margin: float = 0.0,
           fov_mm: float | None = None, mode: str = "score", ignore_spacing: bool = False,
           square_at_most: float | None = None, min_side_px: int | None = None,
           min_side_square_at_most: float | None = None) -> int:
    """The class a rule predicts for one image.

    mode "score": the view with the lower open-set score wins (the located one lowered by
    ``margin``); "located"/"whole": that view alone; "confidence": the more confident view;
    "average": the mean of both views' probabilities. With ``fov_mm``, an image whose pixel
    spacing spans at least that is read through the located view alone. ``located`` views
    are averaged (probabilities) when more than one is named. ``ignore_spacing``: score the
    image as if it had no pixel spacing. ``square_at_most``: an image without a spacing whose
    located square spans at most that fraction of its shorter side is read through the located
    view alone too; so is one without a spacing whose shorter side has at least ``min_side_px``
    pixels (and, with ``min_side_square_at_most``, whose located square spans at most that
    fraction of its shorter side).
    """
    logits = {v: np.asarray(row["logits"][i]) for i, v in enumerate(row["views"])}
    scores = {v: row["scores"][i] for i, v in enumerate(row["views"])} if row["scores"] else {}
    whole = softmax(logits["whole"], temperature)
    if "loc1" not in logits:
        return int(np.argmax(whole))
    loc = np.mean([softmax(logits[v], temperature) for v in located], axis=0)
    spans = None if ignore_spacing else row["fov_mm"]
    if fov_mm is not None and (spans or 0) >= fov_mm:
        return int(np.argmax(loc))
    fraction = square_fraction(row)
    if min_side_px is not None and not spans and min(row["shape"][:2]) >= min_side_px and (
            min_side_square_at_most is None or (fraction is not None and fraction <= min_side_square_at_most)):
        return int(np.argmax(loc))
    if square_at_most is not None and not spans and fraction is not None and fraction <= square_at_most:
        return int(np.argmax(loc))
    if mode == "located":
        return int(np.argmax(loc))
    if mode == "whole":
        return int(np.argmax(whole))
    if mode == "confidence":
        return int(np.argmax(loc if loc.max() >= whole.max() else whole))
    if mode == "average":
        return int(np.argmax(loc + whole))
    loc_score = np.mean([scores[v] for v in located]) - margin
    return int(np.argmax(loc if loc_score <= scores["whole"] else whole))


# The candidates for films without a pixel spacing (2026-11-26; docs/evaluation/pipelines.md,
# "Films without a pixel spacing"): the card's rule, then the located square read alone where it
# spans at most f of the image's shorter side.
SQUARE_FRACTIONS = (0.15, 0.2, 0.25, 0.33, 0.5)


def select(path: Path, temperature: float, without_spacing: bool = False) -> None:
    from valvereader.catalogue import VALVE_IDS

    rows = [r for r in json.loads(path.read_text(encoding="utf-8")) if r["label"] in VALVE_IDS]
    truth = {id(r): VALVE_IDS.index(r["label"]) for r in rows}
    kinds = ("crop", "composite", "phantom")
    print(f"{path}: " + ", ".join(f"{k} {sum(r['kind'] == k for r in rows)}" for k in kinds))
    if without_spacing:
        card = {"mode": "score", "located": ("loc1",), "fov_mm": 100, "margin": 10}
        candidates = [card, dict(card, ignore_spacing=True)]
        candidates += [dict(card, ignore_spacing=True, square_at_most=f) for f in SQUARE_FRACTIONS]
        candidates += [dict(card, square_at_most=f) for f in SQUARE_FRACTIONS]
        candidates += [dict(card, ignore_spacing=True, min_side_px=1000), dict(card, min_side_px=1000)]
    else:
        candidates = [{"mode": m} for m in ("whole", "located", "score", "confidence", "average")]
        candidates += [{"mode": "score", "margin": m} for m in (2, 5, 10, 15, 20)]
        candidates += [{"mode": "score", "fov_mm": f} for f in (100, 150)]
        for located in (("loc1",), ("loc1.5",), ("loc1", "loc1.25"), ("loc1", "loc1.25", "loc1.5"),
                        ("loc1", "loc1.25", "loc1.5", "loc1.25flip")):
            candidates += [{"mode": "score", "located": located, "fov_mm": fov, "margin": margin}
                           for fov in (None, 100) for margin in (0, 10)]
    print("| rule | crops | composites | phantoms | all radiographs |")
    print("|---|---:|---:|---:|---:|")
    for rule in candidates:
        acc = {}
        for kind in kinds + ("radiograph",):
            chosen = [r for r in rows if (r["kind"] != "crop" if kind == "radiograph" else r["kind"] == kind)]
            acc[kind] = np.mean([choose(r, temperature, **rule) == truth[id(r)] for r in chosen]) if chosen else float("nan")
        text = ", ".join(f"{k}={v}" for k, v in rule.items())
        print(f"| {text} | {acc['crop']:.3f} | {acc['composite']:.3f} | {acc['phantom']:.3f} | {acc['radiograph']:.3f} |")


def select_size_rules(radiographs: Path, magnified: list[Path], temperature: float) -> None:
    """A third look at films without a spacing (2026-11-26; docs/evaluation/pipelines.md):
    R0 no size rule, R1 shorter side >= 1000 px, R2(f) that and the located square <= f, on the
    radiographs of ``radiographs`` with their spacing removed, its crops as they are, and the
    crops of the ``magnified`` dumps."""
    from valvereader.catalogue import VALVE_IDS

    def accuracy(rows: list[dict], rule: dict) -> float:
        return float(np.mean([choose(r, temperature, **rule) == VALVE_IDS.index(r["label"]) for r in rows]))

    rows = [r for r in json.loads(radiographs.read_text(encoding="utf-8")) if r["label"] in VALVE_IDS]
    films = [r for r in rows if r["kind"] != "crop"]
    crops = [r for r in rows if r["kind"] == "crop"]
    big = [r for path in magnified for r in json.loads(path.read_text(encoding="utf-8")) if r["label"] in VALVE_IDS]
    card = {"mode": "score", "located": ("loc1",), "fov_mm": 100, "margin": 10, "ignore_spacing": True}
    rules = {"R0 no size rule": {}, "R1 side >= 1000": {"min_side_px": 1000}}
    rules.update({f"R2 side >= 1000, square <= {f:g}": {"min_side_px": 1000, "min_side_square_at_most": f} for f in (0.25, 0.33, 0.5)})
    print(f"{radiographs}: {len(crops)} crops, {len(films)} radiographs (spacing removed); magnified crops: {len(big)}")
    print("| rule | crops | magnified crops | radiographs without spacing |")
    print("|---|---:|---:|---:|")
    for name, extra in rules.items():
        rule = {**card, **extra}
        print(f"| {name} | {accuracy(crops, rule):.3f} | {accuracy(big, rule):.3f} | {accuracy(films, rule):.3f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump")
    d.add_argument("out", type=Path)
    d.add_argument("sources", nargs="+")
    s = sub.add_parser("select")
    s.add_argument("views", type=Path)
    s.add_argument("--temperature", type=float, default=None, help="softmax temperature (default: the shipped card's)")
    s.add_argument("--magnified", type=Path, nargs="*", default=None,
                   help="dumps of magnified crops: score the size rules for films without a spacing")
    s.add_argument("--without-spacing", action="store_true",
                   help="the rules for films without a pixel spacing (the dump must hold the located boxes)")
    args = parser.parse_args()
    if args.command == "dump":
        dump(args.out, args.sources)
    else:
        temperature = args.temperature
        if temperature is None:
            from valvereader.inference.cards import IDENTIFIER_CARD, calibration_temperature
            from valvereader.model.card import ModelCard
            from valvereader.paths import weights_dir

            temperature = calibration_temperature(ModelCard.load(weights_dir() / IDENTIFIER_CARD))
        if args.magnified is not None:
            select_size_rules(args.views, args.magnified, temperature)
        else:
            select(args.views, temperature, args.without_spacing)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
