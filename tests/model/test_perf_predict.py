"""Speed: the fast prediction paths give the results of the plain ones.

Preparing ahead (in a loader thread) = preparing inside predict; the batch generator = one
predict per file, in order, errors passed on; the open-set score without BLAS = the matrix
product; the heatmap placed on the displayed grid = PIL's bilinear resize.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from tiny_model import synthetic_radiograph, write_tiny_weights

from valvereader.inference.predictor import load_predictor


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("weights")
    write_tiny_weights(folder, size=48)  # not 320: nothing may assume the shipped size
    return folder


def _shipped_or_skip() -> Path:
    from valvereader.paths import weights_dir

    folder = weights_dir()
    if not (folder / "identifier.json").exists() or not (folder / "locator.json").exists():
        pytest.skip("no shipped identifier + locator")
    return folder


def _same(a, b) -> None:
    assert np.array_equal(a.probabilities, b.probabilities)
    assert a.ood_score == b.ood_score and a.box == b.box and a.pipeline == b.pipeline
    assert a.verdict == b.verdict and a.attention_region == b.attention_region
    assert np.array_equal(a.attention, b.attention)
    assert (a.heatmap is None) == (b.heatmap is None)
    if a.heatmap is not None:
        assert np.array_equal(a.heatmap, b.heatmap)


def test_prepared_ahead_equals_prepared_inside(weights: Path) -> None:
    predictor = load_predictor(weights, device="cpu")
    radiograph = synthetic_radiograph((260, 200))
    prepared = predictor.prepare(radiograph)
    _same(predictor.predict(radiograph, prepared=prepared), predictor.predict(radiograph))
    # Preparation made for another image is not used by mistake.
    other = synthetic_radiograph((260, 200), seed=7)
    _same(predictor.predict(other, prepared=prepared), predictor.predict(other))


def test_prepared_ahead_with_the_shipped_locator() -> None:
    from valvereader.io import load
    from valvereader.paths import samples_dir

    predictor = load_predictor(_shipped_or_skip(), device="cpu")
    samples = sorted(samples_dir().glob("*.dcm"))[:2]
    if not samples:
        pytest.skip("no sample radiographs")
    for path in samples:
        radiograph = load(path)
        ahead = predictor.predict(radiograph, with_heatmap=True, heatmap_max_side=256,
                                  prepared=predictor.prepare(radiograph))
        _same(ahead, predictor.predict(radiograph, with_heatmap=True, heatmap_max_side=256))


@pytest.mark.parametrize("streams", [1, 2, 3])
def test_predict_many_equals_predict_one_by_one_and_passes_errors_on(weights: Path, streams: int) -> None:
    predictor = load_predictor(weights, device="cpu")
    images = {f"img{i}": synthetic_radiograph((150 + 10 * i, 120), seed=i) for i in range(5)}
    items = ["img0", "img1", "broken", "img2", "img3", "img4"]

    def load(name: str):
        if name == "broken":
            raise ValueError("cannot read broken")
        return images[name]

    results = list(predictor.predict_many(items, load=load, with_heatmap=True, ahead=2, streams=streams))
    assert [item for item, _, _ in results] == items
    for item, radiograph, result in results:
        if item == "broken":
            assert radiograph is None and isinstance(result, ValueError)
            continue
        assert radiograph is images[item]
        _same(result, predictor.predict(images[item], with_heatmap=True))


@pytest.mark.parametrize("streams", [1, 2])
def test_predict_many_can_stop_early(weights: Path, streams: int) -> None:
    predictor = load_predictor(weights, device="cpu")
    loaded: list[int] = []

    def load(i: int):
        loaded.append(i)
        return synthetic_radiograph(seed=i)

    generator = predictor.predict_many(range(1000), load=load, streams=streams, ahead=2)
    first = next(generator)
    generator.close()
    assert first[0] == 0
    assert len(loaded) <= streams + 3  # only the files in flight were read, not the thousand


def test_streams_run_on_one_thread_sessions_and_only_on_the_cpu_runtime(weights: Path) -> None:
    from valvereader.model.runtime import OnnxBackend, cpu_threads

    predictor = load_predictor(weights, device="cpu")
    assert predictor._default_streams() == min(2, cpu_threads())
    twin = predictor._stream_predictor()
    assert twin is predictor._stream_predictor()  # made once
    assert isinstance(twin._identifier, OnnxBackend) and twin._identifier is not predictor._identifier
    assert twin._identifier.session.get_session_options().intra_op_num_threads == 1
    assert predictor._identifier.session.get_session_options().intra_op_num_threads == cpu_threads()
    # Any other backend (torch on a GPU, or asked for) keeps one stream.
    other = load_predictor(weights, device="cpu")
    other._identifier = object()  # type: ignore[assignment]
    assert other._default_streams() == 1



def test_a_batch_on_cuda_runs_four_streams_on_the_same_models(weights: Path, monkeypatch) -> None:
    import valvereader.inference.streams as streams_module

    predictor = load_predictor(weights, device="cpu")
    monkeypatch.setattr(streams_module, "cpu_threads", lambda: 16)
    assert predictor._default_streams() == 2
    torch_on_cpu = type("TorchOnCpu", (), {"device": "cpu"})()
    monkeypatch.setattr(predictor, "_identifier", torch_on_cpu)
    assert predictor._default_streams() == 1  # torch on the CPU: its own threads use the cores
    monkeypatch.setattr(predictor, "_identifier", type("TorchOnCuda", (), {"device": "cuda"})())
    assert predictor._locator is None  # (these tiny weights have none; with one, it counts too)
    assert predictor._default_streams() == 4
    assert predictor._stream_predictor() is predictor  # no ONNX Runtime twin for a GPU
    monkeypatch.setattr(streams_module, "cpu_threads", lambda: 1)
    assert predictor._default_streams() == 1

def test_open_set_score_without_blas_equals_the_precision_formula() -> None:
    from valvereader.inference.open_set import OpenSetScorer
    from valvereader.model.card import ModelCard

    folder = _shipped_or_skip()
    card = ModelCard.load(folder / "identifier.json")
    scorer = OpenSetScorer(card)
    if scorer.method != "mahalanobis":
        pytest.skip("shipped identifier has no Mahalanobis score")
    rng = np.random.default_rng(8)
    pooled = rng.uniform(0, 2, (3, scorer.features)).astype(np.float32)
    z = pooled.astype(np.float64)
    if scorer.normalise == "l2":
        z = z / np.linalg.norm(z, axis=1, keepdims=True)
    # The reference: the precision matrix itself, in float64, no projection.
    from safetensors.numpy import load_file

    from valvereader.inference.open_set import precision_matrix

    arrays = load_file(str(card.file("openset")))
    precision, means = precision_matrix(arrays), arrays["class_means"].astype(np.float64)
    diffs = z[:, None, :] - means[None]
    expected = np.sqrt(np.einsum("nkc,cd,nkd->nk", diffs, precision, diffs)).min(axis=1)
    # The projection is kept in float32 (speed, memory), and of the triangular whitener only
    # its upper triangle (column blocks down to their last non-zero row): the same distances to ~1e-6.
    assert all(block.dtype == np.float32 for _, _, block in scorer._blocks)
    stored = sum(block.size for _, _, block in scorer._blocks)
    assert stored < 0.6 * scorer.features**2
    np.testing.assert_allclose(scorer(np.zeros((3, 8)), pooled), expected, rtol=2e-5)


def test_views_in_one_batch_equal_one_run_per_view(weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from valvereader.geometry import Box
    from valvereader.inference.locating import Located

    predictor = load_predictor(weights, device="cpu")
    assert predictor._identifier.batches
    radiograph = synthetic_radiograph((300, 240))
    monkeypatch.setattr(predictor, "locate", lambda r, prepare=None: Located(Box(60, 80, 130, 150), 0.9))
    batched = predictor.predict(radiograph)
    monkeypatch.setattr(predictor._identifier, "batches", False)
    single = predictor.predict(radiograph)
    np.testing.assert_allclose(batched.probabilities, single.probabilities, rtol=0, atol=1e-6)
    np.testing.assert_allclose(batched.attention, single.attention, rtol=0, atol=1e-5)
    assert batched.pipeline == single.pipeline and batched.box == single.box
    assert batched.ood_score == pytest.approx(single.ood_score, abs=1e-5) if single.ood_score is not None else True


def test_onnx_sessions_do_not_spin(weights: Path) -> None:
    """Spinning pools of the locator and identifier sessions fight for the cores."""
    predictor = load_predictor(weights, device="cpu")
    options = predictor._identifier.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def _write_dicom(path: Path, stored: np.ndarray, photometric: str) -> None:
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import (
        DigitalXRayImageStorageForPresentation,
        ExplicitVRLittleEndian,
        generate_uid,
    )

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DigitalXRayImageStorageForPresentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientName, ds.PatientID = "DX", "PERF", "PERF"
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    ds.PixelData = stored.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)


def _straightforward(monkeypatch: pytest.MonkeyPatch, predictor) -> None:
    """Switch every fast path off: pydicom's own decode, the per-level table, PIL on a copy of
    the region, one identifier run per view."""
    from PIL import Image

    from valvereader import preprocess
    from valvereader.io import dicom, display

    def pil_squish(pixels, size, reduced=None, reducing_gap=2.0):
        height, width = (size, size) if isinstance(size, int) else size
        image = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.float32), mode="F")
        return np.array(image.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=reducing_gap), dtype=np.float32)

    monkeypatch.setattr(dicom, "_native_grey_view", lambda *a: None)
    monkeypatch.setattr(display, "_line_if_exact", lambda *a: None)
    monkeypatch.setattr(preprocess, "_squish", pil_squish)
    monkeypatch.setattr(predictor._identifier, "batches", False)


def _close(fast, slow) -> None:
    np.testing.assert_allclose(fast.probabilities, slow.probabilities, rtol=0, atol=1e-4)
    assert fast.box == slow.box and fast.pipeline == slow.pipeline and fast.verdict == slow.verdict
    if slow.ood_score is not None:
        assert fast.ood_score == pytest.approx(slow.ood_score, rel=1e-4, abs=1e-4)
    np.testing.assert_allclose(fast.attention, slow.attention, rtol=0, atol=1e-4)
    np.testing.assert_allclose(fast.heatmap, slow.heatmap, rtol=0, atol=1e-4)


def test_fast_program_equals_the_straightforward_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole program on DICOM files (shipped locator + identifier when present, else the tiny
    identifier): every fast path together against all of them off."""
    from valvereader.io import load
    from valvereader.paths import samples_dir, weights_dir

    rng = np.random.default_rng(13)
    files = []
    for i, (shape, photometric) in enumerate([((1250, 1000), "MONOCHROME1"), ((700, 900), "MONOCHROME2")]):
        stored = rng.integers(300, 3800, shape)
        stored[:, : shape[1] // 30] = 0 if photometric == "MONOCHROME2" else 4095
        path = tmp_path / f"perf{i}.dcm"
        _write_dicom(path, stored, photometric)
        files.append(path)
    files += sorted(samples_dir().glob("*.dcm"))[:2]
    folder = weights_dir() if (weights_dir() / "locator.json").exists() else None
    if folder is None:
        folder = tmp_path / "w"
        write_tiny_weights(folder, size=48)
    predictor = load_predictor(folder, device="cpu")
    fast = [(load(f), predictor.predict(load(f), heatmap_max_side=512)) for f in files]
    _straightforward(monkeypatch, predictor)
    for path, (radiograph, prediction) in zip(files, fast):
        slow_radiograph = load(path)
        np.testing.assert_allclose(radiograph.pixels, slow_radiograph.pixels, rtol=0, atol=1e-6)
        _close(prediction, predictor.predict(slow_radiograph, heatmap_max_side=512))


def test_identifier_of_another_input_size_than_the_locator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped locator (320) with an identifier of 48: the shared preparation, the
    prepared-ahead path and the batched views give what the straightforward program gives."""
    import shutil

    from valvereader.io import load
    from valvereader.paths import samples_dir

    shipped = _shipped_or_skip()
    folder = tmp_path / "mixed"
    write_tiny_weights(folder, size=48)
    for item in shipped.glob("locator.*"):
        shutil.copy(item, folder / item.name)
    # The shipped locator's valve probe reads the shipped identifier's features (it is refused
    # with any other); the locator's network and candidates are what this test is about.
    import json

    card = json.loads((folder / "locator.json").read_text(encoding="utf-8"))
    card["files"].pop("valve_probe", None)
    for key in ("probe_weight", "probe_fitted_for"):
        card.get("verification", {}).pop(key, None)
    (folder / "locator.json").write_text(json.dumps(card), encoding="utf-8")
    predictor = load_predictor(folder, device="cpu")
    assert predictor._locate.size != predictor._identify.size
    paths = sorted(samples_dir().glob("*.dcm"))[:2]
    if not paths:
        pytest.skip("no sample radiographs")
    fast = []
    for path in paths:
        radiograph = load(path)
        ahead = predictor.predict(radiograph, prepared=predictor.prepare(radiograph))
        _same(ahead, predictor.predict(radiograph))
        fast.append(ahead)
    _straightforward(monkeypatch, predictor)
    for path, prediction in zip(paths, fast):
        _close(prediction, predictor.predict(load(path)))


def test_the_projection_keeps_only_the_triangle_and_gives_the_full_product() -> None:
    from valvereader.inference.open_set import _column_blocks, _whitener

    rng = np.random.default_rng(12)
    a = rng.normal(size=(700, 700))
    whitener = _whitener(a @ a.T + np.eye(700)).astype(np.float32)  # Cholesky: upper triangular
    blocks = _column_blocks(whitener, width=64)
    assert [(start, stop) for start, stop, _ in blocks] == [(s, min(700, s + 64)) for s in range(0, 700, 64)]
    assert all(block.shape[0] == stop for _, stop, block in blocks)  # rows down to the diagonal
    assert sum(block.size for _, _, block in blocks) < 0.55 * whitener.size
    z = rng.normal(size=(3, 700)).astype(np.float32)
    product = np.zeros((3, 700), np.float32)
    for start, stop, block in blocks:
        product[:, : block.shape[0]] += z[:, start:stop] @ block.T
    np.testing.assert_allclose(product, z.astype(np.float64) @ whitener.T.astype(np.float64), rtol=0, atol=1e-3)
    # A matrix without zeros (the eigen-decomposition fallback) keeps every row.
    dense = rng.normal(size=(100, 100)).astype(np.float32)
    assert sum(block.size for _, _, block in _column_blocks(dense, width=64)) == dense.size


def test_one_file_goes_through_one_stream_without_building_the_one_thread_sessions(weights: Path) -> None:
    predictor = load_predictor(weights, device="cpu")
    if predictor._default_streams() < 2:
        pytest.skip("one core: there is only one stream anyway")
    image = synthetic_radiograph((150, 120), seed=1)
    results = list(predictor.predict_many(iter(["one"]), load=lambda _: image))
    assert predictor._streams_twin is None  # no one-thread sessions for a single file
    _same(results[0][2], predictor.predict(image, with_heatmap=False))
    # two files (a generator: nothing is read twice or lost by looking ahead) take the streams
    names = (name for name in ["a", "b", "c"])
    results = list(predictor.predict_many(names, load=lambda _: image))
    assert [item for item, _, _ in results] == ["a", "b", "c"]
    assert predictor._streams_twin is not None
