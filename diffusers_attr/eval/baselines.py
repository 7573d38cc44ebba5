"""Attributors with one interface: ``attributor(queries, train) -> scores [n_query, n_train]``.

``queries`` are clean images ``[Q, C, H, W]`` and ``train`` the training set ``[N, C, H, W]``, both in
the model's space; larger scores mean more influence (the item is predicted to lower the query's
loss). Included:

* :class:`NDARenoise`: this package's method (``nda_scores``) on seeded re-noised queries, averaged
  over noise levels and draws; :func:`nda_noisy_scores` for states recorded along a trajectory.
* :class:`PixelSimilarity`: raw pixel dot product or cosine similarity.
* :class:`PatchNearest`: patch-wise raw-pixel nearest-neighbour votes, no softmax and no noise model.
* :class:`ImageWise`: the optimal-denoiser ("image-wise") weights with the whole image as one patch,
  ``softmax_n(-||x_t - alpha y_n||^2 / (2 sigma^2))``, averaged over levels and draws.
* :class:`DTRAK`: gradient features of a diffusion function at a few timesteps, randomly projected,
  with the TRAK kernel (Zheng et al., "Intriguing properties of data attribution on diffusion
  models", ICLR 2024), for models small enough to differentiate.
"""

from __future__ import annotations

import hashlib
import math
from typing import Sequence

import torch
import torch.nn.functional as F

from ..engine import nda_scores

__all__ = [
    "DTRAK",
    "ImageWise",
    "NDARenoise",
    "PatchNearest",
    "PixelSimilarity",
    "image_wise_scores",
    "nda_noisy_scores",
    "renoise",
]


def _seed(*parts) -> int:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def renoise(x0: torch.Tensor, alpha: float, sigma: float, seed: int, draw: int) -> torch.Tensor:
    """``alpha x0 + sigma eps`` with ``eps`` seeded by ``(seed, draw)`` only: the same draw of noise at
    every level, and the same noise for every attributor called with that seed."""
    g = torch.Generator().manual_seed(_seed("renoise", seed, draw))
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float32)
    return alpha * x0.float() + sigma * eps


def nda_noisy_scores(states, alphas, sigmas, train, **kwargs) -> torch.Tensor:
    """Mean of ``nda_scores(states[j], train, alpha=alphas[j], sigma=sigmas[j], **kwargs)`` over the
    levels ``j`` (``states``: ``[L, Q, C, H, W]`` or a list of ``[Q, C, H, W]``)."""
    total = None
    for x, a, s in zip(states, alphas, sigmas):
        scores = nda_scores(x.float(), train, alpha=float(a), sigma=float(s), **kwargs).double()
        total = scores if total is None else total + scores
    return (total / len(alphas)).float()


class NDARenoise:
    """NDA scores of re-noised queries, averaged over ``levels`` x ``draws``.

    Parameters:
        levels: ``[(alpha, sigma), ...]`` forward-process coefficients (e.g. from ``alphas_cumprod``).
        patch_size, topk, scales: as in :func:`diffusers_attr.nda_scores`.
        draws: noise draws per level (draw ``d`` is the same noise at every level, see :func:`renoise`).
        seed: seed of the draws.
    """

    def __init__(self, levels: Sequence[tuple[float, float]], *, patch_size: int = 7, topk: int | None = None,
                 scales=None, draws: int = 1, seed: int = 0, memory_budget: int | None = None):
        self.levels = [(float(a), float(s)) for a, s in levels]
        self.kwargs = dict(patch_size=patch_size, topk=topk, scales=scales)
        if memory_budget is not None:
            self.kwargs["memory_budget"] = memory_budget
        self.draws, self.seed = draws, seed

    def __call__(self, queries: torch.Tensor, train) -> torch.Tensor:
        states, alphas, sigmas = [], [], []
        for a, s in self.levels:
            for d in range(self.draws):
                states.append(renoise(queries, a, s, self.seed, d))
                alphas.append(a)
                sigmas.append(s)
        return nda_noisy_scores(states, alphas, sigmas, train, **self.kwargs)


