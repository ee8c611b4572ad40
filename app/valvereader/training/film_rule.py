"""Choosing how the locator's candidates are verified (the locator card's ``verification``)
on validation films with and without a valve, and on validation crops.

``collect`` runs the program's own predictor (ONNX Runtime, with every candidate kept and no
"no valve" rule) over a ground-truth CSV or the crops of a split part, and writes, per image,
what each region read said. ``fit`` chooses, on those rows only:

1. ``ood_weight``: the weight of the open-set score in a candidate's valve-likeness
   (``logit(locator peak) - ood_weight * ood``, ``+ probe_weight * probe`` with ``--probe-weight``
   and rows collected through a locator card with a valve probe) that puts the most valves in
   the region read;
2. ``no_valve_below``: the valve-likeness under which a film is "no valve", the highest that
   keeps the valve-free films' false names at most 1 - ``--specificity``... i.e. the lowest
   threshold giving at least ``--specificity`` "no valve" on valve-free films (or
   ``--fallback-specificity`` where the first calls more than ``--max-misses`` of the films
   with a valve "no valve");
3. ``whole_ood_above``: a whole image read as a crop is a valve below this open-set score (the
   crops' own high quantile), so that no crop around a valve is ever "no valve";
4. ``confident_min_score``: the lowest locator peak at which the films' confident answers
   are right at least ``--precision`` of the time. With the identifier's thresholds
   (``--identifier-card``), the answers counted are those the identifier itself calls
   confident (its probability and open-set thresholds), on films with a valve and on valve-free
   films that escape "no valve" (a name there is wrong): the peak then only has to separate
   what the identifier is sure of. Without them, every named film with a valve counts.

``peak`` fits the "confident" bars for a valve named on a film again from ``valvereader
classify`` rows of the locator they change (``peak_from_results``): the peak, and optionally
the probability bar (``confident_min_probability``), the look-alikes (``film_look_alikes``)
and a peak above every valve-free film's answer.

``evaluate`` reports a shipped weights folder on a ground-truth CSV through ``classify``'s
own rows: box hit, named right, confident, right when confident, "no valve" on films with
and without a valve, by site, size, format and polarity.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..geometry import Box
from ..prediction import (
    REASON_FILM_LOOK_ALIKE,
    REASON_FILM_UNSURE,
    REASON_WEAK_LOCATION,
    Verdict,
    VerdictThresholds,
)
from ..radiograph import Radiograph


def _truth_rows(csv_path: Path | None, crops_split: Path | None, part: str) -> list[dict]:
    if csv_path is not None:
        with Path(csv_path).open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        for row in rows:
            row["path"] = str(Path(csv_path).parent / row["file"])
        return rows
    data = json.loads(Path(crops_split).read_text())  # type: ignore[arg-type]
    return [{"path": data["paths"][i], "file": data["paths"][i], "kind": "crop", "valve_id": data["labels"][i], "box_x0": ""}
            for i in data["split"][part]]


def _box(row: dict) -> Box | None:
    if row.get("box_x0", "") in ("", None):
        return None
    return Box(*(int(float(row[k])) for k in ("box_x0", "box_y0", "box_x1", "box_y1")))


def _holds(box: Sequence[int] | None, truth: Box | None) -> bool:
    if box is None or truth is None:
        return False
    cx, cy = (truth.x0 + truth.x1) / 2, (truth.y0 + truth.y1) / 2
    return box[0] <= cx <= box[2] and box[1] <= cy <= box[3]


def collect(weights: Path | None, rows: list[dict], candidates: int = 3) -> list[dict]:
    from ..inference.locating import FilmVerification
    from ..inference.predictor import load_predictor

    predictor = load_predictor(weights)
    predictor.verification = FilmVerification(candidates=candidates, min_score=0.02)
    out = []
    for row, _, prediction in predictor.predict_many(rows, load=lambda r: _load(r["path"])):
        if isinstance(prediction, Exception):
            out.append({**row, "error": str(prediction)})
            continue
        truth = _box(row)
        views = []
        for c in prediction.candidates:
            views.append({**c, "hit": _holds(c["box"], truth), "right": c["valve"] == row.get("valve_id")})
        out.append({k: row.get(k, "") for k in ("file", "kind", "valve_id", "site", "valve_mm", "format", "reversed", "edge_cut")}
                   | {"views": views, "verdict": prediction.verdict.value, "pipeline": prediction.pipeline})
    return out


def _load(path: str) -> Radiograph:
    from ..io import load

    return load(path)


def _valveness(view: dict, weight: float, probe_weight: float = 0.0) -> float:
    """A candidate's valve-likeness as the program computes it (``FilmVerification.valveness``;
    ``probe``: the locator card's valve probe, where the rows were collected with one)."""
    from ..inference.locating import FilmVerification

    return FilmVerification(ood_weight=weight, probe_weight=probe_weight).valveness(
        view["locator_score"], view["ood_score"], view.get("probe"))


