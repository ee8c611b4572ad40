"""The shipped weights in a test's folder with one of the locator card's read-out files (the
valve probe, the polarity check) replaced by the test's own."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from safetensors.numpy import save_file

from valvereader.model.card import sha256_of

WEIGHTS = Path(__file__).resolve().parents[2] / "weights"


def with_readout(tmp_path: Path, role: str, tensors: dict | None) -> tuple[Path, dict]:
    """(folder, its locator card as a dict): the cards copied, the other files linked (only
    read), ``locator.<role>.safetensors`` written from ``tensors`` and named in the card (or
    left out, with None). Change the card and :func:`write_card` it."""
    folder = tmp_path / "weights"
    folder.mkdir(parents=True)
    own = f"locator.{role}.safetensors"
    for item in WEIGHTS.iterdir():
        if item.suffix == ".json":
            shutil.copy(item, folder / item.name)
        elif item.is_file() and item.suffix != ".py" and item.name != own:
            (folder / item.name).symlink_to(item)
    card = json.loads((folder / "locator.json").read_text(encoding="utf-8"))
    card["files"].pop(role, None)
    if tensors is not None:
        save_file(tensors, str(folder / own))
        card["files"][role] = {"path": own, "sha256": sha256_of(folder / own)}
    return folder, card


def write_card(folder: Path, card: dict) -> Path:
    (folder / "locator.json").write_text(json.dumps(card), encoding="utf-8")
    return folder
