"""Fuzzing the data-set readers: any CSV manifest or Label Studio export, however mangled,
either reads or raises DatasetError — never an untyped exception."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from valvereader.errors import DatasetError
from valvereader.training.datasets import read_label_studio, read_manifest, read_phantom_truth

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

GOOD_MANIFEST = "path,label,patient_id\na.png,codman_certas_plus,p1\nb.png,integra_dp,p2\n"
GOOD_TRUTH = (
    "file,patient_id,kind,valve_id,setting,box_x0,box_y0,box_x1,box_y1,view\n"
    "a.dcm,P1,phantom,codman_certas_plus,3,10,10,50,60,lateral\n"
)
GOOD_LABEL_STUDIO = [
    {"data": {"image": "/data/upload/1/a.png"},
     "annotations": [{"result": [{"type": "choices", "value": {"choices": ["integra_dp"]}}]}]}
]


def _mutate(text: str, data: st.DataObject) -> str:
    chars = list(text)
    for _ in range(data.draw(st.integers(1, 8))):
        op = data.draw(st.sampled_from(["delete", "insert", "replace", "truncate"]))
        if not chars:
            break
        i = data.draw(st.integers(0, len(chars) - 1))
        if op == "delete":
            del chars[i]
        elif op == "insert":
            chars.insert(i, data.draw(st.sampled_from([",", "\n", '"', "\x00", "é", ";", " ", "9", "-"])))
        elif op == "replace":
            chars[i] = data.draw(st.characters())
        else:
            chars = chars[:i]
    return "".join(chars)


def _write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    (tmp / "a.png").write_bytes(b"")
    (tmp / "b.png").write_bytes(b"")
    return path


@FUZZ
@given(data=st.data())
def test_mangled_manifest_reads_or_raises_dataset_error(tmp_path: Path, data: st.DataObject) -> None:
    path = _write(tmp_path, "manifest.csv", _mutate(GOOD_MANIFEST, data))
    try:
        read_manifest(path)
    except DatasetError:
        pass


@FUZZ
@given(data=st.data())
def test_mangled_phantom_truth_reads_or_raises_dataset_error(tmp_path: Path, data: st.DataObject) -> None:
    path = _write(tmp_path, "truth.csv", _mutate(GOOD_TRUTH, data))
    try:
        read_phantom_truth(path)
    except DatasetError:
        pass


@FUZZ
@given(data=st.data())
def test_mangled_label_studio_text_reads_or_raises_dataset_error(tmp_path: Path, data: st.DataObject) -> None:
    path = _write(tmp_path, "export.json", _mutate(json.dumps(GOOD_LABEL_STUDIO), data))
    try:
        read_label_studio(path, image_root=tmp_path)
    except DatasetError:
        pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(value=json_values, key=st.sampled_from(["data", "annotations", "result", "value", "choices", "image"]))
def test_label_studio_with_wrong_shapes_reads_or_raises_dataset_error(tmp_path: Path, value, key: str) -> None:
    task = json.loads(json.dumps(GOOD_LABEL_STUDIO))
    # Put an arbitrary JSON value at one level of the structure.
    if key in ("data", "annotations"):
        task[0][key] = value
    elif key == "image":
        task[0]["data"]["image"] = value
    elif key == "result":
        task[0]["annotations"][0]["result"] = value
    elif key == "value":
        task[0]["annotations"][0]["result"][0]["value"] = value
    else:
        task[0]["annotations"][0]["result"][0]["value"]["choices"] = value
    path = _write(tmp_path, "export.json", json.dumps(task))
    try:
        read_label_studio(path, image_root=tmp_path)
    except DatasetError:
        pass


def test_empty_manifest_is_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError):
        read_manifest(_write(tmp_path, "m.csv", ""))
