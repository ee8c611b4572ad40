"""Help ▸ About (version, model card, licences, data attribution) and the shortcut sheet (?)."""

from __future__ import annotations

import html
import json
import math
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


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def card_summary(card: dict[str, Any]) -> str:
    """What the model card says a reader should know first, in plain words: how often the
    identifier was right on held-out real crops, and how well it flags a valve type it never
    saw. Only figures the card holds; nothing when it holds none."""
    metrics = _dict(card.get("metrics"))
    parts = []
    accuracy, f1, n = _number(metrics.get("accuracy")), _number(metrics.get("macro_f1")), metrics.get("test_n")
    if accuracy is not None:
        text = f"On {n} held-out real valve crops it named {accuracy:.1%} correctly" if n else f"Held-out accuracy {accuracy:.1%}"
        if f1 is not None:
            text += f" (macro-F1 {f1:.2f})"
        cv = _dict(metrics.get("cross_validation"))
        cv_accuracy = cv.get("accuracy") if isinstance(cv.get("accuracy"), list) else None
        if cv_accuracy and _number(cv_accuracy[0]) is not None and len(cv_accuracy) > 1:
            text += f"; {cv.get('folds', 5)}-fold cross-validation {float(cv_accuracy[0]):.1%} ± {float(cv_accuracy[1]):.1%}"
        parts.append(text + ".")
    openset = _dict(card.get("openset"))
    honest = _dict(openset.get("auroc_loco_honest"))
    mean, sd = _number(honest.get("mean")), _number(honest.get("sd"))
    if mean is not None:
        parts.append(f"A valve type it was never trained on is told apart from the known ones with an AUROC of "
                     f"{mean:.2f}{f' ± {sd:.2f}' if sd is not None else ''} (1.0 perfect, 0.5 chance); valves that look "
                     "like a known type are often missed, so \"unknown valve\" is a hint, not a guarantee.")
    if not parts:
        return ""
    return "<p>" + " ".join(html.escape(part) for part in parts) + " On whole radiographs it is less reliable than on close-up crops: compare every answer with the template.</p>"


def _card_html(card: dict[str, Any] | None, model_name: str | None) -> str:
    if not card:
        return "<p><i>No model is loaded (yet). See the result panel for where to put weights.</i></p>"
    rows = []
    for key, value in card.items():
        if key in ("files", "class_ids", "preprocessing", "classifier_weight_key") or value in (None, "", [], {}):
            continue
        text = json.dumps(value, indent=1, default=str) if isinstance(value, (dict, list)) else str(value)
        # The key keeps its own column (a wide value must not squeeze it to a letter a line),
        # and a long value wraps instead of widening the table.
        rows.append(f"<tr><td valign='top' width='150' style='white-space:nowrap'><b>{html.escape(str(key))}</b></td>"
                    f"<td><pre style='white-space:pre-wrap'>{html.escape(text[:800])}</pre></td></tr>")
    return f"<p><b>{html.escape(model_name or '')}</b></p>{card_summary(card)}<table>{''.join(rows)}</table>"


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
