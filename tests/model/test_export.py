"""ONNX export: names, dynamic batch, and agreement with torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from valvereader.model.architectures import build_model
from valvereader.model.export import export_onnx, onnx_matches_torch


@pytest.mark.parametrize("arch", ["resnet34", "efficientnet_lite0"])
def test_onnx_logits_match_torch(tmp_path, arch: str) -> None:
    torch.manual_seed(0)
    model = build_model(arch, num_classes=8).eval()
    path = export_onnx(model, tmp_path / "m.onnx", input_size=64)
    assert onnx_matches_torch(model, path, input_size=64, batch=2) < 1e-4


def test_onnx_has_contract_names_and_dynamic_batch(tmp_path) -> None:
    import onnxruntime

    torch.manual_seed(0)
    model = build_model("resnet34", num_classes=3).eval()
    path = export_onnx(model, tmp_path / "m.onnx", input_size=64)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert [o.name for o in session.get_outputs()] == ["logits", "features"]
    logits, features = session.run(None, {"image": np.random.default_rng(0).random((3, 1, 64, 64), dtype=np.float32)})
    assert logits.shape == (3, 3)
    assert features.shape[:2] == (3, 512)
