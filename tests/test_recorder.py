"""TrajectoryRecorder on real tiny diffusers pipelines (no mocks)."""

import math

import pytest
import torch
from diffusers import (
    DPMSolverMultistepScheduler,
    FluxPipeline,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    KDPM2DiscreteScheduler,
    ScoreSdeVeScheduler,
)
from tiny_pipelines import (
    FLUX_IMAGE_SIZE,
    SD3_IMAGE_SIZE,
    SD_IMAGE_SIZE,
    tiny_ddim_pipeline,
    tiny_ddpm_pipeline,
    tiny_flux_pipeline,
    tiny_sd3_pipeline,
    tiny_sd_pipeline,
)

from diffusers_attr.levels import nearest_steps, vp_noise_level
from diffusers_attr.noise import noise_schedule
from diffusers_attr.recorder import RecordedState, TrajectoryRecorder

STEPS = 3


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest on one thread; with two on a busy machine, OpenMP waits dominate (100x)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


def run_ddpm(pipe, seed=0, **kwargs):
    return pipe(num_inference_steps=STEPS, generator=generator(seed), output_type="pt", **kwargs).images


def run_sd(pipe, seed=0, **kwargs):
    """Two prompts, two images each, classifier-free guidance on."""
    arguments = dict(
        prompt=["a cat", "a dog"],
        num_images_per_prompt=2,
        guidance_scale=7.5,
        num_inference_steps=STEPS,
        height=SD_IMAGE_SIZE,
        width=SD_IMAGE_SIZE,
        output_type="pt",
    )
    return pipe(generator=generator(seed), **{**arguments, **kwargs}).images


def snapshot(pipe):
    """What a recorded call must leave as an unrecorded call leaves it (take it after one)."""
    return dict(pipe.scheduler.config), set(vars(pipe)), dict(pipe.components), dict(pipe.config)


def assert_restored(pipe, before):
    scheduler = pipe.scheduler
    assert "step" not in vars(scheduler)
    assert scheduler.step.__func__ is type(scheduler).step
    scheduler_config, attribute_names, components, pipe_config = before
    assert dict(scheduler.config) == scheduler_config
    assert set(vars(pipe)) == attribute_names
    assert all(pipe.components[name] is component for name, component in components.items())
    assert dict(pipe.config) == pipe_config


def assert_noise_levels_match_the_schedule(states, scheduler):
    """Recorded (alpha, sigma) are the schedule's at the first-order indices, noisiest first."""
    schedule = noise_schedule(scheduler)
    order = 2 if hasattr(scheduler, "state_in_first_order") else 1
    for state in states:
        expected = schedule.coefficients_at(state.timestep, step_index=order * state.step_index)
        assert (state.alpha, state.sigma) == pytest.approx(expected, rel=1e-12)
        assert state.timestep == float(scheduler.timesteps[order * state.step_index])
    signal_to_noise = [state.alpha / state.sigma for state in states]
    assert signal_to_noise == sorted(signal_to_noise)


# -- pixel pipelines (DDPM, DDIM) ----------------------------------------------------------------------


@pytest.mark.parametrize("factory", [tiny_ddpm_pipeline, tiny_ddim_pipeline], ids=["ddpm", "ddim"])
def test_pixel_pipeline_is_unchanged_and_recorded(factory):
    pipe = factory()
    expected = run_ddpm(pipe, batch_size=2)
    before = snapshot(pipe)

    with TrajectoryRecorder(pipe) as recorder:
        images = run_ddpm(pipe, batch_size=2)

    assert torch.equal(images, expected)
    assert_restored(pipe, before)

    states = recorder.states
    assert [s.step_index for s in states] == list(range(STEPS)) and recorder.num_steps == STEPS
    assert [s.timestep for s in states] == [float(t) for t in pipe.scheduler.timesteps]
    for state in states:
        assert isinstance(state, RecordedState)
        assert state.sample.shape == (2, 1, 8, 8) and state.sample.dtype == torch.float32
        assert state.sample.device.type == "cpu" and not state.sample.requires_grad
        assert state.raw is state.sample  # no unpack
        abar = float(pipe.scheduler.alphas_cumprod[int(state.timestep)])
        assert (state.alpha, state.sigma) == pytest.approx((math.sqrt(abar), math.sqrt(1 - abar)))

    # The first state is the noise the pipeline drew from the generator.
    assert torch.equal(states[0].sample, torch.randn(2, 1, 8, 8, generator=generator(0)))

    # One more step from the last recorded state gives the output (DDPM/DDIM add no noise at the end).
    last = states[-1]
    with torch.no_grad():
        model_output = pipe.unet(last.sample, int(last.timestep)).sample
    final = pipe.scheduler.step(model_output, int(last.timestep), last.sample).prev_sample
    torch.testing.assert_close((final / 2 + 0.5).clamp(0, 1), images, rtol=0, atol=1e-6)


