"""Provenance on disk: attribution metadata embedded in PNGs and JSON sidecars."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

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
    partial.write_text(json.dumps(metadata, indent=1))
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
        return json.loads(path.read_text())
    try:
        return read_png_metadata(path)
    except ValueError:
        if sidecar_path(path).exists():
            return json.loads(sidecar_path(path).read_text())
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
