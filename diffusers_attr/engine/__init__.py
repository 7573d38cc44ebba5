"""The attribution engine: pure tensor math, importable with torch alone (no diffusers)."""

from .maps import NDAMaps
from .scores import DEFAULT_MEMORY_BUDGET, NDAResult, nda_attribute, nda_scores
from .source import TensorSource, TrainingSource
from .windows import Scale

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "NDAMaps",
    "NDAResult",
    "Scale",
    "TensorSource",
    "TrainingSource",
    "nda_attribute",
    "nda_scores",
]
