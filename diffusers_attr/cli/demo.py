"""``diffusers-attr demo``: the whole job on the embedded default model, offline, in about a minute."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from .common import add_attribution_options, attribution_config, writable_dir

PREFIX = "image"
# What a previous demo run left in its folder: `image-003.png` and everything Attribution.save writes
# next to it (`image-003.attribution.json`, `image-003.heatmap-1.png`, ...).
_PREVIOUS_RUN = re.compile(rf"^{PREFIX}-\d{{3}}(\.[A-Za-z0-9_.-]+)?\.(png|json|safetensors)$")

EXAMPLES = """examples:
  diffusers-attr demo
  diffusers-attr demo --out /tmp/attr-demo --num-images 4 --steps 25
  diffusers-attr demo --timesteps 50 150 --patch-size 3
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="generate and attribute digits with the embedded default model",
        description="Generate a handful of digits with the embedded DDPM (trained on scikit-learn digits), "
        "attribute each to the 1000 training digits, and write images with embedded metadata, heatmaps, "
        "JSON sidecars and an HTML report. Running it again replaces the previous demo run in --out.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", default="diffusers-attr-demo", help="output folder (default ./diffusers-attr-demo)")
    parser.add_argument("--num-images", type=int, default=6, help="images to generate (default 6)")
    parser.add_argument("--steps", type=int, default=50, help="DDIM sampling steps (default 50)")
    parser.add_argument("--device", default=None, help="torch device for the model and engine (default cpu)")
    add_attribution_options(parser)
    parser.set_defaults(run=run)


def clear_previous_run(out: Path) -> int:
    """Remove the images and pictures a previous demo run wrote to ``out`` (so a second run does not
    add to them); returns how many files were removed."""
    previous = [path for path in out.iterdir() if path.is_file() and _PREVIOUS_RUN.match(path.name)]
    for path in previous:
        path.unlink()
    return len(previous)


def run(args: argparse.Namespace) -> int:
    import torch
    from diffusers import DDIMScheduler

    from ..index import AttributionIndex
    from ..pipeline import AttributedPipeline
    from ..report import write_run_report
    from ..training.digits import digits_training_set, load_digits_ddpm

    out = writable_dir(args.out)
    pipe = load_digits_ddpm()
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(desc="generating", leave=False)
    if args.device:
        pipe.to(args.device)
    images, ids, metadata = digits_training_set()
    index = AttributionIndex.from_images(images, ids=ids, metadata=metadata, progress=False)
    index.save(out / "index", overwrite=True)

    wrapped = AttributedPipeline(pipe, index, **attribution_config(args))
    generator = torch.Generator(device=args.device or "cpu").manual_seed(args.seed)
    output = wrapped(batch_size=args.num_images, num_inference_steps=args.steps, generator=generator)
    if clear_previous_run(out):
        print(f"replaced the previous demo run in {out}/")
    paths = output.save(out, prefix=PREFIX, report=False)
    report = write_run_report(out, title="diffusers-attr demo: a DDPM trained on digits")

    for path, attribution in zip(paths, output.attributions):
        best = attribution.top[0]
        label = best.metadata.get("label", "?")
        print(f"{path.name}: top source {best.id} (label {label}, {best.share:.1%} of the patch mass)")
    print(f"\nwrote {len(paths)} attributed images, heatmaps and sidecars to {out}/")
    print(f"open the report: {report.resolve().as_uri()}")
    return 0
