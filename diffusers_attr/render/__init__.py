"""Pictures of attributions: heatmap overlays, the dominant-source collage, legends and summary cards."""

from .card import summary_card
from .colormap import CATEGORICAL, heat
from .heatmap import display_size, dominant_collage, overlay, upsample
from .legend import with_colour_legend, with_heat_legend

__all__ = [
    "CATEGORICAL", "display_size", "dominant_collage", "heat", "overlay", "summary_card", "upsample",
    "with_colour_legend", "with_heat_legend",
]
