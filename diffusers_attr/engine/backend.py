"""Which implementation computes the per-chunk masses, and at which input precision.

* ``"torch"``: batched GEMMs of whole logit tensors (``logits.py``), any device and dtype, top-k.
* ``"triton"``: the fused kernel (``fused.py``), float32 queries, classes without top-k truncation;
  on CPU tensors only in Triton's interpreter (``TRITON_INTERPRET=1``, for tests).
* ``"auto"`` (default): ``"triton"`` on CUDA for float32 queries when Triton is installed, else
  ``"torch"``. Where the kernel does not apply (top-k smaller than a class) the torch path computes
  that class, so results never depend on the backend beyond float32 rounding.

``precision`` is never chosen for the caller: ``"exact"`` (default) keeps float32 inputs and float32
accumulation; ``"tf32"`` and ``"bf16"`` round the GEMM inputs (tensor cores on GPUs) and keep the
norm term and the accumulation in float32.
"""

from __future__ import annotations

import torch

from . import fused

BACKENDS = ("auto", "torch", "triton")
PRECISIONS = ("exact", "tf32", "bf16")


def check_precision(precision: object, dtype: torch.dtype = torch.float32) -> str:
    """``precision`` is one of :data:`PRECISIONS`; reduced precisions need float32 queries."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} must be one of {PRECISIONS} ('exact' is float32 throughout)")
    if precision != "exact" and dtype == torch.float64:
        raise ValueError(
            f"precision={precision!r} rounds float32 GEMM inputs, but the queries are float64; pass float32 "
            "queries or keep precision='exact'"
        )
    return precision  # type: ignore[return-value]


def select_backend(backend: object, device: torch.device, dtype: torch.dtype) -> str:
    """Resolve ``backend`` (one of :data:`BACKENDS`) for queries on ``device`` of ``dtype``."""
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} must be one of {BACKENDS}")
    if backend == "auto":
        usable = device.type == "cuda" and dtype == torch.float32 and fused.available()
        return "triton" if usable else "torch"
    if backend == "triton":
        if not fused.available():
            raise ValueError("backend='triton' needs Triton: pip install 'diffusers-attr[gpu]' (or use backend='torch')")
        if dtype != torch.float32:
            raise ValueError(f"backend='triton' computes in float32; got {dtype} queries (use backend='torch')")
        if device.type == "cpu" and not fused.interpreting():
            raise ValueError(
                "backend='triton' on CPU tensors runs only in Triton's interpreter: set TRITON_INTERPRET=1 "
                "before starting Python (for tests), or move the queries to a CUDA device"
            )
        if device.type not in ("cpu", "cuda"):
            raise ValueError(f"backend='triton' runs on CUDA devices; got {device.type}")
    return backend  # type: ignore[return-value]


def round_inputs(tensor: torch.Tensor, precision: str) -> torch.Tensor:
    """``tensor`` (float32) with its values rounded as the GEMM inputs of ``precision`` are
    (``"tf32"``: 10 mantissa bits, round to nearest even; ``"bf16"``: bfloat16, the same rule), still float32: the torch
    path's way of computing what the tensor cores compute. ``"exact"`` returns ``tensor`` itself."""
    if precision == "exact":
        return tensor
    if precision == "bf16":
        return tensor.to(torch.bfloat16).to(tensor.dtype)
    bits = tensor.contiguous().view(torch.int32)  # tf32 keeps 10 of float32's 23 mantissa bits:
    rounded = (bits + 0xFFF + ((bits >> 13) & 1)) & -(1 << 13)  # round to nearest even, drop 13
    return rounded.view(torch.float32).view(tensor.shape)
