"""The recipe of a locator trained on real skull films (kind ``locator_real``, e.g. ``locator-3.1``).

    valvereader train --recipe locator-3.1 --data ../shared/data/csf-shuntvalves --out runs/locator-3.1 \\
        [--init-from LOCATOR_2.0.safetensors] [--backgrounds ../shared/data/skull-radiographs]

It runs, into ``--out``, the steps of ``valvereader.training.locator_real`` and
``valvereader.training.film_rule`` that made the shipped locator:

1. ``start/``: the starting locator. ``--init-from FILE`` gives it (the shipped locator 2.0's
   ``locator.safetensors``; its sha256 is checked against the recipe's and a difference is
   reported and recorded); without it the recipe named in ``train.init.recipe``
   (``locator-2.0``) is run first into ``start/`` and its locator is the start;
2. ``films/validation/``: the validation films as files with ``ground_truth.csv``
   (``locator_real films``);
3. ``synthetic/``: the synthetic radiographs of ``train.synthetic`` that the recipe makes
   itself (``{"count", "seed", "size", "composite_fraction", "crops"}``: composites of that
   split part's crops in phantom skulls and rendered phantoms, ``valvereader.phantoms``;
   written again only when their settings change); an entry that is a path names a
   ``ground_truth.csv`` made before;
4. ``train/``: the fine-tune (``locator_real train``; training films made in memory from the
   train-split backgrounds and crops, plus the synthetic radiographs, resumable);
5. ``weights/``: the identifier named by the recipe (copied) and the run's best epoch shipped
   with a placeholder verification, read through the program by ``film_rule collect`` on the
   validation films and the validation crops (``verification/films.json``, ``crops.json``);
   with ``verification.more_films`` (``[{"seed", "per_background", "negatives"}]``) the
   validation films placed again with other seeds are read too (``films/validation-seed-S/``);
   with ``verification.valve_probe`` the valve probe is fitted first on training films
   (``training.valve_probe``; ``films/probe-train/``) and named in the card;
   ``film_rule fit`` chooses the rule (``verification.confident_min_score``: a "confident" peak
   given instead of fitted; ``verification.confident_min_probability``: the probability bar for
   a valve named on a film, given as ``film_rule peak --fit-probability`` fitted it) (``verification/verification.json``; with
   ``verification.confident_counts`` = ``"identifier"`` the confident peak is fitted on the
   films the identifier itself calls confident) and the locator is shipped again with it:
   ``weights/locator.{onnx,safetensors,json}``.

The backgrounds (valve-free skull radiographs with ``manifest.csv``) are ``--backgrounds`` or
the recipe's ``data.backgrounds`` beside the crop folder (``../shared/data/skull-radiographs``
for ``--data ../shared/data/csf-shuntvalves``). Relative paths in the recipe (the crop split,
the identifier's weights folder) are read from the current folder, else from the repository.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

NEEDED = ("data", "films", "train", "identifier", "verification", "ship")
REPOSITORY = Path(__file__).resolve().parents[3]


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def check(recipe: dict, path: Path) -> None:
    """Raise RecipeError for a locator_real recipe without what its run needs."""
    from .locator_real import RealLocatorConfig
    from .recipe_base import RecipeError

    missing = [key for key in NEEDED if key not in recipe]
    if missing:
        raise RecipeError(f"{path}: missing {', '.join(missing)}")
    unknown = set(recipe["train"].get("config", {})) - set(asdict(RealLocatorConfig()))
    if unknown:
        raise RecipeError(f"{path}: train.config has unknown settings {', '.join(sorted(unknown))}")
    for entry in recipe["train"].get("synthetic", []):
        if isinstance(entry, dict) and not {"count", "seed"} <= set(entry):
            raise RecipeError(f"{path}: train.synthetic entry {entry} needs a count and a seed")
        if isinstance(entry, dict) and entry.get("crops", "train") not in ("train", "validation", "test"):
            raise RecipeError(f"{path}: train.synthetic entry {entry}: crops must be a split part")
    for entry in recipe["verification"].get("more_films", []):
        if not isinstance(entry, dict) or not {"seed", "per_background", "negatives"} <= set(entry):
            raise RecipeError(f"{path}: verification.more_films entry {entry} needs a seed, per_background and negatives")
    probe = recipe["verification"].get("valve_probe")
    if probe is not None and (not isinstance(probe, dict) or not {"seed", "per_background", "negatives", "weight"} <= set(probe)):
        raise RecipeError(f"{path}: verification.valve_probe needs a seed, per_background, negatives and weight")
    check = recipe.get("polarity")
    if check is not None and (not isinstance(check, dict) or not {"seed", "per_background", "threshold"} <= set(check)):
        raise RecipeError(f"{path}: polarity needs a seed, per_background and threshold")
    if "backgrounds" not in recipe["data"]:
        raise RecipeError(f"{path}: data.backgrounds (the folder of valve-free radiographs beside the crops) is missing")


def smoke(recipe: dict) -> dict:
    """Every step on two backgrounds per part, three crops per part, one film with and one
    without a valve per background, one epoch at 64 px."""
    small = json.loads(json.dumps(recipe))
    small["films"].update(per_background=1, negatives=1)
    small["train"]["config"].update(input_size=64, epochs=1, batch_size=4, variants=1, per_background=1, negatives=1)
    small["limits"] = {"backgrounds": 2, "crops": 3}
    if small["verification"].get("valve_probe"):
        small["verification"]["valve_probe"].update(per_background=1, negatives=1)
    if small.get("polarity"):
        small["polarity"].update(per_background=1)
    small["verification"]["more_films"] = [{**entry, "per_background": 1, "negatives": 1}
                                           for entry in small["verification"].get("more_films", [])]
    small["train"]["synthetic"] = [{**entry, "count": 2, "size": [256, 320]} if isinstance(entry, dict) else entry
                                   for entry in small["train"].get("synthetic", [])]
    return small


def _resolve(value: str | Path) -> Path:
    path = Path(value)
    return path if path.is_absolute() or path.exists() else REPOSITORY / path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _start(recipe: dict, data: Path, out: Path, init: Path | None, device: str | None, record: dict,
           start_recipes: tuple | None) -> Path:
    """The starting locator's safetensors: ``init``, or the start recipe's run into ``out``
    (``start_recipes``: the recipe module's load, run and smoke functions, handed in by it)."""
    from .recipe_base import RecipeError

    spec = recipe["train"].get("init", {})
    if init is not None:
        if not Path(init).is_file():
            raise RecipeError(f"--init-from {init}: no such file")
        sha = _sha256(Path(init))
        record["start"] = {"file": str(init), "sha256": sha, "as_shipped": sha == spec.get("sha256")}
        if spec.get("sha256") and sha != spec["sha256"]:
            _log(f"note: {init} is not the start the recipe names ({spec.get('shipped', spec['sha256'])}); the run starts from it")
        return Path(init)
    if not spec.get("recipe"):
        raise RecipeError(f"recipe {recipe['name']}: give the starting locator with --init-from FILE")
    if start_recipes is None:
        raise RecipeError(f"recipe {recipe['name']}: give the starting locator with --init-from FILE")
    load_recipe, run_recipe, shrink = start_recipes
    start = load_recipe(spec["recipe"])
    if "limits" in recipe:
        start = shrink(start)
    start.pop("after", None)  # its card is only a start here
    _log(f"start: training {start['name']} into {out}")
    made = run_recipe(start, data, out, device=device, limit_per_class=2 if "limits" in recipe else None)
    path = Path(made["outputs"]["locator"]).with_name("locator.safetensors")
    record["start"] = {"recipe": start["name"], "file": str(path), "sha256": _sha256(path), "as_shipped": False}
    return path


def _made_once(folder: Path, settings: dict, make) -> Path:
    """``folder/ground_truth.csv``, made by ``make()`` only when ``folder/settings.json`` does not
    hold ``settings`` (so a second run, or a resumed one, reuses what is there)."""
    stamp, truth = folder / "settings.json", folder / "ground_truth.csv"
    if truth.is_file() and stamp.is_file() and json.loads(stamp.read_text(encoding="utf-8")) == settings:
        return truth
    truth = make()
    stamp.write_text(json.dumps(settings), encoding="utf-8")
    return truth


def _films(spec: dict, backgrounds: Path, names: list[str], crops: list, out: Path) -> Path:
    """Films as files (``spec``: per_background, seed, negatives), written again only when
    their settings change."""
    from ..phantoms.realfilm import write_films

    per_background, seed, negatives = int(spec["per_background"]), int(spec["seed"]), int(spec["negatives"])
    settings = {"backgrounds": str(backgrounds), "names": names, "crops": [c.source for c in crops],
                "per_background": per_background, "seed": seed, "negatives": negatives}
    return _made_once(out, settings, lambda: write_films(backgrounds, names, crops, out, per_background, seed, negatives))


def _synthetic(recipe: dict, crops: dict[str, list], out: Path, workers: int) -> list[Path]:
    """The ground-truth CSVs of ``train.synthetic``: a path as given, or a generation entry
    made into ``out/seed-S`` (made again only when its settings or crops change)."""
    from ..phantoms.dataset import generate

    paths = []
    for entry in recipe["train"].get("synthetic", []):
        if not isinstance(entry, dict):
            paths.append(_resolve(entry))
            continue
        part, folder, size = entry.get("crops", "train"), out / f"seed-{int(entry['seed'])}", entry.get("size", [1024, 1280])

        def make(entry: dict = entry, part: str = part, folder: Path = folder, size: list = size) -> Path:
            _log(f"synthetic: {entry['count']} radiographs (seed {entry['seed']}, {part}-split crops) into {folder}")
            return generate(int(entry["count"]), folder, seed=int(entry["seed"]), composites_from=crops[part], workers=workers,
                            size=(int(size[0]), int(size[1])), composite_fraction=float(entry.get("composite_fraction", 0.5)))

        paths.append(_made_once(folder, {**entry, "crops": [c.source for c in crops[part]]}, make))
    return paths


def _identifier(recipe: dict, weights: Path, record: dict) -> None:
    """Copy the recipe's identifier (``identifier.*`` of its weights folder) into ``weights``."""
    from .recipe_base import RecipeError

    spec = recipe["identifier"]
    source = _resolve(spec.get("weights", "weights"))
    card = source / "identifier.json"
    if not card.is_file():
        raise RecipeError(f"no identifier in {source} (identifier.json)")
    weights.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("identifier.*")):
        shutil.copy2(path, weights / path.name)
    version = json.loads(card.read_text(encoding="utf-8")).get("version")
    record["identifier"] = {"weights": str(source), "version": version}
    if spec.get("version") and version != spec["version"]:
        _log(f"note: the identifier in {source} is {version}, the recipe's was {spec['version']}; the rule is fitted with {version}")


