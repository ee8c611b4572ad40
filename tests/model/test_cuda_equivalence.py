"""CUDA against CPU: the shipped identifier and locator give the same classes and near-equal outputs.

The CUDA tests skip without a CUDA device or without the shipped weights in ``weights/``; the
CPU tests check the comparison code of ``benchmarks/gpu.py`` (which the CUDA tests and the GPU
benchmark use) where there is no GPU.

Inputs are the sample radiographs when pydicom and its JPEG 2000 decoder are installed, otherwise
fixed-seed synthetic images; set VALVEREADER_GPU_INPUTS to a file written by
``benchmarks/gpu.py --save-inputs`` to use saved ones (e.g. the samples, on a GPU machine without
pydicom).

Bounds. fp32 (TF32 off) on CUDA differs from the CPU only by summation order: top-1 identical and
max |Δp| < 1e-3. bfloat16 keeps 8 bits of mantissa: on the CPU, bf16 autocast against fp32 on the
16 sample inputs gave max |Δp| 0.032 where the top-1 − top-2 gap exceeds 0.1 but 0.085 on an
input with a gap of 0.02, and max |Δ sigmoid heatmap| 0.095. So for bf16: top-1 identical and
max |Δp| < 0.05 on the inputs with a gap > 0.1, max |Δp| < 0.15 on all, max |Δheat| < 0.15.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / "weights"
SCRIPT = ROOT / "benchmarks" / "gpu.py"
N_INPUTS = 16

needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device: CPU/CUDA equivalence not checked"
)


def _load_script():
    name = "valvereader_gpu_benchmark"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    return _load_script()


@pytest.fixture(scope="module")
def models(bench):
    for name in ("identifier", "locator"):
        if (
            not (WEIGHTS / f"{name}.json").exists()
            or not (WEIGHTS / f"{name}.safetensors").exists()
        ):
            pytest.skip(f"shipped weights absent: {WEIGHTS / name}.json/.safetensors")
    pytest.importorskip("efficientnet_lite_pytorch")
    return bench.load_models(WEIGHTS)


@pytest.fixture(scope="module")
def inputs(bench, models):
    saved = os.environ.get("VALVEREADER_GPU_INPUTS")
    inputs_file = Path(saved) if saved and Path(saved).exists() else None
    made = bench.make_inputs(
        N_INPUTS, models.identifier_size, models.locator_size, "auto", inputs_file
    )
    assert made.identifier.shape[0] == N_INPUTS and made.locator is not None
    return made


@pytest.fixture(scope="module")
def cpu_reference(bench, models, inputs):
    return bench.run_outputs(bench.Placed(models, torch.device("cpu"), "fp32"), inputs)


def _explain(result: dict, inputs) -> str:
    return f"inputs: {inputs.source} ({inputs.note}); " + json.dumps(result)


# --- on CUDA -------------------------------------------------------------------------------
@needs_cuda
def test_cuda_fp32_gives_the_cpu_classes_and_probabilities(
    bench, models, inputs, cpu_reference
) -> None:
    result = bench.equivalence(models, inputs, "cuda", modes=("fp32",), reference=cpu_reference)[
        "fp32"
    ]
    why = _explain(result, inputs)
    assert result["n"] == N_INPUTS
    # Identical top-1 and peaks, except where the CPU's own top-1/top-2 gap (or peak/runner-up
    # gap) is under 1e-3: an exact tie that any rounding may swap.
    assert result["top1_mismatches_beyond_ties"] == 0, why
    assert result["max_abs_prob_diff"] < 1e-3, why
    assert result["peak_mismatches_beyond_ties"] == 0, why
    assert result["max_abs_heat_diff"] < 1e-3, why


@needs_cuda
def test_cuda_bf16_autocast_keeps_confident_classes(bench, models, inputs, cpu_reference) -> None:
    if not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bfloat16")
    result = bench.equivalence(models, inputs, "cuda", modes=("bf16",), reference=cpu_reference)[
        "bf16"
    ]
    why = _explain(result, inputs)
    assert result["top1_mismatches_confident"] == 0, why
    if result["confident_n"]:
        assert result["max_abs_prob_diff_confident"] < 0.05, why
    assert result["max_abs_prob_diff"] < 0.15, why
    assert result["max_abs_heat_diff"] < 0.15, why


@needs_cuda
def test_app_torch_backend_on_cuda_matches_cpu(models, inputs) -> None:
    """The app's own runtime (CUDA graphs, TF32 off in cuDNN convolutions since 2026-11-27:
    before, torch's default TF32 moved a located box by a pixel)."""
    pytest.importorskip("yaml")
    import numpy as np

    from valvereader.model.card import ModelCard
    from valvereader.model.runtime import TorchBackend

    card = ModelCard.load(WEIGHTS / "identifier.json")
    batch = inputs.identifier.numpy()
    cpu = torch.from_numpy(TorchBackend(card, "cpu").run(batch)["logits"]).double().softmax(-1)
    gpu = torch.from_numpy(TorchBackend(card, "cuda").run(batch)["logits"]).double().softmax(-1)
    top = cpu.topk(2, dim=1).values
    confident = (top[:, 0] - top[:, 1]) > 0.1
    assert np.array_equal(cpu.argmax(1)[confident].numpy(), gpu.argmax(1)[confident].numpy())
    assert float((cpu - gpu).abs().max()) < 0.05