def _best(views: list[dict], weight: float, probe_weight: float = 0.0) -> dict | None:
    located = [v for v in views if v["locator_score"] is not None]
    if probe_weight and any("probe" not in v for v in located):
        raise ValueError("a probe weight needs rows collected with a valve probe (the weights folder's locator card)")
    return max(located, key=lambda v: _valveness(v, weight, probe_weight)) if located else None


def _midpoints(values: np.ndarray) -> np.ndarray:
    """The points halfway between neighbouring distinct values, and one step beyond each end."""
    v = np.unique(values)
    if len(v) == 0:
        return v
    step = float(np.median(np.diff(v))) if len(v) > 1 else 1.0
    return np.concatenate([[v[0] - step], (v[:-1] + v[1:]) / 2, [v[-1] + step]])


def identifier_thresholds(card: Path) -> VerdictThresholds:
    """The verdict thresholds of an identifier card (``identifier.json``)."""
    from ..model.card import ModelCard

    return ModelCard.load(card).thresholds


def fit(films: list[dict], crops: list[dict], specificity: float = 0.95, precision: float = 0.99,
        fallback_specificity: float | None = None, max_misses: float = 1.0, identifier: VerdictThresholds | None = None,
        probe_weight: float = 0.0) -> dict:
    """The verification rule at ``specificity``; where that calls more than ``max_misses`` of
    the films with a valve "no valve", at ``fallback_specificity`` instead (when given). The
    specificity used is ``validation.specificity_asked``. ``identifier``: the identifier's verdict
    thresholds (``identifier_thresholds``), for the confident peak (point 4 of the module's doc)."""
    asked = [specificity] + ([fallback_specificity] if fallback_specificity is not None else [])
    for share in asked:
        rule = _fit_at(films, crops, share, precision, identifier, probe_weight)
        rule["validation"]["specificity_asked"] = share
        if rule["validation"]["no_valve_on_films_with_valve"] <= max_misses:
            break
    return rule


