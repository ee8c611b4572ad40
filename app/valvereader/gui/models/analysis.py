"""The batch analysis loop that runs in a worker: load each study, ask the model, hand the
result back. The study on screen jumps the queue; one failing file never stops the batch."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ...errors import ModelError, WeightsMissingError
from ...prediction import Prediction
from ...radiograph import RadiographMeta
from . import render
from .services import RadiographCache, describe_error

log = logging.getLogger(__name__)

HEATMAP_MAX_SIDE = 1024  # the overlay is smooth; a full-size float map per study wastes memory


class WorkerContext(Protocol):
    """What the loop needs of the worker it runs in (``gui.worker.WorkerContext`` has it):
    cancel checks, progress and partial results."""

    @property
    def cancelled(self) -> bool: ...

    def check(self) -> None: ...

    def progress(self, done: int, total: int, what: str = "") -> None: ...

    def emit(self, value: object) -> None: ...


class AnalysisQueue:
    """Indices still to analyse, in order; ``prioritise`` moves one to the front."""

    def __init__(self, indices: list[int]):
        self._pending = list(indices)
        self._lock = threading.Lock()
        self.total = len(indices)

    def prioritise(self, index: int) -> None:
        with self._lock:
            if index in self._pending:
                self._pending.remove(index)
                self._pending.insert(0, index)

    def next(self) -> int | None:
        with self._lock:
            return self._pending.pop(0) if self._pending else None

    @property
    def remaining(self) -> int:
        with self._lock:
            return len(self._pending)


@dataclass
class StudyResult:
    batch: int
    index: int
    thumbnail: np.ndarray | None
    meta: RadiographMeta | None
    prediction: Prediction | None
    error: str | None


@dataclass
class ModelStatus:
    """The predictor once loaded, or why there is none (shown in the result panel)."""

    predictor: Any | None
    message: str
    headline: str = "No model installed"


def load_model(weights_dir: Path | None, device: str | None) -> ModelStatus:
    try:
        from ...inference.predictor import load_predictor  # heavy: kept off the start-up path
    except ImportError as exc:
        return ModelStatus(None, f"The inference module cannot be imported: {exc}")
    try:
        predictor = load_predictor(weights_dir, device)
    except WeightsMissingError as exc:
        return ModelStatus(None, str(exc))
    except ModelError as exc:  # damaged weights, wrong classes, unreadable card
        return ModelStatus(None, str(exc), "Model cannot be used")
    return ModelStatus(predictor, getattr(predictor, "model_name", "model"))


class SharedModel:
    """The model, loaded once by whichever thread asks first: the start-up preload (the model
    is ready by the time a reader has chosen a file) or the first analysis. A thread that asks
    while a load runs waits for it instead of loading a second copy. A failed load is not
    kept: the next call tries again (weights installed or repaired since)."""

    def __init__(self, loader: Callable[[], ModelStatus]):
        self._loader = loader
        self._lock = threading.Lock()
        self._loaded: ModelStatus | None = None

    def __call__(self) -> ModelStatus:
        with self._lock:
            if self._loaded is not None:
                return self._loaded
            status = self._loader()
            if status.predictor is not None:
                self._loaded = status
            return status

    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    def preload(self, first: Callable[[], object] | None = None,
                then: Callable[[ModelStatus], object] | None = None) -> threading.Thread:
        """Start loading on a thread of its own (not the worker pool, whose two threads open
        and analyse files), after ``first`` and before ``then(status)`` (other start-up work
        for that thread). Its failure is left for the analysis to report."""

        def load() -> None:
            try:
                if first is not None:
                    first()
                status = self()
                if then is not None:
                    then(status)
            except Exception as exc:  # noqa: BLE001 - the analysis calls again and reports it
                log.debug("model preload failed: %s", exc)

        thread = threading.Thread(target=load, name="valvereader-model-preload")
        thread.start()
        return thread


def _shrink(prediction: Prediction) -> Prediction:
    heatmap = prediction.heatmap
    if heatmap is None or max(heatmap.shape) <= HEATMAP_MAX_SIDE:
        return prediction
    step = int(np.ceil(max(heatmap.shape) / HEATMAP_MAX_SIDE))
    return replace(prediction, heatmap=np.ascontiguousarray(heatmap[::step, ::step]))


def analyse_batch(
    context: WorkerContext,
    batch: int,
    paths: list[Path],
    queue: AnalysisQueue,
    cache: RadiographCache,
    model: Callable[[], ModelStatus],
    results: Any | None = None,
) -> int:
    """Emits a ``ModelStatus`` first, then one ``StudyResult`` per study; returns the count.

    ``results`` (a ``review.ResultCache``, the batch's ``.valvereader-results.jsonl``): a study
    whose file has the size and modification time of a kept result by the same model is not
    read again (its result, thumbnail and attention map come from there); every new result
    is kept there as it comes.

    With a predictor that reads batches (``predict_many``: two files at once on two cores, as
    ``valvereader classify`` does) the first study is read alone (its result soonest), the rest
    through it, up to four in flight, so a study moved to the front of the queue comes after
    those; otherwise one by one."""
    status = model()
    context.emit(status)
    predictor = status.predictor
    done = 0

    model_name = str(getattr(predictor, "model_name", "") or "")
    weights = str(getattr(predictor, "weights_key", "") or "")  # kept results of other weights are read again
    keeping = results if predictor is not None and model_name else None

    def taken():  # the queue's next studies not kept from before, as they are asked for
        nonlocal done
        while (index := queue.next()) is not None:
            context.check()
            context.progress(done, queue.total, paths[index].name)
            kept = kept_result(keeping, paths[index], model_name, weights) if keeping is not None else None
            if kept is not None:
                done += 1
                context.emit(StudyResult(batch, index, kept[0], None, kept[1], None))
                continue
            yield index

    def emit(index: int, radiograph: Any | None, outcome: Prediction | Exception | None) -> None:
        result = _study_result(batch, index, radiograph, outcome)
        if keeping is not None and result.prediction is not None:
            keep_result(keeping, paths[index], radiograph, result.prediction, result.thumbnail, weights)
        context.emit(result)

    indices = taken()
    many = getattr(predictor, "predict_many", None)
    if many is not None:
        # The first study (the one on screen) alone, on both cores: its result comes first and
        # soonest; the streams then take the rest.
        first = next(indices, None)
        if first is not None:
            emit(first, *_read_one(paths[first], cache, predictor))
            done += 1
        results = many(indices, load=lambda index: cache.get(paths[index]), with_heatmap=True,
                       heatmap_max_side=HEATMAP_MAX_SIDE)
    else:
        results = ((index, *_read_one(paths[index], cache, predictor)) for index in indices)
    try:
        for index, radiograph, outcome in results:
            done += 1
            emit(index, radiograph, outcome)
            context.check()
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()  # a cancelled batch: the files in flight finish, no new one starts
    context.progress(done, queue.total, "")
    return done


def _read_one(path: Path, cache: RadiographCache, predictor: Any | None
              ) -> tuple[Any | None, Prediction | Exception | None]:
    """(radiograph or None, its prediction, or the exception that stopped loading or predicting;
    None without a model)."""
    radiograph = None
    try:
        radiograph = cache.get(path)
        if predictor is None:
            return radiograph, None
        return radiograph, predictor.predict(radiograph, with_heatmap=True, heatmap_max_side=HEATMAP_MAX_SIDE)
    except Exception as exc:  # noqa: BLE001 - shown on the study; the batch goes on
        return radiograph, exc


def _study_result(batch: int, index: int, radiograph: Any | None, outcome: Prediction | Exception | None) -> StudyResult:
    thumbnail = meta = prediction = error = None
    try:
        if radiograph is not None:
            thumbnail, meta = render.thumbnail(radiograph.pixels), radiograph.meta
        if isinstance(outcome, Exception):
            error = describe_error(outcome)
        elif outcome is not None:
            prediction = _shrink(outcome)
    except Exception as exc:  # noqa: BLE001 - shown on the study; the batch goes on
        error = describe_error(exc)
    return StudyResult(batch, index, thumbnail, meta, prediction, error)


def open_results(folder: Path | None) -> Any | None:
    """The batch's kept results (``<folder>/.valvereader-results.jsonl``; a folder that cannot
    be written keeps them in the config folder), or None without a folder or when even that
    fails (the batch is then read as if new)."""
    if folder is None:
        return None
    try:
        from ...review import ResultCache

        return ResultCache(folder)
    except Exception as exc:  # noqa: BLE001 - results are then not kept; nothing else changes
        log.warning("results of %s cannot be kept: %s", folder, exc)
        return None


KEPT_ATTENTION_SIDE = 32  # the attention map is kept at most this many cells a side (it is smooth)


def kept_result(results: Any, path: Path, model_name: str, weights: str = "") -> tuple[np.ndarray | None, Prediction] | None:
    """(thumbnail, prediction with its attention map) kept for ``path`` by ``model_name`` (and,
    where given, the same ``weights``: the predictor's ``weights_key``), or None when there is
    none or the file changed since; nothing is read from the image."""
    try:
        entry = results.entry(path, model_name, weights or None)
        prediction = results.get(path, model_name, weights or None) if entry is not None else None
    except (OSError, ValueError) as exc:
        log.warning("kept result for %s unusable: %s", path, exc)
        return None
    if entry is None or prediction is None:
        return None
    try:
        thumbnail = _decode_thumbnail(entry.get("thumbnail"))
        attention = np.asarray(entry.get("attention") or [], dtype=np.float32)
        region, shape = entry.get("attention_region"), entry.get("image_shape")
        if attention.ndim == 2 and attention.size and isinstance(region, list) and isinstance(shape, list):
            from ...explain import place_map
            from ...geometry import Box

            rows, cols = int(shape[0]), int(shape[1])
            step = max(1, int(np.ceil(max(rows, cols) / HEATMAP_MAX_SIDE)))
            prediction.heatmap = place_map(np.clip(attention, 0, 1), Box(*(int(v) for v in region)), (rows, cols), step)
            prediction.image_shape = (rows, cols)
    except (TypeError, ValueError, OverflowError, OSError) as exc:  # a damaged line: its result still counts
        log.debug("kept thumbnail or attention of %s unreadable: %s", path, exc)
        thumbnail = None
    return thumbnail, prediction


def keep_result(results: Any, path: Path, radiograph: Any | None, prediction: Prediction,
                thumbnail: np.ndarray | None, weights: str = "") -> None:
    """Keep ``prediction`` for ``path`` with the worklist's thumbnail, a small copy of the
    attention map and the weights that made it; a file that cannot be written is logged, never
    stops the batch."""
    extra: dict[str, Any] = {}
    if thumbnail is not None:
        extra["thumbnail"] = _encode_thumbnail(thumbnail)
    heatmap = prediction.heatmap
    shape = radiograph.shape if radiograph is not None else prediction.image_shape
    if heatmap is not None and heatmap.size and shape is not None:
        from PIL import Image

        rows, cols = heatmap.shape
        scale = KEPT_ATTENTION_SIDE / max(rows, cols)
        small = Image.fromarray(heatmap.astype(np.float32), mode="F").resize(
            (max(1, round(cols * scale)), max(1, round(rows * scale))), Image.Resampling.BOX)
        extra["attention"] = np.round(np.asarray(small), 3).tolist()
        extra["attention_region"] = [0, 0, int(shape[1]), int(shape[0])]
        extra["image_shape"] = [int(shape[0]), int(shape[1])]
    try:
        results.put(path, prediction, weights, **extra)
    except (OSError, ValueError) as exc:
        log.warning("result for %s not kept: %s", path, exc)


def _encode_thumbnail(thumbnail: np.ndarray) -> str:
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(thumbnail), "L").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _decode_thumbnail(text: Any) -> np.ndarray | None:
    if not isinstance(text, str) or not text:
        return None
    import base64
    import io

    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(text, validate=True))) as image:
        return np.ascontiguousarray(np.asarray(image.convert("L")))
