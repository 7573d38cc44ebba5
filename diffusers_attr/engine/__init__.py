"""The attribution engine: pure tensor math, importable with torch alone (no diffusers)."""

from .distributed import gather_scores
from .maps import NDAMaps
from .scores import DEFAULT_MEMORY_BUDGET, NDAResult, nda_attribute, nda_scores
from .source import SourceShard, TensorSource, TrainingSource, shard
from .windows import Scale

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "NDAMaps",
    "NDAResult",
    "Scale",
    "SourceShard",
    "TensorSource",
    "TrainingSource",
    "gather_scores",
    "nda_attribute",
    "nda_scores",
    "shard",
]
