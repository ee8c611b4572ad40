"""The locator card's polarity check: its features, its card checks, and the predictor reading a
negative image file inverted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from locator_weights import with_readout, write_card
from PIL import Image
from safetensors.numpy import save_file

from valvereader.errors import ModelCardError
from valvereader.inference.polarity import FEATURES, PolarityCheck, polarity_features
from valvereader.model.card import sha256_of

WEIGHTS = Path(__file__).resolve().parents[2] / "weights"
N = polarity_features(np.zeros((20, 20), np.float32)).shape[0]


def _film(seed: int = 0) -> np.ndarray:
    """A film-like image: dark air around a bright oval skull with thin brighter edges."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:240, 0:200]
    r = ((x - 90) / 70.0) ** 2 + ((y - 120) / 95.0) ** 2
    image = np.where(r < 1.0, 0.55 + 0.1 * np.sin(x / 7.0), 0.08) + np.where(np.abs(r - 1.0) < 0.06, 0.3, 0.0)
    return np.clip(image + rng.normal(0, 0.02, image.shape), 0, 1).astype(np.float32)


def test_the_rank_statistics_ignore_a_tone_curve_and_turn_round_when_inverted() -> None:
    film = _film()
    plain, curved, inverted = (polarity_features(x, "rank-tophat-1") for x in (film, film**2.2, 1.0 - film))
    ranks = slice(0, 11)  # the rank grid, ring, centre and their difference
    assert np.allclose(plain[ranks], curved[ranks], atol=0.02)
    assert np.allclose(plain[8:10], 1.0 - inverted[8:10], atol=0.02)  # ring and centre ranks
    assert plain[9] > plain[8] and inverted[9] < inverted[8]  # the bright skull sits in the centre
    thin = slice(14, 17)  # thin structures: brighter than around them, or darker once inverted
    assert np.all(plain[thin] > 0) and np.all(inverted[thin] < 0)


def test_the_newer_features_are_taken_inside_the_films_field() -> None:
    """A plain white or black margin round the film (an unexposed or a masked collimator field)
    leaves the newer feature set nearly as it is; the older one moves with it."""
    film = _film(5)
    for value in (1.0, 0.0):
        framed = np.pad(film, 60, constant_values=value)
        newer = np.abs(polarity_features(framed, "rank-tophat-2")[:11] - polarity_features(film, "rank-tophat-2")[:11]).max()
        older = np.abs(polarity_features(framed, "rank-tophat-1")[:11] - polarity_features(film, "rank-tophat-1")[:11]).max()
        assert newer < 0.12 and older > 0.2  # (the film's edge blends with the margin where it is reduced)
    with pytest.raises(ValueError, match="unknown polarity features"):
        polarity_features(film, "histogram-0")


def test_the_check_is_a_standardised_logistic_read_out_with_a_threshold() -> None:
    rng = np.random.default_rng(1)
    mean, scale, weight = rng.normal(size=N), rng.uniform(0.5, 2.0, size=N), rng.normal(size=N)
    check = PolarityCheck(mean, scale, weight, 0.3, 0.9)
    film = _film(2)
    z = (polarity_features(film) - mean.astype(np.float32)) / scale.astype(np.float32)
    assert check.probability(film) == pytest.approx(1 / (1 + np.exp(-(z @ weight.astype(np.float32) + 0.3))), rel=1e-4)
    with pytest.raises(ValueError, match="threshold"):
        PolarityCheck(mean, scale, weight, 0.0, 1.0)
    with pytest.raises(ValueError, match="differ in length"):
        PolarityCheck(mean[:3], scale, weight, 0.0, 0.9)
    with pytest.raises(ModelCardError, match="features expected"):
        PolarityCheck(mean[:3], scale[:3], weight[:3], 0.0, 0.9).probability(film)


def _weights(tmp_path: Path, check: dict | None, section: dict | None) -> Path:
    folder, card = with_readout(tmp_path, "polarity", check)
    card.pop("polarity", None)
    if section is not None:
        card["polarity"] = section
    return write_card(folder, card)


