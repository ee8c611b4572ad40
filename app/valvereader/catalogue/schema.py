"""Schema and consistency checks for template.yaml files (JSON Schema plus rules it cannot say)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from ..errors import TemplateError
from ..paths import templates_dir
from .valves import UNKNOWN_VALVE_ID, VALVE_IDS

TAGS: tuple[str, ...] = ("C", "S", "M", "U")  # strongest evidence first
SCHEMA_FILE = "schema.json"


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    path = templates_dir() / SCHEMA_FILE
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError as exc:
        raise TemplateError(f"template schema missing: {path}; reinstall valvereader") from exc


def _where(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def validate(data: Any, origin: str = "template") -> None:
    """Check a parsed template against the schema and the rules the schema cannot say.

    Raises:
        TemplateError: naming ``origin``, the key path and what is wrong.
    """
    import jsonschema  # imported here: only template loading needs it

    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), str(e.path)))
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise TemplateError(f"{origin}: at {_where(first.absolute_path)}: {first.message}{more}")
    valve_id = data["id"]
    if valve_id not in (*VALVE_IDS, UNKNOWN_VALVE_ID):
        raise TemplateError(f"{origin}: id '{valve_id}' is not a catalogue valve id")
    kind = data["type"].split()[0]
    if (valve_id == UNKNOWN_VALVE_ID) != (kind == "unknown"):
        raise TemplateError(f"{origin}: only the 'unknown' template may have type 'unknown ...'")
    _check_sources(data, origin)
    _check_settings(data["settings"], kind, origin)


def _check_sources(data: dict[str, Any], origin: str) -> None:
    """Every cited key is listed; a fact's tag follows its weakest link.

    A C or S fact names at least one source, and its tag is no stronger than the strongest
    source it cites (a fact resting on a third-party card is at best S). An M fact says which
    figure it was measured on (``where: measured on ...``) or cites labelled images (kind M).
    """
    kinds = {key: src["kind"] for key, src in data["sources"].items()}

    def check(node: dict[str, Any], path: str) -> None:
        cited = list(node.get("source", []))
        for key in cited:
            if key not in kinds:
                raise TemplateError(f"{origin}: at {path}: source '{key}' is not listed under 'sources'")
        tag = node["tag"]
        if tag in ("C", "S"):
            if not cited:
                raise TemplateError(f"{origin}: at {path}: a [{tag}] fact must name its source")
            best = min((kinds[k] for k in cited), key=TAGS.index)
            if TAGS.index(best) > TAGS.index(tag):
                raise TemplateError(
                    f"{origin}: at {path}: tagged [{tag}] but its strongest source ({', '.join(cited)}) "
                    f"is [{best}]; tag it [{best}] or weaker"
                )
        if tag == "M" and not str(node.get("where", "")).startswith("measured on") and "M" not in {kinds[k] for k in cited}:
            raise TemplateError(
                f"{origin}: at {path}: an [M] fact must say 'where: measured on <figure>' or cite labelled images"
            )

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if "tag" in node and ("text" in node or "model" in node):
                check(node, path or "(top level)")
            for key, child in node.items():
                if key != "sources":
                    walk(child, f"{path}.{key}" if path else key)
        elif isinstance(node, list):
            for i, child in enumerate(node):
                walk(child, f"{path}[{i}]")

    walk(data, "")
    type_fact = {"tag": data["type_tag"], "source": data["type_source"], "where": data.get("type_where", "")}
    check(type_fact, "type_tag")
    check({"tag": data["settings"]["tag"], "source": data["settings"]["source"],
           "where": data["settings"].get("where", "")}, "settings.tag")


def _check_settings(settings: dict[str, Any], kind: str, origin: str) -> None:
    values = settings["values"]
    labels = [v["label"] for v in values]
    if len(set(labels)) != len(labels):
        raise TemplateError(f"{origin}: settings.values has duplicate labels {labels}")
    expected = {"programmable": True, "fixed": False, "unknown": None}[kind]
    if settings["adjustable"] is not expected:
        raise TemplateError(f"{origin}: settings.adjustable must be {expected} for a {kind} valve")
    if kind == "programmable" and not values:
        raise TemplateError(f"{origin}: a programmable valve needs its settings under settings.values")
    angles_tag = settings["angles"]["tag"]
    for i, v in enumerate(values):
        where = f"{origin}: at settings.values[{i}] (label {v['label']})"
        if v["angle_deg"] is None and v["angle_tag"] != "U":
            raise TemplateError(f"{where}: an unknown angle (null) must be tagged U")
        if v["angle_deg"] is not None and kind != "programmable":
            raise TemplateError(f"{where}: a {kind} valve has no dial, so angle_deg must be null")
        if v["angle_deg"] is not None and TAGS.index(v["angle_tag"]) < TAGS.index(angles_tag):
            raise TemplateError(f"{where}: angle_tag {v['angle_tag']} claims more than settings.angles ({angles_tag})")
    for j, r in enumerate(settings.get("ranges", [])):
        if len(r["values"]) != len(values):
            raise TemplateError(
                f"{origin}: settings.ranges[{j}] has {len(r['values'])} values for {len(values)} positions"
            )
