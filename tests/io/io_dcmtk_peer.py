"""Compare valvereader.io.load with DCMTK's dcm2pnm rendering (a peer check).

Used by test_io_dcmtk.py and, run as a script, prints the table recorded in
docs/dicom-robustness.md:  python tests/io/io_dcmtk_peer.py ../shared/data/dicom-zoo
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

COMMON_SIZE = (128, 128)
MIN_CORRELATION = 0.99


@dataclass
class PeerResult:
    path: Path
    ours: str  # "ok" or the error class name
    dcmtk: str  # "ok" or dcm2pnm's complaint
    correlation: float | None = None
    voi: str = ""


_JPEG_LS = ("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81")


def dcmtk_tool(transfer_syntax: str = "") -> str | None:
    """DCMTK's renderer for a transfer syntax: dcml2pnm (JPEG-LS), dcmj2pnm (JPEG, RLE and
    uncompressed), dcm2pnm (uncompressed) - whichever is installed."""
    if transfer_syntax in _JPEG_LS and shutil.which("dcml2pnm"):
        return shutil.which("dcml2pnm")
    return shutil.which("dcmj2pnm") or shutil.which("dcm2pnm")


def dcmtk_available() -> bool:
    return dcmtk_tool() is not None


def voi_option(path: Path) -> tuple[list[str], str]:
    """dcm2pnm VOI option matching what our loader applies: the file's VOI LUT, else its
    first window, else a min-max window (we use 0.5/99.5 percentiles; close to min-max)."""
    import pydicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    if ds.get("VOILUTSequence"):
        return ["+Wl", "1"], "VOI LUT 1"
    if ds.get("WindowCenter") is not None and ds.get("WindowWidth") is not None:
        return ["+Wi", "1"], "window 1"
    return ["+Wm"], "min-max"


def render_dcmtk(path: Path, out_dir: Path) -> tuple[np.ndarray | None, str, str]:
    options, voi = voi_option(path)
    tool = str(dcmtk_tool(_transfer_syntax(path)))
    # Unique per source path: zoo folders repeat file names, and comparisons run in threads.
    out = out_dir / (hashlib.sha1(str(path).encode()).hexdigest()[:16] + ".png")
    command = [tool, "+on2", "+G", "+F", "1", *options, str(path), str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0 or not out.exists():
        if options != ["+Wm"]:  # a window DCMTK rejects: try min-max like our fallback
            command = [tool, "+on2", "+G", "+F", "1", "+Wm", str(path), str(out)]
            done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
            voi = "min-max (file window rejected)"
        if done.returncode != 0 or not out.exists():
            lines = [ln for ln in (done.stderr or done.stdout).splitlines() if "E:" in ln or "F:" in ln]
            return None, voi, (lines[0] if lines else f"exit {done.returncode}")[:120]
    with Image.open(out) as image:
        return np.asarray(image, dtype=np.float64), voi, "ok"


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    def small(x: np.ndarray) -> np.ndarray:
        image = Image.fromarray(np.asarray(x, dtype=np.float32), mode="F")
        return np.asarray(image.resize(COMMON_SIZE, Image.Resampling.BILINEAR), dtype=np.float64)

    x, y = small(a).ravel(), small(b).ravel()
    if x.std() < 1e-9 and y.std() < 1e-9:
        return 1.0
    if x.std() < 1e-9 or y.std() < 1e-9:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


# DCMTK's free toolkit has no JPEG 2000 / HTJ2K decoder: no point asking it.
_DCMTK_CANNOT_DECODE = ("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.201",
                        "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203")


def _transfer_syntax(path: Path) -> str:
    import pydicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    return str(getattr(ds, "file_meta", {}).get("TransferSyntaxUID", ""))


def compare(path: Path, out_dir: Path, quick: bool = False) -> PeerResult:
    """Our rendering vs DCMTK's. ``quick`` skips DCMTK where no comparison can result
    (our loader rejected the file, or DCMTK has no decoder for its compression)."""
    from valvereader.errors import InputError
    from valvereader.io import load

    try:
        ours = load(path).pixels
        ours_status = "ok"
    except InputError as exc:
        ours, ours_status = None, type(exc).__name__
    if quick and (ours is None or _transfer_syntax(path) in _DCMTK_CANNOT_DECODE):
        return PeerResult(path, ours_status, "not run")
    theirs, voi, theirs_status = render_dcmtk(path, out_dir)
    result = PeerResult(path, ours_status, theirs_status, voi=voi)
    if ours is not None and theirs is not None:
        if theirs.ndim == 3:
            theirs = theirs[..., 0]
        result.correlation = correlation(ours, theirs)
    return result


def dicom_files(root: Path, unique: bool = False) -> list[Path]:
    """DICOM files under ``root``; with ``unique``, byte-identical copies only once."""
    from valvereader.io import is_supported_file
    from valvereader.io.sniff import sniff

    files = [p for p in sorted(root.rglob("*")) if p.is_file() and is_supported_file(p) and sniff(p) == "dicom"]
    if not unique:
        return files
    seen: set[str] = set()
    kept = []
    for path in files:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            kept.append(path)
    return kept


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path("../shared/data/dicom-zoo")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in dicom_files(root):
            rows.append(compare(path, Path(tmp)))
    print("| file | ours | DCMTK | VOI | r |")
    print("|---|---|---|---|---|")
    for row in rows:
        r = f"{row.correlation:.4f}" if row.correlation is not None else "-"
        print(f"| {row.path.relative_to(root)} | {row.ours} | {row.dcmtk} | {row.voi} | {r} |")
    both = [r for r in rows if r.correlation is not None]
    low = [r for r in both if r.correlation < MIN_CORRELATION]
    print(f"\nfiles {len(rows)}, both decode {len(both)}, r >= {MIN_CORRELATION}: {len(both) - len(low)}, below: {len(low)}")
    for r in low:
        print(f"LOW {r.path.relative_to(root)} r={r.correlation:.4f} voi={r.voi}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
