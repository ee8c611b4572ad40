"""Typed errors. Each message says what went wrong and, where possible, what to do."""

from __future__ import annotations


class ValveReaderError(Exception):
    """Base of every error this package raises on purpose."""


# --- input -------------------------------------------------------------------------------------
class InputError(ValveReaderError):
    """The file cannot be turned into a radiograph."""


class NotDicomError(InputError):
    """The file is neither DICOM nor a supported image format."""


class NoPixelDataError(InputError):
    """A DICOM object without pixel data."""


class NonImageObjectError(InputError):
    """A DICOM object that is not an image (structured report, RT plan, ...)."""


class UnsupportedTransferSyntaxError(InputError):
    """Pixel data in a compression no installed decoder handles."""


class TruncatedDataError(InputError):
    """The file ends before its pixel data does."""


class AbsurdDimensionsError(InputError):
    """Rows, columns or frames outside anything a radiograph can have."""


class PixelDataSizeError(InputError):
    """Pixel data declared larger than the file can hold."""


class UnsupportedImageError(InputError):
    """An image the loader understands but cannot display (e.g. unknown photometric)."""


# --- model -------------------------------------------------------------------------------------
class ModelError(ValveReaderError):
    """The model or its weights cannot be used."""


class WeightsMissingError(ModelError):
    """No weights file where one is expected."""


class WeightsIntegrityError(ModelError):
    """Weights whose sha256 differs from the model card, or whose classes differ from the catalogue."""


class ModelCardError(ModelError):
    """A model card that is missing fields or cannot be parsed."""


# --- datasets ----------------------------------------------------------------------------------
class DatasetError(ValveReaderError):
    """A manifest, folder or Label Studio export that cannot be read."""


class TemplateError(ValveReaderError):
    """A valve template that fails its schema."""


class UnreadableFileError(InputError):
    """The path does not exist, is a folder, or cannot be opened (permissions, I/O error)."""
