"""Exceptions raised by :mod:`diffusers_attr.index`."""

from __future__ import annotations


class IndexFormatError(ValueError):
    """A folder is not a complete, intact index: manifest missing, shard truncated or corrupted."""


class SpaceMismatchError(ValueError):
    """An index was built in a different space (encoder, resolution, shape) than the one expected."""
