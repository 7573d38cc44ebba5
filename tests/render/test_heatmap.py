import numpy as np
import torch
from PIL import Image

from diffusers_attr.render import CATEGORICAL, dominant_collage, heat, overlay, upsample


def test_heat_ramp_is_monotone_in_brightness():
    rgb = heat(np.linspace(0, 1, 50)).astype(float)
    brightness = rgb @ [0.299, 0.587, 0.114]
    assert (np.diff(brightness) >= -1e-9).all()
    assert tuple(heat(np.array([0.0]))[0]) == (0, 0, 4)


def test_overlay_has_requested_size_and_marks_the_hot_region():
    image = Image.new("RGB", (64, 48), (128, 128, 128))
    map_ = torch.zeros(6, 8)
    map_[0, 0] = 1.0  # hot top-left corner
    out = overlay(image, map_, image.size)
    assert out.size == (64, 48)
    pixels = np.asarray(out, dtype=float)
    assert pixels[0, 0].sum() > pixels[-1, -1].sum()


def test_upsample_keeps_corners():
    grid = torch.arange(4.0).view(2, 2)
    big = upsample(grid, (4, 4), mode="nearest")
    assert big.shape == (4, 4) and big[0, 0] == 0 and big[-1, -1] == 3


def test_collage_colours_each_pixel_by_its_dominant_item():
    dominant = torch.tensor([[5, 7], [9, 5]])
    out = np.asarray(dominant_collage(None, dominant, legend=[5, 7], size=(2, 2)))
    assert tuple(out[0, 0]) == tuple(CATEGORICAL[0])
    assert tuple(out[0, 1]) == tuple(CATEGORICAL[1])
    assert tuple(out[1, 0]) == (60, 60, 60)  # item 9 is not in the legend
