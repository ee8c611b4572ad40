"""The Markdown report of an evaluation: one page tying numbers and figures together."""

from __future__ import annotations

import math
from pathlib import Path

NO_PATIENT_NOTE = (
    "The csf-shuntvalves data set has no patient identifiers, so its splits cannot be grouped by "
    "patient: images of one patient may sit on both sides of a split, which can flatter the results."
)


def _f(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _per_class_table(metrics: dict) -> list[str]:
    lines = ["| valve | n | precision | recall | F1 | error rate | entropy | max softmax | top-2 gap |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in metrics["per_class"]:
        lines.append(
            f"| {row['valve_id']} | {row['support']} | {_f(row['precision'])} | {_f(row['recall'])} | {_f(row['f1'])} | "
            f"{_f(row['error_rate'])} | {_f(row['mean_entropy'])} | {_f(row['mean_max_softmax'])} | {_f(row['mean_top2_gap'])} |"
        )
    return lines


def _summary_line(summary: dict, name: str) -> str:
    entry = summary.get(name, {})
    return f"{_f(entry.get('mean'))} ± {_f(entry.get('sd'))}"


def write_report(results: dict, path: Path) -> Path:
    card = results.get("card", {})
    lines = [
        f"# Evaluation: {card.get('arch', '?')} at {card.get('input_size', '?')} px",
        "",
        "Research demonstration, not for clinical use.",
        "",
        f"Run: `{results['run']}`. Split sizes: {results['split_sizes']}. Grouping: {results.get('grouping')}.",
        "",
        f"> {NO_PATIENT_NOTE}",
        "",
    ]
    cal = results.get("calibration")
    if cal:
        lines += ["## Calibration", "",
                  (f"Temperature scaling fitted on the validation images only: T = {_f(cal['temperature'])}; every probability "
                   f"below (metrics, reliability diagrams, thresholds) is softmax(logits / T). Validation NLL "
                   f"{_f(cal['validation_nll_before'])} → {_f(cal['validation_nll_after'])}; test ECE "
                   f"{_f(cal['test_ece_before'])} → {_f(cal['test_ece_after'])}. Accuracy is unchanged (argmax does not depend on T)."),
                  ""]
    for part in ("test", "validation"):
        if part not in results:
            continue
        m = results[part]["metrics"]
        label = "Held-out test (never used for training or thresholds)" if part == "test" else "Validation (used for thresholds)"
        lines += [
            f"## {label}",
            "",
            (f"n = {m['n']}: accuracy **{_f(m['accuracy'])}**, macro precision {_f(m['macro_precision'])}, "
             f"macro recall {_f(m['macro_recall'])}, macro F1 **{_f(m['macro_f1'])}**, ECE {_f(m['ece'])}."),
            "",
            *_per_class_table(m),
            "",
            f"![confusion](confusion_{part}.png) ![reliability](reliability_{part}.png)",
            "",
        ]
    if "thresholds" in results:
        t = results["thresholds"]
        lines += ["## Verdict thresholds (chosen on validation)", "", f"`{t['values']}`", "",
                  f"Effect on validation: {t['effect_on_validation']}", "", f"Effect on test: {t['effect_on_test']}", ""]
    if "openset" in results:
        o = results["openset"]
        lines += ["## Open set: telling an unseen valve type from the known ones", "",
                  ("Leave-one-class-out AUROC: for each valve, its test images are the 'unseen' ones and the "
                   "other classes' test images the known ones; the score's statistics are fitted without it."), ""]
        lines += ["| score | features | mean AUROC | per class |", "|---|---|---:|---|"]
        for name, entry in o.get("loco_auroc_finetuned", {}).items():
            lines.append(f"| {name} | fine-tuned (backbone saw all classes: optimistic) | {_f(entry['mean'])} | {entry['per_class']} |")
        for name, entry in results.get("linear_probe", {}).get("loco_auroc_frozen", {}).items():
            lines.append(f"| {name} | frozen ImageNet (never saw a valve: honest) | {_f(entry['mean'])} | {entry['per_class']} |")
        lines.append("")
    for key, title in (("linear_probe", "Linear probe on frozen features"), ("cross_validation", "Cross-validation of the training recipe")):
        if key not in results:
            continue
        block = results[key]
        s = block["summary"]
        lines += [f"## {title}", "", f"Protocol: {block['protocol']}.", "",
                  (f"accuracy {_summary_line(s, 'accuracy')}, macro precision {_summary_line(s, 'macro_precision')}, "
                   f"macro recall {_summary_line(s, 'macro_recall')}, macro F1 {_summary_line(s, 'macro_f1')}, "
                   f"ECE {_summary_line(s, 'ece')} (mean ± SD over {len(block['folds'])} folds)."), "",
                  "| fold | n | accuracy | macro F1 |", "|---:|---:|---:|---:|"]
        for i, fold in enumerate(block["folds"], start=1):
            lines.append(f"| {i} | {fold['n']} | {_f(fold['accuracy'])} | {_f(fold['macro_f1'])} |")
        recalls = [f"{name.split('.')[0]} {_summary_line(s, name)}" for name in s if name.endswith(".recall")]
        lines += ["", "Per-class recall (mean ± SD): " + "; ".join(recalls), ""]
    lines += ["## Model attention", "",
              ("Class activation maps (equal to Grad-CAM on the last feature map) of the wrong test cases and the "
               "least confident right ones: where the model looked, not a finding."), "",
              "![attention](attention_test.png)", ""]
    if card.get("history"):
        lines += ["## Training history", "", "| epoch | train loss | val loss | val accuracy | val macro F1 | s |",
                  "|---:|---:|---:|---:|---:|---:|"]
        for h in card["history"]:
            lines.append(f"| {h['epoch']} | {_f(h['train_loss'])} | {_f(h['validation_loss'])} | {_f(h['validation_accuracy'])} | "
                         f"{_f(h['validation_macro_f1'])} | {h['seconds']:.0f} |")
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
