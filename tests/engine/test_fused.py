"""The fused Triton kernel, run by Triton's interpreter on CPU (``TRITON_INTERPRET=1``) against the
float64 oracle and the torch path; the real CUDA launch only where a GPU exists."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("triton", reason="Triton is not installed (pip install -e .[test] installs it)")

from diffusers_attr.engine import nda_attribute, nda_scores
from diffusers_attr.engine import fused
from diffusers_attr.engine.fused import class_log_mass
from diffusers_attr.engine.logits import augmented_keys, class_logits, plan_scale
from diffusers_attr.engine.streaming import log_sum_exp_
from diffusers_attr.engine.windows import Scale

from .oracle import oracle
from .test_scores import problem

REL = 1e-5
ROOT = Path(__file__).resolve().parents[2]


if not fused.interpreting():
    pytest.skip("TRITON_INTERPRET is off: tests/conftest.py sets it unless TRITON_INTERPRET=0 was given", allow_module_level=True)


def noisy(seed: int, **shape):
    train, x0, noise = problem(seed, **shape)
    alpha = torch.tensor([0.9, 0.6], dtype=torch.float64)[: x0.shape[0]]
    sigma = torch.tensor([0.4, 0.8], dtype=torch.float64)[: x0.shape[0]]
    return train, alpha.view(-1, 1, 1, 1) * x0 + sigma.view(-1, 1, 1, 1) * noise, alpha, sigma


@pytest.mark.parametrize(
    "scales, topk",
    [([(1, 3, 1.0)], None), ([(1, 5, 1.0)], None), ([(1, 3, 0.7), (2, 1, 0.3)], None), ([(1, 3, 1.0)], 2)],
    ids=["single", "p5-borders", "two-scale", "topk-falls-back"],
)
def test_kernel_matches_float64_oracle(scales, topk):
    train, queries, alpha, sigma = noisy(0)
    expected = oracle(queries, train, alpha, sigma, scales, topk)["scores"]
    result = nda_attribute(queries.float(), train.float(), alpha=alpha, sigma=sigma, scales=scales, topk=topk, backend="triton")
    assert result.backend == "triton" and result.precision == "exact"
    np.testing.assert_allclose(result.scores.double().numpy(), expected, rtol=REL, atol=REL * expected.max())


def test_kernel_maps_and_streaming_match_oracle():
    train, queries, alpha, sigma = noisy(1)
    items = torch.tensor([[0, 2], [1, 0]])
    expected = oracle(queries, train, alpha, sigma, [(1, 3, 1.0)], None, items.numpy())
    result = nda_attribute(
        queries.float(), train.float(), alpha=alpha, sigma=sigma, patch_size=3, map_items=items,
        memory_budget=1, backend="triton",  # one item per chunk: the normaliser merges across chunks
    )
    for name, key in (("scores", "scores"), ("query_maps", "query_maps"), ("source_maps", "source_maps")):
        actual = result.scores if name == "scores" else getattr(result.maps, name)
        np.testing.assert_allclose(actual.double().numpy(), expected[key], rtol=REL, atol=REL * expected[key].max())
    assert (result.maps.dominant_source.numpy() == expected["dominant"]).all()


def test_kernel_tiles_equal_torch_logits():
    """Rows, key windows and depth each span several tiles (16 in the interpreter), with ragged ends."""
    gen = torch.Generator().manual_seed(3)
    queries, train = torch.randn(2, 3, 12, 11, generator=gen), torch.randn(3, 3, 12, 11, generator=gen)
    plan = plan_scale(queries, Scale(1, 3), torch.tensor([0.7, 0.9], dtype=torch.float64), torch.tensor([0.5, 1.5], dtype=torch.float64))
    keys = augmented_keys(train, plan.scale)
    for group, query_group in zip(plan.groups, plan.query_groups):
        expected = log_sum_exp_(class_logits(query_group.double(), keys.double(), group))
        got = class_log_mass(query_group, keys, group, "exact").view_as(expected)
        torch.testing.assert_close(got.double(), expected, rtol=REL, atol=REL)


@pytest.mark.parametrize("precision", ["bf16", "tf32"])
def test_reduced_precision_kernel_equals_rounded_torch_path(precision):
    """The kernel (rounding by hand in the interpreter) and the torch path round the same inputs."""
    train, queries, alpha, sigma = noisy(2)
    args = dict(alpha=alpha, sigma=sigma, patch_size=3, precision=precision)
    torch_path = nda_scores(queries.float(), train.float(), backend="torch", **args)
    kernel = nda_scores(queries.float(), train.float(), backend="triton", **args)
    torch.testing.assert_close(kernel, torch_path, rtol=1e-4, atol=1e-4 * float(torch_path.max()))


CUDA_CHECK = """
import torch
from diffusers_attr.engine import nda_attribute
gen = torch.Generator().manual_seed(4)
train = torch.rand(40, 4, 24, 24, generator=gen, dtype=torch.float64) * 2 - 1
queries = 0.8 * train[:3] + 0.6 * torch.randn(3, 4, 24, 24, generator=gen, dtype=torch.float64)
expected = nda_attribute(queries, train, alpha=0.8, sigma=0.6, patch_size=5).scores
got = nda_attribute(queries.float().cuda(), train.float().cuda(), alpha=0.8, sigma=0.6, patch_size=5)
assert got.backend == "triton", got.backend
torch.testing.assert_close(got.scores.cpu().double(), expected, rtol=1e-5, atol=1e-5 * float(expected.max()))
print("ok")
"""


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here: the compiled kernel launch needs a GPU")
def test_cuda_launch_matches_float64():
    env = {**os.environ, "TRITON_INTERPRET": "0"}
    done = subprocess.run([sys.executable, "-c", CUDA_CHECK], env=env, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
