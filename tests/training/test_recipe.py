"""Training recipes: the committed configuration of the shipped models, run by `valvereader train --recipe`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from valvereader.catalogue import VALVE_IDS
from valvereader.training.composites import fit_to_film, paste_place
from valvereader.training.members import member_items, regions_per_epoch
from valvereader.training.recipe import RECIPES, RecipeError, load_recipe

ROOT = Path(__file__).resolve().parents[2]


def _crops(folder: Path, per_class: int = 6) -> Path:
    """Class folders of small grey crops, each class its own bright bar."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, valve in enumerate(VALVE_IDS):
        (folder / valve).mkdir(parents=True)
        for i in range(per_class):
            pixels = (rng.random((90, 120)) * 60).astype(np.uint8)
            pixels[30:60, 20 + c * 10:50 + c * 10] = 230
            Image.fromarray(pixels).save(folder / valve / f"{valve}_{i}.png")
    return folder


def test_the_identifier_recipe_is_the_shipped_cards_members() -> None:
    recipe = load_recipe("identifier-2.2.0")
    card = json.loads((ROOT / "weights" / "identifier.json").read_text(encoding="utf-8"))
    shipped = [(m["arch"], m["input_size"], m["epochs"], m["max_lr"], m["seed"]) for m in card["training"]["members"]]
    planned = [(m["arch"], m["input_size"], m["epochs"], recipe["optimiser"]["max_lr"], recipe["optimiser"]["seed"])
               for m in recipe["members"]]
    assert planned == shipped
    assert [m["input_size"] for m in recipe["members"]] == [m["input_size"] for m in card["members"]]


def test_the_locator_recipe_is_the_shipped_cards_training() -> None:
    recipe = load_recipe("locator-3.1.12")
    card = json.loads((ROOT / "weights" / "locator.json").read_text(encoding="utf-8"))
    assert card["version"] == recipe["ship"]["version"]
    config = recipe["train"]["config"]
    shipped = card["training"]
    assert {k: shipped[k] for k in config} == config
    assert shipped["recipe"].startswith("valvereader train --recipe locator-3.1.12 ")
    assert recipe["train"]["init"]["sha256"][:8] in shipped["start"]
    assert card["verification"]["candidates"] == recipe["verification"]["candidates"]
    assert card["metrics"]["verification_validation"]["confident_peak_counts"] == "identifier-confident films"
    # the valve probe and the "confident" peak the recipe gives, the probe fitted for the shipped identifier
    assert card["verification"]["probe_weight"] == recipe["verification"]["valve_probe"]["weight"]
    assert card["verification"]["confident_min_score"] == recipe["verification"]["confident_min_score"]
    assert card["verification"]["confident_min_probability"] == recipe["verification"]["confident_min_probability"]
    assert card["verification"]["film_look_alikes"] == recipe["verification"]["film_look_alikes"]
    identifier = json.loads((ROOT / "weights" / "identifier.json").read_text(encoding="utf-8"))
    assert card["verification"]["probe_fitted_for"] == identifier["files"]["onnx"]["sha256"]
    assert card["files"]["valve_probe"]["path"] == "locator.valve_probe.safetensors"
    # the polarity check the recipe fits, with its threshold
    assert card["polarity"]["threshold"] == recipe["polarity"]["threshold"]
    assert card["polarity"]["features"] == recipe["polarity"]["features"]
    assert card["metrics"]["polarity"]["fit"]["margins"] == recipe["polarity"]["margins"]
    assert card["metrics"]["polarity"]["fit"]["features"] == recipe["polarity"]["features"]
    assert card["metrics"]["polarity"]["fit"]["seed"] == recipe["polarity"]["seed"]
    assert card["metrics"]["polarity"]["fit"]["per_background"] == recipe["polarity"]["per_background"]
    assert card["files"]["polarity"]["path"] == "locator.polarity.safetensors"


def test_locator_3_1_1_is_3_1_with_only_the_confident_peak_fitted_on_what_the_identifier_is_sure_of() -> None:
    first, second = load_recipe("locator-3.1"), load_recipe("locator-3.1.1")
    assert second["verification"] == {**first["verification"], "confident_counts": "identifier"}
    assert {k: v for k, v in second.items() if k not in ("name", "produces", "verification", "ship", "notes")} == \
        {k: v for k, v in first.items() if k not in ("name", "produces", "verification", "ship", "notes")}


