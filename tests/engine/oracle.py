"""Brute-force float64 reference for DESIGN.md §2, written from the definition with plain loops.

Deliberately shares no code with the engine: windows are cut pixel by pixel, boundary classes are
compared as boolean masks, the projection sums blocks explicitly and the softmax is over a Python
list of every (item, key window) pair.
"""

from __future__ import annotations

import numpy as np


def window(image: np.ndarray, i: int, j: int, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Zero-filled window of side ``side`` anchored at pixel (i, j), and its mask of valid entries."""
    channels, height, width = image.shape
    offset = (side - 1) // 2
    values = np.zeros((channels, side, side))
    valid = np.zeros((side, side), dtype=bool)
    for r in range(side):
        for s in range(side):
            y, x = i - offset + r, j - offset + s
            if 0 <= y < height and 0 <= x < width:
                values[:, r, s] = image[:, y, x]
                valid[r, s] = True
    return values, valid


def project(values: np.ndarray, factor: int, patch_size: int) -> np.ndarray:
    """Block sums over factor x factor blocks divided by factor."""
    out = np.zeros((values.shape[0], patch_size, patch_size))
    for a in range(patch_size):
        for b in range(patch_size):
            block = values[:, a * factor : (a + 1) * factor, b * factor : (b + 1) * factor]
            out[:, a, b] = block.sum(axis=(1, 2)) / factor
    return out


def scale_weights(query, train, alpha, sigma, factor, patch_size):
    """``weights[i][(n, l)]`` = softmax weight of query window i on key window l of item n."""
    channels, height, width = query.shape
    side = factor * patch_size
    pixels = [(i, j) for i in range(height) for j in range(width)]
    keys = {(n, l): window(train[n], *pixels[l], side) for n in range(len(train)) for l in range(len(pixels))}
    weights = []
    for i, pixel in enumerate(pixels):
        q_values, q_valid = window(query, *pixel, side)
        logits = {}
        for (n, l), (k_values, k_valid) in keys.items():
            if np.array_equal(q_valid, k_valid):
                diff = project(q_values - alpha * k_values, factor, patch_size)
                logits[(n, l)] = -np.sum(diff**2) / (2 * sigma**2)
        peak = max(logits.values())
        total = sum(np.exp(v - peak) for v in logits.values())
        weights.append({key: np.exp(v - peak) / total for key, v in logits.items()})
    return weights


def kept(weights_i: dict, n: int, topk: int | None) -> list[tuple[int, float]]:
    """The (key window, weight) pairs of item n that count for query window i under top-k."""
    pairs = sorted(((l, w) for (m, l), w in weights_i.items() if m == n), key=lambda p: -p[1])
    return pairs if topk is None else pairs[:topk]


def oracle(queries, train, alpha, sigma, scales, topk=None, map_items=None):
    """Scores [B, N] and, for ``map_items [B, M]``, query maps, source maps and dominant source."""
    queries = np.asarray(queries, dtype=np.float64)
    train = np.asarray(train, dtype=np.float64)
    batch, _, height, width = queries.shape
    n_items = len(train)
    alpha = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (batch,))
    sigma = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (batch,))
    scores = np.zeros((batch, n_items))
    mass = np.zeros((batch, n_items, height * width))  # fused query maps of every item
    source = np.zeros((batch, n_items, height * width))
    for b in range(batch):
        for factor, patch_size, scale_weight in scales:
            weights = scale_weights(queries[b], train, alpha[b], sigma[b], factor, patch_size)
            for i, weights_i in enumerate(weights):
                for n in range(n_items):
                    for l, w in kept(weights_i, n, topk):
                        scores[b, n] += scale_weight * w
                        mass[b, n, i] += scale_weight * w
                        source[b, n, l] += scale_weight * w
    result = {"scores": scores, "dominant": mass.argmax(axis=1).reshape(batch, height, width)}
    if map_items is not None:
        rows = np.arange(batch)[:, None]
        result["query_maps"] = mass[rows, map_items].reshape(batch, -1, height, width)
        result["source_maps"] = source[rows, map_items].reshape(batch, -1, height, width)
    return result
