"""A real batch job over a folder of PNG files, run as its own process (alone or under torchrun) by
tests/test_batch.py: each image's mirror image and its statistics, written by :func:`run_batch`.

    python tests/batch_job.py IN OUT [--kill-at KEY --kill-when work|logged]

``--kill-at`` ends this process with SIGKILL (as ``kill -9`` or a lost node would) at item KEY: in
the middle of its work (files half written in staging) or right after its output folder was renamed
into place, before its done-log line.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from diffusers_attr import batch  # noqa: E402


def kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("inputs")
    parser.add_argument("out")
    parser.add_argument("--kill-at")
    parser.add_argument("--kill-when", choices=("work", "logged"), default="work")
    args = parser.parse_args()

    def work(path: Path, staging: Path) -> None:
        pixels = np.asarray(Image.open(path).convert("L"))
        Image.fromarray(pixels[:, ::-1].copy()).save(staging / "mirror.png")
        if args.kill_at == path.stem and args.kill_when == "work":
            kill()  # mirror.png written, stats.json not yet
        (staging / "stats.json").write_text(json.dumps({"mean": float(pixels.mean()), "max": int(pixels.max())}))

    if args.kill_when == "logged" and args.kill_at:
        add = batch._DoneLog.add

        def add_then_die(self, key: str) -> None:
            if key == args.kill_at:
                kill()  # the output is in place, its log line is not
            add(self, key)

        batch._DoneLog.add = add_then_die
    result = batch.run_batch(batch.folder_items(args.inputs, (".png",)), work, args.out, progress=False)
    print(json.dumps({"rank": result.rank, "ran": result.ran, "skipped": result.skipped}))


if __name__ == "__main__":
    main()
