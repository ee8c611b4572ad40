"""The human-readable model card (``identifier.md``) written beside the JSON card by the ship step."""

from __future__ import annotations

from pathlib import Path

from .openset import verdict_section


def _honest_loco_line(openset: dict) -> str:
    """The honest leave-one-class-out estimate (backbone fine-tuned without the held-out
    valve), when the card carries it."""
    honest = openset.get("auroc_loco_honest")
    if not honest:
        return ""
    runs = (f"{honest.get('runs', 8)} leave-one-class-out runs, each fine-tuning every member without the held-out valve,"
            if honest.get("of") == "ensemble" else
            f"{honest.get('runs', 8)} leave-one-class-out fine-tunes whose backbone never saw the held-out valve")
    return (f"\nThe honest estimate: {runs} give **{honest['mean']:.2f} ± {honest['sd']:.2f}** with this score (per valve "
            f"{honest.get('min', 0):.2f}–{honest.get('max', 1):.2f}; {honest.get('source', '')}). "
            "Valves that look like a known one are the ones missed.\n")


def _split_line(metrics: dict) -> str:
    split = metrics.get("split_file")
    if not split:
        return ""
    return (f"\nThe split: `{split}`. `valvereader evaluate --weights weights --split {split} --out DIR` re-makes these "
            "figures from the shipped weights.")


def _cv_line(cv: dict | None) -> str:
    if not cv:
        return ""
    recall = ", ".join(f"{v} {r[0]:.2f} ± {r[1]:.2f}" for v, r in cv.get("recall", {}).items())
    of = f" ({cv['of']})" if cv.get("of") else ""
    joined = cv.get("joined")
    if joined:
        alone = "; ".join(f"{a[0]:.3f} ± {a[1]:.3f} / {f[0]:.3f} ± {f[1]:.3f}" for a, f in zip(joined["members_accuracy"], joined["members_macro_f1"]))
        of += f" (each member alone, accuracy / macro-F1: {alone})"
    return (f"\nCross-validation of the recipe{of} ({cv['folds']} folds, {cv.get('images')} images each tested once): accuracy "
            f"**{cv['accuracy'][0]:.3f} ± {cv['accuracy'][1]:.3f}**, macro-F1 **{cv['macro_f1'][0]:.3f} ± {cv['macro_f1'][1]:.3f}**; "
            f"recall per valve {recall}. {cv.get('protocol', '')[:1].upper()}{cv.get('protocol', '')[1:]}.\n")


def _lineage_line(training: dict) -> str:
    """Where a model fine-tuned in stages came from (card training.lineage), if the card says."""
    lineage = training.get("lineage")
    text = f"- Lineage: {lineage}\n" if lineage else ""
    if training.get("reshipped"):
        text += f"- Shipped again: {training['reshipped']}.\n"
    if training.get("reproduce"):
        text += f"- Recipe: {training['reproduce']}; docs/training.md.\n"
    return text


def _view_score_file(card: dict) -> str:
    entry = card["files"].get("view_score")
    return f", `{entry['path']}` (the view choice's own open-set statistics)" if entry else ""


def _view_choice_section(choice: dict) -> str:
    if not choice:
        return ""
    return (f"## How the program reads a radiograph\n\n{choice.get('rule', '')}. Field of view for a whole radiograph: "
            f"{choice.get('whole_radiograph_fov_mm')} mm; located margin: {choice.get('located_margin')}. "
            f"Chosen on {choice.get('chosen_on', 'validation data')}.\n\n"
            + (f"Checked for this identifier: {choice['checked_for_this_identifier']}.\n\n" if choice.get("checked_for_this_identifier") else "")
            + (f"The whole image is a candidate view only while its open-set score is below {choice['whole_max_ood']} "
               f"(it looks like a valve crop; a whole film does not): {choice.get('whole_max_ood_chosen_on', '')}.\n\n"
               if choice.get("whole_max_ood") is not None else "")
            + (f"The views are compared by a score of their own, not the verdict's: {choice['score'].get('formula', '')} "
               f"(statistics in the file of role '{choice['score'].get('role', 'view_score')}').\n\n" if choice.get("score") else "")
            + NOISE_GUARD_TEXT)


def _inference_section(card: dict) -> str:
    """How the program runs the network on a view (``inference``), and how changed crops read
    (``shift_study``, the shift study's numbers for this identifier)."""
    inference = card.get("inference") or {}
    text = ""
    if inference.get("mirror"):
        text += ("Mirror reading: the program reads every view twice, as it is and mirrored left to right, and averages "
                 "the two logits (as the ensemble averages its members); the open-set score uses the features of the view "
                 "as it is, so the verdict's score and the unseen-valve AUROC do not change; the attention map is the "
                 "mean of both readings' maps (the mirrored one turned back), the map of the averaged logits. "
                 + (f"{inference['chosen_on']}. " if inference.get("chosen_on") else "")
                 + (f"{inference['measured']}" if inference.get("measured") else "") + "\n\n")
    if card.get("shift_study"):
        text += f"{card['shift_study']}\n\n"
    return text


# What the program does to grainy inputs, whatever the card (valvereader.noise). How a new
# identifier reads changed crops is measured apart (docs/evaluation/shift-study.md) and written into the
# card's ``shift_study`` text (see _inference_section).
NOISE_GUARD_TEXT = (
    "Noise guard (the program's, not this card's): a view whose pixel noise at the network's scale (Immerkær's "
    "estimate) is above 0.03 of the grey range, more than any of the public training crops had, is blurred by a "
    "Gaussian of 1.5 network pixels before it is read, and the result says so (`smoothed`); any other image is read "
    "exactly as without it (docs/evaluation/shift-study.md). A card may set `preprocessing.noise_limit` (null: no "
    "guard).\n\n")


