"""Help ▸ About (version, model card, licences, data attribution) and the shortcut sheet (?)."""

from __future__ import annotations

import html
import json
from typing import Any

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from .. import DISCLAIMER, __version__

ATTRIBUTION = (
    'The valve models are trained on the public "CSF Shunt Valves" X-ray crop data set '
    "(Rhomberg T., Trivik-Barrientos F., Hakim A. et al., <i>Applied deep learning in neurosurgery: "
    "identifying cerebrospinal fluid (CSF) shunt systems in hydrocephalus patients</i>, Acta "
    "Neurochirurgica 166:69 (2024), doi:10.1007/s00701-024-05940-3), licensed CC BY 4.0. "
    "Changes: converted to 8-bit grey, a stratified subset, crops placed into synthetic skull "
    "radiographs. Valve facts come from public manufacturer and secondary sources listed in each "
    "template; facts tagged [U] are unverified and shown as such."
)
LICENCES = (
    "Shunt Valve Reader: MIT licence. Qt for Python (PySide6): LGPL v3. pydicom: MIT. "
    "NumPy, SciPy: BSD. Pillow: HPND. ONNX Runtime: MIT. ReportLab: BSD. highdicom: MIT. "
    "PyYAML: MIT. Model weights: derived from CC BY 4.0 data (see the model card)."
)


def _card_html(card: dict[str, Any] | None, model_name: str | None) -> str:
    if not card:
        return "<p><i>No model is loaded (yet). See the result panel for where to put weights.</i></p>"
    keys = ("name", "title", "version", "architecture", "created", "metrics", "thresholds", "data", "license")
    rows = []
    for key in keys:
        if key in card:
            value = card[key]
            text = json.dumps(value, indent=1) if isinstance(value, (dict, list)) else str(value)
            rows.append(f"<tr><td><b>{html.escape(key)}</b></td><td><pre>{html.escape(text[:1200])}</pre></td></tr>")
    full = html.escape(json.dumps(card, indent=1, default=str)[:20000])
    return (f"<p><b>{html.escape(model_name or '')}</b></p><table>{''.join(rows)}</table>"
            f"<details><summary>Full model card</summary><pre>{full}</pre></details>")


class TextDialog(QDialog):
    def __init__(self, title: str, body: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.resize(640, 560)
        layout = QVBoxLayout(self)
        self.text = QTextBrowser()
        self.text.setOpenExternalLinks(True)
        self.text.setHtml(body)
        layout.addWidget(self.text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)


def about_html(card: dict[str, Any] | None, model_name: str | None) -> str:
    return (f"<h2>Shunt Valve Reader {__version__}</h2>"
            f"<p style='color:#e0b070'><b>{html.escape(DISCLAIMER)}</b></p>"
            "<p>Identifies ventriculoperitoneal-shunt valves on skull X-rays, shows where the model "
            "looked and the valve's pressure-reading template.</p>"
            f"<h3>Model card</h3>{_card_html(card, model_name)}"
            f"<h3>Data attribution</h3><p>{ATTRIBUTION}</p>"
            f"<h3>Licences</h3><p>{LICENCES}</p>")


def shortcuts_html(shortcuts: list[tuple[str, str, str]]) -> str:
    """``shortcuts``: (group, key, what) in display order."""
    parts, group = [], None
    for section, key, what in shortcuts:
        if section != group:
            if group is not None:
                parts.append("</table>")
            parts.append(f"<h3>{html.escape(section)}</h3><table cellpadding='3'>")
            group = section
        parts.append(f"<tr><td width='150'><b>{html.escape(key)}</b></td><td>{html.escape(what)}</td></tr>")
    parts.append("</table>")
    return "".join(parts)
