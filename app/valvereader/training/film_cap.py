"""Choosing the identifier's cap on "confident" for a film region (the card's
``film_head.ood_review``) on validation films, and writing it into a weights folder.

    python -m valvereader.training.film_cap --csv GT [GT ...] --results CSV [CSV ...] \\
        --outside-csv GT [GT ...] --outside-results CSV [CSV ...] --weights DIR [--write --version V]

The rows are ``valvereader classify``'s, read with the weights folder as it is (no film cap, or the
one to be replaced): films with and without a valve (``--csv``/``--results``, ground truths of
``valvereader.phantoms.realfilm``), and films with a valve outside the catalogue standing in for
unseen valve types (``--outside-csv``/``--outside-results``: every such film counts against the
cap when it would be "confident"; ``--phantom-outside-csv``/``--phantom-outside-results``: phantom
radiographs of outside designs, a second kind kept to the same share on its own). Every region
these rows read is a box on a film. For each candidate cap (the 0.30, 0.31, ..., 0.90 quantiles of
the open-set scores of the films whose located box holds the valve) the rows are decided again as the program would decide them with that cap and every other
bar of the folder's cards (the identifier's probability, "unknown" and ``ood_unknown``
thresholds; the locator's ``confident_min_probability``, ``confident_min_score`` and
``film_look_alikes``): a row whose open-set score is below the cap, and that passes every bar, is
"confident". The cap chosen is the highest at which (i) the films with a valve called "confident"
are right (box on the valve, named right) at least ``--precision`` of the time, (ii) no valve-free
film is "confident", and (iii) at most ``--outside-max`` of the outside films (of each kind) are
"confident".
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .film_rule import _box, _holds, _paired, _row_box

if TYPE_CHECKING:
    from ..inference.locating import FilmVerification
    from ..prediction import VerdictThresholds

Pairs = list[tuple[dict, dict]]


Bars = tuple["VerdictThresholds", "FilmVerification"]


def bars_of(weights: Path) -> Bars:
    """The bars a film region's "confident" passes besides the cap: the identifier card's verdict
    thresholds and the locator card's verification (none without a locator card)."""
    from ..inference.locating import FilmVerification
    from ..model.card import ModelCard

    locator = weights / "locator.json"
    return (ModelCard.load(weights / "identifier.json").thresholds,
            FilmVerification.from_card(ModelCard.load(locator) if locator.is_file() else None))


def confident_under(row: dict, cap: float, bars: Bars) -> bool:
    """Whether a classify row of a film region would be "confident" with the film cap ``cap``: the
    verdict rule (``VerdictThresholds.decide``) with that cap, then the film's bars
    (``FilmVerification.held_back``), as the program decides them."""
    from ..prediction import Verdict

    if row.get("status") != "ok" or row["verdict"] == "no_valve" or row.get("ood_score", "") in ("", None):
        return False
    thresholds, verification = bars
    p, ood = float(row["confidence"]), float(row["ood_score"])
    if dataclasses.replace(thresholds, ood_review=cap).decide(p, ood)[0] is not Verdict.CONFIDENT:
        return False  # (a view past the cap is never "confident", whatever its class-distance ratio)
    peak = float(row["locator_score"]) if row.get("locator_score", "") not in ("", None) else None
    return verification.held_back(p, row["predicted"], peak, located=row.get("box_source", "located") != "reader") is None


def _right(truth: dict, row: dict) -> bool:
    return truth["kind"] == "valve" and row["predicted"] == truth["valve_id"] and _holds(_row_box(row), _box(truth))


def choose_cap(films: Pairs, outside: Pairs | dict[str, Pairs], bars: Bars, precision: float = 0.995, outside_max: float = 0.04,
               quantiles: Sequence[float] = tuple(np.round(np.arange(0.30, 0.905, 0.01), 2))) -> dict:
    """The cap (see the module) and, per quantile tried, what it gives. ``outside``: the films of
    outside designs, or several kinds of them by name, each kept to ``outside_max`` on its own."""
    groups = outside if isinstance(outside, dict) else {"outside": outside}
    known = np.array([float(r["ood_score"]) for t, r in films
                      if t["kind"] == "valve" and r["ood_score"] not in ("", None) and _holds(_row_box(r), _box(t))])
    if not known.size:
        raise ValueError("no film whose located box holds its valve: nothing to choose the cap on")
    with_valve = sum(t["kind"] == "valve" for t, _ in films)
    tried, chosen = [], None
    for q in quantiles:
        cap = float(np.quantile(known, q))
        sure = [(t, r) for t, r in films if confident_under(r, cap, bars)]
        valve = [_right(t, r) for t, r in sure if t["kind"] == "valve"]
        free = sum(t["kind"] != "valve" for t, _ in sure)
        entry = {"quantile": float(q), "cap": round(cap, 3), "confident": len(valve), "confident_share": round(len(valve) / max(1, with_valve), 4),
                 "confident_wrong": len(valve) - int(sum(valve)), "valve_free_confident": free}
        shares = []
        for name, pairs in groups.items():
            out = sum(confident_under(r, cap, bars) for _, r in pairs)
            prefix = "outside" if name == "outside" else f"{name}_outside"
            entry[f"{prefix}_confident"] = out
            entry[f"{prefix}_share"] = round(out / max(1, len(pairs)), 4)
            shares.append(entry[f"{prefix}_share"])
        entry["passes"] = bool((not valve or np.mean(valve) >= precision) and free == 0 and all(x <= outside_max for x in shares))
        tried.append(entry)
        if entry["passes"]:
            chosen = entry
    return {"chosen": chosen, "precision": precision, "outside_max": outside_max, "films": len(films),
            "films_with_valve": with_valve, "outside_films": {name: len(pairs) for name, pairs in groups.items()},
            "known_scores": int(known.size), "tried": tried}


