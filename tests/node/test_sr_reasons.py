"""Every verdict reason the predictor can give has a coded meaning in the SR, within LO's 64 characters."""

from __future__ import annotations

from valvereader import prediction
from valvereader.node.sr import LO_MAX, REASON_MEANINGS


def test_every_reason_has_a_meaning_that_fits_lo() -> None:
    reasons = {value for name, value in vars(prediction).items() if name.startswith("REASON_") and isinstance(value, str)}
    assert reasons, "no reasons found"
    assert reasons <= set(REASON_MEANINGS), sorted(reasons - set(REASON_MEANINGS))
    assert all(len(text) <= LO_MAX for text in REASON_MEANINGS.values())
