"""A template as text blocks (heading, lines) shared by the GUI template panel and the PDF report.

One way: this module reads templates; templates know nothing of their text layout.
"""

from __future__ import annotations

from .templates import DialSetting, Template, clock_position, load_all

CANONICAL_VIEW = (
    "Angles: valve seen from the scalp, inlet at 12 o'clock, flow downward, degrees clockwise."
)
TAG_LEGEND = (
    "Tags: [C] confirmed (manufacturer/regulator), [S] secondary source, "
    "[M] approximate (measured from a figure), [U] unverified - check before relying on it."
)


def _tagged(text: str, tag: str) -> str:
    return f"{text} {'[U] unverified' if tag == 'U' else f'[{tag}]'}"


def setting_line(setting: DialSetting) -> str:
    """'30 mmH2O: indicator at 68 deg (2:16) [M]' or '...: indicator angle not known [U] unverified'."""
    if setting.angle_deg is None:
        where = "indicator angle not known"
    elif setting.angle_tag == "U":  # a listed angle, not a reading: the dial reads no pressure here
        where = f"indicator angle {setting.angle_deg:g} deg ({clock_position(setting.angle_deg)}) not verified"
    else:
        where = f"indicator at {setting.angle_deg:g} deg ({clock_position(setting.angle_deg)})"
    return _tagged(f"{setting.text()}: {where}", setting.tag)


def sections(t: Template) -> list[tuple[str, list[str]]]:
    """The template as (heading, lines) for the GUI panel and the PDF report.

    Every line ends with its tag; [U] lines say 'unverified'. Reading steps are numbered.
    """
    s = t.settings
    out: list[tuple[str, list[str]]] = []

    type_line = f"Type: {t.type_fact.line()}" if t.type_fact else f"Type: {t.type}"
    valve = [f"{t.name} - {t.manufacturer}", type_line, t.summary.line()]
    if t.mechanism:
        valve.append(t.mechanism.line())
    out.append(("Valve", valve))

    unit = f"{s.unit}, {s.quantity}" if s.unit else s.quantity
    lines = [_tagged(f"Scale: {unit}", s.tag)]
    dial = t.dial
    if dial is not None:
        lines.append(CANONICAL_VIEW)
        lines.append(s.angles.line())
        lines += [setting_line(v) for v in s.values]
    elif s.values:
        lines.append(s.angles.line())
        lines += [_tagged(f"Level {v.text()}", v.value_tag) for v in s.values]
    else:
        lines.append(s.angles.line())
    for r in s.ranges:
        values = ", ".join(f"{x:g}" for x in r.values)
        lines.append(_tagged(f"Range {r.name} ({r.dots} dots): {values} {s.unit or ''}".rstrip(), r.tag))
    lines += [f"Special position: {f.line()}" for f in s.special_positions]
    lines += [f.line() for f in s.variants]
    out.append(("Settings", lines))

    out.append(("How to read the X-ray", [f"{i}. {f.line()}" for i, f in enumerate(t.reading_steps, 1)]))
    marks = [f.line() for f in t.reference_marks] + [f"Mirror image: {t.mirror_check.line()}"]
    out.append(("Reference marks and mirror image", marks))
    out.append(("Radiopaque parts", [f.line() for f in [*t.radiopaque_parts, *t.appearance, t.distinguishing]]))

    check = {True: "yes", False: "not required by the manufacturer", None: "not known"}[t.mri.check_after_mri]
    mri = [t.mri.conditions.line(), *(n.line() for n in t.mri.notes),
           f"Check the setting after MRI: {check}. {t.mri.advice.line()}"]
    out.append(("MRI", mri))
    if t.adjustment:
        out.append(("Adjustment", [t.adjustment.line()]))
    out.append(("Pitfalls", [f.line() for f in t.pitfalls]))
    unverified = [f"[U] unverified: {f.text}" for f in t.unverified_facts()]
    out.append(("Unverified", unverified or ["No fact of this template is tagged unverified."]))
    out.append(("Sources", [f"{key}: {text}" for key, text in t.sources.items()] + [TAG_LEGEND]))
    return out


def as_plain_text(t: Template) -> str:
    """All sections as one plain-text page (headings underlined), for logs and quick looks."""
    parts = []
    for heading, lines in sections(t):
        parts.append(f"{heading}\n{'-' * len(heading)}\n" + "\n".join(lines))
    return "\n\n".join(parts) + "\n"


