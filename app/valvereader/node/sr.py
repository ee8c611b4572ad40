"""The model's result on one image as a DICOM Structured Report, as the IHE AI Results (AIR)
profile asks: a Comprehensive 3D SR whose root is TID 1500 (Measurement Report).

- A valve with a box: one TID 1410 planar ROI group whose region is the box as a closed
  polyline (SCOORD, pixel coordinates of the source image), the valve model as the finding,
  the verdict, its reason and where the box came from as qualitative evaluations, one
  probability per valve and the open-set score as measurements.
- "No valve found" (or a result without a box): one TID 1501 group for the whole image with
  the finding "No valve found" (or the valve), the same evaluations and measurements.
- The algorithm (TID 4019 in every group, and the Contributing Equipment Sequence): its name,
  version and the sha256 of its weights. VerificationFlag UNVERIFIED; the statement "Decision
  support only – not for diagnostic use." as a comment at the document level and in the
  series description. Every group references the source instance.

Valves, verdicts and reasons are coded in the private scheme ``CODING_SCHEME`` (declared in
the dataset's Coding Scheme Identification Sequence). Output passes dciodvfy (dicom3tools).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import DISCLAIMER, __version__
from ..catalogue import display_name
from ..prediction import Prediction, Verdict
from ..report.content import PROGRAM

CODING_SCHEME = "99SHUNTVALVE"
CODING_SCHEME_NAME = f"{PROGRAM} valve and result codes"
SERIES_NUMBER = 9902  # after the Secondary Capture export's 9901
LO_MAX = 64

# Code meanings (LO: at most 64 characters) of the result's rules (prediction.REASON_*).
REASON_MEANINGS = {
    "sure": "Sure, and the image looks like the training valves",
    "unsure": "Below the confident probability",
    "unusual": "Open-set score past the review threshold",
    "low_confidence": "Below the unknown-valve probability",
    "unlike_training": "Open-set score past the unknown threshold",
    "between_valves": "Between two catalogue valves (open-set class distances)",
    "not_radiograph": "Not a plain X-ray (DICOM modality)",
    "no_valve": "Nothing on the film is valve-like enough",
    "weak_location": "Region read not clearly a valve: the valve may be elsewhere",
    "film_unsure": "Below the confident probability for a valve on a film",
    "film_look_alike": "A valve the model has named for a look-alike on films",
}
BOX_SOURCE_MEANINGS = {
    "located": "Located by the model",
    "reader": "Drawn by the reader",
    "attention": "Where the model looked (no box located)",
}


@dataclass(frozen=True)
class Algorithm:
    """The model as the SR names it: ``name`` and ``version`` from its card, ``sha256`` of the
    identifier's weights, ``parameters`` one line per weights file ("identifier.onnx sha256 …")."""

    name: str
    version: str
    sha256: str
    title: str = ""
    parameters: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_predictor(cls, predictor: Any) -> Algorithm:
        cards = [predictor.identifier_card]
        if getattr(predictor, "locator_card", None) is not None:
            cards.append(predictor.locator_card)
        parameters = []
        for card in cards:
            for role in ("onnx", "safetensors"):
                entry = (card.data.get("files") or {}).get(role) or {}
                if entry.get("sha256"):
                    parameters.append(f"{card.name} {card.version} {entry.get('path', role)} sha256 {entry['sha256']}")
        files = predictor.identifier_card.data.get("files") or {}
        sha = str((files.get("onnx") or files.get("safetensors") or {}).get("sha256", ""))
        card = predictor.identifier_card
        return cls(card.name, card.version, sha, card.title, tuple(parameters))


def _lo(text: str) -> str:
    """At most 64 bytes (LO counts bytes; the SR is UTF-8)."""
    if len(text.encode("utf-8")) <= LO_MAX:
        return text
    while len((text + "...").encode("utf-8")) > LO_MAX:
        text = text[:-1]
    return text.rstrip() + "..."


def code(value: str, meaning: str) -> Any:
    import highdicom as hd

    return hd.sr.CodedConcept(value=value, scheme_designator=CODING_SCHEME, meaning=_lo(meaning))


def valve_code(valve_id: str) -> Any:
    return code(valve_id, display_name(valve_id))


NO_VALVE_MEANING = "No valve found"


def _finding(prediction: Prediction) -> Any:
    if prediction.verdict is Verdict.NO_VALVE:
        return code("no_valve", NO_VALVE_MEANING)
    return valve_code(prediction.predicted)


def _evaluations(prediction: Prediction) -> list[Any]:
    import highdicom as hd

    items = [hd.sr.QualitativeEvaluation(code("verdict", "Result verdict"),
                                         code(prediction.verdict.value, prediction.verdict.label))]
    reason = prediction.verdict_reason or ("no_valve" if prediction.verdict is Verdict.NO_VALVE else "")
    if reason:
        items.append(hd.sr.QualitativeEvaluation(code("verdict_reason", "Reason for the verdict"),
                                                 code(reason, REASON_MEANINGS.get(reason, reason))))
    if prediction.box is not None and prediction.box_source:
        source = prediction.box_source
        items.append(hd.sr.QualitativeEvaluation(code("box_source", "Source of the valve region"),
                                                 code(source, BOX_SOURCE_MEANINGS.get(source, source))))
    return items


