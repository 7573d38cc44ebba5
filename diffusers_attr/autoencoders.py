"""One adapter per diffusers autoencoder family: pixels to the denoiser's latent space and back.

A latent pipeline's denoiser works on its autoencoder's latents after the pipeline's own scaling, and
that scaling differs by family (and, for ``VQModel``, by pipeline). Each adapter does what the pipelines
of its family do, so an index built through it lives in the space the sampler visits:

- ``AutoencoderKL`` (SD, SDXL, SD3, Flux, PixArt, ...): ``z = (h - shift_factor) * scaling_factor`` with
  ``h = latent_dist.mean``; ``(h - latents_mean) * scaling_factor / latents_std`` per channel when the
  config sets both (as SDXL pipelines do).
- ``AutoencoderTiny`` (TAESD): ``h = latents``, shifted and scaled like ``AutoencoderKL``.
- ``AutoencoderDC`` (Sana): ``z = latent * scaling_factor``.
- ``VQModel``: ``h = latents`` before quantisation; ``z = h * scaling_factor`` in the LDM pipelines
  (``vqvae``, decoded with quantisation), ``z = h`` in the Kandinsky pipelines (``movq``, decoded
  without quantisation).
- ``PaellaVQModel`` (Wuerstchen, Stable Cascade ``vqgan``): encodes pixels in [0, 1];
  ``z = latents / scale_factor``.
- ``AutoencoderKLQwenImage``: a video VAE on one frame; ``z = (h - latents_mean) / latents_std`` per
  channel, ``h = latent_dist.mean``.

Every adapter takes and returns pixels in [-1, 1] (``[n, C, H, W]``) and latents ``[n, c, h, w]``.
:func:`autoencoder_for` finds the adapter for an autoencoder module (``pipe.vae``, ``pipe.movq``,
``pipe.vqvae``, ``pipe.vqgan``) or for a pipeline, from the components it declares.

This module imports neither diffusers nor the rest of the package (classes are matched by name).

Example:
    >>> import torch
    >>> from diffusers import AutoencoderKL
    >>> from diffusers_attr.autoencoders import autoencoder_for
    >>> vae = AutoencoderKL(block_out_channels=[32, 64], down_block_types=["DownEncoderBlock2D"] * 2,
    ...                     up_block_types=["UpDecoderBlock2D"] * 2, latent_channels=4).eval()
    >>> adapter = autoencoder_for(vae)
    >>> adapter.latent_channels, adapter.downsampling, adapter.encode(torch.zeros(1, 3, 16, 16)).shape
    (4, 2, torch.Size([1, 4, 8, 8]))
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

UNSCALED_VQ_PIPELINES = ("Kandinsky",)
"""Class-name prefixes of the pipelines that use their ``VQModel`` latents unscaled and decode them
without quantising (every Kandinsky 2.1, 2.2 and 3 pipeline)."""


class Autoencoder:
    """How one autoencoder maps pixels in [-1, 1] to the denoiser's space ``z = (h - shift) * scale``
    and back; subclasses say how to get the raw latents ``h`` and how to decode them.

    Attributes:
        module: the diffusers autoencoder.
        scale, shift: the affine map from raw latents to the denoiser's space; floats, or one value per
            latent channel.
    """

    def __init__(self, module: torch.nn.Module, *, scale: float | Sequence[float] = 1.0,
                 shift: float | Sequence[float] = 0.0):
        self.module = module
        self.scale = scale
        self.shift = shift

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.class_name})"

    @property
    def class_name(self) -> str:
        return type(self.module).__name__

    @property
    def config(self) -> dict[str, Any]:
        """The module's config without private keys (``_diffusers_version``, ``_name_or_path``)."""
        return {k: v for k, v in dict(self.module.config).items() if not k.startswith("_")}

    @property
    def in_channels(self) -> int:
        """Channels of the pixel images the encoder takes."""
        return int(self.module.config.in_channels)

    @property
    def latent_channels(self) -> int:
        """Channels of the latents the denoiser works on."""
        return int(self.module.config.latent_channels)

    @property
    def downsampling(self) -> int:
        """Pixels per latent along each side."""
        return 2 ** (len(self.module.config.block_out_channels) - 1)

    @property
    def scaling_factor(self) -> float | None:
        """The scalar ``scale`` recorded in an index's space fingerprint (None when per channel)."""
        return None if isinstance(self.scale, (list, tuple)) else float(self.scale)

    @property
    def shift_factor(self) -> float | None:
        """The scalar ``shift`` recorded in the fingerprint; None when there is none or it is per channel."""
        return None if isinstance(self.shift, (list, tuple)) or not self.shift else float(self.shift)

    def extra_fingerprint(self) -> dict[str, Any]:
        """Fingerprint fields beyond class, config, weights, scaling and shift (per-channel statistics)."""
        fields: dict[str, Any] = {}
        if isinstance(self.shift, (list, tuple)):
            fields["latents_mean"] = [float(v) for v in self.shift]
        if isinstance(self.scale, (list, tuple)):
            fields["latents_scale"] = [float(v) for v in self.scale]
        return fields

    def _affine(self, value: float | Sequence[float], like: torch.Tensor) -> torch.Tensor | float:
        if isinstance(value, (list, tuple)):
            return torch.tensor(value, dtype=like.dtype, device=like.device).view(1, -1, 1, 1)
        return float(value)

    def _parameter(self) -> torch.Tensor:
        return next(self.module.parameters())

    @torch.no_grad()
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels ``[n, C, H, W]`` in [-1, 1] -> the denoiser's space ``[n, c, h, w]``, float32 on the CPU."""
        parameter = self._parameter()
        raw = self._raw_latents(pixels.to(parameter.device, parameter.dtype)).to("cpu", torch.float32)
        return (raw - self._affine(self.shift, raw)) * self._affine(self.scale, raw)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """The denoiser's space ``[n, c, h, w]`` -> pixels ``[n, C, H, W]`` (about [-1, 1]), float32 on the CPU."""
        latents = latents.float().cpu()
        raw = latents / self._affine(self.scale, latents) + self._affine(self.shift, latents)
        parameter = self._parameter()
        return self._pixels(raw.to(parameter.device, parameter.dtype)).to("cpu", torch.float32)

    def _raw_latents(self, pixels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _pixels(self, raw: torch.Tensor) -> torch.Tensor:
        return self.module.decode(raw).sample


class KLAutoencoder(Autoencoder):
    """``AutoencoderKL`` and ``AsymmetricAutoencoderKL``: the mean of the latent distribution, shifted and
    scaled as the config says (``latents_mean``/``latents_std`` per channel when it sets both)."""

    def __init__(self, module: torch.nn.Module):
        config = module.config
        mean, std = config.get("latents_mean"), config.get("latents_std")
        if mean is not None and std is not None:
            scaling = float(config.scaling_factor)
            super().__init__(module, shift=list(mean), scale=[scaling / float(s) for s in std])
        else:
            super().__init__(module, scale=float(config.scaling_factor), shift=float(config.get("shift_factor") or 0.0))

    @property
    def scaling_factor(self) -> float:
        return float(self.module.config.scaling_factor)

    @property
    def shift_factor(self) -> float | None:
        shift = self.module.config.get("shift_factor")
        return None if shift is None else float(shift)

    def _raw_latents(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.module.encode(pixels).latent_dist.mean


class TinyAutoencoder(Autoencoder):
    """``AutoencoderTiny`` (TAESD): deterministic ``latents``, scaled like ``AutoencoderKL``."""

    def __init__(self, module: torch.nn.Module):
        config = module.config
        super().__init__(module, scale=float(config.scaling_factor), shift=float(config.get("shift_factor") or 0.0))

    @property
    def downsampling(self) -> int:
        return 2 ** (len(self.module.config.encoder_block_out_channels) - 1)

    def _raw_latents(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.module.encode(pixels).latents


class DCAutoencoder(Autoencoder):
    """``AutoencoderDC`` (Sana): deterministic ``latent`` times ``scaling_factor``."""

    def __init__(self, module: torch.nn.Module):
        super().__init__(module, scale=float(module.config.scaling_factor))

    @property
    def downsampling(self) -> int:
        return 2 ** (len(self.module.config.encoder_block_out_channels) - 1)

    def _raw_latents(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.module.encode(pixels).latent


class VQAutoencoder(Autoencoder):
    """``VQModel``: the encoder's latents before quantisation.

    Parameters:
        scaled: multiply by ``scaling_factor`` and quantise when decoding (the LDM pipelines), or use the
            latents as they are and decode without quantising (the Kandinsky pipelines' ``movq``).
    """

    def __init__(self, module: torch.nn.Module, *, scaled: bool = True):
        super().__init__(module, scale=float(module.config.scaling_factor) if scaled else 1.0)
        self.scaled = scaled

    @property
    def latent_channels(self) -> int:
        return int(self.module.config.vq_embed_dim or self.module.config.latent_channels)

    def _raw_latents(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.module.encode(pixels).latents

    def _pixels(self, raw: torch.Tensor) -> torch.Tensor:
        return self.module.decode(raw, force_not_quantize=not self.scaled).sample


class PaellaAutoencoder(Autoencoder):
    """``PaellaVQModel`` (Wuerstchen, Stable Cascade): encodes pixels in [0, 1]; the pipelines multiply
    the denoiser's latents by ``scale_factor`` before decoding, so ``z = h / scale_factor``."""

    def __init__(self, module: torch.nn.Module):
        super().__init__(module, scale=1.0 / float(module.config.scale_factor))

    @property
    def downsampling(self) -> int:
        config = self.module.config
        return int(config.up_down_scale_factor) * 2 ** (int(config.levels) - 1)

    def _raw_latents(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.module.encode((pixels + 1) / 2).latents

    def _pixels(self, raw: torch.Tensor) -> torch.Tensor:
        return self.module.decode(raw).sample.clamp(0, 1) * 2 - 1


class QwenImageAutoencoder(Autoencoder):
    """``AutoencoderKLQwenImage``: a video VAE used on one frame (5-D ``[n, C, 1, H, W]`` tensors); the
    latent mean normalised per channel by the config's ``latents_mean`` and ``latents_std``."""

    def __init__(self, module: torch.nn.Module):
        config = module.config
        super().__init__(module, shift=list(config.latents_mean), scale=[1.0 / float(s) for s in config.latents_std])

    @property
    def in_channels(self) -> int:
        return int(self.module.config.input_channels)

    @property
    def latent_channels(self) -> int:
        return int(self.module.config.z_dim)

    @property
    def downsampling(self) -> int:
        return 2 ** (len(self.module.config.dim_mult) - 1)

    def _raw_latents(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.module.encode(pixels[:, :, None]).latent_dist.mean[:, :, 0]

    def _pixels(self, raw: torch.Tensor) -> torch.Tensor:
        return self.module.decode(raw[:, :, None]).sample[:, :, 0]


ADAPTERS: dict[str, type[Autoencoder]] = {
    "AutoencoderKL": KLAutoencoder,
    "AsymmetricAutoencoderKL": KLAutoencoder,
    "AutoencoderTiny": TinyAutoencoder,
    "AutoencoderDC": DCAutoencoder,
    "VQModel": VQAutoencoder,
    "PaellaVQModel": PaellaAutoencoder,
    "AutoencoderKLQwenImage": QwenImageAutoencoder,
}
"""Supported autoencoder classes (matched by name along the MRO, so subclasses are found too)."""


def _adapter_class(module: Any) -> type[Autoencoder] | None:
    for cls in type(module).__mro__:
        if cls.__name__ in ADAPTERS:
            return ADAPTERS[cls.__name__]
    return None


def _looks_like_autoencoder(component: Any) -> bool:
    name = type(component).__name__
    return callable(getattr(component, "encode", None)) and callable(getattr(component, "decode", None)) and (
        "Autoencoder" in name or name.endswith(("VQModel", "VAE"))
    )


def _unsupported(module: Any, where: str) -> ValueError:
    return ValueError(
        f"{where}{type(module).__name__} is not a supported autoencoder; supported: {', '.join(ADAPTERS)}. "
        "Attribution needs to know how its latents are scaled for the denoiser"
    )


def is_pipeline(source: Any) -> bool:
    """Whether ``source`` is a diffusers pipeline (it declares ``components``)."""
    return isinstance(getattr(source, "components", None), dict) and hasattr(source, "config")


def pipeline_autoencoder(pipe: Any) -> Autoencoder | None:
    """The adapter of the autoencoder a pipeline declares among its components, or None for a pixel
    pipeline. Found by class (``vae``, ``movq``, ``vqvae``, ``vqgan``, ... are all found).

    Raises:
        ValueError: the pipeline's autoencoder is not supported, or it declares more than one.
    """
    found = [
        (name, component) for name, component in pipe.components.items()
        if component is not None and (_adapter_class(component) is not None or _looks_like_autoencoder(component))
    ]
    if not found:
        return None
    pipeline = type(pipe).__name__
    if len(found) > 1:
        names = ", ".join(f"{name} ({type(component).__name__})" for name, component in found)
        raise ValueError(f"{pipeline} declares several autoencoders ({names}); pass the one its denoiser uses as encoder=")
    name, module = found[0]
    adapter = _adapter_class(module)
    if adapter is None:
        raise _unsupported(module, f"{pipeline}.{name}: ")
    if adapter is VQAutoencoder:
        return VQAutoencoder(module, scaled=not pipeline.startswith(UNSCALED_VQ_PIPELINES))
    return adapter(module)


def autoencoder_for(source: Any) -> Autoencoder:
    """The adapter for ``source``: an :class:`Autoencoder`, a diffusers autoencoder module
    (``pipe.vae``, ``pipe.movq``, ``pipe.vqvae``, ``pipe.vqgan``), or a latent pipeline.

    Pass the pipeline itself where its conventions matter: a ``VQModel`` alone is scaled by its
    ``scaling_factor`` (the LDM pipelines), the Kandinsky pipelines use it unscaled.

    Raises:
        ValueError: ``source`` is a pixel pipeline, or its class is not a supported autoencoder.
    """
    if isinstance(source, Autoencoder):
        return source
    if is_pipeline(source):
        adapter = pipeline_autoencoder(source)
        if adapter is None:
            raise ValueError(
                f"{type(source).__name__} has no autoencoder (a pixel-space pipeline): build its index without an encoder"
            )
        return adapter
    adapter = _adapter_class(source)
    if adapter is None:
        raise _unsupported(source, "encoder=")
    return adapter(source)
