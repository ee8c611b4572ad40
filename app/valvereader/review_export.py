"""`valvereader export-reviews FOLDER --out DIR`: a batch's reviewed studies as a training set.

The window keeps a reader's decisions in ``FOLDER/valvereader-review.jsonl`` and each study's
result (with its located box) in ``FOLDER/.valvereader-results.jsonl`` (``valvereader.review``).
This command turns the studies a reader accepted or corrected into valve crops in the format of
the public csf-shuntvalves crops, which ``valvereader train --extra-crops DIR`` adds to the
training split:

- ``<valve id>/<sha256[:16]>.png``: the valve region of each study, cut from the image as the
  window shows it (``valvereader.io.load``: LUTs, window, inversion applied), 8-bit grey PNG
  without metadata. The region is the reader's region where one was drawn, else the located
  box, widened by ``MARGIN`` (10 %) of its width and height on every side and clipped to the
  image; it is not squared (the identifier squares a box itself when it reads it).
- ``manifest.csv``: ``path,label,width,height,sha256,source_uid`` like the public manifest;
  ``label`` is the corrected valve for a corrected study, the predicted valve for an accepted one.
- ``label-studio.json``: one task per crop, the region (without the margin) as a rectangle
  label on the crop in percent, as a completed annotation (Label Studio's JSON task format).
- ``README.md``: what the folder is, how it was made, and the program's disclaimer.

De-identification: nothing in the export comes from the file's name, header or review lines
but pixels of the valve region and the valve id. Crop files are named by the hash of their
own bytes; ``source_uid`` is a new UID (``2.25.`` + a random UUID, ITU-T X.667) drawn for each
source study during the export (two films of one DICOM study share it) and recorded nowhere
else, so it groups crops without linking them back to a patient, study or file. No names,
patient or study ids, dates or decision times are written. Pixels are what they are: a DICOM film
that declares text burned into its pixels (BurnedInAnnotation YES) is left out unless
``--keep-burned-in`` is given, because a crop may show part of a name or date; a film that
carries such text without declaring it cannot be told apart, so look at the crops before
sharing them.

Not written (each counted in the summary with its reason): rejected and undecided studies; a
study accepted as "no valve found" or as an unknown valve (no valve to crop, or none of the
eight trained valves); a correction to "unknown" (not one of the eight classes of the training
set); a study with no region (no located box and none drawn); an image that is missing,
changed since it was read, or cannot be read. A bad study is skipped; the others are exported.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io as bytes_io
import sys
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import DISCLAIMER, __version__
from .catalogue import UNKNOWN_VALVE_ID, VALVE_IDS
from .errors import ValveReaderError
from .geometry import Box
from .review import REVIEW_FILE, ResultCache, ReviewRecord, ReviewStore

MARGIN = 0.10  # of the region's width (height) added left and right (above and below)
MANIFEST = "manifest.csv"
LABEL_STUDIO = "label-studio.json"
MANIFEST_COLUMNS = ("path", "label", "width", "height", "sha256", "source_uid")


class ExportError(ValveReaderError):
    """The export cannot start: the batch folder or its review file is missing, or the output
    folder is not empty."""


@dataclass(frozen=True)
class ExportedCrop:
    """One crop written: its manifest row, and the region (crop pixels) the reader confirmed."""

    path: str  # relative to the export folder: <valve id>/<sha256[:16]>.png
    label: str
    width: int
    height: int
    sha256: str
    source_uid: str
    region: Box  # the valve region inside the crop (the margin around it excluded)


@dataclass
class ExportSummary:
    """What an export wrote and what it left out (``skipped``: (study as named in the batch, reason))."""

    out: Path
    written: list[ExportedCrop] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The summary as printed: counts per valve, then every study left out with its reason."""
        per_label = Counter(crop.label for crop in self.written)
        out = [f"written {len(self.written)} crop(s) to {self.out}"
               + (f": {', '.join(f'{label} {n}' for label, n in sorted(per_label.items()))}" if per_label else "")]
        reasons = Counter(reason for _, reason in self.skipped)
        out.append(f"skipped {len(self.skipped)}" + (":" if self.skipped else ""))
        out += [f"  {n} x {reason}" for reason, n in reasons.most_common()]
        out += [f"  - {name}: {reason}" for name, reason in self.skipped]
        return out


class _Skip(Exception):
    """A study that is not exported, with the reason said in the summary."""


def widened(region: Box, shape: tuple[int, int], margin: float = MARGIN) -> Box:
    """``region`` widened by ``margin`` of its width and height on each side, clipped to ``shape``."""
    dx, dy = round(region.width * margin), round(region.height * margin)
    return Box(region.x0 - dx, region.y0 - dy, region.x1 + dx, region.y1 + dy).clip(shape)


def crop_png(pixels: np.ndarray, box: Box) -> bytes:
    """``pixels`` (float 0..1, as displayed) inside ``box`` as an 8-bit grey PNG without metadata."""
    from PIL import Image

    part = pixels[box.y0:box.y1, box.x0:box.x1]
    grey = np.clip(np.rint(np.nan_to_num(part) * 255.0), 0, 255).astype(np.uint8)
    buffer = bytes_io.BytesIO()
    Image.fromarray(grey).save(buffer, format="PNG")
    return buffer.getvalue()


