"""pydicom set up to read quietly: no value checks quoting a patient's data into warnings or logs.

Below both the file sniffer and the DICOM loader, which each call it before reading.
"""

from __future__ import annotations

import warnings


def quiet_pydicom() -> None:
    """Turn off pydicom's value validation on reading: its warnings and log lines quote the
    offending value, which can be a patient's name or birth date (no names in
    logs). Loading never depends on those checks; idempotent and cheap."""
    from pydicom import config

    config.settings.reading_validation_mode = config.IGNORE
    # Compressed pixel data that ends early: pydicom warns (without the file's name, once per
    # read), and the loader reports it as a TruncatedDataError naming the file. Looked up on
    # every call (warnings.catch_warnings, pytest's for one, restores the filters) but added
    # only when missing: each change of the filters resets every module's once-only warnings.
    if not any(f[0] == "ignore" and f[1] is not None and f[1].pattern == _EOF_WARNING for f in warnings.filters):
        warnings.filterwarnings("ignore", message=_EOF_WARNING, category=UserWarning, module=r"pydicom(\.|$)")


_EOF_WARNING = r"End of file reached before delimiter"
