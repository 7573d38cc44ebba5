"""The engine's CPU thread policy: the cores other processes leave free, or the number asked for."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import torch

from diffusers_attr.threads import choose_threads, cpu_threads, free_cores, other_busy_cores, usable_cores


def test_a_busy_process_is_seen_and_its_core_left_to_it():
    competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert other_busy_cores(0.3) >= 0.7  # it, and anything else running, keeps at least most of a core busy
        assert free_cores() <= max(1, usable_cores() - 1)
    finally:
        competitor.kill()
        competitor.wait()
    assert 1 <= free_cores() <= usable_cores()


def test_threads_given_are_used_and_torch_restored():
    before = torch.get_num_threads()
    with cpu_threads(1) as threads:
        assert threads == torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with cpu_threads(None, device="meta") as threads:  # another device: the CPU setting is left alone
        assert threads == before == torch.get_num_threads()
    assert choose_threads(3) == 3
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="must be a positive integer"):
            choose_threads(bad)


def test_attribution_runs_on_the_threads_asked_for():
    from diffusers_attr.attributor import Attributor
    from diffusers_attr.config import AttributionConfig
    from diffusers_attr.index import AttributionIndex

    seen = []

    class Recording(AttributionIndex):
        def iter_chunks(self, chunk_size):
            seen.append(torch.get_num_threads())
            yield from super().iter_chunks(chunk_size)

    train = torch.rand(6, 1, 8, 8) * 2 - 1
    plain = AttributionIndex.from_images(train, progress=False)
    index = Recording([train.numpy()], plain.ids, plain.metadata, plain.space)
    before = torch.get_num_threads()
    for threads in (1, 2):
        attributor = Attributor(index, AttributionConfig(threads=threads, progress=False, sigmas=[0.5]))
        attributor.renoise(train[:1], [0.5], [None])
        assert seen and set(seen) == {threads}
        seen.clear()
    assert torch.get_num_threads() == before
