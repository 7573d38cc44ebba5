"""What differs between diffusers pipeline families, for attribution, in one place.

The wrapper records the states a pipeline hands to ``scheduler.step`` and compares them with an index.
Most pipelines follow one pattern; the differences this module knows about are:

* **where the autoencoder is** and how it scales latents (``vae``, ``movq``, ``vqvae``, ``vqgan``:
  :mod:`diffusers_attr.autoencoders`);
* **the shape of the states** a call will visit, computed before the call from the pipeline's
  components and the call's arguments (:func:`state_shape`), so a mismatched index is refused before
  the first denoising step (:func:`check_index_shape`): default sizes, latent channels, the
  autoencoder's downsampling, Flux/QwenImage packing, Kandinsky's rounding, the Wuerstchen/Stable
  Cascade decoders' latents from image embeddings, and resolution binning (PixArt, Sana, HunyuanDiT
  sample at a binned size and resize the output);
* **packed latents** (Flux, QwenImage): recorded as token sequences, unpacked to ``[B, C, H, W]``
  (:func:`unpacker`);
* **DiT** steps its scheduler on the classifier-free-guidance-doubled batch and keeps the first half
  (:func:`image_states`);
* **outputs**: a dataclass with ``images``, a tuple, or (Stable Cascade with ``return_dict=False``)
  the images themselves (:func:`output_images`);
* **pipelines that cannot be attributed**, refused by name with why (:func:`check_supported`).

Pipeline classes are matched by name along the MRO, so this module imports diffusers only where a
pipeline's own tables are read (resolution bins).
"""

from __future__ import annotations

import importlib
import inspect
import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from .autoencoders import Autoencoder, pipeline_autoencoder

REFUSED_PIPELINES: dict[str, str] = {
    **{
        name: "it generates image embeddings for a decoder pipeline, not images; wrap the decoder pipeline "
        "(or the combined pipeline, which runs both)"
        for name in (
            "KandinskyPriorPipeline", "KandinskyV22PriorPipeline", "KandinskyV22PriorEmb2EmbPipeline",
            "WuerstchenPriorPipeline", "StableCascadePriorPipeline",
        )
    },
    "UnCLIPPipeline": (
        "it samples with three schedulers (prior, decoder, super-resolution) and its images come out of a "
        "super-resolution stage conditioned on the decoder's output, so no one trajectory leads to them"
    ),
}
"""Pipelines refused by class name, with why."""

CFG_DOUBLED_STEP_PIPELINES = ("DiTPipeline",)
"""Pipelines that call ``scheduler.step`` on the classifier-free-guidance-doubled batch (the first half
carries the images' trajectory; the pipeline keeps it at the end)."""

IMAGE_EMBEDDING_DECODERS = ("WuerstchenDecoderPipeline", "StableCascadeDecoderPipeline")
"""Decoders whose latents are ``image_embeddings`` upsampled by ``config.latent_dim_scale``."""

KANDINSKY_ROUNDING = ("Kandinsky",)
"""Class-name prefixes of pipelines that round the latent size up to a multiple of the downsampling
(``downscale_height_and_width``)."""

FIXED_LATENT_DOWNSAMPLING = {"LDMTextToImagePipeline": 8}
"""Pipelines that divide the pixel size by a fixed factor, whatever their autoencoder."""

RESOLUTION_BINS: dict[str, dict[int, str]] = {
    "PixArtAlphaPipeline": {128: "ASPECT_RATIO_1024_BIN", 64: "ASPECT_RATIO_512_BIN", 32: "ASPECT_RATIO_256_BIN"},
    "PixArtSigmaPipeline": {
        256: "ASPECT_RATIO_2048_BIN", 128: "ASPECT_RATIO_1024_BIN", 64: "ASPECT_RATIO_512_BIN",
        32: "ASPECT_RATIO_256_BIN",
    },
    "SanaPipeline": {
        128: "ASPECT_RATIO_4096_BIN", 64: "ASPECT_RATIO_2048_BIN", 32: "ASPECT_RATIO_1024_BIN",
        16: "ASPECT_RATIO_512_BIN",
    },
}
"""Pipelines that bin the requested size by aspect ratio (``use_resolution_binning=True``): the bin
table (a name in the pipeline's module) for each ``transformer.config.sample_size``."""

STANDARD_SHAPE_PIPELINES = ("HunyuanDiTPipeline",)
"""Pipelines that map sizes outside ``SUPPORTED_SHAPE`` to ``map_to_standard_shapes`` when binning."""


