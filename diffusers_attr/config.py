"""The settings of an attribution run, validated once at the public boundary."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

from .engine import DEFAULT_MEMORY_BUDGET
from .engine.validation import check_topk, resolve_scales

MODES = ("trajectory", "renoise")


@dataclass
class AttributionConfig:
    """How images are attributed.

    Attributes:
        patch_size: odd side of the patch window (single scale).
        topk: keep only the top-k key windows per (query window, training item); None keeps all.
        scales: ``[(factor, patch_size, weight), ...]`` for the multiscale score (overrides patch_size).
        timesteps: noise levels as DDPM-style training timesteps (default 100, 200, 300).
        sigmas: noise levels as variance-preserving ``sigma / sqrt(alpha^2 + sigma^2)`` in (0, 1).
        mode: ``"trajectory"`` (the states the sampler visited) or ``"renoise"`` (the finished image
            noised again with seeded draws).
        draws: noise draws per level in renoise mode.
        seed: seed of the renoise draws.
        top: how many top training items each result lists.
        maps: for how many of the top items query/source maps are kept.
        device: where the engine runs (default: the CPU, or the pipeline's device).
        memory_budget: bytes for the engine's temporaries.
        progress: show progress bars.
    """

    patch_size: int = 7
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
    progress: bool = True

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
        resolve_scales(self.scales, self.patch_size, int(item_shape[1]), int(item_shape[2]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe settings recorded with every result (device and progress left out)."""
        settings = asdict(self)
        for transient in ("device", "progress", "memory_budget"):
            settings.pop(transient)
        if self.scales is not None:
            settings["scales"] = [list(scale) for scale in self.scales]
        return settings
