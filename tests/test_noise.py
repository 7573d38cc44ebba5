"""diffusers_attr.noise against the schedulers' own forward process (``add_noise`` / ``scale_noise``)."""

import math

import pytest
import torch
import diffusers
from diffusers import DDPMScheduler

from diffusers_attr.noise import (
    FLOW_MATCHING,
    INCOMPATIBLE_SCHEDULERS,
    VARIANCE_EXPLODING,
    VARIANCE_PRESERVING,
    noise_schedule,
)

NUM_STEPS = 6
# Stable Diffusion's training schedule. Passed explicitly: `from_config` drops values a config holds only
# as defaults, so `EulerDiscreteScheduler.from_config(DDPMScheduler().config)` would get Euler's own betas.
BASE_CONFIG = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear").config

# (scheduler class name, config overrides, set_timesteps kwargs, expected family)
CASES = [
    ("DDPMScheduler", {}, {}, VARIANCE_PRESERVING),
    ("DDPMScheduler", {"beta_schedule": "squaredcos_cap_v2", "timestep_spacing": "trailing"}, {}, VARIANCE_PRESERVING),
    ("DDIMScheduler", {"steps_offset": 1, "timestep_spacing": "leading"}, {}, VARIANCE_PRESERVING),
    ("DDIMScheduler", {"rescale_betas_zero_snr": True, "timestep_spacing": "trailing"}, {}, VARIANCE_PRESERVING),
    ("PNDMScheduler", {"skip_prk_steps": True}, {}, VARIANCE_PRESERVING),
    ("PNDMScheduler", {}, {}, VARIANCE_PRESERVING),
    ("LCMScheduler", {}, {}, VARIANCE_PRESERVING),
    ("TCDScheduler", {}, {}, VARIANCE_PRESERVING),
    ("DPMSolverMultistepScheduler", {}, {}, VARIANCE_PRESERVING),
    ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}, {}, VARIANCE_PRESERVING),
    ("DPMSolverMultistepScheduler", {"use_lu_lambdas": True}, {}, VARIANCE_PRESERVING),
    (
        "DPMSolverMultistepScheduler",
        {"use_flow_sigmas": True, "prediction_type": "flow_prediction", "flow_shift": 3.0},
        {},
        FLOW_MATCHING,
    ),
    ("DPMSolverSinglestepScheduler", {}, {}, VARIANCE_PRESERVING),
    ("DEISMultistepScheduler", {}, {}, VARIANCE_PRESERVING),
    ("UniPCMultistepScheduler", {}, {}, VARIANCE_PRESERVING),
    ("UniPCMultistepScheduler", {"use_karras_sigmas": True}, {}, VARIANCE_PRESERVING),
    ("SASolverScheduler", {}, {}, VARIANCE_PRESERVING),
    ("EulerDiscreteScheduler", {}, {}, VARIANCE_EXPLODING),
    ("EulerDiscreteScheduler", {"use_karras_sigmas": True}, {}, VARIANCE_EXPLODING),
    ("EulerDiscreteScheduler", {"timestep_spacing": "leading", "steps_offset": 1}, {}, VARIANCE_EXPLODING),
    ("EulerDiscreteScheduler", {"timestep_spacing": "trailing"}, {}, VARIANCE_EXPLODING),
    (
        "EulerDiscreteScheduler",
        {"prediction_type": "v_prediction", "timestep_type": "continuous"},
        {},
        VARIANCE_EXPLODING,
    ),
    ("EulerAncestralDiscreteScheduler", {}, {}, VARIANCE_EXPLODING),
    ("HeunDiscreteScheduler", {}, {}, VARIANCE_EXPLODING),
    ("HeunDiscreteScheduler", {"use_karras_sigmas": True}, {}, VARIANCE_EXPLODING),
    ("LMSDiscreteScheduler", {}, {}, VARIANCE_EXPLODING),
    ("KDPM2DiscreteScheduler", {}, {}, VARIANCE_EXPLODING),
    ("KDPM2DiscreteScheduler", {"use_karras_sigmas": True}, {}, VARIANCE_EXPLODING),
    ("KDPM2AncestralDiscreteScheduler", {}, {}, VARIANCE_EXPLODING),
    ("DPMSolverSDEScheduler", {}, {}, VARIANCE_EXPLODING),
    ("EDMEulerScheduler", {}, {}, VARIANCE_EXPLODING),
    ("EDMDPMSolverMultistepScheduler", {}, {}, VARIANCE_EXPLODING),
    ("FlowMatchEulerDiscreteScheduler", {}, {}, FLOW_MATCHING),
    ("FlowMatchEulerDiscreteScheduler", {"shift": 3.0}, {}, FLOW_MATCHING),
    ("FlowMatchEulerDiscreteScheduler", {"use_dynamic_shifting": True}, {"mu": 0.7}, FLOW_MATCHING),
    ("FlowMatchEulerDiscreteScheduler", {"use_karras_sigmas": True}, {}, FLOW_MATCHING),
    ("FlowMatchEulerDiscreteScheduler", {}, {"sigmas": [1.0, 0.8, 0.55, 0.3, 0.1, 0.02]}, FLOW_MATCHING),
    ("FlowMatchHeunDiscreteScheduler", {"shift": 3.0}, {}, FLOW_MATCHING),
    ("FlowMatchLCMScheduler", {}, {}, FLOW_MATCHING),
]

