"""Figures of an evaluation: normalised confusion matrix, reliability diagram, attention grid.

matplotlib with the Agg backend (no display needed); training extra only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(normalised: np.ndarray, class_ids: Sequence[str], path: Path, title: str) -> Path:
    plt = _pyplot()
    k = len(class_ids)
    fig, ax = plt.subplots(figsize=(1.0 * k + 3, 1.0 * k + 2))
    ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), class_ids, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), class_ids, fontsize=8)
    ax.set_xlabel("predicted valve")
    ax.set_ylabel("true valve")
    for i in range(k):
        for j in range(k):
            if normalised[i, j] > 0:
                ax.text(j, i, f"{normalised[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if normalised[i, j] > 0.5 else "black")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_reliability(table: list[dict], ece: float, path: Path, title: str) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    centres = [(row["low"] + row["high"]) / 2 for row in table]
    accuracy = [row["accuracy"] if row["count"] else 0.0 for row in table]
    ax.bar(centres, accuracy, width=1.0 / len(table), edgecolor="black", alpha=0.7, label="accuracy in bin")
    ax.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    for c, row in zip(centres, table):
        if row["count"]:
            ax.text(c, 0.02, str(row["count"]), ha="center", fontsize=6, rotation=90)
    ax.set_xlabel("maximum softmax (confidence)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{title}\nECE = {ece:.3f}", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def class_activation_maps(weights: np.ndarray, features: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """CAM of ``classes[i]`` for each image: ReLU(w_k · F), scaled to 0..1 per image.

    Equals Grad-CAM on the last feature map for a mean-pool + linear head.
    """
    cams = np.einsum("nc,nchw->nhw", weights[classes], features)
    cams = np.maximum(cams, 0)
    peak = cams.reshape(len(cams), -1).max(axis=1)
    return cams / np.maximum(peak, 1e-12)[:, None, None]


def plot_attention_grid(images: np.ndarray, cams: np.ndarray, titles: Sequence[str], path: Path, columns: int = 6) -> Path:
    """Images with their class activation map overlaid ("model attention", not a finding)."""
    from PIL import Image

    plt = _pyplot()
    n = len(images)
    rows = max(1, int(np.ceil(n / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.5 * rows))
    for ax in np.atleast_1d(axes).ravel():
        ax.axis("off")
    for ax, image, cam, title in zip(np.atleast_1d(axes).ravel(), images, cams, titles):
        size = image.shape[::-1]
        up = np.asarray(Image.fromarray(cam.astype(np.float32), mode="F").resize(size, Image.Resampling.BILINEAR))
        ax.imshow(image, cmap="gray", vmin=0, vmax=1)
        ax.imshow(up, cmap="jet", alpha=0.35, vmin=0, vmax=1)
        ax.set_title(title, fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
