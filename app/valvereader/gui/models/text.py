"""Text for labels that wrap: long file names and paths given places to break."""

from __future__ import annotations

import re

ZERO_WIDTH_SPACE = "\u200b"
_LONG_WORD = re.compile(r"\S{24,}")
_BREAK_AFTER = re.compile(r"([_\-./\\])")


def breakable(text: str) -> str:
    """``text`` with a zero-width space after each _ - . / \\ inside words of 24 characters or
    more, so that a word-wrapping label can break a long file name instead of growing wider
    than its panel (and clipping the text beside it)."""
    return _LONG_WORD.sub(lambda word: _BREAK_AFTER.sub(r"\1" + ZERO_WIDTH_SPACE, word.group(0)), text)
