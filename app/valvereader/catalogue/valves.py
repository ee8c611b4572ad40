"""The valve catalogue: the 8 known valve ids and their templates."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ..errors import TemplateError
from ..paths import templates_dir

# Class order of every model: the label names of the csf-shuntvalves data set.
VALVE_IDS: tuple[str, ...] = (
    "codman_hakim_programmable",
    "codman_certas_plus",
    "sophysa_sophy_minism8",
    "miethke_progav_2",
    "miethke_progav_1",
    "medtronic_ps_medical_strata",
    "integra_dp",
    "medtronic_ps_medical_delta",
)
UNKNOWN_VALVE_ID = "unknown"


def diagram_in(folder: Path | None) -> Path | None:
    """``folder/diagram.svg`` where there is one."""
    path = folder / "diagram.svg" if folder is not None else None
    return path if path is not None and path.exists() else None


@dataclass(frozen=True)
class Valve:
    valve_id: str
    name: str
    manufacturer: str
    kind: str  # "programmable" or "fixed"
    template: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    folder: Path | None = None

    @property
    def diagram(self) -> Path | None:
        return diagram_in(self.folder)


# libyaml's safe loader where PyYAML was built with it (the same mappings, about 7 times faster:
# a template took 13-23 ms in Python, in the window's thread when a valve was first shown).
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_template_yaml(path: Path) -> dict[str, Any]:
    """The mapping in a template.yaml file.

    Raises:
        TemplateError: missing file, invalid YAML, or not a mapping.
    """
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)
    except FileNotFoundError as exc:
        raise TemplateError(f"template missing: {path}; reinstall valvereader or restore the file") from exc
    except yaml.YAMLError as exc:
        raise TemplateError(f"template {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise TemplateError(f"template {path} must be a mapping of keys, not {type(data).__name__}")
    return data


def load_template(folder: Path) -> dict[str, Any]:
    path = folder / "template.yaml"
    data = read_template_yaml(path)
    for key in ("id", "name", "manufacturer", "type"):
        if key not in data:
            raise TemplateError(f"template {path} lacks '{key}'")
    return data


@lru_cache(maxsize=4)
def load_catalogue(root: Path | None = None) -> dict[str, Valve]:
    """All valves with a template under ``root`` (default: bundled templates), keyed by id.

    Raises:
        TemplateError: a known valve id has no valid template.
    """
    root = root or templates_dir()
    valves: dict[str, Valve] = {}
    for valve_id in (*VALVE_IDS, UNKNOWN_VALVE_ID):
        folder = root / valve_id
        if not folder.is_dir():
            if valve_id == UNKNOWN_VALVE_ID:
                continue
            raise TemplateError(f"no template folder for valve '{valve_id}' in {root}")
        data = load_template(folder)
        if data["id"] != valve_id:
            raise TemplateError(f"{folder}/template.yaml says id '{data['id']}', expected '{valve_id}'")
        kind = str(data["type"]).split()[0]
        valves[valve_id] = Valve(valve_id, str(data["name"]), str(data["manufacturer"]), kind, data, folder)
    return valves


def display_name(valve_id: str) -> str:
    try:
        return load_catalogue()[valve_id].name
    except (KeyError, TemplateError):
        return valve_id
