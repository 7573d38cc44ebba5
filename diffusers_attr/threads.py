"""How many CPU threads the attribution engine uses: the cores that are free, not one per core.

torch starts one thread per core. The engine runs many short parallel kernels and each waits for its
slowest thread, so as soon as another process holds a core, a thread of every kernel waits for its
turn on that core: measured on 2 cores, one busy competitor made the engine with 2 threads 10-20x
slower than with 1 (``docs/benchmarks.md``, "Engine threads on a shared machine"). By default the
engine therefore uses the cores that are free when it starts: the cores this process may run on
(``os.sched_getaffinity`` and the cgroup CPU quota) minus the cores that *other* processes kept busy
during a short look at ``/proc/stat`` (this process's own CPU time is left out), at least one.
Pass ``threads=`` (``--threads`` on the command line) to choose yourself.

Only ``os`` and ``torch`` are used, so the policy works wherever the engine does; where ``/proc``
is missing (not Linux) the usable cores minus the 1-minute load average are used instead.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

SAMPLE_SECONDS = 0.05
"""How long :func:`free_cores` watches the machine."""


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity, capped by a cgroup v2 CPU quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def _busy_ticks() -> tuple[int, int] | None:
    """``(busy, total)`` clock ticks of all CPUs since boot, from the first line of ``/proc/stat``."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    if len(fields) < 5:
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user time
    return total - idle, total


def other_busy_cores(seconds: float = SAMPLE_SECONDS) -> float:
    """How many cores processes other than this one kept busy over the next ``seconds``."""
    start, own_start, wall_start = _busy_ticks(), time.process_time(), time.perf_counter()
    if start is None:
        return max(0.0, os.getloadavg()[0] - 1.0) if hasattr(os, "getloadavg") else 0.0
    time.sleep(seconds)
    end, own, wall = _busy_ticks(), time.process_time() - own_start, time.perf_counter() - wall_start
    if end is None or end[1] <= start[1]:
        return 0.0
    tick = 1.0 / os.sysconf("SC_CLK_TCK")
    busy = (end[0] - start[0]) * tick - own
    return max(0.0, busy / wall)


def free_cores(seconds: float = SAMPLE_SECONDS) -> int:
    """The usable cores minus those other processes keep busy (rounded), at least one."""
    return max(1, usable_cores() - round(other_busy_cores(seconds)))


def choose_threads(threads: int | None = None) -> int:
    """``threads`` when given (checked), else :func:`free_cores`."""
    if threads is None:
        return free_cores()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads={threads!r} must be a positive integer, or None to use the free cores")
    return threads


@contextmanager
def cpu_threads(threads: int | None = None, device: str | torch.device | None = None) -> Iterator[int]:
    """Run the block with torch using :func:`choose_threads` ``(threads)`` CPU threads, then restore
    torch's setting. On another device the CPU setting is left alone. Yields the thread count.

    Example:
        >>> with cpu_threads(1) as threads:
        ...     threads, torch.get_num_threads()
        (1, 1)
    """
    if device is not None and torch.device(device).type != "cpu":
        yield torch.get_num_threads()
        return
    chosen = choose_threads(threads)
    before = torch.get_num_threads()
    if chosen != before:
        torch.set_num_threads(chosen)
    try:
        yield chosen
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
