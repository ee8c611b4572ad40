"""Peer check against DCMTK: where both decode a zoo file, our displayed image
correlates >= 0.99 with dcmj2pnm's rendering after resizing to a common size."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from io_dcmtk_peer import MIN_CORRELATION, compare, dcmtk_available, dicom_files


@pytest.mark.shared
@pytest.mark.slow
def test_loader_agrees_with_dcmtk_on_every_file_both_decode(dicom_zoo: Path, tmp_path: Path) -> None:
    if not dcmtk_available():
        pytest.skip("DCMTK (dcmj2pnm/dcm2pnm) not installed: apt-get install dcmtk")
    # Mostly waiting on dcmj2pnm subprocesses: a few threads cut the wall time.
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda path: compare(path, tmp_path, quick=True), dicom_files(dicom_zoo, unique=True)))
    both = [r for r in results if r.correlation is not None]
    assert len(both) >= 25, "too few files decoded by both to be a meaningful check"
    disagreements = [f"{r.path.name}: r={r.correlation:.3f} ({r.voi})" for r in both if r.correlation < MIN_CORRELATION]
    assert not disagreements, disagreements
