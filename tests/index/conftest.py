"""Shared fixtures: real digit images (sklearn), folders of PNG files, tiny seeded VAEs."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from PIL import Image


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """sklearn's 8x8 digits as uint8 images ``[1797, 8, 8]`` (0..255) and their labels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.images * 255 / 16).round().astype(np.uint8), data.target


@pytest.fixture
def digit_images(digits) -> list[Image.Image]:
    """The first 12 digits as grayscale PIL images."""
    return [Image.fromarray(array, mode="L") for array in digits[0][:12]]


@pytest.fixture
def digits_folder(tmp_path: Path, digits) -> Path:
    """``train/<label>/img_<k>.png`` for labels 0, 1, 2 (4 images each); a caption for ``0/img_00.png``."""
    images, labels = digits
    root = tmp_path / "train"
    counts: dict[int, int] = {}
    for array, label in zip(images, labels):
        if label > 2 or counts.get(label, 0) == 4:
            continue
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array, mode="L").save(folder / f"img_{counts.get(label, 0):02d}.png")
        counts[label] = counts.get(label, 0) + 1
        if sum(counts.values()) == 12:
            break
    (root / "0" / "img_00.txt").write_text("a handwritten zero\n", encoding="utf-8")
    return root


@pytest.fixture
def make_vae() -> Callable[[int], torch.nn.Module]:
    """A function ``seed -> tiny AutoencoderKL`` (3 -> 4 channels, downsampling by 2)."""

    from tiny_pipelines import tiny_vae

    return tiny_vae


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run each test on one intra-op thread: the tiny convolutions here are slower with more, and far
    slower (OpenMP spin-waiting) when the CPU cores are shared with other jobs."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
