"""The latent digits model: its training script at tiny sizes and the committed pipeline."""

import json

import pytest
import torch

from diffusers_attr.training.latent import digits_ldm_path, encode_latents, load_digits_ldm, main

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ldm") / "pipe"
    args = ["--out-dir", str(out), "--n-train", "16", "--vae-steps", "2", "--steps", "3", "--batch-size", "4",
            "--no-progress"]
    assert main(args) == 0
    return out


def test_training_script_writes_a_latent_pipeline_that_samples(tiny_run):
    from diffusers import AutoencoderKL, LDMPipeline

    info = json.loads((tiny_run / "training_info.json").read_text())
    assert info["latent_shape"] == [4, 8, 8] and info["unet"]["step"] == 3 and len(info["train_ids"]) == 16
    assert info["vae"]["recipe"]["steps"] == 2 and not tiny_run.with_name("pipe.work").exists()
    pipe = LDMPipeline.from_pretrained(str(tiny_run))
    assert isinstance(pipe.vqvae, AutoencoderKL)
    images = pipe(batch_size=1, num_inference_steps=2, output_type="np",
                  generator=torch.Generator().manual_seed(0)).images
    assert images.shape == (1, 32, 32, 1)


def test_scaling_factor_gives_the_training_latents_unit_spread(tiny_run):
    from diffusers import AutoencoderKL

    from diffusers_attr.training import digits_split

    vae = AutoencoderKL.from_pretrained(str(tiny_run / "vqvae"))
    train, _ = digits_split(16, 32)
    latents = encode_latents(vae, train.images)
    assert latents.shape == (16, 4, 8, 8)
    assert float(latents.std()) == pytest.approx(1.0, rel=1e-4)


def test_committed_latent_model_generates_digits_from_4x8x8_latents():
    assert (digits_ldm_path() / "training_info.json").is_file()
    weights = sum(f.stat().st_size for f in digits_ldm_path().rglob("*.safetensors"))
    assert weights < 10_000_000
    pipe = load_digits_ldm()
    assert pipe.unet.config.sample_size == 8 and pipe.unet.config.in_channels == 4
    images = pipe(batch_size=2, num_inference_steps=10, output_type="np",
                  generator=torch.Generator().manual_seed(0)).images
    assert images.shape == (2, 32, 32, 1) and images.std() > 0.1  # not a flat grey field