# --- the comparison code, on the CPU -------------------------------------------------------
def test_compare_counts_mismatches_ties_and_confident_inputs(bench) -> None:
    ref = {
        "probs": torch.tensor([[0.9, 0.1, 0.0], [0.51, 0.49, 0.0], [0.2, 0.7, 0.1]]),
        "heat": torch.tensor([[0.1, 0.9, 0.2], [0.5, 0.5001, 0.1], [0.3, 0.2, 0.1]]),
    }
    same = bench.compare(ref, {k: v.clone() for k, v in ref.items()})
    assert (
        same["top1_identical"]
        and same["max_abs_prob_diff"] == 0
        and same["peaks_identical"]
        and same["max_abs_heat_diff"] == 0
    )
    assert same["confident_n"] == 2  # the 0.51/0.49 input is not confident

    other = {
        "probs": torch.tensor([[0.9, 0.1, 0.0], [0.48, 0.52, 0.0], [0.7, 0.2, 0.1]]),
        "heat": torch.tensor([[0.1, 0.9, 0.2], [0.5001, 0.5, 0.1], [0.1, 0.2, 0.3]]),
    }
    result = bench.compare(ref, other, tie=0.05)
    assert not result["top1_identical"] and result["top1_mismatches"] == 2
    assert result["top1_mismatches_beyond_ties"] == 1  # input 2 (gap 0.02) is a tie, input 3 is not
    assert result["top1_mismatches_confident"] == 1
    assert result["max_abs_prob_diff"] == pytest.approx(0.5)
    assert result["max_abs_prob_diff_confident"] == pytest.approx(0.5)
    assert result["peak_mismatches"] == 2 and result["peak_mismatches_beyond_ties"] == 1
    assert result["max_abs_heat_diff"] == pytest.approx(0.2)


def test_cpu_against_cpu_reports_identical_outputs(bench, models) -> None:
    small = bench.Inputs(
        bench.synthetic_inputs(4, 96, seed=0), bench.synthetic_inputs(4, 96, seed=1), "synthetic"
    )
    result = bench.equivalence(models, small, "cpu", modes=("fp32",))["fp32"]
    assert result["n"] == 4
    assert result["top1_identical"] and result["top1_mismatches"] == 0
    assert result["max_abs_prob_diff"] == 0.0
    assert result["peaks_identical"] and result["max_abs_heat_diff"] == 0.0


def test_bf16_channels_last_path_runs_on_the_cpu(bench, models) -> None:
    """The bf16 branch (autocast + channels_last) is the one only CUDA runs in the benchmark."""
    small = bench.Inputs(
        bench.synthetic_inputs(2, 64, seed=0), bench.synthetic_inputs(2, 64, seed=1), "synthetic"
    )
    result = bench.equivalence(models, small, "cpu", modes=("bf16",))["bf16"]
    assert result["n"] == 2
    assert 0.0 <= result["max_abs_prob_diff"] < 0.5 and 0.0 <= result["max_abs_heat_diff"] < 0.5


