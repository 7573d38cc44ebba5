"""The diffusers-attr command line, end to end on temp folders with real pipelines and files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffusers_attr import read_attribution
from diffusers_attr.cli import main
from tiny_pipelines import tiny_ddpm_pipeline


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_clean_error(code: int, err: str, message: str) -> None:
    """A non-zero exit with a one-line message and no traceback."""
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("diffusers-attr: error:") and message in lines[-1], err
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory) -> Path:
    """40 real digit images as PNG files in class subfolders, plus a caption."""
    from sklearn.datasets import load_digits

    root = tmp_path_factory.mktemp("digits")
    bunch = load_digits()
    for i in range(40):
        folder = root / str(bunch.target[i])
        folder.mkdir(exist_ok=True)
        pixels = (bunch.images[i] / 16 * 255).astype(np.uint8)
        Image.fromarray(pixels).resize((8, 8)).save(folder / f"digit-{i:02d}.png")
    (root / "0" / "digit-00.txt").write_text("a handwritten zero")
    return root


@pytest.fixture(scope="module")
def ddpm_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ddpm-pipeline")
    tiny_ddpm_pipeline().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def pixel_index(digits_folder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("indexes") / "digits"
    assert main(["index", "build", str(digits_folder), "--out", str(out), "--channels", "1"]) == 0
    return out


def test_entry_point_and_help():
    for argv in ([], ["demo"], ["index", "build"], ["generate"], ["attribute"], ["show"]):
        result = subprocess.run(
            [sys.executable, "-m", "diffusers_attr", *argv, "--help"], capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        assert "usage: diffusers-attr" in result.stdout
        if argv:
            assert "examples:" in result.stdout
    if shutil.which("diffusers-attr"):
        assert subprocess.run(["diffusers-attr", "--help"], capture_output=True, timeout=120).returncode == 0


def test_index_build_info_verify(capsys, pixel_index, digits_folder):
    code, out, _ = run(capsys, "index", "info", pixel_index)
    assert code == 0 and "40 of shape (1, 8, 8)" in out and "pixel" in out and "labels:     10 distinct" in out
    code, out, _ = run(capsys, "index", "verify", pixel_index)
    assert code == 0 and out.startswith("OK: 40 items")


def test_index_verify_finds_a_corrupted_shard(capsys, pixel_index, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(pixel_index, broken)
    shard = next(broken.glob("*.safetensors"))
    data = bytearray(shard.read_bytes())
    data[-3] ^= 0xFF
    shard.write_bytes(bytes(data))
    code, _, err = run(capsys, "index", "verify", broken)
    assert_clean_error(code, err, "SHA-256 does not match")


def test_generate_attribute_show_with_a_pixel_pipeline(capsys, ddpm_folder, pixel_index, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = run(
        capsys, "generate", ddpm_folder, "--index", pixel_index, "--out", out, "--num-images", "2", "--steps", "3",
        "--patch-size", "3", "--timesteps", "300", "600",
    )
    assert code == 0, err
    pngs = sorted(p for p in out.glob("image-*.png") if p.stem.count(".") == 0)
    assert [p.name for p in pngs] == ["image-000.png", "image-001.png"]
    assert (out / "index.html").exists() and "report: file://" in stdout
    metadata = read_attribution(pngs[0])
    assert metadata["index"]["items"] == 40 and len(metadata["levels"]) == 2
    assert metadata["top"][0]["metadata"]["label"] in {str(d) for d in range(10)}

    code, stdout, _ = run(capsys, "show", pngs[0])
    assert code == 0 and metadata["top"][0]["id"] in stdout and "rank" in stdout
    code, stdout, _ = run(capsys, "show", pngs[0], "--json")
    assert code == 0 and json.loads(stdout) == metadata

    attributed = tmp_path / "attributed"
    code, stdout, err = run(capsys, "attribute", pngs[0], "--index", pixel_index, "--out", attributed, "--patch-size", "3")
    assert code == 0, err
    assert read_attribution(attributed / "image-000.png")["config"]["mode"] == "renoise"


def test_latent_pipeline_index_build_and_generate(capsys, sd_folder, photo_folder, tmp_path):
    index = tmp_path / "sd-index"
    code, stdout, err = run(capsys, "index", "build", photo_folder, "--out", index, "--pipeline", sd_folder, "--resolution", "16")
    assert code == 0, err
    assert "5 items of shape (4, 8, 8) (latent space)" in stdout
    out = tmp_path / "sd-run"
    code, stdout, err = run(
        capsys, "generate", sd_folder, "--index", index, "--out", out, "--prompt", "a cat", "--num-images", "2",
        "--steps", "2", "--height", "16", "--width", "16", "--patch-size", "3",
    )
    assert code == 0, err
    with Image.open(out / "image-001.png") as image, Image.open(out / "image-001.heatmap-1.png") as heatmap:
        assert image.size == (16, 16) and heatmap.size == (16, 16)
    assert read_attribution(out / "image-001.png")["index"]["space"]["kind"] == "latent"

    code, _, err = run(capsys, "attribute", out / "image-000.png", "--index", index, "--out", tmp_path / "a")
    assert_clean_error(code, err, "pass the pipeline")


def test_bad_input_is_one_clear_line(capsys, tmp_path, pixel_index, sd_folder, ddpm_folder):
    code, _, err = run(capsys, "index", "build", tmp_path / "missing", "--out", tmp_path / "x")
    assert_clean_error(code, err, "does not exist")

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    code, _, err = run(capsys, "index", "build", empty, "--out", tmp_path / "y")
    assert_clean_error(code, err, "no image files in training folder")
    assert not (tmp_path / "y").exists()

    not_a_pipeline = tmp_path / "not-a-pipeline"
    not_a_pipeline.mkdir()
    code, _, err = run(capsys, "generate", not_a_pipeline, "--index", pixel_index, "--out", tmp_path / "z")
    assert_clean_error(code, err, "not a diffusers pipeline folder")

    code, _, err = run(capsys, "generate", sd_folder, "--index", pixel_index, "--prompt", "x", "--out", tmp_path / "w")
    assert_clean_error(code, err, "built in a different space")

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = run(capsys, "generate", ddpm_folder, "--index", pixel_index, "--out", blocker / "sub")
    assert_clean_error(code, err, "cannot write to output folder")

    code, _, err = run(capsys, "show", tmp_path / "missing.png")
    assert_clean_error(code, err, "does not exist")


def test_demo_runs_the_whole_job_offline(capsys, tmp_path):
    out = tmp_path / "demo"
    code, stdout, err = run(capsys, "demo", "--out", out, "--num-images", "2", "--steps", "10")
    assert code == 0, err
    for stem in ("image-000", "image-001"):
        metadata = read_attribution(out / f"{stem}.png")
        assert metadata["index"]["items"] == 1000 and metadata["top"][0]["id"].startswith("digits-")
        assert metadata["top"][0]["metadata"]["licence"] == "BSD-3-Clause"
        for suffix in (".attribution.json", ".heatmap-1.png", ".source-1.png", ".collage.png", ".card.png"):
            assert (out / f"{stem}{suffix}").exists()
    assert (out / "index.html").exists() and (out / "index" / "index.json").exists()
    assert "open the report: file://" in stdout
    code, stdout, _ = run(capsys, "index", "info", out / "index")
    assert code == 0 and "1000 of shape (1, 16, 16)" in stdout


def test_index_build_from_the_builtin_digits(capsys, tmp_path):
    code, stdout, err = run(capsys, "index", "build", "sklearn-digits", "--out", tmp_path / "digits")
    assert code == 0, err
    assert "wrote 1000 items of shape (1, 16, 16) (pixel space)" in stdout


def test_index_build_from_a_saved_dataset(capsys, tmp_path):
    from datasets import Dataset, Features, Image as ImageFeature, Value
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = [Image.fromarray((bunch.images[i] / 16 * 255).astype(np.uint8)) for i in range(12)]
    features = Features({"image": ImageFeature(), "label": Value("int64"), "licence": Value("string")})
    dataset = Dataset.from_dict({"image": images, "label": bunch.target[:12].tolist(), "licence": ["BSD-3-Clause"] * 12}, features=features)
    dataset.save_to_disk(tmp_path / "dataset")
    code, stdout, err = run(capsys, "index", "build", tmp_path / "dataset", "--out", tmp_path / "index", "--channels", "1")
    assert code == 0, err
    assert "wrote 12 items of shape (1, 8, 8)" in stdout
    from diffusers_attr import AttributionIndex

    index = AttributionIndex.load(tmp_path / "index")
    assert index.metadata[3]["label"] == int(bunch.target[3]) and index.metadata[3]["licence"] == "BSD-3-Clause"
