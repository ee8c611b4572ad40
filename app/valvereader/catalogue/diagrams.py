"""Draws each valve's diagram.svg (and a bare dial for the reading-aid overlay) from its template.

The diagram shows the valve in the canonical view (seen from the scalp, inlet up, flow down)
the way it looks on a radiograph: a grey "film" disc with radiopaque parts in white and
radiolucent holes in black. Around it a dial has a tick and a label at every setting's
indicator angle. A small inset shows the mirror image (valve seen through its base). The
whole drawing sits on its own light panel, so it reads in the dark viewer and on white paper.

Regenerate the committed files with ``python -m valvereader.catalogue.diagrams``; a test keeps
them equal to this generator's output. No Qt here.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path
from xml.sax.saxutils import escape

from .templates import Dial, Template, load_template
from .valves import UNKNOWN_VALVE_ID, VALVE_IDS

WIDTH, HEIGHT = 640, 470
CX, CY, R = 250.0, 262.0, 132.0  # dial centre and film radius in the main view
FONT = "DejaVu Sans, Arial, Helvetica, sans-serif"
PANEL, PANEL_EDGE, TEXT = "#e9ecef", "#9aa4ad", "#1b1f23"
FILM, FILM_EDGE = "#3d4349", "#1c1f22"
HOUSING, HOUSING_EDGE = "#596169", "#86909a"
OPAQUE, HOLE = "#f5f5f5", "#0b0b0b"
TICK, TICK_UNVERIFIED, INDICATOR = "#0d47a1", "#b33c00", "#ff5a1f"
OVERLAY = ("#ffe066", "#ff9f43")  # reading-aid ticks on a radiograph: verified-ish, unverified

Drawer = Callable[[float | None], list[str]]


def _f(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".") if abs(x) >= 0.05 else "0"


def _polar(angle_deg: float, r: float) -> tuple[float, float]:
    a = math.radians(angle_deg)
    return r * math.sin(a), -r * math.cos(a)


def circle(x: float, y: float, r: float, fill: str, stroke: str = "none", width: float = 1.0, extra: str = "") -> str:
    return (f'<circle cx="{_f(x)}" cy="{_f(y)}" r="{_f(r)}" fill="{fill}" stroke="{stroke}" '
            f'stroke-width="{_f(width)}"{extra}/>')


def rect(x: float, y: float, w: float, h: float, fill: str, stroke: str = "none", rx: float = 0.0,
         width: float = 1.0, extra: str = "") -> str:
    return (f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(w)}" height="{_f(h)}" rx="{_f(rx)}" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="{_f(width)}"{extra}/>')


def line(x0: float, y0: float, x1: float, y1: float, stroke: str, width: float = 1.0, extra: str = "") -> str:
    return (f'<line x1="{_f(x0)}" y1="{_f(y0)}" x2="{_f(x1)}" y2="{_f(y1)}" stroke="{stroke}" '
            f'stroke-width="{_f(width)}"{extra}/>')


def path(d: str, fill: str, stroke: str = "none", width: float = 1.0, extra: str = "") -> str:
    return f'<path d="{d}" fill="{fill}" stroke="{stroke}" stroke-width="{_f(width)}"{extra}/>'


def text(x: float, y: float, body: str, size: float = 12, fill: str = TEXT, anchor: str = "start",
         weight: str = "normal") -> str:
    return (f'<text x="{_f(x)}" y="{_f(y)}" font-family="{FONT}" font-size="{_f(size)}" fill="{fill}" '
            f'text-anchor="{anchor}" font-weight="{weight}">{escape(body)}</text>')


def rotated(angle_deg: float, parts: list[str]) -> str:
    return f'<g transform="rotate({_f(angle_deg)})">' + "".join(parts) + "</g>"


def wrap(body: str, width: int) -> list[str]:
    lines: list[str] = []
    for word in body.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


# --- the valves, in local coordinates: origin = dial centre, y down, film radius R ------------


def _connectors(top: float, bottom: float, half: float = 5.0, dense: bool = False) -> list[str]:
    """Inlet and outlet connectors; drawn radiopaque only where a source says they are dense."""
    fill, edge = (OPAQUE, HOLE) if dense else (HOUSING, HOUSING_EDGE)
    return [rect(-half, -R + 6, 2 * half, R - 6 + top, fill, edge, 2, 0.6),
            rect(-half, bottom, 2 * half, R - 6 - bottom, fill, edge, 2, 0.6)]


def _flow_arrow(y: float, size: float = 9.0) -> str:
    return path(f"M {_f(-size)} {_f(y - size)} L {_f(size)} {_f(y - size)} L 0 {_f(y + size)} Z", OPAQUE, HOLE, 0.6)


def _hakim(angle: float | None) -> list[str]:
    a = 190.5 if angle is None else angle
    notch = rotated(a, [rect(-7, -52, 14, 13, FILM, "none")])
    holes = [circle(*_polar(h, 24), 5, HOLE) for h in (a + 60, a + 180, a + 300)]
    return [
        *_connectors(-118, 104),
        rect(-62, -118, 124, 222, HOUSING, HOUSING_EDGE, 26, 1.0),
        circle(0, -84, 15, "none", OPAQUE, 3.5), line(-15, -84, 15, -84, OPAQUE, 3),
        circle(40, -92, 5, OPAQUE, HOLE, 0.6),
        circle(0, 0, 50, OPAQUE, HOLE, 0.8), notch, *holes,
        _flow_arrow(78),
    ]


def _certas(angle: float | None) -> list[str]:
    a = 225.0 if angle is None else angle
    magnet = [rect(-15, -38, 30, 13, OPAQUE, HOLE, 2, 0.8)]
    return [
        path("M -30 -128 A 36 36 0 0 1 30 -128 L 58 -64 Q 66 40 40 96 L -40 96 Q -66 40 -58 -64 Z",
             HOUSING, HOUSING_EDGE, 1.0),
        circle(0, -98, 28, "none", HOUSING_EDGE, 2),
        rect(-5, 96, 10, R - 102, HOUSING, HOUSING_EDGE, 2, 0.6),
        _flow_arrow(-56, 8), circle(36, -52, 4.5, OPAQUE, HOLE, 0.6),
        circle(0, 0, 11, OPAQUE, HOLE, 0.8),
        rotated(a, [*magnet, circle(0, -47, 5.5, OPAQUE, HOLE, 0.8)]),
        rotated(a + 180, magnet),
    ]


def _sophy(angle: float | None) -> list[str]:
    a = 125.0 if angle is None else angle  # magnet axis in the one manufacturer X-ray seen
    square = rect(-9, -34, 18, 18, OPAQUE, HOLE, 1, 0.8)
    return [
        *_connectors(-62, 62, 6, dense=True),
        circle(0, 0, 62, HOUSING, HOUSING_EDGE, 1.0),
        path("M -36 -26 A 44 44 0 0 1 36 -26", "none", OPAQUE, 1.5),
        path("M 36 26 A 44 44 0 0 1 -36 26", "none", OPAQUE, 1.5),
        circle(*_polar(322, 52), 4, OPAQUE, HOLE, 0.6),
        rotated(a, [square]), rotated(a + 180, [square]),
        circle(0, 0, 6, "none", HOUSING_EDGE, 1.0),
    ]


def _progav(angle: float | None, generation: int) -> list[str]:
    a = 13 * 15.0 + 286 - 360 if angle is None else angle
    if generation == 1:
        return _progav_gen1(a)
    parts = [*_connectors(-69, 69), circle(0, 0, 70, HOUSING, HOUSING_EDGE, 1.0),
             circle(0, 0, 42, "none", HOUSING_EDGE, 1.0)]
    # black crescent valve-side marker, opposite the dead sector (drawn on the right: side [U])
    parts.append(path("M 52 -14 A 16 16 0 0 1 52 14 A 11 11 0 0 0 52 -14 Z", HOLE, OPAQUE, 0.8))
    front = [circle(*_polar(a + d, 27), 7, OPAQUE, HOLE, 0.8) for d in (-28, 28)]
    rear = [circle(*_polar(a + 180 + d, 27), 7, OPAQUE, HOLE, 0.8) for d in (-28, 28)]
    bores = [circle(*_polar(a + 180 + d, 31), 4.5, HOLE, OPAQUE, 0.6) for d in (-70, 70)]
    tip = _polar(a, 44)
    wings = [_polar(a - 28, 27), _polar(a + 28, 27)]
    triangle = path(f"M {_f(wings[0][0])} {_f(wings[0][1])} L {_f(tip[0])} {_f(tip[1])} "
                    f"L {_f(wings[1][0])} {_f(wings[1][1])}", "none", OPAQUE, 1.0, ' stroke-dasharray="3 2"')
    return parts + front + rear + bores + [triangle]


def _progav_gen1(a: float) -> list[str]:
    """First generation: housing with a flat side on the right; a rotor whose tip points to the
    setting, white magnet dots on the rotor. No bores and no magnet triangle: those belong to 2.0."""
    body = path("M 50 -48 A 70 70 0 1 0 50 48 Z", HOUSING, HOUSING_EDGE, 1.0)
    parts = [*_connectors(-69, 69), body, circle(0, 0, 42, "none", HOUSING_EDGE, 1.0)]
    tip, left, right = _polar(a, 40), _polar(a - 90, 16), _polar(a + 90, 16)
    back = _polar(a + 180, 22)
    rotor = path(f"M {_f(tip[0])} {_f(tip[1])} L {_f(right[0])} {_f(right[1])} "
                 f"Q {_f(back[0])} {_f(back[1])} {_f(left[0])} {_f(left[1])} Z", "#4c5660", OPAQUE, 1.0)
    magnets = [circle(*_polar(a + 180 + d, 10), 5.5, OPAQUE, HOLE, 0.8) for d in (-90, 90)]
    return [*parts, rotor, *magnets]


def _strata(angle: float | None) -> list[str]:
    a = 232.5 if angle is None else angle
    return [
        *_connectors(-120, 100),
        path("M -30 -120 Q 0 -132 30 -120 L 52 -40 Q 60 40 36 100 L -36 100 Q -60 40 -52 -40 Z",
             HOUSING, HOUSING_EDGE, 1.0),
        circle(0, -86, 24, "none", HOUSING_EDGE, 1.2),
        path("M -12 -60 L 12 -60 L 0 -40 Z", OPAQUE, HOLE, 0.6), rect(16, -60, 5, 16, OPAQUE, HOLE, 1, 0.6),
        circle(0, 0, 36, "#1f2226", HOUSING_EDGE, 1.0),  # dark rotor disc, white notch on its rim
        rotated(a, [circle(0, -28, 6, OPAQUE, HOLE, 0.6)]),
    ]


def _integra(_: float | None) -> list[str]:
    cylinder = [rect(-9, -22, 18, 44, OPAQUE, HOLE, 6, 0.8)]
    return [rect(-3, -R + 6, 6, 2 * R - 12, HOUSING, HOUSING_EDGE, 2, 0.6),
            circle(0, -100, 20, "none", OPAQUE, 3),
            f'<g transform="translate(0,-34)">{"".join(cylinder)}</g>',
            f'<g transform="translate(0,62)">{"".join(cylinder)}</g>']


def _delta(_: float | None) -> list[str]:
    tri = "M -8 -7 L 8 -7 L 0 9 Z"
    return [rect(-16, -70, 32, 140, HOUSING, HOUSING_EDGE, 12, 0.8),
            rect(-3, -R + 6, 6, 62, HOUSING, HOUSING_EDGE, 2, 0.6), rect(-3, 70, 6, 56, HOUSING, HOUSING_EDGE, 2, 0.6),
            f'<g transform="translate(0,-14)">{path(tri, OPAQUE, HOLE, 0.6)}</g>',
            f'<g transform="translate(0,12)">{path(tri, OPAQUE, HOLE, 0.6)}</g>',
            circle(0, 34, 3, OPAQUE, HOLE, 0.6)]


def _unknown(_: float | None) -> list[str]:
    return [rect(-50, -80, 100, 160, HOUSING, HOUSING_EDGE, 30, 1.0, ' stroke-dasharray="6 4"'),
            text(0, 24, "?", 72, OPAQUE, "middle", "bold")]


DRAWERS: dict[str, Drawer] = {
    "codman_hakim_programmable": _hakim,
    "codman_certas_plus": _certas,
    "sophysa_sophy_minism8": _sophy,
    "miethke_progav_2": lambda a: _progav(a, 2),
    "miethke_progav_1": lambda a: _progav(a, 1),
    "medtronic_ps_medical_strata": _strata,
    "integra_dp": _integra,
    "medtronic_ps_medical_delta": _delta,
    UNKNOWN_VALVE_ID: _unknown,
}
EXAMPLE_SETTING: dict[str, str] = {
    "codman_hakim_programmable": "100",
    "codman_certas_plus": "3",
    "miethke_progav_2": "13",
    "miethke_progav_1": "10",
    "medtronic_ps_medical_strata": "1.5",
}
LOOK_FOR: dict[str, str] = {
    "codman_hakim_programmable": "white cam disc with a notch on its rim (the setting), inlet ring above it, side dot upper right.",
    "codman_certas_plus": "two bar magnets around a round centre; the one with the small ball is the indicator; its sector is the setting.",
    "sophysa_sophy_minism8": "two square magnets on a diagonal; count the range dots (0-3) near the top connector.",
    "miethke_progav_2": "4 white magnet dots, 2 black bores at the rear; the gap between the front magnets points to the setting.",
    "miethke_progav_1": "white rotor magnet dots; the rotor tip points to the setting; flat housing side on the right.",
    "medtronic_ps_medical_strata": "dark rotor disc with one white notch (the setting); flow triangle with a bar on its right.",
    "integra_dp": "two short dense cylinders in line on the catheter; no rotor, dial or magnets.",
    "medtronic_ps_medical_delta": "one or two tiny triangles (sometimes a dot) along the catheter; easy to miss.",
    UNKNOWN_VALVE_ID: "describe what is visible; identify the valve from the implant record.",
}
SECTOR_DIALS = {"codman_certas_plus"}  # the setting is a 45-degree sector, not a point
MIRROR_CUE: dict[str, str] = {
    "codman_hakim_programmable": "Side dot LEFT of the axis and the scale runs anticlockwise: flip before reading.",
    "codman_certas_plus": "Side marker LEFT of the centreline: flip before reading.",
    "sophysa_sophy_minism8": "No confirmed mirror cue for this valve [U].",
    "miethke_progav_2": "Black crescent marker on the LEFT: probably mirrored [U] (side from Fig 16, not seen), flip.",
    "miethke_progav_1": "Flat side of the housing on the LEFT: flip before reading.",
    "medtronic_ps_medical_strata": "Bar LEFT of the flow triangle: probably mirrored [U], flip before reading.",
    "integra_dp": "Fixed valve: no setting that a mirror image could reverse.",
    "medtronic_ps_medical_delta": "Fixed valve: no setting that a mirror image could reverse.",
    UNKNOWN_VALVE_ID: "Mirror cues depend on the valve type.",
}


# --- the page ------------------------------------------------------------------------------------


def _dial_marks(dial: Dial, radius: float, labels: bool, size: float,
                colours: tuple[str, str] = (TICK, TICK_UNVERIFIED), shadow: str | None = None) -> list[str]:
    """A tick (and label) per setting with a known angle; unverified ones dashed in the second colour.
    ``shadow`` draws a dark copy under each mark so it reads on a radiograph."""
    out: list[str] = []
    for s in dial.settings:
        if s.angle_deg is None:
            continue
        colour = colours[1] if s.angle_tag == "U" else colours[0]
        dash = ' stroke-dasharray="3 2"' if s.angle_tag == "U" else ""
        x0, y0 = _polar(s.angle_deg, radius - 6)
        x1, y1 = _polar(s.angle_deg, radius + 10)
        # wide labels at 3 and 9 o'clock need more room than narrow ones at 12 and 6
        half_width = 0.3 * size * len(s.label) * abs(math.sin(math.radians(s.angle_deg)))
        lx, ly = _polar(s.angle_deg, radius + 16 + size * 0.4 + half_width)
        if shadow:
            out.append(line(x0 + 1, y0 + 1, x1 + 1, y1 + 1, shadow, 3.0))
            if labels and s.angle_tag != "U":
                out.append(text(lx + 1, ly + size * 0.36 + 1, s.label, size, shadow, "middle", "bold"))
        out.append(line(x0, y0, x1, y1, colour, 2.0, dash))
        if labels and s.angle_tag != "U":  # an unverified angle carries no pressure label
            out.append(text(lx, ly + size * 0.36, s.label, size, colour, "middle", "bold"))
    return out


def _dead_sector(template: Template, radius: float) -> list[str]:
    if not template.valve_id.startswith("miethke_progav"):
        return []
    start, end = 234.0, 278.0  # between 20 (about 226) and 0 (about 286), from the settings list
    (x0, y0), (x1, y1) = _polar(start, radius + 4), _polar(end, radius + 4)
    arc = path(f"M {_f(x0)} {_f(y0)} A {_f(radius + 4)} {_f(radius + 4)} 0 0 1 {_f(x1)} {_f(y1)}",
               "none", "#7d868f", 7)
    lx, ly = _polar(256, radius + 24)
    return [arc, text(lx - 6, ly - 4, "dead", 10, TEXT, "end"), text(lx - 6, ly + 8, "sector", 10, TEXT, "end")]


def _view(template: Template, scale: float, mirrored: bool, labels: bool) -> str:
    """The film disc with the valve and its dial, centred on (0, 0), optionally mirrored."""
    dial = template.dial
    example = EXAMPLE_SETTING.get(template.valve_id)
    angle = dial.setting(example).angle_deg if dial is not None and example else None
    parts = [circle(0, 0, R, FILM, FILM_EDGE, 1.5), *DRAWERS[template.valve_id](angle)]
    if template.valve_id in SECTOR_DIALS and dial is not None:
        for s in dial.settings:
            if s.angle_deg is not None:
                x0, y0 = _polar(s.angle_deg + 22.5, 70)
                x1, y1 = _polar(s.angle_deg + 22.5, R)
                parts.append(line(x0, y0, x1, y1, "#aab4bd", 1.0, ' stroke-dasharray="4 3"'))
    if angle is not None:
        x, y = _polar(angle, R - 8)
        parts.append(line(0, 0, x, y, INDICATOR, 2.5, ' stroke-linecap="round"'))
    if dial is not None:
        parts += _dial_marks(dial, R, labels, 11 if len(dial.settings) > 12 else 13)
        if labels:
            parts += _dead_sector(template, R)
        if not dial.readable:
            parts.append(circle(0, 0, R + 8, "none", TICK_UNVERIFIED, 2, ' stroke-dasharray="6 5"'))
    flip = f" scale({-scale},{scale})" if mirrored else f" scale({scale})"
    if mirrored and labels:
        raise ValueError("mirrored views carry no labels: mirrored text cannot be read")
    return f'<g transform="translate(0,0){flip}">' + "".join(parts) + "</g>"


def _legend(template: Template, x: float, y: float) -> list[str]:
    out = [text(x, y, "Legend", 12, TEXT, "start", "bold")]
    rows = [(circle(x + 8, y + 14, 5, OPAQUE, HOLE, 0.8), "radiopaque (white on X-ray)"),
            (circle(x + 8, y + 30, 5, HOLE, OPAQUE, 0.8), "hole / black on X-ray"),
            ]
    dial = template.dial
    if dial is not None and dial.readable:
        rows.append((line(x + 2, y + 46, x + 16, y + 46, INDICATOR, 2.5), "indicator, example setting"))
        rows.append((line(x + 2, y + 62, x + 16, y + 62, TICK, 2.0), "setting at its angle"))
        if any(s.angle_tag == "U" for s in dial.settings):
            rows.append((line(x + 2, y + 78, x + 16, y + 78, TICK_UNVERIFIED, 2.0, ' stroke-dasharray="3 2"'),
                         "angle unverified [U]"))
    for i, (mark, label) in enumerate(rows):
        out += [mark, text(x + 24, y + 18 + 16 * i, label, 11)]
    return out


def _status_lines(template: Template) -> list[tuple[str, str]]:
    """(text, colour) lines under the legend: the trust of the angles, the example, the unit."""
    dial = template.dial
    s = template.settings
    if dial is None:
        if template.kind == "fixed":
            return [("Fixed valve: no dial, nothing to read.", TICK_UNVERIFIED),
                    ("[U] The level cannot be read on the X-ray: take it from the implant record.", TEXT)]
        return [("Valve not identified: no dial.", TICK_UNVERIFIED),
                ("Identify the valve before reading a setting.", TEXT)]
    if not dial.readable:
        return [("[U] unverified: indicator angles", TICK_UNVERIFIED), ("NOT KNOWN - no ticks drawn.", TICK_UNVERIFIED),
                ("Read the setting with the kit.", TEXT)]
    lines: list[tuple[str, str]] = []
    if s.angles.tag == "U":
        lines += [("[U] unverified angles:", TICK_UNVERIFIED), ("no pressure is read on this dial", TICK_UNVERIFIED)]
    elif s.angles.tag == "M":
        tol = f" +/-{s.tolerance_deg:g} deg" if s.tolerance_deg else ""
        lines += [(f"[M] angles approx.{tol}", TEXT)]
    else:
        lines += [(f"[{s.angles.tag}] angles", TEXT)]
    example = EXAMPLE_SETTING.get(template.valve_id)
    if example and dial.setting(example).angle_tag == "U":
        lines.append(("Example: an indicator position", TEXT))
    elif example:
        lines.append((f"Example: {dial.setting(example).text()}", TEXT))
    lines.append((f"Scale: {s.unit}, clockwise" if s.sense == "clockwise" else f"Scale: {s.unit}", TEXT))
    return lines


def diagram_svg(template: Template) -> str:
    """The complete diagram.svg text for ``template`` (deterministic)."""
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" version="1.2" baseProfile="tiny" '
            f'width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}">'),
           f"<title>{escape(template.name)}: reading diagram (canonical view)</title>",
           rect(1, 1, WIDTH - 2, HEIGHT - 2, PANEL, PANEL_EDGE, 14, 1.5)]
    out += [text(18, 28, template.name, 16 if len(template.name) <= 50 else 13 if len(template.name) <= 64 else 12, TEXT, "start", "bold"),
            text(18, 48, "Canonical view: seen from the scalp, inlet up, flow down. Not for diagnostic use.", 11)]
    if template.dial is not None and any(s.tag == "U" for s in template.dial.settings):
        badge = "[U] UNVERIFIED ANGLES - confirm with the maker's tool"
        out += [rect(18, 58, 380, 20, "#fff3e0", TICK_UNVERIFIED, 4, 1.2),
                text(24, 72, badge, 11, TICK_UNVERIFIED, "start", "bold")]
    # inlet / flow / outlet arrow on the left
    out += [text(44, CY - 112, "inlet", 11, TEXT, "middle"), line(44, CY - 100, 44, CY + 92, TEXT, 1.5),
            path(f"M 37 {_f(CY + 84)} L 51 {_f(CY + 84)} L 44 {_f(CY + 100)} Z", TEXT),
            text(44, CY + 116, "outlet", 11, TEXT, "middle"), text(38, CY + 4, "flow", 11, TEXT, "end")]
    out.append(f'<g transform="translate({_f(CX)},{_f(CY)})">{_view(template, 1.0, False, True)}</g>')
    # mirrored inset
    ix, iy = 520.0, 132.0
    out += [rect(440, 62, 186, 196, "#f7f7f7", "#b71c1c", 8, 1.5),
            text(533, 80, "WRONG SIDE (mirror image)", 11, "#b71c1c", "middle", "bold"),
            f'<g transform="translate({_f(ix)},{_f(iy + 14)})">{_view(template, 0.4, True, False)}</g>']
    for i, cue in enumerate(wrap(MIRROR_CUE[template.valve_id], 34)[:3]):
        out.append(text(533, 216 + 13 * i, cue, 10, TEXT, "middle"))
    for i, row in enumerate(wrap("Look for: " + LOOK_FOR[template.valve_id], 72)[:2]):
        out.append(text(18, 442 + 14 * i, row, 11))
    legend = _legend(template, 446, 282)
    out += legend
    top = 282 + 16 * (len(legend) - 1) // 2 + 30  # legend = heading + (mark, label) per row
    status = [(part, colour) for body, colour in _status_lines(template) for part in wrap(body, 30)]
    for i, (body, colour) in enumerate(status[: int((HEIGHT - 12 - top) // 16)]):
        out.append(text(446, top + 16 * i, body, 11, colour, "start", "bold" if colour != TEXT else "normal"))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def dial_svg(template: Template) -> str:
    """The bare dial for the reading-aid overlay: transparent, centre (0, 0), film radius 100 in
    a viewBox of -150..150; ticks and labels at the canonical angles. Empty dial when no angle
    is known."""
    dial = template.dial
    scale = 100.0 / R
    marks = _dial_marks(dial, R, True, 15, OVERLAY, "#000000") if dial is not None else []
    ring = circle(0, 0, R, "none", OVERLAY[0], 1.5, ' stroke-opacity="0.8"')
    axis = line(0, -R, 0, R, OVERLAY[0], 1.0, ' stroke-dasharray="4 4" stroke-opacity="0.7"')
    inlet = text(0, -R - 38, "inlet", 13, OVERLAY[0], "middle", "bold")
    return ('<svg xmlns="http://www.w3.org/2000/svg" version="1.2" baseProfile="tiny" width="300" height="300" '
            'viewBox="-150 -150 300 300">'
            f'<g transform="scale({_f(scale)})">{ring}{axis}{inlet}{"".join(marks)}</g></svg>\n')


def write_diagrams(root: Path | None = None) -> list[Path]:
    """Write diagram.svg beside every template. Returns the paths written."""
    written = []
    for valve_id in (*VALVE_IDS, UNKNOWN_VALVE_ID):
        template = load_template(valve_id, root)
        assert template.folder is not None
        target = template.folder / "diagram.svg"
        target.write_text(diagram_svg(template), encoding="utf-8")
        written.append(target)
    return written


if __name__ == "__main__":
    for written_path in write_diagrams(Path(sys.argv[1]) if len(sys.argv) > 1 else None):
        print(written_path)
