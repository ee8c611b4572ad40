"""Committed diagram.svg files equal the generator and render with QtSvg to a visible image."""

from __future__ import annotations

import math
import os
import re
from typing import Any

import pytest

from valvereader.catalogue import UNKNOWN_VALVE_ID, VALVE_IDS
from valvereader.catalogue.diagrams import (
    CX,
    CY,
    EXAMPLE_SETTING,
    HEIGHT,
    INDICATOR,
    TICK,
    TICK_UNVERIFIED,
    WIDTH,
    R,
    diagram_svg,
    dial_svg,
)
from valvereader.catalogue.templates import load_template

ALL_IDS = (*VALVE_IDS, UNKNOWN_VALVE_ID)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.mark.parametrize("valve_id", ALL_IDS)
def test_committed_svg_matches_the_generator(valve_id: str) -> None:
    template = load_template(valve_id)
    assert template.diagram is not None, f"run: python -m valvereader.catalogue.diagrams ({valve_id})"
    committed = template.diagram.read_text(encoding="utf-8")
    assert committed == diagram_svg(template), "regenerate: python -m valvereader.catalogue.diagrams"


@pytest.mark.parametrize("valve_id", ALL_IDS)
def test_svg_has_one_tick_per_known_angle_and_a_light_panel(valve_id: str) -> None:
    template = load_template(valve_id)
    svg = diagram_svg(template)
    known = [s for s in template.settings.values if s.angle_deg is not None]
    main_view = svg.split("WRONG SIDE")[0]
    ticks = len(re.findall(f'<line [^>]*stroke="({TICK}|{TICK_UNVERIFIED})" stroke-width="2"', main_view))
    assert ticks == (len(known) if template.dial is not None else 0)
    assert 'fill="#e9ecef"' in svg.splitlines()[2]  # the panel is drawn first, under everything
    unverified = template.dial is not None and any(s.tag == "U" for s in template.dial.settings)
    assert ("[U] UNVERIFIED ANGLES" in svg) == unverified
    assert "WRONG SIDE" in svg and "scale(-0.4,0.4)" in svg


def _render(svg: str, qapp: Any, scale: float = 1.0) -> Any:
    from PySide6.QtCore import QByteArray, QSize
    from PySide6.QtGui import QColor, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(QByteArray(svg.encode("utf-8")))
    assert renderer.isValid()
    size = renderer.defaultSize()
    image = QImage(QSize(int(size.width() * scale), int(size.height() * scale)), QImage.Format.Format_ARGB32)
    image.fill(QColor("#000000"))
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    return image


@pytest.fixture(scope="module")
def qapp() -> Any:
    pytest.importorskip("PySide6.QtSvg")
    from PySide6.QtGui import QGuiApplication

    return QGuiApplication.instance() or QGuiApplication([])


@pytest.mark.gui
@pytest.mark.parametrize("valve_id", ALL_IDS)
def test_every_committed_diagram_renders_to_a_non_blank_image(valve_id: str, qapp: Any) -> None:
    diagram = load_template(valve_id).diagram
    assert diagram is not None
    image = _render(diagram.read_text(encoding="utf-8"), qapp)
    assert (image.width(), image.height()) == (WIDTH, HEIGHT)
    colours = {image.pixel(x, y) for x in range(0, WIDTH, 7) for y in range(0, HEIGHT, 7)}
    assert len(colours) > 8  # panel, film, parts, text: not a blank page
    assert image.pixelColor(WIDTH // 2, 5).lightness() > 200  # light panel, readable on dark and white


@pytest.mark.gui
@pytest.mark.parametrize("valve_id", sorted(EXAMPLE_SETTING))
def test_drawn_indicator_points_at_the_example_settings_angle(valve_id: str, qapp: Any) -> None:
    template = load_template(valve_id)
    assert template.dial is not None
    angle = template.dial.setting(EXAMPLE_SETTING[valve_id]).angle_deg
    assert angle is not None
    image = _render(diagram_svg(template), qapp)
    from PySide6.QtGui import QColor

    target = QColor(INDICATOR)

    def is_indicator(a: float) -> bool:
        x = CX + (R - 14) * math.sin(math.radians(a))
        y = CY - (R - 14) * math.cos(math.radians(a))
        c = image.pixelColor(round(x), round(y))
        return abs(c.red() - target.red()) + abs(c.green() - target.green()) + abs(c.blue() - target.blue()) < 60

    assert is_indicator(angle)
    assert not is_indicator(angle + 90) and not is_indicator(angle + 180)


@pytest.mark.gui
@pytest.mark.parametrize("valve_id", ["codman_hakim_programmable", "sophysa_sophy_minism8"])
def test_overlay_dial_renders(valve_id: str, qapp: Any) -> None:
    image = _render(dial_svg(load_template(valve_id)), qapp)
    colours = {image.pixel(x, y) for x in range(0, image.width(), 5) for y in range(0, image.height(), 5)}
    assert len(colours) > 1