def _always(bias: float) -> dict:
    """A check that calls every image a negative (bias > 0) or none (bias < 0)."""
    return {"mean": np.zeros(N, np.float32), "scale": np.ones(N, np.float32), "weight": np.zeros(N, np.float32),
            "bias": np.asarray([bias], np.float32)}


def _shipped_or_skip() -> None:
    if not (WEIGHTS / "identifier.json").is_file() or not (WEIGHTS / "locator.json").is_file():
        pytest.skip("no shipped weights")


def test_a_card_with_a_broken_check_is_refused(tmp_path: Path) -> None:
    from valvereader.inference.predictor import load_predictor

    _shipped_or_skip()
    with pytest.raises(ModelCardError, match="without a polarity file"):
        load_predictor(_weights(tmp_path / "a", None, {"features": FEATURES, "threshold": 0.9}), device="cpu")
    with pytest.raises(ModelCardError, match="not this program's"):
        load_predictor(_weights(tmp_path / "b", _always(1.0), {"features": "histogram-0", "threshold": 0.9}), device="cpu")
    with pytest.raises(ModelCardError, match="'mean'"):
        load_predictor(_weights(tmp_path / "c", {"bias": np.zeros(1, np.float32)}, {"features": FEATURES}), device="cpu")
    with pytest.raises(ModelCardError, match="threshold"):
        load_predictor(_weights(tmp_path / "d", _always(1.0), {"features": FEATURES, "threshold": 1.5}), device="cpu")


def _png_film(tmp_path: Path, inverted: bool) -> Path:
    """A bundled sample film (a synthetic skull) saved as a PNG, as it is or as a negative."""
    from valvereader.io import load
    from valvereader.paths import samples_dir

    films = sorted(samples_dir().glob("composite_*.dcm"))
    if not films:
        pytest.skip("no sample radiographs")
    grey = np.round(load(films[0]).pixels * 255).astype(np.uint8)
    path = tmp_path / ("negative.png" if inverted else "film.png")
    Image.fromarray(255 - grey if inverted else grey).save(path)
    return path


def test_a_negative_image_file_is_read_inverted_and_says_so(tmp_path: Path) -> None:
    """A check that calls every image a negative reads a negative PNG exactly as a check that
    calls none reads the same film as it is; the result says it read the file inverted."""
    from valvereader.inference.classify import prediction_row
    from valvereader.inference.predictor import load_predictor
    from valvereader.io import load
    from valvereader.prediction import INVERTED_NOTE, verdict_meaning

    _shipped_or_skip()
    section = {"features": FEATURES, "threshold": 0.9}
    turning = load_predictor(_weights(tmp_path / "on", _always(1000.0), section), device="cpu")
    leaving = load_predictor(_weights(tmp_path / "off", _always(-1000.0), section), device="cpu")
    negative = turning.predict(load(_png_film(tmp_path, inverted=True)), with_heatmap=False)
    plain = leaving.predict(load(_png_film(tmp_path, inverted=False)), with_heatmap=False)
    assert negative.inverted and not plain.inverted
    assert negative.box == plain.box and negative.verdict is plain.verdict
    assert np.allclose(negative.probabilities, plain.probabilities, atol=1e-4)
    assert INVERTED_NOTE in verdict_meaning(negative) and INVERTED_NOTE not in verdict_meaning(plain)
    assert prediction_row(Path("n.png"), negative)["inverted"] == "yes" and prediction_row(Path("f.png"), plain)["inverted"] == ""
    # read as it is, the negative file gives another reading
    as_it_is = leaving.predict(load(_png_film(tmp_path, inverted=True)), with_heatmap=False)
    assert not as_it_is.inverted and not np.allclose(as_it_is.probabilities, plain.probabilities, atol=1e-4)


