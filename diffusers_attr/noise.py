"""The noise level of a diffusers scheduler, as ``(alpha_t, sigma_t)``.

Attribution compares a noisy state ``x_t`` with training images ``y_n`` through the forward process

    x_t = alpha_t * x_0 + sigma_t * eps,        eps ~ N(0, I)

written in the space the scheduler's ``step`` works in (pixels, or VAE latents already multiplied by
``vae.config.scaling_factor``). Every supported diffusers scheduler is one of three families.

**variance_preserving** (DDPM, DDIM, PNDM, LCM, TCD, DPM-Solver, DEIS, UniPC, SA-Solver, ...).
The scheduler keeps ``alphas_cumprod`` (written abar below) and the state is VP-scaled:

    alpha_t = sqrt(abar_t),    sigma_t = sqrt(1 - abar_t)

Multistep solvers (DPM-Solver, DEIS, UniPC, SA-Solver) also keep a ``sigmas`` table of
``s = sqrt((1 - abar) / abar)`` per inference step, and their ``step`` uses that table, which may differ
from ``abar`` at the (rounded) timestep when Karras/exponential/beta/Lu sigmas are on. When a scheduler
keeps the table, we read it: ``alpha_t = 1 / sqrt(1 + s^2)``, ``sigma_t = s / sqrt(1 + s^2)``.

``DDPMWuerstchenScheduler`` (Wuerstchen, Stable Cascade) is variance preserving in continuous time:
its timesteps are ratios ``t`` in [0, 1] and ``abar(t)`` is the scheduler's own cosine schedule.

**variance_exploding** (Euler, Euler ancestral, Heun, LMS, KDPM2, KDPM2 ancestral, DPM-Solver SDE,
EDM Euler, EDM DPM-Solver). These "Karras sigma" schedulers hold the state unscaled,
``x_t = x_0 + s * eps``, and divide by ``sqrt(1 + s^2)`` only in ``scale_model_input`` before the model
sees it. The sample passed to ``step`` is the unscaled one, so

    alpha_t = 1,    sigma_t = s

(The VP numbers are the same state divided by ``sqrt(1 + s^2)``; attribution scores do not change when
``x_t``, ``alpha_t`` and ``sigma_t`` are scaled together.)

**flow_matching** (FlowMatchEuler, FlowMatchHeun, FlowMatchLCM: SD3, Flux, ...; and the VP multistep
solvers above when configured with ``use_flow_sigmas=True``). The state interpolates linearly between
data and noise with ``s`` in [0, 1]:

    alpha_t = 1 - s,    sigma_t = s

**Which s or abar belongs to a timestep.** ``scheduler.timesteps`` (after ``set_timesteps``) are the values
a pipeline passes to ``step``. They are integers for the VP family and floats for the others (Euler,
Heun, KDPM2, LMS: float32 copies of integer or interpolated values; EDM: ``0.25 * log(sigma)``; flow
matching: ``sigma * num_train_timesteps``, or custom). A scheduler that keeps a ``sigmas`` table is read
at the index of the timestep in ``scheduler.timesteps``, found the way diffusers finds it (when a
timestep occurs twice, as in Heun's and PNDM's interleaved schedules, the second occurrence, which has
the same noise level). Pass ``step_index`` to skip the search (the recorder passes the scheduler's own
``step_index``). The VP schedulers without a table (DDPM, DDIM, PNDM, LCM, TCD, ...) read
``alphas_cumprod[t]`` for any integer ``t`` in ``[0, num_train_timesteps)``.

**Training timesteps** (renoise mode) are DDPM-style integers ``t`` in ``[0, num_train_timesteps)``:
``abar_t = alphas_cumprod[t]`` for the VP family, ``s = sqrt((1 - abar_t) / abar_t)`` for the VE family
(each in its own family's space; for ``DDPMWuerstchenScheduler``, the continuous time ``t / 1000``),
and ``s = (t + 1) / num_train_timesteps`` for flow matching, moved by
the scheduler's static shift (``shift``, or ``flow_shift`` with ``use_flow_sigmas``) as the flow-match
scheduler's own training grid is; resolution-dependent (dynamic) shifting is not applied.

Example:
    >>> import torch
    >>> from diffusers import EulerDiscreteScheduler
    >>> from diffusers_attr.noise import noise_schedule
    >>> euler = EulerDiscreteScheduler()
    >>> euler.set_timesteps(4)
    >>> schedule = noise_schedule(euler)
    >>> schedule.family
    'variance_exploding'
    >>> alpha, sigma = schedule.coefficients_at(euler.timesteps[0])
    >>> alpha, round(sigma, 2)
    (1.0, 157.41)
    >>> x0, eps = torch.zeros(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    >>> torch.allclose(schedule.add_noise(x0, eps, euler.timesteps[0]), euler.add_noise(x0, eps, euler.timesteps[:1]))
    True
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

VARIANCE_PRESERVING = "variance_preserving"
VARIANCE_EXPLODING = "variance_exploding"
FLOW_MATCHING = "flow_matching"

# Scheduler classes by family, by class name so that a diffusers version without one of them still
# imports this module. Subclasses are found through their MRO.
SCHEDULER_FAMILIES: dict[str, tuple[str, ...]] = {
    VARIANCE_PRESERVING: (
        "DDPMScheduler",
        "DDPMParallelScheduler",
        "DDIMScheduler",
        "DDIMParallelScheduler",
        "PNDMScheduler",
        "LCMScheduler",
        "TCDScheduler",
        "UnCLIPScheduler",
        "RePaintScheduler",
        "CogVideoXDDIMScheduler",
        "CogVideoXDPMScheduler",
        "DPMSolverMultistepScheduler",
        "DPMSolverSinglestepScheduler",
        "DEISMultistepScheduler",
        "UniPCMultistepScheduler",
        "SASolverScheduler",
        "DDPMWuerstchenScheduler",
    ),
    VARIANCE_EXPLODING: (
        "EulerDiscreteScheduler",
        "EulerAncestralDiscreteScheduler",
        "HeunDiscreteScheduler",
        "LMSDiscreteScheduler",
        "KDPM2DiscreteScheduler",
        "KDPM2AncestralDiscreteScheduler",
        "DPMSolverSDEScheduler",
        "EDMEulerScheduler",
        "EDMDPMSolverMultistepScheduler",
        "CosineDPMSolverMultistepScheduler",
    ),
    FLOW_MATCHING: (
        "FlowMatchEulerDiscreteScheduler",
        "FlowMatchHeunDiscreteScheduler",
        "FlowMatchLCMScheduler",
    ),
}

# Variance-preserving schedulers in continuous time: timesteps are ratios in [0, 1] and the scheduler
# computes abar(t) itself (no alphas_cumprod table, no num_train_timesteps).
CONTINUOUS_TIME_SCHEDULERS = ("DDPMWuerstchenScheduler",)
CONTINUOUS_TRAIN_TIMESTEPS = 1000
"""Training timestep ``t`` of a continuous-time scheduler means its time ``t / 1000``."""

# Schedulers whose visited states are not ``alpha_t * x_0 + sigma_t * eps`` at a known level, with why.
INCOMPATIBLE_SCHEDULERS: dict[str, str] = {
    "ScoreSdeVeScheduler": "a predictor-corrector SDE sampler with no `step` (it uses `step_pred` and `step_correct`)",
    "ScoreSdeVpScheduler": "a continuous-time SDE sampler with no `step` and no discrete noise table",
    "CMStochasticIterativeScheduler": (
        "consistency-model sampling jumps to an x_0 prediction each step and re-noises it with "
        "std sqrt(sigma^2 - sigma_min^2) under the boundary-condition parameterisation"
    ),
    "KarrasVeScheduler": (
        "its `step` takes a churned (sigma_hat, sample_hat) pair that the pipeline builds outside the scheduler"
    ),
    "DDIMInverseScheduler": (
        "inversion runs the diffusion forward; the sample passed to `step` is one level below its timestep"
    ),
    "DPMSolverMultistepInverseScheduler": "inversion runs the diffusion forward, image to noise",
    "VQDiffusionScheduler": "it diffuses discrete tokens, not continuous samples",
    "AmusedScheduler": "it unmasks discrete tokens, not continuous samples",
}


class NoiseCoefficients(NamedTuple):
    """``(alpha, sigma)`` of ``x_t = alpha * x_0 + sigma * eps``, as Python floats."""

    alpha: float
    sigma: float

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Return ``alpha * x0 + sigma * noise``."""
        return self.alpha * x0 + self.sigma * noise