def test_locator_3_1_2_fits_3_1_1s_verification_on_the_validation_films_placed_three_times(tmp_path: Path) -> None:
    from valvereader.training.locator_real_recipe import smoke

    first, second = load_recipe("locator-3.1.1"), load_recipe("locator-3.1.2")
    more = second["verification"].pop("more_films")
    assert [(m["seed"], m["per_background"], m["negatives"]) for m in more] == [(8, 3, 1), (9, 3, 1)]
    assert (second["films"]["seed"], second["films"]["per_background"], second["films"]["negatives"]) == (7, 3, 1)
    assert second["verification"] == {**first["verification"], "specificity": 0.96}
    assert second["train"] == first["train"] and second["ship"]["version"] == "3.1.2"
    # the smoke run places each set once per background, as it does the validation films
    assert [(m["per_background"], m["negatives"]) for m in smoke(load_recipe("locator-3.1.2"))["verification"]["more_films"]] == [(1, 1)] * 2
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"extends": "locator-3.1.2", "verification": {**second["verification"], "more_films": [{"seed": 8}]}}),
                    encoding="utf-8")
    with pytest.raises(RecipeError, match="more_films entry .* needs a seed, per_background and negatives"):
        load_recipe(path)


def test_locator_3_1_3_is_3_1_2_with_a_valve_probe_fitted_on_training_films(tmp_path: Path) -> None:
    from valvereader.training.locator_real_recipe import smoke

    second, third = load_recipe("locator-3.1.2"), load_recipe("locator-3.1.3")
    probe = third["verification"].pop("valve_probe")
    assert probe == {"seed": 31, "per_background": 2, "negatives": 2, "weight": 0.2}
    assert third["verification"] == second["verification"] and third["ship"]["version"] == "3.1.3"
    assert smoke(load_recipe("locator-3.1.3"))["verification"]["valve_probe"] == {**probe, "per_background": 1, "negatives": 1}
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"extends": "locator-3.1.3", "verification": {**second["verification"], "valve_probe": {"seed": 31}}}),
                    encoding="utf-8")
    with pytest.raises(RecipeError, match="valve_probe needs a seed, per_background, negatives and weight"):
        load_recipe(path)


def test_locator_3_1_5_is_3_1_3_with_3_1_1s_confident_peak_and_seven_placements() -> None:
    third, fourth, fifth = load_recipe("locator-3.1.3"), load_recipe("locator-3.1.4"), load_recipe("locator-3.1.5")
    assert fourth["verification"] == {**third["verification"], "confident_min_score": 0.7485}
    assert [m["seed"] for m in fifth["verification"]["more_films"]] == [8, 9, 12, 13, 14, 15]
    assert {k: v for k, v in fifth["verification"].items() if k not in ("more_films", "specificity")} == \
        {k: v for k, v in fourth["verification"].items() if k not in ("more_films", "specificity")}
    assert fifth["verification"]["specificity"] == 0.97 and fifth["train"] == load_recipe("locator-3.1.1")["train"]


def test_locators_3_1_7_to_3_1_10_change_only_the_films_confident_bars_of_3_1_5() -> None:
    fifth = load_recipe("locator-3.1.5")
    bars = ("confident_min_score", "confident_min_probability", "film_look_alikes")
    for name in ("locator-3.1.7", "locator-3.1.8", "locator-3.1.9", "locator-3.1.10"):
        recipe = load_recipe(name)
        assert {k: v for k, v in recipe.items() if k not in ("name", "produces", "notes", "ship", "verification")} == \
            {k: v for k, v in fifth.items() if k not in ("name", "produces", "notes", "ship", "verification")}
        assert {k: v for k, v in recipe["verification"].items() if k not in bars} == \
            {k: v for k, v in fifth["verification"].items() if k not in bars}
    assert load_recipe("locator-3.1.9")["verification"]["confident_min_probability"] == 0.99945
    ninth, tenth = load_recipe("locator-3.1.9")["verification"], load_recipe("locator-3.1.10")["verification"]
    assert {k: v for k, v in tenth.items() if k != "film_look_alikes"} == {k: v for k, v in ninth.items() if k != "film_look_alikes"}
    assert tenth["film_look_alikes"] == {**ninth["film_look_alikes"], "integra_dp": ["medtronic_ps_medical_delta"]}


