"""The Triton source of the fused kernel (``fused.py`` compiles it; imported only when Triton is
installed). Kept undecorated so that ``fused`` can compile it or hand it to Triton's interpreter."""

import triton.language as tl


def log_mass_kernel(
    q_ptr, qn_ptr, k_ptr, kn_ptr, out_ptr, rows_total, keys_total, depth,
    sq_c, sq_r, sqn_c, sqn_r, sk_c, sk_n, sk_m, skn_c, skn_n, skn_m, so_c, so_r, so_n,
    PRECISION: tl.constexpr, BF16: tl.constexpr, EMULATE: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr,
):
    # Row tiles vary fastest, so the programs reading one item's keys run together (L2 reuse).
    tile, item, cls = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    rows = tile * BLOCK_R + tl.arange(0, BLOCK_R)
    row_ok = rows < rows_total
    dims = tl.arange(0, BLOCK_D)
    q_base = q_ptr + cls * sq_c + rows[:, None] * sq_r
    k_base = k_ptr + cls * sk_c + item * sk_n
    qn = tl.load(qn_ptr + cls * sqn_c + rows * sqn_r, mask=row_ok, other=0.0)
    peak = tl.full([BLOCK_R], float("-inf"), tl.float32)
    total = tl.zeros([BLOCK_R], tl.float32)
    for first in range(0, keys_total, BLOCK_M):
        keys = first + tl.arange(0, BLOCK_M)
        key_ok = keys < keys_total
        acc = tl.zeros([BLOCK_R, BLOCK_M], tl.float32)
        for start in range(0, depth, BLOCK_D):
            d = start + dims
            d_ok = d < depth
            q = tl.load(q_base + d[None, :], mask=row_ok[:, None] & d_ok[None, :], other=0.0)
            k = tl.load(k_base + keys[None, :] * sk_m + d[:, None], mask=d_ok[:, None] & key_ok[None, :], other=0.0)
            if EMULATE > 0:
                # In the interpreter (no tensor cores; its bfloat16 casts truncate and its bfloat16 dot
                # is wrong): round the inputs to nearest by hand, keep them in float32 and multiply
                # exactly, which is what the GPU's tf32 / bf16 tensor cores compute. EMULATE is the
                # number of float32 mantissa bits dropped (13 for tf32, 16 for bf16).
                qb = q.to(tl.int32, bitcast=True)
                kb = k.to(tl.int32, bitcast=True)
                half = (1 << (EMULATE - 1)) - 1
                q = ((qb + half + ((qb >> EMULATE) & 1)) & -(1 << EMULATE)).to(tl.float32, bitcast=True)
                k = ((kb + half + ((kb >> EMULATE) & 1)) & -(1 << EMULATE)).to(tl.float32, bitcast=True)
            elif BF16:  # bfloat16 inputs, float32 accumulation
                q, k = q.to(tl.bfloat16), k.to(tl.bfloat16)
            acc = tl.dot(q, k, acc, input_precision=PRECISION)
        kn = tl.load(kn_ptr + cls * skn_c + item * skn_n + keys * skn_m, mask=key_ok, other=0.0)
        logits = tl.where(key_ok[None, :], acc + qn[:, None] * kn[None, :], float("-inf"))
        new_peak = tl.maximum(peak, tl.max(logits, 1))
        total = total * tl.exp(peak - new_peak) + tl.sum(tl.exp(logits - new_peak[:, None]), 1)
        peak = new_peak
    tl.store(out_ptr + cls * so_c + rows * so_r + item * so_n, peak + tl.log(total), mask=row_ok)
