"""Pictures of attributions: heatmap overlays and the dominant-source collage."""

from .colormap import CATEGORICAL, heat
from .heatmap import dominant_collage, overlay, upsample

__all__ = ["CATEGORICAL", "dominant_collage", "heat", "overlay", "upsample"]