def test_a_bad_recipe_is_named_with_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="identifier-2.2.0"):
        load_recipe("no-such-recipe")
    path = tmp_path / "r.json"
    path.write_text('{"kind": "identifier", "data": {}, "composites": {}}', encoding="utf-8")
    with pytest.raises(RecipeError, match="missing optimiser, members"):
        load_recipe(path)
    path.write_text('{"kind": "detector"}', encoding="utf-8")
    with pytest.raises(RecipeError, match="'kind'"):
        load_recipe(path)
    path.write_text("{", encoding="utf-8")
    with pytest.raises(RecipeError, match="cannot read"):
        load_recipe(path)
    assert {p.stem for p in RECIPES.glob("*.json")} >= {"identifier-2.2.0", "locator-2.0"}


def test_members_train_on_regions_of_train_crops_only_and_validate_on_true_boxes() -> None:
    split = ["train"] * 4 + ["validation"] * 2 + ["test"] * 2
    source = [i for i in range(8) for _ in range(2)] + [-1, -1]  # two regions per composite, one phantom
    meta = {"split": split, "region_source": source, "region_variant": [0, 1] * 9}
    items = member_items(meta)
    assert set(np.asarray(source)[items["train_regions"]]) == {0, 1, 2, 3}
    assert list(items["val_regions"]) == [8, 10] and list(items["val_real"]) == [4, 5]
    assert -1 in np.asarray(source)[member_items(meta, phantom_regions=True)["train_regions"]]
    assert regions_per_epoch(1090, 4358, 1.0) == 1090 and regions_per_epoch(10, 4, 1.0) == 4 and regions_per_epoch(10, 40, 0) == 0


def test_a_crop_pasted_into_a_film_keeps_its_size_and_a_margin() -> None:
    crop = np.full((100, 80), 0.5, np.float32)
    assert fit_to_film(crop, (400, 300)) is crop
    big = fit_to_film(np.ones((500, 100), np.float32), (400, 300))
    assert big.shape[0] <= 240 and big.shape[1] <= 180
    rng = np.random.default_rng(0)
    for _ in range(20):
        box = paste_place((100, 80), rng, (400, 300))
        assert box.y0 >= 80 and box.y1 <= 320 and box.x0 >= 60 and box.x1 <= 240 and box.height == 100


@pytest.mark.slow
def test_the_identifier_recipe_runs_end_to_end_on_a_few_crops(tmp_path: Path) -> None:
    from valvereader.cli import main

    data = _crops(tmp_path / "crops")
    out = tmp_path / "run"
    assert main(["train", "--recipe", "identifier-2.2.0", "--data", str(data), "--out", str(out), "--smoke", "--threads", "1"]) == 0
    record = json.loads((out / "recipe.json").read_text(encoding="utf-8"))
    assert record["recipe"]["name"] == "identifier-2.2.0"
    for member in ("member_320", "member_384"):
        assert 1 <= record["outputs"][member]["steps"] <= 2
        card = json.loads((out / member / "model.json").read_text(encoding="utf-8"))
        assert card["training_data"]["composite_regions_train"] > 0
    ensemble = json.loads((out / "ensemble" / "model.json").read_text(encoding="utf-8"))
    assert [m["input_size"] for m in ensemble["members"]] == [64, 80]
    split = json.loads((out / "split.json").read_text(encoding="utf-8"))
    assert not set(split["split"]["train"]) & set(split["split"]["test"])
    # A second run reuses the prepared composites instead of rendering them again.
    stamp = (out / "work" / "meta.json").stat().st_mtime_ns
    assert main(["train", "--recipe", "identifier-2.2.0", "--data", str(data), "--out", str(out), "--smoke", "--threads", "1"]) == 0
    assert (out / "work" / "meta.json").stat().st_mtime_ns == stamp


def test_a_recipe_without_its_data_folder_is_refused(tmp_path: Path, capsys) -> None:
    from valvereader.cli import main

    assert main(["train", "--recipe", "identifier-2.2.0", "--out", str(tmp_path / "run")]) == 2
    assert "--data" in capsys.readouterr().err


