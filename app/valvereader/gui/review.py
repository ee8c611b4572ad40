"""Accept / reject / correct, saved at once through ``ReviewStore`` next to the batch, so a
crash loses nothing already decided. Re-opening a batch restores earlier decisions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .models.state import ReviewDecision, Study
from .models.valves import valve_label
from .window_api import Window

# the action whose key asks again before a decision replaces another
_ACTION_OF = {ReviewDecision.ACCEPTED: "accept", ReviewDecision.REJECTED: "reject"}


def describe_decision(decision: ReviewDecision, corrected_valve_id: str | None) -> str:
    """"Accepted", "Rejected", "Corrected to Integra DP", "Not reviewed"."""
    if decision is ReviewDecision.CORRECTED and corrected_valve_id:
        return f"Corrected to {valve_label(corrected_valve_id)[0]}"
    return decision.label


def _first_lower(text: str) -> str:
    """"Corrected to Integra DP" → "corrected to Integra DP" (a valve's name keeps its capitals)."""
    return text[:1].lower() + text[1:]


class ReviewController:
    def __init__(self, window: Window):
        self.window = window
        self.store: Any = None
        # (study, decision, correction) a key asked to confirm: the same key again replaces
        self._asked: tuple[Path, ReviewDecision, str | None] | None = None
        window.worklist.changed.connect(lambda name: setattr(self, "_asked", None) if name == "current" else None)

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
            study.region = self.store.region(study.path)  # read instead of the located box
            record = self.store.get(study.path)
            if record is None:
                continue
            study.decision = ReviewDecision(record.decision)
            study.corrected_valve_id = record.corrected_valve_id
            study.reading = record.reading
            study.dial = record.dial

    def decide(self, decision: ReviewDecision, corrected_valve_id: str | None = None,
               advance: bool = True) -> None:
        """Record ``decision`` for the study on screen (the highlighted one: the worklist keeps
        it listed and highlighted until the reader moves on, whatever the filter).

        A decision never replaces a different one silently: a key (A, X) pressed on a study
        decided otherwise only says what is recorded and asks for the same key again; the
        second press replaces it and says so. A correction picked from the list is a
        deliberate choice: it replaces at once and says what it replaced. With ``advance``
        the next study in the order shown comes up (the one below it before the decision:
        a row that moves or leaves the filter does not change which study is next)."""
        window = self.window
        index = window.worklist.current
        study = window.worklist.current_study
        if study is None:
            return
        if decision is ReviewDecision.ACCEPTED and study.prediction is None:
            window.notifier.warning("Nothing to accept yet: this study has no model result.")
            return
        if window.regions.reading(index):
            window.notifier.warning(f"{study.path.name}: the model is still reading the region; decide on its result.")
            return
        corrected = corrected_valve_id if decision is ReviewDecision.CORRECTED else None
        before = describe_decision(study.decision, study.corrected_valve_id)
        replacing = study.decision is not ReviewDecision.NONE and (study.decision, study.corrected_valve_id) != (
            decision, corrected)
        confirmed = self._asked == (study.path, decision, corrected)
        self._asked = None
        if replacing and decision is not ReviewDecision.CORRECTED and not confirmed:
            self._asked = (study.path, decision, corrected)
            key = window.actions_by_name[_ACTION_OF[decision]].shortcut().toString() or "it"
            window.notifier.warning(f"{study.path.name} is already {_first_lower(before)}: press {key} again to "
                                    f"replace that with '{decision.label.lower()}'.")
            return
        target = window.worklist_panel.neighbour(+1) if advance else None
        prediction = study.prediction
        if self.store is not None:
            try:
                self.store.record(study.path, decision.value, corrected_valve_id=corrected,
                                  reading=study.reading, predicted=prediction.predicted if prediction else None,
                                  confidence=prediction.confidence if prediction else None,
                                  dial=study.dial if study.reading else None)
            except (OSError, ValueError) as exc:
                window.notifier.error(f"Decision not saved: {exc}")
                return
        window.worklist.update(index, decision=decision, corrected_valve_id=corrected)
        now = describe_decision(decision, corrected)
        if replacing:
            window.notifier.warning(f"{study.path.name}: {_first_lower(now)} (replaces '{_first_lower(before)}')")
        else:
            window.notifier.info(f"{study.path.name}: {_first_lower(now)}")
        if decision is ReviewDecision.CORRECTED:
            window.show_result()
        elif target is not None and target != index:
            window.go_to(target)

    def update_reading(self) -> None:
        """A reading chosen after the decision is saved with it (the last line wins)."""
        study = self.window.worklist.current_study
        if study is None or study.decision is ReviewDecision.NONE or self.store is None:
            return
        prediction = study.prediction
        try:
            self.store.record(study.path, study.decision.value, corrected_valve_id=study.corrected_valve_id,
                              reading=study.reading, predicted=prediction.predicted if prediction else None,
                              confidence=prediction.confidence if prediction else None,
                              dial=study.dial if study.reading else None)
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
