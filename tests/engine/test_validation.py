"""Bad input to the engine: each a clear ValueError that says what was wrong and how to fix it."""

from __future__ import annotations

import pytest
import torch

from diffusers_attr.engine import nda_attribute, nda_scores

TRAIN = torch.rand(4, 1, 8, 8) * 2 - 1
QUERY = TRAIN[:1] * 0.9


def call(queries=QUERY, train=TRAIN, **kwargs):
    args = dict(alpha=0.9, sigma=0.5, patch_size=3) | kwargs
    return nda_scores(queries, train, **args)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(queries=torch.rand(1, 3, 8, 8)), r"queries have \(C, H, W\) = \(3, 8, 8\) but training items have \(1, 8, 8\)"),
        (dict(queries=torch.rand(1, 1, 16, 16)), r"same space"),
        (dict(queries=torch.rand(1, 8, 8)), r"queries must be a tensor \[B, C, H, W\]"),
        (dict(queries=torch.full((1, 1, 8, 8), float("nan"))), r"queries contain NaN or inf \(rows \[0\]\)"),
        (dict(train=torch.cat([TRAIN, torch.full((1, 1, 8, 8), float("inf"))])), r"training item 4 contains NaN or inf"),
        (dict(train=torch.empty(0, 1, 8, 8)), r"training set is empty"),
        (dict(sigma=0.0), r"sigma must be > 0"),
        (dict(sigma=torch.tensor([0.5, -1.0]), queries=TRAIN[:2]), r"sigma must be > 0"),
        (dict(alpha=torch.tensor([0.5, 0.5, 0.5])), r"alpha must be a float or hold one value per query \(1\)"),
        (dict(alpha=float("nan")), r"alpha must be finite"),
        (dict(patch_size=4), r"patch_size=4 must be odd; use 3 or 5"),
        (dict(patch_size=0), r"patch_size=0 must be a positive odd integer"),
        (dict(patch_size=9), r"larger than the 8x8 image; use patch_size <= 7"),
        (dict(scales=[(2, 5, 1.0)]), r"2x5 = 10 pixels is larger than the 8x8 image; use patch_size <= 3 at factor 2"),
        (dict(scales=[(0, 3, 1.0)]), r"factor=0 must be a positive integer"),
        (dict(scales=[(1, 3)]), r"each scale is \(factor, patch_size, weight\)"),
        (dict(scales=[]), r"scales is empty"),
        (dict(topk=0), r"topk=0 must be None or a positive integer"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        call(**kwargs)


def test_train_of_wrong_type():
    with pytest.raises(TypeError, match="train must be a tensor"):
        call(train=[[1.0]])


def test_bad_map_items_shape():
    with pytest.raises(ValueError, match=r"map_items must be a LongTensor \[B=1, M\]"):
        nda_attribute(QUERY, TRAIN, alpha=0.9, sigma=0.5, patch_size=3, map_items=torch.tensor([0, 1]))


def test_half_precision_queries_compute_in_float32():
    scores = call(queries=QUERY.half(), train=TRAIN.half())
    assert scores.dtype == torch.float32
    torch.testing.assert_close(scores.sum(), torch.tensor(64.0), rtol=1e-4, atol=0)
