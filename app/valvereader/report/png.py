"""PNG export of the current view, with a footer that repeats the disclaimer and the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import atomic
from .content import ATTENTION_LABEL, NO_VALVE_NEXT, READER_REGION_NOTE, ReportContent
from .fonts import font_path


def footer_lines(content: ReportContent) -> list[str]:
    """Two lines burned under the picture; they never name the patient."""
    first = content.result_line()
    if content.no_valve:
        first += f" · {NO_VALVE_NEXT}"
    if content.reader_region:
        first += f" · {READER_REGION_NOTE}"
    if content.reading:
        first += f" · reading {content.reading}"
    if content.heatmap_shown:
        first += f" · overlay = {ATTENTION_LABEL}, not a finding"
    second = f"{content.disclaimer}  {content.model_title} · {content.program_line} · {content.created_text()}"
    return [first, second]


def render_with_footer(content: ReportContent) -> np.ndarray:
    """The view with a dark footer strip below it (uint8 H×W×3). The text is sized to the
    view (about 1/70 of its width, 12 px at least) and wrapped at word boundaries: every word
    of every line is inside the picture, however narrow the view."""
    from PIL import Image, ImageDraw, ImageFont

    view = Image.fromarray(content.view_rgb, "RGB")
    width = view.width
    size = max(12, min(40, width // 70))
    path = font_path()
    font = ImageFont.truetype(str(path), size) if path else ImageFont.load_default(size)
    margin = size
    colours = [(235, 235, 235), (240, 190, 90)]
    rows: list[tuple[str, tuple[int, int, int]]] = []
    for line, colour in zip(footer_lines(content), colours, strict=True):
        rows.extend((part, colour) for part in wrap_text(line, font, width - 2 * margin))
    if isinstance(font, ImageFont.FreeTypeFont):
        ascent, descent = font.getmetrics()
    else:  # Pillow's bitmap font (Pillow without FreeType): the height of its glyph box
        ascent, descent = int(font.getbbox("Ag")[3]), 0
    line_height = int((ascent + descent) * 1.2)
    strip = line_height * len(rows) + margin
    canvas = Image.new("RGB", (width, view.height + strip), (18, 18, 20))
    canvas.paste(view, (0, 0))
    draw = ImageDraw.Draw(canvas)
    y = view.height + margin // 2
    for text, colour in rows:
        draw.text((margin, y), text, fill=colour, font=font)
        y += line_height
    return np.asarray(canvas)


def wrap_text(text: str, font: Any, width: float) -> list[str]:
    """``text`` in lines no wider than ``width`` (by ``font``), broken between words; a single
    word wider than that is broken between characters."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if font.getlength(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = word
        while font.getlength(current) > width and len(current) > 1:
            cut = len(current) - 1
            while cut > 1 and font.getlength(current[:cut]) > width:
                cut -= 1
            lines.append(current[:cut])
            current = current[cut:]
    if current:
        lines.append(current)
    return lines or [""]


def export_png(content: ReportContent, path: str | Path, footer: bool = True) -> Path:
    """Save the view (plus a footer with verdict, disclaimer and model) as PNG, atomically.

    Text chunks hold the program, model, verdict and disclaimer only: never patient data.

    Raises:
        OSError: the file cannot be written.
    """
    import io

    from PIL import Image, PngImagePlugin

    pixels = render_with_footer(content) if footer else content.view_rgb
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", content.program_line)
    info.add_text("Disclaimer", content.disclaimer)
    info.add_text("Model", content.model_title)
    info.add_text("Verdict", content.prediction.verdict.label)
    info.add_text("Creation Time", content.created.isoformat(timespec="seconds"))
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG", pnginfo=info, optimize=False)
    return atomic.write_bytes(path, buffer.getvalue())
