"""``AttributedPipeline``: wrap a diffusers pipeline so every generated image comes with its attribution."""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import fields, is_dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .attribution import Attribution, NoiseLevel
from .attributor import Attributor
from .autoencoders import pipeline_autoencoder
from .config import AttributionConfig
from .index import AttributionIndex, check_space, space_fingerprint
from .levels import nearest_steps, resolve_levels, vp_noise_level
from .noise import NoiseSchedule, noise_schedule
from .pipeline_families import (
    call_arguments,
    check_index_shape,
    check_supported,
    denoiser,
    image_states,
    output_images,
    unpacker,
)
from .provenance.c2pa_manifest import C2PASigner
from .recorder import TrajectoryRecorder


class AttributedOutputMixin:
    """Adds ``attributions`` and :meth:`save` to a pipeline's own output class."""

    attributions: list[Attribution]

    def save(
        self, directory: str | os.PathLike, *, prefix: str = "image", heatmaps: bool = True,
        c2pa: C2PASigner | None = None, report: bool = True,
    ) -> list[Path]:
        """Write every image as ``<directory>/<prefix>-NNN.png`` with its attribution embedded, a JSON
        sidecar, the full arrays and (with ``heatmaps``) the heatmap PNGs; with ``c2pa`` credentials
        also a signed C2PA manifest; with ``report`` the folder's HTML report ``index.html`` (of every
        image in it). Existing files are kept: numbering continues after them.
        Returns the PNG paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        taken = {p.name for p in directory.glob(f"{prefix}-*.png")}
        paths, number = [], 0
        for attribution in self.attributions:
            while f"{prefix}-{number:03d}.png" in taken:
                number += 1
            paths.append(attribution.save(directory / f"{prefix}-{number:03d}.png", heatmaps=heatmaps, c2pa=c2pa))
            taken.add(paths[-1].name)
        if report and paths:
            from .report import write_run_report

            write_run_report(directory)
        return paths


@lru_cache(maxsize=None)
def _attributed_class(output_class: type) -> type:
    return type(f"Attributed{output_class.__name__}", (output_class, AttributedOutputMixin), {})


def _attach(output: Any, attributions: list[Attribution]) -> Any:
    """The pipeline's own output, as an instance of a subclass of its class with ``attributions``; a
    tuple or bare images (``return_dict=False``) are returned exactly as the pipeline returned them."""
    if not hasattr(output, "images"):
        return output
    values = {f.name: getattr(output, f.name) for f in fields(output)} if is_dataclass(output) else dict(output)
    attributed = _attributed_class(type(output))(**values)
    attributed.attributions = attributions
    return attributed


def as_pil_images(images: Any) -> list[Image.Image | None]:
    """A pipeline's ``images`` (PIL list, numpy ``[B,H,W,C]`` or torch ``[B,C,H,W]`` in [0, 1]) as PIL."""
    if isinstance(images, list) and all(isinstance(i, Image.Image) for i in images):
        return list(images)
    if isinstance(images, torch.Tensor):
        images = images.detach().float().cpu().permute(0, 2, 3, 1).numpy()
    array = (np.clip(np.asarray(images, dtype=np.float64), 0, 1) * 255).round().astype(np.uint8)
    return [Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a) for a in array]


def pipeline_name(name_or_path: str | None) -> str | None:
    """What results record of where a pipeline came from: a hub id as it is, a local folder by its
    name only (a path would tell the user's machine layout to everyone the image is shared with)."""
    if not name_or_path:
        return None
    path = Path(name_or_path)
    return path.name if path.is_absolute() or path.exists() else str(name_or_path)


