"""ONNX export of a :class:`ValveNet`, so inference can run without torch.

The graph takes ``image`` (N, 1, S, S) float32 grey in 0..1 and returns ``logits`` (N, K) and
``features`` (N, C, h, w), the last feature map the attention map is computed from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelError

INPUT_NAME = "image"
OUTPUT_NAMES = ("logits", "features")
OPSET = 17


def export_onnx(model, path: str | Path, input_size: int, opset: int = OPSET) -> Path:
    """Write ``model`` (eval mode, CPU, fp32) as ONNX with a dynamic batch axis.

    Raises:
        ModelError: the exporter failed (the message names the cause).
    """
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.float().cpu().eval()
    example = torch.rand(1, 1, input_size, input_size)
    partial = path.with_suffix(".partial.onnx")
    try:
        torch.onnx.export(
            model,
            (example,),
            str(partial),
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_axes={INPUT_NAME: {0: "batch"}, "logits": {0: "batch"}, "features": {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    except Exception as exc:
        partial.unlink(missing_ok=True)
        raise ModelError(f"ONNX export failed: {exc}") from exc
    partial.replace(path)
    return path


def onnx_matches_torch(model, path: str | Path, input_size: int, batch: int = 2, seed: int = 0) -> float:
    """Largest absolute difference between torch and onnxruntime logits on random input."""
    import onnxruntime
    import torch

    rng = np.random.default_rng(seed)
    x = rng.random((batch, 1, input_size, input_size), dtype=np.float32)
    with torch.no_grad():
        expected, _ = model.float().cpu().eval()(torch.from_numpy(x))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits, _ = session.run(list(OUTPUT_NAMES), {INPUT_NAME: x})
    return float(np.abs(logits - expected.numpy()).max())
