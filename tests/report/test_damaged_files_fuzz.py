"""Whatever bytes a review, results or settings file holds, opening it never raises."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from valvereader.review import RESULTS_FILE, REVIEW_FILE, ResultCache, ReviewStore
from valvereader.settings import Settings

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
line = st.one_of(
    st.binary(max_size=60),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {"image": st.text(max_size=10), "decision": st.sampled_from(["accepted", "rejected", "corrected", "x", 3])},
        optional={"confidence": json_values, "corrected_valve_id": json_values, "probabilities": json_values,
                  "valve_ids": json_values, "verdict": json_values, "box": json_values, "stamp": json_values},
    ).map(lambda v: json.dumps(v).encode()),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(line, max_size=6), st.booleans())
def test_any_review_or_results_file_opens_without_raising(lines: list[bytes], trailing_newline: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        data = b"\n".join(lines) + (b"\n" if trailing_newline else b"")
        (Path(folder) / REVIEW_FILE).write_bytes(data)
        (Path(folder) / RESULTS_FILE).write_bytes(data)
        store = ReviewStore(folder)
        for record in store.all().values():
            assert record.decision in ("accepted", "rejected", "corrected")
            assert record.confidence is None or isinstance(record.confidence, float)
        store.record(Path(folder) / "new.dcm", "rejected")
        assert ReviewStore(folder).get(Path(folder) / "new.dcm") is not None
        cache = ResultCache(folder)
        for image in cache.images():
            prediction = cache.get(image)
            if prediction is not None:
                assert prediction.probabilities.ndim == 1
                assert prediction.ood_score is None or isinstance(prediction.ood_score, float)


@settings(max_examples=30, deadline=None)
@given(st.one_of(st.binary(max_size=80), json_values.map(lambda v: json.dumps(v).encode()),
                 st.dictionaries(st.sampled_from(["heatmap_opacity", "recent_files", "window_presets",
                                                  "show_heatmap", "device", "version"]),
                                 json_values).map(lambda v: json.dumps(v).encode())))
def test_any_settings_file_loads_without_raising(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "settings.json"
        path.write_bytes(data)
        loaded = Settings.load(path)
        assert 0.0 <= loaded.heatmap_opacity <= 1.0
        assert all(isinstance(p, str) for p in loaded.recent_files)
        loaded.save()
        assert Settings.load(path) == loaded
