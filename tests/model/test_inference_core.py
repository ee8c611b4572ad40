"""Model cards, runtimes, the attention map and the predictor, on a tiny exported network."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from tiny_model import build_tiny, synthetic_radiograph, write_tiny_weights

from valvereader.catalogue import VALVE_IDS
from valvereader.errors import ModelCardError, WeightsIntegrityError, WeightsMissingError
from valvereader.explain import class_activation_map, gradcam_reference
from valvereader.geometry import Box
from valvereader.inference.locating import decode_locator
from valvereader.inference.predictor import load_predictor
from valvereader.model.card import ModelCard
from valvereader.prediction import (
    REASON_LOW_CONFIDENCE,
    REASON_SURE,
    REASON_UNLIKE_TRAINING,
    REASON_UNSURE,
    REASON_UNUSUAL,
    Prediction,
    Verdict,
    VerdictThresholds,
    verdict_meaning,
)
from valvereader.preprocess import PreparedImage


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("weights")
    write_tiny_weights(folder)
    return folder


def test_missing_weights_say_where_to_put_them(tmp_path: Path) -> None:
    with pytest.raises(WeightsMissingError, match=str(tmp_path)):
        load_predictor(tmp_path)


def test_tampered_onnx_is_refused_by_checksum(weights: Path, tmp_path: Path) -> None:
    for item in weights.iterdir():
        (tmp_path / item.name).write_bytes(item.read_bytes())
    with open(tmp_path / "identifier.onnx", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(WeightsIntegrityError, match="sha256"):
        load_predictor(tmp_path)


def test_card_with_other_classes_is_refused(weights: Path, tmp_path: Path) -> None:
    for item in weights.iterdir():
        (tmp_path / item.name).write_bytes(item.read_bytes())
    card = json.loads((tmp_path / "identifier.json").read_text())
    card["class_ids"] = list(reversed(card["class_ids"]))
    (tmp_path / "identifier.json").write_text(json.dumps(card))
    with pytest.raises(WeightsIntegrityError, match="catalogue"):
        load_predictor(tmp_path)


def test_card_that_is_not_json_gives_a_card_error(tmp_path: Path) -> None:
    (tmp_path / "identifier.json").write_text("{not json")
    with pytest.raises(ModelCardError, match="not valid JSON"):
        ModelCard.load(tmp_path / "identifier.json")


def test_prediction_has_probabilities_heatmap_and_box_in_image_coordinates(weights: Path) -> None:
    predictor = load_predictor(weights, device="cpu")
    radiograph = synthetic_radiograph((120, 90))
    prediction = predictor.predict(radiograph)
    assert prediction.probabilities.shape == (8,)
    assert abs(float(prediction.probabilities.sum()) - 1.0) < 1e-5
    assert prediction.heatmap is not None and prediction.heatmap.shape == (120, 90)
    assert 0.0 <= prediction.heatmap.min() and prediction.heatmap.max() <= 1.0
    box = prediction.box
    assert box is not None and Box.full((120, 90)).contains(box) and box.width > 0
    # The black border is outside the region the model saw, so it has no attention.
    assert prediction.heatmap[:5].max() == 0.0
    assert prediction.verdict in set(Verdict)
    assert prediction.pipeline == "whole-image"


def test_onnx_runtime_matches_torch_reference(weights: Path) -> None:
    import torch

    model = build_tiny()
    predictor = load_predictor(weights, device="cpu")
    radiograph = synthetic_radiograph()
    prepared, outputs = predictor.identify(radiograph)
    with torch.no_grad():
        logits, features = model(torch.from_numpy(prepared.pixels[None, None]))
    assert np.abs(outputs["logits"] - logits.numpy()).max() < 1e-4
    assert np.abs(outputs["features"] - features.numpy()).max() < 1e-4


def test_class_activation_map_equals_pytorch_grad_cam() -> None:
    import torch

    model = build_tiny(seed=3)
    rng = np.random.default_rng(0)
    batch = rng.uniform(0, 1, (1, 1, 64, 64)).astype(np.float32)
    with torch.no_grad():
        _logits, features = model(torch.from_numpy(batch))
    for k in range(3):
        ours = class_activation_map(features[0].numpy(), model.classifier.weight[k].detach().numpy())
        reference = gradcam_reference(model, batch, k)
        if reference.max() == 0 and ours.max() == 0:
            continue
        corr = np.corrcoef(ours.ravel(), reference.ravel())[0, 1]
        assert corr >= 0.999, f"class {k}: correlation {corr:.5f}"


def test_locator_box_maps_back_through_the_border_crop() -> None:
    h = w = 16
    heat = np.full((1, 1, h, w), -10.0, dtype=np.float32)
    heat[0, 0, 4, 8] = 5.0  # centre at ((8.5/16), (4.5/16)) of the input
    size = np.zeros((1, 2, h, w), dtype=np.float32)
    size[0, :, 4, 8] = (0.25, 0.125)
    prepared = PreparedImage(np.zeros((64, 64), np.float32), Box(100, 50, 420, 370), (500, 600))
    located = decode_locator({"heatmap": heat, "size": size}, prepared, 64, 0.3)
    assert located.box is not None and located.score > 0.99
    cx, cy = located.box.center
    assert abs(cx - (100 + 8.5 / 16 * 320)) <= 1 and abs(cy - (50 + 4.5 / 16 * 320)) <= 1
    assert abs(located.box.width - 80) <= 2 and abs(located.box.height - 40) <= 2


def test_locator_below_threshold_finds_nothing() -> None:
    heat = np.full((1, 1, 8, 8), -5.0, dtype=np.float32)
    prepared = PreparedImage(np.zeros((32, 32), np.float32), Box(0, 0, 32, 32), (32, 32))
    located = decode_locator({"heatmap": heat, "size": np.zeros((1, 2, 8, 8), np.float32)}, prepared, 32, 0.3)
    assert located.box is None


def test_low_confidence_threshold_gives_unknown_verdict(tmp_path: Path) -> None:
    write_tiny_weights(tmp_path, thresholds={"confident": 0.99, "unknown_confidence": 0.99})
    prediction = load_predictor(tmp_path, device="cpu").predict(synthetic_radiograph())
    assert prediction.verdict is Verdict.UNKNOWN
    assert prediction.verdict_reason == REASON_LOW_CONFIDENCE
    assert "No valve the model knows fits" in verdict_meaning(prediction)


def test_the_verdict_says_which_rule_gave_it() -> None:
    """98 % that needs review because the image is unusual must not read "the model is not sure"."""
    rules = VerdictThresholds(confident=0.9, unknown_confidence=0.5, ood_review=100.0, ood_unknown=200.0)
    assert rules.decide(0.98, 50.0) == (Verdict.CONFIDENT, REASON_SURE)
    assert rules.decide(0.98, 150.0) == (Verdict.REVIEW, REASON_UNUSUAL)
    assert rules.decide(0.70, 50.0) == (Verdict.REVIEW, REASON_UNSURE)
    assert rules.decide(0.98, 250.0) == (Verdict.UNKNOWN, REASON_UNLIKE_TRAINING)
    assert rules.decide(0.30, 50.0) == (Verdict.UNKNOWN, REASON_LOW_CONFIDENCE)
    for confidence, score in ((0.98, 50.0), (0.98, 150.0), (0.7, 50.0), (0.98, 250.0), (0.3, None), (0.95, None)):
        assert rules.verdict(confidence, score) is rules.decide(confidence, score)[0]

    def meaning(confidence: float, score: float) -> str:
        verdict, reason = rules.decide(confidence, score)
        probabilities = np.array([confidence] + [(1 - confidence) / 7] * 7, dtype=np.float32)
        return verdict_meaning(Prediction(VALVE_IDS, probabilities, verdict, score, verdict_reason=reason))

    assert "looks unusual" in meaning(0.98, 150.0) and "do not trust its 98 %" in meaning(0.98, 150.0)
    assert "not sure (70 %" in meaning(0.70, 50.0)
    assert "probabilities do not apply" in meaning(0.98, 250.0)
    assert meaning(0.98, 50.0).startswith("The model is sure")
    unknown_rule = Prediction(VALVE_IDS, np.full(8, 0.125, np.float32), Verdict.REVIEW)  # e.g. cached by an older version
    assert verdict_meaning(unknown_rule).startswith("The model is unsure or the image is unusual")


def test_pipeline_runs_with_sockets_blocked(weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    prediction = load_predictor(weights, device="cpu").predict(synthetic_radiograph())
    assert prediction.probabilities.shape == (8,)


def test_lazy_heatmap_equals_the_eager_one(weights: Path) -> None:
    predictor = load_predictor(weights, device="cpu")
    radiograph = synthetic_radiograph((100, 140))
    eager = predictor.predict(radiograph, with_heatmap=True)
    lazy = predictor.predict(radiograph, with_heatmap=False)
    assert lazy.heatmap is None and lazy.attention is not None
    assert np.array_equal(lazy.full_heatmap(), eager.heatmap)


def test_decimated_heatmap_matches_the_full_one_sampled() -> None:
    from valvereader.explain import place_map

    rng = np.random.default_rng(4)
    cam = rng.uniform(0, 1, (10, 10)).astype(np.float32)
    region = Box(130, 70, 1630, 1870)
    full = place_map(cam, region, (2500, 2000))
    for step in (2, 3, 7):
        small = place_map(cam, region, (2500, 2000), step)
        reference = full[::step, ::step]
        assert small.shape == reference.shape
        assert np.corrcoef(small.ravel(), reference.ravel())[0, 1] > 0.995
        assert np.abs(small - reference).max() < 0.15


def test_fast_mahalanobis_equals_the_textbook_formula(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    from valvereader.inference.open_set import OpenSetScorer
    from valvereader.model.card import sha256_of

    rng = np.random.default_rng(5)
    c, k = 16, 8
    a = rng.normal(size=(c, c))
    precision = (a @ a.T + np.eye(c)).astype(np.float32)
    means = rng.normal(size=(k, c)).astype(np.float32)
    path = tmp_path / "open.safetensors"
    save_file({"class_means": means, "precision": precision}, str(path))
    card_path = tmp_path / "c.json"
    card_path.write_text(json.dumps({
        "name": "x", "version": "0", "task": "identify", "architecture": "tiny", "input_size": 8,
        "files": {"openset": {"path": path.name, "sha256": sha256_of(path)}},
        "openset": {"method": "mahalanobis"},
    }))
    scorer = OpenSetScorer(ModelCard.load(card_path))
    pooled = rng.normal(size=(3, c))
    diffs = pooled[:, None, :] - means[None].astype(np.float64)
    textbook = np.sqrt(np.einsum("nkc,cd,nkd->nk", diffs, precision.astype(np.float64), diffs)).min(axis=1)
    assert np.allclose(scorer(np.zeros((3, k)), pooled), textbook, rtol=1e-6)


def test_a_packed_precision_matrix_scores_as_the_full_one(tmp_path: Path) -> None:
    """The open-set file stores the symmetric precision matrix as its upper triangle: the same
    statistics stored packed and in full (the older form) give the same distances, the packing
    round-trips exactly, and a triangle of the wrong length or a file with neither is refused."""
    from safetensors.numpy import save_file

    from valvereader.errors import ModelError
    from valvereader.inference.open_set import (
        PACKED,
        OpenSetScorer,
        pack_symmetric,
        unpack_symmetric,
    )
    from valvereader.model.card import sha256_of

    rng = np.random.default_rng(8)
    c, k = 12, 4
    a = rng.normal(size=(c, c))
    precision = (a @ a.T / c + np.eye(c)).astype(np.float32)
    means = rng.normal(size=(k, c)).astype(np.float32)
    packed = pack_symmetric(precision)
    assert packed.shape == (c * (c + 1) // 2,) and packed.dtype == np.float32
    assert np.array_equal(unpack_symmetric(packed), precision.astype(np.float64))

    def scorer(name: str, arrays: dict[str, np.ndarray]) -> OpenSetScorer:
        path = tmp_path / f"{name}.safetensors"
        save_file(arrays, str(path))
        card_path = tmp_path / f"{name}.json"
        card_path.write_text(json.dumps({
            "name": "x", "version": "0", "task": "identify", "architecture": "tiny", "input_size": 8,
            "files": {"openset": {"path": path.name, "sha256": sha256_of(path)}}, "openset": {"method": "mahalanobis"}}))
        return OpenSetScorer(ModelCard.load(card_path))

    pooled = rng.normal(size=(5, c))
    full = scorer("full", {"class_means": means, "precision": precision})
    small = scorer("packed", {"class_means": means, PACKED: packed})
    assert np.array_equal(small.class_distances(pooled), full.class_distances(pooled))
    with pytest.raises(ModelError, match="upper triangle"):
        scorer("short", {"class_means": means, PACKED: packed[:-1]})
    with pytest.raises(ModelError, match="lacks"):
        scorer("none", {"class_means": means})


def test_the_open_set_score_reads_only_the_channels_its_card_names(tmp_path: Path) -> None:
    """An ensemble's statistics may cover its first members' features ("features": [start,
    stop]): the score then equals the statistics' own score on that slice; a range that does not
    fit the statistics is a card error, and features too short for it a model error."""
    from valvereader.errors import ModelCardError, ModelError
    from valvereader.inference.open_set import OpenSetScorer
    from valvereader.model.card import sha256_of
    from valvereader.training.openset import fit_mahalanobis, save_openset

    rng = np.random.default_rng(3)
    c, k = 10, 3
    features = rng.gamma(2.0, 1.0, size=(90, c)) + np.repeat(np.eye(k, c) * 3, 30, axis=0)
    labels = np.repeat(np.arange(k), 30)
    stats = fit_mahalanobis(features[:, 2:8], labels, range(k), normalise="l2")
    path = save_openset(tmp_path / "open.safetensors", stats)

    def scorer(channels):
        card_path = tmp_path / "c.json"
        card_path.write_text(json.dumps({
            "name": "x", "version": "0", "task": "identify", "architecture": "tiny", "input_size": 8,
            "files": {"openset": {"path": path.name, "sha256": sha256_of(path)}},
            "openset": {"method": "mahalanobis", "normalise": "l2", "features": channels}}))
        return OpenSetScorer(ModelCard.load(card_path))

    pooled = rng.gamma(2.0, 1.0, size=(4, c))
    assert np.allclose(scorer([2, 8])(np.zeros((4, k)), pooled), stats.score(pooled[:, 2:8]), rtol=1e-5)
    for bad in ([2, 9], [8, 2], [-1, 5], "2:8", [2.0, 8.0]):
        with pytest.raises(ModelCardError, match="features"):
            scorer(bad)
    with pytest.raises(ModelError, match="up to channel 8"):
        scorer([2, 8])(np.zeros((4, k)), pooled[:, :7])


@pytest.mark.parametrize("normalise", ["none", "l2"])
def test_inference_score_equals_the_training_side_statistics(tmp_path: Path, normalise: str) -> None:
    """The program's numpy scorer gives the score the thresholds were fitted with, either way."""
    from valvereader.inference.open_set import OpenSetScorer
    from valvereader.model.card import sha256_of
    from valvereader.training.openset import fit_mahalanobis, save_openset

    rng = np.random.default_rng(11)
    c, k = 12, 3
    features = rng.gamma(2.0, 1.0, size=(90, c)) + np.repeat(np.eye(k, c) * 3, 30, axis=0)
    labels = np.repeat(np.arange(k), 30)
    stats = fit_mahalanobis(features, labels, range(k), normalise=normalise)
    path = save_openset(tmp_path / "open.safetensors", stats)
    card_path = tmp_path / "c.json"
    card_path.write_text(json.dumps({
        "name": "x", "version": "0", "task": "identify", "architecture": "tiny", "input_size": 8,
        "files": {"openset": {"path": path.name, "sha256": sha256_of(path)}},
        "openset": {"method": "mahalanobis", "normalise": normalise},
    }))
    pooled = rng.gamma(2.0, 1.0, size=(5, c)) * rng.uniform(0.5, 3.0, size=(5, 1))  # varied norms
    expected = stats.score(pooled)
    assert np.allclose(OpenSetScorer(ModelCard.load(card_path))(np.zeros((5, k)), pooled), expected, rtol=1e-5)
    if normalise == "l2":  # the scale of a feature vector no longer matters
        assert np.allclose(OpenSetScorer(ModelCard.load(card_path))(np.zeros((5, k)), pooled * 7.0), expected, rtol=1e-5)


