"""Build the bundled samples in resources/samples: composites of real crops plus one phantom.

    python -m valvereader.phantoms.samples [--crops ../shared/data/csf-shuntvalves] [--out resources/samples]

Writes the DICOM files, ``ground_truth.csv`` and ``ATTRIBUTION.md`` (the crops are CC BY 4.0).
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import replace
from pathlib import Path

from ..paths import samples_dir, shared_dir
from .composite import Crop
from .dataset import COLUMNS, plan, row
from .render import render

# (file stem, kind, valve id, crop file or setting, view, photometric, transfer syntax)
SAMPLES: tuple[tuple[str, str, str, str, str, str, str], ...] = (
    (
        "composite_codman_hakim",
        "composite",
        "codman_hakim_programmable",
        "codmanhakim_10.png",
        "lateral",
        "MONOCHROME2",
        "jpeg2000",
    ),
    (
        "composite_progav2_mono1",
        "composite",
        "miethke_progav_2",
        "progav2_0.png",
        "ap",
        "MONOCHROME1",
        "jpeg2000",
    ),
    (
        "composite_strata",
        "composite",
        "medtronic_ps_medical_strata",
        "medtronic_ps_medical_strata_10.png",
        "lateral",
        "MONOCHROME2",
        "jpeg2000",
    ),
    (
        "composite_sophy",
        "composite",
        "sophysa_sophy_minism8",
        "sophy_0.png",
        "lateral",
        "MONOCHROME1",
        "jpeg2000",
    ),
    (
        "composite_integra_dp",
        "composite",
        "integra_dp",
        "integra_dp_11.png",
        "ap",
        "MONOCHROME2",
        "jpeg2000",
    ),
    (
        "phantom_certas_plus_4",
        "phantom",
        "codman_certas_plus",
        "4",
        "lateral",
        "MONOCHROME2",
        "jpeg2000",
    ),
)

ATTRIBUTION = """# Sample radiographs: attribution

The `composite_*.dcm` files contain real X-ray crops of implanted CSF shunt valves from the
public dataset "CSF Shunt Valves" accompanying Rhomberg T., Trivik-Barrientos F., Hakim A.
et al., "Applied deep learning in neurosurgery: identifying cerebrospinal fluid (CSF) shunt
systems in hydrocephalus patients", Acta Neurochirurgica 166:69 (2024),
doi:10.1007/s00701-024-05940-3, published at github.com/CSFShuntvalves/xray_csf_shuntvalves.
Licence: Creative Commons Attribution 4.0 International (CC BY 4.0),
https://creativecommons.org/licenses/by/4.0/.

Crops used (dataset folder/file):
{crops}

What was changed: each crop was converted to greyscale, resized, rotated, feathered at its
edges and blended into a synthetic (procedurally drawn) skull radiograph in the attenuation
domain; the combined image then received simulated scatter, quantum noise, heel effect,
windowing, collimation, burned-in text and a lead marker, and was saved as DICOM. The skull,
the patient data and all DICOM attributes are synthetic. `phantom_*.dcm` contains no real
image data. The ground truth (valve, box of the placed crop) is in `ground_truth.csv`.

These images are for demonstration and tests only; they are not patient images and not for
diagnostic use.
"""


def build_samples(crops_dir: Path, out_dir: Path, seed: int = 2026) -> Path:
    """Render the samples into ``out_dir``; returns the path of its ``ground_truth.csv``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    base = plan(len(SAMPLES) * 2, seed, shape=(1024, 1280))
    rows = []
    for i, (stem, kind, valve_id, detail, view, photometric, syntax) in enumerate(SAMPLES):
        template = base[i * 2]
        crop = Crop(crops_dir / valve_id / detail, valve_id) if kind == "composite" else None
        spec = replace(
            template.spec,
            view=view,
            photometric=photometric,
            syntax=syntax,
            bits_stored=12,
            patient_id=f"SAMPLE{i + 1:02d}",
            patient_name=f"SAMPLE^{i + 1:02d}",
        )
        job = replace(
            template,
            kind=kind,
            valve_id=valve_id,
            crop=crop,
            view=view,
            position="parietal",
            setting=detail if kind == "phantom" else "",
            file=f"{stem}.dcm",
            spec=spec,
            patient_id=spec.patient_id,
        )
        rows.append(row(job, render(job, out_dir)))
    path = out_dir / "ground_truth.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    listed = "\n".join(f"- `{r['source_crop']}` in `{r['file']}`" for r in rows if r["source_crop"])
    (out_dir / "ATTRIBUTION.md").write_text(ATTRIBUTION.format(crops=listed), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    shared = shared_dir()
    default_crops = shared / "data" / "csf-shuntvalves" if shared else None
    parser.add_argument("--crops", type=Path, default=default_crops, required=default_crops is None)
    parser.add_argument("--out", type=Path, default=samples_dir())
    args = parser.parse_args()
    print(build_samples(args.crops, args.out))


if __name__ == "__main__":
    main()
