"""Attribute a folder of existing images (made anywhere) to a training-set index.

    python examples/attribute_folder.py IMAGES_DIR INDEX_DIR --out attributed [--pipeline PIPELINE_DIR]

Each image is noised at fixed levels with seeded draws (renoise mode) and attributed; a PNG copy with
the attribution embedded, its sidecar, heatmaps and an HTML report are written to --out. A latent
index needs the pipeline folder, whose VAE encodes the images.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from diffusers import DiffusionPipeline
from PIL import Image

from diffusers_attr import AttributionIndex, attribute_images
from diffusers_attr.report import write_run_report


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", help="folder of images to attribute")
    parser.add_argument("index", help="index folder (diffusers-attr index build)")
    parser.add_argument("--out", default="attributed")
    parser.add_argument("--pipeline", default=None, help="pipeline folder (needed for latent indexes)")
    parser.add_argument("--patch-size", type=int, default=None, help="odd patch side (default: the library's rule, 7)")
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.3, 0.5], help="noise levels in (0, 1)")
    args = parser.parse_args(argv)

    index = AttributionIndex.load(args.index)
    pipe = DiffusionPipeline.from_pretrained(args.pipeline, local_files_only=True) if args.pipeline else None
    files = sorted(p for p in Path(args.images).iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".webp"})
    images = [Image.open(p).convert("RGB") for p in files]
    settings = {"sigmas": args.sigmas} | ({"patch_size": args.patch_size} if args.patch_size else {})
    attributions = attribute_images(images, index, pipe, **settings)
    paths = [attribution.save(Path(args.out) / f"{file.stem}.png") for file, attribution in zip(files, attributions)]
    for file, attribution in zip(files, attributions):
        print(f"{file.name}: " + ", ".join(f"{item.id} {item.share:.1%}" for item in attribution.top[:3]))
    print(f"report: {write_run_report(args.out).resolve().as_uri()}")
    return paths


if __name__ == "__main__":
    main()