def test_a_card_of_a_recipes_members_names_the_recipe() -> None:
    from valvereader.training.card_markdown import _lineage_line
    from valvereader.training.ship import _ensemble_training

    def member(size: int, recipe: str) -> dict:
        extra = {"real_crops_train": 1090, "composite_regions_train": 4358, "composite_regions_per_epoch": 1090,
                 "composites": "...", "recipe": recipe}
        return {"arch": "efficientnet_lite0", "input_size": size, "source": f"runs/r/member_{size}",
                "training": {"config": {"epochs": 30, "max_lr": 1e-3}, "hardware": "GPU", "training_data": extra}}

    card = {"input_size": 384, "member_runs": [member(320, "identifier-2.2.0"), member(384, "identifier-2.2.0")]}
    training = _ensemble_training(card, Path("runs/r/ensemble"), Path("runs/r/evaluation"), "2.2.0")
    assert training["reproduce"].startswith("valvereader train --recipe identifier-2.2.0 ")
    assert "recipes/identifier-2.2.0.json" in _lineage_line(training)
    mixed = {"input_size": 384, "member_runs": [member(320, "identifier-2.2.0"), member(384, "other")]}
    assert "reproduce" not in _ensemble_training(mixed, Path("e"), Path("v"), "2.2.0")


def test_a_card_of_fine_tuned_members_says_where_they_started_and_names_no_recipe_to_rerun() -> None:
    from valvereader.training.ship import BACKBONE_ATTRIBUTION, _ensemble_training

    def member(index: int, size: int) -> dict:
        extra = {"real_crops_train": 1090, "composite_regions_train": 1440, "composite_regions_per_epoch": 1090,
                 "composites": "...", "recipe": "",
                 "regions": "film regions", "starting_point": f"member {index} of identifier 2.4.0"}
        return {"arch": "efficientnet_lite0", "input_size": size, "source": f"runs/ft/member_{size}",
                "training": {"config": {"epochs": 1, "max_lr": 2e-4}, "hardware": "CPU", "training_data": extra}}

    card = {"input_size": 384, "member_runs": [member(0, 320), member(1, 384)]}
    training = _ensemble_training(card, Path("runs/ft/ensemble"), Path("runs/ft/evaluation"), "2.6.0")
    assert training["initialisation"].startswith("Fine-tuned, not trained from scratch: ")
    assert "320 px from member 0 of identifier 2.4.0" in training["initialisation"]
    assert "384 px from member 1 of identifier 2.4.0" in training["initialisation"]
    assert training["members"][0]["data"].endswith("1090 of 1440 film regions")
    assert "reproduce" not in training  # a fine-tune: no recipe to run again
    scratch = {"input_size": 384, "member_runs": [{**member(0, 320), "training": {"config": {}, "hardware": "GPU"}}]}
    assert _ensemble_training(scratch, Path("e"), Path("v"), "2.2.0")["initialisation"] == BACKBONE_ATTRIBUTION


@pytest.mark.slow
def test_the_locator_recipe_runs_end_to_end_on_a_few_crops(tmp_path: Path) -> None:
    from valvereader.cli import main

    data = _crops(tmp_path / "crops")
    out = tmp_path / "run"
    assert main(["train", "--recipe", "locator-2.0", "--data", str(data), "--out", str(out), "--smoke", "--threads", "1"]) == 0
    card = json.loads((out / "locator" / "locator.json").read_text(encoding="utf-8"))
    assert card["input_size"] == 64 and (out / "locator" / "locator.onnx").is_file()
    assert 0.05 <= card["thresholds"]["min_score"] <= 0.3
    meta = json.loads((out / "work" / "meta.json").read_text(encoding="utf-8"))
    assert "phantom" in meta["locator_kind"] and "composite" in meta["locator_kind"]


