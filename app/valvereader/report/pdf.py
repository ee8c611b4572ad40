"""One-page A4 PDF report (and a multi-page worklist of such pages) drawn with reportlab.

Page, top to bottom: header (program, date), the decision-support line, patient and study
(or a de-identification note), the view with its "model attention" overlay beside the
result (verdict in words, numbers, probability of every class), then the zoomed valve, the
template diagram (vector, through svglib) and its reading notes, and a footer repeating
the model, version and disclaimer. The document metadata never names the patient.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import atomic
from ..catalogue import display_name, load_catalogue
from ..errors import TemplateError
from ..prediction import REASON_NOT_RADIOGRAPH, Verdict, verdict_meaning
from .compare import draw_comparison
from .content import ATTENTION_LABEL, NO_VALVE_NEXT, PROGRAM, ReportContent
from .fonts import font_path
from .layout import INK, MARGIN, MUTED, PAGE_H, PAGE_W, PANEL, RULE

log = logging.getLogger(__name__)

VERDICT_COLOURS = {
    Verdict.CONFIDENT: (0.13, 0.50, 0.28),
    Verdict.REVIEW: (0.78, 0.47, 0.05),
    Verdict.UNKNOWN: (0.70, 0.16, 0.16),
    Verdict.NO_VALVE: (0.33, 0.36, 0.42),
}
MAX_IMAGE_SIDE = 1200  # px; about 300 dpi at the printed size
JPEG_QUALITY = 88  # pictures go in as JPEG (a worklist of 20 studies: a few MB, not 26)


def _fonts() -> tuple[str, str]:
    """(regular, bold) font names, registering a Unicode TrueType font once."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    regular, bold = font_path(False), font_path(True)
    if regular is None or bold is None:
        return "Helvetica", "Helvetica-Bold"
    if "VR-Sans" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("VR-Sans", str(regular)))
        pdfmetrics.registerFont(TTFont("VR-Sans-Bold", str(bold)))
    return "VR-Sans", "VR-Sans-Bold"


def _image_reader(rgb: np.ndarray) -> Any:
    from PIL import Image
    from reportlab.lib.utils import ImageReader

    image = Image.fromarray(rgb, "RGB")
    if max(image.size) > MAX_IMAGE_SIDE:
        image.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE), Image.Resampling.LANCZOS)
    # reportlab embeds a JPEG as it is (DCTDecode); a PIL image would go in as deflated pixels.
    # No chroma subsampling: the overlay's colours and the thin box stay crisp.
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    buffer.seek(0)
    return ImageReader(buffer)


