"""Report the cross-validation folds and leave-one-class-out runs of GPU sessions.

    python scripts/gpu_cv_report.py --results runs/gpu_session3 [runs/gpu_session4 ...] --out docs/evaluation/cv_gpu

Reads each session's ``results.json`` (and ``cv_predictions.npz`` for the folds), computes per
fold the program's own metrics (``valvereader.training.evaluate.classification_metrics``: accuracy,
macro precision/recall/F1, per class, entropy, maximum softmax, top-two gap, ECE at temperature 1)
and their mean ± SD over folds, and the unseen-valve AUROC of each leave-one-class-out run. A
model named in several sessions is taken from the last one that has it.

    python scripts/gpu_cv_report.py --join --results runs/gpu_session3 runs/gpu_session5 --out docs/evaluation/cv_gpu_joined

With ``--join`` the sessions are the members of an ensemble, as identifier 2.0.0 joins its
members: each fold's logits are the mean of the members' logits for the same held-out images
(the folds must hold the same images in the same order, or the script stops). A member whose
folds ran in several calls is given as their folders joined by "+" (``A+B``; a later call's
fold wins). The composite regions were scored inside each session, per network, so the joined
report has none; the leave-one-class-out runs are not joined either (the sessions returned
scores, not features).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from valvereader.catalogue import VALVE_IDS
from valvereader.predict import _softmax
from valvereader.training.evaluate import classification_metrics, summarise

AUROC_KEYS = ("auroc_mahalanobis_l2_t_real", "auroc_mahalanobis_none_t_real", "auroc_mahalanobis_l2_real",
              "auroc_max_softmax_real", "auroc_energy_real", "auroc_mahalanobis_l2_regions")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, nargs="+", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--join", action="store_true", help="average the sessions' fold logits (an ensemble of their networks)")
    args = parser.parse_args()
    if args.join:
        return joined(args)
    classes = list(VALVE_IDS)
    results, folds, sources = {}, {}, {}
    for folder in args.results:
        doc = json.loads((folder / "results.json").read_text(encoding="utf-8"))
        for name, result in doc["results"].items():
            if "error" not in result:
                results[name] = result
                sources[name] = folder.name
        for fold, arrays in read_folds(folder).items():
            folds.setdefault(fold, {}).update(arrays)
    fold_names = sorted(k for k in folds if k in results)
    per_fold = []
    for name in fold_names:
        d = folds[name]
        per_fold.append(classification_metrics(d["true"].astype(np.int64), _softmax(d["logits"].astype(np.float64)), classes))
    pooled_true = np.concatenate([folds[n]["true"] for n in fold_names]).astype(np.int64)
    pooled = classification_metrics(pooled_true, _softmax(np.concatenate([folds[n]["logits"] for n in fold_names]).astype(np.float64)), classes)
    covered = np.concatenate([folds[n]["index"] for n in fold_names])
    loco = {}
    for name in sorted(n for n in results if n.startswith("loco")):
        m = results[name]["metrics"]
        loco[m["left_out"]] = {"epochs": results[name]["epochs_done"], "session": sources[name],
                               **{k: m[k] for k in AUROC_KEYS if k in m}}
    summary = {
        "sources": [str(f) for f in args.results],
        "protocol": ("stratified 5-fold CV over all 1556 crops (no patient ids: each image its own group); each fold "
                     "trains the identifier recipe from ImageNet on its training crops plus composite regions made from them, "
                     "and is tested on its held-out crops (the JPEG copies the session trained on) and their composite regions"),
        "images_covered": len(np.unique(covered)),
        "folds": {n: {"epochs": results[n]["epochs_done"], "epochs_planned": results[n]["epochs_planned"],
                      "crops": per_fold[i].as_dict(),
                      "regions": results[n]["metrics"].get("test_regions", {})} for i, n in enumerate(fold_names)},
        "mean_sd": summarise(per_fold),
        "pooled": pooled.as_dict(),
        "regions_mean_sd": {k: [float(np.mean(v)), float(np.std(v, ddof=1))] for k, v in (
            (k, [results[n]["metrics"]["test_regions"][k] for n in fold_names if "test_regions" in results[n]["metrics"]])
            for k in ("accuracy", "macro_f1")) if len(v) > 1},
        "leave_one_class_out": loco,
    }
    # Squares of crops pasted whole into films (gpu_session.py --pasted-per-crop), when the
    # session made them: the held-out fold's, kept apart from the composite regions.
    pasted = [results[n]["metrics"]["test_pasted"] for n in fold_names if "test_pasted" in results[n]["metrics"]]
    if len(pasted) > 1:
        summary["pasted_mean_sd"] = {k: [float(np.mean([p[k] for p in pasted])), float(np.std([p[k] for p in pasted], ddof=1))]
                                     for k in ("accuracy", "macro_f1")}
        for n in fold_names:
            summary["folds"][n]["pasted"] = results[n]["metrics"].get("test_pasted", {})
    # Composite regions whose valve is cut by the collimator's edge, and the rest (sessions that
    # recorded the regions' positions), pooled over the folds.
    by_position: dict[str, list[float]] = {}
    for n in fold_names:
        for name, entry in (results[n]["metrics"].get("test_regions", {}).get("by_position") or {}).items():
            if entry.get("n"):
                tally = by_position.setdefault(name, [0.0, 0.0])
                tally[0] += entry["accuracy"] * entry["n"]
                tally[1] += entry["n"]
    if by_position:
        summary["regions_by_position"] = {name: {"n": int(n), "accuracy": right / n} for name, (right, n) in by_position.items()}
    if loco:
        for key in AUROC_KEYS:
            values = [v[key] for v in loco.values() if key in v]
            if values:
                summary.setdefault("auroc_mean_sd", {})[key] = [float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0, len(values)]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metrics.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    ms = summary["mean_sd"]
    lines = ["# Cross-validation and unseen valves of the GPU recipe", "",
             f"Sources: {', '.join(summary['sources'])}. {summary['protocol']}.", "",
             f"{summary['images_covered']} images were tested once each.", "",
             "| fold | epochs | crops | accuracy | macro-F1 | composite regions: accuracy | macro-F1 |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for i, n in enumerate(fold_names):
        f = summary["folds"][n]
        r = f["regions"]
        lines.append(f"| {n} | {f['epochs']} of {f['epochs_planned']} | {per_fold[i].n} | {per_fold[i].accuracy:.3f} | {per_fold[i].macro_f1:.3f} | "
                     f"{r.get('accuracy', float('nan')):.3f} | {r.get('macro_f1', float('nan')):.3f} |")
    lines += ["", "| measure (mean ± SD over folds) | crops |", "|---|---:|"]
    for k in ("accuracy", "macro_precision", "macro_recall", "macro_f1", "ece"):
        lines.append(f"| {k} | {ms[k]['mean']:.3f} ± {ms[k]['sd']:.3f} |")
    if summary["regions_mean_sd"]:
        rm = summary["regions_mean_sd"]
        lines.append(f"| composite regions: accuracy / macro-F1 | {rm['accuracy'][0]:.3f} ± {rm['accuracy'][1]:.3f} / {rm['macro_f1'][0]:.3f} ± {rm['macro_f1'][1]:.3f} |")
    if summary.get("pasted_mean_sd"):
        pm = summary["pasted_mean_sd"]
        lines.append(f"| squares of crops pasted whole into films: accuracy / macro-F1 | {pm['accuracy'][0]:.3f} ± {pm['accuracy'][1]:.3f} / "
                     f"{pm['macro_f1'][0]:.3f} ± {pm['macro_f1'][1]:.3f} |")
    for name, entry in sorted((summary.get("regions_by_position") or {}).items()):
        lines.append(f"| composite regions, valve {'cut by the field edge' if name == 'edge' else 'elsewhere'} (pooled) | "
                     f"{entry['accuracy']:.3f} (n = {entry['n']}) |")
    lines += ["", "Per class (mean ± SD over folds; support pooled):", "",
              "| valve | support | precision | recall | F1 | mean entropy | mean max softmax | mean top-2 gap |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in pooled.per_class:
        v = row.valve_id
        lines.append(f"| {v} | {row.support} | {ms[v + '.precision']['mean']:.3f} ± {ms[v + '.precision']['sd']:.3f} | "
                     f"{ms[v + '.recall']['mean']:.3f} ± {ms[v + '.recall']['sd']:.3f} | {ms[v + '.f1']['mean']:.3f} ± {ms[v + '.f1']['sd']:.3f} | "
                     f"{row.mean_entropy:.3f} | {row.mean_max_softmax:.3f} | {row.mean_top2_gap:.3f} |")
    lines += ["", "Pooled confusion (rows true, columns predicted, order as above):", "", "```"]
    lines += [" ".join(f"{x:4d}" for x in row) for row in pooled.confusion]
    lines += ["```"]
    if loco:
        lines += ["", ("Leave one class out (the model never saw the valve; known = test-split crops of the other seven; "
                  "unseen = the held-out valve's test-split crops (`t_real`) or all its crops (`real`)):"), "",
                  "| left out | epochs | Mahalanobis L2, t_real | raw, t_real | L2, all crops | max softmax, all | energy, all |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for v, m in loco.items():
            cells = [f"{m.get(k, float('nan')):.3f}" for k in ("auroc_mahalanobis_l2_t_real", "auroc_mahalanobis_none_t_real",
                                                             "auroc_mahalanobis_l2_real", "auroc_max_softmax_real", "auroc_energy_real")]
            lines.append(f"| {v} | {m['epochs']} | " + " | ".join(cells) + " |")
        am = summary["auroc_mean_sd"]
        lines.append("| **mean ± SD** | | " + " | ".join(
            f"{am[k][0]:.3f} ± {am[k][1]:.3f}" if k in am else "–" for k in ("auroc_mahalanobis_l2_t_real", "auroc_mahalanobis_none_t_real",
                                                                          "auroc_mahalanobis_l2_real", "auroc_max_softmax_real", "auroc_energy_real")) + " |")
    (args.out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


def read_folds(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    """A session's ``cv_predictions.npz`` as fold → {"logits", "true", "index"} (none if absent)."""
    folds: dict[str, dict[str, np.ndarray]] = {}
    npz = folder / "cv_predictions.npz"
    if npz.exists():
        with np.load(npz) as data:
            for key in data.files:
                fold, _, field = key.partition("_")
                folds.setdefault(fold, {})[field] = data[key]
    return folds


