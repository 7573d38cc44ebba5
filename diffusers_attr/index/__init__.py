"""The persistent training-set index: the training set in the model's space, with ids and metadata.

``AttributionIndex`` builds (in memory or streamed to disk, resumable), saves (safetensors shards plus
a JSON manifest with a fingerprint of the space), loads (memory-mapped) and verifies an index. It
implements the engine's training-source protocol, so the engine streams over it chunk by chunk.

Importing this package does not import diffusers or datasets; torch is imported on first use of a
name below (reading a manifest, ``diffusers-attr index info``, needs neither).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_PUBLIC = {
    "AttributionIndex": ".index",
    "IndexFormatError": ".errors",
    "SpaceMismatchError": ".errors",
    "check_space": ".space",
    "space_fingerprint": ".space",
}

__all__ = sorted(_PUBLIC)

if TYPE_CHECKING:
    from .errors import IndexFormatError, SpaceMismatchError
    from .index import AttributionIndex
    from .space import check_space, space_fingerprint

__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
