"""A film read against a prior of the same patient: did the valve's setting change (after an
MRI, for example)? ``comparison`` says it in words for the window and the report;
``ComparisonPage`` draws both films' valves, readings and dates side by side on a PDF page
that follows the film's own report page (``ReportContent.prior``).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ..catalogue import display_name
from ..prediction import Verdict
from .content import ReportContent
from .layout import MARGIN, MUTED, PAGE_H, PAGE_W

SAME = "same"
DIFFERENT_SETTING = "different setting"
DIFFERENT_VALVE = "different valve"
NOT_READ = "not read"


def named_valve(content: ReportContent) -> str | None:
    """The valve a film's report names: the reader's correction first, else the model's (none
    when the model found no valve or called it unknown)."""
    review = content.review or ""
    if review.startswith("Corrected to "):
        return review[len("Corrected to "):]
    if content.prediction.verdict in (Verdict.NO_VALVE, Verdict.UNKNOWN):
        return None
    return display_name(content.prediction.predicted)


def comparison(current: ReportContent, prior: ReportContent) -> tuple[str, str]:
    """(outcome, sentence): SAME, DIFFERENT_SETTING, DIFFERENT_VALVE or NOT_READ, and what it
    means for the reader. The model reads valves, not settings: a setting is only compared
    where the reader read it on both films."""
    this_valve, prior_valve = named_valve(current), named_valve(prior)
    if this_valve and prior_valve and this_valve != prior_valve:
        return DIFFERENT_VALVE, (f"The valves named differ ({this_valve} on this film, {prior_valve} on the prior): "
                                 "check both identifications before comparing settings.")
    if not current.reading or not prior.reading:
        missing = " and ".join(name for name, content in (("this film", current), ("the prior", prior))
                               if not content.reading)
        return NOT_READ, f"No reading on {missing}: read the setting on both films with the dial to compare them."
    if current.reading == prior.reading:
        return SAME, (f"The same reading on both films ({current.reading}): the setting did not change between "
                      "them, as far as these readings go. Check both by eye.")
    return DIFFERENT_SETTING, (f"The readings differ: {current.reading} on this film, {prior.reading} on the prior. "
                               "The setting may have changed (an MRI or a magnet can move it): confirm on both films "
                               "and with the implant records.")


def study_day(content: ReportContent) -> date | None:
    text = (content.meta.study_date or "").strip()
    if len(text) == 8 and text.isdigit():
        try:
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            return None
    return None


def interval_text(current: ReportContent, prior: ReportContent) -> str | None:
    """"The prior is 123 days earlier", from the study dates (an interval names no one, so it
    stays in a de-identified report), or None without both dates."""
    this, before = study_day(current), study_day(prior)
    if this is None or before is None:
        return None
    days = (this - before).days
    if days == 0:
        return "Both films are from the same day."
    return f"The prior is {abs(days)} day{'s' if abs(days) != 1 else ''} {'earlier' if days > 0 else 'later'}."


def side_lines(content: ReportContent) -> list[tuple[str, str]]:
    """(label, value) lines under a film's valve on the comparison page."""
    prediction = content.prediction
    pairs = []
    if not content.deidentify:
        pairs.append(("Study date", _date(content.meta.study_date) or "not in the file"))
        if content.source_name:
            pairs.append(("Image", content.source_name))
    pairs.append(("Valve", named_valve(content) or prediction.verdict.label))
    if prediction.verdict is Verdict.NO_VALVE:
        pairs.append(("Result", prediction.verdict.label))
    else:
        pairs.append(("Result", f"{prediction.verdict.label}, {prediction.confidence:.0%}"))
    pairs.append(("Reading", content.reading or "not read"))
    if content.review:
        pairs.append(("Review", content.review))
    return pairs


def _date(value: str | None) -> str | None:
    text = (value or "").strip()
    if len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return text or None


OUTCOME_COLOURS = {SAME: (0.13, 0.50, 0.28), DIFFERENT_SETTING: (0.70, 0.16, 0.16),
                   DIFFERENT_VALVE: (0.70, 0.16, 0.16), NOT_READ: (0.42, 0.44, 0.48)}


def draw_comparison(page: Any, prior: ReportContent) -> None:
    """Draw the comparison page on ``page`` (a ``pdf._Page`` of the current film)."""
    current = page.content
    top = PAGE_H - MARGIN
    y = page.header(top)
    y = page.disclaimer_band(y - 8)
    y = page.identity(y - 14)
    y -= 22
    page.text(MARGIN, y, "Comparison with a prior film", 13, bold=True)
    interval = interval_text(current, prior)
    if interval:
        page.text(PAGE_W - MARGIN, y, interval, 9, colour=MUTED, align="right")
    y -= 12
    outcome, sentence = comparison(current, prior)
    from reportlab.lib.utils import simpleSplit

    lines = simpleSplit(sentence, page.bold, 9.5, PAGE_W - 2 * MARGIN - 20)
    box_h = 14.0 + 12.35 * len(lines)
    page.c.setFillColorRGB(*OUTCOME_COLOURS[outcome])
    page.c.roundRect(MARGIN, y - box_h, PAGE_W - 2 * MARGIN, box_h, 4, stroke=0, fill=1)
    page.wrapped(MARGIN + 10, y - 15, sentence, PAGE_W - 2 * MARGIN - 20, 9.5, bold=True, colour=(1, 1, 1))
    y -= box_h + 18
    column = (PAGE_W - 2 * MARGIN - 18) / 2
    side = min(column, 250.0)
    bottom_text = y
    for i, (title, content) in enumerate((("This film", current), ("Prior film", prior))):
        x = MARGIN + i * (column + 18)
        page.heading(x, y, title)
        if content.valve_crop_rgb is not None:
            page.picture(content.valve_crop_rgb, x, y - 8 - side, side, side)
        else:
            page.placeholder(x, y - 8 - side, side, side, "no valve region")
        ty = y - 8 - side - 16
        for label, value in side_lines(content):
            page.text(x, ty, label, 8, colour=MUTED)
            ty = page.wrapped(x + 66, ty, value, column - 66, 9, bold=label in ("Valve", "Reading"))
            ty -= 2
        bottom_text = min(bottom_text, ty)
    page.wrapped(MARGIN, bottom_text - 14, "Each film's valve as the window shows it (the model's region, the "
                 "reader's magnification and window); the readings are the reader's, taken with the dial on each "
                 "film. The model does not read settings.", PAGE_W - 2 * MARGIN, 8, colour=MUTED)
    page.footer()