def member_folders(arg: Path) -> list[Path]:
    """The result folders of one ensemble member: a folder, or several joined by "+"."""
    return [arg] if arg.is_dir() else [Path(part) for part in str(arg).split("+")]


def joined(args) -> int:
    """The cross-validation of an ensemble whose members' folds ran in different sessions."""
    classes = list(VALVE_IDS)
    members = []
    for folder in args.results:
        # One member's folds may come from several calls (A+B+C); a later call's fold wins, and
        # a fold a call failed to train is taken from the others.
        results, folds = {}, {}
        parts = member_folders(folder)
        for part in parts:
            doc = json.loads((part / "results.json").read_text(encoding="utf-8"))
            ok = {n: r for n, r in doc["results"].items() if "error" not in r}
            results.update(ok)
            folds.update({n: f for n, f in read_folds(part).items() if n in ok})
        members.append({"folder": folder, "label": "+".join(part.name for part in parts), "folds": folds, "results": results})
    names = sorted(set.intersection(*(set(m["folds"]) for m in members)))
    if not names:
        raise SystemExit("no fold is present in every session")
    per_fold, rows, trues, logits_all = [], [], [], []
    for name in names:
        first = members[0]["folds"][name]
        for m in members[1:]:
            other = m["folds"][name]
            if not (np.array_equal(other["index"], first["index"]) and np.array_equal(other["true"], first["true"])):
                raise SystemExit(f"{name}: {m['folder']} held out other images than {members[0]['folder']}; the folds cannot be joined")
        logits = np.mean([m["folds"][name]["logits"].astype(np.float64) for m in members], axis=0)
        true = first["true"].astype(np.int64)
        metrics = [classification_metrics(true, _softmax(m["folds"][name]["logits"].astype(np.float64)), classes) for m in members]
        joint = classification_metrics(true, _softmax(logits), classes)
        per_fold.append(joint)
        trues.append(true)
        logits_all.append(logits)
        rows.append({"fold": name, "crops": joint.n, "epochs": [m["results"][name]["epochs_done"] for m in members],
                     "members_accuracy": [x.accuracy for x in metrics], "members_macro_f1": [x.macro_f1 for x in metrics],
                     "accuracy": joint.accuracy, "macro_f1": joint.macro_f1})
    pooled = classification_metrics(np.concatenate(trues), _softmax(np.concatenate(logits_all)), classes)
    member_means = [{k: [float(np.mean([r[f"members_{k}"][i] for r in rows])), float(np.std([r[f"members_{k}"][i] for r in rows], ddof=1)) if len(rows) > 1 else 0.0]
                     for k in ("accuracy", "macro_f1")} for i in range(len(members))]
    summary = {"sources": [str(m["folder"]) for m in members],
               "protocol": ("stratified 5-fold CV over all 1556 crops (no patient ids: each image its own group); each member network was "
                            "trained per fold in its own session on the fold's training crops plus composite regions made from them; "
                            "the ensemble's logits are the mean of the members' logits on the fold's held-out crops"),
               "folds": rows, "mean_sd": summarise(per_fold), "pooled": pooled.as_dict(), "members_mean_sd": member_means}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metrics.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    ms = summary["mean_sd"]
    lines = ["# Cross-validation of the joined recipe (an ensemble of the sessions' networks)", "",
             f"Sources: {', '.join(summary['sources'])}. {summary['protocol']}.", "",
             "| fold | crops | epochs per member | members' accuracy | joined accuracy | members' macro-F1 | joined macro-F1 |",
             "|---|---:|---|---|---:|---|---:|"]
    for r in rows:
        lines.append(f"| {r['fold']} | {r['crops']} | {' + '.join(str(e) for e in r['epochs'])} | "
                     f"{' / '.join(f'{a:.3f}' for a in r['members_accuracy'])} | {r['accuracy']:.3f} | "
                     f"{' / '.join(f'{a:.3f}' for a in r['members_macro_f1'])} | {r['macro_f1']:.3f} |")
    lines += ["", "| measure (mean ± SD over folds) | joined | " + " | ".join(m["label"] for m in members) + " |",
              "|---|---:|" + "---:|" * len(members)]
    for k in ("accuracy", "macro_f1"):
        lines.append(f"| {k} | {ms[k]['mean']:.3f} ± {ms[k]['sd']:.3f} | " +
                     " | ".join(f"{mm[k][0]:.3f} ± {mm[k][1]:.3f}" for mm in member_means) + " |")
    for k in ("macro_precision", "macro_recall", "ece"):
        lines.append(f"| {k} | {ms[k]['mean']:.3f} ± {ms[k]['sd']:.3f} |" + " |" * len(members))
    lines += ["", "Per class, joined (mean ± SD over folds; support pooled):", "",
              "| valve | support | precision | recall | F1 |", "|---|---:|---:|---:|---:|"]
    for row in pooled.per_class:
        v = row.valve_id
        lines.append(f"| {v} | {row.support} | {ms[v + '.precision']['mean']:.3f} ± {ms[v + '.precision']['sd']:.3f} | "
                     f"{ms[v + '.recall']['mean']:.3f} ± {ms[v + '.recall']['sd']:.3f} | {ms[v + '.f1']['mean']:.3f} ± {ms[v + '.f1']['sd']:.3f} |")
    lines += ["", "Pooled confusion, joined (rows true, columns predicted, order as above):", "", "```"]
    lines += [" ".join(f"{x:4d}" for x in row) for row in pooled.confusion]
    lines += ["```"]
    (args.out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
