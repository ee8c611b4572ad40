"""The batch analysis loop that runs in a worker: load each study, ask the model, hand the
result back. The study on screen jumps the queue; one failing file never stops the batch."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ModelError, WeightsMissingError
from ..prediction import Prediction
from ..radiograph import RadiographMeta
from . import render
from .services import RadiographCache, describe_error

if TYPE_CHECKING:
    from .worker import WorkerContext

log = logging.getLogger(__name__)

HEATMAP_MAX_SIDE = 1024  # the overlay is smooth; a full-size float map per study wastes memory


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
        from ..predict import load_predictor  # heavy: kept off the start-up path
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
) -> int:
    """Emits a ``ModelStatus`` first, then one ``StudyResult`` per study; returns the count.

    With a predictor that reads batches (``predict_many``: two files at once on two cores, as
    ``valvereader classify`` does) the first study is read alone (its result soonest), the rest
    through it, up to four in flight, so a study moved to the front of the queue comes after
    those; otherwise one by one."""
    status = model()
    context.emit(status)
    predictor = status.predictor
    done = 0

    def taken():  # the queue's next studies, as they are asked for
        while (index := queue.next()) is not None:
            context.check()
            context.progress(done, queue.total, paths[index].name)
            yield index

    indices = taken()
    many = getattr(predictor, "predict_many", None)
    if many is not None:
        # The first study (the one on screen) alone, on both cores: its result comes first and
        # soonest; the streams then take the rest.
        first = next(indices, None)
        if first is not None:
            context.emit(_study_result(batch, first, *_read_one(paths[first], cache, predictor)))
            done += 1
        results = many(indices, load=lambda index: cache.get(paths[index]), with_heatmap=True,
                       heatmap_max_side=HEATMAP_MAX_SIDE)
    else:
        results = ((index, *_read_one(paths[index], cache, predictor)) for index in indices)
    try:
        for index, radiograph, outcome in results:
            done += 1
            context.emit(_study_result(batch, index, radiograph, outcome))
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
