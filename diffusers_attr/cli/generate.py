"""``diffusers-attr generate``: run a local pipeline folder, wrapped, and write attributed images."""

from __future__ import annotations

import argparse
import inspect

from .common import (
    CLIError,
    add_attribution_options,
    add_c2pa_options,
    attribution_config,
    c2pa_signer,
    load_index,
    load_pipeline,
    writable_dir,
)

EXAMPLES = """examples:
  diffusers-attr generate ./my-sd-pipeline --index ./my-index --prompt "a red barn" --num-images 4
  diffusers-attr generate ./digits-ddpm --index ./digits-index --num-images 8 --steps 100 --out run1
  diffusers-attr generate ./my-sd-pipeline --index ./my-index --prompt "a cat" --mode renoise --sigmas 0.3 0.5
  diffusers-attr generate ./my-sd-pipeline --index ./my-index --prompt "a cat" --c2pa-cert chain.pem --c2pa-key key.pem
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate", help="generate with a local pipeline and attribute every image",
        description="Load a diffusers pipeline folder, generate with it (wrapped by AttributedPipeline), and "
        "write each image with its attribution embedded, a JSON sidecar, heatmaps and an HTML report.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("pipeline", help="folder of a diffusers pipeline (save_pretrained layout)")
    parser.add_argument("--index", required=True, help="index folder built for this pipeline (index build)")
    parser.add_argument("--out", default="diffusers-attr-out", help="output folder (default ./diffusers-attr-out)")
    parser.add_argument("--prompt", default=None, help="text prompt (text-to-image pipelines)")
    parser.add_argument("--negative-prompt", default=None)
    parser.add_argument("--num-images", type=int, default=1, help="images to generate (default 1)")
    parser.add_argument("--steps", type=int, default=None, help="inference steps (pipeline default if omitted)")
    parser.add_argument("--guidance-scale", type=float, default=None)
    parser.add_argument("--height", type=int, default=None)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--mode", choices=("trajectory", "renoise"), default="trajectory")
    parser.add_argument("--device", default=None, help="torch device (default cpu)")
    add_attribution_options(parser)
    add_c2pa_options(parser)
    parser.set_defaults(run=run)


def pipeline_arguments(pipe, args: argparse.Namespace) -> dict:
    """Call arguments for ``pipe`` from the options it accepts."""
    import torch

    accepted = inspect.signature(pipe.__call__).parameters
    call: dict = {"generator": torch.Generator(device=args.device or "cpu").manual_seed(args.seed)}
    if "prompt" in accepted:
        if args.prompt is None:
            raise CLIError(f"{type(pipe).__name__} needs a prompt: add --prompt \"...\"")
        call.update(prompt=args.prompt, num_images_per_prompt=args.num_images)
    elif args.prompt is not None:
        raise CLIError(f"{type(pipe).__name__} takes no prompt; drop --prompt")
    else:
        call["batch_size"] = args.num_images
    options = {
        "num_inference_steps": args.steps, "negative_prompt": args.negative_prompt,
        "guidance_scale": args.guidance_scale, "height": args.height, "width": args.width,
    }
    for name, value in options.items():
        if value is None:
            continue
        if name not in accepted:
            raise CLIError(f"{type(pipe).__name__} has no {name} argument; drop --{name.replace('_', '-')}")
        call[name] = value
    return call


def run(args: argparse.Namespace) -> int:
    from ..pipeline import AttributedPipeline
    from ..report.run_html import REPORT_NAME

    out = writable_dir(args.out)
    signer = c2pa_signer(args)
    index = load_index(args.index)
    pipe = load_pipeline(args.pipeline, args.device)
    wrapped = AttributedPipeline(pipe, index, **attribution_config(args, mode=args.mode))
    output = wrapped(**pipeline_arguments(pipe, args))
    paths = output.save(out, c2pa=signer)  # and the folder's report
    report = out / REPORT_NAME
    for path, attribution in zip(paths, output.attributions):
        print(f"{path}: top source {attribution.top[0].id} ({attribution.top[0].share:.1%})")
    print(f"report: {report.resolve().as_uri()}")
    return 0
