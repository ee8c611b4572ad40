"""The identifier's film-region head: a second linear layer on the same pooled features, for
regions cut from a film.

A valve blended into a film reads differently from the public crops the identifier was
trained on (skull and soft tissue behind it, a smaller valve at the film's pixel spacing). The
card's ``film_head`` names a linear correction fitted on regions of training films (the
shipped identifier's own features, its backbone unchanged): for a region that is a small part
of its image (a located or reader's box on a film), the logits become

    logits + pooled @ W + b

where ``pooled`` is the mean over the spatial axes of the ``features`` output (with the card's
mirror reading, the mean of the view's and its mirror image's, as the logits are averaged). With
the card's ``film_head.temperature`` T (default 1), the sum is divided by T: the same name, its
probability fitted on regions the head did not see.
The open-set score, which reads the features alone, does not change; nor does any view that
covers most of its image (a crop around a valve, the whole image). With the card's
``film_head.ood_review``, a film region's cap on "confident" is that open-set score instead of
the card's ``thresholds.ood_review``: a valve blended into a film lies further from the
training crops' class means than a crop of it, and the cap is carried over as the same share
of known valves (see the card). The attention map of such
a view uses the classifier's weights plus ``W``, so it still explains the logits shown.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelCardError
from ..geometry import Box
from ..model.card import ModelCard
from .views import covers_most


def film_pooled(outputs: dict[str, np.ndarray]) -> np.ndarray:
    """What the logits are linear in: the pooled features (N, C), with the mirror reading the
    mean of the view's and its mirror image's (as the two logits are averaged)."""
    pooled = outputs["features"].mean(axis=(2, 3))
    mirrored = outputs.get("mirror_features")
    return pooled if mirrored is None else (pooled + mirrored.mean(axis=(2, 3))) / 2


class FilmHead:
    """The card's film-region head (``film_head``); :meth:`from_card` gives None without one."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray, temperature: float = 1.0, ood_review: float | None = None):
        if weight.ndim != 2 or bias.shape != (weight.shape[0],):
            raise ValueError(f"film head: weight (K, C) and bias (K,) expected, not {weight.shape} and {bias.shape}")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not np.isfinite(temperature) or temperature <= 0:
            raise ValueError(f"film head: the temperature must be a positive number, not {temperature!r}")
        self.weight = weight.astype(np.float32)  # (K, C), as the classifier's weights
        self.bias = bias.astype(np.float32)
        self.temperature = float(temperature)
        if ood_review is not None and (isinstance(ood_review, bool) or not isinstance(ood_review, (int, float))
                                       or not np.isfinite(ood_review) or ood_review <= 0):
            raise ValueError(f"film head: ood_review must be a positive number, not {ood_review!r}")
        #: The cap on "confident" for a film region (None: the card's thresholds.ood_review).
        self.ood_review = None if ood_review is None else float(ood_review)

    @classmethod
    def from_card(cls, card: ModelCard) -> FilmHead | None:
        spec = card.data.get("film_head")
        if not spec:
            return None
        network = str(((card.data.get("files") or {}).get("onnx") or {}).get("sha256", ""))
        fitted_for = spec.get("fitted_for") if isinstance(spec, dict) else None
        if fitted_for and network and str(fitted_for).lower() != network.lower():
            raise ModelCardError(f"{card.path.name}: the film head was fitted on the features of another network "
                                 f"(ONNX sha256 {str(fitted_for)[:12]}…, this card's {network[:12]}…): fit it again "
                                 "(python -m valvereader.training.film_head) or remove the card's film_head")
        from safetensors.numpy import load_file

        tensors = load_file(str(card.verify("film_head")))
        temperature = spec.get("temperature", 1.0) if isinstance(spec, dict) else 1.0
        ood_review = spec.get("ood_review") if isinstance(spec, dict) else None
        try:
            head = cls(tensors["weight"], tensors["bias"], temperature, ood_review)
        except KeyError as exc:
            raise ModelCardError(f"{card.path.name}: the film head file needs 'weight' (K, C) and 'bias' (K,): {exc}") from exc
        except ValueError as exc:  # the arrays' shapes, or the card's temperature or cap
            raise ModelCardError(f"{card.path.name}: {exc}") from exc
        if head.weight.shape[0] != len(card.class_ids):
            raise ModelCardError(f"{card.path.name}: the film head has {head.weight.shape[0]} classes, the card {len(card.class_ids)}")
        return head

    @staticmethod
    def applies(region: Box | None, shape: tuple[int, int]) -> bool:
        """A region that is a small part of its image: a box on a film, not a crop or the whole image."""
        return region is not None and not covers_most(region, shape)

    def corrected(self, logits: np.ndarray, pooled: np.ndarray) -> np.ndarray:
        """``(logits + pooled @ weight.T + bias) / temperature`` (N, K), float32."""
        return ((logits + pooled @ self.weight.T + self.bias) / self.temperature).astype(np.float32)

    def apply(self, outputs: dict[str, np.ndarray]) -> None:
        """Correct one view's logits in place (``outputs`` of one image); marks the view with the
        head's weights (``head_weight``) and the scale of its logits (``head_scale``, 1 / the
        temperature) for the attention map. Applying it twice is a no-op."""
        if "head_weight" in outputs:
            return
        outputs["logits"] = self.corrected(outputs["logits"], film_pooled(outputs))
        outputs["head_weight"] = self.weight
        outputs["head_scale"] = np.asarray(1.0 / self.temperature, dtype=np.float32)
