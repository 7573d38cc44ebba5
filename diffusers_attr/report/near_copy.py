"""Near-copy (memorization) flags: is a generated output a copy of one training item?

An output is flagged when three pieces of evidence the attribution already holds agree:

1. **Dominance.** At the lowest attributed noise level (the finest detail the attribution sees), one
   training item carries at least ``min_share`` of the patch mass and at least ``min_ratio`` times
   the share of the runner-up. Ordinary generations spread their mass over many items (the embedded
   digits DDPM: top item 2-8%, barely above the runner-up); a copy concentrates it on one.
2. **Alignment.** Where that item is used in the output (its query map) and which regions of the item
   are used (its source map) line up: the best cosine similarity between the query map and the source
   map translated by up to ``max_shift`` map pixels is at least ``min_alignment``. The best shift is
   reported, so a translated copy still counts. A copy uses every region of the item at the place it
   came from; a new image assembled from patches of many items does not.
3. **Distance.** The output and the item's pixels, compared like with like, differ by at most
   ``max_distance`` (root mean square over the overlap, pixel values in [-1, 1]) at the best
   translation by up to ``max_shift`` map pixels (scaled to image pixels). Like with like: the
   output is prepared exactly as the index prepared its items (resized and centre-cropped to the
   index's resolution by the same code, :func:`~diffusers_attr.index.images.prepare_like_index`),
   so a 512 px copy of a training photo is compared with the 32 px item it became, not with the
   item enlarged to 512 px. The evidence says which comparison was made (``distance_basis``).

Every flag keeps the numbers and the files it was computed from (:class:`NearCopyEvidence`).
Dominance alone is available from the JSON metadata; alignment needs the maps of the
``<stem>.attribution.safetensors`` arrays; distance needs the output and the item's pixels (the index
itself, or the ``<stem>.train-k.png`` thumbnail, which for a latent index is the item decoded by the
VAE, so the distance is in pixels, not latents). An output whose dominance passes but whose other
evidence is missing is a *candidate*, never a flag.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

SCREEN_FACTOR = 0.5
"""Outputs whose JSON-estimated dominance reaches this fraction of ``min_share`` get the full check
(the JSON estimate divides by the mean total score, exact only without ``topk``)."""

_MIN_OVERLAP = 0.5
"""A translation must keep at least this fraction of the image overlapping to count."""

_SEARCH_SIDE = 64
"""Distance searches over shifts run on images at most this many pixels per side (then refined)."""


@dataclass
class NearCopyThresholds:
    """When an output counts as a near-copy of a training item (all four must hold).

    Attributes:
        min_share: the item's share of the patch mass at the lowest attributed noise level.
        min_ratio: that share divided by the runner-up's share at the same level.
        min_alignment: best cosine similarity between the item's query map and its source map
            translated by up to ``max_shift`` map pixels (1 = identical up to scale).
        max_distance: root-mean-square difference between the output and the item's pixels
            (values in [-1, 1]) at the best translation; 0.1 is about 13 grey levels of 255.
        max_shift: largest translation tried, in pixels of the maps (the model's resolution: latent
            pixels for latent models); the distance search scales it to image pixels.
    """

    min_share: float = 0.1
    min_ratio: float = 4.0
    min_alignment: float = 0.8
    max_distance: float = 0.1
    max_shift: int = 4

    def __post_init__(self) -> None:
        for name in ("min_share", "min_alignment"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}={value!r} must be a number in [0, 1]")
        if not isinstance(self.min_ratio, (int, float)) or self.min_ratio < 1.0:
            raise ValueError(f"min_ratio={self.min_ratio!r} must be a number >= 1 (the top item's share over the runner-up's)")
        if not isinstance(self.max_distance, (int, float)) or not 0.0 <= self.max_distance <= 2.0:
            raise ValueError(f"max_distance={self.max_distance!r} must be a number in [0, 2] (pixel values are in [-1, 1])")
        if isinstance(self.max_shift, bool) or not isinstance(self.max_shift, int) or self.max_shift < 0:
            raise ValueError(f"max_shift={self.max_shift!r} must be a non-negative integer (map pixels)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class NearCopyEvidence:
    """The evidence for (or against) one output being a near-copy of one training item.

    Attributes:
        output: the output's name (``<folder>/<file>``, never an absolute path; ``result-<n>`` for objects).
        path: the same name, when the output is a file (None for objects).
        item_id: the training item that dominates the lowest noise level.
        item_index: its position in the index.
        item_rank: its rank in the output's top items (1 = top source).
        level: the lowest attributed noise level ``nu = sigma / sqrt(alpha^2 + sigma^2)``.
        share: the item's share of the patch mass at that level.
        runner_up_share: the next item's share at that level.
        ratio: ``share / runner_up_share``.
        output_share: the item's share of the output's mass over all levels (its ``share`` in ``top``).
        alignment: best cosine similarity of query and translated source map (None: not checked).
        alignment_shift: ``(dy, dx)`` map pixels at the best alignment: the output shows the item
            moved down by ``dy`` and right by ``dx``.
        distance: RMS pixel difference at the best translation (None: not checked).
        distance_shift: ``(dy, dx)`` image pixels of that translation.
        distance_source: what the item's pixels came from (``index``, a thumbnail file, ``object``).
        distance_basis: at which resolution and how the two were compared.
        flagged: all thresholds hold.
        exact: dominance and maps came from the full arrays (False: estimated from the JSON top items).
        reasons: why it is not flagged, or which evidence is missing; empty for a flag.
        files: the files the evidence was read from (named like ``output``).
        pictures: PNG bytes of ``output``, ``source`` (the item), ``query_map`` and ``source_map``
            pictures, kept for reports (not serialised by :meth:`to_dict`).
    """

    output: str
    item_id: str
    item_index: int
    item_rank: int | None
    level: float
    share: float
    runner_up_share: float
    ratio: float
    output_share: float | None = None
    path: str | None = None
    alignment: float | None = None
    alignment_shift: tuple[int, int] | None = None
    distance: float | None = None
    distance_shift: tuple[int, int] | None = None
    distance_source: str | None = None
    distance_basis: str | None = None
    flagged: bool = False
    exact: bool = False
    reasons: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    pictures: dict[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def status(self) -> str:
        """``"flagged"``, ``"candidate"`` (evidence missing) or ``"cleared"`` (checked, a threshold fails)."""
        if self.flagged:
            return "flagged"
        return "candidate" if self.alignment is None or self.distance is None else "cleared"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe evidence (without the pictures; ``ratio`` is None when there is no runner-up)."""
        out = asdict(self)
        out.pop("pictures")
        out["status"] = self.status
        if not math.isfinite(self.ratio):
            out["ratio"] = None  # no runner-up (JSON has no infinity)
        for key in ("alignment_shift", "distance_shift"):
            if out[key] is not None:
                out[key] = list(out[key])
        return out

    def summary(self) -> str:
        """One line citing the evidence."""
        versus = "no runner-up" if math.isinf(self.ratio) else f"{self.ratio:.1f}x the runner-up"
        parts = [f"{self.share:.0%} of the finest-level mass (nu={self.level:.2f}), {versus}"]
        if self.alignment is not None:
            parts.append(f"maps aligned {self.alignment:.2f} at shift {tuple(self.alignment_shift)}")
        if self.distance is not None:
            basis = f", {self.distance_basis}" if self.distance_basis else ""
            parts.append(
                f"pixel RMS distance {self.distance:.3f} at shift {tuple(self.distance_shift)} ({self.distance_source}{basis})"
            )
        return "; ".join(parts)