def new_uid() -> str:
    """A fresh UID: ``2.25.`` and the decimal value of a random UUID (ITU-T X.667, DICOM PS3.5 B.2)."""
    return f"2.25.{uuid.uuid4().int}"


def _label(record: ReviewRecord, result: dict | None) -> str:
    """The valve the crop is labelled with, or _Skip saying why the study has none."""
    if record.decision == "rejected":
        raise _Skip("rejected")
    if record.decision == "corrected":
        valve = record.corrected_valve_id or ""
        if valve == UNKNOWN_VALVE_ID:
            raise _Skip("corrected to an unknown valve (the training set has the 8 catalogue valves only)")
    else:
        if result is None:
            raise _Skip("accepted, but no kept result for the image (not read, or the file changed since it was read)")
        if result.get("verdict") == "no_valve":
            raise _Skip("accepted as no valve found (no valve to crop)")
        if result.get("verdict") == "unknown":
            raise _Skip("accepted as an unknown valve (the training set has the 8 catalogue valves only)")
        valve = record.predicted or ""
    if valve not in VALVE_IDS:
        raise _Skip(f"the valve {valve or '(none)'} is not one of the 8 catalogue valves")
    return valve


def _region(record: ReviewRecord, result: dict | None) -> Box:
    if record.region is not None:
        return Box(*record.region)
    box = (result or {}).get("box")
    if isinstance(box, list) and len(box) == 4 and all(isinstance(v, int) for v in box):
        region = Box(*box)
        if region.width > 0 and region.height > 0:
            return region
    raise _Skip("no valve region (no located box and none drawn by the reader)")


def burned_in(path: Path) -> bool:
    """Whether a DICOM file declares text burned into its pixels (BurnedInAnnotation YES)."""
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    try:
        header = dcmread(path, stop_before_pixels=True, specific_tags=["BurnedInAnnotation"])
    except (InvalidDicomError, OSError, ValueError, TypeError):
        return False
    return str(header.get("BurnedInAnnotation", "")).strip().upper() == "YES"


def _read(path: Path, region: Box, keep_burned_in: bool) -> tuple[np.ndarray, str | None, Box]:
    """(displayed pixels, the DICOM study's UID or None, region clipped to the image)."""
    from .io import load

    try:
        radiograph = load(path)
    except ValveReaderError as exc:
        raise _Skip(f"the image cannot be read ({exc})") from exc
    if not keep_burned_in and radiograph.meta.file_format == "DICOM" and burned_in(path):
        raise _Skip("the film declares text burned into its pixels (BurnedInAnnotation YES), which a crop may show; "
                    "--keep-burned-in exports it")
    clipped = region.clip(radiograph.shape)
    if clipped.width < 2 or clipped.height < 2:
        raise _Skip(f"the region {region.as_tuple()} lies outside the image ({radiograph.shape[1]} x {radiograph.shape[0]})")
    return radiograph.pixels, radiograph.meta.study_instance_uid, clipped


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} is a file; give a new folder for the export")
    if out.is_dir() and any(out.iterdir()):
        raise ExportError(f"{out} is not empty; give a new folder (several exports train together: "
                          "repeat --extra-crops)")


def export_reviews(folder: str | Path, out: str | Path, margin: float = MARGIN, keep_burned_in: bool = False) -> ExportSummary:
    """Write the accepted and corrected studies of the batch ``folder`` as crops into ``out``;
    ``keep_burned_in``: also films that declare burned-in text (see the module's notes).

    Raises:
        ExportError: ``folder`` is no folder or has no review file, or ``out`` is not empty.
        OSError: ``out`` cannot be written.
    """
    folder, out = Path(folder).expanduser(), Path(out).expanduser()
    if not folder.is_dir():
        raise ExportError(f"{folder} is not a folder: give the batch folder the window reviewed")
    store = ReviewStore(folder)
    if not store.path.is_file():
        raise ExportError(f"no review decisions in {folder} (expected {REVIEW_FILE}, written by the window)")
    _check_out(out)
    results = ResultCache(folder)
    summary = ExportSummary(out)
    decided = store.all()
    for key in results.images():
        if key not in decided:
            summary.skipped.append((key, "not decided"))
    uids: dict[str, str] = {}  # source study (DICOM Study UID, else the image) -> new UID, this export only
    tasks: list[dict] = []
    seen: set[str] = set()
    for key, record in decided.items():
        path = Path(key) if Path(key).is_absolute() else store.folder / key
        try:
            if record.decision != "rejected" and not path.is_file():
                raise _Skip("the image file is missing")
            result = results.entry(path)
            label = _label(record, result)
            pixels, study_uid, region = _read(path, _region(record, result), keep_burned_in)
            if (result or {}).get("inverted") is True:  # a negative, read inverted: the crop as the model read it
                pixels = 1.0 - pixels
            box = widened(region, (pixels.shape[0], pixels.shape[1]), margin)
            data = crop_png(pixels, box)
        except _Skip as why:
            summary.skipped.append((key, str(why)))
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            summary.skipped.append((key, "the same crop as another study in this export"))
            continue
        seen.add(digest)
        relative = f"{label}/{digest[:16]}.png"
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        source_uid = uids.setdefault(study_uid or f"image:{key}", new_uid())
        inner = Box(region.x0 - box.x0, region.y0 - box.y0, region.x1 - box.x0, region.y1 - box.y0)
        crop = ExportedCrop(relative, label, box.width, box.height, digest, source_uid, inner)
        summary.written.append(crop)
        tasks.append(_task(crop))
    out.mkdir(parents=True, exist_ok=True)
    _write_manifest(out / MANIFEST, summary.written)
    from . import atomic

    atomic.write_json(out / LABEL_STUDIO, tasks, indent=1)
    atomic.write_text(out / "README.md", _readme(summary, margin, keep_burned_in))
    return summary


