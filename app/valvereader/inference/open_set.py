"""The identifier's open-set score in numpy: how unlike every training valve a view is
(Mahalanobis distance of the pooled features to the nearest class mean, or energy)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import ModelCardError, ModelError
from ..model.card import ModelCard
from ..model.derived import cached

#: The open-set file's precision matrix, symmetric, stored as its upper triangle row by row
#: (``np.triu_indices`` order, float32): half the bytes of the full matrix and the same numbers.
#: A file with the full matrix ("precision", as written before 2026-12-07) reads the same.
PACKED = "precision_upper"


def pack_symmetric(matrix: np.ndarray) -> np.ndarray:
    """The upper triangle of a symmetric matrix (the mean of it and its transpose, so a matrix
    that is symmetric only up to rounding packs the same from either side), as float32."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"expected a square matrix, got shape {matrix.shape}")
    return np.ascontiguousarray(((matrix + matrix.T) / 2.0)[np.triu_indices(matrix.shape[0])], dtype=np.float32)


def unpack_symmetric(packed: np.ndarray) -> np.ndarray:
    """The full symmetric matrix (float64) from :func:`pack_symmetric`'s triangle."""
    packed = np.asarray(packed).ravel()
    size = (math.isqrt(8 * packed.size + 1) - 1) // 2
    if size * (size + 1) // 2 != packed.size:
        raise ModelError(f"a packed precision matrix of {packed.size} values is no upper triangle of a square matrix")
    matrix = np.zeros((size, size), dtype=np.float64)
    rows, cols = np.triu_indices(size)
    matrix[rows, cols] = packed
    matrix[cols, rows] = packed
    return matrix


