"""The second embedded model: a small latent diffusion pipeline trained on the digits at 32 px.

An ``AutoencoderKL`` (1 channel, 32x32 pixels <-> 4x8x8 latents, ~650k parameters) is trained first
(reconstruction MSE plus a small KL term); its ``scaling_factor`` is then set to one over the standard
deviation of the training latents, as Stable Diffusion's is. A latent ``UNet2DModel`` (8 -> 4,
attention at 4x4) is trained with the frozen autoencoder on the scaled posterior means of the
training digits (``encode_latents``) by the same seeded, resumable loop as the pixel model
(:func:`diffusers_attr.training.train_ddpm`). Both are saved together as an ``LDMPipeline``
(``vqvae`` = the AutoencoderKL, ``unet``, ``scheduler``), which diffusers samples and decodes as is.

Run ``python -m diffusers_attr.training.latent --help`` to retrain the committed model in
``diffusers_attr/assets/digits_ldm`` (recipes: ``DIGITS_VAE_TRAINING``, ``DIGITS_LDM_TRAINING``).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from .ddpm import _batch_indices, _fingerprint, _generator, _lr_lambda, train_ddpm
from .digits import DEFAULT_N_TRAIN, digits_split

__all__ = [
    "DIGITS_LDM_TRAINING",
    "DIGITS_VAE_TRAINING",
    "LATENT_SIZE",
    "LATENT_UNET_CONFIG",
    "LATENT_VAE_CONFIG",
    "PIXEL_SIZE",
    "digits_ldm_path",
    "encode_latents",
    "load_digits_ldm",
    "train_autoencoder",
    "train_latent_unet",
]

PIXEL_SIZE = 32
LATENT_SIZE = 8

LATENT_VAE_CONFIG: dict[str, Any] = dict(
    in_channels=1, out_channels=1, latent_channels=4, sample_size=PIXEL_SIZE,
    down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
    block_out_channels=(16, 32, 64), layers_per_block=1, norm_num_groups=8, mid_block_add_attention=False,
)
# ~700k parameters: 8x8 -> 4x4, self-attention at 4x4 (one subset model trains in about a minute on one core).
LATENT_UNET_CONFIG: dict[str, Any] = dict(
    sample_size=LATENT_SIZE, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
    down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
    norm_num_groups=8, attention_head_dim=8,
)
DIGITS_VAE_TRAINING = dict(steps=400, batch_size=32, lr=2e-3, seed=0, kl_weight=1e-5, warmup_steps=20, num_threads=1)
DIGITS_LDM_TRAINING = dict(
    steps=6000, batch_size=32, lr=2e-3, seed=0, warmup_steps=100, lr_schedule="cosine", ema_decay=0.995,
    checkpoint_every=250, num_threads=1,
)


def digits_ldm_path() -> Path:
    """The folder of the committed latent digits pipeline (``LDMPipeline.from_pretrained`` loads it)."""
    return Path(__file__).resolve().parent.parent / "assets" / "digits_ldm"


def load_digits_ldm(**kwargs):
    """``LDMPipeline.from_pretrained(digits_ldm_path(), **kwargs)``: 32x32 greyscale digits from 4x8x8
    latents, trained on the 1000 training digits (``digits_split(size=32)[0]``)."""
    from diffusers import LDMPipeline

    path = digits_ldm_path()
    if not (path / "model_index.json").is_file():
        raise FileNotFoundError(f"the latent digits model is missing from {path}; retrain it with "
                                "python -m diffusers_attr.training.latent")
    return LDMPipeline.from_pretrained(str(path), **kwargs)


@torch.no_grad()
def encode_latents(vae, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Scaled posterior means ``vae.encode(x).latent_dist.mean * scaling_factor`` of images in [-1, 1]:
    the deterministic latents the latent UNet is trained on (and that an index of them holds)."""
    vae.eval()
    out = [vae.encode(images[i:i + batch_size].float()).latent_dist.mean for i in range(0, len(images), batch_size)]
    return torch.cat(out) * float(vae.config.scaling_factor)


def train_autoencoder(
    images: torch.Tensor, *, steps: int, batch_size: int, lr: float, seed: int, kl_weight: float = 1e-5,
    warmup_steps: int = 20, config: dict[str, Any] | None = None, num_threads: int | None = None,
    progress: bool = True,
):
    """Train an ``AutoencoderKL`` on ``images`` [N, C, H, W] in [-1, 1] (MSE + ``kl_weight`` x KL per
    image, AdamW with warmup and cosine decay; seeded data order and posterior samples) and set its
    ``scaling_factor`` to ``1 / std`` of the posterior means of ``images``. Returns ``(vae, info)``."""
    from diffusers import AutoencoderKL

    if images.ndim != 4 or len(images) < 1 or steps < 1 or batch_size < 1:
        raise ValueError(f"need images [N, C, H, W] and positive steps / batch_size, got {tuple(images.shape)}")
    previous = torch.get_num_threads()
    if num_threads:
        torch.set_num_threads(num_threads)
    try:
        torch.manual_seed(seed)
        vae = AutoencoderKL(**(config or LATENT_VAE_CONFIG))
        vae.train()
        opt = torch.optim.AdamW(vae.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(warmup_steps, steps, "cosine", 0.0))
        data = images.float()
        cache: dict[int, torch.Tensor] = {}
        losses = []
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=steps, desc="train_autoencoder", dynamic_ncols=True)
        t0 = time.perf_counter()
        for step in range(steps):
            x = data[_batch_indices(len(data), batch_size, step, seed, cache)]
            post = vae.encode(x).latent_dist
            g = _generator(seed, "vae", step)
            z = post.mean + post.std * torch.randn(post.mean.shape, generator=g)
            recon = vae.decode(z).sample
            mse = F.mse_loss(recon, x)
            loss = mse + kl_weight * post.kl().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(float(mse.detach()))
            if bar is not None:
                bar.update(1)
                if step % 10 == 0:
                    bar.set_postfix(mse=f"{sum(losses[-50:]) / len(losses[-50:]):.4f}")
        if bar is not None:
            bar.close()
        vae.eval()
        vae.register_to_config(scaling_factor=1.0)
        std = float(encode_latents(vae, data).std())
        vae.register_to_config(scaling_factor=1.0 / std)
        info = dict(
            recipe=dict(steps=steps, batch_size=batch_size, lr=lr, seed=seed, kl_weight=kl_weight,
                        warmup_steps=warmup_steps, config=json.loads(json.dumps(config or LATENT_VAE_CONFIG)),
                        data_fingerprint=_fingerprint(data), n_images=len(data)),
            final_mse=sum(losses[-50:]) / len(losses[-50:]), train_seconds=time.perf_counter() - t0,
            scaling_factor=1.0 / std, torch_threads=torch.get_num_threads(),
            mse_curve=[sum(losses[i:i + 20]) / len(losses[i:i + 20]) for i in range(0, len(losses), 20)],
        )
        return vae, info
    finally:
        torch.set_num_threads(previous)


