"""Model cards: the JSON beside every weights file, and the checks made before loading.

A card names the architecture, input size, class ids in order, preprocessing, the training
data and its attribution, metrics with their protocol, verdict thresholds, and the sha256 of
every file it ships. Loading refuses weights whose checksum or classes do not match.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..catalogue import VALVE_IDS
from ..errors import ModelCardError, WeightsIntegrityError, WeightsMissingError
from ..prediction import VerdictThresholds

REQUIRED_FIELDS = ("name", "version", "task", "architecture", "input_size", "files")


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class ModelCard:
    """A parsed model card. ``folder`` is where its files live."""

    data: dict[str, Any]
    path: Path
    folder: Path = field(init=False)

    def __post_init__(self) -> None:
        self.folder = self.path.parent

    @classmethod
    def load(cls, path: Path) -> ModelCard:
        """Read and check a card's fields.

        Raises:
            WeightsMissingError: no card at ``path``.
            ModelCardError: not JSON, or required fields missing.
        """
        path = Path(path)
        if not path.exists():
            raise WeightsMissingError(f"model card not found: {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelCardError(f"model card {path} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ModelCardError(f"model card {path} must hold a JSON object")
        missing = [key for key in REQUIRED_FIELDS if key not in data]
        if missing:
            raise ModelCardError(f"model card {path} lacks {', '.join(missing)}")
        return cls(data, path)

    # --- fields -----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self.data["name"])

    @property
    def version(self) -> str:
        return str(self.data["version"])

    @property
    def title(self) -> str:
        members = self.data.get("members")
        if isinstance(members, list) and members and all(isinstance(m, dict) for m in members):
            archs = sorted({str(m.get("arch", "?")) for m in members})
            sizes = " + ".join(f"{m.get('input_size', '?')}" for m in members)
            return f"{self.name} {self.version} (ensemble of {len(members)} {'/'.join(archs)}, {sizes} px{self._mirror_note})"
        return f"{self.name} {self.version} ({self.architecture}{self._mirror_note})"

    @property
    def mirror(self) -> bool:
        """Whether each view is read mirrored too, the logits averaged (``inference.mirror``)."""
        return bool((self.data.get("inference") or {}).get("mirror", False))

    @property
    def _mirror_note(self) -> str:
        return ", with mirror" if self.mirror else ""

    @property
    def task(self) -> str:
        return str(self.data["task"])

    @property
    def architecture(self) -> str:
        return str(self.data["architecture"])

    @property
    def input_size(self) -> int:
        return int(self.data["input_size"])

    @property
    def class_ids(self) -> tuple[str, ...]:
        return tuple(self.data.get("class_ids", ()))

    @property
    def preprocessing(self) -> dict[str, Any]:
        return dict(self.data.get("preprocessing", {}))

    @property
    def thresholds(self) -> VerdictThresholds:
        raw = self.data.get("thresholds") or {}
        known = {k: raw[k] for k in ("confident", "unknown_confidence", "ood_review", "ood_unknown", "between_ratio") if k in raw}
        return VerdictThresholds(**known)

    def file(self, role: str) -> Path | None:
        """Path of the file with ``role`` ("onnx", "safetensors", "openset"), if the card lists it."""
        entry = (self.data.get("files") or {}).get(role)
        if not entry:
            return None
        return self.folder / str(entry["path"])

    # --- checks -----------------------------------------------------------------------------
    def verify(self, role: str) -> Path:
        """Return the file for ``role`` after checking it exists and its sha256 matches.

        Raises:
            WeightsMissingError: the card lists no such file or it is absent.
            WeightsIntegrityError: checksum mismatch.
        """
        path = self.file(role)
        if path is None:
            raise WeightsMissingError(f"model card {self.path.name} lists no '{role}' file")
        if not path.exists():
            raise WeightsMissingError(f"{role} weights missing: {path} (listed in {self.path.name})")
        expected = str(self.data["files"][role].get("sha256", "")).lower()
        actual = sha256_of(path)
        if expected != actual:
            raise WeightsIntegrityError(
                f"{path.name}: sha256 {actual[:16]}… does not match the model card ({expected[:16]}…). "
                "The file is damaged or was replaced; reinstall the weights."
            )
        return path

    def check_classes(self, catalogue: tuple[str, ...] = VALVE_IDS) -> None:
        """An identifier's class ids must be the catalogue's, in order."""
        if self.task in ("identify", "whole-image") and self.class_ids != tuple(catalogue):
            raise WeightsIntegrityError(
                f"model card {self.path.name} classes {list(self.class_ids)} differ from the valve "
                f"catalogue {list(catalogue)}"
            )