# ----------------------------------------------------------------------------------------- evidence


def level_noise(level: dict[str, Any]) -> float | None:
    """``nu = sigma / sqrt(alpha^2 + sigma^2)`` of a level entry, or None when it is malformed."""
    try:
        alpha, sigma = float(level["alpha"]), float(level["sigma"])
    except (KeyError, TypeError, ValueError):
        return None
    norm = math.hypot(alpha, sigma)
    return sigma / norm if norm > 0 and math.isfinite(norm) else None


def dominance(level_scores: np.ndarray) -> tuple[int, float, float]:
    """``(item, share, runner_up_share)`` of one level's scores over the whole index."""
    total = float(level_scores.sum())
    if level_scores.size == 0 or total <= 0:
        return -1, 0.0, 0.0
    if level_scores.size == 1:
        return 0, 1.0, 0.0
    second, first = np.argpartition(level_scores, -2)[-2:]
    if level_scores[second] > level_scores[first]:
        first, second = second, first
    return int(first), float(level_scores[first]) / total, float(level_scores[second]) / total


def ratio(share: float, runner_up: float) -> float:
    return share / runner_up if runner_up > 0 else (math.inf if share > 0 else 0.0)


def _overlap(size: int, shift: int) -> tuple[slice, slice]:
    """Slices ``(out, src)`` so that ``out[i] == src[i - shift]`` on the overlap."""
    if shift >= 0:
        return slice(shift, size), slice(0, size - shift)
    return slice(0, size + shift), slice(-shift, size)


