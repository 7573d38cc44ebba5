"""The diffusers-attr command line, end to end on temp folders with real pipelines and files."""

from __future__ import annotations

import json
import os
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
        assert image.size == (16, 16) and heatmap.width == 256  # drawn 16x larger, with a legend below
    assert read_attribution(out / "image-001.png")["index"]["space"]["kind"] == "latent"

    code, _, err = run(capsys, "attribute", out / "image-000.png", "--index", index, "--out", tmp_path / "a")
    assert_clean_error(code, err, "pass the pipeline")


def test_generate_refuses_a_mismatched_index_before_the_first_step(capsys, count_steps, ddpm_folder, digits_folder, sd_folder, tmp_path):
    from diffusers import DDIMScheduler, DDPMScheduler

    steps = count_steps(DDPMScheduler) + count_steps(DDIMScheduler)
    index = tmp_path / "digits-16"
    assert main(["index", "build", str(digits_folder), "--out", str(index), "--channels", "1", "--resolution", "16"]) == 0
    code, _, err = run(capsys, "generate", ddpm_folder, "--index", index, "--steps", "1000", "--out", tmp_path / "run")
    assert_clean_error(code, err, "DDPMPipeline samples pixels of shape (C, H, W) = (1, 8, 8) but the index holds "
                                  "items of shape (1, 16, 16): build the index with channels=1, resolution=8")

    sd_index = tmp_path / "sd-index"
    assert main(["index", "build", str(digits_folder), "--out", str(sd_index), "--pipeline", str(sd_folder), "--resolution", "16"]) == 0
    code, _, err = run(capsys, "generate", sd_folder, "--index", sd_index, "--prompt", "a cat", "--steps", "1000",
                       "--height", "32", "--width", "32", "--out", tmp_path / "run")
    assert_clean_error(code, err, "samples AutoencoderKL latents of shape (C, H, W) = (4, 16, 16) but the index holds "
                                  "items of shape (4, 8, 8)")
    assert steps == [] and not list((tmp_path / "run").glob("*.png"))


def test_index_build_finds_an_autoencoder_not_called_vae(capsys, photo_folder, tmp_path):
    from tiny_families import ldm_unconditional

    folder = tmp_path / "ldm"
    ldm_unconditional()[0].save_pretrained(folder)
    index = tmp_path / "ldm-index"
    code, stdout, err = run(capsys, "index", "build", photo_folder, "--out", index, "--pipeline", folder, "--resolution", "16")
    assert code == 0, err
    assert "5 items of shape (3, 8, 8) (latent space)" in stdout
    code, _, err = run(capsys, "generate", folder, "--index", index, "--steps", "2", "--patch-size", "3", "--out", tmp_path / "run")
    assert code == 0, err
    assert read_attribution(tmp_path / "run" / "image-000.png")["index"]["space"]["vae_class"] == "VQModel"


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
    # again, with one image: the previous run is replaced, not added to (nor counted twice by `report`)
    code, stdout, err = run(capsys, "demo", "--out", out, "--num-images", "1", "--steps", "2", "--timesteps", "300")
    assert code == 0 and "replaced the previous demo run" in stdout, err
    assert sorted(p.name for p in out.glob("image-*") if p.name.startswith("image-001")) == []
    code, stdout, _ = run(capsys, "report", out)
    assert code == 0 and stdout.startswith("1 outputs aggregated"), stdout


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


def _texts(folder: Path) -> dict[str, str]:
    """The text of every file under ``folder`` that a person could read or publish: text files as they
    are, the metadata chunks of PNGs (compressed on disk), and the header of safetensors files."""
    texts = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix == ".png":
            with Image.open(path) as image:
                texts[str(path)] = json.dumps(getattr(image, "text", {}))
        elif path.suffix == ".safetensors":
            data = path.read_bytes()
            texts[str(path)] = data[8 : 8 + int.from_bytes(data[:8], "little")].decode()
        else:
            texts[str(path)] = path.read_text(encoding="utf-8")
    return texts


def test_no_absolute_path_in_any_artifact_of_a_run(capsys, ddpm_folder, digits_folder, tmp_path):
    """Issue 10, item 4: index, generation, attribution of existing files and the model-card report,
    all given absolute paths; nothing they write names a folder of this machine."""
    index, run_dir, attributed, report = tmp_path / "index", tmp_path / "run", tmp_path / "attributed", tmp_path / "report"
    steps = [
        ["index", "build", digits_folder, "--out", index, "--channels", "1"],
        ["generate", ddpm_folder, "--index", index, "--out", run_dir, "--num-images", "2", "--steps", "2", "--timesteps", "300"],
        ["attribute", run_dir / "image-000.png", "--index", index, "--out", attributed, "--timesteps", "300", "--draws", "1"],
        ["report", run_dir, attributed, "--index", index, "--card", report / "README.md", "--html", report / "summary",
         "--json", report / "summary.json", "--fields", "label", "source"],
    ]
    for argv in steps:
        code, _, err = run(capsys, *argv)
        assert code == 0, err
    code, shown, _ = run(capsys, "show", run_dir / "image-000.png")
    assert code == 0
    machine = {str(tmp_path), str(digits_folder), str(ddpm_folder), str(Path.home()), str(Path(__file__).parents[2])}
    machine |= {str(Path(sys.prefix)), str(Path(json.__file__).parent)}
    texts = {"show": shown.replace(str(run_dir / "image-000.png"), "IMAGE")}  # less the path the user typed
    for folder in (index, run_dir, attributed, report):
        texts |= _texts(folder)
    assert len(texts) > 40
    leaks = {name: sorted(p for p in machine if p in text) for name, text in texts.items()}
    assert {name: found for name, found in leaks.items() if found} == {}
    assert (report / "summary.html").is_file()  # `--html NAME` without an extension gets one
    metadata = read_attribution(run_dir / "image-000.png")
    assert metadata["model"] == f"DDPMPipeline(UNet2DModel) {ddpm_folder.name}"  # the pipeline's name, not its path
    assert metadata["top"][0]["metadata"]["source"] == metadata["top"][0]["id"]  # relative to the indexed folder