def _class_names(pipe: Any) -> list[str]:
    return [cls.__name__ for cls in type(pipe).__mro__]


def _family_class(pipe: Any, names) -> type | None:
    """The first class of the pipeline's MRO whose name is in ``names`` (or starts with a prefix tuple)."""
    for cls in type(pipe).__mro__:
        if (cls.__name__.startswith(names) if isinstance(names, tuple) else cls.__name__ in names):
            return cls
    return None


def check_supported(pipe: Any) -> None:
    """Raise ``ValueError`` naming the pipeline and why, when its images cannot be attributed."""
    for name in _class_names(pipe):
        if name in REFUSED_PIPELINES:
            raise ValueError(f"{type(pipe).__name__} is not supported for attribution: {REFUSED_PIPELINES[name]}")
    if getattr(pipe, "scheduler", None) is None:
        raise ValueError(
            f"{type(pipe).__name__} is not supported for attribution: it has no `scheduler` whose steps lead to its images"
        )


def denoiser(pipe: Any) -> Any:
    """The pipeline's denoising network (``unet``, ``transformer`` or ``decoder``), or None."""
    for name in ("unet", "transformer", "decoder"):
        module = getattr(pipe, name, None)
        if module is not None:
            return module
    return None


def _call_parameters(pipe: Any) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(pipe.__call__).parameters)