def write_cap(weights: Path, cap: float, protocol: str, version: str | None, recipe: str | None = None) -> None:
    """``film_head.ood_review`` = ``cap`` in the folder's identifier card (and its Markdown twin);
    ``version`` replaces the card's (``training.reshipped`` says so), ``recipe`` becomes its
    ``training.reproduce``."""
    from .film_head import reshipped
    from .ship import _rewrite_card

    def edit(data: dict) -> None:
        if not data.get("film_head"):
            raise ValueError(f"{weights / 'identifier.json'} has no film head: a film cap needs one")
        data["film_head"]["ood_review"] = round(float(cap), 3)
        data["film_head"]["ood_review_chosen"] = protocol
        reshipped(data, version, "a film region's own cap on 'confident' added (film_head.ood_review)", recipe)

    _rewrite_card(weights / "identifier.json", edit)


def _pairs(parser: argparse.ArgumentParser, truths: list[Path], results: list[Path], what: str) -> Pairs:
    if len(truths) != len(results):
        parser.error(f"{what}: one results CSV per ground truth")
    return [pair for truth, result in zip(truths, results) for pair in _paired(truth, result)[0]]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m valvereader.training.film_cap", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", type=Path, nargs="+", required=True, help="ground_truth.csv of validation films")
    parser.add_argument("--results", type=Path, nargs="+", required=True, help="classify's CSV for each, in the same order")
    parser.add_argument("--outside-csv", type=Path, nargs="+", required=True, help="ground_truth.csv of films of outside designs")
    parser.add_argument("--outside-results", type=Path, nargs="+", required=True)
    parser.add_argument("--phantom-outside-csv", type=Path, nargs="*", default=[],
                        help="ground_truth.csv of phantom radiographs of outside designs (a second kind, kept to --outside-max apart)")
    parser.add_argument("--phantom-outside-results", type=Path, nargs="*", default=[])
    parser.add_argument("--weights", type=Path, default=Path(__file__).resolve().parents[3] / "weights",
                        help="the folder the rows were read with (its bars); with --write, the card written")
    parser.add_argument("--precision", type=float, default=0.995)
    parser.add_argument("--outside-max", type=float, default=0.04)
    parser.add_argument("--write", action="store_true", help="write the chosen cap into --weights' identifier card")
    parser.add_argument("--version", default=None, help="with --write: the card's new version")
    parser.add_argument("--recipe", default=None, help="with --write: the committed recipe that makes this card")
    parser.add_argument("--out", type=Path, help="JSON file for the choice and every quantile tried")
    args = parser.parse_args(argv)
    films = _pairs(parser, args.csv, args.results, "--csv/--results")
    outside = {"outside": _pairs(parser, args.outside_csv, args.outside_results, "--outside-csv/--outside-results")}
    if args.phantom_outside_csv or args.phantom_outside_results:
        outside["phantom"] = _pairs(parser, args.phantom_outside_csv, args.phantom_outside_results,
                                    "--phantom-outside-csv/--phantom-outside-results")
    try:
        report = choose_cap(films, outside, bars_of(args.weights), args.precision, args.outside_max)
    except (ValueError, OSError) as exc:
        print(f"film_cap: {exc}", file=sys.stderr)
        return 2
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "tried"}, indent=1))
    if report["chosen"] is None:
        print("film_cap: no quantile passes", file=sys.stderr)
        return 1
    if args.write:
        protocol = (f"the highest quantile (0.30-0.90) of the open-set scores of {report['known_scores']} validation films whose "
                    f"located box holds the valve ({report['chosen']['quantile']:.2f}) at which, every other bar as shipped, the films "
                    f"with a valve called 'confident' are right at least {args.precision} of the time, no valve-free film is "
                    f"'confident' and at most {args.outside_max:.1%} of "
                    + " and of ".join(f"{n} {'phantom radiographs' if k == 'phantom' else 'films'} of drawn valves outside the catalogue"
                                      for k, n in report["outside_films"].items())
                    + " are (python -m valvereader.training.film_cap; docs/evaluation/real-films.md)")
        write_cap(args.weights, report["chosen"]["cap"], protocol, args.version, args.recipe)
    return 0


if __name__ == "__main__":
    sys.exit(main())
