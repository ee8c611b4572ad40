"""The card's ``inference.mirror``: every identifier view read as it is and mirrored, logits
averaged, features (open-set score, attention map) those of the view as it is."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from tiny_model import synthetic_radiograph, write_tiny_weights

from valvereader.inference.predictor import load_predictor


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    plain = tmp_path_factory.mktemp("plain")
    write_tiny_weights(plain)
    mirrored = tmp_path_factory.mktemp("mirrored")
    for item in plain.iterdir():
        (mirrored / item.name).write_bytes(item.read_bytes())
    card = json.loads((mirrored / "identifier.json").read_text())
    card["inference"] = {"mirror": True}
    (mirrored / "identifier.json").write_text(json.dumps(card))
    return plain, mirrored


def _lopsided(shape: tuple[int, int] = (96, 96)) -> np.ndarray:
    """A view whose mirror image differs (a bright bar near the left edge, a ramp)."""
    rng = np.random.default_rng(3)
    view = np.tile(np.linspace(0.1, 0.6, shape[1], dtype=np.float32), (shape[0], 1))
    view[20:70, 8:20] = 0.95
    return np.clip(view + rng.normal(0, 0.02, shape).astype(np.float32), 0, 1)[None, None]


def test_mirror_is_off_unless_the_card_says_so(folders: tuple[Path, Path]) -> None:
    plain, mirrored = folders
    plain_predictor, mirrored_predictor = load_predictor(plain, device="cpu"), load_predictor(mirrored, device="cpu")
    assert plain_predictor.mirror is False and mirrored_predictor.mirror is True
    # The name on screen, in the worklist and on exports (and the result cache's key) says so.
    assert mirrored_predictor.model_name == plain_predictor.model_name.replace(")", ", with mirror)")


@pytest.mark.parametrize("batched", [True, False])
def test_logits_are_the_mean_of_the_view_and_its_mirror_features_the_views_own(folders: tuple[Path, Path], batched: bool) -> None:
    plain, mirrored = folders
    reference = load_predictor(plain, device="cpu")._identifier
    predictor = load_predictor(mirrored, device="cpu")
    predictor._identifier.batches = batched  # one run of both, or a run each (a backend without batches)
    size = predictor._identify.size
    batch = np.concatenate([_lopsided((size, size)), _lopsided((size, size))[..., ::-1]])
    out = predictor._run_identifier(batch)
    as_is = reference.run(batch)
    flipped = reference.run(np.ascontiguousarray(batch[..., ::-1]))
    assert not np.allclose(as_is["logits"], flipped["logits"], atol=1e-4)  # the test could tell them apart
    np.testing.assert_allclose(out["logits"], (as_is["logits"] + flipped["logits"]) / 2, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["features"], as_is["features"], rtol=1e-5, atol=1e-5)
    # Kept for the attention map: the mirrored readings' feature maps.
    np.testing.assert_allclose(out["mirror_features"], flipped["features"], rtol=1e-5, atol=1e-5)
    assert out["logits"].shape == as_is["logits"].shape and out["features"].shape == as_is["features"].shape


def test_a_mirrored_reading_gives_the_same_logits_for_an_image_and_its_mirror_image(folders: tuple[Path, Path]) -> None:
    """Averaging a view with its mirror image makes the identifier blind to the side the valve
    was X-rayed from (without it, the tiny network reads the two differently)."""
    plain, mirrored = folders
    radiograph = synthetic_radiograph((140, 140))
    flipped = type(radiograph)(np.ascontiguousarray(radiograph.pixels[:, ::-1]), radiograph.meta)
    with_mirror = load_predictor(mirrored, device="cpu")
    a, b = (with_mirror.identify(image)[1]["logits"] for image in (radiograph, flipped))
    without = load_predictor(plain, device="cpu")
    c, d = (without.identify(image)[1]["logits"] for image in (radiograph, flipped))
    difference = float(np.abs(c - d).max())
    assert difference > 1e-5  # the tiny network alone is not mirror-blind
    assert float(np.abs(a - b).max()) < difference / 100


def test_batch_streams_read_mirrored_too(folders: tuple[Path, Path]) -> None:
    """predict_many's one-thread twin keeps the mirror: a batch gives what predict gives."""
    _, mirrored = folders
    predictor = load_predictor(mirrored, device="cpu")
    images = [synthetic_radiograph((120 + 8 * i, 110)) for i in range(3)]
    alone = [predictor.predict(image, with_heatmap=False).probabilities for image in images]
    batch = [result for _, _, result in predictor.predict_many(images, load=lambda r: r, streams=2)]
    for one, other in zip(alone, batch):
        np.testing.assert_allclose(one, other.probabilities, rtol=1e-4, atol=1e-5)


def test_the_attention_map_of_a_mirror_image_is_the_mirror_image_of_the_map(folders: tuple[Path, Path]) -> None:
    """The map explains the averaged logits, so it reads both readings: an image and its mirror
    image get mirror-image maps (the map of the reading as it is alone would not)."""
    from valvereader.inference.locating import Located

    plain, mirrored = folders
    radiograph = synthetic_radiograph((140, 140))
    flipped = type(radiograph)(np.ascontiguousarray(radiograph.pixels[:, ::-1]), radiograph.meta)

    def attention(predictor, image) -> np.ndarray:
        prepared, outputs = predictor.identify(image)
        return predictor._finish(image.shape, prepared, outputs, Located(None, 0.0), with_heatmap=False).attention

    with_mirror = load_predictor(mirrored, device="cpu")
    a, b = attention(with_mirror, radiograph), attention(with_mirror, flipped)
    np.testing.assert_allclose(b, a[:, ::-1], atol=1e-5)
    without = load_predictor(plain, device="cpu")
    c, d = attention(without, radiograph), attention(without, flipped)
    assert float(np.abs(d - c[:, ::-1]).max()) > 1e-3
