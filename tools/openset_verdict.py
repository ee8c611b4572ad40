"""The verdict's open-set thresholds: chosen on validation crops, with leave-one-class-out runs
standing in for valve types the model never saw, and the trade-off curve behind them.

    python tools/openset_verdict.py extract validation --out runs/openset_verdict
    python tools/openset_verdict.py extract test --out runs/openset_verdict
    python tools/openset_verdict.py select --runs runs/openset_verdict --out docs/evaluation/openset-verdict

``extract`` reads every crop of one split part through the program (``Predictor.predict``: the
locator, the view choice, the mirror reading, exactly as ``classify`` reads a file) and keeps, per
crop, the label, the verdict's inputs (probability, open-set score, distance ratio) and the
verdict of the shipped thresholds. ``select`` chooses the thresholds (the protocol is the
``PROTOCOL`` text below, also written into the JSON) and writes curve.json, curve.png and
README.md. The test part is read once, for the report, after the choice.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LOCO = ROOT / "docs/evaluation/loco_gpu_2.0.0"
MEMBERS = ("loco_scores_320.npz", "loco_scores_384.npz")  # the ensemble's two members, trained without the held-out valve
KEEP_KNOWN = 0.90  # the share of known validation crops that must stay confident
UNKNOWN_QUANTILE = 0.99  # ood_unknown: at most 1 % of the known validation crops called unknown by the score
BETWEEN_SHARE = 0.02  # between_ratio: at most 2 % of the known validation crops called "between two catalogue valves"
PREVIOUS_OPENSET = {"ood_review": 95.65132071979745, "ood_unknown": 225.223505910495}  # identifier 2.2.0 as first shipped
QUANTILES = [round(q, 3) for q in np.arange(0.70, 0.995, 0.01)] + [1.0]
PROTOCOL = (
    "Thresholds chosen on the validation part of docs/evaluation/identifier/split.json only, the test part read once "
    "afterwards. The probability thresholds (confident, unknown_confidence) are the card's, unchanged. "
    "ood_review, the cap on 'confident': the lowest open-set score under which at least 90 % of the known validation "
    "crops, read through the program, stay confident (on the leave-one-class-out runs no cap keeps 90 % of the known "
    "crops confident and lets 5 % or less of every unseen type through, so the known valves' floor sets it: any "
    "tighter cap costs known valves, any looser one lets more unseen ones through). Its effect on unseen valve types is measured on the "
    "leave-one-class-out runs of docs/evaluation/loco_gpu_2.0.0 (each member of the ensemble trained from ImageNet for "
    "11 epochs without one valve): their backbones are not the shipped one, so the cap is carried over as a quantile "
    "of the known validation crops' scores (the shipped cap's share of known validation crops below it = the "
    "quantile applied to each run's own known validation crops); a run's score is its two members' Mahalanobis scores, "
    "each in units of its own known validation crops (0 at the median, 1 at the 90th percentile), averaged; a run's "
    "crop passes the probability rule when the members' mean max softmax is above the quantile of its known validation "
    "crops that fails the shipped probability rule (the runs keep 1 - max softmax). Unseen crops of the validation part: the held-out valve's training- "
    "and validation-split crops (its run never saw them); known: the other valves' validation-split crops. "
    "ood_unknown: the 99th percentile of the known validation crops' open-set score (1 % of them called unknown, "
    "'unlike any training valve'). between_ratio: the lowest nearest / second-nearest class-distance ratio at which "
    "at most 2 % of the known validation crops (those with a score between ood_review and ood_unknown) are called "
    "unknown, 'between two catalogue valves'."
)


def extract(part: str, out: Path, weights: Path | None = None) -> Path:
    from valvereader.catalogue import VALVE_IDS
    from valvereader.inference.predictor import load_predictor
    from valvereader.io import load

    split = json.loads((ROOT / "docs/evaluation/identifier/split.json").read_text(encoding="utf-8"))
    predictor = load_predictor(weights, device="cpu")
    rows: dict[str, list] = {k: [] for k in ("index", "label", "pred", "confidence", "ood", "ratio", "verdict", "reason")}
    for n, i in enumerate(split["split"][part]):
        prediction = predictor.predict(load((ROOT / split["paths"][i]).resolve()), with_heatmap=False)
        rows["index"].append(i)
        rows["label"].append(VALVE_IDS.index(split["labels"][i]))
        rows["pred"].append(prediction.index)
        rows["confidence"].append(prediction.confidence)
        rows["ood"].append(np.nan if prediction.ood_score is None else prediction.ood_score)
        rows["ratio"].append(np.nan if prediction.distance_ratio is None else prediction.distance_ratio)
        rows["verdict"].append(prediction.verdict.value)
        rows["reason"].append(prediction.verdict_reason)
        if n % 50 == 0:
            print(part, n, flush=True)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"shipped_{part}.npz"
    np.savez(path, **{k: np.asarray(v) for k, v in rows.items()})
    return path


def loco_runs(part: str, fail_share: float) -> dict[int, dict[str, np.ndarray]]:
    """Per held-out class: the joined score and the probability rule of its known and unseen crops."""
    from valvereader.training.openset import members_joined

    members = [np.load(LOCO / name) for name in MEMBERS]
    runs = {}
    for run in range(8):
        def get(kind: str, score: str, which: str = part, run: int = run) -> list[np.ndarray]:
            return [m[f"loco{run}_{which}_real_{kind}_{score}"] for m in members]

        reference = get("known", "mahalanobis_l2", "v")
        # the runs keep 1 - max softmax (higher = less sure): "sure" is at or below the cut
        # that as many known validation crops pass as pass the shipped probability rule
        unsure_cut = np.quantile(np.mean(get("known", "max_softmax", "v"), axis=0), 1.0 - fail_share)
        runs[run] = {
            "known_ood": members_joined(reference, get("known", "mahalanobis_l2")),
            "unknown_ood": members_joined(reference, get("unknown", "mahalanobis_l2")),
            "known_sure": np.mean(get("known", "max_softmax"), axis=0) <= unsure_cut,
            "unknown_sure": np.mean(get("unknown", "max_softmax"), axis=0) <= unsure_cut,
            "reference": members_joined(reference, reference),
        }
    return runs


def evidence_aurocs(part: str) -> dict[str, dict[str, float]]:
    """Unseen-valve AUROC per held-out valve of the open-set evidence the runs kept, and of sums
    (each in units of its own known validation crops, members averaged): does adding the
    energy or the max softmax to the Mahalanobis score help?"""
    from valvereader.catalogue import VALVE_IDS
    from valvereader.training.openset import auroc, members_joined

    members = [np.load(LOCO / name) for name in MEMBERS]
    out: dict[str, dict[str, float]] = {}
    for run in range(8):
        def joined(score: str, kind: str, run: int = run) -> np.ndarray:
            ref = [m[f"loco{run}_v_real_known_{score}"] for m in members]
            return members_joined(ref, [m[f"loco{run}_{part}_real_{kind}_{score}"] for m in members])

        # (the runs keep 1 - max softmax: higher = less sure, like the other two)
        scores = {kind: {"mahalanobis": joined("mahalanobis_l2", kind), "energy": joined("energy", kind),
                         "max_softmax": joined("max_softmax", kind)} for kind in ("known", "unknown")}
        for per_kind in scores.values():
            per_kind["mahalanobis+energy/2"] = per_kind["mahalanobis"] + per_kind["energy"] / 2
            per_kind["mahalanobis+max_softmax/2"] = per_kind["mahalanobis"] + per_kind["max_softmax"] / 2
        for name in scores["known"]:
            out.setdefault(name, {})[VALVE_IDS[run]] = round(auroc(scores["known"][name], scores["unknown"][name]), 4)
    for name, per in out.items():
        per["mean"] = round(float(np.mean(list(per.values()))), 4)
    return out


def loco_shares(runs: dict[int, dict[str, np.ndarray]], quantile: float) -> tuple[dict[str, float], dict[str, float]]:
    """(known share confident, unseen share confident) per held-out valve at a quantile cap."""
    from valvereader.catalogue import VALVE_IDS

    known, unseen = {}, {}
    for run, r in runs.items():
        cap = float(np.quantile(r["reference"], quantile)) if quantile < 1 else np.inf
        known[VALVE_IDS[run]] = float(np.mean(r["known_sure"] & (r["known_ood"] < cap)))
        unseen[VALVE_IDS[run]] = float(np.mean(r["unknown_sure"] & (r["unknown_ood"] < cap)))
    return known, unseen


def ratio_threshold(ratios: np.ndarray, total: int, share: float) -> float:
    """The lowest ratio at which at most ``share`` of ``total`` crops have one at or above it (of
    ``ratios``, the crops the rule can reach): midway between the last one allowed and the next."""
    ordered = np.sort(np.asarray(ratios, dtype=np.float64)[~np.isnan(ratios)])[::-1]
    allowed = int(np.floor(share * total + 1e-9))
    if allowed >= len(ordered):
        return float(ordered[-1]) if len(ordered) else 0.5
    upper = ordered[allowed - 1] if allowed > 0 else 1.0
    return float((ordered[allowed] + upper) / 2)


def shipped_shares(data: dict[str, np.ndarray], rules) -> dict[str, float]:
    verdicts = [rules.decide(float(c), float(o), None if np.isnan(r) else float(r))[0].value
                for c, o, r in zip(data["confidence"], data["ood"], data["ratio"])]
    confident = np.asarray(verdicts) == "confident"
    right = data["label"] == data["pred"]
    return {"n": len(right), "accuracy": round(float(right.mean()), 4),
            "confident": round(float(confident.mean()), 4),
            "right_when_confident": round(float(right[confident].mean()), 4) if confident.any() else None,
            "review": round(float(np.mean(np.asarray(verdicts) == "review")), 4),
            "unknown": round(float(np.mean(np.asarray(verdicts) == "unknown")), 4)}


def select(runs_dir: Path, out: Path, weights: Path = ROOT / "weights") -> dict:
    from valvereader.catalogue import VALVE_IDS
    from valvereader.model.card import ModelCard
    from valvereader.prediction import VerdictThresholds
    from valvereader.training.openset import tightest_cap

    card = ModelCard.load(weights / "identifier.json")
    # the probability thresholds are the card's; the open-set ones compared with are 2.2.0's as first shipped
    old = VerdictThresholds(card.thresholds.confident, card.thresholds.unknown_confidence, **PREVIOUS_OPENSET)
    val = dict(np.load(runs_dir / "shipped_validation.npz"))
    sure = val["confidence"] >= old.confident
    cap = tightest_cap(val["ood"], sure, KEEP_KNOWN)
    ood_unknown = float(np.quantile(val["ood"], UNKNOWN_QUANTILE))
    band = (val["ood"] >= cap) & (val["ood"] < ood_unknown) & (val["confidence"] >= old.unknown_confidence)
    rules = VerdictThresholds(confident=old.confident, unknown_confidence=old.unknown_confidence, ood_review=round(cap, 3),
                              ood_unknown=round(ood_unknown, 3),
                              between_ratio=round(ratio_threshold(val["ratio"][band], len(band), BETWEEN_SHARE), 4))
    cap_quantile = float(np.mean(val["ood"] < cap))
    fail_share = float(np.mean(~sure))
    loco_v, loco_t = loco_runs("v", fail_share), loco_runs("t", fail_share)

    curve = []
    for q in QUANTILES:
        cap_q = float(np.quantile(val["ood"], q)) if q < 1 else None
        at = VerdictThresholds(old.confident, old.unknown_confidence, cap_q, None)
        known_v, unseen_v = loco_shares(loco_v, q)
        curve.append({"quantile": q, "ood_review": None if cap_q is None else round(cap_q, 3),
                      "shipped_validation": shipped_shares(val, at),
                      "loco_validation_unseen_confident": {k: round(v, 4) for k, v in unseen_v.items()},
                      "loco_validation_unseen_confident_mean": round(float(np.mean(list(unseen_v.values()))), 4),
                      "loco_validation_known_confident_mean": round(float(np.mean(list(known_v.values()))), 4)})
    chosen_v = loco_shares(loco_v, cap_quantile)
    unknown_quantile = float(np.mean(val["ood"] < rules.ood_unknown))

    def loco_unknown(runs: dict[int, dict[str, np.ndarray]]) -> dict[str, float]:
        """Share of each held-out valve's crops whose score is past ood_unknown (as a quantile)."""
        return {VALVE_IDS[run]: round(float(np.mean(r["unknown_ood"] >= np.quantile(r["reference"], unknown_quantile))), 4)
                for run, r in runs.items()}

    result = {
        "protocol": PROTOCOL,
        "thresholds": {"confident": old.confident, "unknown_confidence": old.unknown_confidence,
                       "ood_review": rules.ood_review, "ood_unknown": rules.ood_unknown, "between_ratio": rules.between_ratio},
        "previous_thresholds": {"confident": old.confident, "unknown_confidence": old.unknown_confidence,
                                "ood_review": old.ood_review, "ood_unknown": old.ood_unknown},
        "cap_quantile_of_known_validation": round(cap_quantile, 4),
        "validation": {"shipped": shipped_shares(val, rules), "previous": shipped_shares(val, old),
                       "loco_unseen_confident": {k: round(v, 4) for k, v in chosen_v[1].items()},
                       "loco_unseen_past_ood_unknown": loco_unknown(loco_v),
                       "loco_known_confident": {k: round(v, 4) for k, v in chosen_v[0].items()}},
        "evidence_auroc_validation": evidence_aurocs("v"),
        "curve": curve,
    }
    test_path = runs_dir / "shipped_test.npz"
    if test_path.exists():  # read once, after the choice above
        test = dict(np.load(test_path))
        chosen_t = loco_shares(loco_t, cap_quantile)
        result["test"] = {"shipped": shipped_shares(test, rules), "previous": shipped_shares(test, old),
                          "loco_unseen_confident": {k: round(v, 4) for k, v in chosen_t[1].items()},
                          "loco_unseen_past_ood_unknown": loco_unknown(loco_t),
                          "loco_known_confident": {k: round(v, 4) for k, v in chosen_t[0].items()}}
    out.mkdir(parents=True, exist_ok=True)
    (out / "curve.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    plot(result, out / "curve.png")
    return result


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = result["curve"]
    known = [c["shipped_validation"]["confident"] for c in curve]
    fig, ax = plt.subplots(figsize=(7.5, 5.2), dpi=120)
    names = list(curve[0]["loco_validation_unseen_confident"])
    for name in names:
        ax.plot(known, [c["loco_validation_unseen_confident"][name] for c in curve], lw=1, alpha=0.6, label=name)
    ax.plot(known, [c["loco_validation_unseen_confident_mean"] for c in curve], "k-", lw=2.5, label="mean of the 8 held-out valves")
    chosen = result["validation"]
    x = chosen["shipped"]["confident"]
    ax.axvline(x, color="tab:red", ls="--", lw=1)
    ax.annotate(f"shipped cap (ood_review {result['thresholds']['ood_review']:.1f})", (x, 0.22), color="tab:red",
                rotation=90, ha="right", fontsize=8, bbox={"fc": "white", "ec": "none", "alpha": 0.85})
    ax.axvline(chosen["previous"]["confident"], color="grey", ls=":", lw=1)
    ax.annotate(f"previous cap ({result['previous_thresholds']['ood_review']:.1f})", (chosen["previous"]["confident"], 0.62),
                color="grey", rotation=90, ha="right", fontsize=8, bbox={"fc": "white", "ec": "none", "alpha": 0.85})
    ax.axhline(0.05, color="tab:green", ls=":", lw=1)
    ax.axvline(0.90, color="tab:green", ls=":", lw=1)
    ax.annotate("targets: unseen <= 5 %, known >= 90 %", (0.705, 0.065), color="tab:green", fontsize=8)
    ax.set_xlabel("known valves called confident (identifier 2.2.0, 156 validation crops)")
    ax.set_ylabel("unseen valve type called confident\n(leave-one-class-out runs, validation part)")
    ax.set_title("Open-set cap on 'confident': known valves kept vs unseen types let through", fontsize=10)
    ax.set_xlim(min(known) - 0.02, 0.95)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("extract")
    ex.add_argument("part", choices=("validation", "test"))
    ex.add_argument("--out", type=Path, default=ROOT / "runs/openset_verdict")
    ex.add_argument("--weights", type=Path, default=None, help="weights folder (default: the shipped one)")
    se = sub.add_parser("select")
    se.add_argument("--runs", type=Path, default=ROOT / "runs/openset_verdict")
    se.add_argument("--out", type=Path, default=ROOT / "docs/evaluation/openset-verdict")
    se.add_argument("--weights", type=Path, default=ROOT / "weights", help="the identifier whose probability thresholds are kept")
    args = parser.parse_args(argv)
    if args.command == "extract":
        print(extract(args.part, args.out, args.weights))
    else:
        result = select(args.runs, args.out, args.weights)
        print(json.dumps({k: result[k] for k in ("thresholds", "validation")}, indent=1))
        print(json.dumps(result.get("test"), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
