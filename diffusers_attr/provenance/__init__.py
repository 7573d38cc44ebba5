"""Provenance on disk: attribution metadata embedded in PNGs and JSON sidecars."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..jsonio import dumps, loads
from .png import DIGITAL_SOURCE_TYPE, METADATA_KEY, read_png_metadata, write_png

SIDECAR_SUFFIX = ".attribution.json"


def sidecar_path(image_path: str | os.PathLike) -> Path:
    """``out/img.png`` -> ``out/img.attribution.json``."""
    path = Path(image_path)
    return path.with_name(path.stem + SIDECAR_SUFFIX)


def write_sidecar(path: str | os.PathLike, metadata: dict[str, Any]) -> Path:
    """Write the attribution JSON next to its image, atomically."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(dumps(metadata, indent=1), encoding="utf-8")
    os.replace(partial, path)
    return path


def read_attribution(path: str | os.PathLike) -> dict[str, Any]:
    """The attribution metadata of a saved image: from its PNG chunk, else from its JSON sidecar.

    ``path`` may also be the sidecar itself.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if path.name.endswith(SIDECAR_SUFFIX):
        return loads(path.read_text(encoding="utf-8"))
    try:
        return read_png_metadata(path)
    except ValueError:
        if sidecar_path(path).exists():
            return loads(sidecar_path(path).read_text(encoding="utf-8"))
        raise


__all__ = [
    "DIGITAL_SOURCE_TYPE",
    "METADATA_KEY",
    "read_attribution",
    "read_png_metadata",
    "sidecar_path",
    "write_png",
    "write_sidecar",
]
