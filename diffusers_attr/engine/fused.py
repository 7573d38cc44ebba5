"""The fused GPU kernel (Triton): window GEMM + running log-sum-exp + per-item mass in one pass.

Flash-attention with the training windows as keys: a program owns a tile of query windows of one
boundary class and one training item, walks that item's key windows of the class in tiles held in
on-chip memory, and keeps a running maximum and sum per query window; only ``L[c, r, n] = log sum_l
exp(logit)`` reaches global memory, never the logits. The logit is ``<q, k> + qn * ||k||^2`` with
``q`` already scaled by ``alpha / sigma^2`` and ``qn = -alpha^2 / (2 sigma^2)`` (``logits.py``);
the norm term is added in float32 whatever the GEMM's input precision.

Triton is imported lazily: this module imports with torch alone, and :func:`available` says whether
the kernel can run. On CPU tensors the kernel runs in Triton's interpreter (``TRITON_INTERPRET=1``),
which is how the tests check it against the float64 oracle without a GPU.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from typing import Any

import torch

INPUT_PRECISION = {"exact": "ieee", "tf32": "tf32", "bf16": "ieee"}
"""``precision=`` -> Triton ``tl.dot`` input precision (bf16 tiles are cast in the kernel)."""

DROPPED_BITS = {"exact": 0, "tf32": 13, "bf16": 16}
"""Float32 mantissa bits each precision drops (rounded by hand in the interpreter)."""

INTERPRETER_BLOCKS = {"BLOCK_R": 16, "BLOCK_M": 16, "BLOCK_D": 16}
"""Tile sizes in the interpreter (CPU): the smallest ``tl.dot`` accepts, so tests stay fast."""


def available() -> bool:
    """Whether Triton is installed (the kernel's only extra requirement)."""
    return importlib.util.find_spec("triton") is not None


def interpreting() -> bool:
    """Whether Triton runs kernels in its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


@functools.lru_cache(maxsize=None)
def _kernel(interpret: bool) -> Any:
    """The jitted kernel (autotuned on GPUs; fixed small tiles in the interpreter)."""
    import triton

    from . import fused_kernel

    if interpret:  # the interpreter patches triton.language in the kernel's module globals
        from triton.runtime.interpreter import InterpretedFunction

        return InterpretedFunction(fused_kernel.log_mass_kernel)
    kernel = triton.jit(fused_kernel.log_mass_kernel)
    configs = [
        triton.Config({"BLOCK_R": r, "BLOCK_M": m, "BLOCK_D": d}, num_warps=w, num_stages=s)
        for r, m, d, w, s in [
            (64, 64, 32, 4, 3), (128, 64, 32, 8, 3), (64, 128, 32, 8, 3), (128, 128, 32, 8, 2),
            (64, 64, 16, 4, 4), (128, 64, 16, 4, 4), (32, 64, 32, 4, 3),
        ]
    ]
    return triton.autotune(configs, key=["keys_total", "depth", "PRECISION", "BF16"])(kernel)


def class_log_mass(query_group: torch.Tensor, keys: torch.Tensor, group: torch.Tensor, precision: str) -> torch.Tensor:
    """``L [n_classes, R, n]``: log of the mass each augmented query row of ``query_group
    [n_classes, R, D + 1]`` puts on each item of ``keys [n, P, D + 1]`` over the key windows of its
    class (``group [n_classes, m]`` positions). Same values as ``log_sum_exp_(class_logits(...))``."""
    n_classes, size = group.shape
    n_items, _, width = keys.shape
    depth = width - 1
    grouped = keys[:, group.flatten()].view(n_items, n_classes, size, width).transpose(0, 1)
    key_windows, key_norms = grouped[..., :depth], grouped[..., depth]
    queries, query_norms = query_group[..., :depth], query_group[..., depth]
    if queries.stride(-1) != 1 or key_windows.stride(-1) != 1:
        queries, key_windows = queries.contiguous(), key_windows.contiguous()
    rows = query_group.shape[1]
    out = query_group.new_empty(n_classes, rows, n_items, dtype=torch.float32)
    if out.numel() == 0:
        return out
    interpret = query_group.device.type == "cpu"
    kernel = _kernel(interpret)
    blocks = INTERPRETER_BLOCKS if interpret else {}

    def grid(meta: dict) -> tuple[int, int, int]:
        return (-(-rows // meta["BLOCK_R"]), n_items, n_classes)

    kernel[grid](
        queries, query_norms, key_windows, key_norms, out, rows, size, depth,
        queries.stride(0), queries.stride(1), query_norms.stride(0), query_norms.stride(1),
        key_windows.stride(0), key_windows.stride(1), key_windows.stride(2),
        key_norms.stride(0), key_norms.stride(1), key_norms.stride(2),
        out.stride(0), out.stride(1), out.stride(2),
        PRECISION=INPUT_PRECISION[precision], BF16=precision == "bf16",
        EMULATE=DROPPED_BITS[precision] if interpret else 0, **blocks,
    )
    return out
