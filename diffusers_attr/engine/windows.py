"""Patch windows: one window per pixel, their boundary classes and the multiscale projection.

A window of side ``w = factor * patch_size`` sits at every pixel with its top-left corner at
``(i - o, j - o)``, ``o = (w - 1) // 2``; entries outside the image are zero. Two windows compete in a
softmax only when they have the same set of in-image entries (the same *boundary class*). The set is a
product of a row range and a column range, so a class is a pair (row class, column class): interior
rows form one class and each of the ``w - 1`` border rows is a class of its own (same for columns).

The projection ``B`` maps a window onto its ``factor x factor`` block sums divided by ``factor``:
orthonormal rows, so isotropic noise keeps its variance per dimension.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Scale:
    """One scale of the multiscale score: windows of side ``factor * patch_size`` projected to
    ``patch_size x patch_size`` block sums, contributing ``weight`` times its score."""

    factor: int
    patch_size: int
    weight: float = 1.0

    @property
    def window(self) -> int:
        """Side of the raw window in pixels."""
        return self.factor * self.patch_size

    @property
    def offset(self) -> int:
        """Distance from a window's anchor pixel to its top-left corner."""
        return (self.window - 1) // 2


def _line_classes(length: int, window: int, offset: int) -> list[list[int]]:
    """Group the positions 0..length-1 of one axis by their range of in-image window offsets."""
    classes: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i in range(length):
        valid = (max(0, offset - i), min(window, length - i + offset))
        classes[valid].append(i)
    return list(classes.values())


def boundary_class_groups(height: int, width: int, scale: Scale) -> list[torch.Tensor]:
    """Window positions (flattened ``i * width + j``) grouped by boundary class.

    Classes with the same number of windows are stacked, so the result is a short list of
    ``LongTensor [n_classes, class_size]``; every position appears exactly once.
    """
    rows = _line_classes(height, scale.window, scale.offset)
    cols = _line_classes(width, scale.window, scale.offset)
    by_size: dict[int, list[list[int]]] = defaultdict(list)
    for row_class in rows:
        for col_class in cols:
            positions = [i * width + j for i in row_class for j in col_class]
            by_size[len(positions)].append(positions)
    return [torch.tensor(classes, dtype=torch.long) for _, classes in sorted(by_size.items())]


def project_windows(images: torch.Tensor, scale: Scale) -> torch.Tensor:
    """Projected windows ``B z_i`` of every pixel of ``images [B, C, H, W]`` -> ``[B, H*W, C*p*p]``."""
    w, o, f = scale.window, scale.offset, scale.factor
    padded = F.pad(images, (o, w - 1 - o, o, w - 1 - o))
    if f > 1:
        # f x f block sums divided by f == f x f mean times f.
        padded = F.avg_pool2d(padded, kernel_size=f, stride=1) * f
    columns = F.unfold(padded, kernel_size=scale.patch_size, dilation=f)
    return columns.transpose(1, 2)