def test_unknown_normalisation_is_a_card_error(tmp_path: Path) -> None:
    from valvereader.errors import ModelCardError
    from valvereader.inference.open_set import OpenSetScorer

    card_path = tmp_path / "c.json"
    card_path.write_text(json.dumps({"name": "x", "version": "0", "task": "identify", "architecture": "tiny",
                                     "input_size": 8, "files": {}, "openset": {"method": "mahalanobis", "normalise": "cosine"}}))
    with pytest.raises(ModelCardError, match="cosine"):
        OpenSetScorer(ModelCard.load(card_path))


def test_shipped_weights_work_without_the_torch_safetensors(tmp_path: Path) -> None:
    """The desktop bundle ships ONNX + the small classifier file, not the full torch weights."""
    from valvereader.paths import weights_dir

    shipped = weights_dir()
    if not (shipped / "identifier.json").exists():
        pytest.skip("no shipped weights")
    for item in shipped.iterdir():
        if item.is_file() and item.name != "identifier.safetensors":
            (tmp_path / item.name).write_bytes(item.read_bytes())
    (tmp_path / "locator.json").unlink(missing_ok=True)
    prediction = load_predictor(tmp_path, device="cpu").predict(synthetic_radiograph((200, 160)))
    assert prediction.attention is not None and prediction.ood_score is not None