class _Page:
    """Draws one report page on a reportlab canvas."""

    def __init__(self, canvas: Any, content: ReportContent, number: int, total: int) -> None:
        self.c = canvas
        self.content = content
        self.number, self.total = number, total
        self.font, self.bold = _fonts()

    # --- primitives --------------------------------------------------------------------------
    def text(self, x: float, y: float, text: str, size: float = 8.5, bold: bool = False,
             colour: tuple[float, float, float] = INK, align: str = "left") -> None:
        self.c.setFont(self.bold if bold else self.font, size)
        self.c.setFillColorRGB(*colour)
        if align == "right":
            self.c.drawRightString(x, y, text)
        elif align == "centre":
            self.c.drawCentredString(x, y, text)
        else:
            self.c.drawString(x, y, text)

    def wrapped(self, x: float, y: float, text: str, width: float, size: float = 8.0,
                bold: bool = False, colour: tuple[float, float, float] = INK,
                leading: float | None = None, bottom: float = 0.0) -> float:
        """Draw ``text`` wrapped to ``width``; stop (with an ellipsis) above ``bottom``. Returns the next y."""
        from reportlab.lib.utils import simpleSplit

        leading = leading or size * 1.3
        lines = simpleSplit(text, self.bold if bold else self.font, size, width)
        for i, line in enumerate(lines):
            if y - leading < bottom and i < len(lines) - 1:
                self.text(x, y, line.rstrip() + " …", size, bold, colour)
                return y - leading
            self.text(x, y, line, size, bold, colour)
            y -= leading
        return y

    def rule(self, y: float, x0: float = MARGIN, x1: float = PAGE_W - MARGIN) -> None:
        self.c.setStrokeColorRGB(*RULE)
        self.c.setLineWidth(0.6)
        self.c.line(x0, y, x1, y)

    def heading(self, x: float, y: float, text: str) -> None:
        self.text(x, y, text.upper(), 7.5, bold=True, colour=MUTED)

    def picture(self, rgb: np.ndarray, x: float, y: float, w: float, h: float,
                background: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> tuple[float, float, float, float]:
        """Fit ``rgb`` into the box (x, y = lower left) on a dark ground; returns the drawn rectangle."""
        self.c.setFillColorRGB(*background)
        self.c.rect(x, y, w, h, stroke=0, fill=1)
        rows, cols = rgb.shape[:2]
        scale = min(w / cols, h / rows)
        dw, dh = cols * scale, rows * scale
        dx, dy = x + (w - dw) / 2, y + (h - dh) / 2
        self.c.drawImage(_image_reader(rgb), dx, dy, dw, dh)
        return dx, dy, dw, dh

    # --- sections ----------------------------------------------------------------------------
    def draw(self) -> None:
        top = PAGE_H - MARGIN
        y = self.header(top)
        y = self.disclaimer_band(y - 8)
        y = self.identity(y - 14)
        y = self.main_row(y - 10)
        y = self.probability_table(y - 8)
        self.lower_row(y - 10, MARGIN + 34)
        self.footer()

    def header(self, top: float) -> float:
        from reportlab.pdfbase.pdfmetrics import stringWidth

        content = self.content
        self.text(MARGIN, top - 14, PROGRAM, 16, bold=True)
        self.text(MARGIN, top - 28, "Shunt valve identification report", 9.5, colour=MUTED)
        if content.study_text:  # the worklist CSV's "study N", beside the title, clear of the model's name
            self.text(MARGIN + stringWidth(PROGRAM, self.bold, 16) + 12, top - 14, content.study_text, 11, bold=True,
                      colour=MUTED)
        right = PAGE_W - MARGIN
        self.text(right, top - 12, f"Created {content.created_text()}", 8.5, colour=MUTED, align="right")
        room = right - (MARGIN + stringWidth("Shunt valve identification report", self.font, 9.5) + 14)
        model, size = self._fitted_line(f"Model: {content.model_title}", room, 8.5)  # clear of the subtitle
        self.text(right, top - 24, model, size, colour=MUTED, align="right")
        self.rule(top - 38)
        return top - 38

    def disclaimer_band(self, top: float) -> float:
        height = 18.0
        self.c.setFillColorRGB(1.0, 0.95, 0.82)
        self.c.setStrokeColorRGB(0.90, 0.74, 0.35)
        self.c.setLineWidth(0.6)
        self.c.roundRect(MARGIN, top - height, PAGE_W - 2 * MARGIN, height, 3, stroke=1, fill=1)
        self.text(PAGE_W / 2, top - 12.5, self.content.disclaimer, 9, bold=True,
                  colour=(0.45, 0.28, 0.0), align="centre")
        return top - height

    def identity(self, top: float) -> float:
        content = self.content
        left = content.identity_lines()
        if not left:
            left = [("Patient", "de-identified: name, ID, dates and file name left out")]
        right = content.acquisition_lines()
        y = top
        column = MARGIN + 270
        for label, value in left:
            self.text(MARGIN, y, label, 8, colour=MUTED)
            y = self.wrapped(MARGIN + 62, y, str(value), column - MARGIN - 70, 8.5, leading=11,
                             bold=label == "Patient" and not content.deidentify)
            y -= 1
        left_end, y = y, top
        for label, value in right:
            self.text(column, y, label, 8, colour=MUTED)
            y = self.wrapped(column + 62, y, str(value), PAGE_W - MARGIN - column - 62, 8.5, leading=11)
            y -= 1
        bottom = min(left_end, y) + 4
        self.rule(bottom)
        return bottom

    def main_row(self, top: float) -> float:
        content = self.content
        prediction = content.prediction
        image_w, image_h = 300.0, 255.0
        x0 = MARGIN
        self.heading(x0, top - 8, "Image as shown")
        self.picture(content.view_rgb, x0, top - 14 - image_h, image_w, image_h)
        y = top - 14 - image_h - 11
        if content.heatmap_shown:
            y = self.colour_bar(x0, y, image_w)
        # Result column
        x = x0 + image_w + 18
        width = PAGE_W - MARGIN - x
        self.heading(x, top - 8, "Result")
        colour = VERDICT_COLOURS.get(prediction.verdict, MUTED)
        self.c.setFillColorRGB(*colour)
        self.c.roundRect(x, top - 40, width, 24, 4, stroke=0, fill=1)
        self.text(x + 10, top - 32, prediction.verdict.label, 12, bold=True, colour=(1, 1, 1))
        if content.no_valve:
            self.no_valve_result(x, top - 58, width, top - 14 - image_h)
            return min(y, top - 14 - image_h - 11)
        if not content.closest_known:  # an unknown valve's probability is the closest one's: not beside the verdict
            self.text(x + width - 10, top - 32, f"{prediction.confidence:.0%}", 12, bold=True,
                      colour=(1, 1, 1), align="right")
        ry = top - 58
        if content.closest_known:  # as on screen: no valve is named, the closest one is only a hint
            ry = self.wrapped(x, ry, f"Closest known: {content.closest_known}", width, 11)
            maker = None
        else:
            ry = self.wrapped(x, ry, display_name(prediction.predicted), width, 12, bold=True)
            maker = _maker_line(prediction.predicted)
        if maker:
            ry = self.wrapped(x, ry + 2, maker, width, 8.5, colour=MUTED)
        ry -= 4
        numbers = [
            ("Probability", f"{prediction.confidence:.1%}, the closest valve's: it does not apply") if content.closest_known
            else ("Confidence", f"{prediction.confidence:.1%}"),
            ("Entropy", f"{prediction.entropy:.2f} nats"),
            ("Top-2 gap", f"{prediction.margin:.2f}"),
        ]
        if content.reader_region:
            numbers.insert(0, ("Region read", "chosen by the reader (not located)"))
        if prediction.ood_score is not None:
            numbers.append(("Open-set score", f"{prediction.ood_score:.2f}"))
        if content.reading:
            numbers.append(("Reading", content.reading))
            basis = _reading_basis(content)
            if basis:
                numbers.append(("Basis", basis))
        if content.review:
            numbers.append(("Review", content.review))
        for label, value in numbers:
            self.text(x, ry, label, 8, colour=MUTED)
            ry = self.wrapped(x + 70, ry, value, width - 70, 8.5, bold=label in ("Reading", "Review"))
            ry -= 1
        ry -= 8
        self.heading(x, ry, "What the verdict means")
        self.wrapped(x, ry - 13, verdict_meaning(prediction), width, 8, colour=INK,
                     bottom=top - 14 - image_h)
        return min(y, top - 14 - image_h - 11)

    def no_valve_result(self, x: float, top: float, width: float, bottom: float) -> None:
        """The result column when the model found no valve: no valve named, no percentage; what
        the verdict means and what to do next."""
        content = self.content
        y = self.wrapped(x, top, "No valve named", width, 12, bold=True)
        y -= 4
        numbers = [("Region read", content.region_read())]
        if content.reading:
            numbers.append(("Reading", content.reading))
        if content.review:
            numbers.append(("Review", content.review))
        for label, value in numbers:
            self.text(x, y, label, 8, colour=MUTED)
            y = self.wrapped(x + 70, y, value, width - 70, 8.5, bold=label in ("Reading", "Review"))
            y -= 1
        y -= 8
        self.heading(x, y, "What the verdict means")
        y = self.wrapped(x, y - 13, verdict_meaning(content.prediction), width, 8, bottom=bottom + 40)
        y -= 8
        self.heading(x, y, "What to do next")
        self.wrapped(x, y - 13, NO_VALVE_NEXT, width, 8.5, bold=True, bottom=bottom)

    def colour_bar(self, x: float, y: float, width: float) -> float:
        colours = self.content.attention_colours
        label = f"Overlay: {ATTENTION_LABEL} (where the model looked), not a finding"
        if colours is not None and len(colours) > 1:
            bar_w, bar_h = 80.0, 6.0
            step = bar_w / len(colours)
            for i, rgb in enumerate(np.asarray(colours, dtype=float) / 255.0):
                self.c.setFillColorRGB(*rgb[:3])
                self.c.rect(x + i * step, y - 1, step + 0.3, bar_h, stroke=0, fill=1)
            self.text(x, y - 9, "low", 6.5, colour=MUTED)
            self.text(x + bar_w, y - 9, "high", 6.5, colour=MUTED, align="right")
            self.wrapped(x + bar_w + 8, y, label, width - bar_w - 8, 7.5, colour=MUTED)
            return y - 12
        return self.wrapped(x, y, label, width, 7.5, colour=MUTED)

    def probability_table(self, top: float) -> float:
        """Every class, most likely first: name, maker, a bar and the probability."""
        from reportlab.pdfbase.pdfmetrics import stringWidth

        prediction = self.content.prediction
        self.rule(top + 4)
        self.heading(MARGIN, top - 8, "Probability of every valve" + (
            " (an unknown valve: none of these applies)" if self.content.closest_known else ""))
        y = top - 22
        if self.content.no_valve:  # the valves' probabilities would name one
            why = ("the file is not a plain X-ray of the kind the model reads" if
                   prediction.verdict_reason == REASON_NOT_RADIOGRAPH else
                   "the model found nothing valve-like enough on this film")
            y = self.wrapped(MARGIN, y, f"Not given: {why}, so it names no valve and none of the valves' "
                             "probabilities applies.", PAGE_W - 2 * MARGIN, 8.5, colour=MUTED)
            return y + 4
        name_w = 235.0
        maker_x = MARGIN + name_w + 10
        bar_x, bar_w = PAGE_W - MARGIN - 130, 90.0
        for valve_id, probability in prediction.ranked():
            is_top = valve_id == prediction.predicted
            font = self.bold if is_top else self.font
            name = display_name(valve_id)
            while stringWidth(name, font, 8) > name_w and len(name) > 4:
                name = name[:-2].rstrip() + "…"
            self.text(MARGIN, y, name, 8, bold=is_top)
            maker = _maker_line(valve_id, kind=False) or ""
            while maker and stringWidth(maker, self.font, 7.5) > bar_x - maker_x - 8:
                maker = maker[:-2].rstrip() + "…"
            self.text(maker_x, y, maker, 7.5, colour=MUTED)
            self.c.setFillColorRGB(0.91, 0.92, 0.94)
            self.c.rect(bar_x, y - 1, bar_w, 7, stroke=0, fill=1)
            self.c.setFillColorRGB(*(VERDICT_COLOURS[prediction.verdict] if is_top else MUTED))
            self.c.rect(bar_x, y - 1, bar_w * max(0.0, min(1.0, probability)), 7, stroke=0, fill=1)
            self.text(PAGE_W - MARGIN, y, f"{probability:.1%}", 8, bold=is_top, align="right")
            y -= 11
        return y + 4

    def lower_row(self, top: float, bottom: float) -> None:
        """The zoomed valve beside its template diagram (to compare by eye), then reading notes."""
        content = self.content
        self.rule(top + 4)
        height = max(100.0, min(150.0, top - 14 - bottom))
        y_box = top - 14 - height
        x = MARGIN
        if content.no_valve and content.template_svg is None:
            self.no_valve_lower_row(top, bottom, height)
            return
        self.heading(x, top - 8, "Valve, zoomed")
        if content.valve_crop_rgb is not None:
            self.picture(content.valve_crop_rgb, x, y_box, height, height)
        else:
            self.placeholder(x, y_box, height, height, "no valve crop")
        x += height + 12
        diagram_w = height * 640 / 470  # the templates' diagrams are drawn 640 × 470
        self.heading(x, top - 8, "Template")
        self.c.setFillColorRGB(1, 1, 1)
        self.c.setStrokeColorRGB(*RULE)
        self.c.rect(x, y_box, diagram_w, height, stroke=1, fill=1)
        if not self.svg(content.template_svg, x + 2, y_box + 2, diagram_w - 4, height - 4):
            self.placeholder(x, y_box, diagram_w, height, "template diagram not available")
        x += diagram_w + 12
        width = PAGE_W - MARGIN - x
        self.heading(x, top - 8, "How to read it")
        y = top - 21
        sections = _reading_order(content.template_sections)
        if not sections:
            sections = [("", ["No template notes for this valve."])]
        shown_all = True
        text_bottom = bottom + 11  # room for the closing note
        for title, lines in sections:
            if y < text_bottom + 18:
                shown_all = False
                break
            if title:
                y = self.wrapped(x, y, title, width, 7.5, bold=True, bottom=text_bottom)
            for line in lines:
                if y < text_bottom + 8:
                    shown_all = False
                    break
                bullet = "" if line[:1].isdigit() else "• "
                y = self.wrapped(x + 5, y, f"{bullet}{line}", width - 5, 6.8, leading=8.4,
                                 bottom=text_bottom)
            y -= 2
        if not shown_all or len(sections) < len(content.template_sections):
            self.text(x, bottom, "More in the viewer's template panel.", 6.8, colour=MUTED)

    def no_valve_lower_row(self, top: float, bottom: float, height: float) -> None:
        """No valve found: no zoomed valve (a crop of wherever the model looked would pass for
        one), no template, and what to do next, in large type."""
        y_box = top - 14 - height
        x = MARGIN
        self.heading(x, top - 8, "Valve, zoomed")
        self.placeholder(x, y_box, height, height, "no valve to read")
        x += height + 18
        width = PAGE_W - MARGIN - x
        self.heading(x, top - 8, "No template")
        y = self.wrapped(x, top - 24, "No valve is named, so no template is shown and no setting is read from "
                         "one.", width, 9, colour=MUTED)
        y -= 10
        self.heading(x, y, "What to do next")
        self.wrapped(x, y - 16, NO_VALVE_NEXT, width, 11, bold=True, bottom=bottom)

    def placeholder(self, x: float, y: float, w: float, h: float, text: str) -> None:
        self.c.setStrokeColorRGB(*RULE)
        self.c.setFillColorRGB(*PANEL)
        self.c.rect(x, y, w, h, stroke=1, fill=1)
        self.text(x + w / 2, y + h / 2, text, 7.5, colour=MUTED, align="centre")

    def svg(self, path: Path | None, x: float, y: float, w: float, h: float) -> bool:
        """Draw an SVG as vectors into the box; False if it cannot be drawn."""
        if path is None or not Path(path).is_file():
            return False
        try:
            from reportlab.graphics import renderPDF
            from svglib.svglib import svg2rlg
        except ImportError:
            log.warning("svglib is not installed; the template diagram is left out of the PDF")
            return False
        logging.getLogger("svglib").setLevel(logging.ERROR)
        try:
            drawing = svg2rlg(str(path))
        except Exception as exc:  # noqa: BLE001 - a broken diagram must not stop the report
            log.warning("Template diagram %s cannot be drawn: %s", path, exc)
            return False
        if drawing is None or not drawing.width or not drawing.height:
            return False
        scale = min(w / drawing.width, h / drawing.height)
        drawing.scale(scale, scale)
        dw, dh = drawing.width * scale, drawing.height * scale
        renderPDF.draw(drawing, self.c, x + (w - dw) / 2, y + (h - dh) / 2)
        return True

    def footer(self) -> None:
        content = self.content
        self.rule(MARGIN + 22)
        line, size = self._fitted_line(
            f"{content.disclaimer}  Model: {content.model_title}. {content.program_line}.", PAGE_W - 2 * MARGIN, 7.5)
        self.text(MARGIN, MARGIN + 10, line, size, colour=MUTED)
        check = ("Look at the film with your own eyes: the model found no valve, which is not proof that there is "
                 "none." if content.no_valve else
                 "Check the valve against the template with your own eyes; the verdict is the model's, not a diagnosis.")
        self.text(MARGIN, MARGIN, check, 7, colour=MUTED)
        # On the second line, whose text is short: a long model name on the first cannot reach it.
        self.text(PAGE_W - MARGIN, MARGIN, f"Page {self.number} of {self.total}", 7.5,
                  colour=MUTED, align="right")

    def _fitted_line(self, text: str, width: float, size: float, smallest: float = 6.0) -> tuple[str, float]:
        """``text`` in one line of ``width``: its font shrunk down to ``smallest`` points, then
        cut at the end with an ellipsis (the disclaimer comes first and is never cut). Returns
        the text and the size to draw it at."""
        from reportlab.pdfbase.pdfmetrics import stringWidth

        while stringWidth(text, self.font, size) > width and size > smallest:
            size -= 0.25
        while stringWidth(text, self.font, size) > width and len(text) > 1:
            text = text[:-2] + "…"
        return text, size


# The notes a reader needs at the film first; the rest (specifications, sources) stay in the viewer.
_SECTION_PRIORITY = ("read", "mirror", "reference", "pitfall", "unverified", "mri")
_SECTION_LEFT_OUT = ("valve", "sources", "adjustment", "radiopaque", "settings")


def _reading_basis(content: ReportContent) -> str:
    """The facts the reading rests on, for the valve whose template the page shows."""
    from ..catalogue.templates import reading_basis

    shown = content.template_svg.parent.name if content.template_svg is not None else content.prediction.predicted
    return reading_basis(shown, content.reading, short=True)


def _reading_order(sections: Sequence[tuple[str, Sequence[str]]]) -> list[tuple[str, Sequence[str]]]:
    def rank(title: str) -> int:
        lowered = title.lower()
        for i, word in enumerate(_SECTION_PRIORITY):
            if word in lowered:
                return i
        return len(_SECTION_PRIORITY)

    kept = [s for s in sections if s[0].strip().lower() not in _SECTION_LEFT_OUT]
    return sorted(kept, key=lambda s: rank(s[0]))


def _maker_line(valve_id: str, kind: bool = True) -> str | None:
    try:
        valve = load_catalogue().get(valve_id)
    except TemplateError:
        return None
    if valve is None:
        return None
    return f"{valve.manufacturer} · {valve.kind}" if kind else valve.manufacturer


def _render(contents: Sequence[ReportContent], title: str) -> bytes:
    from reportlab import rl_config

    # Binary streams: ASCII85 text encoding would make every picture a quarter larger.
    ascii85, rl_config.useA85 = rl_config.useA85, 0
    try:
        return _render_pages(contents, title)
    finally:
        rl_config.useA85 = ascii85


def _render_pages(contents: Sequence[ReportContent], title: str) -> bytes:
    from reportlab.pdfgen.canvas import Canvas

    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=(PAGE_W, PAGE_H), pageCompression=1)
    # Metadata never names the patient, whatever the de-identification choice.
    canvas.setTitle(title)
    canvas.setAuthor(PROGRAM)
    canvas.setSubject(contents[0].disclaimer)
    canvas.setCreator(contents[0].program_line)
    total = sum(1 + (content.prior is not None) for content in contents)
    number = 0
    for content in contents:
        number += 1
        _Page(canvas, content, number, total).draw()
        canvas.showPage()
        if content.prior is not None:  # the prior film read against this one
            number += 1
            draw_comparison(_Page(canvas, content, number, total), content.prior)
            canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def export_pdf(content: ReportContent, path: str | Path) -> Path:
    """Write the one-page A4 report for ``content`` atomically; returns the path.

    Raises:
        OSError: the file cannot be written.
    """
    return atomic.write_bytes(path, _render([content], f"{PROGRAM} report"))


def export_worklist_pdf(contents: Sequence[ReportContent], path: str | Path) -> Path:
    """Write one report page per study, in order, atomically; returns the path.

    Raises:
        ValueError: ``contents`` is empty.
        OSError: the file cannot be written.
    """
    if not contents:
        raise ValueError("the worklist is empty: there is nothing to export")
    return atomic.write_bytes(path, _render(list(contents), f"{PROGRAM} worklist"))