def test_safetensors_fallback_reader_matches_the_library(
    bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("safetensors")
    for name in ("identifier", "locator"):
        path = WEIGHTS / f"{name}.safetensors"
        if not path.exists():
            pytest.skip(f"shipped weights absent: {path}")
        with_library = bench.read_state_dict(path)
        with monkeypatch.context() as patch:
            patch.setitem(sys.modules, "safetensors.torch", None)  # import fails → own reader
            own = bench.read_state_dict(path)
        assert with_library.keys() == own.keys()
        for key, tensor in with_library.items():
            assert own[key].dtype == tensor.dtype and torch.equal(own[key], tensor), key


def test_timings_in_every_mode_on_the_cpu(bench, models) -> None:
    """The timing code, including the tf32 and bf16 modes that only CUDA gets from the script."""
    small = bench.Inputs(
        bench.synthetic_inputs(2, 64, seed=0), bench.synthetic_inputs(2, 64, seed=1), "synthetic"
    )
    # A ceiling, not a duration: 20 s was passed on a slower 2-core machine in the full suite
    # (the bf16 mode's first CPU run), and the modes after it were skipped.
    budget = bench.Budget(120.0, bench.time.perf_counter())
    timings = bench.benchmark(
        models, small, torch.device("cpu"), bench.MODES, (2,), budget, runs=3, throughput_runs=2
    )
    assert not budget.skipped
    for mode in bench.MODES:
        assert (
            1 <= timings["latency_ms"][mode]["runs"] <= 3
            and timings["latency_ms"][mode]["median_ms"] > 0
        )
        assert timings["throughput"][f"{mode}.b2"]["images_per_s"] > 0
    assert timings["latency_end_to_end_ms"]["fp32"]["median_ms"] > 0
    assert timings["host_to_device"] is None  # CUDA only


@pytest.mark.slow
def test_benchmark_script_writes_its_report_on_the_cpu(
    bench, models, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, saved = tmp_path / "gpu.json", tmp_path / "inputs.pt"
    argv = [
        "--weights",
        str(WEIGHTS),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--seconds-budget",
        "3",
        "--n-inputs",
        "2",
        "--batches",
        "2",
        "--runs",
        "3",
        "--throughput-runs",
        "2",
        "--inputs",
        "synthetic",
        "--save-inputs",
        str(saved),
    ]
    assert bench.main(argv) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["device"] == "cpu" and report["modes"] == ["fp32"]
    assert report["inputs"]["source"] == "synthetic" and report["inputs"]["n"] == 2
    assert (
        report["equivalence"]["fp32"]["top1_identical"]
        and report["equivalence"]["fp32"]["max_abs_prob_diff"] == 0.0
    )
    assert report["machine"]["torch"] == torch.__version__ and report["machine"]["description"]
    latency = report["timings"]["latency_ms"].get("fp32")
    assert latency is None or latency["median_ms"] > 0
    assert "| latency, locator + identifier, batch 1" in capsys.readouterr().out
    again = bench.make_inputs(2, models.identifier_size, models.locator_size, inputs_file=saved)
    assert again.source == "file" and again.identifier.shape == (
        2,
        1,
        models.identifier_size,
        models.identifier_size,
    )


@needs_cuda
@pytest.mark.parametrize("name", ["identifier", "locator"])
def test_cuda_graph_replays_give_what_the_model_computes(models, inputs, name: str) -> None:
    """The app's TorchBackend records a CUDA graph per input shape and replays it: the replay
    gives the eager run's outputs, for new inputs in the same buffers too, and near the CPU's."""
    import numpy as np

    from valvereader.model.card import ModelCard
    from valvereader.model.runtime import TorchBackend

    card = ModelCard.load(WEIGHTS / f"{name}.json")
    batch = (inputs.identifier if name == "identifier" else inputs.locator)[:2].float().numpy()
    other = np.ascontiguousarray(batch[::-1])
    graphed = TorchBackend(card, "cuda", graphs=True)
    eager = TorchBackend(card, "cuda", graphs=False)
    cpu = TorchBackend(card, "cpu")
    assert graphed.graphs and not eager.graphs and not cpu.graphs
    first, second, again = graphed.run(batch), graphed.run(other), graphed.run(batch)
    assert len(graphed._graphs) == 1  # one shape, recorded once
    for got, reference in ((first, eager.run(batch)), (second, eager.run(other)), (again, first)):
        for key in reference:
            np.testing.assert_allclose(got[key], reference[key], rtol=1e-5, atol=1e-5)
    reference = cpu.run(batch)
    for key in reference:
        scale = float(np.abs(reference[key]).max()) or 1.0
        assert float(np.abs(first[key] - reference[key]).max()) < 1e-3 * scale
    key = next(iter(reference))
    assert not np.allclose(first[key], second[key])  # the second input was read, not the first again


def test_cuda_graphs_only_on_cuda() -> None:
    from valvereader.model.card import ModelCard
    from valvereader.model.runtime import TorchBackend

    if not (WEIGHTS / "locator.json").exists() or not (WEIGHTS / "locator.safetensors").exists():
        pytest.skip("shipped locator absent")
    assert not TorchBackend(ModelCard.load(WEIGHTS / "locator.json"), "cpu", graphs=True).graphs


def test_graph_bookkeeping_records_each_shape_once_and_copies_every_result_out(monkeypatch) -> None:
    """TorchBackend's graph path without a GPU: torch.cuda's recording is replaced by a stand-in
    whose replay recomputes the model into the recorded output buffers, as a CUDA graph does.
    Checks what the device runs cannot show cheaply: one recording per shape, results copied
    out before the buffers are reused, eager runs beyond MAX_GRAPHS shapes."""
    import contextlib

    import numpy as np

    from valvereader.model.runtime import TorchBackend

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 3, 3, padding=1)

        def forward(self, x):
            features = self.conv(x)
            return features.mean(dim=(2, 3)), features

    backend = object.__new__(TorchBackend)
    backend.torch, backend.device, backend.graphs, backend._graphs = torch, "cpu", True, {}
    backend.model, backend.output_names, backend.MAX_GRAPHS = Net().eval(), ["logits", "features"], 2
    recordings = []

    class Graph:
        def __init__(self) -> None:
            recordings.append(self)

        def replay(self) -> None:
            _, static, outputs = next(e for e in backend._graphs.values() if e[0] is self)
            with torch.no_grad():
                for out, new in zip(outputs, backend._as_tuple(backend.model(static))):
                    out.copy_(new)

    stream = type("Stream", (), {"wait_stream": lambda self, other: None})
    monkeypatch.setattr(torch.cuda, "Stream", lambda device=None: stream())
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: stream())
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "CUDAGraph", Graph)
    monkeypatch.setattr(torch.cuda, "graph", lambda g: contextlib.nullcontext())

    rng = np.random.default_rng(0)
    a, b = (rng.random((2, 1, 8, 8), dtype=np.float32) for _ in range(2))
    c, d = rng.random((1, 1, 8, 8), dtype=np.float32), rng.random((3, 1, 8, 8), dtype=np.float32)
    eager = object.__new__(TorchBackend)
    eager.__dict__.update(backend.__dict__, graphs=False, _graphs={})
    first, second = backend.run(a), backend.run(b)
    assert len(recordings) == 1  # one shape, recorded once
    for got, x in ((first, a), (second, b), (backend.run(c), c), (backend.run(d), d)):
        reference = eager.run(x)
        for key in reference:
            np.testing.assert_allclose(got[key], reference[key], rtol=1e-6, atol=1e-6)
    assert len(recordings) == 2 and set(backend._graphs) == {a.shape, c.shape}  # d's shape: run eagerly
    assert not np.allclose(first["logits"], second["logits"])  # the first result was copied out, not overwritten
