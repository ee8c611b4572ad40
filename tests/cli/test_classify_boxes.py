"""`valvereader classify --boxes BOXES.csv`: files with a given region are read in it (the
reader's region, as in the window), the others located; ``box_source`` says which on every row."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model"))

from tiny_model import noise_pngs, write_tiny_weights

from valvereader.cli import main
from valvereader.geometry import Box
from valvereader.inference.classify import BoxesError, match_boxes, read_boxes


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("weights")
    write_tiny_weights(folder)
    return folder


def write_boxes(path: Path, rows: list[tuple]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "box_x0", "box_y0", "box_x1", "box_y1"])
        writer.writerows(rows)
    return path


def read_rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as handle:
        return {Path(r["path"]).name: r for r in csv.DictReader(handle)}


def classify(weights: Path, out: Path, *args: str) -> int:
    return main(["classify", *args, "--output", str(out), "--weights", str(weights), "--no-progress"])


def test_given_regions_are_read_there_and_the_rest_located(weights: Path, tmp_path: Path) -> None:
    files = noise_pngs(tmp_path / "batch", 4)  # 64 x 48 px each
    (tmp_path / "batch" / "broken.png").write_bytes(b"not a png")
    boxes = write_boxes(tmp_path / "boxes.csv", [
        (str(files[0]), 4, 6, 30, 40),  # the path as the batch finds it
        (files[2].name, 10.4, 2, 40, 28.6),  # the file name alone, coordinates rounded
        ("broken.png", 1, 1, 20, 20),  # a file that cannot be read: an error row, still "reader"
        ("elsewhere.png", 1, 1, 5, 5),  # no such file in the batch: a note, not an error
    ])
    out = tmp_path / "results.csv"
    assert classify(weights, out, str(tmp_path / "batch"), "--boxes", str(boxes)) == 0
    rows = read_rows(out)
    assert set(rows) == {f.name for f in files} | {"broken.png"}
    given = rows[files[0].name]
    assert given["status"] == "ok" and given["box_source"] == "reader"
    assert (given["box_x0"], given["box_y0"], given["box_x1"], given["box_y1"]) == ("4", "6", "30", "40")
    by_name = rows[files[2].name]
    assert by_name["box_source"] == "reader"
    assert (by_name["box_x0"], by_name["box_y0"], by_name["box_x1"], by_name["box_y1"]) == ("10", "2", "40", "29")
    assert rows["broken.png"]["status"] == "error" and rows["broken.png"]["box_source"] == "reader"
    for name in (files[1].name, files[3].name):  # the tiny model has no locator: the whole image read
        assert rows[name]["status"] == "ok" and rows[name]["box_source"] == "attention"


def test_a_region_changes_what_is_read(weights: Path, tmp_path: Path) -> None:
    files = noise_pngs(tmp_path / "batch", 1, shape=(96, 96))
    plain, boxed = tmp_path / "plain.csv", tmp_path / "boxed.csv"
    classify(weights, plain, str(files[0]))
    classify(weights, boxed, str(files[0]), "--boxes", str(write_boxes(tmp_path / "b.csv", [(str(files[0]), 0, 0, 30, 30)])))
    a, b = read_rows(plain)[files[0].name], read_rows(boxed)[files[0].name]
    probabilities = [k for k in a if k.startswith("p_")]
    assert a["box_source"] == "attention" and b["box_source"] == "reader"
    assert [a[k] for k in probabilities] != [b[k] for k in probabilities]


def test_a_region_outside_its_image_is_that_file_s_error(weights: Path, tmp_path: Path) -> None:
    files = noise_pngs(tmp_path / "batch", 2)
    boxes = write_boxes(tmp_path / "boxes.csv", [(files[0].name, 500, 500, 600, 600)])
    out = tmp_path / "results.csv"
    assert classify(weights, out, str(tmp_path / "batch"), "--boxes", str(boxes)) == 0
    rows = read_rows(out)
    assert rows[files[0].name]["status"] == "error" and "outside the image" in rows[files[0].name]["error"]
    assert rows[files[0].name]["box_source"] == "reader"
    assert rows[files[1].name]["status"] == "ok"


@pytest.mark.parametrize(("body", "says"), [
    ("path,x0,y0,x1,y1\na.png,1,2,3,4\n", "box_x0, box_y0, box_x1, box_y1 are missing"),
    ("path,box_x0,box_y0,box_x1,box_y1\na.png,1,2,three,4\n", "line 2: box_x0..box_y1 must be numbers"),
    ("path,box_x0,box_y0,box_x1,box_y1\na.png,10,2,5,4\n", "line 2: the region (10, 2, 5, 4) is empty"),
    ("path,box_x0,box_y0,box_x1,box_y1\na.png,1,2,3,4\na.png,1,2,3,5\n", "line 3: a.png is given twice"),
    ("path,box_x0,box_y0,box_x1,box_y1\na.png,nan,2,3,4\n", "must be finite"),
])
def test_a_bad_boxes_file_stops_before_anything_is_read(weights: Path, tmp_path: Path, body: str, says: str,
                                                        capsys: pytest.CaptureFixture) -> None:
    files = noise_pngs(tmp_path / "batch", 1)
    boxes = tmp_path / "boxes.csv"
    boxes.write_text(body)
    out = tmp_path / "results.csv"
    assert classify(weights, out, str(files[0]), "--boxes", str(boxes)) == 2
    assert says in capsys.readouterr().err
    assert not out.exists()


def test_a_missing_boxes_file_is_named(weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    files = noise_pngs(tmp_path / "batch", 1)
    assert classify(weights, tmp_path / "r.csv", str(files[0]), "--boxes", str(tmp_path / "none.csv")) == 2
    assert "none.csv cannot be read" in capsys.readouterr().err


def test_a_file_name_shared_by_two_files_must_be_a_path(tmp_path: Path) -> None:
    one, two = tmp_path / "a" / "x.png", tmp_path / "b" / "x.png"
    with pytest.raises(BoxesError, match="x.png names 2 files"):
        match_boxes({"x.png": Box(0, 0, 5, 5)}, [one, two])
    # the path picks one; another spelling of the same path does too
    assert match_boxes({str(two): Box(0, 0, 5, 5)}, [one, two]) == {two: Box(0, 0, 5, 5)}
    spelt = str(tmp_path / "b" / ".." / "b" / "x.png")
    assert match_boxes({spelt: Box(1, 1, 5, 5)}, [one, two]) == {two: Box(1, 1, 5, 5)}


def test_read_boxes_ignores_other_columns_and_a_byte_order_mark(tmp_path: Path) -> None:
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("\ufeffpath,valve_id,box_x0,box_y0,box_x1,box_y1\nscans/a.dcm,integra_dp,1,2,30,40\n",
                     encoding="utf-8")
    assert read_boxes(boxes) == {"scans/a.dcm": Box(1, 2, 30, 40)}


def test_help_explains_boxes_and_box_source(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["classify", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--boxes BOXES.csv" in text and "path,box_x0,box_y0,box_x1,box_y1" in text
    assert "box_source: 'reader'" in text and "'located'" in text and "'attention'" in text


def test_samples_read_in_their_true_regions_name_the_valve(tmp_path: Path) -> None:
    """The shipped model on the sample films, each read in its true valve region."""
    from valvereader.paths import samples_dir, weights_dir

    truth_file = samples_dir() / "ground_truth.csv"
    if not (weights_dir() / "identifier.json").exists() or not truth_file.exists():
        pytest.skip("needs the shipped weights and the sample radiographs")
    with open(truth_file, newline="") as handle:
        truth = [r for r in csv.DictReader(handle) if r["box_x0"] and r["valve_id"]]
    boxes = write_boxes(tmp_path / "boxes.csv", [(r["file"], r["box_x0"], r["box_y0"], r["box_x1"], r["box_y1"])
                                                 for r in truth])
    out = tmp_path / "results.csv"
    code = main(["classify", *(str(samples_dir() / r["file"]) for r in truth), "--boxes", str(boxes),
                 "--output", str(out), "--no-progress"])
    assert code == 0
    rows = read_rows(out)
    assert len(rows) == len(truth) >= 4
    assert all(r["box_source"] == "reader" for r in rows.values())
    right = sum(rows[t["file"]]["predicted"] == t["valve_id"] for t in truth)
    assert right >= len(truth) - 1, {t["file"]: rows[t["file"]]["predicted"] for t in truth}
