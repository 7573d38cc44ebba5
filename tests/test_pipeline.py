"""AttributedPipeline on real (tiny, config-built) diffusers pipelines: outputs, modes, saving, bad input.

Every pipeline family is run in ``test_pipeline_families.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler
from PIL import Image

from diffusers_attr import AttributedPipeline, Attribution, AttributionIndex, read_attribution
from diffusers_attr.index import SpaceMismatchError
from diffusers_attr.levels import nearest_steps, vp_noise_level
from diffusers_attr.recorder import TrajectoryRecorder
from diffusers_attr.render import display_size
from tiny_pipelines import tiny_ddpm_pipeline, tiny_sd_pipeline


def pixel_index(size: int = 8, items: int = 12, seed: int = 0) -> AttributionIndex:
    gen = torch.Generator().manual_seed(seed)
    return AttributionIndex.from_images(torch.rand(items, 1, size, size, generator=gen) * 2 - 1, progress=False)


def photos(size: int, count: int = 6) -> list[Image.Image]:
    from skimage import data

    photo = Image.fromarray(data.astronaut())
    return [photo.crop((40 * k, 30 * k, 40 * k + 128, 30 * k + 128)).resize((size, size)) for k in range(count)]


def latent_index(pipe, image_size: int) -> AttributionIndex:
    return AttributionIndex.from_images(photos(image_size), encoder=pipe.vae, progress=False)


def images_equal(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))


def test_pipeline_is_restored_when_the_call_raises():
    pipe = tiny_ddpm_pipeline()
    wrapped = AttributedPipeline(pipe, pixel_index(), patch_size=3, progress=False)
    with pytest.raises(Exception):
        wrapped(num_inference_steps=2, callback_on_step_end=lambda *a: 1 / 0, output_type="bogus")
    assert "step" not in vars(pipe.scheduler)


def test_saved_png_round_trips_metadata_and_arrays(tmp_path):
    pipe = tiny_ddpm_pipeline()
    index = pixel_index()
    output = AttributedPipeline(pipe, index, patch_size=3, top=5, maps=2, progress=False)(
        num_inference_steps=4, batch_size=2, generator=torch.Generator().manual_seed(0)
    )
    paths = output.save(tmp_path)
    assert [p.name for p in paths] == ["image-000.png", "image-001.png"]
    for path, attribution in zip(paths, output.attributions):
        metadata = read_attribution(path)
        assert metadata == attribution.to_dict()
        assert [item["id"] for item in metadata["top"]] == [item.id for item in attribution.top]
        assert len(metadata["top"]) == 5 and metadata["index"]["items"] == len(index)
        loaded = Attribution.load(path)
        assert torch.equal(loaded.scores, attribution.scores)
        assert np.array_equal(np.asarray(loaded.image), np.asarray(attribution.image))
        display = display_size(attribution.image.size)
        assert display == (256, 256)  # 8x8 outputs are drawn 32x larger, with crisp pixels
        for k in (1, 2):
            with Image.open(path.with_name(f"{path.stem}.heatmap-{k}.png")) as heatmap:
                assert heatmap.width == display[0] and heatmap.height > display[1]  # the picture, then its legend
                drawn = np.asarray(heatmap.convert("RGB"))[: display[1]]
            assert np.array_equal(drawn, np.asarray(attribution.heatmap(k - 1, display)))
        for k in range(1, 6):
            assert path.with_name(f"{path.stem}.train-{k}.png").exists()
        assert path.with_name(f"{path.stem}.collage.png").exists()
        assert path.with_name(f"{path.stem}.attribution.json").exists()
        modes = {p.stat().st_mode & 0o777 for p in tmp_path.glob(f"{path.stem}.*")}
        assert len(modes) == 1  # the arrays file too: all written with the process's umask
    assert (tmp_path / "index.html").is_file()  # every run folder gets its report
    assert [p.name for p in output.save(tmp_path)] == ["image-002.png", "image-003.png"]  # nothing overwritten


def test_trajectory_mode_attributes_the_recorded_states_nearest_each_level():
    pipe = tiny_ddpm_pipeline()
    with TrajectoryRecorder(pipe) as everything:
        pipe(num_inference_steps=20, generator=torch.Generator().manual_seed(2))
    wrapped = AttributedPipeline(pipe, pixel_index(), patch_size=3, timesteps=[100, 200, 300, 310], progress=False)
    output = wrapped(num_inference_steps=20, generator=torch.Generator().manual_seed(2))

    recorded = [vp_noise_level(s.alpha, s.sigma) for s in everything.states]
    expected = [everything.states[i] for i in nearest_steps(recorded, wrapped.levels)]
    assert [level.step for level in output.attributions[0].levels] == [s.step_index for s in expected]
    assert len(expected) == 3  # t=300 and t=310 share a step
    direct = wrapped.attributor.attribute(
        torch.stack([s.sample for s in expected]), output.attributions[0].levels, [None]
    )
    torch.testing.assert_close(output.attributions[0].scores, direct[0].scores)


def test_renoise_mode_and_attribute_images_agree():
    pipe = tiny_ddpm_pipeline()
    wrapped = AttributedPipeline(pipe, pixel_index(), patch_size=3, mode="renoise", draws=3, progress=False)
    output = wrapped(num_inference_steps=3, generator=torch.Generator().manual_seed(1))
    again = wrapped.attribute_images(output.images)
    torch.testing.assert_close(output.attributions[0].scores, again[0].scores)
    assert len(output.attributions[0].levels) == 3 and output.attributions[0].level_scores.shape[0] == 3


# -- bad input -------------------------------------------------------------------------------------


def test_index_of_another_space_is_refused():
    sd = tiny_sd_pipeline()
    other = tiny_sd_pipeline(seed=1)  # same architecture, different VAE weights
    with pytest.raises(SpaceMismatchError, match="vae_weights_sha256"):
        AttributedPipeline(sd, latent_index(other, 16))
    with pytest.raises(SpaceMismatchError, match="kind"):
        AttributedPipeline(sd, AttributionIndex.from_images(torch.zeros(3, 4, 8, 8), progress=False))
    with pytest.raises(SpaceMismatchError, match="kind"):
        AttributedPipeline(tiny_ddpm_pipeline(), latent_index(sd, 16))


def test_index_of_another_resolution_or_channels_is_refused_when_wrapping(count_steps):
    steps = count_steps(DDPMScheduler)
    pipe = tiny_ddpm_pipeline()
    for index, fix in ((pixel_index(size=16), "resolution=8"), (AttributionIndex.from_images(torch.zeros(4, 3, 8, 8), progress=False), "channels=1")):
        with pytest.raises(ValueError, match=r"DDPMPipeline samples pixels of shape \(C, H, W\) = \(1, 8, 8\) but the index") as error:
            AttributedPipeline(pipe, index, patch_size=3, progress=False)
        assert fix in str(error.value) and "--resolution 8" in str(error.value)
    assert steps == []


def test_readme_quickstart_index_on_the_digits_model_is_refused_at_once(count_steps, photo_folder):
    from diffusers import DDPMPipeline

    from diffusers_attr.training.digits import digits_ddpm_path

    steps = count_steps(DDPMScheduler)
    pipe = DDPMPipeline.from_pretrained(digits_ddpm_path())  # 16 px greyscale
    index = AttributionIndex.from_images(photo_folder, resolution=32, progress=False)  # RGB at 32 px
    with pytest.raises(ValueError, match=r"DDPMPipeline samples pixels of shape \(C, H, W\) = \(1, 16, 16\) but the "
                       r"index holds items of shape \(3, 32, 32\): build the index with channels=1, resolution=16"):
        AttributedPipeline(pipe, index, timesteps=[100, 200, 300])
    assert steps == []


def test_latent_index_of_another_size_is_refused_before_the_first_step(count_steps):
    steps = count_steps(DDIMScheduler)
    pipe = tiny_sd_pipeline()
    index = latent_index(pipe, 8)  # 4x4x4 latents; a 16 px call samples 4x8x8
    wrapped = AttributedPipeline(pipe, index, patch_size=3, progress=False)  # channels agree: accepted
    with pytest.raises(ValueError) as error:
        wrapped("a cat", height=16, width=16, num_inference_steps=2)
    assert str(error.value) == (
        "StableDiffusionPipeline at 16x16 px samples AutoencoderKL latents of shape (C, H, W) = (4, 8, 8) but the "
        "index holds items of shape (4, 4, 4): build the index through this pipeline at resolution=16 (encoder=pipe; "
        "diffusers-attr index build --pipeline PATH --resolution 16); or call it with height=8, width=8"
    )
    assert steps == []
    assert len(wrapped(prompt="a cat", height=8, width=8, num_inference_steps=2).attributions) == 1  # the advice works


def test_return_dict_false_returns_exactly_what_the_pipeline_returns():
    pipe = tiny_sd_pipeline()
    call = dict(prompt=["a cat", "a dog"], height=16, width=16, num_inference_steps=2, return_dict=False)
    reference = pipe(**call, generator=torch.Generator().manual_seed(0))
    wrapped = AttributedPipeline(pipe, latent_index(pipe, 16), patch_size=3, progress=False)
    images, nsfw = wrapped(**call, generator=torch.Generator().manual_seed(0))
    assert type(reference) is tuple and len(reference) == 2 and images_equal(images, reference[0]) and nsfw == reference[1]
    assert [a.image.size for a in wrapped.last_attributions] == [(16, 16), (16, 16)]


def test_unsupported_scheduler_is_named():
    from diffusers import CMStochasticIterativeScheduler

    pipe = tiny_ddpm_pipeline()
    pipe.scheduler = CMStochasticIterativeScheduler()
    with pytest.raises(ValueError, match="CMStochasticIterativeScheduler is not supported"):
        AttributedPipeline(pipe, pixel_index())


def test_empty_index_is_refused():
    with pytest.raises(ValueError, match="empty"):
        AttributionIndex.from_images(torch.zeros(0, 1, 8, 8), progress=False)


@pytest.mark.parametrize(
    "config, message",
    [
        (dict(timesteps=[1000]), r"t=1000 must be an integer in \[0, 1000\)"),
        (dict(timesteps=[]), "timesteps is empty"),
        (dict(sigmas=[0.0, 1.2]), r"sigmas=\[0.0, 1.2\] must lie in \(0, 1\)"),
        (dict(sigmas=[0.3], timesteps=[100]), "not both"),
        (dict(mode="bogus"), "mode='bogus' must be one of"),
        (dict(patch_size=9), "larger than the 8x8 image"),
        (dict(top=0), "top=0 must be a positive integer"),
    ],
)
def test_invalid_settings_are_clear_errors(config, message):
    with pytest.raises(ValueError, match=message):
        AttributedPipeline(tiny_ddpm_pipeline(), pixel_index(), **config)