def test_first_ddpm_state_follows_the_generator_seed():
    pipe = tiny_ddpm_pipeline()
    with TrajectoryRecorder(pipe, select={0}) as recorder:
        run_ddpm(pipe, seed=7)
    assert torch.equal(recorder.states[0].sample, torch.randn(1, 1, 8, 8, generator=generator(7)))


def test_restored_when_the_pipeline_raises():
    pipe = tiny_ddpm_pipeline()
    before = snapshot(pipe)
    with pytest.raises(ValueError, match="cannot be larger than"):
        with TrajectoryRecorder(pipe):
            pipe(num_inference_steps=2000, generator=generator(0))
    assert_restored(pipe, before)


def test_restored_when_the_block_raises_after_some_steps():
    pipe = tiny_ddpm_pipeline()
    before = snapshot(pipe)
    with pytest.raises(KeyError):
        with TrajectoryRecorder(pipe) as recorder:
            run_ddpm(pipe)
            raise KeyError("user code failed")
    assert len(recorder.states) == STEPS
    assert_restored(pipe, before)


def test_select_by_index_and_by_noise_level():
    pipe = tiny_ddpm_pipeline()
    with TrajectoryRecorder(pipe, select=[0, 2]) as by_index:
        run_ddpm(pipe)
    assert [s.step_index for s in by_index.states] == [0, 2] and by_index.num_steps == STEPS

    with TrajectoryRecorder(pipe, select=lambda step_index, timestep, sigma: sigma < 0.9) as by_sigma:
        run_ddpm(pipe)
    assert by_sigma.states and all(s.sigma < 0.9 for s in by_sigma.states)
    assert len(by_sigma.states) < STEPS

    with TrajectoryRecorder(pipe, select=lambda step_index, timestep, sigma: False) as none:
        run_ddpm(pipe)
    assert none.states == [] and none.num_steps == STEPS


def test_nearest_keeps_only_the_closest_state_per_level_and_generation():
    pipe = tiny_ddpm_pipeline()

    def two_generations():
        for seed in (0, 1):
            pipe(num_inference_steps=10, generator=generator(seed), output_type="pt")

    with TrajectoryRecorder(pipe) as everything:
        two_generations()
    levels = [vp_noise_level(s.alpha, s.sigma) for s in everything.states[:10]]
    targets = [0.3, levels[4] + 1e-6, 0.31, 0.99]
    with TrajectoryRecorder(pipe, nearest=targets) as nearest:
        two_generations()

    expected = sorted(set(nearest_steps(levels, targets)))
    assert [(s.generation, s.step_index) for s in nearest.states] == [(g, i) for g in (0, 1) for i in expected]
    for state in nearest.states:
        full = everything.states[10 * state.generation + state.step_index]
        assert torch.equal(state.sample, full.sample) and state.timestep == full.timestep
    assert nearest.num_steps == 10 and len(expected) < 4


def test_nearest_combines_with_select():
    pipe = tiny_ddpm_pipeline()
    with TrajectoryRecorder(pipe, select=lambda step_index, timestep, sigma: step_index > 0, nearest=[0.999]) as recorder:
        run_ddpm(pipe)
    assert [s.step_index for s in recorder.states] == [1]


@pytest.mark.parametrize("nearest", [[], [0.0], [1.5], "low", [None]])
def test_invalid_nearest_levels_are_rejected(nearest):
    with pytest.raises(ValueError, match="nearest"):
        TrajectoryRecorder(tiny_ddpm_pipeline(), nearest=nearest)


