import json

import pytest
import torch
from safetensors.torch import load_file

from diffusers_attr.training import train_ddpm

TINY_UNET = dict(
    sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16), layers_per_block=1,
    down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
    norm_num_groups=4, attention_head_dim=8,
)
KW = dict(steps=6, batch_size=5, lr=1e-3, seed=3, unet_config=TINY_UNET, warmup_steps=2,
          checkpoint_every=2, progress=False, num_threads=1)


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    return torch.rand(12, 1, 8, 8, generator=g) * 2 - 1


def _weights(folder):
    return load_file(str(folder / "unet" / "diffusion_pytorch_model.safetensors"))


@pytest.fixture(scope="module")
def full_run(images, tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    return train_ddpm(images, out_dir=out, **KW)


def test_train_saves_a_loadable_pipeline(full_run, images):
    from diffusers import DDPMPipeline

    out = full_run.out_dir
    assert full_run.completed and full_run.step == 6 and len(full_run.losses) == 6
    assert all(l == l and l > 0 for l in full_run.losses)  # finite, positive
    assert (out / "model_index.json").is_file() and (out / "scheduler").is_dir()
    assert not (out / "checkpoint").exists()  # removed after a finished run
    info = json.loads((out / "training_info.json").read_text())
    assert info["step"] == 6 and info["recipe"]["seed"] == 3 and info["recipe"]["n_images"] == 12
    pipe = DDPMPipeline.from_pretrained(str(out))
    assert pipe.unet.config.sample_size == 8
    res = pipe(batch_size=2, num_inference_steps=3, output_type="np", generator=torch.Generator().manual_seed(0))
    assert res.images.shape == (2, 8, 8, 1)


def test_resume_matches_an_uninterrupted_run(full_run, images, tmp_path):
    part = train_ddpm(images, out_dir=tmp_path, stop_after_steps=3, **KW)
    assert part.pipeline is None and part.step == 3 and not part.completed
    assert (tmp_path / "checkpoint" / "state.pt").is_file()
    assert not (tmp_path / "model_index.json").exists()
    rest = train_ddpm(images, out_dir=tmp_path, **KW)
    assert rest.resumed_from == 3 and rest.completed
    assert rest.losses == full_run.losses
    a, b = _weights(full_run.out_dir), _weights(tmp_path)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # a finished run of the same recipe is reused, not retrained
    again = train_ddpm(images, out_dir=tmp_path, **KW)
    assert again.resumed_from == 6 and again.pipeline is not None


def test_checkpoint_of_another_recipe_is_refused(images, tmp_path):
    train_ddpm(images, out_dir=tmp_path, stop_after_steps=2, **KW)
    with pytest.raises(ValueError, match="different recipe"):
        train_ddpm(images, out_dir=tmp_path, **{**KW, "lr": 5e-4})
    restarted = train_ddpm(images, out_dir=tmp_path, resume=False, **{**KW, "steps": 2, "lr": 5e-4})
    assert restarted.resumed_from == 0 and restarted.completed


def test_bad_inputs(images, tmp_path):
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        train_ddpm(images * 3, out_dir=tmp_path, **KW)
    with pytest.raises(ValueError, match="N, C, H, W"):
        train_ddpm(images[0], out_dir=tmp_path, **KW)