def map_alignment(query_map: np.ndarray, source_map: np.ndarray, max_shift: int) -> tuple[float, tuple[int, int]]:
    """Best cosine similarity between ``query_map`` and ``source_map`` translated by ``(dy, dx)``,
    ``|dy|, |dx| <= max_shift`` (``query[i, j]`` against ``source[i - dy, j - dx]``; zero outside).

    Both maps are ``[h, w]``. Returns ``(cosine, (dy, dx))``; ties go to the smallest shift.
    """
    q = np.asarray(query_map, dtype=np.float64)
    s = np.asarray(source_map, dtype=np.float64)
    if q.shape != s.shape or q.ndim != 2:
        raise ValueError(f"query and source maps must be 2-D of one shape; got {q.shape} and {s.shape}")
    norm = float(np.linalg.norm(q) * np.linalg.norm(s))
    if norm <= 0:
        return 0.0, (0, 0)
    h, w = q.shape
    best, best_shift = -1.0, (0, 0)
    for dy, dx in _shifts(min(max_shift, h - 1), min(max_shift, w - 1)):
        qy, sy = _overlap(h, dy)
        qx, sx = _overlap(w, dx)
        value = float((q[qy, qx] * s[sy, sx]).sum()) / norm
        if value > best + 1e-12:
            best, best_shift = value, (dy, dx)
    return best, best_shift


def _shifts(ry: int, rx: int) -> list[tuple[int, int]]:
    """All shifts in the window, smallest first (so ties keep the smallest)."""
    grid = [(dy, dx) for dy in range(-ry, ry + 1) for dx in range(-rx, rx + 1)]
    return sorted(grid, key=lambda d: (abs(d[0]) + abs(d[1]), d))


def pixel_distance(output: np.ndarray, item: np.ndarray, max_shift: int) -> tuple[float, tuple[int, int]]:
    """Smallest RMS difference between ``output`` and ``item`` translated by ``(dy, dx)``,
    ``|dy|, |dx| <= max_shift``, over the overlap (which must cover at least half the image).

    Arrays are ``[H, W, C]`` (or ``[H, W]``) of one shape, values in [-1, 1]. Large images are searched
    on a downsampled copy first, then refined at full resolution around the best shift.
    """
    a = np.asarray(output, dtype=np.float64)
    b = np.asarray(item, dtype=np.float64)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    if a.shape != b.shape:
        raise ValueError(f"output and item must have one shape; got {a.shape} and {b.shape}")
    h, w = a.shape[:2]
    factor = max(1, math.ceil(max(h, w) / _SEARCH_SIDE))
    if factor > 1:
        small_a, small_b = _downsample(a, factor), _downsample(b, factor)
        _, (cy, cx) = _search(small_a, small_b, range_=max(1, math.ceil(max_shift / factor)))
        centre, radius = (cy * factor, cx * factor), factor
    else:
        centre, radius = (0, 0), max_shift
    return _search(a, b, range_=radius, centre=centre, limit=max_shift)