def test_a_dicom_file_keeps_its_own_photometric_interpretation(tmp_path: Path) -> None:
    from valvereader.inference.predictor import load_predictor
    from valvereader.io import load
    from valvereader.paths import samples_dir

    _shipped_or_skip()
    films = sorted(samples_dir().glob("composite_*.dcm"))
    if not films:
        pytest.skip("no sample radiographs")
    turning = load_predictor(_weights(tmp_path, _always(1000.0), {"features": FEATURES, "threshold": 0.9}), device="cpu")
    assert not turning.polarity.is_negative(load(films[0]))
    assert not turning.predict(load(films[0]), with_heatmap=False).inverted


def test_the_reader_region_on_a_negative_is_read_inverted_too(tmp_path: Path) -> None:
    from valvereader.geometry import Box
    from valvereader.inference.predictor import load_predictor
    from valvereader.io import load

    _shipped_or_skip()
    turning = load_predictor(_weights(tmp_path, _always(1000.0), {"features": FEATURES, "threshold": 0.9}), device="cpu")
    prediction = turning.predict(load(_png_film(tmp_path, inverted=True)), with_heatmap=False, region=Box(100, 100, 300, 300))
    assert prediction.inverted and prediction.box_source == "reader"


def test_the_shipped_check_turns_a_negative_sample_film_and_leaves_the_film_as_it_is(tmp_path: Path) -> None:
    from valvereader.inference.predictor import load_predictor
    from valvereader.io import load

    _shipped_or_skip()
    predictor = load_predictor(WEIGHTS, device="cpu")
    if predictor.polarity is None:
        pytest.skip("the shipped locator has no polarity check")
    assert predictor.polarity.is_negative(load(_png_film(tmp_path, inverted=True)))
    assert not predictor.polarity.is_negative(load(_png_film(tmp_path, inverted=False)))
    # in a wide white field (an unexposed collimator field) or a black one, as it is and inverted
    film = load(_png_film(tmp_path, inverted=False)).pixels
    pad = int(0.15 * max(film.shape))
    for value in (1.0, 0.0):
        assert predictor.polarity.probability(np.pad(film, pad, constant_values=value)) < predictor.polarity.threshold
        assert predictor.polarity.probability(np.pad(1.0 - film, pad, constant_values=value)) >= predictor.polarity.threshold


def test_a_fitted_check_separates_and_is_named_in_the_card(tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    from valvereader.training.polarity import attach_check, fit_check

    rng = np.random.default_rng(3)
    labels = np.tile([0, 1], 60)
    features = rng.normal(size=(120, N)).astype(np.float32)
    features[labels == 1, 9] -= 3.0  # the centre's rank tells negatives apart
    groups = np.repeat(np.arange(12), 10)
    tensors, report = fit_check(features, labels, groups, strengths=(0.1, 1.0), folds=4)
    check = PolarityCheck(tensors["mean"], tensors["scale"], tensors["weight"], float(tensors["bias"][0]), 0.9)
    logits = ((features - check.mean) / check.scale) @ check.weight + check.bias
    assert (logits[labels == 1] > 0).mean() > 0.95 and (logits[labels == 0] < 0).mean() > 0.95
    assert report["C"] in (0.1, 1.0) and report["images"] == 120
    with pytest.raises(ValueError, match="inverted images"):
        fit_check(features, np.zeros(120, int), groups)
    save_file(tensors, str(tmp_path / "check.safetensors"))
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "locator.json").write_text(json.dumps({"files": {}}), encoding="utf-8")
    card = json.loads(attach_check(folder, tmp_path / "check.safetensors", 0.95).read_text(encoding="utf-8"))
    assert card["polarity"] == {"features": FEATURES, "threshold": 0.95}
    assert card["files"]["polarity"] == {"path": "locator.polarity.safetensors", "sha256": sha256_of(folder / "locator.polarity.safetensors")}
    assert set(load_file(str(folder / "locator.polarity.safetensors"))) == {"mean", "scale", "weight", "bias"}


