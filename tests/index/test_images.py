"""PIL images -> [-1, 1] tensors exactly as diffusers prepares them; resizing and size checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as photos

from diffusers_attr.index import AttributionIndex
from diffusers_attr.index.images import resize_center_crop, to_model_input


def test_normalisation_matches_diffusers_image_processor():
    from diffusers.image_processor import VaeImageProcessor

    image = Image.fromarray(photos.chelsea()[:40, :56])
    ours = to_model_input(image, channels=3, resolution=None)
    theirs = VaeImageProcessor(do_resize=False).preprocess(image)[0]
    assert ours.dtype == torch.float32 and torch.equal(ours, theirs)
    assert ours.min() >= -1 and ours.max() <= 1


def test_grayscale_and_rgba_conversion():
    rgba = Image.fromarray(np.dstack([photos.coffee()[:8, :8], np.full((8, 8), 7, np.uint8)]), mode="RGBA")
    assert to_model_input(rgba, channels=3, resolution=None).shape == (3, 8, 8)
    gray = to_model_input(Image.fromarray(photos.camera()[:8, :9]), channels=1, resolution=None)
    assert gray.shape == (1, 8, 9)
    torch.testing.assert_close(gray[0], torch.from_numpy(photos.camera()[:8, :9] / 127.5 - 1).float())


def test_resize_shorter_side_then_centre_crop():
    image = Image.fromarray(photos.coffee())  # 600 x 400 (W x H)
    out = resize_center_crop(image, 100)
    assert out.size == (100, 100)
    expected = image.resize((150, 100), Image.BILINEAR).crop((25, 0, 125, 100))
    assert np.array_equal(np.asarray(out), np.asarray(expected))
    tall = Image.fromarray(photos.coffee().transpose(1, 0, 2))  # 400 x 600
    assert resize_center_crop(tall, 64).size == (64, 64)


def test_resolution_makes_photos_of_any_size_one_square_size():
    images = [Image.fromarray(photos.astronaut()), Image.fromarray(photos.coffee()), Image.fromarray(photos.chelsea())]
    index = AttributionIndex.from_images(images, resolution=16, progress=False)
    assert index.item_shape == (3, 16, 16)
    assert index.space["resolution"] == [16, 16]
    assert torch.equal(index[1], to_model_input(resize_center_crop(images[1], 16), channels=3, resolution=None))


def test_differing_sizes_without_resolution_is_a_clear_error():
    images = [Image.fromarray(photos.astronaut()[:16, :16]), Image.fromarray(photos.coffee()[:12, :16])]
    message = r"item '1' has shape \(3, 12, 16\).*first item '0' has \(3, 16, 16\).*resolution="
    with pytest.raises(ValueError, match=message):
        AttributionIndex.from_images(images, progress=False)


@pytest.mark.parametrize("kwargs", [{"channels": 4}, {"resolution": 0}, {"batch_size": 0}])
def test_bad_settings(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        AttributionIndex.from_images([Image.fromarray(photos.camera()[:8, :8])], progress=False, **kwargs)