def test_python_and_the_command_line_resolve_the_same_settings(capsys, pixel_index, digits_folder, tmp_path):
    """Issue 10, item 6: one default rule; the results of both record the same resolved settings."""
    from diffusers_attr import AttributionIndex
    from diffusers_attr.pipeline import attribute_images

    image = digits_folder / "0" / "digit-00.png"
    code, _, err = run(capsys, "attribute", image, "--index", pixel_index, "--out", tmp_path / "cli")
    assert code == 0, err
    from_cli = read_attribution(tmp_path / "cli" / "digit-00.png")["config"]
    with Image.open(image) as picture:
        [from_python] = attribute_images([picture.copy()], AttributionIndex.load(pixel_index), progress=False)
    assert from_cli == from_python.config
    from diffusers_attr.config import default_patch_size

    assert from_cli["patch_size"] == default_patch_size((1, 8, 8)) == 5
    assert from_cli["timesteps"] == [100, 200, 300] and from_cli["draws"] == 2 and from_cli["top"] == 10


def test_threads_option_reaches_the_engine_settings(capsys, pixel_index, digits_folder, tmp_path):
    code, _, err = run(capsys, "attribute", digits_folder / "0", "--index", pixel_index, "--out", tmp_path / "a", "--threads", "0")
    assert_clean_error(code, err, "threads=0 must be a positive integer")
    code, _, err = run(capsys, "attribute", digits_folder / "0", "--index", pixel_index, "--out", tmp_path / "b",
                       "--threads", "1", "--timesteps", "300", "--draws", "1")
    assert code == 0, err


def test_help_show_and_index_info_do_not_load_torch(pixel_index, tmp_path):
    """Issue 10, item 5: these answer at once (no torch, no diffusers imported)."""
    from diffusers_attr.provenance import write_png

    image = tmp_path / "image.png"

    write_png(Image.new("L", (8, 8)), image, {"format": "diffusers-attr", "top": []})
    for argv in (["--help"], ["index", "info", str(pixel_index)], ["show", str(image)], ["index", "info", "--help"]):
        script = (
            "import sys; from diffusers_attr.cli import main\n"
            f"try:\n    code = main({argv!r})\nexcept SystemExit as exit:\n    code = exit.code\n"
            "heavy = sorted(m for m in ('torch', 'diffusers', 'numpy', 'transformers') if m in sys.modules)\n"
            "print(code, heavy)"
        )
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        assert done.stdout.strip().splitlines()[-1] in ("0 []", "0 ['numpy']"), (argv, done.stdout, done.stderr)


def test_show_into_a_closed_pipe_exits_quietly(pixel_index, digits_folder, tmp_path):
    """Issue 10, item 7: `show --json | head` -- the reader goes away before the output is written."""
    image = tmp_path / "image.png"
    from diffusers_attr.provenance import write_png

    write_png(Image.new("L", (8, 8)), image, {"format": "diffusers-attr", "top": [], "padding": "x" * 200_000})
    child = subprocess.Popen([sys.executable, "-m", "diffusers_attr", "show", str(image), "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    child.stdout.close()  # before Python has even started
    _, err = child.communicate(timeout=120)
    assert child.returncode == 0 and b"Error" not in err, err


def test_cli_hints_name_flags_not_python_arguments(capsys, digits_folder, pixel_index, tmp_path):
    code, _, err = run(capsys, "index", "build", digits_folder, "--out", pixel_index, "--channels", "1")
    assert_clean_error(code, err, "add --overwrite to replace it")
    assert "overwrite=True" not in err
    mixed = tmp_path / "mixed"
    shutil.copytree(digits_folder, mixed)
    Image.new("L", (9, 9)).save(mixed / "0" / "odd-size.png")
    (mixed / "notes.md").write_text("not an image")
    code, _, err = run(capsys, "index", "build", mixed, "--out", tmp_path / "strict", "--strict")
    assert_clean_error(code, err, "drop --strict")
    code, _, err = run(capsys, "index", "build", mixed, "--out", tmp_path / "sizes")
    assert_clean_error(code, err, "add --resolution N to resize")


def test_index_subcommands_have_examples(capsys):
    for argv in (["index", "info", "--help"], ["index", "verify", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        assert "examples:" in capsys.readouterr().out