def test_the_recipe_step_fits_the_check_on_training_films_and_crops_and_names_it(crops_dir: Path, tmp_path: Path) -> None:
    from valvereader.training.locator_real_recipe import _polarity

    backgrounds = crops_dir.parent / "skull-radiographs"
    if not (backgrounds / "manifest.csv").is_file():
        pytest.skip("skull-radiographs not present")
    split = Path(__file__).resolve().parents[2] / "docs" / "evaluation" / "identifier" / "split.json"
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "locator.json").write_text(json.dumps({"files": {}}), encoding="utf-8")
    record: dict = {"outputs": {}}
    _polarity({"seed": 5, "per_background": 1, "threshold": 0.8}, backgrounds, crops_dir, split, folder, tmp_path, record,
              {"backgrounds": 2})
    report = record["outputs"]["polarity"]
    assert (report["images"], report["inverted"]) == (2 * 2 + 2, 2)  # a film with a valve and one without per background, 2 crops
    card = json.loads((folder / "locator.json").read_text(encoding="utf-8"))
    assert card["polarity"] == {"features": "rank-tophat-1", "threshold": 0.8}  # a recipe that names none: the first set
    assert (tmp_path / "verification" / "polarity.safetensors").is_file()


def test_the_report_says_a_negative_was_read_inverted() -> None:
    from valvereader.catalogue import VALVE_IDS
    from valvereader.prediction import INVERTED_NOTE, Verdict, verdict_meaning
    from valvereader.radiograph import RadiographMeta
    from valvereader.report.content import ReportContent

    probabilities = np.full(len(VALVE_IDS), 1 / len(VALVE_IDS), np.float32)
    for inverted in (True, False):
        from valvereader.prediction import Prediction

        prediction = Prediction(tuple(VALVE_IDS), probabilities, Verdict.REVIEW, inverted=inverted, film_region=True)
        content = ReportContent(view_rgb=np.zeros((8, 8, 3), np.uint8), prediction=prediction, meta=RadiographMeta(file_format="PNG"))
        assert dict(content.acquisition_lines())["Format"] == ("PNG, a negative: read inverted" if inverted else "PNG")
        assert (INVERTED_NOTE in verdict_meaning(prediction)) is inverted


def test_the_check_runs_without_opencv() -> None:
    """The program's install has no OpenCV: the check loads and reads an image without it."""
    import subprocess
    import sys

    _shipped_or_skip()
    code = ("import sys; sys.modules['cv2'] = None\n"
            "import numpy as np\n"
            "from valvereader.inference.predictor import load_predictor\n"
            "check = load_predictor(None, device='cpu').polarity\n"
            "assert check is not None\n"
            "print(round(check.probability(np.linspace(0, 1, 240 * 200, dtype=np.float32).reshape(240, 200)), 6))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 0.0 <= float(out.stdout.strip()) <= 1.0


def test_the_numpy_filters_are_opencvs() -> None:
    """The resize, the elliptic erosion and dilation and the Sobel derivatives the statistics
    are made of, against OpenCV's, with which the shipped checks were fitted."""
    cv2 = pytest.importorskip("cv2")
    from valvereader.inference.polarity import KERNEL_ROWS, _morph, _sobel, area_resize

    image = np.random.default_rng(7).random((333, 271)).astype(np.float32)
    for width, height in ((160, 197), (4, 4), (400, 500)):  # down, far down, up
        assert np.abs(area_resize(image, width, height) - cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)).max() < 1e-5
    small = image[:120, :100]
    for k in KERNEL_ROWS:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        assert [int(row.sum()) for row in kernel] == list(KERNEL_ROWS[k])
        assert np.array_equal(_morph(small, k, np.minimum), cv2.erode(small, kernel))
        assert np.array_equal(_morph(small, k, np.maximum), cv2.dilate(small, kernel))
    gx, gy = _sobel(small)
    assert np.abs(gx - cv2.Sobel(small, cv2.CV_32F, 1, 0)).max() < 1e-5 and np.abs(gy - cv2.Sobel(small, cv2.CV_32F, 0, 1)).max() < 1e-5