def _task(crop: ExportedCrop) -> dict:
    """A Label Studio task: the crop, and the valve region on it as a completed rectangle label."""
    w, h, r = crop.width, crop.height, crop.region
    value = {"x": 100.0 * r.x0 / w, "y": 100.0 * r.y0 / h, "width": 100.0 * r.width / w, "height": 100.0 * r.height / h,
             "rotation": 0, "rectanglelabels": [crop.label]}
    result = {"id": crop.sha256[:10], "from_name": "valve", "to_name": "image", "type": "rectanglelabels",
              "original_width": w, "original_height": h, "image_rotation": 0, "value": value}
    return {"data": {"image": crop.path, "source_uid": crop.source_uid},
            "annotations": [{"result": [result], "was_cancelled": False}]}


def _write_manifest(path: Path, crops: list[ExportedCrop]) -> None:
    from . import atomic

    buffer = bytes_io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    for crop in crops:
        writer.writerow([crop.path, crop.label, crop.width, crop.height, crop.sha256, crop.source_uid])
    atomic.write_text(path, buffer.getvalue())


def _readme(summary: ExportSummary, margin: float, keep_burned_in: bool) -> str:
    per_label = Counter(crop.label for crop in summary.written)
    counts = "\n".join(f"- {label}: {n}" for label, n in sorted(per_label.items())) or "- none"
    return (
        f"# Reviewed valve crops\n\n{DISCLAIMER}\n\n"
        f"Written by Shunt Valve Reader {__version__} (`valvereader export-reviews`) from a reader's review: "
        f"{len(summary.written)} crop(s) of studies the reader accepted or corrected; {len(summary.skipped)} "
        "study(ies) left out (rejected, undecided, no valve, an unknown valve, no region or an unreadable image).\n\n"
        f"{counts}\n\n"
        "Each crop is the valve region (the reader's region where one was drawn, else the located box) "
        f"widened by {margin:.0%} of its width and height on every side, cut from the image as the viewer shows it, "
        "8-bit grey PNG. The label is the corrected valve (corrected studies) or the predicted valve (accepted ones): "
        "a reader's label, not verified further.\n\n"
        "`manifest.csv`: path,label,width,height,sha256,source_uid. `label-studio.json`: the region without the "
        "margin as a rectangle label on each crop, in percent.\n\n"
        "De-identified: files are named by the hash of their bytes; `source_uid` is a new random UID per source "
        "study (2.25 + a random UUID), kept nowhere else; no names, ids or dates are written. Pixels are exported as "
        "they are: text burned into a film inside the region (a name, a date) would show, so look at the crops before "
        "sharing them" + (" (films declaring burned-in text were kept: --keep-burned-in)" if keep_burned_in else
                          " (films declaring burned-in text were left out)") + ".\n\n"
        "Train with it: `valvereader train --data ../shared/data/csf-shuntvalves --extra-crops THIS_FOLDER --out RUN` "
        "(the crops join the training split only).\n"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, help="the batch folder reviewed in the window (holds valvereader-review.jsonl)")
    parser.add_argument("--out", type=Path, required=True, help="a new (or empty) folder for the crops and manifest")
    parser.add_argument("--margin", type=float, default=MARGIN,
                        help=f"fraction of the region's width and height added on each side (default {MARGIN})")
    parser.add_argument("--keep-burned-in", action="store_true",
                        help="also export films whose DICOM header declares text burned into the pixels "
                        "(BurnedInAnnotation YES; left out by default: a crop may show part of a name or date)")


def run(args: argparse.Namespace) -> int:
    if not 0.0 <= args.margin <= 2.0:
        print("error: --margin must be between 0 and 2", file=sys.stderr)
        return 2
    try:
        summary = export_reviews(args.folder, args.out, args.margin, args.keep_burned_in)
    except (ExportError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(summary.lines()))
    print(DISCLAIMER)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m valvereader.review_export``: the same as ``valvereader export-reviews``."""
    parser = argparse.ArgumentParser(prog="valvereader export-reviews", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
