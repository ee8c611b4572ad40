"""The node's Structured Report: IHE AI Results content, valid DICOM (dciodvfy)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from node_helpers import SAMPLE, SAMPLE_VALVE, dciodvfy_errors


@pytest.fixture(scope="module")
def reading(predictor):
    from pydicom import dcmread

    from valvereader.io import load
    from valvereader.node.sr import Algorithm

    header = dcmread(SAMPLE, stop_before_pixels=True)
    prediction = predictor.predict(load(SAMPLE), with_heatmap=False)
    return header, prediction, Algorithm.from_predictor(predictor)


def items(dataset, found=None):
    """Every content item of the tree, depth first."""
    found = [] if found is None else found
    for item in dataset.get("ContentSequence", []):
        found.append(item)
        items(item, found)
    return found


def named(dataset, meaning: str) -> list:
    return [i for i in items(dataset) if i.ConceptNameCodeSequence[0].CodeMeaning == meaning]


def value(code) -> str:
    """A code's value (over 16 characters it is a Long Code Value)."""
    return str(code.get("CodeValue") or code.get("LongCodeValue"))


def written(tmp_path: Path, sr) -> Path:
    from valvereader.node.sr import sr_bytes

    path = tmp_path / "sr.dcm"
    path.write_bytes(sr_bytes(sr))
    return path


def test_sr_follows_ai_results(reading, tmp_path):
    from pydicom import dcmread

    from valvereader import DISCLAIMER
    from valvereader.node.sr import CODING_SCHEME, build_sr

    header, prediction, algorithm = reading
    assert prediction.predicted == SAMPLE_VALVE and prediction.box is not None
    sr = dcmread(written(tmp_path, build_sr(header, prediction, algorithm)))

    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    assert sr.ConceptNameCodeSequence[0].CodeValue == "126000"  # Imaging Measurement Report
    assert sr.VerificationFlag == "UNVERIFIED"
    assert sr.StudyInstanceUID == header.StudyInstanceUID and sr.PatientID == header.PatientID
    [library] = named(sr, "Image Library")
    assert [i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for i in items(library) if i.ValueType == "IMAGE"] \
        == [header.SOPInstanceUID]

    # One planar ROI group (TID 1410): the box as a closed polyline on the source image.
    [group] = named(sr, "Measurement Group")
    [region] = [i for i in items(group) if i.ValueType == "SCOORD"]
    assert region.GraphicType == "POLYLINE"
    points = np.asarray(region.GraphicData, dtype=float).reshape(-1, 2)
    box = prediction.box
    assert len(points) == 5 and np.array_equal(points[0], points[-1])
    assert points[:, 0].min() == box.x0 and points[:, 0].max() == box.x1
    assert points[:, 1].min() == box.y0 and points[:, 1].max() == box.y1
    [source] = [i for i in items(region) if i.ValueType == "IMAGE"]
    assert source.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == header.SOPInstanceUID

    # The valve as the finding, in the private scheme the dataset declares.
    [finding] = named(group, "Finding")
    assert value(finding.ConceptCodeSequence[0]) == SAMPLE_VALVE
    assert finding.ConceptCodeSequence[0].CodingSchemeDesignator == CODING_SCHEME
    assert [s.CodingSchemeDesignator for s in sr.CodingSchemeIdentificationSequence] == [CODING_SCHEME]
    [verdict] = named(group, "Result verdict")
    assert value(verdict.ConceptCodeSequence[0]) == prediction.verdict.value
    [reason] = named(group, "Reason for the verdict")
    assert value(reason.ConceptCodeSequence[0]) == prediction.verdict_reason
    numbers = {value(i.ConceptNameCodeSequence[0]): float(i.MeasuredValueSequence[0].NumericValue)
               for i in items(group) if i.ValueType == "NUM"}
    assert numbers[f"p_{SAMPLE_VALVE}"] == pytest.approx(prediction.confidence, abs=1e-5)
    assert len([k for k in numbers if k.startswith("p_")]) == len(prediction.valve_ids)
    assert numbers["ood_score"] == pytest.approx(prediction.ood_score, abs=1e-5)

    # The algorithm: in the group (TID 4019) and in the Contributing Equipment Sequence.
    [version] = named(group, "Algorithm Version")
    assert version.TextValue == algorithm.version
    assert any(algorithm.sha256 in p.TextValue for p in named(group, "Algorithm Parameters"))
    ours = [e for e in sr.ContributingEquipmentSequence if e.Manufacturer == "Shunt Valve Reader"]
    assert ours and algorithm.version in list(ours[0].SoftwareVersions)
    assert algorithm.sha256 in ours[0].ContributionDescription
    assert any(i.get("TextValue") == DISCLAIMER for i in items(sr))


def test_sr_passes_dciodvfy(reading, tmp_path):
    from valvereader.node.sr import build_sr

    assert dciodvfy_errors(written(tmp_path, build_sr(*reading))) == []


def test_no_valve_found_is_reported_for_the_whole_image(reading, tmp_path):
    from pydicom import dcmread

    from valvereader.node.sr import build_sr
    from valvereader.prediction import Verdict

    header, prediction, algorithm = reading
    nothing = copy.copy(prediction)
    nothing.verdict, nothing.verdict_reason, nothing.box = Verdict.NO_VALVE, "", None
    path = written(tmp_path, build_sr(header, nothing, algorithm))
    sr = dcmread(path)
    assert sr.ContentSequence[-2].ContentSequence[0].ContentTemplateSequence[0].TemplateIdentifier == "1501"
    [finding] = named(sr, "Finding")
    assert value(finding.ConceptCodeSequence[0]) == "no_valve"
    assert finding.ConceptCodeSequence[0].CodeMeaning == "No valve found"
    assert not [i for i in items(sr) if i.ValueType == "SCOORD"]
    # The film, in the Image Library and as the group's source image.
    images = [i for i in items(sr) if i.ValueType == "IMAGE"]
    assert [i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for i in images] == [header.SOPInstanceUID] * 2
    assert dciodvfy_errors(path) == []


def test_the_same_image_and_model_give_the_same_sr_instance(reading):
    from valvereader.node.sr import build_sr

    first, second = build_sr(*reading), build_sr(*reading)
    assert first.SOPInstanceUID == second.SOPInstanceUID
    assert first.SeriesInstanceUID == second.SeriesInstanceUID
    other = copy.deepcopy(reading[0])
    other.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.2"
    assert build_sr(other, *reading[1:]).SOPInstanceUID != first.SOPInstanceUID


def test_an_image_without_identifiers_cannot_be_referenced(reading):
    from valvereader.node.sr import build_sr

    header = copy.deepcopy(reading[0])
    del header.StudyInstanceUID
    with pytest.raises(ValueError, match="StudyInstanceUID"):
        build_sr(header, *reading[1:])
