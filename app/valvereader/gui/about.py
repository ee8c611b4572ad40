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
    rows = []
    for key, value in card.items():
        if key in ("files", "class_ids", "preprocessing", "classifier_weight_key") or value in (None, "", [], {}):
            continue
        text = json.dumps(value, indent=1, default=str) if isinstance(value, (dict, list)) else str(value)
        rows.append(f"<tr><td valign='top'><b>{html.escape(str(key))}</b></td>"
                    f"<td><pre>{html.escape(text[:800])}</pre></td></tr>")
    return f"<p><b>{html.escape(model_name or '')}</b></p><table>{''.join(rows)}</table>"


class TextDialog(QDialog):
    def __init__(self, title: str, body: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.resize(640, 720)
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
    """``shortcuts``: (group, key, what); groups keep the order they first appear in."""
    order = list(dict.fromkeys(section for section, _, _ in shortcuts))
    ordered = sorted(shortcuts, key=lambda item: order.index(item[0]))
    parts: list[str] = []
    group = None
    for section, key, what in ordered:
        if section != group:
            if group is not None:
                parts.append("</table>")
            parts.append(f"<h3>{html.escape(section)}</h3><table cellpadding='3'>")
            group = section
        parts.append(f"<tr><td width='150'><b>{html.escape(key)}</b></td><td>{html.escape(what)}</td></tr>")
    parts.append("</table>")
    return "".join(parts)
