"""Random training subsets and a resumable driver that trains one model per subset.

Layout of ``out_dir`` (one folder per subset; a folder counts as finished only once its ``DONE``
marker exists, written after the training function returned, so an interrupted run restarts or
resumes that subset and skips every finished one)::

    out_dir/
      masks.npy             the subset masks (checked on resume: a different draw raises)
      subset-000/ ... DONE  whatever the training function wrote, plus the marker
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

__all__ = ["subset_masks", "train_subset_models", "subset_dir", "finished_subsets"]

DONE_FILE = "DONE"


def subset_masks(n_train: int, n_subsets: int, fraction: float = 0.5, seed: int = 0) -> np.ndarray:
    """``[n_subsets, n_train]`` bool: each row holds exactly ``round(fraction * n_train)`` random items
    (rows independent, seeded with ``numpy.random.default_rng(seed)``)."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    if n_train < 2 or n_subsets < 1:
        raise ValueError("need n_train >= 2 and n_subsets >= 1")
    k = int(round(fraction * n_train))
    k = min(max(k, 1), n_train - 1)
    rng = np.random.default_rng(seed)
    masks = np.zeros((n_subsets, n_train), dtype=bool)
    for s in range(n_subsets):
        masks[s, rng.choice(n_train, size=k, replace=False)] = True
    return masks


def subset_dir(out_dir: str | os.PathLike, s: int) -> Path:
    return Path(out_dir) / f"subset-{s:03d}"


def finished_subsets(out_dir: str | os.PathLike, n_subsets: int) -> list[int]:
    """Indices of subsets whose model is finished (``DONE`` marker present)."""
    return [s for s in range(n_subsets) if (subset_dir(out_dir, s) / DONE_FILE).is_file()]


def train_subset_models(
    masks: np.ndarray,
    train_fn: Callable[[np.ndarray, Path], object],
    out_dir: str | os.PathLike,
    *,
    subsets: Iterable[int] | None = None,
    after_each: Callable[[int, Path], None] | None = None,
    log: Callable[[str], None] | None = print,
) -> list[Path]:
    """Train one model per subset with ``train_fn(indices, folder)``, resumably.

    Parameters:
        masks: ``[n_subsets, n_train]`` bool (see :func:`subset_masks`); saved to ``out_dir/masks.npy``
            and checked against it on resume.
        train_fn: called as ``train_fn(indices, folder)`` with the sorted training indices of the
            subset and the folder to save the model in. It may itself resume from a checkpoint in
            ``folder`` (``train_ddpm`` does).
        subsets: which subsets to train (default all, in order).
        after_each: called as ``after_each(s, folder)`` after a model is trained and before its ``DONE``
            marker is written (e.g. to measure and save its losses), so both are redone together.
        log: progress messages (None: silent).

    Returns:
        the folders of the requested subsets.
    """
    masks = np.asarray(masks, dtype=bool)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "masks.npy"
    if saved.is_file():
        previous = np.load(saved)
        if previous.shape[1] != masks.shape[1] or not np.array_equal(previous[: len(masks)], masks[: len(previous)]):
            raise ValueError(f"{saved} holds different subset masks; use another out_dir or delete it")
        if len(masks) > len(previous):
            np.save(saved, masks)
    else:
        np.save(saved, masks)
    todo = list(range(len(masks))) if subsets is None else list(subsets)
    folders = []
    for s in todo:
        folder = subset_dir(out, s)
        folders.append(folder)
        if (folder / DONE_FILE).is_file():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        indices = np.flatnonzero(masks[s])
        train_fn(indices, folder)
        if after_each is not None:
            after_each(s, folder)
        seconds = time.perf_counter() - t0
        (folder / DONE_FILE).write_text(json.dumps({"subset": s, "n_items": int(len(indices)), "seconds": seconds}) + "\n")
        if log is not None:
            done = len(finished_subsets(out, len(masks)))
            log(f"subset {s}: {len(indices)} items, {seconds:.0f}s ({done}/{len(masks)} finished)")
    return folders