def test_with_a_locator_the_view_that_looks_more_like_training_wins(weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from valvereader.inference.locating import Located

    predictor = load_predictor(weights, device="cpu")
    radiograph = synthetic_radiograph((200, 160))
    monkeypatch.setattr(predictor, "locate", lambda r, prepare=None: Located(Box(60, 80, 100, 120), 0.9))
    whole_first = {"whole": True}

    def strangeness(outputs):  # the whole view is the second one identified
        whole_first["calls"] = whole_first.get("calls", 0) + 1
        return 0.0 if (whole_first["calls"] == 2) == whole_first["whole"] else 1.0

    monkeypatch.setattr(predictor, "_strangeness", strangeness)
    whole = predictor.predict(radiograph)
    assert whole.pipeline == "whole-image"
    # The whole image names the valve; the box shown stays the located one (where the valve is).
    assert whole.box == Box(60, 80, 100, 120) and whole.box_source == "located"
    whole_first.update(whole=False, calls=0)
    located = predictor.predict(radiograph)
    assert located.pipeline == "locate+identify"
    assert located.box == Box(60, 80, 100, 120)


def test_a_film_known_by_its_pixel_spacing_is_read_through_the_located_square_alone(
    weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A skull film (field of view >= the card's whole_radiograph_fov_mm) is never read whole
    when the valve was located; a crop (a few cm) or an image without spacing still is."""
    from valvereader.inference.locating import Located
    from valvereader.radiograph import PixelSpacing

    predictor = load_predictor(weights, device="cpu")
    assert predictor.whole_radiograph_fov_mm == 100.0  # the default: the tiny card has no view_choice
    found = Located(Box(60, 80, 100, 120), 0.9)
    square = Box(60, 80, 100, 120).square(predictor.crop_scale, minimum=32).clip((200, 160))
    film = PixelSpacing(0.7, 0.7, "ImagerPixelSpacing")  # 200 x 0.7 = 140 mm
    crop = PixelSpacing(0.3, 0.3, "PixelSpacing")  # 60 mm
    assert predictor.views((200, 160), found, film) == [square]
    assert predictor.views((200, 160), found, crop) == [square, None]
    assert predictor.views((200, 160), found, None) == [square, None]
    assert predictor.views((200, 160), Located(None, 0.0), film) == [None]  # nothing found: read it whole

    # Through predict: the whole view would win on strangeness, but a film never offers it.
    calls: list[int] = []

    def whole_looks_better(outputs):  # the whole view is the second one identified
        calls.append(1)
        return 0.0 if len(calls) == 2 else 1.0

    monkeypatch.setattr(predictor, "locate", lambda r, prepare=None: found)
    monkeypatch.setattr(predictor, "_strangeness", whole_looks_better)
    radiograph = synthetic_radiograph((200, 160))
    radiograph.meta.pixel_spacing = film
    assert predictor.predict(radiograph).pipeline == "locate+identify"
    assert len(calls) == 0  # one view: nothing to compare, so no view score is computed
    calls.clear()
    radiograph.meta.pixel_spacing = crop
    assert predictor.predict(radiograph).pipeline == "whole-image"


def test_the_located_margin_applies_only_to_an_open_set_score(weights: Path, tmp_path: Path) -> None:
    """The card's margin is in open-set score units: without a score (strangeness = 1 -
    confidence) a margin of 10 would always pick the located view, so it is not applied."""
    for item in weights.iterdir():
        (tmp_path / item.name).write_bytes(item.read_bytes())
    card = json.loads((tmp_path / "identifier.json").read_text())
    card["view_choice"] = {"whole_radiograph_fov_mm": 120.0, "located_margin": 10.0}
    card.pop("openset", None)
    (tmp_path / "identifier.json").write_text(json.dumps(card))
    plain = load_predictor(tmp_path, device="cpu")
    assert plain.located_margin == 0.0 and plain.whole_radiograph_fov_mm == 120.0
    card["openset"] = {"method": "energy", "temperature": 1.0}
    (tmp_path / "identifier.json").write_text(json.dumps(card))
    assert load_predictor(tmp_path, device="cpu").located_margin == 10.0


def test_views_are_compared_by_their_own_score_and_the_verdict_keeps_the_cards(weights: Path, tmp_path: Path) -> None:
    """A card whose view_choice names a score of its own (file role view_score): the views are
    compared by that score, while the verdict and the reported ood_score stay the card's."""
    from safetensors.numpy import load_file, save_file

    from valvereader.inference.open_set import OpenSetScorer
    from valvereader.model.card import sha256_of

    for item in weights.iterdir():
        (tmp_path / item.name).write_bytes(item.read_bytes())
    card = json.loads((tmp_path / "identifier.json").read_text())
    c = load_file(str(tmp_path / card["files"]["safetensors"]["path"]))["classifier.weight"].shape[1]
    rng = np.random.default_rng(3)
    for name, role in (("verdict.safetensors", "openset"), ("view.safetensors", "view_score")):
        a = rng.normal(size=(c, c))
        save_file({"class_means": rng.normal(0, 1, (8, c)).astype(np.float32),
                   "precision": (a @ a.T / c + np.eye(c)).astype(np.float32)}, str(tmp_path / name))
        card["files"][role] = {"path": name, "sha256": sha256_of(tmp_path / name)}
    card["openset"] = {"method": "mahalanobis", "normalise": "l2"}
    card["view_choice"] = {"whole_radiograph_fov_mm": 100.0, "located_margin": 0.0,
                           "score": {"method": "mahalanobis", "normalise": "none", "role": "view_score"}}
    (tmp_path / "identifier.json").write_text(json.dumps(card))
    predictor = load_predictor(tmp_path, device="cpu")
    # Built on first use only: a film (one view, located) never compares views.
    from valvereader.inference.locating import Located
    from valvereader.radiograph import PixelSpacing

    film = synthetic_radiograph((200, 160))
    film.meta.pixel_spacing = PixelSpacing(0.7, 0.7, "ImagerPixelSpacing")
    predictor.locate = lambda r, prepare=None: Located(Box(60, 80, 100, 120), 0.9)  # type: ignore[method-assign]
    predictor.predict(film, with_heatmap=False)
    assert predictor._own_view_scorer is None
    del predictor.locate
    # warm_up (the window's background start-up) builds it ahead of the first crop, once.
    warmed = load_predictor(tmp_path, device="cpu")
    warmed.warm_up()
    built = warmed._own_view_scorer
    assert built is not None and built.method == "mahalanobis"
    warmed.warm_up()
    assert warmed._own_view_scorer is built
    if warmed._default_streams() > 1:  # and the batch's one-thread sessions, made once
        twin = warmed._streams_twin
        assert twin is not None and twin is warmed._stream_predictor()
    verdict_scorer = OpenSetScorer(predictor.identifier_card)
    view_scorer = OpenSetScorer(predictor.identifier_card, card["view_choice"]["score"], "view_score")
    radiograph = synthetic_radiograph((200, 160))
    prepare = predictor.prepare(radiograph)
    regions = [Box(40, 50, 120, 130), None]
    batches = predictor._identifier.batches
    assert batches  # the tiny test model takes a batch: both paths below are exercised
    for separately in (False, True):  # one batched run, and one run per view (a backend that takes no batch)
        predictor._identifier.batches = batches and not separately
        viewed = predictor._identify_views(radiograph, regions, prepare)
        for _, (_, outputs) in viewed:
            logits = outputs["logits"].astype(np.float64)
            pooled = outputs["features"].mean(axis=(2, 3))
            assert predictor._strangeness(outputs) == pytest.approx(float(view_scorer(logits, pooled)[0]), rel=1e-9)
            assert predictor._open_set(outputs)[1] == pytest.approx(float(verdict_scorer(logits, pooled)[0]), rel=1e-9)
            assert predictor._strangeness(outputs) != pytest.approx(predictor._open_set(outputs)[1], rel=1e-3)
    predictor._identifier.batches = batches
    prediction = predictor.predict(radiograph, with_heatmap=False)
    assert prediction.ood_score is not None
    assert predictor._own_view_scorer is not None
    # A card whose view_score file was tampered with is refused like any other file.
    (tmp_path / "view.safetensors").write_bytes(b"x" * 64)
    with pytest.raises(WeightsIntegrityError):
        load_predictor(tmp_path, device="cpu")


def test_prepare_ahead_skips_the_whole_view_of_a_film(weights: Path) -> None:
    """predict_many's loader prepares only what predict will read: no whole view for a film."""
    from valvereader.radiograph import PixelSpacing

    predictor = load_predictor(weights, device="cpu")
    predictor._locator = object()  # as if a locator were installed (its input is not at issue here)
    radiograph = synthetic_radiograph((200, 160))
    assert len(predictor.prepare(radiograph).done) == 1  # no spacing: the whole view is read too
    radiograph.meta.pixel_spacing = PixelSpacing(0.7, 0.7, "ImagerPixelSpacing")
    assert len(predictor.prepare(radiograph).done) == 0


def _two_views(weights: Path, monkeypatch: pytest.MonkeyPatch, located: float, whole: float):
    """The tiny predictor with one located box, its views' strangeness set: the located view
    (compared first) ``located``, the whole image ``whole``."""
    from valvereader.inference.locating import Located

    predictor = load_predictor(weights, device="cpu")
    monkeypatch.setattr(predictor, "locate", lambda r, prepare=None: Located(Box(60, 80, 100, 120), 0.9))
    order = []

    def strangeness(outputs):
        order.append(1)
        return located if len(order) % 2 == 1 else whole

    monkeypatch.setattr(predictor, "_strangeness", strangeness)
    return predictor


def test_the_located_margin_lets_the_located_view_win_small_differences(weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    predictor = _two_views(weights, monkeypatch, located=5.0, whole=3.0)
    radiograph = synthetic_radiograph((200, 160))
    assert predictor.predict(radiograph).pipeline == "whole-image"  # no margin: 3 < 5
    predictor.located_margin = 4.0
    assert predictor.predict(radiograph).pipeline == "locate+identify"  # 5 - 4 < 3
    predictor.located_margin = 1.0
    assert predictor.predict(radiograph).pipeline == "whole-image"  # 5 - 1 > 3


def test_the_whole_image_wins_only_while_it_looks_like_a_valve_crop(weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the card's view_choice.whole_max_ood, a whole image whose open-set score is at or
    above it is no candidate view (a whole film without a pixel spacing), however much less
    strange it is than the located region; below it the views are compared as before."""
    predictor = _two_views(weights, monkeypatch, located=50.0, whole=3.0)
    monkeypatch.setattr(predictor, "_open_set", lambda outputs: (outputs["logits"].astype(np.float64), 140.0))  # every view's score
    radiograph = synthetic_radiograph((200, 160))
    assert predictor.predict(radiograph).pipeline == "whole-image"
    predictor.whole_max_ood = 140.5
    assert predictor.predict(radiograph).pipeline == "whole-image"
    predictor.whole_max_ood = 140.0  # at the bar: no candidate
    assert predictor.predict(radiograph).pipeline == "locate+identify"


@pytest.mark.parametrize("bad", [0, -5.0, "high", True])
def test_a_bad_whole_max_ood_is_a_card_error(weights: Path, tmp_path: Path, bad) -> None:
    for item in weights.iterdir():
        if item.is_file():
            (tmp_path / item.name).write_bytes(item.read_bytes())
    card = json.loads((tmp_path / "identifier.json").read_text())
    card.setdefault("view_choice", {})["whole_max_ood"] = bad
    (tmp_path / "identifier.json").write_text(json.dumps(card))
    with pytest.raises(ModelCardError, match="whole_max_ood"):
        load_predictor(tmp_path, device="cpu")


def test_torch_reference_runtime_gives_the_onnx_results_for_the_shipped_models() -> None:
    """The path a GPU takes (torch) and the CPU path (ONNX Runtime) agree, on the CPU here."""
    from valvereader.model.runtime import OnnxBackend, TorchBackend
    from valvereader.paths import weights_dir

    rng = np.random.default_rng(6)
    for name in ("identifier.json", "locator.json"):
        path = weights_dir() / name
        if not path.exists():
            continue
        card = ModelCard.load(path)
        batch = rng.uniform(0, 1, (2, 1, card.input_size, card.input_size)).astype(np.float32)
        onnx_out = OnnxBackend(card).run(batch)
        torch_out = TorchBackend(card, "cpu").run(batch)
        for key, value in onnx_out.items():
            assert np.abs(value - torch_out[key]).max() < 2e-3, f"{name}: {key} differs"


@pytest.mark.parametrize("bad", [0.5, "warm", None])
def test_the_locator_card_sets_its_reducing_gap(tmp_path: Path, bad) -> None:
    """preprocessing.reducing_gap in a card sets that model's resize (see
    docs/evaluation/locator_reducing_gap.md); a card without it keeps 2.0, and a bad value is a
    card error. On the shipped weights (the tiny test weights have no locator)."""
    from valvereader.paths import weights_dir

    shipped = weights_dir()
    if not (shipped / "locator.json").exists():
        pytest.skip("no shipped locator")
    for item in shipped.iterdir():
        if item.is_file():
            (tmp_path / item.name).symlink_to(item)
    (tmp_path / "locator.json").unlink()
    card = json.loads((shipped / "locator.json").read_text())
    card.setdefault("preprocessing", {})["reducing_gap"] = 1.0
    (tmp_path / "locator.json").write_text(json.dumps(card))
    predictor = load_predictor(tmp_path, device="cpu")
    assert predictor._locate.reducing_gap == 1.0 and predictor._identify.reducing_gap == 2.0
    assert predictor.predict(synthetic_radiograph((300, 260))).probabilities.shape == (len(VALVE_IDS),)
    card["preprocessing"]["reducing_gap"] = bad
    (tmp_path / "locator.json").write_text(json.dumps(card))
    with pytest.raises(ModelCardError, match="reducing_gap"):
        load_predictor(tmp_path, device="cpu")


def test_a_region_the_reader_chose_on_a_film_gets_the_films_bars(weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader's region that is a small part of its image (a box on a film) is capped by the
    film's bars without the locator's peak; a region covering most of its image is not."""
    predictor = load_predictor(weights, device="cpu")
    calls = []
    monkeypatch.setattr(predictor.verification.__class__, "film_bars",
                        lambda self, prediction, located=True: calls.append((prediction.film_region, located)))
    radiograph = synthetic_radiograph((400, 320))
    predictor.predict(radiograph, region=Box(100, 100, 140, 140))
    assert calls == [(True, False)]
    predictor.predict(radiograph, region=Box(5, 5, 315, 395))
    assert calls == [(True, False)]