class PixelSimilarity:
    """Raw-pixel similarity of each query to each training image: ``"dot"`` or ``"cosine"``."""

    def __init__(self, kind: str = "cosine"):
        if kind not in ("dot", "cosine"):
            raise ValueError(f"kind must be 'dot' or 'cosine', got {kind!r}")
        self.kind = kind

    def __call__(self, queries: torch.Tensor, train) -> torch.Tensor:
        q = queries.double().flatten(1)
        y = torch.as_tensor(train).double().flatten(1)
        if self.kind == "cosine":
            q, y = F.normalize(q, dim=1), F.normalize(y, dim=1)
        return (q @ y.T).float()


def image_wise_scores(x_t: torch.Tensor, train, alpha: float, sigma: float) -> torch.Tensor:
    """Optimal-denoiser weights ``softmax_n(-||x_t - alpha y_n||^2 / (2 sigma^2))``: ``[Q, N]``."""
    q = x_t.double().flatten(1)
    y = torch.as_tensor(train).double().flatten(1) * alpha
    d2 = (q * q).sum(1, keepdim=True) - 2 * q @ y.T + (y * y).sum(1)[None]
    return torch.softmax(-d2 / (2 * sigma * sigma), dim=1).float()


class ImageWise:
    """The image-wise optimal-score weights (NDA with the whole image as one patch), on re-noised
    queries averaged over ``levels`` x ``draws`` (same noise as :class:`NDARenoise` with that seed)."""

    def __init__(self, levels: Sequence[tuple[float, float]], *, draws: int = 1, seed: int = 0):
        self.levels = [(float(a), float(s)) for a, s in levels]
        self.draws, self.seed = draws, seed

    def __call__(self, queries: torch.Tensor, train) -> torch.Tensor:
        total = 0.0
        for a, s in self.levels:
            for d in range(self.draws):
                total = total + image_wise_scores(renoise(queries, a, s, self.seed, d), train, a, s).double()
        return (total / (len(self.levels) * self.draws)).float()


class PatchNearest:
    """Patch-wise raw-pixel similarity without the softmax or the noise model.

    Every query window (side ``patch_size``, one per pixel, zero outside the image) finds, in every
    training image, its nearest window (squared L2, over all positions); the ``k`` training images
    with the nearest windows each get a vote of ``1 / k``. ``score_n`` = votes of image ``n`` summed over
    query windows (so a query's scores sum to its number of windows).
    """

    def __init__(self, patch_size: int = 5, k: int = 10, query_batch: int = 8, train_chunk: int = 64):
        if patch_size < 1 or patch_size % 2 == 0:
            raise ValueError(f"patch_size must be odd and positive, got {patch_size}")
        self.p, self.k, self.query_batch, self.train_chunk = patch_size, k, query_batch, train_chunk

    def _windows(self, x: torch.Tensor) -> torch.Tensor:
        pad = (self.p - 1) // 2
        w = F.unfold(x.float(), self.p, padding=pad)  # [B, C p p, HW]
        return w.transpose(1, 2).contiguous()  # [B, HW, D]

    def __call__(self, queries: torch.Tensor, train) -> torch.Tensor:
        train = torch.as_tensor(train)
        n = train.shape[0]
        k = min(self.k, n)
        kw = self._windows(train)  # [N, L, D]
        kn = (kw * kw).sum(-1)  # [N, L]
        out = torch.zeros(queries.shape[0], n, dtype=torch.float64)
        for qs in range(0, queries.shape[0], self.query_batch):
            qw = self._windows(queries[qs:qs + self.query_batch])  # [b, L, D]
            b, nl, d = qw.shape
            flat = qw.reshape(b * nl, d)
            best = torch.empty(b * nl, n)
            for ns in range(0, n, self.train_chunk):
                keys = kw[ns:ns + self.train_chunk]  # [c, L, D]
                c = keys.shape[0]
                d2 = -2 * flat @ keys.reshape(c * nl, d).T + kn[ns:ns + c].reshape(1, c * nl)
                best[:, ns:ns + c] = d2.view(b * nl, c, nl).amin(-1)  # |q|^2 is constant per row
            top = best.topk(k, dim=1, largest=False).indices  # [b L, k]
            votes = torch.zeros(b * nl, n, dtype=torch.float64)
            votes.scatter_(1, top, 1.0 / k)
            out[qs:qs + b] = votes.view(b, nl, n).sum(1)
        return out.float()


