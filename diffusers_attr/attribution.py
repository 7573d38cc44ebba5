"""The attribution of one generated image: which training items, how much, and where."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from safetensors.torch import load_file, save

from ._version import __version__
from .provenance import read_attribution, sidecar_path, write_png, write_sidecar
from .provenance.c2pa_manifest import C2PASigner, sign_png
from .render import (
    CATEGORICAL,
    display_size,
    dominant_collage,
    overlay,
    summary_card,
    with_colour_legend,
    with_heat_legend,
)
from .render.colormap import OTHER_COLOUR

FORMAT_VERSION = 1


@dataclass
class TopItem:
    """One of the training items an image draws on most.

    Attributes:
        rank: 1 for the largest score.
        index: position of the item in the attribution index.
        id: the item's stable id in the index.
        score: attribution score (averaged over noise levels).
        share: score divided by the sum of all scores (the fraction of patch mass).
        metadata: the item's metadata from the index (source path, caption, label, licence, ...).
    """

    rank: int
    index: int
    id: str
    score: float
    share: float
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class NoiseLevel:
    """A noise level the image was attributed at: ``x_t = alpha x_0 + sigma eps``."""

    timestep: float | None
    alpha: float
    sigma: float
    step: int | None = None


@dataclass
class Attribution:
    """Attribution of one image to the training set.

    Attributes:
        scores (`torch.Tensor` of shape `(N,)`): score of every index item, averaged over levels.
        level_scores (`torch.Tensor` of shape `(L, N)`): the scores at each noise level.
        levels: the ``L`` noise levels, in the order of ``level_scores``.
        top: the top items by score, with ids, shares and metadata.
        query_maps (`torch.Tensor` of shape `(M, h, w)`): where in the output each of the first
            ``M`` top items is used (model resolution; averaged over levels).
        source_maps (`torch.Tensor` of shape `(M, h, w)`): which regions of those items are used.
        dominant_source (`torch.LongTensor` of shape `(h, w)`): index of the item contributing most to
            each output pixel (at the lowest attributed noise level).
        config: the attribution configuration (patch size, scales, top-k, mode, levels, ...).
        index: the index fingerprint (space, item count, ids digest).
        model: the pipeline and denoiser class names.
        scheduler: the scheduler class name.
        image: the attributed image (see ``origin``), when it is a PIL image.
        source_images: the top training items as images, in ``top`` order (thumbnails, and the
            background of the source heatmaps).
        region: the part of ``image`` that was attributed, ``(left, top, right, bottom)`` in its
            pixels: the centre crop an image of another size or shape was prepared with, like the
            index items (the whole image when it has the index's resolution). Maps describe this
            part only and are drawn there. None: unknown (no image).
        origin: ``"generated"`` (by the wrapped pipeline) or ``"existing"`` (an image attributed
            after the fact).
    """

    scores: torch.Tensor
    level_scores: torch.Tensor
    levels: list[NoiseLevel]
    top: list[TopItem]
    query_maps: torch.Tensor
    source_maps: torch.Tensor
    dominant_source: torch.Tensor
    config: dict[str, Any]
    index: dict[str, Any]
    model: str
    scheduler: str
    image: Image.Image | None = None
    source_images: list[Image.Image] = field(default_factory=list)
    region: tuple[float, float, float, float] | None = None
    origin: str = "generated"

    def _output_size(self) -> tuple[int, int]:
        if self.image is not None:
            return self.image.size
        height, width = self.query_maps.shape[-2:]
        return (width, height)

    def _region(self) -> tuple[float, float, float, float] | None:
        return self.region if self.image is not None else None

    def _region_size(self) -> tuple[int, int]:
        """The attributed region's size in image pixels (the maps' aspect ratio)."""
        region = self._region()
        if region is None:
            return self._output_size()
        return max(1, round(region[2] - region[0])), max(1, round(region[3] - region[1]))

    def heatmap(self, k: int = 0, size: tuple[int, int] | None = None) -> Image.Image:
        """Where the output draws on its ``k``-th top item: the query map over the attributed region
        of the output image (the rest dimmed), at ``size`` (default the image's)."""
        self._check_map_rank(k)
        return overlay(self.image, self.query_maps[k], size or self._output_size(), region=self._region())

    def source_heatmap(self, k: int = 0, size: tuple[int, int] | None = None) -> Image.Image:
        """Which regions of the ``k``-th top item were used: its source map over the training image,
        at ``size`` (default the size of the attributed region)."""
        self._check_map_rank(k)
        source = self.source_images[k] if k < len(self.source_images) else None
        return overlay(source, self.source_maps[k], size or self._region_size())

    def collage(self, size: tuple[int, int] | None = None) -> Image.Image:
        """The output as a collage of training items: each pixel of the attributed region coloured by
        its dominant source (top items in the categorical colours of ``top`` order, any other item
        dark grey), at ``size`` (default the image's)."""
        legend = [item.index for item in self.top]
        return dominant_collage(
            self.image, self.dominant_source, legend, size or self._output_size(), region=self._region()
        )

    def card(self, count: int = 4) -> Image.Image:
        """One picture: the output, the heatmap of its top source, the collage, and the first
        ``count`` top training items captioned with their ids and shares."""
        top = self.top[: min(count, len(self.source_images))]
        captions = [f"#{item.rank} {item.id}\n{item.share:.1%}" for item in top]
        output = self.image if self.image is not None else self.heatmap(0)
        return summary_card(output, self.heatmap(0), self.collage(), self.source_images[: len(top)], captions)

    def _check_map_rank(self, k: int) -> None:
        if not 0 <= k < self.query_maps.shape[0]:
            raise IndexError(
                f"maps were kept for the top {self.query_maps.shape[0]} items; k={k} is out of range "
                "(raise the `maps` setting of AttributedPipeline to keep more)"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe metadata: what is embedded in the PNG and written to the sidecar."""
        top_indices = [item.index for item in self.top]
        return {
            "format": "diffusers-attr",
            "version": FORMAT_VERSION,
            "model": self.model,
            "scheduler": self.scheduler,
            "index": self.index,
            "config": self.config,
            "top": [asdict(item) for item in self.top],
            "levels": [
                asdict(level) | {"top_scores": self.level_scores[i, top_indices].tolist()}
                for i, level in enumerate(self.levels)
            ],
            "total_score": float(self.scores.sum()),
            "region": None if self.region is None else [round(float(v), 4) for v in self.region],
            "origin": self.origin,
        }

    def save(self, path: str | os.PathLike, *, heatmaps: bool = True, c2pa: C2PASigner | None = None) -> Path:
        """Write the image as ``path`` (PNG, metadata embedded), its JSON sidecar, the full arrays
        (``<stem>.attribution.safetensors``) and, with ``heatmaps``, the pictures:
        ``<stem>.heatmap-k.png`` (query map of top item k over the output), ``<stem>.source-k.png``
        (source map over training item k) and ``<stem>.collage.png`` (dominant sources), each enlarged
        to be seen (:func:`~diffusers_attr.render.display_size`) with a legend below, and
        ``<stem>.train-k.png`` (the top training items, as stored) and ``<stem>.card.png`` (a summary).
        With ``c2pa`` credentials the PNG also gets a signed C2PA manifest (the ``c2pa`` extra).

        Returns the PNG path.
        """
        path = Path(path)
        if self.image is None:
            raise ValueError("this attribution has no PIL image to save (was output_type 'pil'?)")
        metadata = self.to_dict()
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = _arrays_path(path)
        partial = arrays.with_name(arrays.name + ".partial")
        partial.write_bytes(save(self._arrays()))  # the process umask's mode, like every other output
        os.replace(partial, arrays)
        write_sidecar(sidecar_path(path), metadata)
        if heatmaps:
            self._save_pictures(path)
        write_png(self.image, path, metadata)
        if c2pa is not None:
            sign_png(path, metadata, c2pa, version=__version__)
        return path

    def _item_name(self, k: int) -> str:
        return f"#{k + 1} {self.top[k].id} ({self.top[k].share:.1%})" if k < len(self.top) else f"#{k + 1}"

    def _save_pictures(self, path: Path) -> None:
        """The map pictures of :meth:`save`, enlarged, each with its legend; the card; the thumbnails."""
        output_size, region_size = display_size(self._output_size()), display_size(self._region_size())
        for k in range(self.query_maps.shape[0]):
            name = self._item_name(k)
            heatmap = with_heat_legend(self.heatmap(k, output_size), f"where the output uses\n{name}")
            heatmap.save(path.with_name(f"{path.stem}.heatmap-{k + 1}.png"))
            source = with_heat_legend(self.source_heatmap(k, region_size), f"which parts it uses of\n{name}")
            source.save(path.with_name(f"{path.stem}.source-{k + 1}.png"))
        shown = set(self.dominant_source.unique().tolist())
        entries = [
            (CATEGORICAL[k], self._item_name(k)) for k, item in enumerate(self.top[: len(CATEGORICAL)]) if item.index in shown
        ]
        entries.append((OTHER_COLOUR, "other items"))
        collage = with_colour_legend(self.collage(output_size), "dominant training item per pixel", entries)
        collage.save(path.with_name(f"{path.stem}.collage.png"))
        self.card().save(path.with_name(f"{path.stem}.card.png"))
        for k, source in enumerate(self.source_images):
            source.save(path.with_name(f"{path.stem}.train-{k + 1}.png"))

    def _arrays(self) -> dict[str, torch.Tensor]:
        return {
            "scores": self.scores.float().contiguous(),
            "level_scores": self.level_scores.float().contiguous(),
            "query_maps": self.query_maps.float().contiguous(),
            "source_maps": self.source_maps.float().contiguous(),
            "dominant_source": self.dominant_source.long().contiguous(),
        }

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Attribution":
        """Read back a saved image's attribution with its full arrays (scores over the whole index)."""
        path = Path(path)
        metadata = read_attribution(path)
        arrays_file = _arrays_path(path)
        if not arrays_file.exists():
            raise FileNotFoundError(
                f"{arrays_file} is missing; the embedded metadata (top items only) is available "
                "through diffusers_attr.read_attribution"
            )
        arrays = load_file(str(arrays_file))
        with Image.open(path) as image:
            image.load()
            picture = image.copy()
        return cls(
            scores=arrays["scores"],
            level_scores=arrays["level_scores"],
            levels=[NoiseLevel(**{k: v for k, v in level.items() if k != "top_scores"}) for level in metadata["levels"]],
            top=[TopItem(**item) for item in metadata["top"]],
            query_maps=arrays["query_maps"],
            source_maps=arrays["source_maps"],
            dominant_source=arrays["dominant_source"],
            config=metadata["config"],
            index=metadata["index"],
            model=metadata["model"],
            scheduler=metadata["scheduler"],
            image=picture,
            region=tuple(metadata["region"]) if metadata.get("region") else None,
            origin=metadata.get("origin", "generated"),
        )


def _arrays_path(image_path: Path) -> Path:
    return image_path.with_name(image_path.stem + ".attribution.safetensors")
