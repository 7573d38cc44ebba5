"""The shape of attribution metadata (``Attribution.to_dict()``), checked before anything reads it.

Metadata comes from files anyone can write. :func:`check_attribution` accepts exactly what the
readers (``show``, the run report, :func:`~diffusers_attr.report.aggregate`, the model card) rely on,
and raises a ``ValueError`` naming the first field that is wrong otherwise: every ``top`` position
lies inside the index the same metadata describes (``index.items``), every number is finite, shares
lie in [0, 1] and sum to at most 1, no item is listed twice, noise levels have ``alpha^2 + sigma^2 > 0``.
"""

from __future__ import annotations

import math
from typing import Any

SHARE_SLACK = 1e-6
"""Rounding allowed on shares (each in [0, 1], their sum at most 1)."""


def check_attribution(metadata: Any) -> dict[str, Any]:
    """``metadata`` when it has the shape of ``Attribution.to_dict()``; ``ValueError`` naming what is wrong."""
    if not isinstance(metadata, dict):
        raise ValueError(f"expected a JSON object, got {type(metadata).__name__}")
    if metadata.get("format") != "diffusers-attr":
        raise ValueError(f"format={metadata.get('format')!r}, expected 'diffusers-attr'")
    for key in ("config", "index"):
        if not isinstance(metadata.get(key, {}), dict):
            raise ValueError(f"'{key}' is not an object")
    for key in ("model", "scheduler", "origin"):
        if not isinstance(metadata.get(key, ""), str):
            raise ValueError(f"'{key}' is not a string")
    index = metadata.get("index", {})
    items = index.get("items")
    if not _is_int(items) or items < 1:
        raise ValueError(f"index.items={items!r} is not a positive number of index items")
    if not isinstance(index.get("space", {}), dict):
        raise ValueError("index.space is not an object")
    _check_top(metadata.get("top"), items)
    _check_levels(metadata.get("levels", []), len(metadata["top"]))
    total = metadata.get("total_score", 0.0)
    if not _is_number(total) or total < 0:
        raise ValueError(f"total_score={total!r} is not a finite non-negative number")
    region = metadata.get("region")
    if region is not None and not (isinstance(region, list) and len(region) == 4 and all(map(_is_number, region))
                                   and region[0] < region[2] and region[1] < region[3]):
        raise ValueError(f"region={region!r} is not [left, top, right, bottom]")
    return metadata


def _check_top(top: Any, items: int) -> None:
    if not isinstance(top, list):
        raise ValueError("'top' is missing or not a list")
    seen: set[int] = set()
    total_share = 0.0
    for position, item in enumerate(top):
        where = f"top[{position}]"
        if not isinstance(item, dict) or not isinstance(item.get("id"), (str, int)) or isinstance(item.get("id"), bool):
            raise ValueError(f"{where} is not an item with an 'id'")
        index = item.get("index")
        if not _is_int(index) or not 0 <= index < items:
            raise ValueError(f"{where}.index={index!r} is not a position in an index of {items} items")
        if index in seen:
            raise ValueError(f"{where}.index={index} is listed twice")
        seen.add(index)
        if not _is_int(item.get("rank", 1)):
            raise ValueError(f"{where}.rank={item.get('rank')!r} is not an integer")
        score, share = item.get("score", 0.0), item.get("share", 0.0)
        if not _is_number(score):
            raise ValueError(f"{where}.score={score!r} is not a finite number")
        if not _is_number(share) or not -SHARE_SLACK <= share <= 1 + SHARE_SLACK:
            raise ValueError(f"{where}.share={share!r} is not a share in [0, 1]")
        total_share += share
        if not isinstance(item.get("metadata", {}), dict):
            raise ValueError(f"{where}.metadata is not an object")
    if total_share > 1 + SHARE_SLACK * max(1, len(top)):
        raise ValueError(f"the top items' shares sum to {total_share:.3g}, more than all of the mass")


def _check_levels(levels: Any, count: int) -> None:
    if not isinstance(levels, list):
        raise ValueError("'levels' is not a list")
    for position, level in enumerate(levels):
        where = f"levels[{position}]"
        if not isinstance(level, dict):
            raise ValueError(f"{where} is not an object")
        alpha, sigma = level.get("alpha"), level.get("sigma")
        if not (_is_number(alpha) and _is_number(sigma)) or math.hypot(alpha, sigma) == 0:
            raise ValueError(f"{where} has alpha={alpha!r}, sigma={sigma!r}: not a noise level")
        scores = level.get("top_scores", [])
        if not (isinstance(scores, list) and len(scores) in (0, count) and all(map(_is_number, scores))):
            raise ValueError(f"{where}.top_scores is not a list of {count} finite numbers")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
