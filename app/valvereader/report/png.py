"""PNG export of the current view, with a footer that repeats the disclaimer and the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import atomic
from .content import ATTENTION_LABEL, ReportContent
from .fonts import font_path


def footer_lines(content: ReportContent) -> list[str]:
    """Two lines burned under the picture; they never name the patient."""
    prediction = content.prediction
    from ..catalogue import display_name

    first = (
        f"{prediction.verdict.label}: {display_name(prediction.predicted)} "
        f"({prediction.confidence:.0%})"
    )
    if content.reading:
        first += f" · reading {content.reading}"
    if content.heatmap_shown:
        first += f" · overlay = {ATTENTION_LABEL}, not a finding"
    second = f"{content.disclaimer}  {content.model_title} · {content.program_line} · {content.created_text()}"
    return [first, second]


def render_with_footer(content: ReportContent) -> np.ndarray:
    """The view with a dark footer strip (uint8 H×W×3)."""
    from PIL import Image, ImageDraw, ImageFont

    view = Image.fromarray(content.view_rgb, "RGB")
    width = view.width
    size = max(11, min(28, width // 64))
    path = font_path()
    font = ImageFont.truetype(str(path), size) if path else ImageFont.load_default(size)
    lines = footer_lines(content)
    # Shrink long lines on narrow views rather than cutting them.
    while size > 8 and max(font.getlength(line) for line in lines) > width - 2 * size:
        size -= 1
        font = ImageFont.truetype(str(path), size) if path else ImageFont.load_default(size)
    line_height = int(size * 1.45)
    strip = line_height * len(lines) + size
    canvas = Image.new("RGB", (width, view.height + strip), (18, 18, 20))
    canvas.paste(view, (0, 0))
    draw = ImageDraw.Draw(canvas)
    y = view.height + size // 2
    colours = [(235, 235, 235), (240, 190, 90)]
    for line, colour in zip(lines, colours, strict=True):
        draw.text((size, y), line, fill=colour, font=font)
        y += line_height
    return np.asarray(canvas)


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