@pytest.mark.parametrize("select", [[-1], [0.5], "all", 3])
def test_invalid_select_is_rejected(select):
    with pytest.raises(ValueError, match="select"):
        TrajectoryRecorder(tiny_ddpm_pipeline(), select=select)


def test_device_dtype_and_unpack():
    pipe = tiny_ddpm_pipeline().to(torch.float64)
    with TrajectoryRecorder(pipe, select={1}, unpack=lambda x: x.flatten(1)) as recorder:
        run_ddpm(pipe)
    (state,) = recorder.states
    assert state.raw.dtype == torch.float32 and state.raw.shape == (1, 1, 8, 8)
    assert state.sample.shape == (1, 64) and torch.equal(state.sample, state.raw.flatten(1))


def test_each_pipeline_call_in_a_block_is_a_generation():
    pipe = tiny_ddpm_pipeline()
    with TrajectoryRecorder(pipe) as recorder:
        run_ddpm(pipe, seed=0)
        run_ddpm(pipe, seed=1)
    assert [(s.generation, s.step_index) for s in recorder.states] == [(g, i) for g in (0, 1) for i in range(STEPS)]
    assert not torch.equal(recorder.states[0].sample, recorder.states[STEPS].sample)


def test_an_existing_instance_step_is_put_back_and_recorders_nest():
    pipe = tiny_ddpm_pipeline()
    calls = []
    class_step = pipe.scheduler.step

    def counting_step(*args, **kwargs):
        calls.append(1)
        return class_step(*args, **kwargs)

    pipe.scheduler.step = counting_step
    with TrajectoryRecorder(pipe) as outer:
        with TrajectoryRecorder(pipe, select={0}) as inner:
            run_ddpm(pipe)
        assert vars(pipe.scheduler)["step"] is not counting_step  # outer's wrapper is back
    assert vars(pipe.scheduler)["step"] is counting_step
    assert len(calls) == STEPS and len(outer.states) == STEPS and len(inner.states) == 1


def test_a_recorder_is_not_reentrant():
    pipe = tiny_ddpm_pipeline()
    recorder = TrajectoryRecorder(pipe)
    with recorder:
        with pytest.raises(RuntimeError, match="already active"):
            recorder.__enter__()
    assert "step" not in vars(pipe.scheduler)


def test_replacing_the_scheduler_inside_the_block_is_an_error():
    pipe = tiny_ddpm_pipeline()
    original = pipe.scheduler
    with pytest.raises(RuntimeError, match="pipe.scheduler was replaced"):
        with TrajectoryRecorder(pipe):
            pipe.scheduler = type(original).from_config(original.config)
    assert "step" not in vars(original)


def test_unsupported_scheduler_is_rejected_on_entering():
    pipe = tiny_ddpm_pipeline()
    pipe.scheduler = ScoreSdeVeScheduler()
    with pytest.raises(ValueError, match="ScoreSdeVeScheduler is not supported"):
        with TrajectoryRecorder(pipe):
            pass
    assert "step" not in vars(pipe.scheduler)


def test_pipe_without_a_scheduler_is_rejected():
    with pytest.raises(ValueError, match="must have a `scheduler`"):
        TrajectoryRecorder(object())


# -- latent pipelines (Stable Diffusion, SD3) ----------------------------------------------------------