def _class_names(scheduler) -> list[str]:
    return [cls.__name__ for cls in type(scheduler).__mro__]


def _supported_list() -> str:
    return "; ".join(f"{family}: {', '.join(names)}" for family, names in SCHEDULER_FAMILIES.items())


def scheduler_family(scheduler) -> str:
    """The family (``variance_preserving``, ``variance_exploding`` or ``flow_matching``) of a scheduler.

    Raises:
        ValueError: the scheduler is not one of the supported classes (or a subclass of one).
    """
    name = type(scheduler).__name__
    for class_name in _class_names(scheduler):
        if class_name in INCOMPATIBLE_SCHEDULERS:
            raise ValueError(
                f"{name} is not supported for attribution: {INCOMPATIBLE_SCHEDULERS[class_name]}. "
                f"Supported schedulers by family: {_supported_list()}."
            )
        for family, names in SCHEDULER_FAMILIES.items():
            if class_name in names:
                if getattr(scheduler, "config", {}).get("use_flow_sigmas", False):
                    return FLOW_MATCHING
                return family
    raise ValueError(
        f"{name} is not supported for attribution: its noise schedule is not one of the known families "
        f"(x_t = sqrt(abar) x_0 + sqrt(1-abar) eps; x_t = x_0 + s eps; x_t = (1-s) x_0 + s eps). "
        f"Supported schedulers by family: {_supported_list()}."
    )


