"""The identifier card's film-region head: a region cut from a film (a located or reader's box
covering less than most of its image) has its logits corrected; a crop, the whole image and
the open-set score are untouched; the attention map explains the corrected logits; and
``python -m valvereader.training.film_head`` fits one on regions and writes it beside the card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from tiny_model import synthetic_radiograph, write_tiny_weights

from valvereader.errors import ModelCardError, WeightsIntegrityError
from valvereader.explain import class_activation_map
from valvereader.geometry import Box
from valvereader.inference.cards import softmax
from valvereader.inference.film_head import FilmHead
from valvereader.inference.predictor import load_predictor
from valvereader.model.card import sha256_of

CLASSES, CHANNELS = 8, 8  # the tiny network's


def add_head(folder: Path, weight: np.ndarray, bias: np.ndarray, mirror: bool = False) -> Path:
    from safetensors.numpy import save_file

    path = folder / "identifier.film_head.safetensors"
    save_file({"weight": weight.astype(np.float32), "bias": bias.astype(np.float32)}, str(path))
    card = json.loads((folder / "identifier.json").read_text())
    card["files"]["film_head"] = {"path": path.name, "sha256": sha256_of(path)}
    card["film_head"] = {"formula": "test"}
    if mirror:
        card["inference"] = {"mirror": True}
    (folder / "identifier.json").write_text(json.dumps(card))
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    plain = tmp_path_factory.mktemp("plain")
    write_tiny_weights(plain)
    headed = tmp_path_factory.mktemp("headed")
    for item in plain.iterdir():
        (headed / item.name).write_bytes(item.read_bytes())
    rng = np.random.default_rng(5)
    weight, bias = rng.normal(0, 3.0, (CLASSES, CHANNELS)), rng.normal(0, 1.0, CLASSES)
    add_head(headed, weight, bias, mirror=True)
    card = json.loads((plain / "identifier.json").read_text())
    card["inference"] = {"mirror": True}
    (plain / "identifier.json").write_text(json.dumps(card))
    return plain, headed, weight.astype(np.float32), bias.astype(np.float32)


def test_applies_only_to_regions_that_are_a_small_part_of_their_image() -> None:
    shape = (100, 100)
    assert FilmHead.applies(Box(10, 10, 50, 50), shape)  # 16 %: a box on a film
    assert not FilmHead.applies(Box(0, 0, 95, 95), shape)  # 90 %: a crop's own extent
    assert not FilmHead.applies(None, shape)  # the whole image


def test_a_film_region_is_corrected_and_a_whole_image_is_not(folders) -> None:
    plain, headed, weight, bias = folders
    without, with_head = load_predictor(plain, device="cpu"), load_predictor(headed, device="cpu")
    assert without.film_head is None and with_head.film_head is not None
    radiograph = synthetic_radiograph((160, 160))
    region = Box(40, 40, 80, 80)
    _, plain_out = without.identify(radiograph, region)
    _, head_out = with_head.identify(radiograph, region)
    pooled = (plain_out["features"].mean(axis=(2, 3)) + plain_out["mirror_features"].mean(axis=(2, 3))) / 2
    np.testing.assert_allclose(head_out["logits"], plain_out["logits"] + pooled @ weight.T + bias, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(head_out["features"], plain_out["features"])  # the open-set score reads these
    # The whole image, and a region covering most of it (a crop), read as without the head.
    for view in (None, Box(2, 2, 158, 158)):
        _, a = without.identify(radiograph, view)
        _, b = with_head.identify(radiograph, view)
        np.testing.assert_array_equal(a["logits"], b["logits"])
        assert "head_weight" not in b


def test_the_reader_region_result_follows_the_head_and_its_map_explains_it(folders) -> None:
    plain, headed, weight, _ = folders
    without, with_head = load_predictor(plain, device="cpu"), load_predictor(headed, device="cpu")
    radiograph = synthetic_radiograph((160, 160))
    region = Box(40, 40, 80, 80)
    a, b = without.predict(radiograph, region=region), with_head.predict(radiograph, region=region)
    assert a.ood_score == b.ood_score  # the open-set score is the features'
    assert not np.allclose(a.probabilities, b.probabilities, atol=1e-3)  # the head changed the reading
    _, outputs = with_head.identify(radiograph, region.square(with_head.crop_scale, minimum=32).clip(radiograph.shape))
    np.testing.assert_allclose(b.probabilities, softmax(outputs["logits"].astype(np.float64), with_head.temperature)[0], rtol=1e-5)
    index = int(np.argmax(b.probabilities))
    expected = class_activation_map(outputs["features"][0], with_head._classifier_weights[index] + weight[index],
                                    outputs["mirror_features"][0])
    np.testing.assert_allclose(b.attention, expected, rtol=1e-4, atol=1e-6)


def test_a_changed_or_malformed_head_file_is_refused(folders, tmp_path: Path) -> None:
    _, headed, _, _ = folders
    for item in headed.iterdir():
        (tmp_path / item.name).write_bytes(item.read_bytes())
    path = tmp_path / "identifier.film_head.safetensors"
    path.write_bytes(path.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(WeightsIntegrityError):
        load_predictor(tmp_path, device="cpu")
    add_head(tmp_path, np.zeros((CLASSES - 1, CHANNELS)), np.zeros(CLASSES - 1))
    with pytest.raises(ModelCardError, match="classes"):
        load_predictor(tmp_path, device="cpu")


def test_fit_head_corrects_offsets_that_name_the_wrong_class() -> None:
    from valvereader.training.film_head import fit_head, named_right

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 40)
    pooled = rng.normal(0, 1, (160, 6)).astype(np.float32) * 0.3 + 5.0  # far from zero: the standardisation matters
    pooled[np.arange(160), labels] += 2.0
    logits = np.zeros((160, 4), np.float32)
    logits[:, 0] = 3.0  # the network alone names class 0 everywhere
    assert named_right(pooled, logits, labels, None).mean() == pytest.approx(0.25)
    head = fit_head(pooled, logits, labels, decay=1e-3)
    assert head[0].shape == (4, 6) and head[1].shape == (4,)
    assert named_right(pooled, logits, labels, head).mean() > 0.95


def test_the_command_fits_a_head_on_regions_and_the_program_loads_it(tmp_path: Path) -> None:
    from valvereader.training.film_head import main

    weights = tmp_path / "weights"
    write_tiny_weights(weights)
    regions = tmp_path / "regions"
    regions.mkdir()
    rng = np.random.default_rng(1)
    n = 40
    labels = np.tile(np.arange(CLASSES), n // CLASSES)
    images = rng.integers(0, 60, (n, 32, 32)).astype(np.uint8)
    for i, label in enumerate(labels):  # a class-dependent bright patch
        images[i, 2 + 3 * label : 6 + 3 * label, 4:28] = 230
    np.save(regions / "film_regions_32.npy", images)
    meta = {"label": labels.tolist(), "variant": [i % 2 for i in range(n)], "background": [f"bg{i // 4}" for i in range(n)],
            "class_ids": list(load_predictor(weights, device="cpu").valve_ids), "backgrounds": 10, "crops": n, "seed": 1, "per_background": 2}
    (regions / "film_regions.json").write_text(json.dumps(meta))
    assert main(["--regions", str(regions), "--weights", str(weights), "--version", "0.1", "--decays", "0.001,0.1"]) == 0
    card = json.loads((weights / "identifier.json").read_text())
    assert card["version"] == "0.1" and card["film_head"]["weight_decay"] in (0.001, 0.1)
    assert card["film_head"]["fitted_for"] == card["files"]["onnx"]["sha256"]
    assert "as 0.1 on " in card["training"]["reshipped"] and "every file of 0 unchanged" in card["training"]["reshipped"]
    assert set(card["film_head"]["cross_validation"]["true_box_named_right"]) == {"0.001", "0.1"}
    assert not (weights / "identifier.md").exists()  # a test card has no Markdown twin to keep in step
    predictor = load_predictor(weights, device="cpu")
    assert predictor.film_head is not None and predictor.film_head.weight.shape == (CLASSES, CHANNELS)


def test_the_command_says_what_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from valvereader.training.film_head import main

    weights = tmp_path / "weights"
    write_tiny_weights(weights)
    (tmp_path / "regions").mkdir()
    (tmp_path / "regions" / "film_regions.json").write_text(json.dumps({"label": []}))
    assert main(["--regions", str(tmp_path / "regions"), "--weights", str(weights)]) == 2
    assert "film_regions_32.npy not found" in capsys.readouterr().err


def _regions(folder: Path, labels: np.ndarray, seed: int, part: str = "train") -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    images = rng.integers(0, 60, (len(labels), 32, 32)).astype(np.uint8)
    for i, label in enumerate(labels):
        images[i, 2 + 3 * label : 6 + 3 * label, 4:28] = 230
    np.save(folder / "film_regions_32.npy", images)
    from valvereader.catalogue import VALVE_IDS

    meta = {"label": labels.tolist(), "variant": [i % 2 for i in range(len(labels))], "background": [f"{part}{i // 4}" for i in range(len(labels))],
            "class_ids": list(VALVE_IDS), "backgrounds": len(labels) // 4, "crops": len(labels), "seed": seed, "per_background": 2, "part": part}
    (folder / "film_regions.json").write_text(json.dumps(meta))
    return folder


def test_the_command_fits_on_several_region_sets_and_reports_each(tmp_path: Path) -> None:
    from valvereader.training.film_head import main

    weights = tmp_path / "weights"
    write_tiny_weights(weights)
    labels = np.tile(np.arange(CLASSES), 5)
    real = _regions(tmp_path / "real", labels, 1)
    synthetic = _regions(tmp_path / "synthetic", labels[:24], 2, part="synthetic")
    assert main(["--regions", str(real), str(synthetic), "--weights", str(weights), "--decays", "0.001,0.1"]) == 0
    head = json.loads((weights / "identifier.json").read_text())["film_head"]
    assert all(len(v) == 2 for v in head["cross_validation"]["true_box_named_right"].values())  # per set
    assert len(head["cross_validation"]["without_head"]) == 2
    assert "40 regions of 10 train-split skull radiographs" in head["fitted_on"]
    assert "24 regions of 6 synthetic radiographs" in head["fitted_on"]


def test_the_command_fits_a_temperature_out_of_fold_and_the_program_uses_it(tmp_path: Path) -> None:
    """``--temperature fit``: a positive T in the card's film_head section, with how it was
    chosen, and the program divides a film region's logits by it; a given T is written as is;
    a bad one is exit 2."""
    from valvereader.training.film_head import main

    weights = tmp_path / "weights"
    write_tiny_weights(weights)
    labels = np.tile(np.arange(CLASSES), 5)
    real = _regions(tmp_path / "real", labels, 1)
    assert main(["--regions", str(real), "--weights", str(weights), "--decays", "0.1", "--temperature", "fit"]) == 0
    head = json.loads((weights / "identifier.json").read_text())["film_head"]
    assert head["temperature"] > 0 and "out of fold" in head["temperature_fitted"]
    assert load_predictor(weights, device="cpu").film_head.temperature == pytest.approx(head["temperature"])
    assert main(["--regions", str(real), "--weights", str(weights), "--decays", "0.1", "--temperature", "1.5"]) == 0
    head = json.loads((weights / "identifier.json").read_text())["film_head"]
    assert head["temperature"] == 1.5 and head["temperature_fitted"] == "given"
    assert main(["--regions", str(real), "--weights", str(weights), "--decays", "0.1", "--temperature", "-1"]) == 2


def test_a_film_region_is_marked_as_such_and_kept_so(folders, tmp_path: Path) -> None:
    from valvereader.review import ResultCache

    _, headed, _, _ = folders
    predictor = load_predictor(headed, device="cpu")
    radiograph = synthetic_radiograph((160, 160))
    on_film = predictor.predict(radiograph, region=Box(40, 40, 80, 80))
    assert on_film.film_region
    assert not predictor.predict(radiograph, region=Box(2, 2, 158, 158)).film_region  # most of the image
    assert not predictor.predict(radiograph).film_region  # no locator: the whole image
    image = tmp_path / "a.png"
    image.write_bytes(b"x")
    ResultCache(tmp_path).put(image, on_film)
    assert ResultCache(tmp_path).get(image).film_region


def test_a_head_fitted_for_another_network_is_refused(folders, tmp_path: Path) -> None:
    _, headed, _, _ = folders
    for item in headed.iterdir():
        (tmp_path / item.name).write_bytes(item.read_bytes())
    card = json.loads((tmp_path / "identifier.json").read_text())
    card["film_head"]["fitted_for"] = card["files"]["onnx"]["sha256"]
    (tmp_path / "identifier.json").write_text(json.dumps(card))
    assert load_predictor(tmp_path, device="cpu").film_head is not None  # its own network: fine
    card["film_head"]["fitted_for"] = "0" * 64
    (tmp_path / "identifier.json").write_text(json.dumps(card))
    with pytest.raises(ModelCardError, match="another network"):
        load_predictor(tmp_path, device="cpu")


def test_a_film_head_temperature_divides_the_region_logits_and_the_map_follows(folders, tmp_path: Path) -> None:
    """The card's ``film_head.temperature`` T: a film region's corrected logits divided by T (the
    same name, a softer probability), its attention map scaled alike; a crop untouched; a
    temperature that is not a positive number refused."""
    _, headed, _, _ = folders
    for item in headed.iterdir():
        (tmp_path / item.name).write_bytes(item.read_bytes())
    card = json.loads((tmp_path / "identifier.json").read_text())
    card["film_head"]["temperature"] = 2.0
    (tmp_path / "identifier.json").write_text(json.dumps(card))
    one, two = load_predictor(headed, device="cpu"), load_predictor(tmp_path, device="cpu")
    radiograph = synthetic_radiograph((160, 160))
    region = Box(40, 40, 80, 80)
    _, a = one.identify(radiograph, region)
    _, b = two.identify(radiograph, region)
    np.testing.assert_allclose(b["logits"], a["logits"] / 2.0, rtol=1e-5, atol=1e-6)
    p, q = one.predict(radiograph, region=region), two.predict(radiograph, region=region)
    assert p.predicted == q.predicted and q.confidence < p.confidence
    np.testing.assert_allclose(q.attention, p.attention / 2.0, rtol=1e-4, atol=1e-6)
    _, crop_one = one.identify(radiograph, Box(2, 2, 158, 158))
    _, crop_two = two.identify(radiograph, Box(2, 2, 158, 158))
    np.testing.assert_array_equal(crop_one["logits"], crop_two["logits"])
    for bad in (0, -1.0, "2", True, float("nan")):
        card["film_head"]["temperature"] = bad
        (tmp_path / "identifier.json").write_text(json.dumps(card))
        with pytest.raises(ModelCardError, match="temperature"):
            load_predictor(tmp_path, device="cpu")


class _FixedDistances:
    """An open-set scorer whose views all lie ``distance`` from every class mean."""

    def __init__(self, distance: float):
        self.distance = distance

    def class_distances(self, pooled: np.ndarray) -> np.ndarray:
        return np.full((pooled.shape[0], CLASSES), self.distance)


def _capped(folders, tmp_path: Path, film_cap: float | None) -> Path:
    _, headed, _, _ = folders
    for item in headed.iterdir():
        (tmp_path / item.name).write_bytes(item.read_bytes())
    card = json.loads((tmp_path / "identifier.json").read_text())
    card["thresholds"] = {"confident": 0.0, "unknown_confidence": 0.0, "ood_review": 10.0}
    if film_cap is not None:
        card["film_head"]["ood_review"] = film_cap
    (tmp_path / "identifier.json").write_text(json.dumps(card))
    return tmp_path


@pytest.mark.parametrize("film_cap", [None, 50.0])
def test_a_film_region_is_capped_by_the_film_heads_cap_and_a_crop_by_the_cards(folders, tmp_path: Path,
                                                                                film_cap: float | None) -> None:
    """``film_head.ood_review`` replaces the card's cap on "confident" for a film region only: a
    view 30 from every class mean is "confident" on a film under a film cap of 50, and "needs
    review" ("unusual") past the card's cap of 10 as a crop, or on a film without a film cap."""
    predictor = load_predictor(_capped(folders, tmp_path, film_cap), device="cpu")
    assert (predictor.film_head.ood_review is None) == (film_cap is None)
    predictor._scorer = _FixedDistances(30.0)
    radiograph = synthetic_radiograph((160, 160))
    on_film = predictor.predict(radiograph, region=Box(40, 40, 80, 80))
    as_crop = predictor.predict(radiograph, region=Box(2, 2, 158, 158))
    assert on_film.film_region and not as_crop.film_region
    assert on_film.ood_score == as_crop.ood_score == pytest.approx(30.0)  # the score itself is the same
    assert (as_crop.verdict.value, as_crop.verdict_reason) == ("review", "unusual")
    assert (on_film.verdict.value, on_film.verdict_reason) == (("confident", "sure") if film_cap else ("review", "unusual"))
    predictor._scorer = _FixedDistances(60.0)  # past the film cap too
    assert predictor.predict(radiograph, region=Box(40, 40, 80, 80)).verdict_reason == "unusual"


@pytest.mark.parametrize("bad", [-1.0, 0, "80", True, float("nan")])
def test_a_bad_film_cap_is_refused(folders, tmp_path: Path, bad) -> None:
    folder = _capped(folders, tmp_path, 50.0)
    card = json.loads((folder / "identifier.json").read_text())
    card["film_head"]["ood_review"] = bad
    (folder / "identifier.json").write_text(json.dumps(card))
    with pytest.raises(ModelCardError, match="ood_review"):
        load_predictor(folder, device="cpu")
