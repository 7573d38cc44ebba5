"""Record the noisy states ``x_t`` a diffusers pipeline visits while it generates.

Trajectory-mode attribution needs, for each denoising step, the state ``x_t`` the pipeline is at and its
noise level ``(alpha_t, sigma_t)``. Every pipeline hands that state to ``scheduler.step(model_output,
timestep, sample)``, so :class:`TrajectoryRecorder` wraps ``step`` on the scheduler *instance* (never
the class) for the duration of a ``with`` block and copies ``sample`` before the original ``step`` runs.
What ``step`` sees is the right thing to record:

* it comes after classifier-free guidance has been combined, so its batch is the image batch
  (``batch_size * num_images_per_prompt``), not the doubled model batch;
* for Karras-sigma schedulers (Euler, Heun, ...) it is the unscaled ``x_t = x_0 + s * eps``, not the
  ``scale_model_input`` version the model sees;
* pipeline callbacks (``callback_on_step_end``) run after ``step``, when the latents are already at the
  next noise level; ``step`` is the one place every pipeline shows the state at the current level.

Second-order schedulers (Heun, KDPM2, KDPM2 ancestral, DPM-Solver SDE, FlowMatch Heun) call ``step``
twice per denoising step; only the first call of each pair (``scheduler.state_in_first_order``) is
recorded, so there is one state per step. PNDM's schedule repeats a timestep (its first PLMS step is
a two-call Runge-Kutta warm-up) and is recorded once per ``step`` call.

Packed latents (Flux: ``[B, (H/2)*(W/2), C*4]``) are recorded as they are passed (``RecordedState.raw``);
give ``unpack`` to turn them into ``[B, C, H, W]`` (``RecordedState.sample``), for example
``unpack=lambda x: FluxPipeline._unpack_latents(x, height, width, pipe.vae_scale_factor)``.

Example:
    >>> import torch
    >>> from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel
    >>> from diffusers_attr.recorder import TrajectoryRecorder
    >>> unet = UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(32, 64),
    ...                    down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"))
    >>> pipe = DDPMPipeline(unet=unet, scheduler=DDPMScheduler())
    >>> pipe.set_progress_bar_config(disable=True)
    >>> with TrajectoryRecorder(pipe, select={0, 2}) as recorder:
    ...     images = pipe(num_inference_steps=3, generator=torch.Generator().manual_seed(0)).images
    >>> [(state.step_index, state.timestep) for state in recorder.states]
    [(0, 666.0), (2, 0.0)]
    >>> recorder.states[0].sample.shape, recorder.num_steps
    (torch.Size([1, 1, 8, 8]), 3)
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence, Union

import torch

from .levels import vp_noise_level
from .noise import NoiseSchedule, as_scalar, noise_schedule

StepSelector = Union[None, Iterable[int], Callable[[int, float, float], bool]]

_NO_INSTANCE_STEP = object()


@dataclass
class RecordedState:
    """One noisy state the pipeline passed to ``scheduler.step``.

    Attributes:
        step_index (`int`): denoising step, 0 for the first (noisiest); a second-order pair counts once.
        timestep (`float`): the timestep passed to ``step``.
        alpha (`float`), sigma (`float`): the noise level, ``x_t = alpha * x_0 + sigma * eps``.
        raw (`torch.Tensor`): the sample exactly as passed to ``step``, detached, float32, on the
            recorder's device; ``[B, C, H, W]`` for UNet pipelines, packed ``[B, L, D]`` for Flux.
        sample (`torch.Tensor` of shape `(batch_size, num_channels, height, width)`): ``unpack(raw)``
            when the recorder has an ``unpack``, else ``raw`` itself. ``B`` is the number of images.
        generation (`int`): which pipeline call inside the ``with`` block (0 for the first).
    """

    step_index: int
    timestep: float
    alpha: float
    sigma: float
    raw: torch.Tensor
    sample: torch.Tensor
    generation: int = 0


def _step_predicate(select: StepSelector) -> Callable[[int, float, float], bool]:
    if select is None:
        return lambda step_index, timestep, sigma: True
    if callable(select):
        return select
    try:
        steps = set(select)
    except TypeError:
        raise ValueError(
            f"select={select!r} must be None, a collection of step indices or a callable "
            "(step_index, timestep, sigma) -> bool"
        ) from None
    bad = [s for s in steps if isinstance(s, bool) or not isinstance(s, int) or s < 0]
    if bad:
        raise ValueError(
            f"select must hold step indices >= 0 (0 is the first, noisiest step); got {sorted(map(repr, bad))}. "
            "To pick steps by noise level, pass a callable (step_index, timestep, sigma) -> bool"
        )
    return lambda step_index, timestep, sigma: step_index in steps


class TrajectoryRecorder:
    """Context manager that records the noisy states a pipeline visits (see the module docstring).

    Parameters:
        pipe: a diffusers pipeline (anything with a ``scheduler`` attribute whose ``step`` takes
            ``timestep`` and ``sample``).
        select: which denoising steps to keep: None (all), a collection of step indices, or a callable
            ``(step_index, timestep, sigma) -> bool``. Unkept steps are counted but not copied.
        nearest: noise levels ``nu = sigma / sqrt(alpha^2 + sigma^2)`` in (0, 1); when given, each
            generation keeps only the selected state closest in ``nu`` to each level (the first of a
            tie), so memory holds ``len(nearest)`` states per generation instead of every step.
        device: where recorded tensors go (default CPU); they are always detached float32 copies.
        unpack: optional callable turning the raw sample into ``[B, C, H, W]`` (packed latents).

    Attributes:
        states (`list[RecordedState]`): the kept states, in the order they were visited.
        schedule (`NoiseSchedule`): the noise schedule of the recorded scheduler (set on entering).
        num_steps (`int`): denoising steps seen in the latest generation, kept or not.

    Raises:
        ValueError: on entering, if the pipeline's scheduler is not supported by
            :func:`diffusers_attr.noise.noise_schedule`.
        ValueError: during the pipeline call, if a timestep passed to ``step`` is not on the scheduler's
            schedule (see :meth:`~diffusers_attr.noise.NoiseSchedule.coefficients_at`).
        RuntimeError: on leaving without an error, if ``pipe.scheduler`` was replaced inside the block
            (the new scheduler was not recorded).

    On leaving, also when the block raises, the scheduler is restored exactly: the instance attribute
    is removed, so ``pipe.scheduler.step`` is the class's bound method again.
    """

    def __init__(
        self,
        pipe,
        select: StepSelector = None,
        device: torch.device | str = "cpu",
        unpack: Callable[[torch.Tensor], torch.Tensor] | None = None,
        nearest: Sequence[float] | None = None,
    ):
        if getattr(pipe, "scheduler", None) is None:
            raise ValueError(f"pipe must have a `scheduler`; got a {type(pipe).__name__} without one")
        if unpack is not None and not callable(unpack):
            raise ValueError(f"unpack must be a callable or None; got {unpack!r}")
        self.pipe = pipe
        self._keep = _step_predicate(select)
        self.device = torch.device(device)
        self.unpack = unpack
        self._targets = _check_levels(nearest)
        self._closest: dict[int, list[tuple[float, RecordedState] | None]] = {}
        self.states: list[RecordedState] = []
        self.schedule: NoiseSchedule | None = None
        self.num_steps = 0
        self._scheduler = None
        self._saved_step = _NO_INSTANCE_STEP
        self._generation = -1
        self._timesteps = None

    # -- entering and leaving ------------------------------------------------------------------------

    def __enter__(self) -> "TrajectoryRecorder":
        if self._scheduler is not None:
            raise RuntimeError("this TrajectoryRecorder is already active; use a new one for a nested block")
        scheduler = self.pipe.scheduler
        self.schedule = noise_schedule(scheduler)
        # Pipelines call `step` with the class's parameters, even when something else has wrapped it.
        signature = inspect.signature(type(scheduler).step.__get__(scheduler))
        if "timestep" not in signature.parameters or "sample" not in signature.parameters:
            raise ValueError(
                f"{type(scheduler).__name__}.step has no `timestep` and `sample` parameters to record"
            )
        self.states, self.num_steps, self._generation, self._timesteps = [], 0, -1, None
        self._closest = {}
        self._scheduler = scheduler
        self._saved_step = vars(scheduler).get("step", _NO_INSTANCE_STEP)
        original_step = scheduler.step

        @functools.wraps(original_step)
        def recording_step(*args, **kwargs):
            arguments = signature.bind_partial(*args, **kwargs).arguments
            self._record(scheduler, arguments["timestep"], arguments["sample"])
            return original_step(*args, **kwargs)

        scheduler.step = recording_step
        return self

    def __exit__(self, exc_type, exc, traceback) -> bool:
        scheduler, self._scheduler = self._scheduler, None
        if self._saved_step is _NO_INSTANCE_STEP:
            del scheduler.step
        else:
            scheduler.step = self._saved_step
        self._saved_step = _NO_INSTANCE_STEP
        if exc_type is None and self.pipe.scheduler is not scheduler:
            raise RuntimeError(
                f"pipe.scheduler was replaced inside the TrajectoryRecorder block (recorded "
                f"{type(scheduler).__name__}, now {type(self.pipe.scheduler).__name__}); its steps were not "
                "recorded. Set the scheduler before entering the block."
            )
        return False

    # -- one step ------------------------------------------------------------------------------------

    def _record(self, scheduler, timestep, sample: torch.Tensor) -> None:
        if scheduler.timesteps is not self._timesteps:  # set_timesteps ran: a new pipeline call
            self._timesteps = scheduler.timesteps
            self._generation += 1
            self.num_steps = 0
        if not getattr(scheduler, "state_in_first_order", True):
            return  # the corrector call of a second-order pair: same step, already recorded
        step_index = self.num_steps
        self.num_steps += 1

        # The scheduler's own index into its sigmas table, as its `step` is about to compute it.
        sigma_index = getattr(scheduler, "step_index", None)
        if sigma_index is None:
            sigma_index = getattr(scheduler, "begin_index", None)
        alpha, sigma = self.schedule.coefficients_at(timestep, step_index=sigma_index)
        timestep = as_scalar(timestep, "timestep")
        if not self._keep(step_index, timestep, sigma):
            return
        closer = None
        if self._targets is not None:
            closer = self._closer_targets(vp_noise_level(alpha, sigma))
            if not closer:
                return  # not nearer to any level than a state already kept
        raw = sample.detach().to(device=self.device, dtype=torch.float32, copy=True)
        state = RecordedState(
            step_index=step_index,
            timestep=timestep,
            alpha=alpha,
            sigma=sigma,
            raw=raw,
            sample=self.unpack(raw) if self.unpack is not None else raw,
            generation=self._generation,
        )
        if closer is None:
            self.states.append(state)
        else:
            self._retain(state, closer)

    # -- nearest-level retention -----------------------------------------------------------------------

    def _closer_targets(self, level: float) -> list[tuple[int, float]]:
        """``(target, distance)`` for the targets this level is strictly closer to than the state kept
        for them so far in this generation."""
        kept = self._closest.setdefault(self._generation, [None] * len(self._targets))
        distances = [(j, abs(level - target)) for j, target in enumerate(self._targets)]
        return [(j, d) for j, d in distances if kept[j] is None or d < kept[j][0]]

    def _retain(self, state: RecordedState, closer: list[tuple[int, float]]) -> None:
        kept = self._closest[state.generation]
        for j, distance in closer:
            kept[j] = (distance, state)
        unique = {id(s): s for entries in self._closest.values() for _, s in filter(None, entries)}
        self.states = sorted(unique.values(), key=lambda s: (s.generation, s.step_index))


def _check_levels(levels: Sequence[float] | None) -> list[float] | None:
    if levels is None:
        return None
    try:
        targets = [float(level) for level in levels]
    except (TypeError, ValueError):
        raise ValueError(f"nearest={levels!r} must be a sequence of noise levels in (0, 1)") from None
    if not targets or not all(0.0 < t < 1.0 for t in targets):
        raise ValueError(
            f"nearest={levels!r} must be a non-empty sequence of VP noise levels nu in (0, 1) "
            "(see diffusers_attr.levels.vp_noise_level)"
        )
    return targets
