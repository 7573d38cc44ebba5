"""The committed default model: diffusers_attr/assets/digits_ddpm."""

import json

import pytest
import torch

from diffusers_attr.training import digits_ddpm_path, load_digits_ddpm

ASSET = digits_ddpm_path()


def test_asset_files_are_committed():
    assert (ASSET / "model_index.json").is_file()
    assert (ASSET / "scheduler" / "scheduler_config.json").is_file()
    weights = ASSET / "unet" / "diffusion_pytorch_model.safetensors"
    assert weights.is_file() and weights.stat().st_size < 6_000_000
    assert not (ASSET / "checkpoint").exists()
    assert (ASSET / "README.md").is_file()


def test_asset_loads_and_generates():
    pipe = load_digits_ddpm()
    assert pipe.unet.config.sample_size == 16 and pipe.unet.config.in_channels == 1
    assert type(pipe.scheduler).__name__ == "DDPMScheduler"
    g = torch.Generator().manual_seed(0)
    out = pipe(batch_size=1, num_inference_steps=4, output_type="np", generator=g).images
    assert out.shape == (1, 16, 16, 1) and 0.0 <= out.min() and out.max() <= 1.0
    x = torch.from_numpy(out).permute(0, 3, 1, 2)
    assert x.shape == (1, 1, 16, 16)


def test_asset_was_trained_on_the_first_1000_digits():
    pytest.importorskip("sklearn")
    from diffusers_attr.training import digits_split
    from diffusers_attr.training.ddpm import _fingerprint

    info = json.loads((ASSET / "training_info.json").read_text())
    train, _ = digits_split()
    assert info["train_ids"] == train.ids
    assert info["recipe"]["data_fingerprint"] == _fingerprint(train.images)
    assert info["step"] == info["recipe"]["steps"]
