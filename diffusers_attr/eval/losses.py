"""Per-query diffusion loss with common random noise, for LDS ground truth.

``diffusion_losses(unet, x0, timesteps=..., alphas_cumprod=...)`` returns the epsilon-MSE of every
query at every timestep of a fixed grid, averaged over ``draws`` noise draws. The noise is a
function of ``(seed, shape)`` only, so every model evaluated with the same arguments sees exactly the
same noisy inputs (common random numbers): differences between models are not blurred by noise.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

__all__ = ["diffusion_losses", "timestep_grid", "common_noise"]


def timestep_grid(n: int = 20, num_train_timesteps: int = 1000) -> list[int]:
    """``n`` evenly spaced timesteps at the centres of ``n`` equal bins of ``[0, num_train_timesteps)``."""
    width = num_train_timesteps / n
    return [int(width * (k + 0.5)) for k in range(n)]


def common_noise(shape: Sequence[int], draws: int, seed: int) -> torch.Tensor:
    """``[draws, *shape]`` standard normal noise from ``torch.Generator().manual_seed(seed)`` (CPU)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn((draws, *shape), generator=g)


@torch.no_grad()
def diffusion_losses(
    unet,
    x0: torch.Tensor,
    *,
    timesteps: Sequence[int],
    alphas_cumprod: torch.Tensor,
    draws: int = 4,
    seed: int = 0,
    batch_size: int = 512,
    noise: torch.Tensor | None = None,
) -> np.ndarray:
    """Epsilon-MSE of ``unet`` on every query at every timestep: ``[n_query, len(timesteps)]`` float64.

    Parameters:
        unet: a diffusers ``UNet2DModel`` (epsilon prediction), or any callable ``unet(x_t, t)`` returning
            an object with ``.sample`` or a tensor.
        x0: clean queries ``[Q, C, H, W]`` in the model's space.
        timesteps: the fixed grid (see :func:`timestep_grid`).
        alphas_cumprod: the training scheduler's ``alphas_cumprod``.
        draws: noise draws per (query, timestep), averaged.
        seed: seed of the common noise (one ``[draws, T, Q, C, H, W]`` draw; every model called with the
            same seed, queries and grid sees the same noise).
        noise: pass the noise explicitly instead (``[draws, T, Q, C, H, W]``).
    """
    was_training = getattr(unet, "training", False)
    if hasattr(unet, "eval"):
        unet.eval()
    try:
        param = next(unet.parameters()) if hasattr(unet, "parameters") else None
        device = param.device if param is not None else torch.device("cpu")
        dtype = param.dtype if param is not None else torch.float32
        x0 = torch.as_tensor(x0, dtype=torch.float32)
        q = x0.shape[0]
        steps = list(timesteps)
        if noise is None:
            noise = common_noise((len(steps), *x0.shape), draws, seed)
        if noise.shape[:3] != (draws, len(steps), q):
            raise ValueError(f"noise must be [draws, T, Q, ...] = [{draws}, {len(steps)}, {q}, ...], got {tuple(noise.shape)}")
        abar = torch.as_tensor(alphas_cumprod, dtype=torch.float64)
        out = np.zeros((q, len(steps)), dtype=np.float64)
        for j, t in enumerate(steps):
            a, s = float(abar[t].sqrt()), float((1 - abar[t]).sqrt())
            for d in range(draws):
                eps_all = noise[d, j]
                for start in range(0, q, batch_size):
                    x = x0[start:start + batch_size]
                    eps = eps_all[start:start + batch_size]
                    xt = (a * x + s * eps).to(device, dtype)
                    tt = torch.full((x.shape[0],), int(t), device=device, dtype=torch.long)
                    pred = unet(xt, tt)
                    pred = pred.sample if hasattr(pred, "sample") else pred
                    err = (pred.float().cpu() - eps).pow(2).flatten(1).mean(1)
                    out[start:start + x.shape[0], j] += err.double().numpy() / draws
        return out
    finally:
        if was_training and hasattr(unet, "train"):
            unet.train()
