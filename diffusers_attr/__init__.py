"""diffusers-attr: training-data attribution for Hugging Face diffusers pipelines.

Wrap a pipeline with :class:`AttributedPipeline` and every generated image comes with its
:class:`Attribution` (which training items, how much, where); :class:`AttributionIndex` holds the
training set in the model's space; :func:`nda_scores` is the engine underneath;
:func:`attribute_images` attributes images that exist already.

The names below are imported on first use, so ``import diffusers_attr`` (and the command line's
``--help``) does not load torch or diffusers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

from ._version import __version__

_PUBLIC = {
    "AttributedPipeline": ".pipeline",
    "Attribution": ".attribution",
    "AttributionIndex": ".index",
    "C2PASigner": ".provenance.c2pa_manifest",
    "NDAMaps": ".engine",
    "NDAResult": ".engine",
    "NoiseLevel": ".attribution",
    "Scale": ".engine",
    "TopItem": ".attribution",
    "attribute_images": ".pipeline",
    "nda_attribute": ".engine",
    "nda_scores": ".engine",
    "read_attribution": ".provenance",
}

__all__ = sorted(_PUBLIC)

if TYPE_CHECKING:
    from .attribution import Attribution, NoiseLevel, TopItem
    from .engine import NDAMaps, NDAResult, Scale, nda_attribute, nda_scores
    from .index import AttributionIndex
    from .pipeline import AttributedPipeline, attribute_images
    from .provenance import read_attribution
    from .provenance.c2pa_manifest import C2PASigner

__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
