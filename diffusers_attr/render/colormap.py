"""Colour maps without matplotlib: a perceptually ordered heat ramp and categorical colours."""

from __future__ import annotations

import numpy as np

# Anchor colours of matplotlib's "inferno" ramp (a perceptually uniform dark-to-bright scale).
_HEAT_ANCHORS = np.array(
    [
        [0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99],
        [212, 72, 66], [245, 125, 21], [250, 193, 39], [252, 255, 164],
    ],
    dtype=np.float64,
)

# Tableau-10: distinct categorical colours for the dominant-source map.
CATEGORICAL = np.array(
    [
        [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
        [140, 86, 75], [227, 119, 194], [188, 189, 34], [23, 190, 207], [127, 127, 127],
    ],
    dtype=np.uint8,
)
OTHER_COLOUR = np.array([60, 60, 60], dtype=np.uint8)


def heat(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] (any shape) to uint8 RGB with the heat ramp (shape + (3,))."""
    position = np.clip(values, 0.0, 1.0) * (len(_HEAT_ANCHORS) - 1)
    low = np.floor(position).astype(int).clip(0, len(_HEAT_ANCHORS) - 2)
    frac = (position - low)[..., None]
    rgb = _HEAT_ANCHORS[low] * (1 - frac) + _HEAT_ANCHORS[low + 1] * frac
    return rgb.round().astype(np.uint8)