def train_latent_unet(latents: torch.Tensor, *, out_dir: str | os.PathLike, unet_config: dict | None = None,
                      **recipe):
    """:func:`train_ddpm` on scaled latents [N, 4, 8, 8] (no pixel-range check), ``LATENT_UNET_CONFIG``
    by default; ``recipe`` as ``train_ddpm``'s keyword arguments."""
    return train_ddpm(latents, out_dir=out_dir, unet_config=unet_config or LATENT_UNET_CONFIG,
                      value_range=None, **recipe)


def save_ldm(vae, unet, scheduler, out_dir: Path, info: dict) -> None:
    """``LDMPipeline(vqvae=vae, unet=unet, scheduler=scheduler).save_pretrained(out_dir)`` plus
    ``training_info.json``, written to a temporary folder and moved into place."""
    from diffusers import LDMPipeline

    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    LDMPipeline(vqvae=vae, unet=unet, scheduler=scheduler).save_pretrained(str(tmp), safe_serialization=True)
    (tmp / "training_info.json").write_text(json.dumps(info, indent=1) + "\n")
    keep = out_dir / "README.md"
    if keep.is_file():
        shutil.copy(keep, tmp / "README.md")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    v, r = DIGITS_VAE_TRAINING, DIGITS_LDM_TRAINING
    p = argparse.ArgumentParser(description="Train the small latent diffusion model on the digits at 32 px "
                                "(the committed diffusers_attr/assets/digits_ldm).")
    p.add_argument("--out-dir", default=str(digits_ldm_path()))
    p.add_argument("--n-train", type=int, default=DEFAULT_N_TRAIN)
    p.add_argument("--vae-steps", type=int, default=v["steps"])
    p.add_argument("--vae", default=None, help="reuse the autoencoder (vqvae/) of this pipeline folder instead of training one")
    p.add_argument("--steps", type=int, default=r["steps"], help="latent UNet optimiser steps")
    p.add_argument("--batch-size", type=int, default=r["batch_size"])
    p.add_argument("--seed", type=int, default=r["seed"])
    p.add_argument("--work-dir", default=None, help="UNet checkpoint folder (default: OUT_DIR.work, removed after)")
    p.add_argument("--threads", type=int, default=r["num_threads"])
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DModel

    torch.set_num_threads(args.threads)
    train, _ = digits_split(args.n_train, PIXEL_SIZE)
    if args.vae:
        vae, vae_info = AutoencoderKL.from_pretrained(str(Path(args.vae) / "vqvae")), {"reused": True}
        vae_info.update(json.loads((Path(args.vae) / "training_info.json").read_text()).get("vae", {}))
    else:
        vae, vae_info = train_autoencoder(train.images, **dict(v, steps=args.vae_steps, seed=args.seed),
                                          progress=not args.no_progress)
    latents = encode_latents(vae, train.images)
    work = Path(args.work_dir or str(args.out_dir) + ".work")
    recipe = dict(r, steps=args.steps, batch_size=args.batch_size, seed=args.seed)
    result = train_latent_unet(latents, out_dir=work, train_ids=train.ids, progress=not args.no_progress, **recipe)
    unet = UNet2DModel.from_pretrained(str(work / "unet"))
    unet_info = json.loads((work / "training_info.json").read_text())
    scheduler = DDPMScheduler.from_pretrained(str(work / "scheduler"))
    info = dict(vae=vae_info, unet=unet_info, pixel_size=PIXEL_SIZE, latent_shape=list(latents.shape[1:]),
                train_ids=train.ids, data="scikit-learn digits 0..n_train-1, bilinear to 32x32, in [-1, 1]")
    save_ldm(vae, unet, scheduler, Path(args.out_dir), info)
    if args.work_dir is None:
        shutil.rmtree(work)
    print(json.dumps({"out_dir": str(args.out_dir), "vae_mse": vae_info.get("final_mse"),
                      "scaling_factor": vae.config.scaling_factor, "unet_final_loss": result.final_loss,
                      "unet_seconds": result.seconds}, indent=1))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
