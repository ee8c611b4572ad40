"""Review decisions and cached results of a batch, kept next to the batch so nothing is lost.

    store = ReviewStore(batch_folder)            # <folder>/valvereader-review.jsonl
    store.record(image, "corrected", corrected_valve_id="integra_dp", predicted="codman_certas_plus",
                 confidence=0.62)
    store.get(image)                             # -> ReviewRecord | None
    store.all()                                  # -> {image path: ReviewRecord}
    store.set_region(image, Box(...))            # the valve region the reader chose (None: undo)
    store.region(image)                          # -> Box | None

Every decision is one JSON line appended and fsynced before ``record`` returns (the last
line for an image wins), so killing the program loses nothing already decided. The region the
reader chose for the model to read (instead of the located box) is kept the same way, with the
decision: each line carries the image's ``region`` ([x0, y0, x1, y1] or null), also a line of
an image not yet decided (``decision`` "cleared", which earlier versions read as undecided). On opening:
a torn last line (crash mid-write) is ignored with a warning; any other damage (a bad line
in the middle, bytes that are not UTF-8) sets the file aside as
``valvereader-review.jsonl.corrupt-<timestamp>``, a fresh file is written with every record
that could be read, and a warning is logged. Never fatal. If the batch folder cannot be
written, the review file goes to ``<config dir>/reviews/`` instead (warning logged).

``ResultCache`` does the same for predictions (``<folder>/.valvereader-results.jsonl``), so a
batch that was killed resumes where it stopped. Heatmaps are not cached (recomputed on
demand). Image paths are stored relative to the batch folder when inside it, so a batch
folder can be moved or shared.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from . import atomic
from .geometry import Box
from .prediction import Prediction, Verdict
from .settings import config_dir, set_aside

__all__ = ["RESULTS_FILE", "REVIEW_FILE", "Decision", "ResultCache", "ReviewRecord", "ReviewStore"]

log = logging.getLogger(__name__)

REVIEW_FILE = "valvereader-review.jsonl"
RESULTS_FILE = ".valvereader-results.jsonl"
Decision = Literal["accepted", "rejected", "corrected"]
DECISIONS: tuple[str, ...] = get_args(Decision)
_CLEARED = "cleared"
_KEEP = object()  # record(): the image's region stays as stored


@dataclass(frozen=True)
class ReviewRecord:
    """One reader's decision on one image.

    ``image`` is the key as stored (relative to the batch folder when inside it);
    ``corrected_valve_id`` is set for "corrected"; ``reading`` is the setting read with the
    reading aid; ``predicted``/``confidence`` are what the model said when the decision was made;
    ``region`` is the valve region the reader chose for the model to read, if any; ``dial``
    is where the reading dial stood when the reading was taken (``DIAL_KEYS``), or None.
    """

    image: str
    decision: str
    corrected_valve_id: str | None = None
    reading: str | None = None
    predicted: str | None = None
    confidence: float | None = None
    time: str = ""
    region: tuple[int, int, int, int] | None = None  # the reader's region read (None: the located box)
    dial: dict[str, Any] | None = None  # the dial's position with the reading (DIAL_KEYS)

    @property
    def final_valve_id(self) -> str | None:
        """The valve the reader settled on: the correction, the accepted prediction, or None."""
        if self.decision == "corrected":
            return self.corrected_valve_id
        if self.decision == "accepted":
            return self.predicted
        return None


def _default_location(batch: Path, filename: str) -> tuple[Path, Path]:
    """(folder that keys are relative to, file) for a batch folder, an image, or the file itself."""
    batch = batch.expanduser()
    if batch.suffix == ".jsonl" and not batch.is_dir():
        return batch.parent.resolve(), batch.resolve()
    folder = batch if batch.is_dir() else batch.parent
    folder = folder.resolve()
    return folder, folder / filename


def _writable(folder: Path) -> bool:
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


class _JsonlStore:
    """Append-only JSONL keyed by image; shared by ReviewStore and ResultCache."""

    _what = "records"

    def __init__(self, batch_folder_or_file: str | os.PathLike[str], filename: str) -> None:
        self.folder, self.path = _default_location(Path(batch_folder_or_file), filename)
        if not _writable(self.path.parent):
            digest = hashlib.sha256(str(self.path).encode()).hexdigest()[:16]
            fallback = config_dir() / "reviews" / f"{digest}-{self.path.name.lstrip('.')}"
            log.warning(
                "Cannot write %s in %s (read-only?); %s are kept in %s instead",
                self.path.name, self.path.parent, self._what, fallback,
            )
            self.path = fallback
        self._lock = threading.Lock()
        self._records: dict[str, dict[str, Any]] = {}
        self._load()

    # --- keys --------------------------------------------------------------------------------
    def key(self, image_path: str | os.PathLike[str]) -> str:
        """The stored key of ``image_path``: relative (POSIX) inside the batch folder, else absolute."""
        path = Path(image_path).expanduser()
        if not path.is_absolute():
            path = self.folder / path
        path = Path(os.path.normpath(path))
        try:
            return path.relative_to(self.folder).as_posix()
        except ValueError:
            return path.as_posix()

    # --- reading -----------------------------------------------------------------------------
    def _valid(self, entry: Any) -> bool:
        return isinstance(entry, dict) and isinstance(entry.get("image"), str)

    def _load(self) -> None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("Cannot read %s (%s); starting with no %s", self.path, exc, self._what)
            return
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", errors="replace")
            self._salvage(text, "it is not UTF-8 text")
            return
        lines = text.split("\n")
        torn_tail = not text.endswith("\n") and bool(lines[-1].strip())
        bad: list[int] = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            entry = self._parse(line)
            if entry is None:
                bad.append(number)
                continue
            self._records[entry["image"]] = entry
        if not bad:
            return
        if bad == [len(lines)] and torn_tail:
            log.warning(
                "%s: the last line was cut off (the program stopped while writing); it is ignored",
                self.path,
            )
            # Drop it now, or the next append would leave it in the middle of the file.
            self._rewrite()
            return
        self._salvage(text, f"line(s) {', '.join(map(str, bad[:5]))} cannot be read")

    def _parse(self, line: str) -> dict[str, Any] | None:
        try:
            entry = json.loads(line)
        except ValueError:
            return None
        try:
            return entry if self._valid(entry) else None
        except (TypeError, ValueError, KeyError):  # a well-formed line of the wrong shape
            return None

    def _salvage(self, text: str, reason: str) -> None:
        self._records = {}
        for line in text.split("\n"):
            entry = self._parse(line) if line.strip() else None
            if entry is not None:
                self._records[entry["image"]] = entry
        aside = set_aside(self.path)
        log.warning(
            "%s is damaged (%s); it was moved to %s and the %d readable %s were kept",
            self.path, reason, aside, len(self._records), self._what,
        )
        if aside != self.path:
            self._rewrite()

    def _rewrite(self) -> None:
        body = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in self._records.values())
        atomic.write_text(self.path, body)

    def _append(self, entry: dict[str, Any]) -> None:
        with self._lock:
            atomic.append_line(self.path, json.dumps(entry, ensure_ascii=False))
            self._records[entry["image"]] = entry

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, image_path: object) -> bool:
        return isinstance(image_path, (str, os.PathLike)) and self.key(image_path) in self._records


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ReviewStore(_JsonlStore):
    """Accept / reject / correct decisions of one batch, saved as they are made."""

    _what = "review decisions"

    def __init__(self, batch_folder_or_file: str | os.PathLike[str]) -> None:
        super().__init__(batch_folder_or_file, REVIEW_FILE)
        self._rekey_working_directory_paths()

    def _rekey_working_directory_paths(self) -> None:
        """Lines written by versions that keyed a file opened by a path relative to the working
        directory under that path inside the batch folder ("samples/x.dcm" for
        ``valvereader samples`` in the folder's parent, where the key is "x.dcm"): a relative
        key that names no file, whose part after the batch folder's own name does, is read as
        that file's, unless the file has a line of its own (written since)."""
        name = self.folder.name
        for key in list(self._records):
            parts = key.split("/")
            if name not in parts[:-1] or os.path.isabs(key) or (self.folder / key).exists():
                continue
            for i, part in enumerate(parts[:-1]):
                if part != name:
                    continue
                rest = "/".join(parts[i + 1:])
                if (self.folder / rest).is_file() and rest not in self._records:
                    self._records[rest] = {**self._records.pop(key), "image": rest}
                    break

    def _valid(self, entry: Any) -> bool:
        return super()._valid(entry) and entry.get("decision") in (*DECISIONS, _CLEARED)

    def record(
        self,
        image_path: str | os.PathLike[str],
        decision: Decision,
        corrected_valve_id: str | None = None,
        reading: str | None = None,
        predicted: str | None = None,
        confidence: float | None = None,
        region: Box | None | object = _KEEP,
        dial: dict[str, Any] | None = None,
    ) -> ReviewRecord:
        """Save a decision now (fsynced before returning) and return it. ``region``: the
        reader's region (a Box), None for the located box; left out, the image's region stays.

        Raises:
            ValueError: unknown decision, or "corrected" without ``corrected_valve_id``.
            OSError: the review file cannot be written.
        """
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(DECISIONS)}, not {decision!r}")
        if decision == "corrected" and not corrected_valve_id:
            raise ValueError("a 'corrected' decision needs the valve id the reader chose")
        key = self.key(image_path)
        kept = self.region(image_path) if region is _KEEP else region
        if kept is not None and not isinstance(kept, Box):
            raise ValueError(f"a region is a Box, not {kept!r}")
        record = ReviewRecord(
            image=key,
            decision=decision,
            corrected_valve_id=corrected_valve_id,
            reading=reading,
            predicted=predicted,
            confidence=None if confidence is None else float(confidence),
            time=_now(),
            region=None if kept is None else kept.as_tuple(),
            dial=_dial(dial),
        )
        self._append(asdict(record))
        return record

    def clear(self, image_path: str | os.PathLike[str]) -> None:
        """Undo the decision on an image (recorded as a line too, so it survives a crash); the
        reader's region stays."""
        region = self.region(image_path)
        entry: dict[str, Any] = {"image": self.key(image_path), "decision": _CLEARED, "time": _now()}
        if region is not None:
            entry["region"] = list(region.as_tuple())
        self._append(entry)

    def set_region(self, image_path: str | os.PathLike[str], region: Box | None) -> None:
        """Save the region the reader chose for the model to read (None: back to the located
        box) now, fsynced; the decision on the image, if any, stays as it is."""
        if region is not None and not isinstance(region, Box):
            raise ValueError(f"a region is a Box, not {region!r}")
        key = self.key(image_path)
        entry = dict(self._records.get(key) or {"image": key, "decision": _CLEARED})
        entry["region"] = None if region is None else list(region.as_tuple())
        entry["time"] = _now()
        self._append(entry)

    def region(self, image_path: str | os.PathLike[str]) -> Box | None:
        """The region the reader chose on ``image_path`` (decided or not), or None."""
        entry = self._records.get(self.key(image_path))
        return _region(entry.get("region")) if entry is not None else None

    def get(self, image_path: str | os.PathLike[str]) -> ReviewRecord | None:
        """The latest decision on ``image_path``, or None if none (or cleared)."""
        entry = self._records.get(self.key(image_path))
        return _to_record(entry)

    def all(self) -> dict[str, ReviewRecord]:
        """Every current decision, keyed as stored (see ``key``)."""
        out = {}
        for key, entry in self._records.items():
            record = _to_record(entry)
            if record is not None:
                out[key] = record
        return out

    def __iter__(self) -> Iterator[ReviewRecord]:
        return iter(self.all().values())