def precision_matrix(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The precision matrix (float64) of an open-set file's arrays, packed or full."""
    if PACKED in arrays:
        return unpack_symmetric(arrays[PACKED])
    return np.asarray(arrays["precision"], dtype=np.float64)


class OpenSetScorer:
    """The card's open-set score, computed in numpy (higher = less like any training valve)."""

    def __init__(self, card: ModelCard, spec: dict | None = None, role: str = "openset", verified: Path | None = None):
        """The card's ``openset`` score, or with ``spec`` another one whose statistics are the
        card's file of that ``role`` (the view choice's own score). ``verified``: that file,
        already checked against the card's sha256 (it is not hashed again)."""
        spec = (card.data.get("openset") or {}) if spec is None else spec
        self.method = str(spec.get("method", "none")).lower()
        self.normalise = str(spec.get("normalise", "none")).lower()
        if self.normalise not in ("none", "l2"):
            raise ModelCardError(f"{card.path.name}: unknown open-set normalisation '{self.normalise}' (expected none or l2)")
        if self.method == "mahalanobis":
            from safetensors.numpy import load_file

            arrays = load_file(str(verified or card.verify(role)))
            if "class_means" not in arrays:
                raise ModelError(f"open-set file of {card.path.name} lacks 'class_means'")
            if PACKED not in arrays and "precision" not in arrays:
                raise ModelError(f"open-set file of {card.path.name} lacks '{PACKED}' (or the full 'precision')")
            # d' P d = |W d|^2 with P = W'W: project once, then distances are cheap. Only the
            # projection (in float32: with 2560 features numpy's float64 loop took 3-8 ms per
            # view, float32 a quarter of that and half the memory; distances agree to ~1e-6
            # relative) and the projected means are kept, not the precision matrix. Both are
            # derived once and cached on disk (model.derived: the Cholesky factor took 0.3-0.45 s
            # of every start), named by the statistics file's sha256 from the card.
            source = str(((card.data.get("files") or {}).get(role) or {}).get("sha256", ""))
            derived = cached("whitener", source, int(arrays["class_means"].shape[1]), lambda: _projection(arrays))
            self._projected_means = derived["projected_means"]
            self._blocks = _blocks_from(derived)
            self.features = int(self._projected_means.shape[1])
            self._channels = openset_channels(spec, self.features, card.path.name)
        self.temperature = float(spec.get("temperature", 1.0))

    def __call__(self, logits: np.ndarray, pooled: np.ndarray) -> np.ndarray | None:
        if self.method == "mahalanobis":
            return self.class_distances(pooled).min(axis=1)  # type: ignore[union-attr]
        if self.method == "energy":
            t = self.temperature
            scaled = logits / t
            peak = scaled.max(axis=1, keepdims=True)
            return -(t * (peak[:, 0] + np.log(np.exp(scaled - peak).sum(axis=1))))
        return None

    def class_distances(self, pooled: np.ndarray) -> np.ndarray | None:
        """(N, K) distances of the views' pooled features to every class mean, in class_ids
        order (the score is their minimum); None where the score is not a distance (energy)."""
        if self.method == "mahalanobis":
            # einsum (optimize=False) runs numpy's own single-threaded loop, not BLAS: OpenBLAS's
            # threads fought ONNX Runtime's workers (and a batch's loader thread) for the cores
            # and turned this 0.5 ms product into 10-20 ms right after a network run.
            if pooled.shape[1] < self._channels.stop:
                raise ModelError(f"the open-set statistics need pooled features up to channel {self._channels.stop}, "
                                 f"the network gives {pooled.shape[1]}")
            z = pooled[:, self._channels].astype(np.float64)
            if self.normalise == "l2":
                z = z / np.maximum(np.sqrt(np.einsum("ij,ij->i", z, z))[:, None], 1e-12)
            # (Not in two halves, .halves: numpy's loop streams the blocks in well under a
            # millisecond; two halves of the full matrix's rows were slower than one loop.)
            z32 = z.astype(np.float32)
            projected32 = np.zeros((z.shape[0], self.features), dtype=np.float32)
            for start, stop, block in self._blocks:
                projected32[:, : block.shape[0]] += np.einsum("ij,nj->ni", block, z32[:, start:stop], optimize=False)
            projected = projected32.astype(np.float64)
            diffs = projected[:, None, :] - self._projected_means[None, :, :]
            return np.sqrt((diffs * diffs).sum(axis=2))
        return None


def openset_channels(spec: dict, size: int, source: str = "card") -> slice:
    """The pooled-feature channels an open-set ``spec`` was fitted on: its ``features``
    ``[start, stop]`` (an ensemble may score the features of some members only), else all
    ``size`` of them.

    Raises:
        ModelCardError: a range that is not two integers 0 <= start < stop, or whose width is
            not the statistics' ``size``.
    """
    channels = spec.get("features")
    if channels is None:
        return slice(0, size)
    if (not isinstance(channels, list) or len(channels) != 2 or not all(isinstance(c, int) and not isinstance(c, bool) for c in channels)
            or not 0 <= channels[0] < channels[1]):
        raise ModelCardError(f"{source}: open-set 'features' must be [start, stop] with 0 <= start < stop, not {channels!r}")
    if channels[1] - channels[0] != size:
        raise ModelCardError(f"{source}: open-set 'features' {channels} covers {channels[1] - channels[0]} channels, "
                             f"but its statistics have {size}")
    return slice(channels[0], channels[1])


def _column_blocks(matrix: np.ndarray, width: int = 256) -> list[tuple[int, int, np.ndarray]]:
    """``matrix`` as float32 blocks of ``width`` columns, (start, stop, block): each block holds
    only the rows down to its last non-zero, column-major (numpy's einsum loop streams it),
    converted block by block (no float32 copy of the whole matrix at start-up). The
    whitener from a Cholesky factor is upper triangular, so half of it is zeros that need not
    be read: with 2560 features 14 MB a view instead of 26 MB, which also leaves more of the
    cache to the networks running beside it (a batch's other stream)."""
    blocks = []
    for start in range(0, matrix.shape[1], width):
        stop = min(matrix.shape[1], start + width)
        used = np.flatnonzero(np.any(matrix[:, start:stop] != 0, axis=1))
        if used.size:
            blocks.append((start, stop, np.asfortranarray(matrix[: int(used[-1]) + 1, start:stop], dtype=np.float32)))
    return blocks


def _projection(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What OpenSetScorer keeps of a statistics file: the projected class means (float64) and
    the whitener's column blocks (float32, "block.START.STOP")."""
    project = _whitener(precision_matrix(arrays))
    derived = {"projected_means": arrays["class_means"].astype(np.float64) @ project.T}
    for start, stop, block in _column_blocks(project):
        derived[f"block.{start}.{stop}"] = block
    return derived


def _blocks_from(derived: dict[str, np.ndarray]) -> list[tuple[int, int, np.ndarray]]:
    """The column blocks of :func:`_projection`'s arrays, in column order, column-major as
    numpy's einsum loop streams them (a cached array comes back row-major)."""
    blocks = []
    for name, block in derived.items():
        if name.startswith("block."):
            _, start, stop = name.split(".")
            blocks.append((int(start), int(stop), np.asfortranarray(block, dtype=np.float32)))
    return sorted(blocks, key=lambda entry: entry[0])


def _whitener(precision: np.ndarray) -> np.ndarray:
    """W with W'W = precision (symmetric, positive semi-definite)."""
    symmetric = (precision + precision.T) / 2.0
    try:
        return np.linalg.cholesky(symmetric).T
    except np.linalg.LinAlgError:
        values, vectors = np.linalg.eigh(symmetric)
        return (vectors * np.sqrt(np.clip(values, 0.0, None))).T