def test_the_real_film_locator_recipe_is_the_commands_that_made_locator_3_1(tmp_path: Path) -> None:
    from valvereader.training.locator_real import RealLocatorConfig

    recipe = load_recipe("locator-3.1")
    assert recipe["kind"] == "locator_real" and recipe["ship"]["version"] == "3.1"
    assert RealLocatorConfig(**recipe["train"]["config"]) == RealLocatorConfig(epochs=4)
    processed = load_recipe("locator-3.6")  # 3.1's training with half of its films processed
    assert RealLocatorConfig(**processed["train"]["config"]) == RealLocatorConfig(epochs=4, machine=0.5)
    assert {k: v for k, v in processed.items() if k not in ("name", "extends", "train", "produces", "ship", "notes")} == {
        k: v for k, v in load_recipe("locator-3.1.1").items() if k not in ("name", "extends", "train", "produces", "ship", "notes")}
    assert recipe["train"]["crops_as_images"] and recipe["train"]["init"]["recipe"] == "locator-2.0"
    assert (recipe["films"]["seed"], recipe["films"]["per_background"], recipe["films"]["negatives"]) == (7, 3, 1)
    assert recipe["verification"]["placeholder"] == {"candidates": 3, "min_score": 0.02}
    path = tmp_path / "r.json"
    path.write_text(json.dumps({**recipe, "train": {"config": {"epoch": 4}}}), encoding="utf-8")
    with pytest.raises(RecipeError, match="unknown settings epoch"):
        load_recipe(path)


@pytest.mark.slow
def test_the_real_film_locator_recipe_runs_end_to_end_on_a_few_films(crops_dir: Path, tmp_path: Path) -> None:
    from valvereader.cli import main

    if not (crops_dir.parent / "skull-radiographs" / "manifest.csv").is_file():
        pytest.skip("skull-radiographs not present")
    if not (ROOT / "weights" / "identifier.json").is_file():
        pytest.skip("no identifier in weights/")
    out = tmp_path / "run"
    # No --init-from: the start is locator 2.0 trained from its own recipe (shrunk too).
    # locator-3.1.2: 3.1.1's steps, its verification fitted on the validation films placed three times
    assert main(["train", "--recipe", "locator-3.1.2", "--data", str(crops_dir), "--out", str(out), "--smoke", "--threads", "1"]) == 0
    card = json.loads((out / "weights" / "locator.json").read_text(encoding="utf-8"))
    assert card["version"] == "3.1.2" and card["input_size"] == 64 and (out / "weights" / "locator.onnx").is_file()
    assert {"candidates", "min_score", "ood_weight", "no_valve_below", "confident_min_score"} <= set(card["verification"])
    assert card["training"]["recipe"].startswith("valvereader train --recipe locator-3.1.2 ")
    assert card["metrics"]["verification_validation"]["confident_peak_counts"] == "identifier-confident films"
    assert (out / "start" / "locator" / "locator.safetensors").is_file()
    films = json.loads((out / "verification" / "films.json").read_text(encoding="utf-8"))
    assert sorted(r["kind"] for r in films) == ["negative"] * 6 + ["valve"] * 6  # 2 backgrounds, seeds 7, 8 and 9
    placed = [sorted(Path(p).read_text(encoding="utf-8").splitlines()[1:]) for p in
              [out / "films" / "validation" / "ground_truth.csv",
               *(out / "films" / f"validation-seed-{s}" / "ground_truth.csv" for s in (8, 9))]]
    assert placed[0] != placed[1] and placed[1] != placed[2]  # each seed places the valves again
    record = json.loads((out / "recipe.json").read_text(encoding="utf-8"))
    assert record["start"]["recipe"] == "locator-2.0" and record["outputs"]["verification"] == json.loads(
        (out / "verification" / "verification.json").read_text(encoding="utf-8"))


def test_a_recipe_says_how_to_make_its_synthetic_radiographs(tmp_path: Path) -> None:
    recipe = load_recipe("locator-3.2")
    entry = recipe["train"]["synthetic"][0]
    assert (entry["count"], entry["seed"], entry["crops"]) == (400, 21, "train")
    assert load_recipe("locator-3.3")["train"]["config"]["negatives"] == 4
    path = tmp_path / "r.json"
    path.write_text(json.dumps({**recipe, "train": {**recipe["train"], "synthetic": [{"count": 4}]}}), encoding="utf-8")
    with pytest.raises(RecipeError, match="needs a count and a seed"):
        load_recipe(path)
    path.write_text(json.dumps({**recipe, "train": {**recipe["train"], "synthetic": [{"count": 4, "seed": 1, "crops": "all"}]}}),
                    encoding="utf-8")
    with pytest.raises(RecipeError, match="split part"):
        load_recipe(path)


