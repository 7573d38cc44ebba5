"""``diffusers-attr attribute``: attribute existing image files against an index (renoise mode)."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from .common import CLIError, add_attribution_options, attribution_config, load_index, load_pipeline, writable_dir

EXAMPLES = """examples:
  diffusers-attr attribute generated/*.png --index ./digits-index --out attributed
  diffusers-attr attribute ./some-folder --index ./my-index --pipeline ./my-sd-pipeline --sigmas 0.3 0.5
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "attribute", help="attribute existing images (files or folders) against an index",
        description="Noise each image at the chosen levels (seeded draws) and attribute it to the index. "
        "Writes a PNG copy of each image with its attribution embedded, sidecars, heatmaps and a report.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("images", nargs="+", help="image files or folders of images")
    parser.add_argument("--index", required=True, help="index folder (index build)")
    parser.add_argument("--pipeline", default=None, help="the pipeline folder (needed for latent indexes)")
    parser.add_argument("--out", default="diffusers-attr-attributed", help="output folder")
    parser.add_argument("--device", default=None, help="torch device (default cpu)")
    add_attribution_options(parser)
    parser.set_defaults(run=run)


def collect_images(arguments: list[str]) -> list[tuple[Path, "object"]]:
    """(path, PIL image) for every readable image named or inside a named folder; unreadable files
    are listed in one warning."""
    from ..index.images import image_extensions, load_image

    files: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        if not path.exists():
            raise CLIError(f"{path} does not exist")
        files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    images, skipped = [], []
    for file in files:
        if file.suffix.lower() not in image_extensions() or ".attribution." in file.name:
            skipped.append(file.name)
            continue
        try:
            images.append((file, load_image(file)))
        except (OSError, SyntaxError, ValueError):
            skipped.append(file.name)
    if skipped:
        warnings.warn(f"skipped {len(skipped)} files that are not readable images: {', '.join(skipped)}", stacklevel=2)
    if not images:
        raise CLIError(f"no readable images in {', '.join(arguments)}")
    return images


def run(args: argparse.Namespace) -> int:
    from ..pipeline import attribute_images
    from ..report import write_run_report

    out = writable_dir(args.out)
    index = load_index(args.index)
    pipe = load_pipeline(args.pipeline, args.device) if args.pipeline else None
    named = collect_images(args.images)
    attributions = attribute_images([image for _, image in named], index, pipe, **attribution_config(args))
    used: set[str] = set()
    for (source, _), attribution in zip(named, attributions):
        stem = source.stem
        while stem in used:
            stem += "_"
        used.add(stem)
        path = attribution.save(out / f"{stem}.png")
        print(f"{source} -> {path}: top source {attribution.top[0].id} ({attribution.top[0].share:.1%})")
    report = write_run_report(out)
    print(f"report: {report.resolve().as_uri()}")
    return 0
