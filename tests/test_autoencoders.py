"""The autoencoder adapters: one per diffusers family, found from a pipeline's declared components."""

from __future__ import annotations

import pytest
import torch

import tiny_families as tf
from diffusers_attr import AttributionIndex
from diffusers_attr.autoencoders import autoencoder_for, pipeline_autoencoder
from diffusers_attr.index.space import encoder_fingerprint, json_safe, weights_sha256
from tiny_pipelines import tiny_ddpm_pipeline, tiny_sd3_pipeline, tiny_sd_pipeline, tiny_vae

# (factory of the module, pixels side that the encoder takes)
MODULES = {
    "AutoencoderKL": (lambda: tiny_vae(0), 16),
    "AutoencoderKL-4-blocks": (lambda: tf.tiny_kl(0, blocks=4), 32),
    "AutoencoderTiny": (lambda: tf.sd_tiny_autoencoder()[0].vae, 16),
    "AutoencoderDC": (lambda: tf.tiny_dc(0, stages=3), 16),
    "VQModel": (lambda: tf.tiny_vq(0), 16),
    "PaellaVQModel": (lambda: tf.tiny_paella(0), 16),
    "AutoencoderKLQwenImage": (lambda: tf.tiny_qwen_vae(0), 16),
}


@pytest.mark.parametrize("name", list(MODULES))
def test_adapter_shapes_follow_its_channels_and_downsampling(name):
    factory, side = MODULES[name]
    adapter = autoencoder_for(factory())
    pixels = torch.rand(2, adapter.in_channels, side, side, generator=torch.Generator().manual_seed(0)) * 2 - 1
    latents = adapter.encode(pixels)
    assert latents.dtype == torch.float32
    assert latents.shape == (2, adapter.latent_channels, side // adapter.downsampling, side // adapter.downsampling)
    assert adapter.decode(latents).shape == pixels.shape


def test_kl_fingerprint_fields_are_those_existing_indexes_hold():
    for vae in (tiny_vae(0), tiny_sd3_pipeline().vae):  # without and with shift_factor
        config = {k: v for k, v in dict(vae.config).items() if not k.startswith("_")}
        shift = vae.config.get("shift_factor")
        assert encoder_fingerprint(vae) == {
            "vae_class": "AutoencoderKL",
            "vae_config": json_safe(config, where="config"),
            "vae_weights_sha256": weights_sha256(vae),
            "scaling_factor": float(vae.config.scaling_factor),
            "shift_factor": None if shift is None else float(shift),
        }


def test_kl_latents_are_the_shifted_and_scaled_mean():
    vae = tiny_sd3_pipeline().vae
    pixels = torch.rand(1, 3, 8, 8) * 2 - 1
    with torch.no_grad():
        expected = (vae.encode(pixels).latent_dist.mean - vae.config.shift_factor) * vae.config.scaling_factor
    torch.testing.assert_close(autoencoder_for(vae).encode(pixels), expected)


def test_kl_with_latents_mean_and_std_normalises_each_channel_and_says_so_in_the_fingerprint():
    from diffusers import AutoencoderKL

    plain = tiny_vae(0)
    config = {k: v for k, v in plain.config.items() if not k.startswith("_")}
    normalised = AutoencoderKL(**config | {"latents_mean": [0.1, 0.2, 0.3, 0.4], "latents_std": [1, 2, 4, 8]}).eval()
    normalised.load_state_dict(plain.state_dict())
    pixels = torch.rand(1, 3, 16, 16) * 2 - 1
    raw = autoencoder_for(plain).encode(pixels) / plain.config.scaling_factor
    mean, std = torch.tensor([0.1, 0.2, 0.3, 0.4]).view(1, 4, 1, 1), torch.tensor([1.0, 2, 4, 8]).view(1, 4, 1, 1)
    torch.testing.assert_close(autoencoder_for(normalised).encode(pixels), (raw - mean) * plain.config.scaling_factor / std)
    assert encoder_fingerprint(normalised)["latents_scale"] == pytest.approx([0.18215 / s for s in (1, 2, 4, 8)])


def test_the_autoencoder_is_found_by_class_whatever_the_pipeline_calls_it():
    for factory, attribute in ((tf.ldm_unconditional, "vqvae"), (tf.kandinsky22, "movq"), (tf.wuerstchen, "vqgan"),
                               (tf.sana, "vae")):
        pipe, _ = factory()
        assert pipeline_autoencoder(pipe).module is getattr(pipe, attribute)
    assert pipeline_autoencoder(tiny_ddpm_pipeline()) is None
    with pytest.raises(ValueError, match="DDPMPipeline has no autoencoder"):
        autoencoder_for(tiny_ddpm_pipeline())


def test_kandinsky_uses_its_movq_unscaled_and_ldm_its_vqvae_scaled():
    kandinsky, _ = tf.kandinsky22()
    ldm, _ = tf.ldm_unconditional()
    pixels = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        raw = kandinsky.movq.encode(pixels).latents
    torch.testing.assert_close(autoencoder_for(kandinsky).encode(pixels), raw)
    torch.testing.assert_close(autoencoder_for(kandinsky.movq).encode(pixels), raw * kandinsky.movq.config.scaling_factor)
    assert autoencoder_for(ldm).scaling_factor == autoencoder_for(ldm.vqvae).scaling_factor == pytest.approx(0.18215)


def test_index_built_with_the_pipeline_or_its_vae_is_the_same():
    from PIL import Image

    pipe = tiny_sd_pipeline()
    images = torch.rand(3, 3, 16, 16)
    pictures = [Image.fromarray((image.permute(1, 2, 0).numpy() * 255).astype("uint8")) for image in images]
    by_pipe = AttributionIndex.from_images(pictures, encoder=pipe, progress=False)
    by_vae = AttributionIndex.from_images(pictures, encoder=pipe.vae, progress=False)
    assert by_pipe.space == by_vae.space and torch.equal(by_pipe[:], by_vae[:])
    assert by_pipe.space["vae_class"] == "AutoencoderKL"


def test_what_is_not_a_supported_autoencoder_is_named():
    from PIL import Image

    pipe = tiny_sd_pipeline()
    with pytest.raises(ValueError, match="encoder=CLIPTextModel is not a supported autoencoder; supported: AutoencoderKL"):
        AttributionIndex.from_images([Image.new("RGB", (8, 8))], encoder=pipe.text_encoder, progress=False)
    from diffusers import AutoencoderKLWan

    wan = AutoencoderKLWan(base_dim=8, z_dim=4, dim_mult=[1, 1], num_res_blocks=1, temperal_downsample=[False])
    pipe.vae = wan
    with pytest.raises(ValueError, match="StableDiffusionPipeline.vae: AutoencoderKLWan is not a supported autoencoder"):
        pipeline_autoencoder(pipe)


def test_two_autoencoders_are_ambiguous():
    pipe = tiny_sd_pipeline()
    pipe.register_modules(image_encoder=tiny_vae(1))
    with pytest.raises(ValueError, match=r"declares several autoencoders \(vae \(AutoencoderKL\), image_encoder"):
        pipeline_autoencoder(pipe)