def _valve_probe(spec: dict, backgrounds: Path, names: list[str], crops: list, weights: Path, out: Path, record: dict) -> Path:
    """``verification.valve_probe`` (``{"seed", "per_background", "negatives", "weight"}``): the
    probe fitted on training films (``training.valve_probe``) through ``weights`` and named in
    its locator card; returns the probe's file (kept outside ``weights``)."""
    from .valve_probe import attach_probe, candidate_features, fit_probe, save_probe

    films = _films(spec, backgrounds, names, crops, out / "films" / "probe-train")
    features, labels, groups = candidate_features(weights, films)
    weight, bias, report = fit_probe(features, labels, groups)
    probe = out / "verification" / "valve_probe.safetensors"
    save_probe(probe, weight, bias)
    (out / "verification" / "valve_probe.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    record["outputs"]["valve_probe"] = report
    attach_probe(weights, probe, float(spec["weight"]))
    return probe


def _polarity(spec: dict, backgrounds: Path, data: Path, split_json: Path, weights: Path, out: Path, record: dict,
              limits: dict) -> None:
    """``polarity`` (``{"seed", "per_background", "threshold"}``, optionally ``"margins"``: the
    share of films given a wider field, and ``"features"``, "rank-tophat-1" unless given): the check of negative image
    files (``training.polarity``) fitted on films of the train-split backgrounds and on the
    train-split crops, and named in the locator card of ``weights``."""
    from safetensors.numpy import save_file

    from .polarity import attach_check, fit_check, polarity_set

    feature_set = str(spec.get("features", "rank-tophat-1"))
    features, labels, groups, _ = polarity_set(backgrounds, data, split_json, "train", int(spec["per_background"]),
                                               int(spec["seed"]), limit=limits.get("backgrounds"),
                                               margin_share=float(spec.get("margins", 0.0)), features=feature_set)
    tensors, report = fit_check(features, labels, groups)
    check = out / "verification" / "polarity.safetensors"
    check.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(check))
    (out / "verification" / "polarity.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    record["outputs"]["polarity"] = report
    attach_check(weights, check, float(spec["threshold"]), feature_set)


def _crop_rows(crops: list) -> list[dict]:
    """Crops as ``film_rule.collect`` reads them (``--crops-split``: whole images, no box)."""
    return [{"path": str(c.path), "file": str(c.path), "kind": "crop", "valve_id": c.valve_id, "box_x0": ""} for c in crops]


def run(recipe: dict, data: Path, out: Path, device: str | None = None, init: Path | None = None,
        backgrounds: Path | None = None, threads: int | None = None, start_recipes: tuple | None = None) -> dict:
    """Run a ``locator_real`` recipe (see the module's doc); returns the record written to
    ``out/recipe.json``."""
    from ..phantoms.realfilm import crops_by_part, read_split
    from . import film_rule
    from .locator_real import RealLocatorConfig, ship, train_run
    from .recipe_base import RecipeError
    from .recipe_base import hardware as _hardware

    began = time.time()
    data, out = Path(data), Path(out)
    backgrounds = Path(backgrounds) if backgrounds else data.parent / recipe["data"]["backgrounds"]
    if not (backgrounds / "manifest.csv").is_file():
        raise RecipeError(f"no skull radiographs in {backgrounds} (manifest.csv): give --backgrounds DIR")
    split_json = _resolve(recipe["data"].get("crop_split", "docs/evaluation/identifier/split.json"))
    crops = crops_by_part(data, split_json)
    names = read_split()
    limits = recipe.get("limits", {})
    if limits:  # the smoke run: a few of each, spread over the list
        names = {part: items[:: max(1, len(items) // limits["backgrounds"])][: limits["backgrounds"]] for part, items in names.items()}
        crops = {part: items[:: max(1, len(items) // limits["crops"])][: limits["crops"]] for part, items in crops.items()}
    if not crops["train"] or not crops["validation"]:
        raise RecipeError(f"no crops of {split_json} in {data}")
    out.mkdir(parents=True, exist_ok=True)
    record: dict = {"recipe": recipe, "data": str(data), "backgrounds": str(backgrounds), "crop_split": str(split_json),
                    "device": "cpu", "hardware": _hardware("cpu"), "outputs": {}}
    start = _start(recipe, data, out / "start", init, device, record, start_recipes)
    truth = _films(recipe["films"], backgrounds, names["validation"], crops["validation"], out / "films" / "validation")
    record["outputs"]["films"] = str(truth)
    config = RealLocatorConfig(**recipe["train"].get("config", {}))
    if threads:
        config.threads = int(threads)
    synthetic = _synthetic(recipe, crops, out / "synthetic", max(1, int(config.threads)))
    record["outputs"]["synthetic"] = [str(p) for p in synthetic]
    train_run(config, backgrounds, names["train"], crops["train"], truth, out / "train", start,
              with_crops=bool(recipe["train"].get("crops_as_images")), synthetic=synthetic, log=_log)
    weights, rule_dir = out / "weights", out / "verification"
    rule_dir.mkdir(parents=True, exist_ok=True)
    _identifier(recipe, weights, record)
    spec, shipping = recipe["verification"], recipe["ship"]
    placeholder = spec.get("placeholder", {"candidates": int(spec.get("candidates", 3)), "min_score": 0.02})
    (rule_dir / "placeholder.json").write_text(json.dumps(placeholder), encoding="utf-8")

    def shipped(verification: dict) -> Path:
        return ship(out / "train", weights, verification, float(shipping.get("crop_scale", 1.0)), str(shipping["version"]),
                    recipe=recipe["name"], input_size=shipping.get("input_size"))

    shipped(placeholder)
    probe_spec = spec.get("valve_probe")
    if probe_spec:  # the probe is fitted first: the candidates are then collected with its values
        probe = _valve_probe(probe_spec, backgrounds, names["train"], crops["train"], weights, out, record)
    candidates = int(spec.get("candidates", 3))
    films = film_rule.collect(weights, film_rule._truth_rows(truth, None, ""), candidates)
    if spec.get("negatives"):  # more valve-free validation films for the "no valve" threshold
        more = _films({"per_background": 0, **spec["negatives"]}, backgrounds, names["validation"], [],
                      out / "films" / "validation-negatives")
        record["outputs"]["negative_films"] = str(more)
        films += film_rule.collect(weights, film_rule._truth_rows(more, None, ""), candidates)
    for extra in spec.get("more_films", []):  # the validation films placed again (another seed), valves and all
        again = _films(extra, backgrounds, names["validation"], crops["validation"],
                       out / "films" / f"validation-seed-{int(extra['seed'])}")
        record["outputs"].setdefault("more_films", []).append(str(again))
        films += film_rule.collect(weights, film_rule._truth_rows(again, None, ""), candidates)
    crop_views = film_rule.collect(weights, _crop_rows(crops["validation"]), candidates)
    (rule_dir / "films.json").write_text(json.dumps(films, indent=0), encoding="utf-8")
    (rule_dir / "crops.json").write_text(json.dumps(crop_views, indent=0), encoding="utf-8")
    # "confident_counts": "identifier": the confident peak is fitted on what the identifier calls confident.
    sure = film_rule.identifier_thresholds(weights / "identifier.json") if spec.get("confident_counts") == "identifier" else None
    rule = film_rule.fit(films, crop_views, float(spec.get("specificity", 0.95)), float(spec.get("precision", 0.99)),
                         spec.get("fallback_specificity"), float(spec.get("max_misses", 1.0)), sure,
                         float(probe_spec["weight"]) if probe_spec else 0.0)
    if spec.get("confident_min_score") is not None:  # a "confident" peak given, not fitted
        rule["validation"]["confident_min_score_fitted"] = rule["confident_min_score"]
        rule["confident_min_score"] = float(spec["confident_min_score"])
    if spec.get("confident_min_probability") is not None:  # the film's probability bar, given (film_rule peak)
        rule["confident_min_probability"] = float(spec["confident_min_probability"])
    if spec.get("film_look_alikes"):  # valves never "confident" on a film, given (film_rule peak --look-alikes)
        rule["film_look_alikes"] = {str(k): [str(v) for v in others] for k, others in spec["film_look_alikes"].items()}
    (rule_dir / "verification.json").write_text(json.dumps(rule, indent=1), encoding="utf-8")
    record["outputs"]["locator"] = str(shipped(rule))
    if probe_spec:
        from .valve_probe import attach_probe

        attach_probe(weights, probe, float(probe_spec["weight"]))
    if recipe.get("polarity"):  # the polarity check, fitted on training films and crops, named last
        _polarity(recipe["polarity"], backgrounds, data, split_json, weights, out, record, limits)
    record["outputs"]["verification"] = rule
    record["seconds"] = round(time.time() - began, 1)
    (out / "recipe.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    for step in recipe.get("after", []):
        _log(f"next: {step.replace('{out}', out.as_posix())}")
    return record
