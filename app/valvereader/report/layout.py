"""The report page: A4 in points, its margin and colours (the single-film page and the
comparison with a prior film share them)."""

PAGE_W, PAGE_H = 595.28, 841.89  # A4 in points
MARGIN = 36.0
INK = (0.10, 0.11, 0.13)
MUTED = (0.42, 0.44, 0.48)
RULE = (0.80, 0.82, 0.85)
PANEL = (0.965, 0.97, 0.975)
