"""diffusers-attr: training-data attribution for Hugging Face diffusers pipelines."""

from .engine import NDAMaps, NDAResult, Scale, nda_attribute, nda_scores

__all__ = ["NDAMaps", "NDAResult", "Scale", "nda_attribute", "nda_scores"]
__version__ = "0.1.0"
