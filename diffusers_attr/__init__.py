"""diffusers-attr: training-data attribution for Hugging Face diffusers pipelines.

Wrap a pipeline with :class:`AttributedPipeline` and every generated image comes with its
:class:`Attribution` (which training items, how much, where); :class:`AttributionIndex` holds the
training set in the model's space; :func:`nda_scores` is the engine underneath.
"""

from ._version import __version__
from .attribution import Attribution, NoiseLevel, TopItem
from .engine import NDAMaps, NDAResult, Scale, nda_attribute, nda_scores
from .index import AttributionIndex
from .pipeline import AttributedPipeline
from .provenance import read_attribution

__all__ = [
    "AttributedPipeline",
    "Attribution",
    "AttributionIndex",
    "NDAMaps",
    "NDAResult",
    "NoiseLevel",
    "Scale",
    "TopItem",
    "nda_attribute",
    "nda_scores",
    "read_attribution",
]