def _search(a, b, *, range_: int, centre=(0, 0), limit: int | None = None) -> tuple[float, tuple[int, int]]:
    h, w = a.shape[:2]
    best, best_shift = math.inf, (0, 0)
    for ddy, ddx in _shifts(range_, range_):
        dy, dx = centre[0] + ddy, centre[1] + ddx
        if limit is not None and (abs(dy) > limit or abs(dx) > limit):
            continue
        if (h - abs(dy)) * (w - abs(dx)) < _MIN_OVERLAP * h * w:
            continue
        ay, by = _overlap(h, dy)
        ax, bx = _overlap(w, dx)
        value = math.sqrt(float(np.mean((a[ay, ax] - b[by, bx]) ** 2)))
        if value < best - 1e-12:
            best, best_shift = value, (dy, dx)
    return best, best_shift


def _downsample(x: np.ndarray, factor: int) -> np.ndarray:
    h, w = (x.shape[0] // factor) * factor, (x.shape[1] // factor) * factor
    x = x[:h, :w]
    return x.reshape(h // factor, factor, w // factor, factor, -1).mean(axis=(1, 3))


def pixels(image: Image.Image, mode: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """A PIL image as ``[H, W, C]`` float64 in [-1, 1] (``mode`` "L" or "RGB"; resized to ``size``)."""
    picture = image.convert(mode)
    if size is not None and picture.size != size:
        picture = picture.resize(size, Image.BICUBIC)
    array = np.asarray(picture, dtype=np.float64) / 127.5 - 1.0
    return array[..., None] if array.ndim == 2 else array


def _hwc(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().float().cpu().clamp(-1, 1).permute(1, 2, 0).numpy().astype(np.float64)


def comparable_pixels(
    output: Image.Image, item: Image.Image | torch.Tensor, space: dict[str, Any] | None
) -> tuple[np.ndarray, np.ndarray, str, tuple[float, float, float, float]]:
    """The output and a training item as ``[H, W, C]`` arrays in [-1, 1] of one shape, for
    :func:`pixel_distance`, compared like with like.

    With the index's space fingerprint (``space``) the output is prepared as the index prepared its
    items (:func:`~diffusers_attr.index.images.prepare_like_index`: same channels, same resize and
    centre crop, same normalisation) and the item is taken as stored (``item`` a ``[C, H, W]`` tensor
    of a pixel index) or as its thumbnail (a picture at the index's resolution; for a latent index the
    item decoded by the VAE). Without ``space`` both are compared at the output's size.

    Returns:
        ``(output, item, basis, region)``: ``basis`` says how they were compared, ``region`` is the part
        of ``output`` that was compared (``(left, top, right, bottom)``).
    """
    from ..attributor import to_pil
    from ..index.images import prepare_like_index, to_model_input

    if space and space.get("item_shape"):
        prepared, region = prepare_like_index(output, space)
        height, width = prepared.shape[1:]
        if isinstance(item, torch.Tensor):
            stored = item
        else:
            stored = to_model_input(item, channels=prepared.shape[0], resolution=None)
        basis = f"at the index resolution {width}x{height} (the output prepared like the index items)"
        if tuple(stored.shape) != tuple(prepared.shape):  # a thumbnail of another size: brought to the output's
            stored = torch.from_numpy(pixels(to_pil(stored[None])[0], "L" if prepared.shape[0] == 1 else "RGB", (width, height)))
            stored = stored.permute(2, 0, 1)
            basis += f"; the item's picture resized to {width}x{height}"
        return _hwc(prepared), _hwc(stored), basis, region
    mode = "L" if output.mode in ("1", "L", "LA", "I", "I;16", "F") else "RGB"
    picture = to_pil(item[None])[0] if isinstance(item, torch.Tensor) else item
    basis = f"at the output's size {output.width}x{output.height} (no index fingerprint in the result)"
    return pixels(output, mode), pixels(picture, mode, output.size), basis, (0.0, 0.0, float(output.width), float(output.height))

