"""A Unicode TrueType font for exports (≥, °, ≙ and accented names), found without network:
the system's DejaVu Sans, then reportlab's bundled Bitstream Vera. None means "use the
format's built-in Helvetica" (Latin-1 only)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

_SYSTEM_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/share/fonts/TTF"),
    Path("/Library/Fonts"),
    Path("C:/Windows/Fonts"),
)


@lru_cache(maxsize=2)
def font_path(bold: bool = False) -> Path | None:
    """Path of a TrueType sans-serif font (bold if asked), or None if none is installed."""
    names = ("DejaVuSans-Bold.ttf",) if bold else ("DejaVuSans.ttf",)
    for folder in _SYSTEM_DIRS:
        for name in names:
            if (folder / name).is_file():
                return folder / name
    try:
        import reportlab

        bundled = Path(reportlab.__file__).parent / "fonts" / ("VeraBd.ttf" if bold else "Vera.ttf")
        if bundled.is_file():
            return bundled
    except ImportError:
        pass
    return None
