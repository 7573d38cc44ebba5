"""The settings of an attribution run, validated once at the public boundary."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Sequence

from .engine import DEFAULT_MEMORY_BUDGET
from .engine.validation import check_topk, resolve_scales
from .levels import DEFAULT_TRAIN_TIMESTEPS
from .threads import choose_threads

MODES = ("trajectory", "renoise")

DEFAULT_PATCH_FRACTION = 0.7
"""The default patch side as a fraction of the items' shorter side (docs/evaluation.md, "The default rule")."""


def default_patch_size(item_shape: Sequence[int]) -> int:
    """The patch size used when none is given, for index items of shape ``(C, H, W)``.

    The one rule for Python and the command line alike: the largest odd size not above
    ``DEFAULT_PATCH_FRACTION`` (0.7) of the shorter side, at least 1 (16 px -> 11, 8 -> 5, 64 -> 43).
    Every result records the size this gave as its ``config["patch_size"]``.
    """
    side = min(int(item_shape[1]), int(item_shape[2]))
    size = max(1, int(DEFAULT_PATCH_FRACTION * side))
    return size if size % 2 else size - 1


@dataclass
class AttributionConfig:
    """How images are attributed.

    Attributes:
        patch_size: odd side of the patch window (single scale); None: :func:`default_patch_size`.
        topk: keep only the top-k key windows per (query window, training item); None keeps all.
        scales: ``[(factor, patch_size, weight), ...]`` for the multiscale score (overrides patch_size).
        timesteps: noise levels as DDPM-style training timesteps (default 100, 200, 300 unless
            ``sigmas`` is given).
        sigmas: noise levels as variance-preserving ``sigma / sqrt(alpha^2 + sigma^2)`` in (0, 1).
        mode: ``"trajectory"`` (the states the sampler visited) or ``"renoise"`` (the finished image
            noised again with seeded draws).
        draws: noise draws per level in renoise mode.
        seed: seed of the renoise draws.
        top: how many top training items each result lists.
        maps: for how many of the top items query/source maps are kept.
        device: where the engine runs (default: the CPU, or the pipeline's device).
        memory_budget: bytes for the engine's temporaries.
        threads: CPU threads of the engine; None: the cores free when each batch of images starts
            (:mod:`diffusers_attr.threads`).
        progress: show progress bars.

    :meth:`resolved` makes every default explicit for an index; results record those values.
    """

    patch_size: int | None = None
    topk: int | None = None
    scales: list[tuple[int, int, float]] | None = None
    timesteps: list[int] | None = None
    sigmas: list[float] | None = None
    mode: str = "trajectory"
    draws: int = 2
    seed: int = 0
    top: int = 10
    maps: int = 3
    device: str | None = None
    memory_budget: int = DEFAULT_MEMORY_BUDGET
    threads: int | None = None
    progress: bool = True

    def resolved(self, item_shape: Sequence[int]) -> "AttributionConfig":
        """These settings for items of ``item_shape`` ``(C, H, W)`` with the defaults filled in (the
        patch size from :func:`default_patch_size` unless ``scales`` is given, the default timesteps
        unless ``sigmas`` is), checked. The same for every caller: Python and the command line."""
        patch_size = self.patch_size
        if patch_size is None and self.scales is None:
            patch_size = default_patch_size(item_shape)
        timesteps = self.timesteps
        if timesteps is None and self.sigmas is None:
            timesteps = list(DEFAULT_TRAIN_TIMESTEPS)
        settings = replace(self, patch_size=patch_size, timesteps=timesteps)
        settings.check(item_shape)
        return settings

    def check(self, item_shape: Sequence[int]) -> None:
        """Raise a clear ``ValueError`` for settings that cannot work with items of ``item_shape``."""
        if self.mode not in MODES:
            raise ValueError(f"mode={self.mode!r} must be one of {MODES}")
        for name in ("draws", "top"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        if isinstance(self.maps, bool) or not isinstance(self.maps, int) or self.maps < 0:
            raise ValueError(f"maps={self.maps!r} must be a non-negative integer")
        check_topk(self.topk)
        if self.threads is not None:
            choose_threads(self.threads)
        patch_size = default_patch_size(item_shape) if self.patch_size is None else self.patch_size
        resolve_scales(self.scales, patch_size, int(item_shape[1]), int(item_shape[2]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe settings recorded with every result (device, threads, memory and progress left out)."""
        settings = asdict(self)
        for transient in ("device", "progress", "memory_budget", "threads"):
            settings.pop(transient)
        if self.scales is not None:
            settings["scales"] = [list(scale) for scale in self.scales]
        if self.timesteps is not None:
            settings["timesteps"] = list(self.timesteps)
        return settings