def call_arguments(pipe: Any, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments of one pipeline call by name (positional ones bound to the call's signature)."""
    if not args:
        return dict(kwargs)
    signature = inspect.signature(pipe.__call__)
    bound = dict(signature.bind_partial(*args, **kwargs).arguments)
    for name, parameter in signature.parameters.items():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            bound.update(bound.pop(name, {}))
    return bound


@dataclass
class StateShape:
    """The shape of the states a pipeline call visits.

    Attributes:
        shape: ``(C, H, W)`` of one state (latents for latent pipelines, after unpacking).
        pixels: ``(height, width)`` in pixels the sampler works at (after binning), or None when the
            pipeline has no pixel size of its own (it follows its denoiser's ``sample_size`` or the
            image embeddings it is given).
        requested: ``(height, width)`` the call asked for, when binning changed it.
        depends_on_call: whether the call's arguments can change the shape.
        autoencoder: the pipeline's autoencoder adapter (None for pixel pipelines).
    """

    shape: tuple[int, int, int]
    pixels: tuple[int, int] | None
    requested: tuple[int, int] | None
    depends_on_call: bool
    autoencoder: Autoencoder | None

    def describe(self, pipe: Any) -> str:
        """E.g. ``StableDiffusionPipeline at 16x16 px samples AutoencoderKL latents (4, 8, 8)``."""
        what = "pixels" if self.autoencoder is None else f"{self.autoencoder.class_name} latents"
        where = ""
        if self.pixels is not None:
            where = f" at {self.pixels[0]}x{self.pixels[1]} px"
            if self.requested is not None:
                where = (
                    f" at {self.requested[0]}x{self.requested[1]} px, binned to {self.pixels[0]}x{self.pixels[1]} px "
                    "(use_resolution_binning=True),"
                )
        return f"{type(pipe).__name__}{where} samples {what} of shape (C, H, W) = {self.shape}"


def latent_downsampling(pipe: Any, autoencoder: Autoencoder | None) -> int:
    """Pixels per state element along each side, as the pipeline computes its latent size."""
    fixed = _family_class(pipe, FIXED_LATENT_DOWNSAMPLING)
    if fixed is not None:
        return FIXED_LATENT_DOWNSAMPLING[fixed.__name__]
    if autoencoder is None:
        return 1
    for name in ("vae_scale_factor", "movq_scale_factor"):
        value = getattr(pipe, name, None)
        if isinstance(value, int):
            return value
    return autoencoder.downsampling


def _sample_size(module: Any) -> tuple[int, int] | None:
    size = getattr(getattr(module, "config", None), "sample_size", None) if module is not None else None
    if isinstance(size, int):
        return size, size
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return int(size[0]), int(size[1])
    return None


def _requested_pixels(pipe: Any, call: dict[str, Any], factor: int) -> tuple[int, int] | None:
    """``(height, width)`` the call asks for: given, the signature's default, or the default sample size."""
    parameters = _call_parameters(pipe)
    default = None
    signature_height = parameters["height"].default
    signature_width = parameters.get("width", parameters["height"]).default
    if isinstance(signature_height, int) and isinstance(signature_width, int):
        default = (signature_height, signature_width)
    elif isinstance(getattr(pipe, "default_sample_size", None), int):
        default = (pipe.default_sample_size * factor,) * 2
    else:
        size = _sample_size(denoiser(pipe))
        default = None if size is None else (size[0] * factor, size[1] * factor)
    height = call.get("height") or (default[0] if default else None)
    width = call.get("width") or (default[1] if default else None)
    return None if height is None or width is None else (int(height), int(width))


def _binned(pipe: Any, call: dict[str, Any], pixels: tuple[int, int]) -> tuple[int, int] | None:
    """The size the sampler works at under resolution binning; ``pixels`` when the pipeline does not
    bin (or binning is off); None when its bins are unknown for this model."""
    parameters = _call_parameters(pipe)
    if "use_resolution_binning" not in parameters:
        return pixels
    if not call.get("use_resolution_binning", parameters["use_resolution_binning"].default):
        return pixels
    height, width = pixels
    standard = _family_class(pipe, STANDARD_SHAPE_PIPELINES)
    if standard is not None:
        module = importlib.import_module(standard.__module__)
        if (height, width) in module.SUPPORTED_SHAPE:
            return pixels
        width, height = module.map_to_standard_shapes(width, height)
        return int(height), int(width)
    binning = _family_class(pipe, RESOLUTION_BINS)
    if binning is None:
        return None
    table = RESOLUTION_BINS[binning.__name__].get(getattr(denoiser(pipe).config, "sample_size", None))
    if table is None:
        return None  # the pipeline raises its own error for this sample size
    ratios = getattr(importlib.import_module(binning.__module__), table)
    height, width = pipe.image_processor.classify_height_width_bin(height, width, ratios=ratios)
    return int(height), int(width)


def _latent_side(pipe: Any, pixels: int, factor: int) -> int:
    if getattr(type(pipe), "_unpack_latents", None) is not None:  # packed into 2x2 patches (Flux, QwenImage)
        return 2 * (pixels // (factor * 2))
    if _family_class(pipe, KANDINSKY_ROUNDING) is not None:
        return math.ceil(pixels / factor**2) * factor
    return pixels // factor


def state_shape(pipe: Any, call: dict[str, Any] | None = None) -> StateShape | None:
    """The shape of the states ``pipe(**call)`` will hand to ``scheduler.step``, or None when this
    module cannot tell it ahead (image-conditioned pipelines take it from their input image).

    Parameters:
        pipe: a diffusers pipeline.
        call: the call's arguments by name (see :func:`call_arguments`); None or ``{}`` for defaults.

    Example:
        >>> from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel
        >>> unet = UNet2DModel(sample_size=16, in_channels=1, out_channels=1, block_out_channels=(32, 64),
        ...                    down_block_types=("DownBlock2D",) * 2, up_block_types=("UpBlock2D",) * 2)
        >>> state_shape(DDPMPipeline(unet=unet, scheduler=DDPMScheduler())).shape
        (1, 16, 16)
    """
    call = call or {}
    autoencoder = pipeline_autoencoder(pipe)
    model = denoiser(pipe)
    if autoencoder is not None:
        channels = autoencoder.latent_channels
    else:
        channels = getattr(getattr(model, "config", None), "in_channels", None)
        if channels is None:
            return None
    parameters = _call_parameters(pipe)
    if "image" in parameters:
        return None  # image-conditioned: the size follows the input image
    if _family_class(pipe, IMAGE_EMBEDDING_DECODERS) is not None:
        embeddings = call.get("image_embeddings")
        if not isinstance(embeddings, torch.Tensor):
            return None
        scale = float(pipe.config.latent_dim_scale)
        shape = (channels, int(embeddings.shape[2] * scale), int(embeddings.shape[3] * scale))
        return StateShape(shape, None, None, True, autoencoder)
    if "height" not in parameters:  # unconditional and class-conditional pipelines: the denoiser's size
        size = _sample_size(model)
        if size is None:
            return None
        return StateShape((int(channels), *size), None, None, False, autoencoder)
    factor = latent_downsampling(pipe, autoencoder)
    requested = _requested_pixels(pipe, call, factor)
    if requested is None:
        return None
    pixels = _binned(pipe, call, requested)
    if pixels is None:
        return None
    shape = (int(channels), _latent_side(pipe, pixels[0], factor), _latent_side(pipe, pixels[1], factor))
    return StateShape(shape, pixels, requested if pixels != requested else None, True, autoencoder)


def _rebuild_advice(expected: StateShape) -> str:
    """How to build an index of the sampler's shape."""
    channels, height, width = expected.shape
    if expected.autoencoder is None:
        if height == width:
            return (f"build the index with channels={channels}, resolution={height} "
                    f"(diffusers-attr index build --channels {channels} --resolution {height})")
        return f"build the index from {width}x{height} px images with channels={channels} and no resolution"
    height, width = height * expected.autoencoder.downsampling, width * expected.autoencoder.downsampling
    if height == width:
        return (f"build the index through this pipeline at resolution={height} "
                f"(encoder=pipe; diffusers-attr index build --pipeline PATH --resolution {height})")
    return f"build the index through this pipeline from {width}x{height} px images and no resolution"


def _call_advice(pipe: Any, expected: StateShape, index_shape: tuple[int, ...], call: dict[str, Any]) -> str | None:
    """Call arguments under which the pipeline's states match the index, if a size change finds some."""
    if not expected.depends_on_call or expected.pixels is None:
        return None
    factor = latent_downsampling(pipe, expected.autoencoder)
    size = {"height": index_shape[1] * factor, "width": index_shape[2] * factor}
    changes = [size] if expected.requested is None else [{"use_resolution_binning": False, **size}, size]
    for change in changes:
        fitted = state_shape(pipe, {**call, **change})
        if fitted is not None and fitted.shape == index_shape:
            return "call it with " + ", ".join(f"{name}={value}" for name, value in change.items())
    return None


def check_index_shape(pipe: Any, index_shape: tuple[int, ...], call: dict[str, Any] | None = None) -> None:
    """Raise ``ValueError`` before generating when the states of ``pipe(**call)`` cannot match an index
    whose items have ``index_shape`` ``(C, H, W)``.

    With ``call=None`` (wrapping time) only what no call can change is checked: the channels, and the
    whole shape for pipelines whose size does not depend on the call (DDPM, DDIM, DiT, ...).
    """
    expected = state_shape(pipe, call)
    if expected is None:
        return
    index_shape = tuple(int(s) for s in index_shape)
    if call is None and expected.depends_on_call:
        if expected.shape[0] == index_shape[0]:
            return
    elif expected.shape == index_shape:
        return
    advice = [_rebuild_advice(expected), _call_advice(pipe, expected, index_shape, call or {})]
    raise ValueError(
        f"{expected.describe(pipe)} but the index holds items of shape {index_shape}: "
        + "; or ".join(filter(None, advice))
    )


def unpacker(pipe: Any, call: dict[str, Any]) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """For pipelines that pack latents into token sequences (Flux: ``[B, (H/2)(W/2), 4C]``; QwenImage),
    the function that turns a recorded state back into ``[B, C, H, W]``; None for every other pipeline."""
    unpack = getattr(type(pipe), "_unpack_latents", None)
    if unpack is None:
        return None
    factor = pipe.vae_scale_factor
    height, width = _requested_pixels(pipe, call, factor)

    def unpacked(packed: torch.Tensor) -> torch.Tensor:
        latents = unpack(packed, height, width, factor)
        return latents[:, :, 0] if latents.dim() == 5 else latents  # QwenImage: one video frame

    return unpacked


def image_states(pipe: Any, states: torch.Tensor, count: int) -> torch.Tensor:
    """Recorded states ``[L, B', C, H, W]`` -> ``[L, count, C, H, W]``: one trajectory per image.

    Raises:
        RuntimeError: the scheduler was stepped on a batch that is not one state per image and the
            pipeline is not one whose layout is known.
    """
    stepped = states.shape[1]
    if stepped == count:
        return states
    if stepped == 2 * count and _family_class(pipe, CFG_DOUBLED_STEP_PIPELINES) is not None:
        return states[:, :count]  # the guidance-doubled batch: its first half is the images' trajectory
    raise RuntimeError(
        f"{type(pipe).__name__} stepped its scheduler on {stepped} samples per step for {count} images, so "
        "its states cannot be matched to its images; this pipeline is not supported for attribution"
    )


def output_images(output: Any) -> Any:
    """The images of a pipeline's output: ``output.images``, the first entry of a tuple, or the output
    itself when the pipeline returns the images alone (Stable Cascade with ``return_dict=False``)."""
    if isinstance(output, tuple):
        return output[0]
    if hasattr(output, "images"):
        return output.images
    if isinstance(output, (list, torch.Tensor)) or hasattr(output, "__array__"):
        return output
    raise TypeError(f"cannot find the images in a pipeline output of type {type(output).__name__}")