NEEDS_TORCHSDE = {"DPMSolverSDEScheduler"}


def make_scheduler(name, overrides=None, **set_timesteps_kwargs):
    if name in NEEDS_TORCHSDE:
        pytest.importorskip("torchsde")
    cls = getattr(diffusers, name)
    base = BASE_CONFIG if "FlowMatch" not in name and "EDM" not in name else cls().config
    scheduler = cls.from_config(base, **(overrides or {}))
    if set_timesteps_kwargs.get("sigmas") is not None:
        scheduler.set_timesteps(**set_timesteps_kwargs)
    else:
        scheduler.set_timesteps(NUM_STEPS, **set_timesteps_kwargs)
    return scheduler


def reference_add_noise(scheduler, x0, noise, t):
    """The scheduler's own forward process at one timestep, for the whole batch."""
    timesteps = t.reshape(1).expand(x0.shape[0])
    if isinstance(scheduler, diffusers.FlowMatchHeunDiscreteScheduler):
        # Its scale_noise takes one timestep and initialises (and keeps) step_index from it.
        scheduler._step_index = None
        noisy = scheduler.scale_noise(x0, t, noise)
        scheduler._step_index = None
        return noisy
    if hasattr(scheduler, "scale_noise"):
        return scheduler.scale_noise(x0, timesteps, noise)
    return scheduler.add_noise(x0, noise, timesteps)


def case_id(case):
    name, overrides, kwargs, _ = case
    extra = ",".join(f"{k}={v}" for k, v in {**overrides, **kwargs}.items() if k != "sigmas")
    return name + (f"[{extra}]" if extra else "") + ("[custom sigmas]" if "sigmas" in kwargs else "")


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_add_noise_matches_scheduler_at_every_timestep(case, dtype):
    name, overrides, kwargs, family = case
    scheduler = make_scheduler(name, overrides, **kwargs)
    schedule = noise_schedule(scheduler)
    assert schedule.family == family

    generator = torch.Generator().manual_seed(0)
    x0 = torch.randn(2, 3, 4, 4, generator=generator, dtype=dtype)
    noise = torch.randn(2, 3, 4, 4, generator=generator, dtype=dtype)
    assert len(scheduler.timesteps) >= NUM_STEPS
    for t in scheduler.timesteps:
        ours = schedule.add_noise(x0, noise, t)
        theirs = reference_add_noise(scheduler, x0, noise, t)
        torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["HeunDiscreteScheduler", "KDPM2DiscreteScheduler", "DPMSolverMultistepScheduler"])
def test_step_index_gives_the_same_coefficients_as_the_timestep(name):
    scheduler = make_scheduler(name)
    schedule = noise_schedule(scheduler)
    for index, t in enumerate(scheduler.timesteps):
        by_index = schedule.coefficients_at(t, step_index=index)
        by_timestep = schedule.coefficients_at(t)
        assert by_index == pytest.approx(by_timestep)