def markdown_summary(t: Template) -> str:
    """What a template says, condensed for docs/templates.md."""
    s = t.settings
    out = [f"### {t.name} (`{t.valve_id}`)", "", f"- **Type:** {t.type}. Facts entry: `{t.facts_id}`."]
    if t.dial is not None and t.dial.readable:
        values = ", ".join(f"{v.label} → {v.angle_deg:g}°" for v in s.values)
        out.append(f"- **Settings ({s.unit}) → indicator angle [{s.angles.tag}]:** {values}.")
    elif s.values:
        values = ", ".join(v.text() for v in s.values)
        out.append(f"- **Settings:** {values}; indicator angles: none [{s.angles.tag}].")
    for r in s.ranges:
        out.append(f"  - range {r.name}, {r.dots} dot(s): {', '.join(f'{x:g}' for x in r.values)} [{r.tag}]")
    out += [f"- **Special position:** {f.text} [{f.tag}]" for f in s.special_positions]
    out.append("- **How to read:** " + " ".join(f"({i}) {f.text} [{f.tag}]" for i, f in enumerate(t.reading_steps, 1)))
    out.append(f"- **Mirror image:** {t.mirror_check.text} [{t.mirror_check.tag}]")
    check = {True: "yes", False: "not required by the manufacturer", None: "not known"}[t.mri.check_after_mri]
    out.append(f"- **MRI:** {t.mri.conditions.text} [{t.mri.conditions.tag}] Check after MRI: **{check}**.")
    return "\n".join(out) + "\n"


EVIDENCE_HEADER = (
    "| Valve | Type | Settings and values | Indicator angles (dial) | Orientation / mirror cue "
    "| MRI | What the dial reading shows | Not verified (open) |\n|---|---|---|---|---|---|---|---|"
)


def _docs(t: Template, keys: tuple[str, ...] | list[str]) -> str:
    """Source keys as document names (the part of each source before its address)."""
    def short(doc: str) -> str:
        name = doc.split(" - ")[0].split(" (")[0]
        return name if len(name) <= 60 or "," not in name[:60] else name[: name.rfind(",", 0, 60)]

    return "; ".join(dict.fromkeys(short(t.sources[k]) for k in keys)) or "no source"


def _cell(t: Template, tag: str, keys: tuple[str, ...] | list[str], where: str = "") -> str:
    text = f"**[{tag}]** {_docs(t, keys)}" + (f" ({where})" if where else "")
    return text.replace("|", "/")


def _dial_shows(t: Template) -> str:
    dial = t.dial
    if dial is None:
        return "no dial (not adjustable or not identified)"
    known = [v for v in dial.settings if v.angle_deg is not None]
    if not known:
        return "no setting: indicator angles not known **[U]**"
    if all(v.angle_tag == "U" for v in known):
        return "the clock position only, no pressure **[U]**"
    first = known[0]
    if first.others:
        models = ", ".join(o.model for o in first.others)
        return f"the setting with the {first.model} value **[{first.tag}]** and the {models} value(s) beside it"
    extra = ", with the neighbouring settings it may be" if any(v.neighbours for v in known) else ""
    return f"the setting **[{first.tag}]**{extra}"


def markdown_evidence_row(t: Template) -> str:
    """One row of the check-list table: what is verified, from which source, and what is not."""
    s = t.settings
    type_cell = _cell(t, t.type_fact.tag, t.type_fact.sources) if t.type_fact else t.type
    values = _cell(t, s.tag, s.sources, str(t.raw["settings"].get("where", "")))
    others = {(o.model, o.tag) for v in s.values for o in v.others}
    values += "".join(f"; {model} **[{tag}]**" for model, tag in sorted(others))
    angles = _cell(t, s.angles.tag, s.angles.sources, s.angles.where) if t.dial is not None else "none (no dial)"
    mirror = _cell(t, t.mirror_check.tag, t.mirror_check.sources)
    check = {True: "check after MRI: yes", False: "check after MRI: not required", None: "check after MRI: not known"}
    mri = _cell(t, t.mri.conditions.tag, t.mri.conditions.sources, t.mri.conditions.where)
    mri += f"; {check[t.mri.check_after_mri]}"
    mri += "".join(f"; note **[{n.tag}]**" for n in t.mri.notes)
    gaps = "; ".join(f.text.replace("|", "/") for f in t.open_questions) or "-"
    name = f"{t.name} (`{t.valve_id}`)"
    return f"| {name} | {type_cell} | {values} | {angles} | {mirror} | {mri} | {_dial_shows(t)} | {gaps} |"


def markdown_evidence_table(templates: list[Template]) -> str:
    """The check list of docs/templates.md: one row per template."""
    return "\n".join([EVIDENCE_HEADER, *(markdown_evidence_row(t) for t in templates)]) + "\n"


def markdown_unverified(t: Template) -> str:
    """The template's [U] facts as a markdown list for docs/templates.md."""
    return "\n".join([f"**{t.name}** (`{t.valve_id}`)", "", *(f"- {f.text}" for f in t.unverified_facts())]) + "\n"


if __name__ == "__main__":  # prints the generated half of docs/templates.md
    everything = list(load_all().values())
    print("## Check list: what is verified, from which source, and what is not\n")
    print("One row per valve, generated from the templates by `python -m valvereader.catalogue.text`. "
          "Tags: **[C]** manufacturer or regulator document, **[S]** secondary source, **[M]** measured "
          "on a figure (approximate), **[U]** unverified. A cell names the document(s) the fact rests on; "
          "the full addresses are in each template's `sources`.\n")
    print(markdown_evidence_table(everything))
    print("## What each template says\n")
    print("\n".join(markdown_summary(t) for t in everything))
    print("## Facts still unverified\n")
    print("Generated by `python -m valvereader.catalogue.text`; a test checks that every item is listed here.\n")
    print("\n".join(markdown_unverified(t) for t in everything), end="")