def _film_head_section(card: dict) -> str:
    """The film-region head (``film_head``; valvereader.inference.film_head), where the card has one."""
    head = card.get("film_head")
    if not head:
        return ""
    entry = card["files"].get("film_head") or {}
    cv = head.get("cross_validation") or {}

    def shares(value) -> str:
        return " / ".join(str(v) for v in value) if isinstance(value, list) else str(value)

    tried = ", ".join(f"{k}: {shares(v)}" for k, v in (cv.get("true_box_named_right") or {}).items())
    formula = str(head.get("formula", ""))
    fitted_for = f" Fitted for the network with ONNX sha256 `{head['fitted_for']}`; the program refuses it with any other." \
        if head.get("fitted_for") else ""
    text = (f"## Regions cut from a film\n\nFile `{entry.get('path')}` (sha256 `{entry.get('sha256')}`).{fitted_for} "
            f"{formula[:1].upper()}{formula[1:]}. "
            f"Fitted on {head.get('fitted_on', '')}: {head.get('method', '')}; weight decay {head.get('weight_decay')} "
            f"(true-box regions named right in {cv.get('folds')}-fold cross-validation grouped by {cv.get('grouped_by')}: {tried}; "
            f"without the head {shares(cv.get('without_head'))}{'; ' + cv['sets'] if cv.get('sets') else ''}).")
    if head.get("temperature") is not None:
        text += (f" A film region's corrected logits are divided by the temperature {head['temperature']} "
                 f"({head.get('temperature_fitted', 'given')}).")
    if head.get("ood_review") is not None:
        text += (f" A film region is never \"confident\" at or above the open-set score {head['ood_review']} (in place of the "
                 f"card's ood_review for crops; {head.get('ood_review_chosen', 'given')}).")
        if head.get("ood_review_measured"):
            text += f" {str(head['ood_review_measured']).rstrip('.')}."
    text += "\n\n"
    for value in (str(head.get(key) or "").rstrip(".") for key in ("measured", "backgrounds", "licence")):
        if value:
            text += f"{value[:1].upper()}{value[1:]}.\n\n"
    return text


def _calibration_line(cal: dict) -> str:
    if not cal:
        return "Probabilities are the plain softmax of the logits (no temperature scaling)."
    t = float(cal["temperature"])
    line = (f"Probabilities are softmax(logits / T) with T = {t:.3f} (temperature scaling fitted on the validation "
            "images; thresholds and the ECE above use these probabilities)")
    if "test_ece_before" in cal:
        line += f"; test ECE without it {cal['test_ece_before']:.3f}"
    return line + "."


def _architecture_text(card: dict) -> str:
    members = card.get("members")
    if not members:
        return str(card["architecture"])
    return ("ensemble of " + " + ".join(f"{m['arch']} at {m['input_size']} px" for m in members)
            + " (logits averaged; each member reads the input resampled to its own size; `training.ensemble` in the JSON card)")


def _write_markdown(card: dict, path: Path) -> None:
    m, o, t = card["metrics"], card["openset"], card["thresholds"]
    rows = "\n".join(f"| {k} | {v['n']} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} |" for k, v in m["per_class"].items())
    a = card["data_attribution"]
    text = f"""# Model card: {card['name']} {card['version']}

**Research demonstration, not for clinical use.** {card['intended_use']}

- Architecture: {_architecture_text(card)}, input {card['input_size']} × {card['input_size']} grey, 8 classes (`class_ids` in the JSON card).
- Files: `{card['files']['safetensors']['path']}` (fp16), `{card['files']['onnx']['path']}` (fp32 ONNX, opset 17,
  input `image`, outputs `logits`, `features`), `{card['files']['openset']['path']}` (open-set statistics){_view_score_file(card)}.
- Training: {card['training']['data']}; {card['training']['duration']}; {card['training']['optimiser']};
  {card['training']['hardware']}. {card['training']['initialisation']}
{_lineage_line(card['training'])}
## Metrics (held-out test, n = {m['test_n']})

{m['protocol']}
{_cv_line(m.get('cross_validation'))}
Accuracy **{m['accuracy']:.3f}**, macro precision {m['macro_precision']:.3f}, macro recall {m['macro_recall']:.3f},
macro F1 **{m['macro_f1']:.3f}**, expected calibration error {m['ece']:.3f}.

{_calibration_line(card.get('calibration') or {})}

| valve | n | precision | recall | F1 |
|---|---:|---:|---:|---:|
{rows}

Full report with confusion matrix, reliability diagram and attention maps: `{m['report']}`.{_split_line(m)}

## Unknown valves (open set)

Score ({o['method']}): {o['formula']}.

Leave-one-class-out AUROC (unseen valve type vs known ones): {o['auroc_loco']} with the shipped model's
features, but its backbone was trained on all 8 classes, so this is optimistic; max softmax on the same
features: {o['auroc_loco_max_softmax']}. With a backbone that never saw a valve (frozen ImageNet features)
the Mahalanobis score reaches only {o.get('auroc_loco_frozen')}: expect unseen valve types to be flagged
far less reliably than the first number suggests.
{_honest_loco_line(o)}
{verdict_section(t)}{_view_choice_section(card.get('view_choice') or {})}{_inference_section(card)}{_film_head_section(card)}## Data attribution

Trained on "{a['dataset']}" by {a['authors']}: {a['paper']}, doi {a['doi']}, {a['source']}, licensed {a['licence']}.
Changes: {a['changes']}

Licence of the weights: {card['licence']}
"""
    path.write_text(text, encoding="utf-8")
