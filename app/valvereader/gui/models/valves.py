"""Valve names, templates and diagrams for display, without Qt (the panels, the worklist and
the exports share them). Every lookup degrades to the id when the catalogue is missing."""

from __future__ import annotations

import html
import logging
import re
from pathlib import Path
from typing import Any

from ...catalogue import load_catalogue
from ...errors import TemplateError

log = logging.getLogger(__name__)
TAG = re.compile(r"\s*\[[CSMU/]+\]\s*$")
UNVERIFIED = '<span style="color:#ffb347;font-weight:bold">[unverified]</span>'


def valve_label(valve_id: str) -> tuple[str, str]:
    """(name, manufacturer) from the catalogue, falling back to the id."""
    try:
        valve = load_catalogue().get(valve_id)
    except (TemplateError, OSError):
        valve = None
    if valve is None:
        return (valve_id.replace("_", " ").title(), "")
    return (valve.name, valve.manufacturer.split(" [")[0])


def short_name(valve_id: str) -> str:
    """A worklist-sized name: 'CODMAN CERTAS Plus', 'proGAV 2.0', 'Integra fixed DP'."""
    name = re.sub(r"\s*\([^)]*\)", "", valve_label(valve_id)[0])
    for tail in (" Programmable Valve", " programmable valve", " adjustable valve", " Adjustable Valve", " Valve",
                 " valve"):
        name = name.replace(tail, "")
    return name if len(name) <= 24 else name[:23] + "…"


def load_template(valve_id: str) -> Any | None:
    """The templates module's template, or None if it (or the valve's page) is missing."""
    try:
        from ...catalogue.templates import load_template as load
    except ImportError:
        return None
    try:
        return load(valve_id)
    except (TemplateError, KeyError, OSError, ValueError) as exc:
        log.warning("Template for %s cannot be loaded: %s", valve_id, exc)
        return None


def template_sections(template: Any | None) -> list[tuple[str, list[str]]]:
    """The template as (heading, lines) for the panel and the reports; none without a template."""
    from ...catalogue.templates import Template
    from ...catalogue.text import sections

    return sections(template) if isinstance(template, Template) else []


def diagram_path(valve_id: str) -> Path | None:
    try:
        valve = load_catalogue().get(valve_id)
    except (TemplateError, OSError):
        return None
    return valve.diagram if valve is not None else None


def sections_html(template: Any) -> str:
    blocks = template_sections(template)
    if not blocks:
        return "<p><i>No reading template is installed for this valve.</i></p>"
    parts = []
    for title, lines in blocks:
        items = "".join(f"<li>{_mark_unverified(line)}</li>" for line in lines) or "<li><i>missing</i></li>"
        parts.append(f"<h4>{html.escape(title)}</h4><ul>{items}</ul>")
    return "".join(parts)


def _mark_unverified(line: str) -> str:
    """Unverified facts get a visible badge up front; the other tags are dimmed at the end."""
    line = str(line)
    for marker in ("[U] unverified", "[U]"):
        if line.rstrip().endswith(marker):
            return f"{UNVERIFIED} {html.escape(line.rstrip()[: -len(marker)].rstrip())}"
    match = TAG.search(line)
    if match:
        return f"{html.escape(line[: match.start()])}<span style='color:#7d838b'>{html.escape(match.group(0))}</span>"
    return html.escape(line)
