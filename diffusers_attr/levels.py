"""Which noise levels to attribute at.

Users name levels either by DDPM-style training timestep ``t`` (an integer in
``[0, num_train_timesteps)``, read through the pipeline's own scheduler) or directly by the
variance-preserving noise level ``nu = sigma / sqrt(alpha^2 + sigma^2)`` in (0, 1), which means the same
thing for every scheduler family. Scores are unchanged when ``x_t``, ``alpha`` and ``sigma`` are scaled
together, so a level is fully described by ``nu``.
"""

from __future__ import annotations

import math
from typing import Sequence

from .noise import NoiseSchedule

DEFAULT_TRAIN_TIMESTEPS = (100, 200, 300)


def vp_noise_level(alpha: float, sigma: float) -> float:
    """``nu = sigma / sqrt(alpha^2 + sigma^2)``: the noise level of ``x_t = alpha x_0 + sigma eps``."""
    return sigma / math.hypot(alpha, sigma)


def vp_coefficients(level: float) -> tuple[float, float]:
    """``(alpha, sigma) = (sqrt(1 - nu^2), nu)``: the variance-preserving form of level ``nu``."""
    return math.sqrt(1.0 - level * level), level


def resolve_levels(
    schedule: NoiseSchedule, timesteps: Sequence[int] | None = None, sigmas: Sequence[float] | None = None
) -> list[float]:
    """Target levels ``nu`` (sorted from least to most noisy) from ``timesteps`` or ``sigmas``.

    Raises:
        ValueError: both or an empty list given, a timestep outside the scheduler's training range,
            or a level outside (0, 1).
    """
    if timesteps is not None and sigmas is not None:
        raise ValueError("give the noise levels either as timesteps= or as sigmas=, not both")
    if sigmas is not None:
        levels = [float(s) for s in sigmas]
        if not levels:
            raise ValueError("sigmas is empty; give at least one noise level in (0, 1), e.g. sigmas=[0.3, 0.5]")
        bad = [s for s in levels if not 0.0 < s < 1.0]
        if bad:
            raise ValueError(
                f"sigmas={bad} must lie in (0, 1): they are variance-preserving noise levels "
                "sigma / sqrt(alpha^2 + sigma^2), e.g. 0.3 (little noise) to 0.8 (much)"
            )
    else:
        steps = list(DEFAULT_TRAIN_TIMESTEPS if timesteps is None else timesteps)
        if not steps:
            raise ValueError("timesteps is empty; give at least one training timestep, e.g. timesteps=[100, 200]")
        levels = [vp_noise_level(*schedule.coefficients_for_train_timestep(t)) for t in steps]
        bad = [t for t, level in zip(steps, levels) if not 0.0 < level < 1.0]
        if bad:
            raise ValueError(f"timesteps={bad} give no usable noise (pure data or pure noise); pick others")
    return sorted(set(levels))


def nearest_steps(recorded: Sequence[float], targets: Sequence[float]) -> list[int]:
    """For each target level, the index of the recorded level closest to it (duplicates removed,
    in target order)."""
    chosen: list[int] = []
    for target in targets:
        best = min(range(len(recorded)), key=lambda i: abs(recorded[i] - target))
        if best not in chosen:
            chosen.append(best)
    return chosen
