"""The Python examples run against real pipelines saved to temp folders."""

from __future__ import annotations

import importlib.util
from pathlib import Path


from diffusers_attr import read_attribution

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_wrap_stable_diffusion_from_a_local_folder(sd_folder, photo_folder, tmp_path):
    example = load_example("wrap_stable_diffusion")
    argv = [str(sd_folder), str(photo_folder), "--prompt", "a cat", "--index", str(tmp_path / "index"),
            "--out", str(tmp_path / "run"), "--resolution", "16", "--num-images", "2", "--steps", "2", "--device", "cpu"]
    paths = example.main(argv)
    assert len(paths) == 2 and (tmp_path / "run" / "index.html").exists()
    metadata = read_attribution(paths[0])
    assert metadata["index"]["items"] == 5 and metadata["index"]["space"]["kind"] == "latent"
    assert example.main(argv)  # second run reuses the index


def test_attribute_a_folder_of_existing_images(sd_folder, photo_folder, tmp_path):
    load_example("wrap_stable_diffusion").main(
        [str(sd_folder), str(photo_folder), "--prompt", "x", "--index", str(tmp_path / "index"),
         "--out", str(tmp_path / "unused"), "--resolution", "16", "--steps", "1", "--device", "cpu"]
    )
    paths = load_example("attribute_folder").main(
        [str(photo_folder), str(tmp_path / "index"), "--out", str(tmp_path / "attributed"),
         "--pipeline", str(sd_folder), "--patch-size", "3", "--sigmas", "0.02"]
    )
    assert [p.name for p in paths] == ["astronaut.png", "camera.png", "chelsea.png", "coffee.png", "rocket.png"]
    top_ids = [read_attribution(p)["top"][0]["id"] for p in paths]
    assert top_ids == ["astronaut.png", "camera.png", "chelsea.png", "coffee.png", "rocket.png"]  # each finds itself (the untrained VAE's latents are small: little noise)
