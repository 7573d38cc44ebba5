"""Pictures of attributions: heatmap overlays and the dominant-source collage."""

from .card import summary_card
from .colormap import CATEGORICAL, heat
from .heatmap import dominant_collage, overlay, upsample

__all__ = ["CATEGORICAL", "dominant_collage", "heat", "overlay", "summary_card", "upsample"]
