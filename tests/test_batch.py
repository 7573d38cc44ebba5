"""Resumable batch jobs: real processes (alone and two under torchrun) killed with SIGKILL mid-way and
rerun, against one uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffusers_attr.batch import done_keys, folder_items, run_batch

JOB = Path(__file__).resolve().parent / "batch_job.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    for i in range(9):
        Image.fromarray(rng.integers(0, 256, (6, 5), dtype=np.uint8)).save(folder / f"img{i}.png")
    return folder


def job(inputs: Path, out: Path, *args: str, world: int = 1) -> subprocess.CompletedProcess:
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(world), "--master-port", "0"] \
        if world > 1 else [sys.executable]
    return subprocess.run([*launch, str(JOB), str(inputs), str(out), *args], capture_output=True, text=True,
                          env=ENV, timeout=120)


def ran(done: subprocess.CompletedProcess) -> list[str]:
    assert done.returncode == 0, done.stderr
    return sorted(key for line in done.stdout.splitlines() if line.startswith("{") for key in json.loads(line)["ran"])


def outputs(out: Path) -> dict[str, bytes]:
    """Every output file's bytes, by its path under ``out`` (the .batch state left out)."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and ".batch" not in p.parts}


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("reference")
    assert ran(job(inputs, out)) == [f"img{i}" for i in range(9)]
    return outputs(out)


@pytest.mark.parametrize("when", ["work", "logged"])
def test_a_killed_job_resumes_with_identical_results(inputs, reference, tmp_path, when):
    killed = job(inputs, tmp_path, "--kill-at", "img4", "--kill-when", when)
    assert killed.returncode == -signal.SIGKILL
    assert done_keys(tmp_path) == {f"img{i}" for i in range(4)}  # img4 in flight: not logged
    assert (tmp_path / "img4").is_dir() == (when == "logged")  # never half there
    redone = ran(job(inputs, tmp_path))
    # in flight in its staging folder: computed again; renamed into place: complete, only logged
    assert redone == [f"img{i}" for i in range(4 if when == "work" else 5, 9)]
    assert outputs(tmp_path) == reference
    assert done_keys(tmp_path) == {f"img{i}" for i in range(9)}
    assert ran(job(inputs, tmp_path)) == []  # all done: nothing again
    assert list((tmp_path / ".batch").glob("*.partial")) == []


def test_two_ranks_under_torchrun_killed_and_resumed(inputs, reference, tmp_path):
    # rank 1 holds img1, img3, img5, img7; killing it makes torchrun end rank 0 too
    killed = job(inputs, tmp_path, "--kill-at", "img5", world=2)
    assert killed.returncode != 0
    assert "img5" not in done_keys(tmp_path)
    assert {"img1", "img3"} <= done_keys(tmp_path)
    redone = ran(job(inputs, tmp_path, world=2))
    assert "img5" in redone and not {"img1", "img3"} & set(redone)
    assert outputs(tmp_path) == reference
    assert ran(job(inputs, tmp_path)) == []  # one process sees both ranks' logs


def test_items_are_split_round_robin_and_keys_checked(tmp_path):
    seen: list[tuple[int, str]] = []
    for rank in range(3):
        result = run_batch(list("abcdefg"), lambda item, staging, r=rank: seen.append((r, item)), tmp_path,
                           rank=rank, world_size=3, progress=False)
        assert result.ran == list("abcdefg")[rank::3]
    assert sorted(item for _, item in seen) == list("abcdefg")
    with pytest.raises(ValueError, match="same key 'x'"):
        run_batch(["x", "x"], lambda item, staging: None, tmp_path / "dup", rank=0, world_size=1)
    with pytest.raises(ValueError, match="cannot name an output folder"):
        run_batch(["../up"], lambda item, staging: None, tmp_path / "bad", rank=0, world_size=1)
    with pytest.raises(ValueError, match="rank=2"):
        run_batch(["a"], lambda item, staging: None, tmp_path, rank=2, world_size=2)
    with pytest.raises(TypeError, match="key="):
        run_batch([1], lambda item, staging: None, tmp_path, rank=0, world_size=1)


def test_a_failing_item_is_named_and_stays_pending(tmp_path):
    def work(item: str, staging: Path) -> None:
        (staging / "out.txt").write_text(item)
        if item == "b":
            raise OSError("disk full")

    with pytest.raises(RuntimeError, match=r"batch item 'b' \('b'\) failed on rank 0: OSError: disk full"):
        run_batch(["a", "b", "c"], work, tmp_path, rank=0, world_size=1, progress=False)
    assert done_keys(tmp_path) == {"a"}
    assert not (tmp_path / "b").exists() and not (tmp_path / ".batch" / "b.partial").exists()
    result = run_batch(["a", "b", "c"], lambda item, staging: (staging / "out.txt").write_text(item), tmp_path,
                       rank=0, world_size=1, progress=False)
    assert (result.ran, result.skipped) == (["b", "c"], ["a"])
    assert (tmp_path / "c" / "out.txt").read_text() == "c"


def test_folder_items_are_sorted_and_filtered(inputs, tmp_path):
    assert [p.name for p in folder_items(inputs, (".PNG",))] == [f"img{i}.png" for i in range(9)]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        folder_items(tmp_path / "missing", (".png",))


def test_a_log_line_cut_short_by_a_kill_does_not_count(tmp_path):
    (tmp_path / ".batch").mkdir()
    (tmp_path / ".batch" / "done-rank0.log").write_text("a\nb")  # "b" never ended: it was being written
    assert done_keys(tmp_path) == {"a"}
    result = run_batch(["a", "b"], lambda item, staging: (staging / "x").write_text(item), tmp_path,
                       rank=0, world_size=1, progress=False)
    assert (result.ran, result.skipped) == (["b"], ["a"])
    assert (tmp_path / ".batch" / "done-rank0.log").read_text() == "a\nb\nb\n"
    assert done_keys(tmp_path) == {"a", "b"}
