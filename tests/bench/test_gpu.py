"""bench/gpu.py, the one GPU benchmark script, runs end to end in its CPU dry-run mode."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_dry_run_times_every_setting_and_extrapolates_past_the_budget(tmp_path):
    out = tmp_path / "engine_cuda.json"
    subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--dry-run", "--budget", "1e-6", "--out", str(out)],
                   check=True, capture_output=True, text=True, timeout=300)
    report = json.loads(out.read_text())
    assert report["dry_run"] and {r["setting"] for r in report["rows"]} == {"2x12x12 p=5", "1x8x8 p=3"}
    for setting in {r["setting"] for r in report["rows"]}:
        first, second = [r for r in report["rows"] if r["setting"] == setting]
        assert not first["extrapolated"] and first["timed_items"] == first["n"]
        assert second["extrapolated"] and second["timed_items"] < second["n"]  # over budget: a prefix, scaled
    assert all(r["seconds"] > 0 and r["published_seconds"] > 0 for r in report["rows"])


def test_without_a_gpu_the_full_run_says_how_to_check_the_script():
    if __import__("torch").cuda.is_available():
        pytest.skip("a GPU is present: the full run would start")
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "--dry-run" in run.stderr
