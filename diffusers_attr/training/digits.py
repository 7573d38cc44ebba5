"""The scikit-learn digits as a tiny image training set, and the committed DDPM trained on it.

``sklearn.datasets.load_digits()`` ships 1797 greyscale 8x8 handwritten digits (values 0..16,
labels 0-9) inside scikit-learn itself (BSD-3-Clause; originally the UCI "Optical Recognition of
Handwritten Digits" data set), so it is real image data that needs no download. Here each digit is
upsampled to ``size x size`` (bilinear by default), clamped to [0, 1] and scaled to [-1, 1] the way
diffusers normalises pixels, with stable ids ``digits-0000`` .. ``digits-1796`` (the row in
scikit-learn's array).

The split is deterministic: the first ``n_train`` images (default 1000) are the training set and
the rest (797) are held out, e.g. as queries that the model never saw.

Run ``python -m diffusers_attr.training --help`` (same as ``examples/train_digits.py``) to
retrain the committed model in ``diffusers_attr/assets/digits_ddpm``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "DIGITS_LICENSE",
    "DEFAULT_N_TRAIN",
    "DEFAULT_SIZE",
    "DIGITS_DDPM_TRAINING",
    "Digits",
    "load_digits_dataset",
    "digits_split",
    "digits_training_set",
    "digits_ddpm_path",
    "load_digits_ddpm",
    "main",
]

DIGITS_LICENSE = "BSD-3-Clause (scikit-learn); source: UCI Optical Recognition of Handwritten Digits"
DEFAULT_N_TRAIN = 1000
DEFAULT_SIZE = 16
_N_DIGITS = 1797

# The exact recipe of the committed model (diffusers_attr/assets/digits_ddpm). Kept here so
# examples/train_digits.py, the CLI below and the model card all agree.
DIGITS_DDPM_TRAINING = dict(
    steps=3500,
    batch_size=64,
    lr=2e-3,
    seed=0,
    warmup_steps=200,
    lr_schedule="cosine",
    ema_decay=0.999,
    checkpoint_every=250,
    num_threads=1,
)


@dataclass(frozen=True)
class Digits:
    """A set of digit images: ``images`` [N,1,S,S] float32 in [-1, 1], ``labels`` [N] int64, ``ids``."""

    images: torch.Tensor
    labels: torch.Tensor
    ids: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, indices: Sequence[int] | torch.Tensor) -> "Digits":
        """The rows ``indices`` (positions in this set), in that order."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        return Digits(self.images[idx], self.labels[idx], [self.ids[i] for i in idx.tolist()])

    @property
    def metadata(self) -> list[dict]:
        """One dict per image (``{"label": int}``), e.g. for ``AttributionIndex.from_images``."""
        return [{"label": int(v)} for v in self.labels.tolist()]


