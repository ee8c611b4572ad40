"""Accept / reject / correct, saved at once through ``ReviewStore`` next to the batch, so a
crash loses nothing already decided. Re-opening a batch restores earlier decisions."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .state import ReviewDecision, Study

if TYPE_CHECKING:
    from .main_window import MainWindow


class ReviewController:
    def __init__(self, window: MainWindow):
        self.window = window
        self.store: Any = None

    def open(self, folder: Path | None, studies: list[Study]) -> None:
        """Open the batch's review file and apply the decisions already in it."""
        self.store = None
        if folder is None:
            return
        try:
            from ..review import ReviewStore

            self.store = ReviewStore(folder)
        except Exception as exc:  # noqa: BLE001 - review keeps working in memory
            self.window.notifier.error(f"Review decisions cannot be saved in {folder}: {exc}")
            return
        for study in studies:
            record = self.store.get(study.path)
            if record is None:
                continue
            study.decision = ReviewDecision(record.decision)
            study.corrected_valve_id = record.corrected_valve_id
            study.reading = record.reading

    def decide(self, decision: ReviewDecision, corrected_valve_id: str | None = None,
               advance: bool = True) -> None:
        window = self.window
        index = window.worklist.current
        study = window.worklist.current_study
        if study is None:
            return
        if decision is ReviewDecision.ACCEPTED and study.prediction is None:
            window.notifier.warning("Nothing to accept yet: this study has no model result.")
            return
        prediction = study.prediction
        values: dict[str, Any] = {"decision": decision,
                                  "corrected_valve_id": corrected_valve_id if decision is ReviewDecision.CORRECTED else None}
        if self.store is not None:
            try:
                self.store.record(study.path, decision.value, corrected_valve_id=values["corrected_valve_id"],
                                  reading=study.reading, predicted=prediction.predicted if prediction else None,
                                  confidence=prediction.confidence if prediction else None)
            except (OSError, ValueError) as exc:
                window.notifier.error(f"Decision not saved: {exc}")
                return
        window.worklist.update(index, **values)
        window.notifier.info(f"{study.path.name}: {decision.label.lower()}")
        if decision is ReviewDecision.CORRECTED:
            window.show_result()
        elif advance:
            window.step(+1)

    def update_reading(self) -> None:
        """A reading chosen after the decision is saved with it (the last line wins)."""
        study = self.window.worklist.current_study
        if study is None or study.decision is ReviewDecision.NONE or self.store is None:
            return
        prediction = study.prediction
        try:
            self.store.record(study.path, study.decision.value, corrected_valve_id=study.corrected_valve_id,
                              reading=study.reading, predicted=prediction.predicted if prediction else None,
                              confidence=prediction.confidence if prediction else None)
        except (OSError, ValueError) as exc:
            self.window.notifier.error(f"Reading not saved: {exc}")

    def accept(self) -> None:
        self.decide(ReviewDecision.ACCEPTED)

    def reject(self) -> None:
        self.decide(ReviewDecision.REJECTED)

    def correct(self, valve_id: str) -> None:
        self.decide(ReviewDecision.CORRECTED, corrected_valve_id=valve_id, advance=False)

    def ask_correction(self) -> None:
        """Key C: open the template picker; picking a valve records the correction."""
        picker = self.window.template_panel.picker
        if self.window.worklist.current_study is None:
            return
        self.window.right_dock.setVisible(True)
        picker.setFocus()
        picker.showPopup()

    def clear(self) -> None:
        window = self.window
        study = window.worklist.current_study
        if study is None:
            return
        if self.store is not None:
            try:
                self.store.clear(study.path)
            except OSError as exc:
                window.notifier.error(f"Decision not cleared: {exc}")
                return
        window.worklist.update(window.worklist.current, decision=ReviewDecision.NONE, corrected_valve_id=None)
        window.show_result()
