"""Is an image file a negative? The locator card's polarity check.

A DICOM file says how its grey levels run (MONOCHROME1 or MONOCHROME2) and the loader shows
bone white. A PNG or JPEG says nothing: a film exported without its presentation (a
MONOCHROME1 image saved as it is stored, or a film saved inverted on a workstation) shows bone
and metal dark. The locator and the identifier were trained on films and crops with bone
white; on such negatives they miss the valve far more often.

The check is a logistic regression on a few grey-level statistics of the whole image that
an inversion turns around (where the darkest and brightest ranks sit, whether thin
structures are brighter or darker than their surroundings, how the grey levels are spread),
fitted on films made from the train-split skull radiographs, half of them inverted, and on
the train-split valve crops as they are (a crop is never turned): ``python -m
valvereader.training.polarity``. Where its probability reaches the card's ``threshold``, the
image is read inverted (``Prepare(invert=True)``) and the result says so; the radiograph itself
is left as the file has it (the window shows it inverted, as read, with Invert to turn it back).

Locator card::

    "files": {"polarity": {"path": "locator.polarity.safetensors", "sha256": "..."}},
    "polarity": {"features": "rank-tophat-2", "threshold": 0.95}
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelCardError
from ..model.card import ModelCard
from ..radiograph import Radiograph

#: The feature sets this module computes (a card names one; another is refused): "rank-tophat-1"
#: on the whole image; "rank-tophat-2" the same inside the film's field, a plain margin round it
#: (an unexposed or masked collimator field, a padded export) trimmed first.
FEATURE_SETS = ("rank-tophat-1", "rank-tophat-2")
FEATURES = FEATURE_SETS[-1]  # what a new check is fitted with
#: Side (pixels) the image is reduced to before its statistics are taken.
SIDE = 160
#: A row or column of the reduced image whose grey levels vary less than this is plain margin.
PLAIN = 0.01


# The program's inference needs no OpenCV: the reductions, the thin-structure filters and the
# gradients below are written out in NumPy, as OpenCV computes them (``cv2.resize`` INTER_AREA,
# ``morphologyEx`` TOPHAT/BLACKHAT with an elliptic kernel, ``Sobel`` 3 x 3), with which the
# shipped checks were fitted.

#: The elliptic kernels of sides 3, 7 and 15 (``cv2.getStructuringElement(MORPH_ELLIPSE)``): the
#: width of each row, centred.
KERNEL_ROWS = {3: (1, 3, 1), 7: (1, 5, 7, 7, 7, 5, 1), 15: (1, 9, 11, 13, 13, 15, 15, 15, 15, 15, 13, 13, 11, 9, 1)}


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in): each output pixel the mean of the input pixels it covers, weighted by
    overlap (INTER_AREA)."""
    scale = n_in / n_out
    start = np.arange(n_out)[:, None] * scale
    i = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(i + 1, start + scale) - np.maximum(i, start), 0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def area_resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` resized to ``height`` x ``width`` by pixel overlap, in float64 and then float32
    (a plain region keeps exactly its value: its pixels tie, as OpenCV's do)."""
    rows = _area_weights(image.shape[0], height) @ np.asarray(image, dtype=np.float64)
    return (rows @ _area_weights(image.shape[1], width).T).astype(np.float32)


def _morph(image: np.ndarray, k: int, op: np.ufunc) -> np.ndarray:
    """Erosion (``np.minimum``) or dilation (``np.maximum``) with the elliptic kernel of side
    ``k``; pixels beyond the edge are ignored. Each kernel row is a centred run: the image is
    filtered along its rows once per run width, then those rows are combined down the kernel."""
    r = k // 2
    fill = np.inf if op is np.minimum else -np.inf
    padded = np.pad(image, r, constant_values=fill)
    h, w = image.shape
    along: dict[int, np.ndarray] = {}  # run half-width -> padded rows filtered over it
    for width in set(KERNEL_ROWS[k]):
        half = width // 2
        run = padded[:, r - half : r - half + w].copy()
        for dx in range(-half + 1, half + 1):
            op(run, padded[:, r + dx : r + dx + w], out=run)
        along[half] = run
    out = along[KERNEL_ROWS[k][0] // 2][0:h].copy()
    for dy, width in enumerate(KERNEL_ROWS[k][1:], start=1):
        op(out, along[width // 2][dy : dy + h], out=out)
    return out


def _sobel(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 3 x 3 Sobel derivatives in x and y, the edge mirrored without repeating it."""
    p = np.pad(image, 1, mode="reflect")
    dx = p[:, 2:] - p[:, :-2]
    dy = p[2:, :] - p[:-2, :]
    gx = dx[:-2] + 2 * dx[1:-1] + dx[2:]
    gy = dy[:, :-2] + 2 * dy[:, 1:-1] + dy[:, 2:]
    return gx, gy


def _field(small: np.ndarray) -> np.ndarray:
    """``small`` less the plain rows and columns at its edges (at most 40 % of each side)."""
    h, w = small.shape
    rows, cols = small.std(axis=1) < PLAIN, small.std(axis=0) < PLAIN
    top = next((i for i in range(int(0.4 * h)) if not rows[i]), int(0.4 * h))
    bottom = next((i for i in range(int(0.4 * h)) if not rows[h - 1 - i]), int(0.4 * h))
    left = next((i for i in range(int(0.4 * w)) if not cols[i]), int(0.4 * w))
    right = next((i for i in range(int(0.4 * w)) if not cols[w - 1 - i]), int(0.4 * w))
    return small[top : h - bottom, left : w - right]


def polarity_features(pixels: np.ndarray, features: str = FEATURES) -> np.ndarray:
    """The statistics the check reads (float32 vector): a greyscale image 0..1, any size."""
    if features not in FEATURE_SETS:
        raise ValueError(f"unknown polarity features '{features}'")
    image = np.asarray(pixels, dtype=np.float32)
    h, w = image.shape
    f = SIDE / max(h, w)
    small = area_resize(image, max(8, round(w * f)), max(8, round(h * f)))
    if features == "rank-tophat-2":
        small = _field(small)
    hh, ww = small.shape
    # Each pixel's rank (0 darkest .. 1 brightest): unchanged by any tone curve, reversed by inversion.
    order = np.argsort(small.ravel(), kind="stable")
    flat = np.empty(small.size, np.float32)
    flat[order] = np.linspace(0.0, 1.0, small.size, dtype=np.float32)
    rank = flat.reshape(small.shape)
    grid = area_resize(rank, 4, 4)
    grid = ((grid + grid[:, ::-1]) / 2)[:, :2].ravel()  # the same for a film and its mirror image
    by, bx = max(1, hh // 10), max(1, ww // 10)
    ring = float(np.concatenate([rank[:by].ravel(), rank[-by:].ravel(), rank[:, :bx].ravel(), rank[:, -bx:].ravel()]).mean())
    centre = float(rank[hh // 4 : 3 * hh // 4, ww // 4 : 3 * ww // 4].mean())
    z = (small - small.mean()) / (small.std() + 1e-6)
    thin = []
    for k in KERNEL_ROWS:  # thin structures: brighter (bone edges, metal) or darker than around them
        bright = float((z - _morph(_morph(z, k, np.minimum), k, np.maximum)).mean())  # top-hat
        dark = float((_morph(_morph(z, k, np.maximum), k, np.minimum) - z).mean())  # black-hat
        thin.append(np.log((bright + 1e-4) / (dark + 1e-4)))
    gx, gy = _sobel(rank)
    edges = np.hypot(gx, gy)
    edge_rank = float((rank * edges).sum() / (edges.sum() + 1e-6)) - 0.5
    skew = float((z**3).mean())
    hist = np.histogram(small, bins=8, range=(0.0, 1.0))[0] / small.size
    top = float((small >= small.max() - 1e-3).mean())
    bottom = float((small <= small.min() + 1e-3).mean())
    return np.concatenate([grid, [ring, centre, ring - centre, edge_rank, skew, top - bottom], thin, hist]).astype(np.float32)


class PolarityCheck:
    """``sigmoid(((features - mean) / scale) @ weight + bias)``: the probability that an image
    file is a negative. :meth:`from_card` gives None where the locator card has none."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray, weight: np.ndarray, bias: float, threshold: float,
                 features: str = FEATURES):
        self.mean, self.scale, self.weight = (np.asarray(a, dtype=np.float32).ravel() for a in (mean, scale, weight))
        if not (self.mean.shape == self.scale.shape == self.weight.shape):
            raise ValueError(f"polarity: mean, scale and weight differ in length ({self.mean.shape}, {self.scale.shape}, {self.weight.shape})")
        if not 0.5 <= threshold < 1.0:
            raise ValueError(f"polarity: threshold {threshold} outside [0.5, 1)")
        if features not in FEATURE_SETS:
            raise ValueError(f"polarity: unknown features '{features}'")
        self.bias, self.threshold, self.features = float(bias), float(threshold), features

    @classmethod
    def from_card(cls, card: ModelCard | None) -> PolarityCheck | None:
        if card is None or "polarity" not in (card.data.get("files") or {}):
            if card is not None and card.data.get("polarity"):
                raise ModelCardError(f"{card.path.name}: a 'polarity' section without a polarity file")
            return None
        spec = card.data.get("polarity") or {}
        if spec.get("features") not in FEATURE_SETS:
            raise ModelCardError(f"{card.path.name}: polarity features '{spec.get('features')}' are not this program's "
                                 f"({', '.join(FEATURE_SETS)}): fit the check again (python -m valvereader.training.polarity)")
        from safetensors.numpy import load_file

        tensors = load_file(str(card.verify("polarity")))
        try:
            return cls(tensors["mean"], tensors["scale"], tensors["weight"], float(np.asarray(tensors["bias"]).reshape(-1)[0]),
                       float(spec.get("threshold", 0.95)), str(spec["features"]))
        except KeyError as exc:
            raise ModelCardError(f"{card.path.name}: the polarity file needs 'mean', 'scale', 'weight' and 'bias': {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise ModelCardError(f"{card.path.name}: {exc}") from exc

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """The probability of each row of ``features`` (N, F) or of one vector (F,)."""
        if features.shape[-1] != self.weight.shape[0]:
            raise ModelCardError(f"polarity: {self.weight.shape[0]} features expected, {features.shape[-1]} computed")
        logit = ((features - self.mean) / self.scale) @ self.weight + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(logit, -50, 50)))

    def probability(self, pixels: np.ndarray) -> float:
        return float(self.probabilities(polarity_features(pixels, self.features)))

    def is_negative(self, radiograph: Radiograph) -> bool:
        """The file is a negative: an image file (a DICOM file's own photometric interpretation
        is trusted) whose probability reaches the threshold."""
        if (radiograph.meta.file_format or "").upper() == "DICOM":
            return False
        return self.probability(radiograph.pixels) >= self.threshold