def load_digits_dataset(size: int = DEFAULT_SIZE, *, mode: str = "bilinear") -> Digits:
    """All 1797 scikit-learn digits as ``[1797, 1, size, size]`` float32 in [-1, 1].

    ``mode`` is a ``torch.nn.functional.interpolate`` mode (``"bilinear"``, ``"bicubic"``,
    ``"nearest"``); ``size=8`` returns the original pixels. Values are clamped to [0, 1] after
    resampling (bicubic overshoots), then mapped ``x * 2 - 1``.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the digits data set needs scikit-learn: pip install scikit-learn") from exc
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    bunch = load_digits()
    x = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0  # [N,1,8,8] in [0,1]
    if size != 8:
        kwargs = {} if mode in ("nearest", "area", "nearest-exact") else {"align_corners": False}
        x = F.interpolate(x, size=(size, size), mode=mode, **kwargs)
    x = x.clamp_(0.0, 1.0) * 2.0 - 1.0
    labels = torch.as_tensor(bunch.target, dtype=torch.long)
    ids = [f"digits-{i:04d}" for i in range(x.shape[0])]
    return Digits(x.contiguous(), labels, ids)


def digits_split(
    n_train: int = DEFAULT_N_TRAIN, size: int = DEFAULT_SIZE, *, mode: str = "bilinear"
) -> tuple[Digits, Digits]:
    """``(train, heldout)``: the first ``n_train`` digits and the remaining ones (disjoint)."""
    if not 0 < n_train < _N_DIGITS:
        raise ValueError(f"n_train must be in 1..{_N_DIGITS - 1}, got {n_train}")
    data = load_digits_dataset(size, mode=mode)
    n = len(data)
    return data.subset(range(n_train)), data.subset(range(n_train, n))


def digits_training_set() -> tuple[torch.Tensor, list[str], list[dict]]:
    """The training set of the embedded digits DDPM as ``(images [1000, 1, 16, 16] in [-1, 1], ids,
    metadata)``, each item's metadata its label, source and licence: what the demo and
    ``AttributionIndex.build(path, "sklearn-digits")`` index."""
    train, _ = digits_split()
    metadata = [
        {"label": item["label"], "source": "scikit-learn digits (UCI ML hand-written digits)", "licence": "BSD-3-Clause"}
        for item in train.metadata
    ]
    return train.images, train.ids, metadata


def digits_ddpm_path() -> Path:
    """The folder of the committed digits DDPM (``DDPMPipeline.from_pretrained`` loads it)."""
    return Path(__file__).resolve().parent.parent / "assets" / "digits_ddpm"


def load_digits_ddpm(**kwargs):
    """``DDPMPipeline.from_pretrained(digits_ddpm_path(), **kwargs)``: the embedded default model.

    It generates 16x16 greyscale digits in [-1, 1] pixel space and was trained on
    ``digits_split()[0]`` (ids ``digits-0000`` .. ``digits-0999``).
    """
    from diffusers import DDPMPipeline

    path = digits_ddpm_path()
    if not (path / "model_index.json").is_file():
        raise FileNotFoundError(f"the digits DDPM is missing from {path}; retrain it with examples/train_digits.py")
    return DDPMPipeline.from_pretrained(str(path), **kwargs)


# --------------------------------------------------------------------------- CLI
def _save_grid(images: torch.Tensor, path: Path, nrow: int = 8, scale: int = 4) -> None:
    """Save [N,1,H,W] images in [-1, 1] as one PNG grid (1-pixel grey gutters, nearest upscaling)."""
    from PIL import Image

    x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()
    n, _, h, w = x.shape
    ncol = nrow
    nrows = (n + ncol - 1) // ncol
    grid = torch.full((nrows * (h + 1) + 1, ncol * (w + 1) + 1), 128, dtype=torch.uint8)
    for k in range(n):
        r, c = divmod(k, ncol)
        grid[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + c * (w + 1) : 1 + c * (w + 1) + w] = x[k, 0]
    img = Image.fromarray(grid.numpy(), mode="L")
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def sample_digits(pipe, n: int = 64, *, seed: int = 0, num_inference_steps: int = 1000) -> torch.Tensor:
    """``n`` samples from a DDPM pipeline as [n,1,H,W] in [-1, 1] (seeded, DDPM ancestral sampling)."""
    g = torch.Generator().manual_seed(seed)
    out = pipe(batch_size=n, generator=g, num_inference_steps=num_inference_steps, output_type="np")
    x = torch.from_numpy(out.images).permute(0, 3, 1, 2)  # [n,1,H,W] in [0,1]
    return x * 2 - 1


def main(argv: Sequence[str] | None = None) -> int:
    import argparse
    import json
    import time

    from .ddpm import train_ddpm

    r = DIGITS_DDPM_TRAINING
    p = argparse.ArgumentParser(
        description="Train the small DDPM on the scikit-learn digits (the committed default model)."
    )
    p.add_argument("--out-dir", default=str(digits_ddpm_path()), help="pipeline folder (default: the package asset)")
    p.add_argument("--n-train", type=int, default=DEFAULT_N_TRAIN, help="first N digits are the training set")
    p.add_argument("--size", type=int, default=DEFAULT_SIZE)
    p.add_argument("--steps", type=int, default=r["steps"])
    p.add_argument("--batch-size", type=int, default=r["batch_size"])
    p.add_argument("--lr", type=float, default=r["lr"])
    p.add_argument("--seed", type=int, default=r["seed"])
    p.add_argument("--warmup-steps", type=int, default=r["warmup_steps"])
    p.add_argument("--lr-schedule", choices=["cosine", "constant"], default=r["lr_schedule"])
    p.add_argument("--ema-decay", type=float, default=r["ema_decay"], help="0 disables EMA")
    p.add_argument("--checkpoint-every", type=int, default=r["checkpoint_every"])
    p.add_argument("--threads", type=int, default=r["num_threads"],
                   help="torch threads while training (0: leave torch's default)")
    p.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--samples", default=None, help="write an 8x8 grid of samples to this PNG afterwards")
    p.add_argument("--train-grid", default=None, help="write an 8x8 grid of training digits to this PNG")
    p.add_argument("--sample-steps", type=int, default=1000, help="DDPM steps for the sample grid")
    p.add_argument("--sample-seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)  # also for sampling afterwards

    train, _ = digits_split(args.n_train, args.size)
    if args.train_grid:
        _save_grid(train.images[:64], Path(args.train_grid))
    t0 = time.time()
    result = train_ddpm(
        train.images,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        out_dir=args.out_dir,
        warmup_steps=args.warmup_steps,
        lr_schedule=args.lr_schedule,
        ema_decay=args.ema_decay or None,
        checkpoint_every=args.checkpoint_every,
        progress=not args.no_progress,
        resume=not args.no_resume,
        train_ids=train.ids,
        num_threads=args.threads or None,
    )
    print(json.dumps({"out_dir": str(result.out_dir), "final_loss": result.final_loss,
                      "train_seconds": result.seconds, "wall_seconds": time.time() - t0}, indent=1))
    if args.samples:
        t1 = time.time()
        x = sample_digits(result.pipeline, 64, seed=args.sample_seed, num_inference_steps=args.sample_steps)
        _save_grid(x, Path(args.samples))
        print(f"wrote {args.samples} ({time.time() - t1:.1f}s)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
