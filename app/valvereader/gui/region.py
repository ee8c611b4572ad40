"""The valve region chosen by the reader: a rectangle drawn with the region tool (V) or a
valve-sized square from a double-click is read by the model instead of the located box, exactly
as a located box is read (``Predictor.predict(region=...)``). The result panel, verdict,
attention map, zoomed valve, dial and template follow; the region is saved with the review
decision (``ReviewStore.set_region``, fsynced) as soon as it has been read, and read again when
the batch is reopened; "back to the located box" undoes it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ModelError
from ..geometry import Box
from ..prediction import Prediction
from .models.analysis import HEATMAP_MAX_SIDE, _shrink
from .models.state import ReviewDecision
from .models.valves import valve_label
from .window_api import Window

if TYPE_CHECKING:
    from .worker import WorkerContext


class RegionController:
    def __init__(self, window: Window):
        self.window = window
        # study index -> the request whose answer counts (a later region replaces an earlier one)
        self._asked: dict[int, int] = {}
        self._requests = 0
        window.canvas.region_chosen.connect(self.choose)
        window.result_panel.back_requested.connect(self.back_to_located)

    # --- the reader's actions -------------------------------------------------------------
    def choose(self, region: Box) -> None:
        """Read ``region`` of the study on screen and save it with the study's decision."""
        window = self.window
        index, study = window.worklist.current, window.worklist.current_study
        if study is None or window.canvas.radiograph is None:
            return
        window.actions_by_name["region"].setChecked(False)  # one region per use of the tool
        window.notifier.info(f"{study.path.name}: reading the region you chose "
                             f"({region.width}×{region.height} px at {region.x0}, {region.y0})")
        window.result_panel.show_message("Analysing…", "the region you chose")
        self._read(index, region, save=True)

    def back_to_located(self) -> None:
        """Forget the reader's region of the study on screen: the located box is read again."""
        window = self.window
        index, study = window.worklist.current, window.worklist.current_study
        if study is None:
            return
        pending = self._asked.pop(index, None) is not None  # a region read under way no longer counts
        if study.region is None and not study.region_by_reader:
            window.notifier.info("The region is not read: the model reads the located box." if pending else
                                 "The model already reads the located box.")
            if pending:
                window.show_result()
            return
        self._save(study.path, None)
        window.notifier.info(f"{study.path.name}: back to the located box")
        located = study.located_prediction
        if located is not None:
            window.worklist.update(index, region=None, prediction=located, located_prediction=None)
            self._tell_if_decided_otherwise(index)
            window.show_result()
            return
        window.worklist.update(index, region=None)
        window.result_panel.show_message("Analysing…", "the located box")
        self._read(index, None)

    # --- a batch opened with regions saved ---------------------------------------------------
    def arrived(self, index: int, prediction: Prediction | None) -> Prediction | None:
        """The batch analysis's (located) result for study ``index``: where the reader chose a
        region earlier, it is kept aside and the region is read (the study shows that result
        once read); else it is the study's result."""
        study = self.window.worklist.studies[index]
        if prediction is None or study.region is None:
            return prediction
        study.located_prediction = prediction
        self._read(index, study.region)
        return None

    # --- work ----------------------------------------------------------------------------------
    def _save(self, path: Any, region: Box | None) -> None:
        store = self.window.review.store
        if store is None:
            return
        try:
            store.set_region(path, region)
        except (OSError, ValueError) as exc:
            self.window.notifier.error(f"The region is used but not saved: {exc}")

    def reading(self, index: int) -> bool:
        """A region (or the located box) of study ``index`` is being read: its result is to come."""
        return index in self._asked

    def _read(self, index: int, region: Box | None, save: bool = False) -> None:
        """Read ``region`` of study ``index`` (None: locate) in a worker; with ``save`` the region
        is saved with the study's decision once it has been read."""
        window = self.window
        study = window.worklist.studies[index]
        self._requests += 1
        request = self._asked[index] = self._requests
        batch = window.batch
        path = study.path

        def read(context: WorkerContext) -> Prediction:
            status = window.model()
            if status.predictor is None:
                raise ModelError(status.message)
            radiograph = window.cache.get(path)
            return _shrink(status.predictor.predict(radiograph, with_heatmap=True, heatmap_max_side=HEATMAP_MAX_SIDE,
                                                    region=region))

        window.start_worker(read, returned=lambda prediction: self._done(batch, index, request, region, prediction,
                                                                         save),
                            errored=lambda exc: self._failed(batch, index, request),
                            what=f"{path.name}: the region could not be read" if region else path.name)

    def _current(self, batch: int, index: int, request: int) -> bool:
        return batch == self.window.batch and self._asked.get(index) == request

    def _done(self, batch: int, index: int, request: int, region: Box | None, prediction: Prediction,
              save: bool) -> None:
        if not self._current(batch, index, request):
            return
        del self._asked[index]
        study = self.window.worklist.studies[index]
        if save:
            self._save(study.path, region)
        if region is None:
            self.window.worklist.update(index, prediction=prediction, region=None, located_prediction=None, error=None)
        else:
            located = study.located_prediction
            if located is None and study.prediction is not None and study.prediction.box_source != "reader":
                located = study.prediction
            self.window.worklist.update(index, prediction=prediction, region=region, located_prediction=located,
                                        error=None)
        self._tell_if_decided_otherwise(index)
        if index == self.window.worklist.current:
            self.window.show_result()

    def _tell_if_decided_otherwise(self, index: int) -> None:
        """An accepted result that the new reading no longer names stays recorded as it was
        (the valve accepted), and the reader is told so: nothing is changed behind their back."""
        study = self.window.worklist.studies[index]
        store = self.window.review.store
        if study.decision is not ReviewDecision.ACCEPTED or store is None or study.prediction is None:
            return
        record = store.get(study.path)
        accepted = record.predicted if record is not None else None
        if accepted and accepted != study.prediction.named:
            self.window.notifier.warning(
                f"{study.path.name}: you accepted {valve_label(accepted)[0]}, which the result now shown does not "
                "name; that decision stays as recorded: accept this result (A) or correct it (C).")

    def _failed(self, batch: int, index: int, request: int) -> None:
        """The error is in the status line (the worker's); the study shows what it had."""
        if not self._current(batch, index, request):
            return
        del self._asked[index]
        study = self.window.worklist.studies[index]
        if study.prediction is None and study.located_prediction is not None:  # reopened: the located result
            self.window.worklist.update(index, prediction=study.located_prediction)
        if index == self.window.worklist.current:
            self.window.show_result()