@pytest.mark.parametrize(
    "scheduler_class",
    [EulerDiscreteScheduler, HeunDiscreteScheduler, KDPM2DiscreteScheduler, DPMSolverMultistepScheduler],
)
def test_stable_diffusion_with_cfg(scheduler_class):
    pipe = tiny_sd_pipeline(scheduler_class)
    expected = run_sd(pipe)
    before = snapshot(pipe)

    with TrajectoryRecorder(pipe) as recorder:
        images = run_sd(pipe)

    assert torch.equal(images, expected)
    assert_restored(pipe, before)

    # One state per denoising step, also for the second-order schedulers (2 * STEPS - 1 step calls);
    # the batch is the image batch: 2 prompts x 2 images, after the CFG combine.
    states = recorder.states
    assert [s.step_index for s in states] == list(range(STEPS))
    second_order = scheduler_class in (HeunDiscreteScheduler, KDPM2DiscreteScheduler)
    assert len(pipe.scheduler.timesteps) == (2 * STEPS - 1 if second_order else STEPS)
    assert all(s.sample.shape == (4, 4, SD_IMAGE_SIZE // 2, SD_IMAGE_SIZE // 2) for s in states)
    assert_noise_levels_match_the_schedule(states, pipe.scheduler)

    # The first state is the generator's noise scaled to the scheduler's starting level.
    first = torch.randn(4, 4, SD_IMAGE_SIZE // 2, SD_IMAGE_SIZE // 2, generator=generator(0))
    assert torch.equal(states[0].sample, first * pipe.scheduler.init_noise_sigma)

    # The final latents are within a few noise levels of the last state, in data scale.
    latents = run_sd(pipe, output_type="latent")
    last = states[-1]
    rms = (latents - last.sample / last.alpha).pow(2).mean().sqrt().item()
    assert rms < 2 * last.sigma / last.alpha


def test_stable_diffusion_restored_when_a_callback_raises():
    pipe = tiny_sd_pipeline(EulerDiscreteScheduler)
    expected = run_sd(pipe, prompt="a cat", num_images_per_prompt=1)
    before = snapshot(pipe)

    def failing_callback(pipe, step_index, timestep, callback_kwargs):
        raise RuntimeError("stop at step 1")

    with pytest.raises(RuntimeError, match="stop at step 1"):
        with TrajectoryRecorder(pipe) as recorder:
            run_sd(pipe, prompt="a cat", num_images_per_prompt=1, callback_on_step_end=failing_callback)
    assert len(recorder.states) == 1
    assert_restored(pipe, before)
    assert torch.equal(run_sd(pipe, prompt="a cat", num_images_per_prompt=1), expected)


def test_stable_diffusion_3_flow_matching():
    pipe = tiny_sd3_pipeline()

    def run():
        return pipe(
            prompt="a cat",
            num_images_per_prompt=2,
            num_inference_steps=STEPS,
            height=SD3_IMAGE_SIZE,
            width=SD3_IMAGE_SIZE,
            generator=generator(0),
            output_type="pt",
        ).images

    expected = run()
    before = snapshot(pipe)
    with TrajectoryRecorder(pipe) as recorder:
        images = run()
    assert torch.equal(images, expected)
    assert_restored(pipe, before)

    states = recorder.states
    assert len(states) == STEPS and all(s.sample.shape == (2, 4, 8, 8) for s in states)
    assert all(s.alpha + s.sigma == pytest.approx(1.0) for s in states)
    assert states[0].sigma == 1.0  # starts from pure noise: the generator's draw
    assert torch.equal(states[0].sample, torch.randn(2, 4, 8, 8, generator=generator(0)))
    assert_noise_levels_match_the_schedule(states, pipe.scheduler)


def test_flux_packed_latents_are_unpacked():
    pipe = tiny_flux_pipeline()
    size = FLUX_IMAGE_SIZE

    def run():
        return pipe(
            prompt="a cat",
            num_images_per_prompt=2,
            num_inference_steps=STEPS,
            height=size,
            width=size,
            max_sequence_length=16,
            generator=generator(0),
            output_type="pt",
        ).images

    expected = run()
    before = snapshot(pipe)
    unpack = lambda x: FluxPipeline._unpack_latents(x, size, size, pipe.vae_scale_factor)  # noqa: E731
    with TrajectoryRecorder(pipe, unpack=unpack) as recorder:
        images = run()
    assert torch.equal(images, expected)
    assert_restored(pipe, before)

    states = recorder.states
    assert len(states) == STEPS
    assert all(s.raw.shape == (2, (size // 2) ** 2, 4) and s.sample.shape == (2, 1, size, size) for s in states)
    assert torch.equal(states[0].sample, torch.randn(2, 1, size, size, generator=generator(0)))
    assert_noise_levels_match_the_schedule(states, pipe.scheduler)
