"""Correctness checks of the benchmark baseline (run with ``pytest bench/test_published_baseline.py``;
not part of the default ``tests/`` run)."""

import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from published_baseline import brute_force_scores, published_scores, window_classes


def _problem(n=6, c=2, h=7, w=6, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    y = torch.rand(n, c, h, w, generator=g, dtype=dtype) * 2 - 1
    x = 0.8 * y[1] + 0.6 * torch.randn(c, h, w, generator=g, dtype=dtype)
    return x, y


@pytest.mark.parametrize("mode", ["embed", "additive"])
@pytest.mark.parametrize("patch_size", [1, 3, 4, 5])
@pytest.mark.parametrize("topk", [None, 3])
def test_float64_matches_design_semantics(mode, patch_size, topk):
    x, y = _problem()
    ref = brute_force_scores(x, y, alpha=0.8, sigma=0.6, patch_size=patch_size, topk=topk)
    got = published_scores(x, y, alpha=0.8, sigma=0.6, patch_size=patch_size, topk=topk,
                           mask_mode=mode, kernel_batch_size=5)
    torch.testing.assert_close(got, ref, rtol=1e-7, atol=1e-7)


def test_sum_invariant_and_window_subset():
    x, y = _problem()
    full = published_scores(x, y, alpha=0.8, sigma=0.6, patch_size=3)
    assert float(full.sum()) == pytest.approx(7 * 6)
    a = published_scores(x, y, alpha=0.8, sigma=0.6, patch_size=3, windows=range(20))
    b = published_scores(x, y, alpha=0.8, sigma=0.6, patch_size=3, windows=range(20, 42))
    torch.testing.assert_close(a + b, full)


def test_window_classes_interior_is_one_class():
    cls = window_classes(10, 9, 5).view(10, 9)
    interior = cls[2:-2, 2:-2]
    assert (interior == interior[0, 0]).all()
    assert len(torch.unique(cls)) == 5 * 5  # 2 clipped rows each side + interior, same for cols


def test_float32_additive_close_float32_embed_border_error():
    x, y = _problem(n=20, c=3, h=12, w=12, dtype=torch.float64)
    ref = brute_force_scores(x, y, alpha=0.8, sigma=0.6, patch_size=5)
    add32 = published_scores(x.float(), y.float(), alpha=0.8, sigma=0.6, patch_size=5, mask_mode="additive")
    torch.testing.assert_close(add32.double(), ref, rtol=1e-3, atol=1e-3)


def test_against_engine_float64():
    engine = pytest.importorskip("diffusers_attr.engine")
    x, y = _problem(n=8, c=3, h=9, w=8)
    for p in (3, 5):
        ref = engine.nda_scores(x[None], y, alpha=0.8, sigma=0.6, patch_size=p)[0]
        for mode in ("embed", "additive"):
            got = published_scores(x, y, alpha=0.8, sigma=0.6, patch_size=p, mask_mode=mode)
            torch.testing.assert_close(got, ref.to(got.dtype), rtol=1e-7, atol=1e-7)
