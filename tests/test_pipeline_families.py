"""Every diffusers image pipeline family: attributed bit-transparently, or refused by name.

``FAMILIES`` is the list of tested (pipeline, autoencoder, scheduler) combinations; ``docs/pipelines.md``
shows it as a table, and :func:`test_docs_table_lists_exactly_what_is_tested` keeps the two equal
(run ``python tests/test_pipeline_families.py`` to print the table).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
from diffusers import DPMSolverMultistepScheduler, EulerDiscreteScheduler, HeunDiscreteScheduler
from PIL import Image

import tiny_families as tf
from diffusers_attr import AttributedPipeline, AttributionIndex
from diffusers_attr.autoencoders import pipeline_autoencoder
from diffusers_attr.noise import INCOMPATIBLE_SCHEDULERS, scheduler_family
from diffusers_attr.pipeline_families import REFUSED_PIPELINES, state_shape, unpacker
from diffusers_attr.recorder import TrajectoryRecorder
from tiny_pipelines import tiny_ddim_pipeline, tiny_ddpm_pipeline, tiny_flux_pipeline, tiny_sd3_pipeline, tiny_sd_pipeline

DOCS = Path(__file__).resolve().parents[1] / "docs" / "pipelines.md"


@dataclass(frozen=True)
class Family:
    """One tested combination and how its index is built (the README's way).

    Attributes:
        factory: ``() -> (pipe, call)``: the pipeline and the arguments of one small call.
        pipeline, autoencoder, scheduler: class names (autoencoder None for pixel pipelines).
        index: ``from_images`` settings; ``encoder`` names what is passed: ``"pipe"`` or a component.
        decodes_latents: the pipeline supports ``output_type="latent"`` (then the test also checks that
            the autoencoder adapter decodes the sampler's latents exactly as the pipeline does).
        note: the table's note.
    """

    id: str
    factory: Callable[[], tuple[Any, dict]]
    pipeline: str
    autoencoder: str | None
    scheduler: str
    index: dict = field(default_factory=dict)
    decodes_latents: bool = True
    note: str = ""


def _with_call(factory, **call):
    return lambda: (factory(), call)


SD_CALL = dict(prompt="a cat", height=16, width=16, num_inference_steps=2)

FAMILIES = [
    Family("ddpm", _with_call(tiny_ddpm_pipeline, num_inference_steps=3, batch_size=2), "DDPMPipeline", None,
           "DDPMScheduler", dict(channels=1, resolution=8), decodes_latents=False),
    Family("ddim", _with_call(tiny_ddim_pipeline, num_inference_steps=3, batch_size=2), "DDIMPipeline", None,
           "DDIMScheduler", dict(channels=1, resolution=8), decodes_latents=False),
    Family("deepfloyd-if", tf.deepfloyd_if, "IFPipeline", None, "DDPMScheduler", dict(channels=3, resolution=8),
           decodes_latents=False, note="stage I (pixels)"),
    Family("sd-euler", _with_call(lambda: tiny_sd_pipeline(EulerDiscreteScheduler), **SD_CALL | {"prompt": ["a cat", "a dog"]}),
           "StableDiffusionPipeline", "AutoencoderKL", "EulerDiscreteScheduler", dict(encoder="vae", resolution=16)),
    Family("sd-dpm", _with_call(lambda: tiny_sd_pipeline(DPMSolverMultistepScheduler), **SD_CALL | {"num_images_per_prompt": 2}),
           "StableDiffusionPipeline", "AutoencoderKL", "DPMSolverMultistepScheduler", dict(encoder="pipe", resolution=16)),
    Family("sd-heun", _with_call(lambda: tiny_sd_pipeline(HeunDiscreteScheduler), **SD_CALL),
           "StableDiffusionPipeline", "AutoencoderKL", "HeunDiscreteScheduler", dict(encoder="pipe", resolution=16),
           note="second-order: one state per step"),
    Family("sd-tiny-autoencoder", tf.sd_tiny_autoencoder, "StableDiffusionPipeline", "AutoencoderTiny", "DDIMScheduler",
           dict(encoder="vae", resolution=16)),
    Family("lcm", tf.lcm, "LatentConsistencyModelPipeline", "AutoencoderKL", "LCMScheduler", dict(encoder="pipe", resolution=16)),
    Family("sdxl", tf.sdxl, "StableDiffusionXLPipeline", "AutoencoderKL", "EulerDiscreteScheduler",
           dict(encoder="pipe", resolution=16)),
    Family("sd3", _with_call(tiny_sd3_pipeline, prompt="a cat", height=8, width=8, num_inference_steps=2),
           "StableDiffusion3Pipeline", "AutoencoderKL", "FlowMatchEulerDiscreteScheduler", dict(encoder="pipe", resolution=8),
           note="latents shifted and scaled (shift_factor)"),
    Family("flux", _with_call(tiny_flux_pipeline, prompt="a cat", height=8, width=8, num_inference_steps=2,
                              max_sequence_length=16, num_images_per_prompt=2),
           "FluxPipeline", "AutoencoderKL", "FlowMatchEulerDiscreteScheduler", dict(encoder="pipe", resolution=8),
           note="packed latents, unpacked for attribution"),
    Family("pixart-binned", tf.pixart, "PixArtAlphaPipeline", "AutoencoderKL", "DDIMScheduler",
           dict(encoder="pipe", resolution=256),
           note="resolution binning: a 32 px call samples at 256 px, so the index is built at 256 px"),
    Family("hunyuan-dit", tf.hunyuan_dit, "HunyuanDiTPipeline", "AutoencoderKL", "DDPMScheduler",
           dict(encoder="pipe", resolution=16), note="binning off (it bins every size to 768 px or more)"),
    Family("dit", tf.dit, "DiTPipeline", "AutoencoderKL", "DDIMScheduler", dict(encoder="vae", resolution=16),
           decodes_latents=False, note="steps the guidance-doubled batch; its first half is attributed"),
    Family("ldm-text2img", tf.ldm_text2img, "LDMTextToImagePipeline", "AutoencoderKL", "DDIMScheduler",
           dict(encoder="vqvae", resolution=16), decodes_latents=False, note="autoencoder `vqvae`"),
    Family("ldm-unconditional", tf.ldm_unconditional, "LDMPipeline", "VQModel", "DDIMScheduler",
           dict(encoder="vqvae", resolution=16), decodes_latents=False, note="`vqvae`, scaled latents"),
    Family("kandinsky22", tf.kandinsky22, "KandinskyV22Pipeline", "VQModel", "DDIMScheduler",
           dict(encoder="pipe", resolution=16), note="`movq`, unscaled latents: build with encoder=pipe"),
    Family("kandinsky22-combined", tf.kandinsky22_combined, "KandinskyV22CombinedPipeline", "VQModel", "DDIMScheduler",
           dict(encoder="pipe", resolution=16), note="prior + decoder; the decoder's steps are attributed"),
    Family("kandinsky3", tf.kandinsky3, "Kandinsky3Pipeline", "VQModel", "DDPMScheduler",
           dict(encoder="pipe", resolution=16), note="`movq`, unscaled latents"),
    Family("wuerstchen", tf.wuerstchen, "WuerstchenDecoderPipeline", "PaellaVQModel", "DDPMWuerstchenScheduler",
           dict(encoder="vqgan", resolution=32), note="`vqgan`; continuous-time VP scheduler"),
    Family("stable-cascade", tf.stable_cascade, "StableCascadeDecoderPipeline", "PaellaVQModel",
           "DDPMWuerstchenScheduler", dict(encoder="pipe", resolution=32), note="`vqgan`; continuous-time VP scheduler"),
    Family("sana", tf.sana, "SanaPipeline", "AutoencoderDC", "FlowMatchEulerDiscreteScheduler",
           dict(encoder="pipe", resolution=32), note="binning off here; binned sizes are checked too"),
    Family("qwenimage", tf.qwenimage, "QwenImagePipeline", "AutoencoderKLQwenImage", "FlowMatchEulerDiscreteScheduler",
           dict(encoder="pipe", resolution=32), note="5-D latents normalised per channel; packed"),
]

FAMILY_BY_ID = {family.id: family for family in FAMILIES}


def photos(count: int = 5) -> list[Image.Image]:
    """Real, non-square photo crops (scikit-image's CC0 astronaut), resized and centre-cropped by the index."""
    from skimage import data

    photo = Image.fromarray(data.astronaut())
    return [photo.crop((60 * k, 40 * k, 60 * k + 160, 40 * k + 120)) for k in range(count)]


def readme_index(pipe, settings: dict) -> AttributionIndex:
    """The index built as README.md says: training images, the pipeline (or its autoencoder), a resolution."""
    settings = dict(settings)
    encoder = settings.pop("encoder", None)
    if encoder is not None:
        settings["encoder"] = pipe if encoder == "pipe" else getattr(pipe, encoder)
    return AttributionIndex.from_images(photos(), progress=False, **settings)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread: these tiny models are slower with more, and far slower on shared cores."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.id)
def test_family_is_attributed_bit_transparently(family):
    pipe, call = family.factory()
    call = {**call, "output_type": "np"}
    assert type(pipe).__name__ == family.pipeline
    autoencoder = pipeline_autoencoder(pipe)
    assert (autoencoder and autoencoder.class_name) == family.autoencoder
    assert type(pipe.scheduler).__name__ == family.scheduler
    index = readme_index(pipe, family.index)
    assert state_shape(pipe, call).shape == index.item_shape  # the early check agrees with the index

    config_before = dict(pipe.scheduler.config)
    reference = pipe(**call, generator=torch.Generator().manual_seed(3))
    wrapped = AttributedPipeline(pipe, index, patch_size=3, timesteps=[300, 600], progress=False)
    output = wrapped(**call, generator=torch.Generator().manual_seed(3))

    assert isinstance(output, type(reference)) and np.array_equal(output.images, reference.images)
    assert "step" not in vars(pipe.scheduler) and dict(pipe.scheduler.config) == config_before
    assert np.array_equal(pipe(**call, generator=torch.Generator().manual_seed(3)).images, reference.images)
    assert len(output.attributions) == len(reference.images) and wrapped.last_attributions == output.attributions
    for attribution, image in zip(output.attributions, output.images):
        assert attribution.scores.shape == (len(index),) and torch.isfinite(attribution.scores).all()
        size = (image.shape[1], image.shape[0])
        assert attribution.heatmap(0).size == attribution.source_heatmap(0).size == attribution.collage().size == size
        assert attribution.scheduler == family.scheduler
    if family.decodes_latents:
        assert_adapter_decodes_like_the_pipeline(pipe, call, reference.images)


def assert_adapter_decodes_like_the_pipeline(pipe, call: dict, images: np.ndarray) -> None:
    """The autoencoder adapter turns the sampler's final latents into the pipeline's own images, so it
    scales and shifts (and encodes the index) in the space the sampler visits."""
    latents = pipe(**(call | {"output_type": "latent"}), generator=torch.Generator().manual_seed(3)).images
    unpack = unpacker(pipe, call)
    decoded = pipeline_autoencoder(pipe).decode(latents if unpack is None else unpack(latents))
    if decoded.shape[2:] != images.shape[1:3]:  # binning: the pipeline resizes what it decodes to the call's size
        decoded = pipe.image_processor.resize_and_crop_tensor(decoded, images.shape[2], images.shape[1])
    ours = (decoded / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(ours, images, atol=1e-5)


# -- the states' shape is known before generating -------------------------------------------------------


SHAPE_CASES = {
    "pixart-binned": (tf.pixart, dict(height=64, width=48), (4, 36, 28)),  # the 256 px bins: 288x224
    "sana-binned": (tf.sana_binned, {}, (4, 16, 16)),
    "hunyuan-binned": (lambda: tf.hunyuan_dit(vae_blocks=4), dict(use_resolution_binning=True), (4, 128, 128)),
    "flux-uneven": (lambda: (tiny_flux_pipeline(), dict(prompt="a cat", max_sequence_length=16)), dict(height=12, width=8), (1, 12, 8)),
    "kandinsky-rounded": (tf.kandinsky22, dict(height=20, width=16), (4, 10, 8)),  # ceil(20 / 2**2) * 2
}


@pytest.mark.parametrize("case", list(SHAPE_CASES))
def test_state_shape_is_the_shape_the_sampler_visits(case):
    factory, change, expected = SHAPE_CASES[case]
    pipe, call = factory()
    call = {**call, **change, "num_inference_steps": 1}
    assert state_shape(pipe, call).shape == expected
    with TrajectoryRecorder(pipe, unpack=unpacker(pipe, call)) as recorder:
        pipe(**call, output_type="latent", generator=torch.Generator().manual_seed(0))
    assert tuple(recorder.states[0].sample.shape[1:]) == expected


# -- what differs between families ------------------------------------------------------------------------


def test_dit_attributes_the_first_half_of_its_guidance_doubled_batch():
    pipe, call = tf.dit()
    index = readme_index(pipe, FAMILY_BY_ID["dit"].index)
    wrapped = AttributedPipeline(pipe, index, patch_size=3, timesteps=[500], progress=False)
    with TrajectoryRecorder(pipe) as recorder:
        pipe(**call, generator=torch.Generator().manual_seed(0))
    output = wrapped(**call, generator=torch.Generator().manual_seed(0))
    level = output.attributions[0].levels[0]
    state = next(s.sample for s in recorder.states if s.step_index == level.step)
    assert state.shape[0] == 2 * len(output.images)  # the scheduler stepped both halves
    direct = wrapped.attributor.attribute(state[: len(output.images)][None], [level], [None, None])
    for ours, expected in zip(output.attributions, direct):
        torch.testing.assert_close(ours.scores, expected.scores)


def test_stable_cascade_return_dict_false_returns_its_images_alone():
    pipe, call = tf.stable_cascade()
    index = readme_index(pipe, FAMILY_BY_ID["stable-cascade"].index)
    reference = pipe(**call, return_dict=False, generator=torch.Generator().manual_seed(0))
    wrapped = AttributedPipeline(pipe, index, patch_size=3, progress=False)
    images = wrapped(**call, return_dict=False, generator=torch.Generator().manual_seed(0))
    assert isinstance(reference, list) and isinstance(images, list) and len(images) == len(reference) == 1
    assert np.array_equal(np.asarray(images[0]), np.asarray(reference[0])) and len(wrapped.last_attributions) == 1


def test_binned_index_at_the_output_size_is_refused_before_the_first_step(count_steps):
    from diffusers import DDIMScheduler

    steps = count_steps(DDIMScheduler)
    pipe, call = tf.pixart()
    index = readme_index(pipe, {"encoder": "pipe", "resolution": 32})  # the output size, not the binned one
    wrapped = AttributedPipeline(pipe, index, patch_size=3, progress=False)
    with pytest.raises(ValueError) as error:
        wrapped(**call)
    assert str(error.value) == (
        "PixArtAlphaPipeline at 32x32 px, binned to 256x256 px (use_resolution_binning=True), samples AutoencoderKL "
        "latents of shape (C, H, W) = (4, 32, 32) but the index holds items of shape (4, 4, 4): build the index "
        "through this pipeline at resolution=256 (encoder=pipe; diffusers-attr index build --pipeline PATH "
        "--resolution 256); or call it with use_resolution_binning=False, height=32, width=32"
    )
    assert steps == []
    assert state_shape(pipe, {**call, "use_resolution_binning": False}).shape == index.item_shape  # the advice works


def test_kandinsky_movq_alone_gives_another_space_and_the_error_says_encoder_pipe():
    from diffusers_attr.index import SpaceMismatchError

    pipe, _ = tf.kandinsky22()
    index = readme_index(pipe, {"encoder": "movq", "resolution": 16})  # the VQModel's own scaling_factor
    with pytest.raises(SpaceMismatchError, match=r"scaling_factor: expected 1.0, the index has 0.18215(.|\n)*encoder=pipe"):
        AttributedPipeline(pipe, index)
    pixels = AttributionIndex.from_images(torch.zeros(3, 4, 8, 8), progress=False)  # latents passed as a tensor
    with pytest.raises(SpaceMismatchError, match="kind: expected 'latent', the index has 'pixel'"):
        AttributedPipeline(pipe, pixels)


# -- refused by name ---------------------------------------------------------------------------------------


def test_prior_pipeline_is_refused_by_name():
    pipe, _ = tf.kandinsky22_prior()
    with pytest.raises(ValueError, match="KandinskyV22PriorPipeline is not supported for attribution: it generates image embeddings"):
        AttributedPipeline(pipe, AttributionIndex.from_images(torch.zeros(2, 3, 8, 8), progress=False))


@pytest.mark.parametrize("name", list(REFUSED_PIPELINES))
def test_every_refused_pipeline_class_is_named_with_why(name):
    import diffusers
    import inspect

    cls = getattr(diffusers, name)
    empty = cls(**{p: None for p in inspect.signature(cls.__init__).parameters if p != "self"})  # refused by class
    with pytest.raises(ValueError, match=f"{name} is not supported for attribution: {re.escape(REFUSED_PIPELINES[name][:30])}"):
        AttributedPipeline(empty, AttributionIndex.from_images(torch.zeros(2, 3, 8, 8), progress=False))


# -- the docs table --------------------------------------------------------------------------------------


def _family_label(scheduler: str) -> str:
    from diffusers import schedulers

    return scheduler_family(getattr(schedulers, scheduler)()).replace("_", " ")


def expected_rows() -> list[str]:
    rows = [
        f"| `{f.pipeline}` | {f.autoencoder or 'none (pixels)'} | `{f.scheduler}` ({_family_label(f.scheduler)}) | "
        f"attributed | {f.note} |"
        for f in FAMILIES
    ]
    rows += [f"| `{name}` | | any | refused | {why} |" for name, why in REFUSED_PIPELINES.items()]
    rows += [f"| any | | `{name}` | refused | {why} |" for name, why in INCOMPATIBLE_SCHEDULERS.items()]
    return rows


def expected_table() -> str:
    head = "| pipeline | autoencoder | scheduler (family) | status | note |\n|---|---|---|---|---|\n"
    return head + "\n".join(expected_rows()) + "\n"


def test_docs_table_lists_exactly_what_is_tested():
    lines = DOCS.read_text(encoding="utf-8").splitlines()
    start = lines.index(expected_table().splitlines()[0]) + 2
    rows = lines[start : lines.index("", start)]
    assert rows == expected_rows(), f"docs/pipelines.md is out of date; its table should be:\n{expected_table()}"


if __name__ == "__main__":
    print(expected_table(), end="")
