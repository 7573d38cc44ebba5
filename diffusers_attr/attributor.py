"""From noisy states (or finished images) of a model to one :class:`Attribution` per image.

The :class:`Attributor` is independent of how the states were obtained: ``AttributedPipeline``
feeds it the states it recorded during generation, ``attribute_images`` feeds it existing images.
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

import torch
from PIL import Image
from tqdm.auto import tqdm

from .attribution import Attribution, NoiseLevel, TopItem
from .autoencoders import Autoencoder
from .config import AttributionConfig
from .engine import nda_attribute
from .index import AttributionIndex
from .index.images import crop_box, index_preparation, prepare_like_index
from .levels import vp_coefficients
from .threads import cpu_threads

ENGINE_PROGRESS_MIN_ITEMS = 50_000
"""Indexes this large also get a progress bar per image over the training set."""


def index_fingerprint(index: AttributionIndex) -> dict[str, Any]:
    """What identifies an index in every result: its space, size and a digest of its ids."""
    digest = hashlib.sha256("\n".join(index.ids).encode()).hexdigest()
    return {"space": index.space, "items": len(index), "ids_sha256": digest}


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """``[B, C, H, W]`` in [-1, 1] -> PIL images (L for one channel, RGB for three)."""
    array = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte()
    array = array.permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a) for a in array]


class Attributor:
    """Attribute model-space states to an :class:`AttributionIndex`.

    Parameters:
        index: the training set in the model's space.
        config: the attribution settings (resolved for the index: see ``AttributionConfig.resolved``).
        autoencoder: the pipeline's autoencoder adapter for latent models (decodes source thumbnails,
            encodes images); None for pixel models.
        model, scheduler: names recorded with each result.
    """

    def __init__(
        self, index: AttributionIndex, config: AttributionConfig, *, autoencoder: Autoencoder | None = None,
        model: str = "", scheduler: str = "",
    ):
        self.index = index
        self.config = config.resolved(index.item_shape)
        self.autoencoder = autoencoder
        self.model = model
        self.scheduler = scheduler
        self.fingerprint = index_fingerprint(index)

    def check_states(self, states: torch.Tensor) -> None:
        """States ``[..., C, H, W]`` must have the shape of the index items."""
        if tuple(states.shape[-3:]) != tuple(self.index.item_shape):
            raise ValueError(
                f"the model's states have shape (C, H, W) = {tuple(states.shape[-3:])} but the index holds "
                f"{tuple(self.index.item_shape)}; build the index at the generation resolution "
                "(for latent pipelines through the pipeline's VAE), or generate at the index's resolution"
            )

    def attribute(
        self, states: torch.Tensor, levels: Sequence[NoiseLevel], images: Sequence[Image.Image | None],
        origin: str = "generated",
    ) -> list[Attribution]:
        """Attribute ``states [L, B, C, H, W]`` (level l of image b, with ``levels[l]``) image by image,
        on ``config.threads`` CPU threads (default: the cores free now, :mod:`diffusers_attr.threads`)."""
        self.check_states(states)
        alpha = torch.tensor([level.alpha for level in levels], dtype=torch.float64)
        sigma = torch.tensor([level.sigma for level in levels], dtype=torch.float64)
        device = self.config.device or "cpu"
        count = states.shape[1]
        bar = tqdm(range(count), desc="attributing", unit="image", disable=not self.config.progress, leave=False)
        with cpu_threads(self.config.threads, device):
            return [self._one(states[:, b].to(device), alpha, sigma, levels, images[b], origin) for b in bar]

    def renoise(
        self, x0: torch.Tensor, levels: Sequence[float], images: Sequence[Image.Image | None], origin: str = "generated"
    ) -> list[Attribution]:
        """Attribute finished samples ``x0 [B, C, H, W]`` (model space): each noised at every level
        ``nu`` with ``config.draws`` seeded draws; the draws of a level are averaged. ``origin`` says
        whether the images were generated here or existed before (recorded with each result)."""
        self.check_states(x0)
        generator = torch.Generator().manual_seed(self.config.seed)
        noisy, noise_levels = [], []
        for level in levels:
            alpha, sigma = vp_coefficients(level)
            for _ in range(self.config.draws):
                eps = torch.randn(x0.shape, generator=generator, dtype=torch.float32)
                noisy.append(alpha * x0.float().cpu() + sigma * eps)
                noise_levels.append(NoiseLevel(timestep=None, alpha=alpha, sigma=sigma))
        results = self.attribute(torch.stack(noisy), noise_levels, images, origin)
        return [self._merge_draws(result, len(levels)) for result in results]

    def encode_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """PIL images -> model space ``[B, C, H, W]``, prepared exactly as the index was."""
        pixels = torch.stack([prepare_like_index(image, self.index.space)[0] for image in images])
        return self.autoencoder.encode(pixels) if self.autoencoder is not None else pixels

    def region(self, image: Image.Image | None) -> tuple[float, float, float, float] | None:
        """The part of ``image`` an attribution describes: what :meth:`encode_images` keeps of it
        (the whole image when it has the index's resolution)."""
        return None if image is None else crop_box(image.size, index_preparation(self.index.space)[1])

    def _one(self, queries, alpha, sigma, levels, image, origin) -> Attribution:
        result = nda_attribute(
            queries, self.index, alpha=alpha, sigma=sigma, patch_size=self.config.patch_size,
            topk=self.config.topk, scales=self.config.scales, maps=max(self.config.maps, 1),
            shared_maps=True, memory_budget=self.config.memory_budget,
            progress=self.config.progress and len(self.index) >= ENGINE_PROGRESS_MIN_ITEMS,
        )
        level_scores = result.scores.float().cpu()
        scores = result.scores.mean(0).float().cpu()  # ranked as the engine ranked the map items
        maps = result.maps
        kept = self.config.maps
        top = self._top_items(scores)
        return Attribution(
            scores=scores,
            level_scores=level_scores,
            levels=list(levels),
            top=top,
            query_maps=maps.query_maps[:, :kept].mean(0).float().cpu(),
            source_maps=maps.source_maps[:, :kept].mean(0).float().cpu(),
            dominant_source=maps.dominant_source[0].cpu(),
            config=self.config.to_dict(),
            index=self.fingerprint,
            model=self.model,
            scheduler=self.scheduler,
            image=image,
            source_images=self.item_images([item.index for item in top]),
            region=self.region(image),
            origin=origin,
        )

    def _top_items(self, scores: torch.Tensor) -> list[TopItem]:
        total = float(scores.sum())
        values, indices = scores.topk(min(self.config.top, len(scores)))
        return [
            TopItem(
                rank=rank + 1, index=int(i), id=self.index.ids[int(i)], score=float(v),
                share=float(v) / total if total > 0 else 0.0, metadata=self.index.metadata[int(i)],
            )
            for rank, (v, i) in enumerate(zip(values, indices))
        ]

    def item_images(self, items: list[int]) -> list[Image.Image]:
        """Index items as pictures (decoded through the autoencoder for latent indexes)."""
        if not items:
            return []
        stored = self.index.gather(items).float()
        return to_pil(stored if self.autoencoder is None else self.autoencoder.decode(stored))

    def _merge_draws(self, result: Attribution, n_levels: int) -> Attribution:
        """Average the renoise draws of each level into one level entry."""
        draws = self.config.draws
        result.level_scores = result.level_scores.view(n_levels, draws, -1).mean(1)
        result.levels = result.levels[::draws]
        return result