def test_synthetic_radiographs_from_a_crop_list_are_those_of_its_folder(tmp_path: Path) -> None:
    from valvereader.phantoms.composite import find_crops
    from valvereader.phantoms.dataset import generate

    folder = _crops(tmp_path / "crops", per_class=1)
    crops = list(reversed(find_crops(folder)))  # any order: the plan takes them by source
    a = generate(3, tmp_path / "a", seed=5, composites_from=folder, workers=1, size=(256, 320), composite_fraction=1.0)
    b = generate(3, tmp_path / "b", seed=5, composites_from=crops, workers=1, size=(256, 320), composite_fraction=1.0)
    assert a.read_text(encoding="utf-8") == b.read_text(encoding="utf-8")
    assert "composite" in a.read_text(encoding="utf-8")


def test_a_recipe_that_extends_another_replaces_only_the_sections_it_gives(tmp_path: Path) -> None:
    child = tmp_path / "locator-child.json"
    child.write_text(json.dumps({"extends": "locator-3.1", "ship": {"version": "9.9", "crop_scale": 1.0}}), encoding="utf-8")
    recipe, base = load_recipe(child), load_recipe("locator-3.1")
    assert recipe["name"] == "locator-child" and recipe["ship"]["version"] == "9.9"
    assert {k: v for k, v in recipe.items() if k not in ("name", "ship")} == {k: v for k, v in base.items() if k not in ("name", "ship")}
    itself = tmp_path / "loop.json"
    itself.write_text(json.dumps({"extends": str(itself)}), encoding="utf-8")
    with pytest.raises(RecipeError, match="cannot extend itself"):
        load_recipe(itself)


def test_identifier_2_4_0_is_2_2_0_plus_the_film_head_the_card_carries() -> None:
    from valvereader.training.film_head import DECAYS, FOLDS

    base, recipe = load_recipe("identifier-2.2.0"), load_recipe("identifier-2.4.0")
    assert {k: v for k, v in recipe.items() if k not in ("name", "produces", "notes", "after", "film_head")} == \
        {k: v for k, v in base.items() if k not in ("name", "produces", "notes", "after")}
    assert recipe["after"][: len(base["after"])] == base["after"]  # 2.2.0 as it was, then the head
    regions, head = recipe["after"][-2], recipe["after"][-1]
    spec = recipe["film_head"]
    assert f"--seed {spec['regions']['seed']}" in regions and f"--per-background {spec['regions']['per_background']}" in regions
    assert head.startswith("python -m valvereader.training.film_head ") and "--version 2.4.0" in head
    assert tuple(spec["decays"]) == DECAYS and spec["folds"] == FOLDS  # the command's defaults


def test_the_shipped_identifier_2_4_3_is_what_its_recipe_makes() -> None:
    """Recipe identifier-2.4.3: 2.4.0's lines, two more region sets, and the head fitted on the
    three with a film-region temperature; the shipped card says the same."""
    from valvereader.training.film_head import DECAYS

    first, recipe = load_recipe("identifier-2.4.0"), load_recipe("identifier-2.4.3")
    assert recipe["after"][: len(first["after"]) - 1] == first["after"][:-1]  # 2.4.0's regions as they were
    head = recipe["after"][-1]
    assert "--version 2.4.3" in head and "--temperature fit" in head
    seeds = [r["seed"] for r in recipe["film_head"]["regions"]]
    assert seeds == [101, 202, 303] and all(f"--seed {seed}" in " ".join(recipe["after"]) for seed in seeds)
    card = json.loads((ROOT / "weights" / "identifier.json").read_text(encoding="utf-8"))
    assert card["film_head"]["temperature"] > 1
    assert set(card["film_head"]["cross_validation"]["true_box_named_right"]) == {repr(d) for d in DECAYS}
    assert all(f"seed {seed}" in card["film_head"]["fitted_on"] for seed in seeds)


def test_the_shipped_identifier_2_4_4_is_2_4_3_with_the_view_rules_bar() -> None:
    """Recipe identifier-2.4.4: 2.4.3's lines, then only the view rule's whole_max_ood; the shipped
    card carries that bar and the version."""
    third, fourth = load_recipe("identifier-2.4.3"), load_recipe("identifier-2.4.4")
    assert fourth["after"][:-1] == third["after"] and fourth["film_head"] == third["film_head"]
    last = fourth["after"][-1]
    assert "--version 2.4.4" in last and "--update-view-choice" in last
    given = json.loads(last.split("--update-view-choice ", 1)[1].strip("'"))
    card = json.loads((ROOT / "weights" / "identifier.json").read_text(encoding="utf-8"))
    assert card["view_choice"]["whole_max_ood"] == given["whole_max_ood"] == 150.0