def _number(value: Any) -> float | None:
    """A finite float, or None for anything else (a hand-edited or damaged file)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if np.isfinite(number) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _region(value: Any) -> Box | None:
    """A region as stored ([x0, y0, x1, y1], whole non-negative numbers, not empty), or None for
    anything else (null, a hand-edited or damaged line)."""
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        return None
    box = Box(*value)
    return box if box.width > 0 and box.height > 0 else None


# Where the reading dial stood (gui.state.DialState): centre in view fractions, rotation and
# indicator in degrees, mirrored, radius as a fraction of half the view; optionally "view", the
# part of the film the zoomed view showed under it (centre x, y and span in film pixels).
DIAL_KEYS = ("center", "rotation", "mirrored", "indicator_deg", "scale")


def _dial(value: Any) -> dict[str, Any] | None:
    """A dial position as stored, or None for anything else (a hand-edited or damaged line)."""
    if not isinstance(value, dict):
        return None
    center = value.get("center")
    if not (isinstance(center, (list, tuple)) and len(center) == 2 and all(_number(v) is not None for v in center)):
        return None
    rotation, scale, indicator = _number(value.get("rotation")), _number(value.get("scale")), value.get("indicator_deg")
    if rotation is None or scale is None or not 0.05 <= scale <= 2.0 or not isinstance(value.get("mirrored"), bool):
        return None
    if indicator is not None and _number(indicator) is None:
        return None
    dial = {"center": [min(max(float(v), 0.0), 1.0) for v in center], "rotation": rotation % 360.0,
            "mirrored": value["mirrored"], "indicator_deg": None if indicator is None else float(indicator) % 360.0,
            "scale": scale}
    view = value.get("view")  # the zoomed view under the dial: centre x, y and span in film pixels
    if isinstance(view, (list, tuple)) and len(view) == 3 and all(_number(v) is not None for v in view) \
            and float(view[2]) > 0:
        dial["view"] = [float(v) for v in view]
    return dial


def _to_record(entry: dict[str, Any] | None) -> ReviewRecord | None:
    if entry is None or entry.get("decision") == _CLEARED:
        return None
    region = _region(entry.get("region"))
    known = {k: entry.get(k) for k in ("corrected_valve_id", "reading", "predicted", "confidence")}
    return ReviewRecord(
        image=entry["image"],
        decision=entry["decision"],
        corrected_valve_id=_text(known["corrected_valve_id"]),
        reading=_text(known["reading"]),
        predicted=_text(known["predicted"]),
        confidence=_number(known["confidence"]),
        time=str(entry.get("time", "")),
        region=None if region is None else region.as_tuple(),
        dial=_dial(entry.get("dial")),
    )


class ResultCache(_JsonlStore):
    """Predictions of a batch (without heatmaps), so a killed batch resumes.

    An entry is used only if the image file's size and modification time and the model
    name are unchanged, and, where the reader asks with them, the weights that made it (a
    predictor's ``weights_key``: a new locator or verification keeps the identifier's name).
    """

    _what = "cached results"

    def __init__(self, batch_folder_or_file: str | os.PathLike[str]) -> None:
        super().__init__(batch_folder_or_file, RESULTS_FILE)

    def _valid(self, entry: Any) -> bool:
        return (
            super()._valid(entry)
            and isinstance(entry.get("valve_ids"), list)
            and isinstance(entry.get("probabilities"), list)
            and len(entry["valve_ids"]) == len(entry["probabilities"])
            and isinstance(entry.get("verdict"), str)
            and entry["verdict"] in {v.value for v in Verdict}
        )

    def _stamp(self, image_path: Path) -> list[int] | None:
        try:
            st = image_path.stat()
        except OSError:
            return None
        return [int(st.st_size), int(st.st_mtime_ns)]

    def put(self, image_path: str | os.PathLike[str], prediction: Prediction, weights: str = "", **extra: Any) -> None:
        """Save ``prediction`` for ``image_path`` now (fsynced), with the ``weights`` that made it.
        ``extra``: more JSON values kept with it (the viewer's thumbnail and attention map), read
        back with ``entry``."""
        path = Path(image_path)
        entry: dict[str, Any] = {
            "image": self.key(path),
            "stamp": self._stamp(self.folder / path if not path.is_absolute() else path),
            "model": prediction.model,
            "pipeline": prediction.pipeline,
            "valve_ids": list(prediction.valve_ids),
            "probabilities": [float(p) for p in np.asarray(prediction.probabilities).ravel()],
            "verdict": prediction.verdict.value,
            "ood_score": None if prediction.ood_score is None else float(prediction.ood_score),
            "verdict_reason": prediction.verdict_reason,
            "smoothed": bool(prediction.smoothed),
            "inverted": bool(prediction.inverted),
            "box": None if prediction.box is None else list(prediction.box.as_tuple()),
            "box_source": prediction.box_source,
            "film_region": bool(prediction.film_region),
            "look_alikes": list(prediction.look_alikes),
            "weights": weights,
            "time": _now(),
        }
        entry.update({key: value for key, value in extra.items() if key not in entry})
        self._append(entry)

    def entry(self, image_path: str | os.PathLike[str], model: str | None = None, weights: str | None = None) -> dict[str, Any] | None:
        """The stored line for ``image_path`` as a dict, or None if absent, stale (the file's
        size or modification time changed) or from another model (or, given ``weights``, other
        weights)."""
        path = Path(image_path)
        entry = self._records.get(self.key(path))
        if entry is None:
            return None
        if model is not None and entry.get("model") != model:
            return None
        if weights is not None and entry.get("weights") != weights:
            return None
        absolute = self.folder / path if not path.is_absolute() else path
        stamp = self._stamp(absolute)
        if stamp is None or entry.get("stamp") != stamp:  # a file that cannot be checked is read again
            return None
        return entry

    def get(self, image_path: str | os.PathLike[str], model: str | None = None, weights: str | None = None) -> Prediction | None:
        """The cached prediction, or None if absent, stale (file changed) or from another model
        (or, given ``weights``, other weights)."""
        entry = self.entry(image_path, model, weights)
        if entry is None:
            return None
        box = entry.get("box")
        try:
            probabilities = np.asarray(entry["probabilities"], dtype=np.float32)
            if probabilities.ndim != 1 or not np.all(np.isfinite(probabilities)):
                return None
            return Prediction(
                valve_ids=tuple(str(v) for v in entry["valve_ids"]),
                probabilities=probabilities,
                verdict=Verdict(entry["verdict"]),
                ood_score=_number(entry.get("ood_score")),
                box=Box(*(int(v) for v in box)) if isinstance(box, list) and len(box) == 4 else None,
                model=str(entry.get("model", "")),
                pipeline=str(entry.get("pipeline", "")),
                verdict_reason=str(entry.get("verdict_reason", "")),
                smoothed=entry.get("smoothed") is True,
                inverted=entry.get("inverted") is True,
                box_source=str(entry.get("box_source", "located")),
                film_region=entry.get("film_region") is True,
                look_alikes=tuple(str(v) for v in entry.get("look_alikes") or ()),
            )
        except (TypeError, ValueError, OverflowError):
            return None

    def images(self) -> list[str]:
        """Keys of every cached image."""
        return list(self._records)
