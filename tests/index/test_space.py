"""Latent indexes from a real (tiny) VAE, the space fingerprint and the space check."""

from __future__ import annotations

import json

import pytest
import torch

from diffusers_attr.index import AttributionIndex, SpaceMismatchError, check_space, space_fingerprint
from diffusers_attr.index.images import to_model_input


def test_stored_latents_are_the_scaled_posterior_mean(digit_images, make_vae):
    vae = make_vae(0)
    index = AttributionIndex.from_images(digit_images, encoder=vae, batch_size=len(digit_images), progress=False)
    pixels = torch.stack([to_model_input(image, channels=3, resolution=None) for image in digit_images])
    with torch.no_grad():
        expected = vae.encode(pixels).latent_dist.mean * vae.config.scaling_factor
    assert index.item_shape == (4, 4, 4)
    assert torch.equal(index[:], expected)
    batched = AttributionIndex.from_images(digit_images, encoder=vae, batch_size=5, progress=False)
    torch.testing.assert_close(batched[:], expected, rtol=1e-5, atol=1e-6)


def test_latent_fingerprint(make_vae):
    vae = make_vae(0)
    space = space_fingerprint((4, 4, 4), encoder=vae, resolution=8)
    assert space["kind"] == "latent" and space["vae_class"] == "AutoencoderKL"
    assert space["scaling_factor"] == pytest.approx(0.18215) and space["shift_factor"] is None
    assert space["vae_config"]["latent_channels"] == 4 and not any(k.startswith("_") for k in space["vae_config"])
    assert space["resolution"] == [8, 8] and space["item_shape"] == [4, 4, 4]
    assert json.loads(json.dumps(space)) == space
    assert space_fingerprint((4, 4, 4), encoder=make_vae(0), resolution=8) == space
    for other in (make_vae(1), make_vae(0).half()):
        other_space = space_fingerprint((4, 4, 4), encoder=other, resolution=8)
        assert other_space["vae_weights_sha256"] != space["vae_weights_sha256"]


def test_weights_hash_ignores_the_dtype_a_half_checkpoint_is_loaded_in(make_vae):
    half = make_vae(0).half()
    upcast = make_vae(0).half().float()
    assert space_fingerprint((4, 4, 4), encoder=half) == space_fingerprint((4, 4, 4), encoder=upcast)


def test_index_space_records_the_vae_and_resolution(digit_images, make_vae):
    vae = make_vae(0)
    index = AttributionIndex.from_images(digit_images[:2], encoder=vae, progress=False)
    assert index.space == space_fingerprint((4, 4, 4), encoder=vae, resolution=(8, 8))


def test_check_space_names_the_differing_fields(make_vae):
    ours = space_fingerprint((4, 4, 4), encoder=make_vae(0), resolution=8)
    theirs = space_fingerprint((4, 8, 8), encoder=make_vae(1), resolution=16)
    check_space(ours, ours)
    with pytest.raises(SpaceMismatchError) as caught:
        check_space(theirs, ours)
    message = str(caught.value)
    for field in ("vae_weights_sha256", "resolution", "item_shape", "--pipeline"):
        assert field in message
    assert "scaling_factor" not in message
    assert isinstance(caught.value, ValueError)
    with pytest.raises(SpaceMismatchError, match=r"kind: expected 'pixel'"):
        check_space(space_fingerprint((4, 4, 4)), ours)


def test_check_space_skips_unknown_expected_fields(make_vae):
    ours = space_fingerprint((4, 4, 4), encoder=make_vae(0), resolution=8)
    check_space({**ours, "resolution": None}, {**ours, "resolution": [512, 512]})
    with pytest.raises(SpaceMismatchError, match="vae_config.latent_channels: expected 8, the index has 4"):
        check_space({**ours, "vae_config": {**ours["vae_config"], "latent_channels": 8}}, ours)


def test_load_with_expected_space(tmp_path, digit_images, make_vae):
    vae = make_vae(0)
    AttributionIndex.build(tmp_path / "idx", digit_images[:3], encoder=vae, progress=False)
    index = AttributionIndex.load(tmp_path / "idx", expected_space=space_fingerprint((4, 4, 4), encoder=vae))
    assert index.space["kind"] == "latent"
    with pytest.raises(SpaceMismatchError, match="vae_weights_sha256"):
        AttributionIndex.load(tmp_path / "idx", expected_space=space_fingerprint((4, 4, 4), encoder=make_vae(1)))


def test_tensor_with_declared_space(make_vae):
    vae = make_vae(0)
    latents = torch.randn(3, 4, 4, 4)
    space = space_fingerprint((4, 4, 4), encoder=vae, resolution=8)
    assert AttributionIndex.from_images(latents, space=space, progress=False).space == space
    with pytest.raises(ValueError, match="item_shape"):
        AttributionIndex.from_images(torch.randn(3, 4, 2, 2), space=space, progress=False)
    with pytest.raises(ValueError, match="encoder, resolution and channels must be None"):
        AttributionIndex.from_images(latents, encoder=vae, progress=False)


def test_encoder_channel_mismatch(digit_images, make_vae):
    with pytest.raises(ValueError, match="channels=1 but the encoder takes 3"):
        AttributionIndex.from_images(digit_images, encoder=make_vae(0), channels=1, progress=False)