def test_the_withdrawn_identifier_2_4_5_is_2_4_4_with_a_film_cap_chosen_by_film_cap() -> None:
    """Recipe identifier-2.4.5 (withdrawn): 2.4.4's lines, then the validation films, the outside
    designs and ``training.film_cap --write`` at the protocol's precision and outside share; the
    shipped card is 2.4.4's, without a film cap."""
    fourth, fifth = load_recipe("identifier-2.4.4"), load_recipe("identifier-2.4.5")
    assert fifth["after"][: len(fourth["after"])] == fourth["after"] and fifth["film_head"] == fourth["film_head"]
    films, outside, last = fifth["after"][-3:]
    assert "--seed $s" in films and "56 57 58 59 60 61 62 63" in films and "--part validation" in films
    assert "tools/outside_films.py" in outside and all(seed in outside for seed in ("902:9021", "903:9031", "905:9051"))
    assert "training.film_cap" in last and "--write --version 2.4.5" in last
    assert "--precision 0.995" in last and "--outside-max 0.04" in last
    assert "(withdrawn)" in fifth["produces"]
    card = json.loads((ROOT / "weights" / "identifier.json").read_text(encoding="utf-8"))
    assert card["version"] == "2.4.4" and "ood_review" not in card["film_head"]


def test_ship_takes_thresholds_from_a_curve_file_as_from_json(tmp_path: Path) -> None:
    from valvereader.training.ship import main as ship_main

    shipped = json.loads((ROOT / "weights" / "identifier.json").read_text(encoding="utf-8"))
    for name in ("from_file", "from_json"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "identifier.json").write_text(json.dumps(shipped), encoding="utf-8")
    curve = tmp_path / "curve.json"
    curve.write_text(json.dumps({"protocol": "...", "thresholds": {"ood_review": 90.5, "between_ratio": 0.9}}), encoding="utf-8")
    assert ship_main(["--weights", str(tmp_path / "from_file"), "--update-thresholds", str(curve)]) == 0
    assert ship_main(["--weights", str(tmp_path / "from_json"), "--update-thresholds",
                      '{"ood_review": 90.5, "between_ratio": 0.9}']) == 0
    cards = [json.loads((tmp_path / n / "identifier.json").read_text(encoding="utf-8")) for n in ("from_file", "from_json")]
    assert cards[0]["thresholds"] == cards[1]["thresholds"]
    assert cards[0]["thresholds"]["ood_review"] == 90.5
    assert cards[0]["thresholds"]["confident"] == shipped["thresholds"]["confident"]  # merged, not replaced
    assert ship_main(["--weights", str(tmp_path / "from_file"), "--update-thresholds", str(tmp_path / "missing.json")]) == 2


def test_locator_3_1_11_is_3_1_10_with_a_polarity_check() -> None:
    tenth, eleventh = load_recipe("locator-3.1.10"), load_recipe("locator-3.1.11")
    same = ("name", "produces", "notes", "ship", "polarity")
    assert {k: v for k, v in eleventh.items() if k not in same} == {k: v for k, v in tenth.items() if k not in same}
    assert "polarity" not in tenth and eleventh["polarity"] == {"seed": 601, "per_background": 4, "threshold": 0.8, "features": "rank-tophat-1"}
    assert eleventh["ship"]["version"] == "3.1.11"


def test_a_polarity_step_without_its_settings_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"extends": "locator-3.1.11", "polarity": {"seed": 1}}), encoding="utf-8")
    with pytest.raises(RecipeError, match="polarity needs a seed, per_background and threshold"):
        load_recipe(path)


def test_locator_3_1_12_fits_its_polarity_check_inside_the_films_field() -> None:
    eleventh, twelfth = load_recipe("locator-3.1.11"), load_recipe("locator-3.1.12")
    same = ("name", "produces", "notes", "ship", "polarity")
    assert {k: v for k, v in twelfth.items() if k not in same} == {k: v for k, v in eleventh.items() if k not in same}
    assert twelfth["polarity"] == {**eleventh["polarity"], "features": "rank-tophat-2", "margins": 0.3, "threshold": 0.95}
    assert twelfth["ship"]["version"] == "3.1.12"
