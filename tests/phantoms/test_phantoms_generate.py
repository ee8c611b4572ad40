"""Generated radiographs: readable DICOM, truthful boxes, deterministic, patients repeat."""

from __future__ import annotations

import csv
import importlib
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
import pytest

from valvereader.phantoms import generate
from valvereader.phantoms.dataset import plan
from valvereader.phantoms.designs import BUILDERS
from valvereader.phantoms.dicom_out import SYNTAXES, DicomSpec, write_dicom
from valvereader.phantoms.render import render

SIZE = (256, 320)


def _rows(csv_path: Path) -> list[dict[str, str]]:
    with open(csv_path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_the_package_generate_stays_the_function_once_its_modules_are_imported() -> None:
    import valvereader.phantoms as package
    import valvereader.phantoms.dataset  # noqa: F401  (the module that renders the set)

    assert callable(package.generate)
    assert package.generate.__module__ == "valvereader.phantoms"


@pytest.fixture(scope="module")
def phantom_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(
        10, tmp_path_factory.mktemp("phantoms"), seed=11, workers=1, size=SIZE, none_fraction=0.2
    )


def test_every_file_loads_with_plain_pydicom_at_the_planned_size(phantom_set: Path) -> None:
    for row in _rows(phantom_set):
        ds = pydicom.dcmread(phantom_set.parent / row["file"])
        assert ds.pixel_array.shape == SIZE
        assert ds.PatientID == row["patient_id"]
        assert ds.PhotometricInterpretation == row["photometric"]
        assert int(ds.BitsStored) == int(row["bits_stored"])
        assert float(ds.ImagerPixelSpacing[0]) == pytest.approx(float(row["pixel_spacing_mm"]))


def test_every_file_loads_with_the_project_loader(phantom_set: Path) -> None:
    io = importlib.import_module("valvereader.io")
    if not hasattr(io, "load"):
        pytest.skip("valvereader.io.load not written yet")
    for row in _rows(phantom_set):
        radiograph = io.load(phantom_set.parent / row["file"])
        assert radiograph.shape == SIZE
        assert 0.0 <= float(radiograph.pixels.min()) and float(radiograph.pixels.max()) <= 1.0


def test_boxes_lie_inside_the_image_and_only_no_valve_rows_lack_one(phantom_set: Path) -> None:
    rows = _rows(phantom_set)
    for row in rows:
        if row["valve_id"] == "none":
            assert row["box_x0"] == ""
            continue
        if row["box_x0"] == "":  # only allowed when the field edge hides the valve entirely
            assert row["position"] == "edge"
            continue
        x0, y0, x1, y1 = (int(row[k]) for k in ("box_x0", "box_y0", "box_x1", "box_y1"))
        assert 0 <= x0 < x1 <= SIZE[1] and 0 <= y0 < y1 <= SIZE[0]


def test_patient_ids_repeat_with_two_to_five_images_each(phantom_set: Path) -> None:
    counts = Counter(row["patient_id"] for row in _rows(phantom_set))
    assert max(counts.values()) >= 2
    assert all(n <= 5 for n in counts.values())
    full = list(counts.values())[:-1]  # the last patient may be cut short by --count
    assert all(n >= 2 for n in full)


def test_box_contains_every_pixel_the_valve_changes(tmp_path: Path) -> None:
    jobs = [j for j in plan(40, seed=4, shape=SIZE) if j.kind == "phantom" and j.valve_id != "none"]
    assert len(jobs) >= 6
    for job in jobs[:6]:
        job = replace(job, position="parietal")
        truth = render(job, tmp_path / "with", keep_attenuation=True)
        bare = render(job, tmp_path / "without", draw_valve=False, keep_attenuation=True)
        field = truth.field
        changed = np.abs(truth.attenuation - bare.attenuation)[
            field.y0 : field.y1, field.x0 : field.x1
        ]
        ys, xs = np.nonzero(changed > 0.05)
        if ys.size == 0:  # the whole valve lies outside the exposed field
            assert truth.box is None
            continue
        xs, ys = xs + field.x0, ys + field.y0
        box = truth.box
        assert box is not None, job.valve_id
        assert xs.min() >= box.x0 - 1 and xs.max() < box.x1 + 1, job.valve_id
        assert ys.min() >= box.y0 - 1 and ys.max() < box.y1 + 1, job.valve_id
        # and the box is tight: the valve reaches each of its sides
        assert xs.min() <= box.x0 + 1 and xs.max() >= box.x1 - 2, job.valve_id
        assert ys.min() <= box.y0 + 1 and ys.max() >= box.y1 - 2, job.valve_id


def test_same_seed_gives_identical_files_and_csv_whatever_the_workers(tmp_path: Path) -> None:
    first = generate(4, tmp_path / "a", seed=7, workers=1, size=(128, 160))
    second = generate(4, tmp_path / "b", seed=7, workers=2, size=(128, 160))
    assert first.read_text() == second.read_text()
    for row in _rows(first):
        a = pydicom.dcmread(first.parent / row["file"])
        b = pydicom.dcmread(second.parent / row["file"])
        assert np.array_equal(a.pixel_array, b.pixel_array)
        assert a.SOPInstanceUID == b.SOPInstanceUID
    other = generate(4, tmp_path / "c", seed=8, workers=1, size=(128, 160))
    assert other.read_text() != first.read_text()


@pytest.mark.parametrize("syntax", sorted(SYNTAXES))
@pytest.mark.parametrize(
    "photometric,bits", [("MONOCHROME2", 8), ("MONOCHROME1", 12), ("MONOCHROME2", 16)]
)
def test_written_pixels_decode_back_exactly(
    tmp_path: Path, syntax: str, photometric: str, bits: int
) -> None:
    display = np.random.default_rng(0).random((64, 80)).astype(np.float32)
    spec = DicomSpec(
        "P1",
        "PHANTOM^1",
        "F",
        "19700101",
        "20200101",
        "s",
        1,
        "lateral",
        photometric=photometric,
        bits_stored=bits,
        syntax=syntax,
    )
    write_dicom(tmp_path / "x.dcm", display, spec)
    ds = pydicom.dcmread(tmp_path / "x.dcm")
    assert ds.file_meta.TransferSyntaxUID == SYNTAXES[syntax]
    top = (1 << bits) - 1
    expected = np.rint(display * top)
    if photometric == "MONOCHROME1":
        expected = top - expected
    assert np.array_equal(ds.pixel_array.astype(np.int64), expected.astype(np.int64))


def test_composites_record_their_crop_and_its_valve(tmp_path: Path, crops_dir: Path) -> None:
    path = generate(
        6, tmp_path, seed=3, composites_from=crops_dir, workers=1, size=SIZE, composite_fraction=1.0
    )
    rows = _rows(path)
    assert {row["kind"] for row in rows} == {"composite"}
    for row in rows:
        assert row["source_crop"].split("/")[0] == row["valve_id"]
        assert (crops_dir / row["source_crop"]).exists()
    by_patient: dict[str, set[str]] = {}
    for row in rows:
        by_patient.setdefault(row["patient_id"], set()).add(row["source_crop"])
    assert all(len(crops) == 1 for crops in by_patient.values())  # one crop per patient


def test_composite_box_holds_the_crop_where_the_image_changed(
    tmp_path: Path, crops_dir: Path
) -> None:
    from valvereader.phantoms.composite import find_crops

    jobs = plan(12, seed=5, crops=find_crops(crops_dir), shape=SIZE, composite_fraction=1.0)
    for job in jobs[::3]:
        job = replace(job, position="parietal")
        truth = render(job, tmp_path / "with", keep_attenuation=True)
        bare = render(job, tmp_path / "without", draw_valve=False, keep_attenuation=True)
        field = truth.field
        changed = np.abs(truth.attenuation - bare.attenuation)[
            field.y0 : field.y1, field.x0 : field.x1
        ]
        ys, xs = np.nonzero(changed > 0.05)
        xs, ys = xs + field.x0, ys + field.y0
        assert truth.box is not None and ys.size > 10
        assert xs.min() >= truth.box.x0 - 2 and xs.max() < truth.box.x1 + 2
        assert ys.min() >= truth.box.y0 - 2 and ys.max() < truth.box.y1 + 2


def test_no_crops_in_the_folder_is_a_dataset_error_naming_the_layout(tmp_path: Path) -> None:
    from valvereader.errors import DatasetError

    with pytest.raises(DatasetError, match="manifest.csv"):
        generate(2, tmp_path / "out", composites_from=tmp_path, workers=1, size=SIZE)


def test_plans_draw_every_catalogue_valve_and_both_unknown_designs() -> None:
    from valvereader.phantoms.facts import ALL_DESIGNS

    jobs = plan(600, seed=1, shape=SIZE)
    assert {j.valve_id for j in jobs if j.kind == "phantom"} >= set(ALL_DESIGNS)
    assert {j.position for j in jobs} >= {"parietal", "occipital", "frontal", "edge"}
    assert {j.spec.syntax for j in jobs} == {"explicit", "rle", "jpeg2000"}
    assert {j.spec.photometric for j in jobs} == {"MONOCHROME1", "MONOCHROME2"}


@pytest.mark.parametrize("valve_id", sorted(BUILDERS))
def test_every_design_draws_inside_its_box_when_tilted_and_mirrored(valve_id: str) -> None:
    from valvereader.phantoms.designs import build_design
    from valvereader.phantoms.facts import indicator_angle, settings_of
    from valvereader.phantoms.valve import Pose, render_valve

    settings = settings_of(valve_id)
    angle = indicator_angle(valve_id, settings[-1]) if settings else None
    pose = Pose(
        rotation_deg=123.0, tilt_deg=50.0, tilt_axis_deg=30.0, mirrored=True, magnification=1.3
    )
    layer = render_valve(
        build_design(valve_id, np.random.default_rng(2)), angle, pose, 4.0, (200.0, 150.0)
    )
    box = layer.box(threshold=0.0)
    assert box is not None
    ys, xs = np.nonzero(layer.mask > 0)
    assert xs.min() + layer.x0 == box.x0 and xs.max() + layer.x0 + 1 == box.x1
    assert ys.min() + layer.y0 == box.y0 and ys.max() + layer.y0 + 1 == box.y1
    # the patch leaves a margin: no part is cut by the patch border
    assert (
        xs.min() > 0
        and ys.min() > 0
        and xs.max() < layer.mask.shape[1] - 1
        and ys.max() < layer.mask.shape[0] - 1
    )


def test_an_unknown_fraction_of_one_draws_only_non_catalogue_designs(tmp_path: Path) -> None:
    from valvereader.phantoms.facts import UNKNOWN_DESIGNS

    rows = _rows(generate(6, tmp_path / "unknown", seed=3, workers=1, size=(128, 160), composite_fraction=0.0, unknown_fraction=1.0))
    assert len(rows) == 6 and {row["valve_id"] for row in rows} <= set(UNKNOWN_DESIGNS)
    default = _rows(generate(6, tmp_path / "default", seed=3, workers=1, size=(128, 160), composite_fraction=0.0))
    assert not {row["valve_id"] for row in default} <= set(UNKNOWN_DESIGNS)
