"""Pieces shared by the subcommands: loading pipelines and indexes, attribution options, errors."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any


class CLIError(Exception):
    """A problem with the user's input: printed as one line, exit code 2."""


FLAG_HINTS = (
    ("pass overwrite=True to replace it", "add --overwrite to replace it"),
    ("pass resume=False", "add --no-resume"),
    ("pass strict=False", "drop --strict"),
    ("pass resolution=... to resize", "add --resolution N to resize"),
    ("leave channels=None", "leave out --channels"),
    ("store as dtype='float32'", "use --dtype float32"),
    ("AttributionIndex.build(INDEX_DIR, TRAIN_DIR, encoder=pipe.vae, resolution=...)", "--resolution N"),
    ("(allow_mixed_indexes=True, --allow-mixed-indexes)", "(--allow-mixed-indexes)"),
    ("(pipe=..., or --pipeline PATH on the command line)", "(--pipeline PATH)"),
    ("(raise the `maps` setting of AttributedPipeline to keep more)", "(raise --maps to keep more)"),
)
"""Hints of the library's error messages written for Python callers, and what a command-line user types instead."""


def with_flags(message: str) -> str:
    """An error message with the Python arguments it suggests replaced by the command's flags."""
    for python, flag in FLAG_HINTS:
        message = message.replace(python, flag)
    return message


def existing_dir(path: str, what: str) -> Path:
    """``path`` as an existing folder, else a :class:`CLIError` naming ``what`` it should be."""
    folder = Path(path)
    if not folder.exists():
        raise CLIError(f"{what} {folder} does not exist")
    if not folder.is_dir():
        raise CLIError(f"{what} {folder} is not a folder")
    return folder


def writable_dir(path: str) -> Path:
    """Create ``path`` if needed and check files can be written there."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".diffusers-attr-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise CLIError(f"cannot write to output folder {folder}: {error.strerror or error}") from error
    return folder


def load_pipeline(path: str, device: str | None) -> Any:
    """A diffusers pipeline from a local folder (``save_pretrained`` layout)."""
    folder = existing_dir(path, "pipeline folder")
    if not (folder / "model_index.json").is_file():
        raise CLIError(
            f"{folder} is not a diffusers pipeline folder (no model_index.json); pass a folder written by "
            "pipe.save_pretrained(...)"
        )
    from diffusers import DiffusionPipeline

    try:
        pipe = DiffusionPipeline.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, TypeError) as error:
        raise CLIError(f"could not load the pipeline in {folder}: {error}") from error
    pipe.set_progress_bar_config(leave=False)
    return pipe.to(device) if device else pipe


def load_index(path: str):
    """An :class:`AttributionIndex` from a folder written by ``index build``."""
    from ..index import AttributionIndex

    existing_dir(path, "index folder")
    return AttributionIndex.load(path)


def add_attribution_options(parser: argparse.ArgumentParser) -> None:
    """The attribution settings every attributing subcommand takes. An option left out is left to
    ``AttributionConfig`` (the same defaults as in Python; every result records the values used)."""
    group = parser.add_argument_group("attribution (defaults as in Python: diffusers_attr.config.AttributionConfig)")
    group.add_argument("--patch-size", type=int, default=None,
                       help="odd patch side (default: the largest odd size up to 0.7 of the shorter side, config.default_patch_size)")
    group.add_argument("--topk", type=int, default=None, help="keep the top-k key windows per training item")
    group.add_argument("--timesteps", type=int, nargs="+", default=None, help="noise levels as training timesteps (default 100 200 300)")
    group.add_argument("--sigmas", type=float, nargs="+", default=None, help="noise levels as VP sigma in (0, 1)")
    group.add_argument("--top", type=int, default=None, help="training items listed per image (default 10)")
    group.add_argument("--maps", type=int, default=None, help="top items with query/source maps (default 3)")
    group.add_argument("--draws", type=int, default=None, help="noise draws per level in renoise mode (default 2)")
    group.add_argument("--seed", type=int, default=0, help="seed of generation and noise draws (default 0)")
    group.add_argument("--threads", type=int, default=None,
                       help="CPU threads of the model and the attribution engine (default: the cores other processes leave free)")


def attribution_config(args: argparse.Namespace, **overrides: Any) -> dict[str, Any]:
    """``AttributionConfig`` keyword arguments from parsed options: only the options given (and
    ``overrides``), so the defaults are resolved by ``AttributionConfig.resolved`` as in Python."""
    given = dict(
        patch_size=args.patch_size, topk=args.topk, timesteps=args.timesteps, sigmas=args.sigmas, top=args.top,
        maps=args.maps, draws=args.draws, seed=args.seed, device=args.device, threads=args.threads,
    )
    config = {name: value for name, value in given.items() if value is not None}
    config.update(overrides)
    return config


def quiet_hub() -> None:
    """Nothing here downloads: make that explicit to huggingface_hub and transformers."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def add_c2pa_options(parser: argparse.ArgumentParser) -> None:
    """Optional C2PA signing of the written PNGs (the ``c2pa`` extra)."""
    group = parser.add_argument_group("C2PA content credentials (optional, needs the c2pa extra)")
    group.add_argument("--c2pa-cert", default=None, help="PEM certificate chain (signing certificate first)")
    group.add_argument("--c2pa-key", default=None, help="PEM private key of the signing certificate")
    group.add_argument("--c2pa-alg", default="es256", help="signature algorithm of the key (default es256)")


def c2pa_signer(args: argparse.Namespace):
    """The C2PASigner the options name, or None when signing was not asked for."""
    if not args.c2pa_cert and not args.c2pa_key:
        return None
    if not (args.c2pa_cert and args.c2pa_key):
        raise CLIError("C2PA signing needs both --c2pa-cert and --c2pa-key")
    from ..provenance.c2pa_manifest import C2PASigner

    return C2PASigner.from_files(args.c2pa_cert, args.c2pa_key, algorithm=args.c2pa_alg)
