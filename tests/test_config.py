"""The default rule of AttributionConfig.resolved: resolution-relative patch size, explicit settings win."""

import pytest

from diffusers_attr.config import AttributionConfig, default_patch_size


@pytest.mark.parametrize(
    "shape, expected",
    [((1, 16, 16), 11), ((3, 32, 32), 21), ((4, 8, 8), 5), ((4, 64, 64), 43), ((4, 64, 96), 43), ((1, 3, 3), 1)],
)
def test_the_rule_resolves_as_documented_for_pixel_and_latent_shapes(shape, expected):
    settings = AttributionConfig().resolved(shape)
    assert default_patch_size(shape) == expected == settings.patch_size
    assert settings.to_dict()["patch_size"] == expected and settings.to_dict()["timesteps"] == [100, 200, 300]


def test_explicit_settings_override_the_rule():
    assert AttributionConfig(patch_size=3).resolved((4, 64, 64)).patch_size == 3
    multiscale = AttributionConfig(scales=[(1, 3, 1.0)]).resolved((1, 16, 16))
    assert multiscale.patch_size is None and multiscale.scales == [(1, 3, 1.0)]
    assert AttributionConfig(sigmas=[0.3]).resolved((1, 16, 16)).timesteps is None
