import json

import numpy as np
import pytest
import torch

from diffusers_attr import nda_scores
from diffusers_attr.eval import common_noise, diffusion_losses, finished_subsets, subset_masks, timestep_grid, train_subset_models
from diffusers_attr.eval import baselines as B


def test_train_subset_models_is_resumable(tmp_path):
    masks = subset_masks(20, 4, seed=0)
    calls = []

    def train_fn(indices, folder):
        calls.append(folder.name)
        if folder.name == "subset-002" and len(calls) == 3:
            raise KeyboardInterrupt  # interrupted in the middle of subset 2
        np.save(folder / "indices.npy", indices)

    with pytest.raises(KeyboardInterrupt):
        train_subset_models(masks, train_fn, tmp_path, log=None)
    assert finished_subsets(tmp_path, 4) == [0, 1]
    measured = []
    train_subset_models(masks, train_fn, tmp_path, after_each=lambda s, f: measured.append(s), log=None)
    assert calls == ["subset-000", "subset-001", "subset-002", "subset-002", "subset-003"]
    assert measured == [2, 3] and finished_subsets(tmp_path, 4) == [0, 1, 2, 3]
    np.testing.assert_array_equal(np.load(tmp_path / "subset-001" / "indices.npy"), np.flatnonzero(masks[1]))
    assert json.loads((tmp_path / "subset-003" / "DONE").read_text())["n_items"] == 10
    with pytest.raises(ValueError, match="different subset masks"):
        train_subset_models(subset_masks(20, 4, seed=9), train_fn, tmp_path, log=None)


def test_diffusion_losses_use_common_random_noise():
    torch.manual_seed(0)
    x0 = torch.rand(5, 1, 4, 4) * 2 - 1
    abar = torch.linspace(0.99, 0.01, 1000)
    grid = timestep_grid(4)
    assert grid == [125, 375, 625, 875]
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731 - predicts eps = 0: loss = mean eps^2
    a = diffusion_losses(zero, x0, timesteps=grid, alphas_cumprod=abar, draws=3, seed=7, batch_size=2)
    noise = common_noise((len(grid), *x0.shape), 3, 7)
    np.testing.assert_allclose(a, noise.pow(2).flatten(3).mean(-1).mean(0).T.double().numpy(), rtol=1e-5)
    # a perfect oracle (returns the true eps) has zero loss with the same seed
    scale = lambda t: float((1 - abar[t]).sqrt())  # noqa: E731
    a0 = {int(t): float(abar[t].sqrt()) for t in grid}

    def oracle(x, t):
        t = int(t[0])
        return (x - a0[t] * x0[: x.shape[0]]) / scale(t) if x.shape[0] == 5 else None

    assert np.abs(diffusion_losses(oracle, x0, timesteps=grid, alphas_cumprod=abar, draws=2, seed=1, batch_size=5)).max() < 1e-8
    b = diffusion_losses(zero, x0, timesteps=grid, alphas_cumprod=abar, draws=3, seed=7, batch_size=5)
    np.testing.assert_allclose(a, b)


def test_baselines_share_the_interface():
    torch.manual_seed(0)
    train = torch.rand(12, 1, 8, 8) * 2 - 1
    queries = torch.cat([train[:2], torch.rand(1, 1, 8, 8) * 2 - 1])
    levels = [(0.95, 0.3), (0.8, 0.6)]
    attributors = [B.PixelSimilarity("dot"), B.PixelSimilarity("cosine"), B.PatchNearest(3, k=2, train_chunk=5),
                   B.ImageWise(levels, draws=2), B.NDARenoise(levels, patch_size=3, draws=2)]
    for att in attributors:
        s = att(queries, train)
        assert s.shape == (3, 12) and torch.isfinite(s).all()
        assert s[0].argmax() == 0 and s[1].argmax() == 1, type(att).__name__  # a training copy wins
    assert torch.allclose(B.PatchNearest(3, k=2)(queries, train).sum(1), torch.full((3,), 64.0))
    assert torch.allclose(B.ImageWise(levels)(queries, train).sum(1), torch.ones(3))
    # NDARenoise is the mean of nda_scores over levels and draws, with renoise's seeded noise
    expected = torch.stack([
        nda_scores(B.renoise(queries, a, s, 0, d), train, alpha=a, sigma=s, patch_size=3)
        for a, s in levels for d in range(2)]).mean(0)
    assert torch.allclose(B.NDARenoise(levels, patch_size=3, draws=2)(queries, train), expected, atol=1e-5)


def test_dtrak_features_and_kernel():
    from diffusers import UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 8), layers_per_block=1,
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                       norm_num_groups=4)
    abar = torch.linspace(0.999, 0.01, 1000)
    train = torch.rand(6, 1, 8, 8) * 2 - 1
    att = B.DTRAK(unet, abar, timesteps=(100, 500), proj_dim=16, batch_size=4)
    # vmapped per-example gradients equal a plain per-example backward pass
    g = att._grads(train[:2])
    unet.zero_grad()
    noise = torch.randn((2, 1, 8, 8), generator=torch.Generator().manual_seed(B._seed("dtrak", 0)))
    a = abar[[100, 500]].sqrt().view(2, 1, 1, 1).float()
    s = (1 - abar[[100, 500]]).sqrt().view(2, 1, 1, 1).float()
    out = unet(a * train[1:2] + s * noise, torch.tensor([100, 500])).sample
    out.pow(2).flatten(1).sum(1).mean().backward()
    ref = torch.cat([p.grad.flatten() for p in unet.parameters()])
    assert torch.allclose(g[1], ref, rtol=1e-4, atol=1e-4)
    scores = att(train[:3], train)
    assert scores.shape == (3, 6) and torch.isfinite(scores).all()
    assert (scores[torch.arange(3), torch.arange(3)] > 0).all()  # an image supports itself
