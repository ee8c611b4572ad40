"""What the loader knows about transfer syntaxes and SOP classes, for specific error messages."""

from __future__ import annotations

# Which package decodes each compressed transfer syntax (named in UnsupportedTransferSyntaxError).
_DECODER_PACKAGES: dict[str, str] = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg-libjpeg (or Pillow)",
    "1.2.840.10008.1.2.4.51": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.57": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.70": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.80": "pylibjpeg-libjpeg or pyjpegls",
    "1.2.840.10008.1.2.4.81": "pylibjpeg-libjpeg or pyjpegls",
    "1.2.840.10008.1.2.4.90": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.91": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.201": "pylibjpeg-openjpeg >= 2.0",
    "1.2.840.10008.1.2.4.202": "pylibjpeg-openjpeg >= 2.0",
    "1.2.840.10008.1.2.4.203": "pylibjpeg-openjpeg >= 2.0",
    "1.2.840.10008.1.2.5": "pylibjpeg-rle",
}

# Syntaxes no installable plugin of pydicom 3.0 decodes, with what the user can do instead.
_NO_DECODER_ADVICE: dict[str, str] = {
    "1.2.840.10008.1.2.4.94": "JPIP references pixel data on a server; retrieve the full image",
    "1.2.840.10008.1.2.4.95": "JPIP references pixel data on a server; retrieve the full image",
    "1.2.840.10008.1.2.4.110": "JPEG XL needs a decoder pydicom does not have yet; export as PNG",
    "1.2.840.10008.1.2.4.111": "JPEG XL needs a decoder pydicom does not have yet; export as PNG",
    "1.2.840.10008.1.2.4.112": "JPEG XL needs a decoder pydicom does not have yet; export as PNG",
}
_NO_DECODER_ADVICE["1.2.840.10008.1.2.8.1"] = (
    "Deflated Image Frame Compression needs a newer pydicom (3.1 or later); "
    "or convert the file to Explicit VR Little Endian"
)
_SYNTAX_NAMES = {"1.2.840.10008.1.2.8.1": "Deflated Image Frame Compression"}
_VIDEO_PREFIX = "1.2.840.10008.1.2.4.10"  # MPEG-2, MPEG-4, HEVC (.100 - .108)

# Words in SOP class names of objects that hold no picture (SR, RT plan, waveform ...).
_NON_IMAGE_WORDS = (
    "SR Storage", "Plan", "Structure Set", "Waveform", "ECG", "Key Object", "Presentation State",
    "Encapsulated", "Raw Data", "Registration", "Treatment Record", "Audio", "Directory",
    "Measurement", "Surface", "Tractography", "Annotation", "Protocol", "Spectroscopy",
)


def syntax_name(uid: str) -> str:
    """Human name of a transfer syntax, or the UID itself when pydicom does not know it."""
    from pydicom.uid import UID

    name = _SYNTAX_NAMES.get(str(uid)) or UID(uid).name
    return name if name and name != uid else f"unknown transfer syntax {uid}"


def unsupported_syntax_advice(uid: str) -> str:
    """One line saying how pixel data in ``uid`` could be decoded, for error messages."""
    if uid in _DECODER_PACKAGES:
        return f"install {_DECODER_PACKAGES[uid]} (pip install {_DECODER_PACKAGES[uid].split()[0]})"
    if uid in _NO_DECODER_ADVICE:
        return _NO_DECODER_ADVICE[uid]
    if uid.startswith(_VIDEO_PREFIX):
        return "this is a video; export a still frame as DICOM or PNG first"
    return "no decoder is known for it; export the image uncompressed (e.g. with dcmdjpeg) or as PNG"


def sop_class_name(uid: str | None) -> str:
    """Readable SOP class name ('Comprehensive SR Storage'), or the UID, or 'unknown'."""
    from pydicom.uid import UID

    if not uid:
        return "unknown SOP class"
    name = UID(str(uid)).name
    return name or str(uid)


def is_non_image_sop_class(uid: str | None) -> bool:
    """True for SOP classes that never hold a picture (structured reports, RT plans ...)."""
    from pydicom.uid import UID

    if not uid:
        return False
    name = UID(str(uid)).name
    if not name or name == str(uid):
        return False
    if "Image" in name:
        return False
    return any(word in name for word in _NON_IMAGE_WORDS)
