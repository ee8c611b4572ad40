"""A file whose DICOM modality is not a plain X-ray (CT, MR, ...) gets no valve name at all:
the model was trained on plain radiographs only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_model import synthetic_radiograph, write_tiny_weights

from valvereader.catalogue import VALVE_IDS
from valvereader.prediction import (
    REASON_NOT_RADIOGRAPH,
    REASON_SURE,
    REASON_UNLIKE_TRAINING,
    Prediction,
    Verdict,
    cap_for_modality,
    verdict_meaning,
)


def _prediction(verdict: Verdict, reason: str) -> Prediction:
    p = np.full(len(VALVE_IDS), 0.01, dtype=np.float32)
    p[2] = 1 - 0.01 * (len(VALVE_IDS) - 1)
    return Prediction(VALVE_IDS, p, verdict, verdict_reason=reason)


@pytest.mark.parametrize("modality", ["CT", "MR", " ct ", "US", "NM", "PT"])
def test_cross_sectional_and_other_non_x_ray_files_name_no_valve(modality: str) -> None:
    for verdict, reason in ((Verdict.CONFIDENT, REASON_SURE), (Verdict.UNKNOWN, REASON_UNLIKE_TRAINING)):
        capped = cap_for_modality(_prediction(verdict, reason), modality)
        assert capped.verdict is Verdict.NO_VALVE and capped.verdict_reason == REASON_NOT_RADIOGRAPH
        assert capped.named == ""
        text = verdict_meaning(capped)
        assert "Not a radiograph of the kind the model reads" in text and "no valve is named" in text


@pytest.mark.parametrize("modality", ["CR", "DX", "RF", "XA", "OT", "SC", "", None])
def test_plain_x_rays_and_files_without_a_modality_keep_their_verdict(modality: str | None) -> None:
    kept = cap_for_modality(_prediction(Verdict.CONFIDENT, REASON_SURE), modality)
    assert kept.verdict is Verdict.CONFIDENT and kept.verdict_reason == REASON_SURE


def test_the_predictor_caps_a_ct_file_it_would_call_confident(tmp_path: Path) -> None:
    from valvereader.inference.predictor import load_predictor

    write_tiny_weights(tmp_path, size=48, thresholds={"confident": 0.0, "unknown_confidence": 0.0})
    predictor = load_predictor(tmp_path, device="cpu")
    radiograph = synthetic_radiograph((150, 120))
    radiograph.meta.modality = "DX"
    plain = predictor.predict(radiograph, with_heatmap=False)
    assert plain.verdict is Verdict.CONFIDENT  # these thresholds call everything confident
    radiograph.meta.modality = "CT"
    ct = predictor.predict(radiograph, with_heatmap=False)
    assert ct.verdict is Verdict.NO_VALVE and ct.verdict_reason == REASON_NOT_RADIOGRAPH and ct.named == ""
    np.testing.assert_array_equal(ct.probabilities, plain.probabilities)  # the numbers are the model's
    results = list(predictor.predict_many([radiograph], load=lambda r: r))  # and so does a batch
    assert results[0][2].verdict is Verdict.NO_VALVE
