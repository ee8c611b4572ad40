"""The locator card's valve probe: is a located region a shunt valve or something else?

The locator's peak answers "where would a valve be"; on a film without a valve its highest
peak often sits on other shunt hardware (a catheter connector, a burr-hole reservoir) or
other metal. The probe is a linear read-out of the identifier's pooled features of the
region (the same features the open-set score reads): ``pooled @ weight + bias``, the log-odds
that the region holds a valve, fitted on candidates of training films
(``python -m valvereader.training.valve_probe``). The verification adds it, times its
``probe_weight``, to a candidate's valve-likeness (``FilmVerification.valveness``).

Locator card::

    "files": {"valve_probe": {"path": "locator.valve_probe.safetensors", "sha256": "..."}},
    "verification": {..., "probe_weight": 0.2, "probe_fitted_for": "<identifier ONNX sha256>"}
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelCardError
from ..model.card import ModelCard


class ValveProbe:
    """``pooled @ weight + bias`` on a view's pooled identifier features; :meth:`from_cards`
    gives None where the locator card has none."""

    def __init__(self, weight: np.ndarray, bias: float):
        weight = np.asarray(weight, dtype=np.float32)
        if weight.ndim != 1:
            raise ValueError(f"valve probe: a weight vector (C,) expected, not {weight.shape}")
        self.weight = weight
        self.bias = float(bias)

    @classmethod
    def from_cards(cls, locator: ModelCard | None, identifier: ModelCard) -> ValveProbe | None:
        if locator is None:
            return None
        spec = locator.data.get("verification") or {}
        if "valve_probe" not in (locator.data.get("files") or {}):
            if spec.get("probe_weight"):
                raise ModelCardError(f"{locator.path.name}: verification.probe_weight {spec['probe_weight']} "
                                     "without a valve_probe file")
            return None
        network = str(((identifier.data.get("files") or {}).get("onnx") or {}).get("sha256", ""))
        fitted_for = str(spec.get("probe_fitted_for", ""))
        if fitted_for and network and fitted_for.lower() != network.lower():
            raise ModelCardError(f"{locator.path.name}: the valve probe was fitted on the features of another identifier "
                                 f"(ONNX sha256 {fitted_for[:12]}…, {identifier.path.name}: {network[:12]}…): fit it again "
                                 "(python -m valvereader.training.valve_probe) or remove it from the card")
        from safetensors.numpy import load_file

        tensors = load_file(str(locator.verify("valve_probe")))
        try:
            probe = cls(tensors["weight"], float(np.asarray(tensors["bias"]).reshape(-1)[0]))
        except KeyError as exc:
            raise ModelCardError(f"{locator.path.name}: the valve probe file needs 'weight' (C,) and 'bias' (1,): {exc}") from exc
        except ValueError as exc:
            raise ModelCardError(f"{locator.path.name}: {exc}") from exc
        return probe

    def __call__(self, outputs: dict[str, np.ndarray]) -> float:
        """The probe's log-odds for one view (``outputs`` of one image; the view's own
        features, not its mirror image's)."""
        pooled = outputs["features"].mean(axis=(2, 3))[0]
        if pooled.shape[0] != self.weight.shape[0]:
            raise ModelCardError(f"valve probe: {self.weight.shape[0]} features expected, the identifier gave {pooled.shape[0]}")
        return float(pooled.astype(np.float32) @ self.weight + self.bias)
