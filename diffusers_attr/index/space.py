"""The fingerprint of the space an index lives in, and the check that two spaces agree.

Attribution compares noisy states of a generation with training items, so both must live in the
same space: the same pixel normalisation, or latents of the same VAE (same config, same weights,
same scaling). The fingerprint is a small JSON-safe dict stored in the index manifest.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from ..autoencoders import autoencoder_for
from .errors import SpaceMismatchError

NORMALISATION = "[-1,1]"
"""How pixels are mapped to the model's input: ``x / 127.5 - 1``, as diffusers does."""


def json_safe(value: Any, *, where: str) -> Any:
    """Convert ``value`` to plain JSON types (tuples become lists, numpy scalars become numbers).

    Parameters
    ----------
    value:
        A config value or metadata value.
    where:
        Names the value in the error message, e.g. ``"metadata['size'] of item 'a.png'"``.

    Returns
    -------
    The value made of ``dict`` / ``list`` / ``str`` / ``int`` / ``float`` / ``bool`` / ``None``.
    """
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [json_safe(v, where=f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {str(k): json_safe(v, where=f"{where}[{k!r}]") for k, v in value.items()}
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy / torch scalars
        return value.item()
    raise TypeError(
        f"{where} has type {type(value).__name__}, which cannot be stored in the index's JSON; "
        f"convert it to a string or number, or leave it out"
    )


def weights_sha256(module: torch.nn.Module) -> str:
    """SHA-256 of a module's state dict, in sorted key order.

    Floating tensors are hashed as float32, so a checkpoint gives the same hash whether it was loaded
    in float16 or float32 (upcasting is exact).

    Parameters
    ----------
    module:
        Any ``torch.nn.Module`` (here: a VAE).

    Returns
    -------
    The hex digest.
    """
    digest = hashlib.sha256()
    state = module.state_dict()
    for name in sorted(state):
        tensor = state[name].detach().to("cpu")
        if tensor.is_floating_point():
            tensor = tensor.to(torch.float32)
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def encoder_fingerprint(encoder: Any) -> dict[str, Any]:
    """The fields of a space fingerprint that describe an autoencoder.

    Parameters
    ----------
    encoder:
        A diffusers autoencoder (``pipe.vae``, ``pipe.movq``, ...), a latent pipeline, or an
        :class:`~diffusers_attr.autoencoders.Autoencoder` adapter.

    Returns
    -------
    ``{"vae_class", "vae_config", "vae_weights_sha256", "scaling_factor", "shift_factor"}``, plus the
    per-channel statistics of families that normalise each channel (``latents_mean``, ``latents_scale``).
    Config keys starting with ``_`` (diffusers version, source path) are left out: they do not change
    the space.
    """
    adapter = autoencoder_for(encoder)
    return {
        "vae_class": adapter.class_name,
        "vae_config": json_safe(adapter.config, where="encoder.config"),
        "vae_weights_sha256": weights_sha256(adapter.module),
        "scaling_factor": adapter.scaling_factor,
        "shift_factor": adapter.shift_factor,
        **adapter.extra_fingerprint(),
    }


def space_fingerprint(
    item_shape: tuple[int, int, int] | list[int],
    encoder: Any = None,
    normalisation: str = NORMALISATION,
    resolution: int | tuple[int, int] | list[int] | None = None,
) -> dict[str, Any]:
    """Describe the space training items live in.

    Parameters
    ----------
    item_shape:
        ``(C, H, W)`` of one item in the model's space (latent shape for latent models).
    encoder:
        The autoencoder that maps pixels to the model's space (a module, a latent pipeline or an
        adapter; see :func:`encoder_fingerprint`), or ``None`` for pixel-space models.
    normalisation:
        How pixels were normalised before (encoding); ``"[-1,1]"`` is diffusers' convention.
    resolution:
        ``(H, W)`` (or one int for square) of the source images fed to the model or encoder;
        ``None`` when unknown.

    Returns
    -------
    A JSON-safe dict: ``kind`` (``"pixel"`` or ``"latent"``), ``item_shape``, ``normalisation``,
    ``resolution`` and, for latents, the VAE fields of :func:`encoder_fingerprint`.

    Example
    -------
    >>> space_fingerprint((3, 32, 32), resolution=32)["kind"]
    'pixel'
    """
    encoder_fields = None if encoder is None else encoder_fingerprint(encoder)
    return make_space(item_shape, encoder_fields, normalisation, resolution)


def make_space(
    item_shape: tuple[int, int, int] | list[int],
    encoder_fields: dict[str, Any] | None,
    normalisation: str,
    resolution: int | tuple[int, int] | list[int] | None,
) -> dict[str, Any]:
    """:func:`space_fingerprint` from already computed :func:`encoder_fingerprint` fields (hashing a VAE is slow).

    Parameters
    ----------
    item_shape, normalisation, resolution:
        As in :func:`space_fingerprint`.
    encoder_fields:
        :func:`encoder_fingerprint` of the VAE, or ``None`` for pixel space.

    Returns
    -------
    The fingerprint dict.
    """
    if isinstance(resolution, int):
        resolution = (resolution, resolution)
    space: dict[str, Any] = {
        "kind": "pixel" if encoder_fields is None else "latent",
        "item_shape": [int(s) for s in item_shape],
        "normalisation": normalisation,
        "resolution": None if resolution is None else [int(r) for r in resolution],
    }
    space.update(encoder_fields or {})
    return space


def _differences(expected: Any, actual: Any, name: str) -> list[str]:
    """Lines naming every field where ``actual`` differs from ``expected`` (``None`` = not checked)."""
    if expected is None:
        return []
    if isinstance(expected, dict) and isinstance(actual, dict):
        lines = []
        for key in expected:
            lines += _differences(expected[key], actual.get(key), f"{name}.{key}" if name else key)
        return lines
    if expected != actual:
        return [f"  {name}: expected {expected!r}, the index has {actual!r}"]
    return []


def check_space(expected: dict[str, Any], actual: dict[str, Any]) -> None:
    """Raise if an index's space differs from the space a pipeline works in.

    Parameters
    ----------
    expected:
        The fingerprint of the pipeline's space (from :func:`space_fingerprint`). Fields that are
        ``None`` are not checked.
    actual:
        The fingerprint stored in the index (``index.space``).

    Raises
    ------
    SpaceMismatchError
        (a ``ValueError``) naming every field that differs, with how to fix it.

    Example
    -------
    >>> check_space(space_fingerprint((3, 32, 32)), space_fingerprint((3, 32, 32)))
    """
    lines = _differences(expected, actual, "")
    if lines:
        raise SpaceMismatchError(
            "the index was built in a different space than this pipeline works in:\n"
            + "\n".join(lines)
            + "\nRebuild the index with this pipeline's autoencoder and resolution, e.g. "
            "`diffusers-attr index build TRAIN_DIR --out INDEX_DIR --pipeline PATH` or "
            "AttributionIndex.build(INDEX_DIR, TRAIN_DIR, encoder=pipe, resolution=...)"
        )
