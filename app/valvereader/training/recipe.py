"""Training recipes: the committed configuration that made a shipped model, run by one command.

    valvereader train --recipe identifier-2.2.0 --data ../shared/data/csf-shuntvalves --out runs/identifier-2.2.0
    valvereader train --recipe locator-2.0 --data ../shared/data/csf-shuntvalves --out runs/locator-2.0
    valvereader train --recipe locator-3.1 --data ../shared/data/csf-shuntvalves --out runs/locator-3.1 --init-from LOCATOR_2.0
    valvereader train --recipe FILE.json --data DIR --out DIR --smoke      # every step, a few images, seconds

A recipe is a JSON file (``recipes/`` beside this module holds the shipped models' own; a path
works too). It names the data (a folder of class folders, split train / validation / test by
``valvereader.training.splits.holdout_split``), how the crops are read and how the composite
radiographs are made (``composites``), the optimiser, augmentation and, for an identifier, its
member networks, which are trained one after another and then joined as an ensemble
(``valvereader.training.ensemble``). The run folder then holds:

- ``crops.csv``, ``split.json``: what was read, and which part each crop belongs to;
- ``work/``: the prepared arrays (kept, so that a second run skips the rendering);
- ``<member>/``: one run folder per member network; ``ensemble/``: the joined identifier;
- ``locator/``: ``locator.{onnx,safetensors,json}`` for a locator recipe;
- ``recipe.json``: the recipe as run, with the hardware and time it took.

A ``locator_real`` recipe (``locator-3.1``: a locator fine-tuned on films made from real skull
radiographs, with its verification rule) runs other steps into other folders:
``valvereader.training.locator_real_recipe``.

Then ``valvereader evaluate`` and ``python -m valvereader.training.ship`` make the model card,
as the recipe's ``after`` says. A GPU takes minutes (the shipped identifier's two members: about
3 minutes on one H100/H200); the CPU works, slowly (hours).
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from .recipe_base import RecipeError
from .recipe_base import hardware as _hardware

RECIPES = Path(__file__).resolve().parent / "recipes"
KINDS = ("identifier", "locator", "locator_real")



def recipe_path(name: str | Path) -> Path:
    """A recipe file: a path, or the name of a committed recipe (``identifier-2.2.0``)."""
    path = Path(name)
    if path.is_file():
        return path
    committed = RECIPES / (path.name if path.suffix == ".json" else f"{path.name}.json")
    if committed.is_file():
        return committed
    known = ", ".join(sorted(p.stem for p in RECIPES.glob("*.json")))
    raise RecipeError(f"no recipe {name}: give a JSON file or one of {known}")


def load_recipe(name: str | Path) -> dict:
    """The recipe as a dict, checked for what every run needs. A recipe with ``"extends": NAME``
    is that recipe with the top-level sections it gives replaced.

    Raises:
        RecipeError: unreadable JSON, an unknown kind, or a missing section.
    """
    path = recipe_path(name)
    try:
        recipe = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RecipeError(f"cannot read the recipe {path}: {exc}") from exc
    if "extends" in recipe:  # another recipe with some top-level sections replaced
        base = recipe.pop("extends")
        if Path(str(base)).stem == path.stem:
            raise RecipeError(f"{path}: a recipe cannot extend itself")
        recipe = {**{k: v for k, v in load_recipe(base).items() if k != "name"}, **recipe}
    kind = recipe.get("kind")
    if kind not in KINDS:
        raise RecipeError(f"{path}: 'kind' must be one of {', '.join(KINDS)}, not {kind!r}")
    recipe.setdefault("name", path.stem)
    if kind == "locator_real":
        from .locator_real_recipe import check

        check(recipe, path)
        return recipe
    needed = ["data", "composites"] + (["optimiser", "members"] if kind == "identifier" else ["locator"])
    missing = [key for key in needed if key not in recipe]
    if missing:
        raise RecipeError(f"{path}: missing {', '.join(missing)}")
    if kind == "identifier" and not recipe["members"]:
        raise RecipeError(f"{path}: no members")
    return recipe


def smoke(recipe: dict) -> dict:
    """The recipe shrunk to prove its wiring in seconds on the CPU: small inputs and films, one
    composite per crop, two phantoms, one epoch of at most two steps per network, no ImageNet
    download needed."""
    if recipe["kind"] == "locator_real":
        from .locator_real_recipe import smoke as shrink

        return shrink(recipe)
    small = json.loads(json.dumps(recipe))
    small["composites"].update(per_crop=1, phantoms=2, shape=[256, 320])
    small["data"]["crop_copy"] = {"max_side": 96, "jpeg_quality": small["data"].get("crop_copy", {}).get("jpeg_quality")}
    small["max_steps"] = 2
    if small["kind"] == "identifier":
        small["optimiser"]["batch"] = 8
        for number, member in enumerate(small["members"]):
            member.update(input_size=64 + 16 * number, epochs=1)
    else:
        small["locator"].update(input_size=64, epochs=1, stop_after=1, batch=4)
    return small


def _crops(recipe: dict, data: Path, out: Path, limit_per_class: int | None) -> tuple[list[dict], dict]:
    """The crops as the recipe reads them (copied into ``out/crops``) with their split part."""
    from ..catalogue import VALVE_IDS
    from .composites import copy_crop
    from .datasets import label_indices, read_samples
    from .splits import holdout_split

    samples = read_samples(data)
    labels = label_indices(samples, VALVE_IDS)
    opts = recipe["data"].get("split", {})
    split = holdout_split(labels, [s.patient_id for s in samples], float(opts.get("test_fraction", 0.2)),
                          float(opts.get("validation_fraction", 0.1)), seed=int(opts.get("seed", 0)))
    part = {int(i): name for name, indices in split.as_dict().items() for i in indices}
    keep = list(range(len(samples)))
    if limit_per_class:  # a few crops of every class in every part (the smoke run)
        seen: dict[tuple[str, str], int] = {}
        keep = []
        for i, sample in enumerate(samples):
            key = (sample.label, part[i])
            if seen.get(key, 0) < limit_per_class:
                seen[key] = seen.get(key, 0) + 1
                keep.append(i)
    copy = recipe["data"].get("crop_copy", {})
    rows = []
    for i in keep:
        sample = samples[i]
        target = copy_crop(sample.path, out / "crops" / sample.label / sample.path.stem,
                           copy.get("max_side"), copy.get("jpeg_quality"))
        rows.append({"file": str(target), "label": sample.label, "split": part[i],
                     "source": f"{sample.path.parent.name}/{sample.path.name}", "patient_id": sample.patient_id})
    parts = {name: [n for n, r in enumerate(rows) if r["split"] == name] for name in ("train", "validation", "test")}
    split_doc = {"sources": [str(data)], "paths": [r["file"] for r in rows], "labels": [r["label"] for r in rows],
                 "patient_ids": [r["patient_id"] for r in rows],
                 "grouping": "by patient, where the data give patient ids; otherwise each image is its own group", "split": parts,
                 "split_seed": int(opts.get("seed", 0))}
    return rows, split_doc


def _extra_rows(folders: list[Path], recipe: dict, out: Path, split_doc: dict) -> list[dict]:
    """The crops of ``--extra-crops`` folders (manifest.csv), copied like the others, in the
    training part only (validation and test stay those of the recipe's data)."""
    from .composites import copy_crop
    from .datasets import read_extra_crops

    copy = recipe["data"].get("crop_copy", {})
    rows = []
    for folder in folders:
        crops = read_extra_crops(folder)
        for sample in crops:
            target = copy_crop(sample.path, out / "crops" / sample.label / f"extra-{sample.path.stem}",
                               copy.get("max_side"), copy.get("jpeg_quality"))
            rows.append({"file": str(target), "label": sample.label, "split": "train",
                         "source": f"{Path(folder).name}/{sample.path.parent.name}/{sample.path.name}", "patient_id": sample.patient_id})
        split_doc.setdefault("extra_sources", []).append({"folder": str(folder), "images": len(crops), "part": "train only"})
    start = len(split_doc["paths"])
    split_doc["split"]["train"] += list(range(start, start + len(rows)))
    for key, column in (("paths", "file"), ("labels", "label"), ("patient_ids", "patient_id")):
        split_doc[key] += [r[column] for r in rows]
    return rows


def run_recipe(recipe: dict, data: Path, out: Path, device: str | None = None, workers: int | None = None,
               reuse: bool = True, limit_per_class: int | None = None, extra_crops: list[Path] | None = None,
               init: Path | None = None, backgrounds: Path | None = None, threads: int | None = None) -> dict:
    """Run ``recipe`` on the crops in ``data``, writing everything under ``out``; returns the
    record written to ``out/recipe.json``. ``extra_crops``: folders with a manifest.csv whose
    crops join the training part only. ``init``, ``backgrounds``, ``threads``: for a
    ``locator_real`` recipe, the starting locator, the skull radiographs' folder and the
    training's CPU threads (``locator_real_recipe.run``)."""
    if recipe["kind"] == "locator_real":
        from .locator_real_recipe import run

        if extra_crops:
            raise RecipeError(f"recipe {recipe['name']}: --extra-crops is for the identifier and locator-2.0 recipes")
        return run(recipe, Path(data), Path(out), device=device, init=init, backgrounds=backgrounds, threads=threads,
                   start_recipes=(load_recipe, run_recipe, smoke))
    import torch

    from ..catalogue import VALVE_IDS
    from .composites import prepare, write_crops_table

    began = time.time()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    out.mkdir(parents=True, exist_ok=True)
    work = out / "work"
    rows, split_doc = _crops(recipe, Path(data), out, limit_per_class)
    rows += _extra_rows([Path(f) for f in extra_crops or []], recipe, out, split_doc)
    if not rows:
        raise RecipeError(f"no labelled crops in {data}")
    write_crops_table(rows, out / "crops.csv")
    (out / "split.json").write_text(json.dumps(split_doc), encoding="utf-8")
    kind = recipe["kind"]
    sizes = sorted({int(m["input_size"]) for m in recipe.get("members", [])}) or [64]
    locator_size = int(recipe.get("locator", {}).get("input_size", 320))
    meta_path = work / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    # the same composites of the same crops (extra crops given or left out change the crops)
    same = meta.get("composites") == {**recipe["composites"], "shape": list(recipe["composites"]["shape"])} \
        and meta.get("split") == [r["split"] for r in rows]
    if not (reuse and same and all((work / f"real_{s}.npy").is_file() for s in sizes)):
        prepare(rows, work, sizes, locator_size, recipe["composites"], workers or max(1, (os.cpu_count() or 2) - 1), list(VALVE_IDS))
    hardware = _hardware(device)
    record = {"recipe": recipe, "data": str(data), "extra_crops": split_doc.get("extra_sources", []), "device": device, "hardware": hardware, "outputs": {}}
    max_steps = recipe.get("max_steps")
    if kind == "identifier":
        from .ensemble import make_ensemble
        from .members import train_member, write_member_run

        runs = []
        for member in recipe["members"]:
            model, result = train_member(member, recipe, work, list(VALVE_IDS), device, max_steps)
            runs.append(write_member_run(out / member["name"], model, result, recipe, split_doc, list(VALVE_IDS), hardware))
            record["outputs"][member["name"]] = {k: result[k] for k in ("epochs_done", "steps", "seconds", "metrics")}
        record["outputs"]["ensemble"] = str(make_ensemble(runs, out / "ensemble"))
    else:
        from .locator_recipe import train_locator, write_locator_run

        model, result = train_locator(recipe["locator"], work, device, max_steps)
        record["outputs"]["locator"] = str(write_locator_run(out / "locator", model, result, recipe["locator"], hardware))
        record["outputs"]["validation"] = result.get("validation")
    record["seconds"] = round(time.time() - began, 1)
    (out / "recipe.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    for step in recipe.get("after", []):
        print(f"next: {step.replace('{out}', out.as_posix())}", file=sys.stderr)
    return record