def _measurements(prediction: Prediction) -> list[Any]:
    import highdicom as hd

    unit = hd.sr.CodedConcept("1", "UCUM", "no units")
    items = [
        hd.sr.Measurement(name=code(f"p_{valve_id}", f"Probability of {display_name(valve_id)}"),
                          value=round(float(p), 6), unit=unit)
        for valve_id, p in zip(prediction.valve_ids, prediction.probabilities)
    ]
    if prediction.ood_score is not None:
        items.append(hd.sr.Measurement(name=code("ood_score", "Open-set score (higher: less like the training valves)"),
                                       value=round(float(prediction.ood_score), 6), unit=unit))
    return items


def closed_polyline(box: Any) -> Any:
    """The box's corners as (column, row) points, the first repeated at the end."""
    import numpy as np

    x0, y0, x1, y1 = (float(v) for v in box.as_tuple())
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]], dtype=np.float32)


def _group(source: Any, prediction: Prediction, algorithm: Algorithm) -> Any:
    import highdicom as hd

    algorithm_id = hd.sr.AlgorithmIdentification(name=_lo(f"{PROGRAM} {algorithm.name}"), version=algorithm.version,
                                                 parameters=list(algorithm.parameters) or None)
    tracking = hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="valve 1")
    common = {
        "tracking_identifier": tracking,
        "finding_type": _finding(prediction),
        "algorithm_id": algorithm_id,
        "measurements": _measurements(prediction),
        "qualitative_evaluations": _evaluations(prediction),
    }
    if prediction.box is not None and prediction.verdict is not Verdict.NO_VALVE:
        region = hd.sr.ImageRegion(
            graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
            graphic_data=closed_polyline(prediction.box),
            source_image=hd.sr.SourceImageForRegion.from_source_image(source),
        )
        return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(referenced_region=region, **common)
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(source)], **common)


def _statement() -> Any:
    """Document-level "Qualitative Evaluations" (TID 1500) holding the disclaimer as a comment."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    container = hd.sr.ContainerContentItem(name=hd.sr.CodedConcept("C0034375", "UMLS", "Qualitative Evaluations"),
                                           relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)
    container.ContentSequence = hd.sr.ContentSequence([
        hd.sr.TextContentItem(name=codes.DCM.Comment, value=DISCLAIMER,
                              relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)
    ])
    return container


def _device_uid(algorithm: Algorithm) -> str:
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=[PROGRAM, algorithm.name, algorithm.version, algorithm.sha256])


def build_sr(source: Any, prediction: Prediction, algorithm: Algorithm) -> Any:
    """The SR for ``prediction`` on the image whose header is ``source`` (a pydicom Dataset
    with the patient, study and SOP instance of the image read).

    The SR joins the source's study; its series is one per study (the same UID for every
    image of the study) and its SOP Instance UID follows from the source instance and the
    weights, so sending the same image again replaces the same SR.

    Raises:
        ValueError: ``source`` lacks the identifiers an SR must reference.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    for keyword in ("StudyInstanceUID", "SOPInstanceUID", "SOPClassUID"):
        if not str(source.get(keyword, "") or ""):
            raise ValueError(f"the image has no {keyword}: an SR cannot reference it")
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=_device_uid(algorithm), name=_lo(f"{PROGRAM} {__version__}"), manufacturer_name=PROGRAM,
            model_name=_lo(f"{algorithm.name} {algorithm.version}")),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=device),
        procedure_reported=hd.sr.CodedConcept("363680008", "SCT", "Radiographic imaging procedure"),
        imaging_measurements=[_group(source, prediction, algorithm)],
        title=codes.DCM.ImagingMeasurementReport,
        referenced_images=[source],  # the Image Library (TID 1600): the film read
    )
    report[0].ContentSequence.append(_statement())
    from highdicom.coding_schemes import CodingSchemeIdentificationItem

    scheme = CodingSchemeIdentificationItem(designator=CODING_SCHEME, name=CODING_SCHEME_NAME,
                                            version=__version__, responsible_organization=PROGRAM)
    equipment = hd.ContributingEquipment(
        manufacturer=PROGRAM,
        purpose_of_reference=codes.DCM.ProcessingEquipment,
        manufacturer_model_name=_lo(f"{PROGRAM} {algorithm.name}"),
        software_versions=[algorithm.version, f"{PROGRAM} {__version__}"],
        device_serial_number=algorithm.sha256[:LO_MAX] or None,
        contribution_description=(f"Valve identification by {algorithm.title or algorithm.name}; "
                                  f"weights sha256 {algorithm.sha256 or 'unknown'}. {DISCLAIMER}")[:1024],
    )
    study = str(source.StudyInstanceUID)
    sr = hd.sr.Comprehensive3DSR(
        evidence=[source],
        content=report,
        series_instance_uid=generate_uid(entropy_srcs=[study, PROGRAM, "structured report series"]),
        series_number=SERIES_NUMBER,
        sop_instance_uid=generate_uid(entropy_srcs=[str(source.SOPInstanceUID), algorithm.sha256, algorithm.version]),
        instance_number=1,
        manufacturer=PROGRAM,
        is_complete=True,
        is_final=False,
        is_verified=False,
        contributing_equipment=[equipment],
        coding_schemes=[scheme],
    )
    sr.SpecificCharacterSet = "ISO_IR 192"  # the statement's "–"
    sr.SeriesDescription = _lo(f"{PROGRAM} result, decision support only")
    sr.SoftwareVersions = __version__
    return sr


def sr_bytes(sr: Any) -> bytes:
    """The SR as a DICOM file (preamble and file meta), ready to write or send."""
    import io

    buffer = io.BytesIO()
    sr.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
