"""Shared test setup.

``TRITON_INTERPRET=1`` is set (unless given) so Triton kernels run in its interpreter.
``tests/`` goes on ``sys.path`` so any test module, in any subfolder, can ``import tiny_pipelines`` (tiny
seeded diffusers pipelines built from configs); the repository root goes there too, so the tests run
without installing the package.
"""

import os
import sys
from pathlib import Path

import pytest

# Triton reads this when it is first imported (diffusers imports it): the fused kernel's tests run in
# Triton's CPU interpreter. The real CUDA launch test starts its own process without it.
os.environ.setdefault("TRITON_INTERPRET", "1")

TESTS = Path(__file__).resolve().parent
for path in (TESTS, TESTS.parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


def pytest_configure(config):
    # diffusers' schedulers call numpy with torch tensors; numpy 2 warns on every call.
    config.addinivalue_line("filterwarnings", "ignore:__array__ implementation doesn't accept a copy keyword")
    config.addinivalue_line("filterwarnings", "ignore:__array_wrap__ must accept context")


@pytest.fixture(scope="session")
def sd_folder(tmp_path_factory):
    """A tiny Stable Diffusion pipeline saved with ``save_pretrained`` (16x16 images, 4x8x8 latents)."""
    from tiny_pipelines import tiny_sd_pipeline

    folder = tmp_path_factory.mktemp("sd-pipeline")
    tiny_sd_pipeline().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory):
    """Five real photos (scikit-image's CC0 set) as PNG files."""
    from PIL import Image
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    for name in ("astronaut", "coffee", "chelsea", "rocket", "camera"):
        Image.fromarray(getattr(data, name)()).convert("RGB").save(folder / f"{name}.png")
    return folder


@pytest.fixture
def count_steps(monkeypatch):
    """``count_steps(SchedulerClass)`` -> a list that gets one entry per ``step`` call of that class
    (calls pass through unchanged), to show that something happened before any denoising step."""
    import functools

    def count(scheduler_class) -> list:
        calls: list = []
        original = scheduler_class.step

        @functools.wraps(original)
        def step(self, *args, **kwargs):
            calls.append(1)
            return original(self, *args, **kwargs)

        monkeypatch.setattr(scheduler_class, "step", step)
        return calls

    return count
