"""Wrap a Stable Diffusion pipeline from a local folder and attribute every image it generates.

    python examples/wrap_stable_diffusion.py PIPELINE_DIR TRAIN_IMAGES_DIR --prompt "a red barn" \
        --index sd-index --out sd-run --resolution 512 --num-images 2

PIPELINE_DIR is any folder written by ``StableDiffusionPipeline.save_pretrained`` (or a downloaded
snapshot); TRAIN_IMAGES_DIR is the folder of images the model was trained or fine-tuned on. The index
is built once through the pipeline's VAE (resumable; reused on later runs) and every output is saved
with its attribution embedded, heatmaps and an HTML report.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from diffusers import StableDiffusionPipeline

from diffusers_attr import AttributedPipeline, AttributionIndex


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pipeline", help="local Stable Diffusion pipeline folder")
    parser.add_argument("train_images", help="folder of training images")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--index", default="sd-index", help="index folder (built on first use)")
    parser.add_argument("--out", default="sd-run", help="output folder")
    parser.add_argument("--resolution", type=int, default=512, help="generation and index resolution")
    parser.add_argument("--num-images", type=int, default=1)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)

    pipe = StableDiffusionPipeline.from_pretrained(args.pipeline, local_files_only=True).to(args.device)
    if Path(args.index, "index.json").exists():
        index = AttributionIndex.load(args.index)
    else:
        index = AttributionIndex.build(args.index, args.train_images, encoder=pipe.vae, resolution=args.resolution)

    wrapped = AttributedPipeline(pipe, index, patch_size=3, timesteps=[100, 200, 300], device=args.device)
    output = wrapped(
        prompt=args.prompt, num_images_per_prompt=args.num_images, num_inference_steps=args.steps,
        height=args.resolution, width=args.resolution, generator=torch.Generator(args.device).manual_seed(args.seed),
    )
    paths = output.save(args.out)  # and the run's report, index.html
    for path, attribution in zip(paths, output.attributions):
        best = attribution.top[0]
        print(f"{path}: top source {best.id} ({best.share:.1%}) {best.metadata.get('caption', '')}")
    print(f"report: {(Path(args.out) / 'index.html').resolve().as_uri()}")
    return paths


if __name__ == "__main__":
    main()
