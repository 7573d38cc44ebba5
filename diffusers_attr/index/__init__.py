"""The persistent training-set index: the training set in the model's space, with ids and metadata.

``AttributionIndex`` builds (in memory or streamed to disk, resumable), saves (safetensors shards plus
a JSON manifest with a fingerprint of the space), loads (memory-mapped) and verifies an index. It
implements the engine's training-source protocol, so the engine streams over it chunk by chunk.

Importing this package does not import diffusers or datasets.
"""

from .errors import IndexFormatError, SpaceMismatchError
from .index import AttributionIndex
from .space import check_space, space_fingerprint

__all__ = ["AttributionIndex", "IndexFormatError", "SpaceMismatchError", "check_space", "space_fingerprint"]
