"""``diffusers-attr index build|info|verify``: the training set in the model's space."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import CLIError, existing_dir, load_pipeline

DIGITS = "sklearn-digits"  # the name diffusers_attr.index.sources knows

EXAMPLES = """examples:
  diffusers-attr index build ./train-images --out ./my-index --resolution 64
  diffusers-attr index build ./train-images --out ./sd-index --pipeline ./my-sd-pipeline --resolution 512
  diffusers-attr index build ./saved-hf-dataset --out ./my-index --resolution 32
  diffusers-attr index build sklearn-digits --out ./digits-index
  diffusers-attr index info ./my-index
  diffusers-attr index verify ./my-index
"""
INFO_EXAMPLES = """examples:
  diffusers-attr index info ./my-index
  diffusers-attr index info diffusers-attr-demo/index     # the index the demo wrote
"""
VERIFY_EXAMPLES = """examples:
  diffusers-attr index verify ./my-index
  diffusers-attr index verify ./my-index && diffusers-attr generate ./my-pipeline --index ./my-index
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "index", help="build, inspect or verify a training-set index",
        description="The training set in the model's space: pixels in [-1, 1], or autoencoder latents for latent pipelines.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="index_command", metavar="{build,info,verify}")
    build = commands.add_parser(
        "build", help="build an index from an image folder or a dataset (resumable)",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    build.add_argument(
        "source", help=f"folder of images (class subfolders give labels, <stem>.txt captions), a folder saved by "
        f"datasets' save_to_disk, or {DIGITS} (the 1000 training digits of the demo)",
    )
    build.add_argument("--out", required=True, help="index folder to write")
    build.add_argument(
        "--pipeline", default=None,
        help="pipeline folder whose autoencoder (vae, movq, vqvae, vqgan) encodes the images (latent pipelines)",
    )
    build.add_argument("--resolution", type=int, default=None, help="resize (shorter side) and centre-crop to this size")
    build.add_argument("--channels", type=int, choices=(1, 3), default=None, help="1 (greyscale) or 3 (RGB)")
    build.add_argument("--dtype", choices=("float32", "float16"), default="float32", help="storage precision")
    build.add_argument("--shard-size", type=int, default=None, help="items per shard")
    build.add_argument("--batch-size", type=int, default=16, help="images per encoder batch")
    build.add_argument("--overwrite", action="store_true", help="replace an existing index at --out")
    build.add_argument("--no-resume", action="store_true", help="start over instead of resuming an interrupted build")
    build.add_argument("--strict", action="store_true", help="fail on unreadable files instead of skipping them")
    build.add_argument("--device", default=None, help="torch device for the VAE (default cpu)")
    build.set_defaults(run=run_build)
    info = commands.add_parser(
        "info", help="print what an index holds", epilog=INFO_EXAMPLES,
        description="Items, shape, storage, space fingerprint, ids and labels of an index (reads only its manifest "
        "and item list; checks the shard sizes).", formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    info.add_argument("path", help="index folder (index build)")
    info.set_defaults(run=run_info)
    verify = commands.add_parser(
        "verify", help="check every shard against its checksum", epilog=VERIFY_EXAMPLES,
        description="Read every file of an index and compare its size and SHA-256 with the manifest; exit code 2 "
        "names the first file that is missing, truncated or corrupted.", formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verify.add_argument("path", help="index folder (index build)")
    verify.set_defaults(run=run_verify)
    parser.set_defaults(run=lambda args: parser.print_help() or 2)


def _source(source: str):
    """(images, ids, metadata) for the index builder."""
    if source == DIGITS and not Path(source).exists():
        return source, None, None  # AttributionIndex.build knows the name
    folder = existing_dir(source, "image folder")
    if (folder / "dataset_info.json").is_file() or (folder / "state.json").is_file():
        try:
            from datasets import load_from_disk
        except ImportError as error:
            raise CLIError(f"{folder} is a saved dataset; reading it needs the datasets package: pip install datasets") from error
        return load_from_disk(str(folder)), None, None
    return folder, None, None


def run_build(args: argparse.Namespace) -> int:
    from ..autoencoders import pipeline_autoencoder
    from ..index import AttributionIndex

    images, ids, metadata = _source(args.source)
    encoder = None
    if args.pipeline:
        encoder = pipeline_autoencoder(load_pipeline(args.pipeline, args.device))
        if encoder is None:
            raise CLIError(
                f"the pipeline in {args.pipeline} has no autoencoder (a pixel-space model): build without --pipeline"
            )
    index = AttributionIndex.build(
        args.out, images, ids, metadata, encoder=encoder, resolution=args.resolution, channels=args.channels,
        dtype=args.dtype, shard_size=args.shard_size, batch_size=args.batch_size, resume=not args.no_resume,
        overwrite=args.overwrite, strict=args.strict,
    )
    print(f"wrote {len(index)} items of shape {tuple(index.item_shape)} ({index.space['kind']} space) to {args.out}")
    return 0


def _size(path: Path) -> str:
    total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return f"{total / 2**20:.1f} MiB"


def run_info(args: argparse.Namespace) -> int:
    from ..index.manifest import check_file, read_items, read_manifest  # no torch: info stays fast

    folder = existing_dir(args.path, "index folder")
    manifest = read_manifest(folder)
    ids, metadata = read_items(folder, manifest["items"], manifest["num_items"])
    for entry in manifest["shards"]:
        check_file(folder, entry, hash_contents=False)
    space = manifest["space"]
    print(f"index:      {args.path} ({_size(folder)})")
    print(f"items:      {len(ids)} of shape {tuple(manifest['item_shape'])}, stored as {manifest['dtype']}")
    print(f"space:      {space['kind']}, normalisation {space.get('normalisation')}, resolution {space.get('resolution')}")
    if space["kind"] == "latent":
        print(f"vae:        {space.get('vae_class')}, weights sha256 {space.get('vae_weights_sha256', '')[:16]}..., scaling {space.get('scaling_factor')}")
    labels = sorted({str(m["label"]) for m in metadata if "label" in m})
    print(f"ids:        {ids[0]} ... {ids[-1]}")
    if labels:
        print(f"labels:     {len(labels)} distinct ({', '.join(labels[:10])}{', ...' if len(labels) > 10 else ''})")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from ..index import AttributionIndex

    existing_dir(args.path, "index folder")
    index = AttributionIndex.load(args.path, verify=False)
    index.verify()
    print(f"OK: {len(index)} items, every shard matches its checksum")
    return 0