class DTRAK:
    """D-TRAK-style gradient attribution for a small diffusers UNet (epsilon prediction).

    Feature of an image ``x``: ``P^T grad_theta (1/K) sum_k f(x, t_k, eps_k)`` with ``K`` fixed timesteps,
    noise seeded per image *position-independently* (by ``seed`` and timestep, so a query and a
    training image see the same draws), ``f`` = ``"square"`` (``||eps_theta(x_t, t)||^2``, D-TRAK's best
    choice) or ``"loss"`` (``||eps_theta(x_t, t) - eps||^2``), and ``P`` a seeded Gaussian projection to
    ``proj_dim`` dimensions. Scores (TRAK kernel): ``Phi_q (Phi_tr^T Phi_tr + lam I)^-1 Phi_tr^T`` with
    ``lam = damping * trace(Phi_tr^T Phi_tr) / proj_dim``.
    """

    def __init__(self, unet, alphas_cumprod, *, timesteps: Sequence[int] = (50, 150, 250, 350, 450, 550, 650, 750, 850, 950),
                 function: str = "square", proj_dim: int = 1024, damping: float = 1e-2, seed: int = 0,
                 batch_size: int = 32, param_chunk: int = 65536):
        if function not in ("square", "loss"):
            raise ValueError(f"function must be 'square' or 'loss', got {function!r}")
        self.unet = unet
        self.abar = torch.as_tensor(alphas_cumprod, dtype=torch.float64)
        self.timesteps = list(timesteps)
        self.function, self.proj_dim, self.damping, self.seed = function, proj_dim, damping, seed
        self.batch_size, self.param_chunk = batch_size, param_chunk
        self._train_cache: tuple[int, torch.Tensor] | None = None

    def _grads(self, x: torch.Tensor) -> torch.Tensor:
        """Per-example flattened gradients ``[B, P]`` of the K-timestep mean of ``f``."""
        from torch.func import functional_call, grad, vmap

        unet = self.unet
        unet.eval()
        params = {k: v.detach() for k, v in unet.named_parameters()}
        names = list(params)
        k = len(self.timesteps)
        a = torch.tensor([math.sqrt(float(self.abar[t])) for t in self.timesteps], dtype=torch.float32)
        s = torch.tensor([math.sqrt(1 - float(self.abar[t])) for t in self.timesteps], dtype=torch.float32)
        tt = torch.tensor(self.timesteps, dtype=torch.long)
        g = torch.Generator().manual_seed(_seed("dtrak", self.seed))
        noise = torch.randn((k, *x.shape[1:]), generator=g)  # the same K draws for every image

        def f(p, xi):
            xt = a.view(k, 1, 1, 1) * xi[None] + s.view(k, 1, 1, 1) * noise
            out = functional_call(unet, p, (xt, tt)).sample
            if self.function == "square":
                return out.pow(2).flatten(1).sum(1).mean()
            return (out - noise).pow(2).flatten(1).sum(1).mean()

        grads = vmap(grad(f), in_dims=(None, 0))(params, x.float())
        return torch.cat([grads[n].reshape(x.shape[0], -1) for n in names], dim=1)

    def _project(self, grads: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(grads.shape[0], self.proj_dim, dtype=torch.float32)
        for c, start in enumerate(range(0, grads.shape[1], self.param_chunk)):
            block = grads[:, start:start + self.param_chunk]
            g = torch.Generator().manual_seed(_seed("proj", self.seed, c))
            proj = torch.randn(block.shape[1], self.proj_dim, generator=g) / math.sqrt(self.proj_dim)
            out += block @ proj
        return out

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Projected gradient features ``[B, proj_dim]``."""
        feats = []
        for start in range(0, x.shape[0], self.batch_size):
            feats.append(self._project(self._grads(x[start:start + self.batch_size])))
        return torch.cat(feats)

    def __call__(self, queries: torch.Tensor, train) -> torch.Tensor:
        train = torch.as_tensor(train)
        key = id(train)
        if self._train_cache is None or self._train_cache[0] != key:
            self._train_cache = (key, self.features(train).double())
        phi = self._train_cache[1]
        phq = self.features(queries).double()
        kernel = phi.T @ phi
        lam = self.damping * torch.trace(kernel) / self.proj_dim
        inv = torch.linalg.solve(kernel + lam * torch.eye(self.proj_dim, dtype=torch.float64), phi.T)  # [d, N]
        return (phq @ inv).float()