def test_float_timesteps_are_found_as_python_floats():
    scheduler = make_scheduler("KDPM2DiscreteScheduler")  # interpolated, non-integer timesteps
    assert not all(float(t).is_integer() for t in scheduler.timesteps)
    schedule = noise_schedule(scheduler)
    for t in scheduler.timesteps:
        assert schedule.coefficients_at(float(t)) == schedule.coefficients_at(t)


def test_coefficients_are_floats_and_sigma_matches_the_table():
    scheduler = make_scheduler("EulerDiscreteScheduler")
    alpha, sigma = noise_schedule(scheduler).coefficients_at(scheduler.timesteps[0])
    assert isinstance(alpha, float) and isinstance(sigma, float)
    assert alpha == 1.0
    assert sigma == float(scheduler.sigmas[0])


def test_per_sample_timesteps():
    scheduler = make_scheduler("DDIMScheduler")
    schedule = noise_schedule(scheduler)
    x0, noise = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    timesteps = scheduler.timesteps[:3]
    torch.testing.assert_close(schedule.add_noise(x0, noise, timesteps), scheduler.add_noise(x0, noise, timesteps))


@pytest.mark.parametrize(
    "name", ["DDPMScheduler", "DDIMScheduler", "PNDMScheduler", "DPMSolverMultistepScheduler", "UniPCMultistepScheduler"]
)
@pytest.mark.parametrize("t", [0, 1, 250, 999])
def test_train_timestep_matches_ddpm_add_noise(name, t):
    schedule = noise_schedule(make_scheduler(name))
    x0, noise = torch.randn(2, 3, 4, 4, dtype=torch.float64), torch.randn(2, 3, 4, 4, dtype=torch.float64)
    expected = DDPMScheduler.from_config(BASE_CONFIG).add_noise(x0, noise, torch.tensor([t, t]))
    torch.testing.assert_close(schedule.coefficients_for_train_timestep(t).add_noise(x0, noise), expected)


@pytest.mark.parametrize("name", ["EulerDiscreteScheduler", "HeunDiscreteScheduler", "KDPM2DiscreteScheduler"])
@pytest.mark.parametrize("t", [0, 500, 999])
def test_train_timestep_of_karras_schedulers_is_ddpm_unscaled(name, t):
    """x_t = x0 + s eps is DDPM's x_t divided by sqrt(abar_t)."""
    schedule = noise_schedule(make_scheduler(name))
    ddpm = DDPMScheduler.from_config(BASE_CONFIG)
    x0, noise = torch.randn(2, 3, 4, 4, dtype=torch.float64), torch.randn(2, 3, 4, 4, dtype=torch.float64)
    coefficients = schedule.coefficients_for_train_timestep(t)
    assert coefficients.alpha == 1.0
    vp = coefficients.add_noise(x0, noise) * math.sqrt(float(ddpm.alphas_cumprod[t]))
    torch.testing.assert_close(vp, ddpm.add_noise(x0, noise, torch.tensor([t, t])))


@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_flow_match_train_timestep_follows_the_training_grid(shift):
    schedule = noise_schedule(make_scheduler("FlowMatchEulerDiscreteScheduler", {"shift": shift}))
    fresh = diffusers.FlowMatchEulerDiscreteScheduler(shift=shift)  # sigmas before set_timesteps: the training grid
    n = fresh.config.num_train_timesteps
    for t in [0, 1, 500, n - 1]:
        alpha, sigma = schedule.coefficients_for_train_timestep(t)
        assert sigma == pytest.approx(float(fresh.sigmas[n - 1 - t]), rel=1e-6)
        assert alpha == pytest.approx(1 - sigma)


def test_coefficients_for_sigma_per_family():
    vp = noise_schedule(make_scheduler("DPMSolverMultistepScheduler"))
    ve = noise_schedule(make_scheduler("EulerDiscreteScheduler"))
    flow = noise_schedule(make_scheduler("FlowMatchEulerDiscreteScheduler"))
    assert vp.coefficients_for_sigma(0.75) == pytest.approx((0.8, 0.6))
    assert ve.coefficients_for_sigma(0.75) == (1.0, 0.75)
    assert flow.coefficients_for_sigma(0.25) == (0.75, 0.25)
    with pytest.raises(ValueError, match="sigma=1.5 must lie in"):
        flow.coefficients_for_sigma(1.5)
    with pytest.raises(ValueError, match="sigma=-1"):
        ve.coefficients_for_sigma(-1.0)