def as_scalar(value, what: str) -> float:
    """``value`` (a number or a tensor) as a float. A tensor of several equal entries (one timestep per
    sample, as the Wuerstchen pipelines pass) is that value."""
    if isinstance(value, torch.Tensor):
        flat = value.detach().flatten()
        if flat.numel() == 0 or not bool((flat == flat[0]).all()):
            raise ValueError(f"{what} must be a scalar or equal for every sample; got {flat.tolist()}")
        return float(flat[0].item())
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number; got {value!r}") from None


class NoiseSchedule:
    """``(alpha_t, sigma_t)`` of one diffusers scheduler; see the module docstring for the families.

    Obtain one with :func:`noise_schedule`. It holds a reference to the scheduler and reads its tables
    on every call, so it stays valid across ``set_timesteps``.

    Attributes:
        scheduler: the wrapped diffusers scheduler.
        family (`str`): ``"variance_preserving"``, ``"variance_exploding"`` or ``"flow_matching"``.
    """

    def __init__(self, scheduler):
        self.family = scheduler_family(scheduler)
        self.scheduler = scheduler
        self._continuous_time = any(name in CONTINUOUS_TIME_SCHEDULERS for name in _class_names(scheduler))
        # A `sigmas` table, when kept, is what the scheduler's own `step` and `add_noise` read.
        self._reads_sigma_table = getattr(scheduler, "sigmas", None) is not None
        if not self._reads_sigma_table and self.family != VARIANCE_PRESERVING:
            raise ValueError(f"{type(scheduler).__name__} has no `sigmas` table to read its noise levels from")
        if self.family == FLOW_MATCHING and scheduler.config.get("invert_sigmas", False):
            raise ValueError(
                f"{type(scheduler).__name__} with invert_sigmas=True is not supported: its sigmas run from "
                "data to noise, the reverse of the flow-matching convention x_t = (1 - s) x_0 + s eps"
            )

    def __repr__(self) -> str:
        return f"NoiseSchedule({type(self.scheduler).__name__}, family={self.family!r})"

    @property
    def num_train_timesteps(self) -> int:
        if self._continuous_time:
            return CONTINUOUS_TRAIN_TIMESTEPS
        return int(self.scheduler.config.num_train_timesteps)

    # -- the three families' formulas ------------------------------------------------------------

    def coefficients_for_sigma(self, sigma: float) -> NoiseCoefficients:
        """``(alpha, sigma_t)`` for the scheduler's own noise parameter ``s`` (an entry of ``scheduler.sigmas``).

        variance_preserving: ``(1 / sqrt(1 + s^2), s / sqrt(1 + s^2))``; variance_exploding: ``(1, s)``;
        flow_matching: ``(1 - s, s)`` with ``s`` in [0, 1].
        """
        s = as_scalar(sigma, "sigma")
        if not s >= 0 or math.isinf(s):
            raise ValueError(f"sigma={s} must be a finite number >= 0")
        if self.family == VARIANCE_PRESERVING:
            alpha = 1.0 / math.sqrt(1.0 + s * s)
            return NoiseCoefficients(alpha, s * alpha)
        if self.family == VARIANCE_EXPLODING:
            return NoiseCoefficients(1.0, s)
        if s > 1:
            raise ValueError(f"sigma={s} must lie in [0, 1] for a flow-matching scheduler")
        return NoiseCoefficients(1.0 - s, s)

    def _coefficients_for_alphas_cumprod(self, t: int) -> NoiseCoefficients:
        abar = float(self.scheduler.alphas_cumprod[t])
        return NoiseCoefficients(math.sqrt(abar), math.sqrt(1.0 - abar))

    def _coefficients_for_continuous_time(self, time: float) -> NoiseCoefficients:
        if not 0.0 <= time <= 1.0:
            raise ValueError(f"timestep={time:g} must be a time in [0, 1] for {type(self.scheduler).__name__}")
        # The scheduler's own abar(t), the one its `step` and `add_noise` use.
        abar = float(self.scheduler._alpha_cumprod(torch.tensor([time]), "cpu")[0])
        return NoiseCoefficients(math.sqrt(abar), math.sqrt(1.0 - abar))

    # -- sampling timesteps --------------------------------------------------------------------------

    def step_index_of(self, timestep) -> int:
        """Index of ``timestep`` in ``scheduler.timesteps`` (second occurrence when it occurs twice)."""
        t = as_scalar(timestep, "timestep")
        timesteps = torch.as_tensor(self.scheduler.timesteps).detach().cpu().double().flatten()
        matches = (timesteps == t).nonzero().flatten()
        if len(matches) == 0:  # a float timestep that went through another dtype on the way
            matches = torch.isclose(timesteps, torch.tensor(t, dtype=torch.float64), rtol=1e-6, atol=1e-6)
            matches = matches.nonzero().flatten()
        if len(matches) == 0:
            shown = ", ".join(f"{v:g}" for v in timesteps[:8].tolist()) + (", ..." if len(timesteps) > 8 else "")
            raise ValueError(
                f"timestep={t:g} is not in {type(self.scheduler).__name__}.timesteps ([{shown}]); pass a value "
                "from scheduler.timesteps after set_timesteps(), or use coefficients_for_train_timestep() "
                "for a DDPM-style training timestep"
            )
        return int(matches[1] if len(matches) > 1 else matches[0])

    def coefficients_at(self, timestep, step_index: int | None = None) -> NoiseCoefficients:
        """``(alpha_t, sigma_t)`` of the sample a pipeline passes to ``scheduler.step(..., timestep, sample)``.

        Parameters:
            timestep: a value of ``scheduler.timesteps`` (int, float or 0-d tensor). For the VP schedulers
                without a ``sigmas`` table (DDPM, DDIM, PNDM, LCM, TCD, ...) any integer training timestep;
                for ``DDPMWuerstchenScheduler`` any time in [0, 1] (also one per sample, all equal).
            step_index: the index into ``scheduler.sigmas`` when known (e.g. ``scheduler.step_index``
                during sampling); skips the timestep search. Ignored by schedulers without a table.

        Returns:
            `NoiseCoefficients` ``(alpha, sigma)``.

        Raises:
            ValueError: the timestep is not one the scheduler uses, or ``step_index`` is out of range.
        """
        if self._continuous_time:
            return self._coefficients_for_continuous_time(as_scalar(timestep, "timestep"))
        if not self._reads_sigma_table:
            return self.coefficients_for_train_timestep(timestep)
        sigmas = self.scheduler.sigmas
        if step_index is None:
            step_index = self.step_index_of(timestep)
        elif not 0 <= int(step_index) < len(sigmas):
            raise ValueError(
                f"step_index={step_index} is out of range for {type(self.scheduler).__name__}.sigmas "
                f"(length {len(sigmas)})"
            )
        return self.coefficients_for_sigma(float(sigmas[int(step_index)]))

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, timestep) -> torch.Tensor:
        """``x_t = alpha_t * x0 + sigma_t * noise`` at sampling timestep(s), like the scheduler's own
        ``add_noise`` (``scale_noise`` for flow matching).

        Parameters:
            x0, noise: tensors ``[B, ...]`` of the same shape.
            timestep: one timestep for the whole batch, or a 1-D tensor/list with one per sample.
        """
        if x0.shape != noise.shape:
            raise ValueError(f"x0 and noise must have the same shape; got {tuple(x0.shape)} and {tuple(noise.shape)}")
        timesteps = torch.as_tensor(timestep)
        if timesteps.dim() == 0:
            return self.coefficients_at(timesteps).add_noise(x0, noise)
        if timesteps.dim() != 1 or len(timesteps) != x0.shape[0]:
            raise ValueError(
                f"timestep must be a scalar or have one entry per sample ({x0.shape[0]}); "
                f"got shape {tuple(timesteps.shape)}"
            )
        coefficients = [self.coefficients_at(t) for t in timesteps]
        shape = (-1,) + (1,) * (x0.dim() - 1)
        alpha = torch.tensor([c.alpha for c in coefficients], dtype=x0.dtype, device=x0.device).view(shape)
        sigma = torch.tensor([c.sigma for c in coefficients], dtype=x0.dtype, device=x0.device).view(shape)
        return alpha * x0 + sigma * noise

    # -- training timesteps (renoise mode) -----------------------------------------------------------

    def coefficients_for_train_timestep(self, t) -> NoiseCoefficients:
        """``(alpha, sigma)`` at a DDPM-style integer training timestep ``t`` in ``[0, num_train_timesteps)``,
        in this family's space (see the module docstring).

        Raises:
            ValueError: ``t`` is not an integer in range, or the scheduler has no discrete training grid.
        """
        value = as_scalar(t, "train timestep")
        n = self.num_train_timesteps
        if not value.is_integer() or not 0 <= value < n:
            raise ValueError(f"train timestep t={value:g} must be an integer in [0, {n})")
        t = int(value)
        if self.family == FLOW_MATCHING:
            config = self.scheduler.config
            s = (t + 1) / n
            if not config.get("use_dynamic_shifting", False):
                if config.get("use_flow_sigmas", False):
                    shift = float(config.get("flow_shift", 1.0))
                else:
                    shift = float(getattr(self.scheduler, "shift", config.get("shift", 1.0)))
                s = shift * s / (1 + (shift - 1) * s)
            return self.coefficients_for_sigma(s)
        if self._continuous_time:
            return self._coefficients_for_continuous_time(t / n)
        if getattr(self.scheduler, "alphas_cumprod", None) is None:
            raise ValueError(
                f"{type(self.scheduler).__name__} has no alphas_cumprod, so no discrete training timesteps; "
                "use coefficients_for_sigma()"
            )
        if self.family == VARIANCE_PRESERVING:
            return self._coefficients_for_alphas_cumprod(t)
        abar = float(self.scheduler.alphas_cumprod[t])
        return self.coefficients_for_sigma(math.sqrt((1.0 - abar) / abar))


def noise_schedule(scheduler) -> NoiseSchedule:
    """The :class:`NoiseSchedule` of a diffusers scheduler.

    Parameters:
        scheduler: a diffusers scheduler instance (e.g. ``pipe.scheduler``).

    Returns:
        `NoiseSchedule` with ``family``, ``coefficients_at``, ``coefficients_for_train_timestep``,
        ``coefficients_for_sigma`` and ``add_noise``.

    Raises:
        ValueError: naming the scheduler class and listing the supported families when the scheduler
            is not supported.
    """
    return NoiseSchedule(scheduler)
