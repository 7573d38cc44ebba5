"""The ``diffusers-attr`` command line.

Exit codes: 0 success, 2 bad input (the message says what to fix), 1 unexpected failure,
130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Sequence

from . import attribute, demo, generate, index_cmd, report_cmd, show
from .common import CLIError, quiet_hub, with_flags

DESCRIPTION = """Training-data attribution for diffusers pipelines: which training images each
generated image draws on, how much, and where."""

EXAMPLES = """quick start:
  diffusers-attr demo                          # the whole job on the embedded digits model
  diffusers-attr index build ./train --out ./index --resolution 64
  diffusers-attr generate ./pipeline --index ./index --num-images 4
  diffusers-attr attribute image.png --index ./index
  diffusers-attr show image.png

run `diffusers-attr COMMAND --help` for each command's options and examples."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="diffusers-attr", description=DESCRIPTION, epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    subparsers = parser.add_subparsers(metavar="COMMAND")
    for command in (demo, index_cmd, generate, attribute, show, report_cmd):
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``diffusers-attr``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    quiet_hub()
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = _show_warning
        return _run(args)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"diffusers-attr: warning: {message}", file=sys.stderr)


@contextmanager
def _model_threads(args: argparse.Namespace) -> Iterator[None]:
    """Commands that run a model (they take ``--threads``) run it, not only the engine, on the cores
    other processes leave free, or on ``--threads``; torch's setting is restored afterwards."""
    if not hasattr(args, "threads"):
        yield  # show, index info, report: torch is not even imported
        return
    from ..threads import cpu_threads

    with cpu_threads(args.threads):
        yield


def _run(args: argparse.Namespace) -> int:
    """Run the chosen command, turning errors into messages and exit codes."""
    try:
        with _model_threads(args):
            code = int(args.run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows up here, not at exit
        return code
    except KeyboardInterrupt:
        print("diffusers-attr: interrupted", file=sys.stderr)
        return 130
    except (CLIError, ValueError, FileNotFoundError, NotADirectoryError, PermissionError, FileExistsError) as error:
        if args.debug:
            traceback.print_exc()
        message = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
        print(f"diffusers-attr: error: {with_flags(message)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`show --json | head`): nothing more to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so Python's final flush of stdout does not fail again
        return 0
    except Exception as error:  # noqa: BLE001 - the last line of defence for scripts
        if args.debug:
            traceback.print_exc()
        print(f"diffusers-attr: unexpected error: {type(error).__name__}: {error} (rerun with --debug)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