def test_subclasses_inherit_the_family():
    class MyEuler(diffusers.EulerDiscreteScheduler):
        pass

    assert noise_schedule(MyEuler()).family == VARIANCE_EXPLODING


REQUIRED_ARGUMENTS = {"VQDiffusionScheduler": {"num_vec_classes": 4}, "AmusedScheduler": {"mask_token_id": 0}}


@pytest.mark.parametrize("name", list(INCOMPATIBLE_SCHEDULERS))
def test_incompatible_scheduler_is_rejected(name):
    scheduler = getattr(diffusers.schedulers, name)(**REQUIRED_ARGUMENTS.get(name, {}))
    with pytest.raises(ValueError) as error:
        noise_schedule(scheduler)
    message = str(error.value)
    assert name in message and "not supported" in message
    for family in (VARIANCE_PRESERVING, VARIANCE_EXPLODING, FLOW_MATCHING):
        assert family in message
    assert "EulerDiscreteScheduler" in message


def test_wuerstchen_scheduler_is_variance_preserving_in_continuous_time():
    scheduler = diffusers.DDPMWuerstchenScheduler(scaler=1.5)
    scheduler.set_timesteps(4)
    schedule = noise_schedule(scheduler)
    assert schedule.family == VARIANCE_PRESERVING
    x0, eps = torch.randn(3, 4, 5, 5), torch.randn(3, 4, 5, 5)
    for t in scheduler.timesteps:
        per_sample = t.expand(3)  # what the Wuerstchen and Stable Cascade pipelines pass to `step`
        torch.testing.assert_close(schedule.add_noise(x0, eps, per_sample), scheduler.add_noise(x0, eps, per_sample))
        alpha, sigma = schedule.coefficients_at(per_sample)
        assert alpha**2 + sigma**2 == pytest.approx(1.0)
    assert schedule.coefficients_at(0.3) == schedule.coefficients_for_train_timestep(300)  # t means time t / 1000
    with pytest.raises(ValueError, match="equal for every sample"):
        schedule.coefficients_at(torch.tensor([0.2, 0.3]))
    with pytest.raises(ValueError, match=r"must be a time in \[0, 1\]"):
        schedule.coefficients_at(1.5)


def test_unknown_scheduler_is_rejected():
    class HomeMadeScheduler(diffusers.SchedulerMixin, diffusers.ConfigMixin):
        config_name = "scheduler_config.json"

    with pytest.raises(ValueError, match="HomeMadeScheduler is not supported.*variance_preserving"):
        noise_schedule(HomeMadeScheduler())


def test_inverted_flow_sigmas_are_rejected():
    with pytest.raises(ValueError, match="invert_sigmas"):
        noise_schedule(diffusers.FlowMatchEulerDiscreteScheduler(invert_sigmas=True))


def test_invalid_timesteps():
    euler = noise_schedule(make_scheduler("EulerDiscreteScheduler"))
    with pytest.raises(ValueError, match=r"timestep=123.5 is not in EulerDiscreteScheduler.timesteps \(\[999, "):
        euler.coefficients_at(123.5)
    with pytest.raises(ValueError, match="step_index=99 is out of range"):
        euler.coefficients_at(999, step_index=99)
    with pytest.raises(ValueError, match="must be a scalar"):
        euler.coefficients_at(torch.tensor([999.0, 799.0]))
    with pytest.raises(ValueError, match="one entry per sample"):
        euler.add_noise(torch.zeros(2, 1, 2, 2), torch.zeros(2, 1, 2, 2), torch.tensor([999.0, 799.0, 599.0]))

    ddpm = noise_schedule(make_scheduler("DDPMScheduler"))
    assert ddpm.coefficients_at(0) == ddpm.coefficients_for_train_timestep(0)  # any training timestep
    for bad in (1000, -1, 2.5):
        with pytest.raises(ValueError, match=r"must be an integer in \[0, 1000\)"):
            ddpm.coefficients_at(bad)
    with pytest.raises(ValueError, match="must be a number"):
        ddpm.coefficients_at("late")

    edm = noise_schedule(make_scheduler("EDMEulerScheduler"))
    with pytest.raises(ValueError, match="no discrete training timesteps"):
        edm.coefficients_for_train_timestep(10)
