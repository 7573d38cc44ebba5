"""End to end: a DDPM trained here on real digits; a planted training copy of its output is found."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffusers_attr import AttributedPipeline, AttributionIndex, read_attribution
from diffusers_attr.training.ddpm import train_ddpm
from diffusers_attr.training.digits import load_digits_dataset


@pytest.fixture(scope="module")
def digits_pipeline(tmp_path_factory):
    """A small DDPM trained for 200 steps on the 8x8 scikit-learn digits."""
    digits = load_digits_dataset(size=8)
    unet = dict(
        sample_size=8, in_channels=1, out_channels=1, block_out_channels=(16, 32), layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
    )
    result = train_ddpm(
        digits.images[:500], steps=200, batch_size=16, lr=2e-3, seed=0, warmup_steps=20, unet_config=unet,
        out_dir=tmp_path_factory.mktemp("ddpm"), progress=False, checkpoint_every=1000,
    )
    result.pipeline.set_progress_bar_config(disable=True)
    return result.pipeline, digits


@pytest.mark.parametrize("mode", ["trajectory", "renoise"])
def test_planted_training_copy_is_the_top_source(digits_pipeline, mode, tmp_path):
    pipe, digits = digits_pipeline
    generated = pipe(num_inference_steps=50, output_type="np", generator=torch.Generator().manual_seed(5)).images
    planted = torch.from_numpy(generated).permute(0, 3, 1, 2) * 2 - 1  # the output, as a training image
    items = torch.cat([digits.images[:300], planted])
    ids = digits.ids[:300] + ["planted-copy"]
    index = AttributionIndex.from_images(items, ids=ids, metadata=digits.metadata[:300] + [{"label": -1}], progress=False)

    wrapped = AttributedPipeline(pipe, index, patch_size=3, mode=mode, timesteps=[50, 100], progress=False)
    output = wrapped(num_inference_steps=50, output_type="np", generator=torch.Generator().manual_seed(5))
    assert np.array_equal(output.images, generated)
    top = output.attributions[0].top
    assert top[0].id == "planted-copy"
    assert top[0].share > 2 * top[1].share


def test_ordinary_generation_saves_labelled_top_sources(digits_pipeline, tmp_path):
    """Ordinary generations: the saved metadata lists the top training digits with labels and shares."""
    pipe, digits = digits_pipeline
    index = AttributionIndex.from_images(digits.images[:500], ids=digits.ids[:500], metadata=digits.metadata[:500], progress=False)
    output = AttributedPipeline(pipe, index, patch_size=5, top=10, progress=False)(
        num_inference_steps=50, batch_size=2, generator=torch.Generator().manual_seed(0)
    )
    path = output.save(tmp_path)[0]
    saved = read_attribution(path)
    labels = [item["metadata"]["label"] for item in saved["top"]]
    assert len(labels) == 10 and all(0 <= label <= 9 for label in labels)
    scores = output.attributions[0].scores
    assert sum(item["share"] for item in saved["top"]) == pytest.approx(float(scores.topk(10).values.sum() / scores.sum()), rel=1e-5)