def _fit_at(films: list[dict], crops: list[dict], specificity: float, precision: float,
            identifier: VerdictThresholds | None = None, probe_weight: float = 0.0) -> dict:
    positives = [r for r in films if r["kind"] == "valve" and "views" in r]
    negatives = [r for r in films if r["kind"] == "negative" and "views" in r]
    weights = [0.0, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12]
    table = []
    for w in weights:
        chosen = [_best(r["views"], w, probe_weight) for r in positives]
        table.append((sum(1 for c in chosen if c is not None and c["hit"]) / max(1, len(positives)), -w, w))
    best_hits, _, weight = max(table)

    def evidence(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
        best = np.array([_valveness(b, weight, probe_weight) if (b := _best(r["views"], weight, probe_weight)) else -np.inf
                         for r in rows])
        whole = np.array([next((v["ood_score"] for v in r["views"] if v.get("whole", v["locator_score"] is None)), np.inf)
                          for r in rows])
        return best, np.nan_to_num(np.asarray(whole, dtype=float), nan=np.inf)

    usable = [r for r in crops if "views" in r]
    neg_best, neg_whole = evidence(negatives)
    pos_best, pos_whole = evidence(positives)
    crop_best, crop_whole = evidence(usable)

    def no_valve(best: np.ndarray, whole: np.ndarray, below: float, rescue: float) -> np.ndarray:
        return (best < below) & ~(whole < rescue)

    # Jointly: the valve-likeness threshold and the whole-image rescue that call at least
    # `specificity` of the valve-free films "no valve" and lose the fewest crops, then the
    # fewest films with a valve.
    # Candidate thresholds halfway between neighbouring values, so that the rounding of the
    # card's numbers cannot move an image across a threshold.
    belows = _midpoints(np.concatenate([neg_best[np.isfinite(neg_best)], pos_best[np.isfinite(pos_best)]]))
    rescues = np.concatenate([[np.inf], _midpoints(np.concatenate([neg_whole[np.isfinite(neg_whole)], crop_whole[np.isfinite(crop_whole)]]))])
    choice = None
    for below in belows:
        for rescue in rescues:
            if len(neg_best) and no_valve(neg_best, neg_whole, below, rescue).mean() < specificity:
                continue
            key = (int(no_valve(crop_best, crop_whole, below, rescue).sum()), float(no_valve(pos_best, pos_whole, below, rescue).mean()), -rescue)
            if choice is None or key < choice[0]:
                choice = (key, float(below), float(rescue))
    if choice is None:
        raise ValueError("no threshold reaches the specificity asked for")
    _, threshold, whole_ood_above = choice
    # Confident answers: the lowest locator peak at which films named confident are right often enough.
    named = []
    for r in positives + (negatives if identifier is not None else []):
        b = _best(r["views"], weight, probe_weight)
        if b is None or _valveness(b, weight, probe_weight) < threshold:  # "no valve" (the rescue concerns crops)
            continue
        if identifier is None or identifier.decide(float(b["probability"]), b.get("ood_score"))[0] is Verdict.CONFIDENT:
            named.append((b["locator_score"], r["kind"] == "valve" and b["hit"] and b["right"]))
    confident_min = lowest_peak(named, precision)
    confident = [ok for score, ok in named if score >= confident_min]
    return {
        "candidates": 3,
        "min_score": 0.02,
        "ood_weight": weight,
        "no_valve_below": round(threshold, 6),
        "whole_ood_above": None if not np.isfinite(whole_ood_above) else round(whole_ood_above, 4),
        "confident_min_score": float(np.floor(confident_min * 1e6) / 1e6),  # never above the peak it was chosen at
        **({"probe_weight": probe_weight} if probe_weight else {}),
        "validation": {
            "films_with_valve": len(positives),
            "films_without_valve": len(negatives),
            "crops": len(usable),
            "region_holds_valve_by_weight": {str(w): round(h, 4) for h, _, w in sorted(table, key=lambda t: t[2])},
            "region_holds_valve": round(best_hits, 4),
            "no_valve_on_films_with_valve": round(float(no_valve(pos_best, pos_whole, threshold, whole_ood_above).mean()), 4),
            "no_valve_on_films_without_valve": round(float(no_valve(neg_best, neg_whole, threshold, whole_ood_above).mean()), 4),
            "no_valve_on_crops": int(no_valve(crop_best, crop_whole, threshold, whole_ood_above).sum()),
            "confident_peak_counts": "identifier-confident films" if identifier is not None else "named films with a valve",
            "confident_films": len(confident),
            "confident_right": int(sum(confident)),
        },
    }


def lowest_peak(named: list[tuple[float, bool]], precision: float) -> float:
    """The lowest locator peak at which the (peak, right) answers at or above it are right at
    least ``precision`` of the time (0.0 where none reaches it)."""
    named = sorted(named)
    for i in range(len(named)):
        if i and named[i][0] == named[i - 1][0]:
            continue  # a bar keeps every answer of a tied value or none
        kept = [ok for _, ok in named[i:]]
        if kept and np.mean(kept) >= precision:
            return float(named[i][0])
    return 0.0


CSV_HALF_DIGIT = 0.00005
HELD_BACK = (REASON_WEAK_LOCATION, REASON_FILM_UNSURE, REASON_FILM_LOOK_ALIKE)  # "needs review" only for the verification's bars


def peak_from_results(pairs: list[tuple[dict, dict]], precision: float, fit_probability: bool = False,
                      look_alikes: bool = False, none_on_valve_free: bool = False) -> dict:
    """``confident_min_score`` (and with ``fit_probability`` first ``confident_min_probability``)
    fitted again from ``valvereader classify`` rows (truth row, result row) read with the same
    network, candidates and "no valve" rule: the answers counted are those the program calls
    "confident" or holds back only for the verification's bars ("needs review", ``HELD_BACK``),
    each with its region's locator peak and probability; on a valve-free film such an answer is
    wrong, on a film with a valve it is right when the box holds the valve and the valve is named
    right. Each bar is the lowest value at which the answers at or above it are right at least
    ``precision`` of the time (the probability over every answer counted, then the peak over those
    that pass it). With ``look_alikes``, ``film_look_alikes``: each valve named wrong by an answer
    that passes both bars (the box on the valve), with the valves it was named for; a film naming
    one of them is then never "confident". With ``none_on_valve_free`` the peak is also above every
    valve-free film's answer that passes the probability bar. Only these bars change, so no other
    answer of these rows can change."""
    named = []
    for truth, result in pairs:
        if result.get("status") != "ok" or result["locator_score"] in ("", None):
            continue
        if result["verdict"] == "confident" or result["verdict_reason"] in HELD_BACK:
            ok = truth["kind"] == "valve" and result["predicted"] == truth["valve_id"] and _holds(_row_box(result), _box(truth))
            wrong_name = truth["kind"] == "valve" and not ok and _holds(_row_box(result), _box(truth))
            named.append((float(result["locator_score"]), float(result["confidence"]), bool(ok), result["predicted"],
                          truth["valve_id"] if wrong_name else None, truth["kind"] != "valve"))
    probability = lowest_peak([(p, ok) for _, p, ok, _, _, _ in named], precision) if fit_probability else 0.0
    passing = [(score, ok, name, was) for score, p, ok, name, was, _ in named if p >= probability]
    peak = lowest_peak([(score, ok) for score, ok, _, _ in passing], precision)
    free = [score for score, p, _, _, _, valve_free in named if valve_free and p >= probability]
    if none_on_valve_free and free and max(free) >= peak:  # the lowest answer above every valve-free film's
        peak = min((score for score, _, _, _ in passing if score > max(free)), default=1.0)
    confident = [(ok, name, was) for score, ok, name, was in passing if score >= peak]
    taken: dict[str, set[str]] = {}
    for _, name, was in confident if look_alikes else []:
        if was is not None:
            taken.setdefault(name, set()).add(was)
    kept = [ok for ok, name, _ in confident if name not in taken]
    # The CSV keeps 4 decimals: a bar half a last digit lower keeps every answer counted at or above it.
    return {"confident_min_score": round(max(0.0, peak - CSV_HALF_DIGIT), 6),
            **({"confident_min_probability": round(max(0.0, probability - CSV_HALF_DIGIT), 6)} if fit_probability else {}),
            **({"film_look_alikes": {name: sorted(was) for name, was in sorted(taken.items())}} if look_alikes else {}),
            "precision_asked": precision, "films": len(pairs), "counted": len(named), "confident_films": len(kept),
            "confident_right": int(sum(kept))}


def _group_metrics(pairs: list[tuple[dict, dict]]) -> dict[str, float | int]:
    """Metrics of (truth row, classify row) pairs (see ``evaluate``)."""
    valve = [(t, r) for t, r in pairs if t["kind"] == "valve"]
    free = [(t, r) for t, r in pairs if t["kind"] != "valve"]
    hit = [_holds(_row_box(r), _box(t)) for t, r in valve]
    right = [r["predicted"] == t["valve_id"] for t, r in valve]
    confident = [r["verdict"] == "confident" for _, r in valve]
    right_confident = [ok for ok, c in zip(right, confident) if c]
    out: dict[str, float | int] = {"films_with_valve": len(valve), "films_without_valve": len(free)}
    if valve:
        out.update(box_hit=float(np.mean(hit)), named_right=float(np.mean(right)), confident=float(np.mean(confident)),
                   right_when_confident=float(np.mean(right_confident)) if right_confident else float("nan"),
                   no_valve_on_valve_films=float(np.mean([r["verdict"] == "no_valve" for _, r in valve])))
    if free:
        out.update(no_valve_on_valve_free=float(np.mean([r["verdict"] == "no_valve" for _, r in free])),
                   confident_on_valve_free=int(sum(r["verdict"] == "confident" for _, r in free)))
    return out


def _row_box(row: dict) -> tuple[int, ...] | None:
    if row.get("box_x0", "") == "":
        return None
    return tuple(int(float(row[k])) for k in ("box_x0", "box_y0", "box_x1", "box_y1"))


def _size_bin(row: dict) -> str:
    if row.get("valve_mm", "") == "":
        return "no valve"
    mm = float(row["valve_mm"])
    return "15-25 mm" if mm < 25 else "25-35 mm" if mm < 35 else "35-45 mm"


def _paired(truth_csv: Path, results_csv: Path) -> tuple[list[tuple[dict, dict]], int]:
    """(truth row, classify row) of every film of ``truth_csv`` read without error, by file name,
    and the number of films in ``truth_csv``."""
    truth = {Path(r["path"]).name: r for r in _truth_rows(truth_csv, None, "")}
    with Path(results_csv).open(newline="", encoding="utf-8") as handle:
        results = {Path(r["path"]).name: r for r in csv.DictReader(handle)}
    return [(t, results[name]) for name, t in truth.items() if name in results and results[name].get("status") == "ok"], len(truth)


def evaluate(truth_csv: Path, results_csv: Path) -> dict:
    """Whole-film metrics of a ``valvereader classify`` CSV against a film ground truth: box hit
    (the valve's centre inside the box), named right, confident, right when confident, "no
    valve" on films with and without a valve; overall and by site, size, format (DICOM
    MONOCHROME1 is the reversed stored polarity), reversed image files, mirrored films and
    films whose edge cuts the valve."""
    pairs, films = _paired(truth_csv, results_csv)
    report: dict = {"overall": _group_metrics(pairs), "errors": films - len(pairs)}
    for key, value in (("site", lambda t: t.get("site") or "no valve"), ("size", _size_bin), ("format", lambda t: t["format"]),
                       ("reversed", lambda t: t["reversed"]), ("mirrored", lambda t: t["mirrored"]),
                       ("edge_cut", lambda t: t["edge_cut"])):
        groups: dict[str, list] = {}
        for t, r in pairs:
            groups.setdefault(value(t), []).append((t, r))
        report[f"by_{key}"] = {name: _group_metrics(group) for name, group in sorted(groups.items())}
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m valvereader.training.film_rule", description=__doc__.split("\n")[0])
    steps = parser.add_subparsers(dest="step", required=True)
    gather = steps.add_parser("collect", help="what every region read says, per image (JSON)")
    gather.add_argument("--weights", type=Path, help="weights folder (default: the shipped one)")
    source = gather.add_mutually_exclusive_group(required=True)
    source.add_argument("--csv", type=Path, help="ground_truth.csv of films")
    source.add_argument("--crops-split", type=Path, help="the identifier's split.json (crops of --part)")
    gather.add_argument("--part", default="validation")
    gather.add_argument("--candidates", type=int, default=3)
    gather.add_argument("--out", type=Path, required=True)
    choose = steps.add_parser("fit", help="choose the verification parameters on collected rows")
    choose.add_argument("--films", type=Path, required=True)
    choose.add_argument("--crops", type=Path, required=True)
    choose.add_argument("--specificity", type=float, default=0.95)
    choose.add_argument("--precision", type=float, default=0.99)
    choose.add_argument("--fallback-specificity", type=float, help="asked instead where --specificity misses too many valves")
    choose.add_argument("--max-misses", type=float, default=1.0, help="the share of films with a valve 'no valve' allowed")
    choose.add_argument("--probe-weight", type=float, default=0.0,
                        help="weight of the valve probe in the valve-likeness (rows collected with a probe)")
    choose.add_argument("--identifier-card", type=Path,
                        help="identifier.json: the confident peak counts only what the identifier calls confident")
    refit = steps.add_parser("peak", help="the confident peak fitted again from classify rows (only the peak changes)")
    refit.add_argument("--csv", type=Path, nargs="+", required=True, help="the films' ground_truth.csv files")
    refit.add_argument("--results", type=Path, nargs="+", required=True, help="classify's CSV for each, in the same order")
    refit.add_argument("--precision", type=float, default=0.99)
    refit.add_argument("--fit-probability", action="store_true",
                       help="fit the probability bar for a valve named on a film first, then the peak")
    refit.add_argument("--none-on-valve-free", action="store_true",
                       help="the peak also above every valve-free film that passes the probability bar")
    refit.add_argument("--look-alikes", action="store_true",
                       help="also list the valves named wrong past both bars (never 'confident' on a film)")
    measure = steps.add_parser("evaluate", help="whole-film metrics of a classify CSV against a film ground truth")
    measure.add_argument("--csv", type=Path, required=True, help="the films' ground_truth.csv")
    measure.add_argument("--results", type=Path, required=True, help="valvereader classify's CSV for those films")
    measure.add_argument("--out", type=Path, help="JSON file for the report")
    args = parser.parse_args(argv)
    if args.step == "evaluate":
        report = evaluate(args.csv, args.results)
        text = json.dumps(report, indent=1)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text + "\n")
        print(json.dumps(report["overall"], indent=1))
        return 0
    if args.step == "peak":
        if len(args.csv) != len(args.results):
            parser.error("--csv and --results need one results CSV per ground truth")
        pairs = [pair for truth, results in zip(args.csv, args.results) for pair in _paired(truth, results)[0]]
        print(json.dumps(peak_from_results(pairs, args.precision, args.fit_probability, args.look_alikes, args.none_on_valve_free),
                         indent=1))
        return 0
    if args.step == "collect":
        rows = collect(args.weights, _truth_rows(args.csv, args.crops_split, args.part), args.candidates)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=0))
        print(f"{len(rows)} images -> {args.out}")
        return 0
    films, crops = json.loads(args.films.read_text()), json.loads(args.crops.read_text())
    thresholds = identifier_thresholds(args.identifier_card) if args.identifier_card else None
    print(json.dumps(fit(films, crops, args.specificity, args.precision, args.fallback_specificity, args.max_misses, thresholds,
                         args.probe_weight), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
