"""The valve catalogue: the known valve ids, their reading templates, the templates' text and diagrams.

- ``valves``: the valve ids (the models' class order) and the catalogue read from the template folders;
- ``schema``: the template schema and the checks JSON Schema cannot say;
- ``templates``: a template as typed facts (dial, settings, MRI), loaded and validated;
- ``text``: a template as tagged text blocks for the window, the reports and docs/templates.md;
- ``diagrams``: the committed diagram.svg drawings and the bare dial of the reading aid;
- ``reading_aid``: a dial's pose on the film and the setting it points at.

The package itself exposes the catalogue (light: no template loading, no schema library).
"""

from .valves import (
    UNKNOWN_VALVE_ID,
    VALVE_IDS,
    Valve,
    display_name,
    load_catalogue,
    read_template_yaml,
)

__all__ = ["UNKNOWN_VALVE_ID", "VALVE_IDS", "Valve", "display_name", "load_catalogue", "read_template_yaml"]
