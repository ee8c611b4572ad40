"""Pressure-reading templates: typed, schema-checked views of resources/templates/<id>/template.yaml.

A template tells a radiologist how to read one valve's setting on an X-ray. Every fact keeps
its evidence tag (C confirmed, S secondary, M measured from a figure, U unverified) and the
keys of its sources, so that the GUI and the PDF report can show how far each line is trusted.

Angles use the canonical view: valve seen from the scalp, inlet at 12 o'clock, flow
downward, degrees clockwise. No Qt here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import TemplateError
from ..paths import templates_dir
from .schema import TAGS, validate
from .valves import UNKNOWN_VALVE_ID, VALVE_IDS, diagram_in, read_template_yaml

__all__ = ["TAGS", "Dial", "DialSetting", "Fact", "Template", "load_all", "load_template", "reading_basis", "validate"]

TAG_MEANING: dict[str, str] = {
    "C": "confirmed in a manufacturer or regulator document",
    "S": "secondary source",
    "M": "approximate, measured from a figure",
    "U": "unverified",
}


def weakest_tag(*tags: str) -> str:
    """The least trusted of ``tags`` (U weaker than M weaker than S weaker than C)."""
    return max(tags, key=TAGS.index)


def tag_marker(tag: str) -> str:
    """'[C]', '[M]'...; '[U] unverified' for U."""
    return "[U] unverified" if tag == "U" else f"[{tag}]"


def clock_position(angle_deg: float) -> str:
    """A canonical angle as a clock reading: 90 -> '3:00', 68 -> '2:16'."""
    minutes = round((angle_deg % 360.0) * 2.0) % 720  # 360 degrees = 720 clock minutes
    hours, mins = divmod(minutes, 60)
    return f"{hours or 12}:{mins:02d}"


@dataclass(frozen=True)
class Fact:
    """One statement of a template with its evidence tag and source keys."""

    text: str
    tag: str
    sources: tuple[str, ...] = ()
    name: str = ""
    where: str = ""  # page, figure or 'measured on <figure>' within the sources

    @property
    def unverified(self) -> bool:
        return self.tag == "U"

    def cited(self) -> str:
        """'ifu: Graph 1', 'programmer_insets: measured on ...', 'no source'."""
        keys = ", ".join(self.sources) or "no source"
        return f"{keys}: {self.where}" if self.where else keys

    def line(self) -> str:
        """The text, its source and its tag, e.g. 'Setting 8 is off. (ifu: Graph 1) [C]';
        [U] facts say 'unverified'."""
        head = f"{self.name}: " if self.name else ""
        return f"{head}{self.text} ({self.cited()}) {tag_marker(self.tag)}"


@dataclass(frozen=True)
class OtherModel:
    """The same dial position on a model the film cannot tell apart (e.g. original CERTAS)."""

    model: str
    pressure: str
    tag: str  # the weaker of that model's value and of the angle read on it


@dataclass(frozen=True)
class DialSetting:
    """One position of a valve's scale and where its indicator points in the canonical view.

    ``tag`` is the weaker of ``value_tag`` (is this a setting of the valve?) and ``angle_tag``
    (does the indicator point there?): the trust a reading through the dial deserves.
    ``angle_deg`` is None when the angle is not known. ``model`` names the model whose table
    ``value`` comes from when ``others`` lists look-alike models with other values;
    ``neighbours`` are the settings the indicator may really show when the published angles
    are less certain than half a step; ``basis`` says which facts a reading rests on.
    """

    label: str
    value: float | str | None
    unit: str | None
    angle_deg: float | None
    tag: str
    value_tag: str = "C"
    angle_tag: str = "U"
    pressure: str = ""
    model: str = ""
    others: tuple[OtherModel, ...] = ()
    neighbours: tuple[str, ...] = ()
    basis: str = ""
    short_basis: str = ""  # tags and source keys only, for a report line

    def text(self) -> str:
        """'100 mmH2O', 'setting 1 (25 mmH2O (+/-20))', 'performance level 0.5 (15-25 mmH2O ...)'."""
        if self.unit == "performance level":
            base = f"performance level {self.label}"
        elif self.unit and self.label == _plain(self.value):
            base = f"{self.label} {self.unit}"
        else:
            base = f"setting {self.label}"
            if not self.pressure and self.value is not None and self.unit:
                return f"{base} ({_plain(self.value)} {self.unit})"
        return f"{base} ({self.pressure})" if self.pressure else base

    def _value_text(self) -> str:
        if self.pressure:
            return self.pressure
        return f"{_plain(self.value)} {self.unit}".strip() if self.value is not None else "value not known"

    def reading_text(self) -> str:
        """What the dial reports for this position, with the tag of the facts it rests on.

        A position whose angle is unverified names only where the indicator points: the dial
        cannot turn it into a pressure. Look-alike models are all named with their values;
        uncertain angles name the neighbours the indicator may really show.
        """
        if self.angle_tag == "U" and self.angle_deg is not None:
            return (f"indicator at {clock_position(self.angle_deg)} ({self.angle_deg:g} deg) {tag_marker('U')}: "
                    "dial geometry not verified for this valve, no pressure read")
        if self.others:
            name = "performance level" if self.unit == "performance level" else "setting"
            tags = {self.tag, *(o.tag for o in self.others)}
            alike = len(tags) == 1
            own = self._value_text().replace(f" ({self.model})", "")
            models = [f"{own} if {self.model}" + ("" if alike else f" {tag_marker(self.tag)}")]
            models += [f"{o.pressure} if {o.model}" + ("" if alike else f" {tag_marker(o.tag)}") for o in self.others]
            joined = ", ".join(models) if alike else "; ".join(models)
            return f"{name} {self.label}: {joined}" + (f" {tag_marker(self.tag)}" if alike else "")
        text = f"{self.text()} {tag_marker(self.tag)}"
        if self.neighbours:
            text += f", may be {' or '.join(self.neighbours)}"
        return text


def _plain(value: float | str | None) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _angle_gap(a: float, b: float) -> float:
    d = abs(a - b) % 360.0
    return min(d, 360.0 - d)


@dataclass(frozen=True)
class Dial:
    """The valve's scale as a dial: settings at indicator angles in the canonical view."""

    settings: list[DialSetting]
    sense: str | None = None
    tolerance_deg: float | None = None  # how far the published angles may be off
    angles: Fact | None = None

    @property
    def readable(self) -> bool:
        """True when at least one setting has a known indicator angle."""
        return any(s.angle_deg is not None for s in self.settings)

    @property
    def capture_deg(self) -> float:
        """Half the typical gap between neighbouring settings: farther than this from every
        setting (e.g. in a dead sector) an indicator angle matches none."""
        angles = sorted(s.angle_deg for s in self.settings if s.angle_deg is not None)
        if len(angles) < 2:
            return 180.0
        gaps = sorted(
            (angles[(i + 1) % len(angles)] - a) % 360.0 or 360.0 for i, a in enumerate(angles)
        )
        return max(gaps[len(gaps) // 2] / 2.0, 1e-6)

    def setting_at(self, angle_deg: float, mirrored: bool = False) -> DialSetting | None:
        """The setting whose indicator angle is nearest to ``angle_deg``.

        Args:
            angle_deg: indicator direction, degrees clockwise from the inlet (12 o'clock).
            mirrored: the angle was measured on a mirror image (valve seen through its base),
                so its sense is reversed before matching.

        Returns:
            The nearest setting, or None when no angle is known or the indicator lies farther
            than ``capture_deg`` from every setting.
        """
        if not math.isfinite(angle_deg):
            return None
        canonical = (-angle_deg if mirrored else angle_deg) % 360.0
        known = [s for s in self.settings if s.angle_deg is not None]
        if not known:
            return None
        best = min(known, key=lambda s: _angle_gap(canonical, float(s.angle_deg or 0.0)))
        gap = _angle_gap(canonical, float(best.angle_deg or 0.0))
        return best if gap <= self.capture_deg + 1e-9 else None

    def setting(self, label: str) -> DialSetting:
        """The setting called ``label``. Raises KeyError if there is none."""
        for s in self.settings:
            if s.label == label:
                return s
        raise KeyError(label)


@dataclass(frozen=True)
class PressureRange:
    """A range variant coded by radiopaque dots (Sophy): the values of positions 1..n."""

    name: str
    dots: int
    values: tuple[float, ...]
    tag: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Settings:
    adjustable: bool | None
    quantity: str
    unit: str | None
    tag: str
    sources: tuple[str, ...]
    angles: Fact
    sense: str | None
    tolerance_deg: float | None
    values: list[DialSetting]
    ranges: list[PressureRange]
    special_positions: list[Fact]
    variants: list[Fact]


@dataclass(frozen=True)
class MriInfo:
    conditions: Fact
    check_after_mri: bool | None  # None: not known from our sources
    advice: Fact
    notes: tuple[Fact, ...] = ()  # e.g. a limit that differs between labelling revisions

    def line(self) -> str:
        """One line for a report: conditions, notes, then whether the setting must be checked."""
        check = {True: "yes", False: "not required by the manufacturer", None: "not known"}
        notes = "".join(f" {n.line()}" for n in self.notes)
        return f"MRI: {self.conditions.line()}{notes} Check the setting after MRI: {check[self.check_after_mri]}."


@dataclass(frozen=True)
class Template:
    """A valve's pressure-reading template. Build with :func:`load_template`."""

    valve_id: str
    facts_id: str | None
    name: str
    manufacturer: str
    type: str
    summary: Fact
    mechanism: Fact | None
    radiopaque_parts: list[Fact]
    appearance: list[Fact]
    distinguishing: Fact
    settings: Settings
    reading_steps: list[Fact]
    reference_marks: list[Fact]
    mirror_check: Fact
    mri: MriInfo
    adjustment: Fact | None
    pitfalls: list[Fact]
    open_questions: list[Fact]
    sources: dict[str, str]
    source_kinds: dict[str, str] = field(default_factory=dict)  # key -> strongest tag it can carry
    type_fact: Fact | None = None  # the type line with its tag and sources
    folder: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def kind(self) -> str:
        """'programmable', 'fixed' or 'unknown' (first word of ``type``)."""
        return self.type.split()[0]

    @property
    def dial(self) -> Dial | None:
        """The reading dial of an adjustable valve (angles may all be unknown); None otherwise."""
        if self.kind != "programmable" or not self.settings.values:
            return None
        s = self.settings
        return Dial(list(s.values), s.sense, s.tolerance_deg, s.angles)

    @property
    def diagram(self) -> Path | None:
        return diagram_in(self.folder)

    def all_facts(self) -> list[Fact]:
        s = self.settings
        typed = self.type_fact is not None and self.kind != "unknown"  # 'unknown' states no fact
        facts = [*([self.type_fact] if typed and self.type_fact else []), self.summary]
        facts += [self.mechanism] if self.mechanism else []
        facts += [*self.radiopaque_parts, *self.appearance, self.distinguishing, s.angles]
        facts += [*s.special_positions, *s.variants, *self.reading_steps, *self.reference_marks]
        facts += [self.mirror_check, self.mri.conditions, *self.mri.notes, self.mri.advice]
        facts += [*([self.adjustment] if self.adjustment else []), *self.pitfalls]
        return facts + list(self.open_questions)

    def unverified_facts(self) -> list[Fact]:
        """Every [U] fact, each once, in template order; settings with unknown or unverified
        angles appear as one fact per setting."""
        seen: set[str] = set()
        found: list[Fact] = []
        for fact in self.all_facts():
            if fact.unverified and fact.text not in seen:
                seen.add(fact.text)
                found.append(fact)
        unknown = [s.label for s in self.settings.values if s.tag == "U" and s.angle_deg is None]
        unsure = [s.label for s in self.settings.values if s.tag == "U" and s.angle_deg is not None]
        if unknown and self.dial is not None:
            text = f"Indicator angle not known for setting(s) {', '.join(unknown)}"
            found.append(Fact(text, "U", self.settings.angles.sources))
        if unsure:
            text = f"Indicator angles of setting(s) {', '.join(unsure)} are unverified"
            found.append(Fact(text, "U", self.settings.angles.sources))
        unsure_values = [s.label for s in self.settings.values if s.value_tag == "U"]
        if unsure_values:
            found.append(Fact(f"Setting value(s) {', '.join(unsure_values)} unverified", "U", self.settings.sources))
        return found


# --- loading and validation -------------------------------------------------------------------


def _fact(node: dict[str, Any]) -> Fact:
    return Fact(str(node["text"]).strip(), node["tag"], tuple(node["source"]), str(node.get("name", "")),
                str(node.get("where", "")))


def _number(value: Any) -> float | str | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _cited(node: dict[str, Any]) -> str:
    keys = ", ".join(node.get("source", [])) or "no source"
    return f"{node['where']} ({keys})" if node.get("where") else keys


def _basis(settings: dict[str, Any], value: dict[str, Any], short: bool = False) -> str:
    """'[M] indicator angle [M]: measured on ... (ifu); value [C]: Graph 1 (ifu); ...'; with
    ``short`` only tags and source keys: '[M] angle M (ifu, card); value C (ifu)'."""

    def part(name: str, tag: str, node: dict[str, Any]) -> str:
        if short:
            return f"{name} {tag} ({', '.join(node.get('source', [])) or 'no source'})"
        return f"{name} [{tag}]: {_cited(node)}"

    angles = settings["angles"]
    parts = [part("angle" if short else "indicator angle", value["angle_tag"], angles)]
    who = f"{settings['model']} value" if settings.get("model") else "value"
    parts.append(part(who, value["tag"], settings))
    tags = [value["tag"], value["angle_tag"]]
    for other in value.get("others", []):
        parts.append(part(other["model"], other["tag"], other))
        tags.append(other["tag"])
    return f"[{weakest_tag(*tags)}] " + "; ".join(parts)


def _with_neighbours(values: list[DialSetting], tolerance_deg: float | None) -> list[DialSetting]:
    """Name a setting's neighbours where the angles' tolerance exceeds half the gap to them."""
    if not tolerance_deg:
        return values
    out = []
    for v in values:
        near = [
            n.text() for n in values
            if n is not v and v.angle_deg is not None and n.angle_deg is not None
            and _angle_gap(v.angle_deg, n.angle_deg) / 2.0 < tolerance_deg
        ]
        out.append(replace(v, neighbours=tuple(near)))
    return out


def from_dict(data: dict[str, Any], folder: Path | None = None, origin: str = "template") -> Template:
    """Validate ``data`` and build a :class:`Template`. Raises TemplateError."""
    validate(data, origin)
    s = data["settings"]
    unit = s["unit"]
    values = [
        DialSetting(
            label=str(v["label"]),
            value=_number(v["value"]),
            unit=unit,
            angle_deg=None if v["angle_deg"] is None else float(v["angle_deg"]),
            tag=weakest_tag(v["tag"], v["angle_tag"]),
            value_tag=v["tag"],
            angle_tag=v["angle_tag"],
            pressure=str(v.get("pressure", "")),
            model=str(s.get("model", "")),
            others=tuple(OtherModel(o["model"], o["pressure"], o["tag"]) for o in v.get("others", [])),
            basis=_basis(s, v),
            short_basis=_basis(s, v, short=True),
        )
        for v in s["values"]
    ]
    values = _with_neighbours(values, s["angles"]["tolerance_deg"])
    settings = Settings(
        adjustable=s["adjustable"],
        quantity=s["quantity"],
        unit=unit,
        tag=s["tag"],
        sources=tuple(s["source"]),
        angles=_fact(s["angles"]),
        sense=s["angles"]["sense"],
        tolerance_deg=s["angles"]["tolerance_deg"],
        values=values,
        ranges=[
            PressureRange(r["name"], r["dots"], tuple(float(x) for x in r["values"]), r["tag"], tuple(r["source"]))
            for r in s.get("ranges", [])
        ],
        special_positions=[_fact(f) for f in s["special_positions"]],
        variants=[_fact(f) for f in s.get("variants", [])],
    )
    mri = data["mri"]
    return Template(
        valve_id=data["id"],
        facts_id=data["facts_id"],
        name=data["name"],
        manufacturer=data["manufacturer"],
        type=data["type"],
        summary=_fact(data["summary"]),
        mechanism=_fact(data["mechanism"]) if "mechanism" in data else None,
        radiopaque_parts=[_fact(f) for f in data["radiopaque_parts"]],
        appearance=[_fact(f) for f in data["appearance"]],
        distinguishing=_fact(data["distinguishing"]),
        settings=settings,
        reading_steps=[_fact(f) for f in data["reading_steps"]],
        reference_marks=[_fact(f) for f in data["reference_marks"]],
        mirror_check=_fact(data["mirror_check"]),
        mri=MriInfo(_fact(mri["conditions"]), mri["check_after_mri"], _fact(mri["advice"]),
                    tuple(_fact(f) for f in mri.get("notes", []))),
        adjustment=_fact(data["adjustment"]) if "adjustment" in data else None,
        pitfalls=[_fact(f) for f in data["pitfalls"]],
        open_questions=[_fact(f) for f in data["open_questions"]],
        sources={key: str(src["doc"]) for key, src in data["sources"].items()},
        source_kinds={key: str(src["kind"]) for key, src in data["sources"].items()},
        type_fact=_fact({"text": data["type"], "tag": data["type_tag"], "source": data["type_source"],
                         **({"where": data["type_where"]} if "type_where" in data else {})}),
        folder=folder,
        raw=data,
    )


def load_template(valve_id: str, root: Path | None = None) -> Template:
    """The template of ``valve_id`` (one of catalogue.VALVE_IDS or 'unknown').

    Args:
        valve_id: catalogue id.
        root: templates folder; default the bundled resources/templates.

    Raises:
        TemplateError: unknown id, missing file, invalid YAML or a schema violation.
    """
    return _load(valve_id, root or templates_dir())


@lru_cache(maxsize=32)
def _load(valve_id: str, root: Path) -> Template:
    if valve_id not in (*VALVE_IDS, UNKNOWN_VALVE_ID):
        raise TemplateError(f"no template for valve id '{valve_id}'; known ids: {', '.join(VALVE_IDS)}, unknown")
    folder = root / valve_id
    path = folder / "template.yaml"
    data = read_template_yaml(path)
    template = from_dict(data, folder, origin=str(path))
    if template.valve_id != valve_id:
        raise TemplateError(f"{path} says id '{template.valve_id}', expected '{valve_id}'")
    return template


def load_all(root: Path | None = None) -> dict[str, Template]:
    """Every template (8 valves and 'unknown'), keyed by valve id. Raises TemplateError."""
    return {vid: load_template(vid, root) for vid in (*VALVE_IDS, UNKNOWN_VALVE_ID)}


def reading_basis(valve_id: str | None, reading: str | None, short: bool = False) -> str:
    """The facts a saved reading rests on ('[M] indicator angle [M]: ...'), or '' when the
    reading is empty, the valve has no template or the text is not one of its dial's readings.
    ``short``: tags and source keys only, for a line of a report."""
    if not valve_id or not reading:
        return ""
    try:
        dial = load_template(valve_id).dial
    except TemplateError:
        return ""
    for setting in dial.settings if dial is not None else []:
        if reading in (setting.reading_text(), setting.text()):
            return setting.short_basis if short else setting.basis
    return ""