class AttributedPipeline:
    """A diffusers pipeline whose every image comes with its training-data attribution.

    Call it exactly like the wrapped pipeline; the result is the pipeline's own output (same images,
    an instance of a subclass of the same class) plus ``.attributions``, one :class:`Attribution` per
    image, and ``.save(directory)``. With ``return_dict=False`` the result is exactly what the pipeline
    returns (a tuple); the attributions of the latest call are always in :attr:`last_attributions`.

    An index whose items cannot match the pipeline's states (channels, or the size a call samples at)
    is refused before the first denoising step, with how to fix it. Which pipelines and schedulers
    are supported: ``docs/pipelines.md``.

    Parameters:
        pipe: any diffusers image pipeline whose scheduler has a Gaussian forward process (DDPM, DDIM,
            DPM-Solver, Euler, Heun, flow matching, ...).
        index: the training set in the pipeline's space (latent pipelines: built with ``encoder=pipe``).
        **config: settings of :class:`~diffusers_attr.config.AttributionConfig` (``patch_size``,
            ``topk``, ``scales``, ``timesteps`` or ``sigmas``, ``mode``, ``draws``, ``seed``, ``top``,
            ``maps``, ``device``, ``memory_budget``, ``progress``).

    Attributes:
        last_attributions (`list[Attribution]`): one per image of the latest call (empty before one).

    Example:
        >>> out = AttributedPipeline(pipe, index, timesteps=[100, 300])(num_inference_steps=50)  # doctest: +SKIP
        >>> out.attributions[0].top[0].id, out.attributions[0].heatmap(0)  # doctest: +SKIP
        >>> wrapped = AttributedPipeline(pipe, index)  # doctest: +SKIP
        >>> images, nsfw = wrapped(prompt="a cat", return_dict=False)  # doctest: +SKIP
        >>> wrapped.last_attributions[0].save("cat.png")  # doctest: +SKIP
    """

    def __init__(self, pipe: Any, index: AttributionIndex, **config: Any):
        check_supported(pipe)
        self.pipe = pipe
        self.config = AttributionConfig(**config).resolved(index.item_shape)
        self.schedule = noise_schedule(pipe.scheduler)
        self.levels = resolve_levels(self.schedule, self.config.timesteps, self.config.sigmas)
        self.autoencoder = pipeline_autoencoder(pipe)
        expected = space_fingerprint(index.item_shape, encoder=self.autoencoder)
        expected["item_shape"] = expected["resolution"] = None  # checked against each generation
        check_space(expected, index.space)
        check_index_shape(pipe, index.item_shape)
        model = f"{type(pipe).__name__}({type(denoiser(pipe)).__name__})"
        name = pipeline_name(getattr(pipe, "name_or_path", None) or pipe.config.get("_name_or_path"))
        self.attributor = Attributor(
            index, self.config, autoencoder=self.autoencoder, model=f"{model} {name}" if name else model,
            scheduler=type(pipe.scheduler).__name__,
        )
        self.last_attributions: list[Attribution] = []

    @property
    def index(self) -> AttributionIndex:
        return self.attributor.index

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the wrapped pipeline with the same arguments and attribute every image."""
        call = call_arguments(self.pipe, args, kwargs)
        check_index_shape(self.pipe, self.index.item_shape, call)
        recorder = None  # renoise mode noises the finished images again: no states are recorded
        if self.config.mode == "trajectory":  # only the state nearest each level is kept
            recorder = TrajectoryRecorder(self.pipe, unpack=unpacker(self.pipe, call), nearest=self.levels)
        with recorder or nullcontext():
            output = self.pipe(*args, **kwargs)
        images = output_images(output)
        latent_output = call.get("output_type") == "latent"
        pictures = [None] * len(images) if latent_output else as_pil_images(images)
        if recorder is None:
            x0 = images if latent_output else self.attributor.encode_images(pictures)
            attributions = self.attributor.renoise(torch.as_tensor(x0).float().cpu(), self.levels, pictures)
        else:
            attributions = self._from_trajectory(recorder, pictures)
        self.last_attributions = attributions
        return _attach(output, attributions)

    def _from_trajectory(self, recorder: TrajectoryRecorder, pictures: list) -> list[Attribution]:
        records = recorder.states
        if not records:
            raise RuntimeError("the pipeline never called scheduler.step, so no noisy states were recorded")
        recorded = [vp_noise_level(r.alpha, r.sigma) for r in records]
        chosen = nearest_steps(recorded, self.levels)
        levels = [
            NoiseLevel(timestep=records[i].timestep, alpha=records[i].alpha, sigma=records[i].sigma, step=records[i].step_index)
            for i in chosen
        ]
        states = image_states(self.pipe, torch.stack([records[i].sample for i in chosen]), len(pictures))
        return self.attributor.attribute(states, levels, pictures)

    def attribute_images(self, images: list[Image.Image]) -> list[Attribution]:
        """Attribute existing images (renoise mode): each is prepared like the index items, encoded by
        the pipeline's autoencoder for latent pipelines, and noised at the configured levels."""
        x0 = self.attributor.encode_images(images)
        return self.attributor.renoise(x0, self.levels, list(images), origin="existing")


def attribute_images(
    images: list[Image.Image], index: AttributionIndex, pipe: Any = None, **config: Any
) -> list[Attribution]:
    """Attribute existing images to an index (renoise mode), with or without their pipeline.

    Parameters:
        images: PIL images; prepared like the index items (resized to the index resolution).
        index: the training set. A latent index needs ``pipe`` (its autoencoder encodes the images).
        pipe: the pipeline that made the images, if known: its autoencoder and scheduler are used. Without it
            training timesteps are read on diffusers' default DDPM schedule.
        **config: :class:`~diffusers_attr.config.AttributionConfig` settings (mode is renoise).

    Returns:
        One :class:`Attribution` per image.
    """
    if pipe is not None:
        return AttributedPipeline(pipe, index, **(config | {"mode": "renoise"})).attribute_images(images)
    if index.space.get("kind") == "latent":
        raise ValueError(
            "this index holds autoencoder latents; pass the pipeline (pipe=..., or --pipeline PATH on the "
            "command line) so its autoencoder can encode the images"
        )
    from diffusers import DDPMScheduler

    schedule: NoiseSchedule = noise_schedule(DDPMScheduler())
    settings = AttributionConfig(**(config | {"mode": "renoise"}))
    attributor = Attributor(index, settings, model="existing images", scheduler="DDPMScheduler (default schedule)")
    levels = resolve_levels(schedule, settings.timesteps, settings.sigmas)
    return attributor.renoise(attributor.encode_images(images), levels, list(images), origin="existing")
