"""Run a network from its model card: ONNX Runtime by default, torch when asked for a GPU.

ONNX Runtime starts in well under a second and needs no torch, so the window and the command
line stay fast on a laptop; torch (CUDA, then MPS) is used when a GPU is asked for or found.
Both give the same outputs for the same inputs (tests compare them).
"""

from __future__ import annotations

import os
import platform
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import ModelError
from .card import ModelCard


class Backend(Protocol):
    """Runs a batch (N, 1, S, S) float32 in 0..1 and returns named outputs.

    ``batches``: whether N may exceed 1 (an ONNX file exported with a fixed batch of 1 may not).
    """

    device: str
    batches: bool

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]: ...


def cpu_threads() -> int:
    """The cores this process may run on."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class OnnxBackend:
    """ONNX Runtime session over the card's ``onnx`` file (sha256 checked first).

    The intra-op workers do not spin-wait for work (``allow_spinning`` 0). The program runs
    two sessions (locator, identifier), each with its own pool: a spinning pool of one held
    the cores while the other ran, which doubled the time of locator + identifier on two
    cores, and it starved the loader thread of a batch and the numpy work between runs.
    """

    def __init__(self, card: ModelCard, device: str = "cpu", threads: int | None = None, spin: bool = False):
        # No usage events to Microsoft: valvereader/__init__.py sets this at import; again here in
        # case a host cleared it. It only counts if set before onnxruntime is first imported.
        os.environ["ORT_DISABLE_TELEMETRY"] = "1"
        import onnxruntime as ort

        path = card.verify("onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or cpu_threads()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        providers = ["CPUExecutionProvider"]
        if device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"cannot load {path.name} with ONNX Runtime: {exc}") from exc
        self.device = "cuda" if providers[0].startswith("CUDA") else "cpu"
        self.output_names = [output.name for output in self.session.get_outputs()]
        batch = self.session.get_inputs()[0].shape[0]
        self.batches = not isinstance(batch, int) or batch != 1  # several images in one run

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self.session.run(None, {"image": np.ascontiguousarray(batch, dtype=np.float32)})
        return dict(zip(self.output_names, outputs))


_CUDA_LOCK = threading.Lock()  # held by a TorchBackend running on CUDA with graphs (below)


class TorchBackend:
    """The reference PyTorch model from the card's safetensors file (sha256 checked first).

    On CUDA each input shape's run is recorded once as a CUDA graph and replayed after (one
    image's networks launch hundreds of small kernels, and launching them is most of their time);
    ``graphs=False`` or VALVEREADER_CUDA_GRAPHS=0 runs them one by one. A replay runs the same
    kernels on the same numbers (tests/model/test_cuda_equivalence.py compares them).
    """

    MAX_GRAPHS = 8  # input shapes recorded (a film's identifier batch, two views', the locator's)

    def __init__(self, card: ModelCard, device: str = "cpu", graphs: bool | None = None):
        import torch
        from safetensors.torch import load_file

        from .architectures import build_model

        path = card.verify("safetensors")
        if card.task == "locate":
            from .locator_net import load_locator

            model: torch.nn.Module = load_locator(path)
        else:
            num_outputs = len(card.class_ids) if card.class_ids else int(card.data.get("num_outputs", 1))
            try:
                model = build_model(card.architecture, num_outputs, pretrained=False, members=card.data.get("members"))
            except (ValueError, KeyError) as exc:
                raise ModelError(f"torch cannot build '{card.architecture}': {exc}") from exc
            state = {k: v.float() for k, v in load_file(str(path)).items()}
            missing, unexpected = model.load_state_dict(state, strict=False)
            if missing or unexpected:
                raise ModelError(
                    f"{path.name} does not fit {card.architecture}: missing {list(missing)[:3]}, "
                    f"unexpected {list(unexpected)[:3]}"
                )
        if str(device).startswith("cuda"):
            # True float32 convolutions: cuDNN's TF32 default moved the located box by a pixel and
            # the open-set score by 1-2 % against the CPU (benchmarks/gpu_program.py), for no gain
            # at one image (benchmarks/gpu.py: 9.9 ms either way). Process-wide, like torch's own.
            torch.backends.cudnn.allow_tf32 = False
        self.torch = torch
        self.device = device
        self.batches = True
        self.model = model.to(device).eval()
        self.output_names = list(card.data.get("outputs", ["logits", "features"]))
        if graphs is None:
            graphs = os.environ.get("VALVEREADER_CUDA_GRAPHS", "1") != "0"
        self.graphs = bool(graphs) and str(device).startswith("cuda")
        self._graphs: dict[tuple[int, ...], tuple] = {}

    @staticmethod
    def _as_tuple(outputs) -> tuple:
        return tuple(outputs) if isinstance(outputs, (tuple, list)) else (outputs,)

    def _eager(self, batch: np.ndarray) -> tuple:
        """The model's outputs, its kernels launched one by one."""
        with self.torch.inference_mode():
            return self._as_tuple(self.model(self.torch.from_numpy(batch).to(self.device)))

    def _replayed(self, batch: np.ndarray) -> tuple:
        """The model's outputs from the recorded run for inputs of the batch's shape, recorded
        now if it is new (in the graph's own output buffers: copy them out before the next run)."""
        torch = self.torch
        entry = self._graphs.get(batch.shape)
        if entry is None:
            static = torch.zeros(batch.shape, dtype=torch.float32, device=self.device)
            side = torch.cuda.Stream(device=self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.no_grad(), torch.cuda.stream(side):
                for _ in range(2):  # cuDNN picks its algorithms outside the recording
                    self.model(static)
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.no_grad(), torch.cuda.graph(graph):
                outputs = self._as_tuple(self.model(static))
            entry = self._graphs[batch.shape] = (graph, static, outputs)
        graph, static, outputs = entry
        static.copy_(torch.from_numpy(batch))
        graph.replay()
        return outputs

    def _host(self, outputs: tuple, copy: bool = False) -> dict[str, np.ndarray]:
        """The outputs as named host arrays; ``copy``: never sharing the outputs' memory (a
        graph's outputs are its buffers, which its next replay overwrites)."""
        return {name: out.float().to("cpu", copy=copy).numpy() for name, out in zip(self.output_names, outputs)}

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if not self.graphs:
            return self._host(self._eager(batch))
        # One thread at a time on the GPU: a graph's input and outputs are one set of buffers
        # (copied out before the lock is let go), and no other thread may touch CUDA while a
        # graph is being recorded.
        with _CUDA_LOCK:
            recorded = batch.shape in self._graphs or len(self._graphs) < self.MAX_GRAPHS
            return self._host(self._replayed(batch), copy=True) if recorded else self._host(self._eager(batch))


def _gpu_present() -> bool:
    """Cheap check for an NVIDIA driver, without importing torch (6–11 s here)."""
    return Path("/proc/driver/nvidia/version").exists()


def resolve_device(requested: str | None) -> str:
    """"auto"/None → CUDA if an NVIDIA driver is present, then MPS on Apple silicon, then CPU."""
    requested = (requested or "auto").lower()
    if requested != "auto":
        if requested not in ("cpu", "cuda", "mps") and not requested.startswith("cuda:"):
            raise ModelError(f"unknown device '{requested}': use auto, cpu, cuda or mps")
        return requested
    if _gpu_present():
        return "cuda"
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        return "mps"
    return "cpu"


def open_backend(card: ModelCard, device: str | None = None, runtime: str | None = None) -> Backend:
    """ONNX Runtime on the CPU (or its CUDA provider); torch for CUDA/MPS or when asked.

    ``runtime`` forces "onnx" or "torch". A GPU device falls back to the CPU with ONNX Runtime
    when torch or the GPU is not usable.
    """
    device = resolve_device(device)
    if runtime is None:
        runtime = "onnx" if device == "cpu" else "torch"
    if runtime == "torch":
        try:
            import torch

            if device.startswith("cuda") and not torch.cuda.is_available():
                raise ModelError("CUDA was asked for but torch sees no CUDA device")
            if device == "mps" and not torch.backends.mps.is_available():
                raise ModelError("MPS was asked for but is not available")
            return TorchBackend(card, device)
        except ImportError:
            if card.file("onnx") is None:
                raise ModelError("torch is not installed and the model has no ONNX file") from None
            runtime, device = "onnx", "cpu"
        except ModelError:
            if device == "cpu" or card.file("onnx") is None:
                raise
            runtime, device = "onnx", "cpu"
    if card.file("onnx") is None:
        return TorchBackend(card, "cpu")
    return OnnxBackend(card, device)
