"""``diffusers-attr show``: print the attribution embedded in an image file."""

from __future__ import annotations

import argparse
import json

EXAMPLES = """examples:
  diffusers-attr show diffusers-attr-demo/image-000.png
  diffusers-attr show image.png --json | jq .top[0]
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "show", help="print the attribution embedded in an image",
        description="Read the attribution metadata of an image written by diffusers-attr (PNG chunk or sidecar).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("image", help="a PNG written by diffusers-attr (or its .attribution.json sidecar)")
    parser.add_argument("--json", action="store_true", help="print the raw JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..provenance import read_attribution

    metadata = read_attribution(args.image)
    if args.json:
        print(json.dumps(metadata, indent=2))
        return 0
    config = metadata.get("config", {})
    index = metadata.get("index", {})
    print(f"image:     {args.image}")
    print(f"model:     {metadata.get('model')}  scheduler: {metadata.get('scheduler')}")
    print(f"index:     {index.get('items')} items, {index.get('space', {}).get('kind')} space")
    print(f"method:    NDA, mode {config.get('mode')}, patch {config.get('patch_size')}, scales {config.get('scales')}, top-k {config.get('topk')}")
    levels = ", ".join(f"{level['sigma'] / (level['alpha'] ** 2 + level['sigma'] ** 2) ** 0.5:.2f}" for level in metadata.get("levels", []))
    print(f"levels:    noise {levels}")
    print(f"\n{'rank':>4}  {'share':>7}  {'score':>9}  id (metadata)")
    for item in metadata.get("top", []):
        extra = ", ".join(f"{k}={v}" for k, v in item.get("metadata", {}).items() if k in ("label", "caption", "licence"))
        print(f"{item['rank']:>4}  {item['share']:>7.2%}  {item['score']:>9.3f}  {item['id']}" + (f" ({extra})" if extra else ""))
    return 0
