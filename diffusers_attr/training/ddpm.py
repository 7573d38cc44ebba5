"""A plain, seeded, resumable diffusers DDPM training loop for small pixel-space image sets.

``train_ddpm(images, steps=..., batch_size=..., lr=..., seed=..., out_dir=...)`` trains a small
``UNet2DModel`` with the epsilon-MSE objective under a ``DDPMScheduler`` and saves
``DDPMPipeline(unet, scheduler).save_pretrained(out_dir)`` (safetensors). It takes any
``[N, C, H, W]`` tensor in [-1, 1], so the same loop trains the committed digits model and one
model per random training subset (counterfactual / LDS evaluation).

Determinism: the UNet is initialised after ``torch.manual_seed(seed)``; the data order of epoch
``e`` and the noise / timesteps of step ``s`` come from generators seeded by ``(seed, e)`` and
``(seed, s)``. Nothing depends on global RNG state while training, so a run that is interrupted and
resumed from its checkpoint (model, EMA, optimiser, LR schedule, step, loss history) ends with the
same weights as an uninterrupted run (bitwise on the same machine and thread count).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F

__all__ = ["DEFAULT_UNET_CONFIG", "TrainResult", "default_unet_config", "train_ddpm", "CHECKPOINT_DIR"]

CHECKPOINT_DIR = "checkpoint"  # inside out_dir
_STATE_FILE = "state.pt"
_INFO_FILE = "training_info.json"

# ~1.1M parameters (4.5 MB float32): resolutions 16 -> 8 -> 4, self-attention at the 4x4 level
# (last down block, mid block, first up block); attention at 8x8 costs ~35% more per step on CPU.
DEFAULT_UNET_CONFIG: dict[str, Any] = dict(
    block_out_channels=(32, 64, 64),
    layers_per_block=1,
    down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
    up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
    norm_num_groups=8,
    attention_head_dim=8,
)


def default_unet_config(images: torch.Tensor) -> dict[str, Any]:
    """``DEFAULT_UNET_CONFIG`` sized for ``images`` [N, C, H, W] (square H = W, divisible by 4)."""
    _, c, h, w = images.shape
    if h != w:
        raise ValueError(f"the default UNet needs square images, got {h}x{w}")
    return dict(DEFAULT_UNET_CONFIG, sample_size=int(h), in_channels=int(c), out_channels=int(c))


@dataclass
class TrainResult:
    """What ``train_ddpm`` did. ``pipeline`` is None when it stopped early (``stop_after_steps``)."""

    pipeline: Any
    out_dir: Path
    step: int  # optimiser steps completed
    steps: int  # steps requested
    final_loss: float  # mean training loss over the last (up to) 100 steps
    seconds: float  # training time, summed over resumed sessions
    resumed_from: int = 0  # step of the checkpoint this call resumed from (0: fresh start)
    losses: list[float] = field(default_factory=list, repr=False)

    @property
    def completed(self) -> bool:
        return self.step >= self.steps


def _generator(seed: int, stream: str, k: int) -> torch.Generator:
    digest = hashlib.sha256(f"{seed}:{stream}:{k}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))


def _batch_indices(n: int, batch_size: int, step: int, seed: int, cache: dict[int, torch.Tensor]) -> torch.Tensor:
    """Indices of step ``step``: a seeded permutation per epoch, read as one endless stream."""
    start = step * batch_size
    pos = torch.arange(start, start + batch_size)
    epochs = (pos // n).tolist()
    out = torch.empty(batch_size, dtype=torch.long)
    for e in sorted(set(epochs)):
        if e not in cache:
            if len(cache) > 4:
                cache.clear()
            cache[e] = torch.randperm(n, generator=_generator(seed, "epoch", e))
        sel = (pos // n) == e
        out[sel] = cache[e][pos[sel] % n]
    return out


def _lr_lambda(warmup_steps: int, steps: int, schedule: str, min_lr_ratio: float):
    def f(step: int) -> float:  # step = number of optimiser steps taken so far
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup_steps) / max(1, steps - warmup_steps))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return f


def _fingerprint(images: torch.Tensor) -> str:
    t = images.detach().to("cpu", torch.float32).contiguous()
    h = hashlib.sha256(str(tuple(t.shape)).encode())
    h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def _atomic_torch_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train_ddpm(
    images: torch.Tensor,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    out_dir: str | os.PathLike,
    progress: bool = True,
    resume: bool = True,
    unet_config: dict[str, Any] | None = None,
    num_train_timesteps: int = 1000,
    beta_schedule: str = "squaredcos_cap_v2",
    warmup_steps: int = 100,
    lr_schedule: str = "cosine",
    min_lr_ratio: float = 0.0,
    weight_decay: float = 0.0,
    grad_clip: float | None = 1.0,
    ema_decay: float | None = 0.999,
    checkpoint_every: int = 500,
    keep_checkpoint: bool = False,
    stop_after_steps: int | None = None,
    train_ids: Sequence[str] | None = None,
    save_dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    num_threads: int | None = None,
    value_range: tuple[float, float] | None = (-1.0, 1.0),
) -> TrainResult:
    """Train a DDPM on ``images`` [N, C, H, W] (float, in [-1, 1]) and save the pipeline to ``out_dir``.

    Args:
        steps: total optimiser steps. ``batch_size``: images per step (an endless stream of seeded
            per-epoch permutations, so ``batch_size`` may exceed N). ``lr``: peak AdamW learning rate,
            reached after ``warmup_steps`` linear warmup, then ``lr_schedule`` ("cosine" to
            ``min_lr_ratio * lr`` at ``steps``, or "constant").
        seed: seeds the UNet initialisation, data order, timesteps and noise.
        out_dir: where ``DDPMPipeline.save_pretrained`` writes (``model_index.json``, ``unet/``,
            ``scheduler/``) plus ``training_info.json`` (recipe, data fingerprint, loss curve).
            A checkpoint ``out_dir/checkpoint/state.pt`` is written every ``checkpoint_every``
            steps (and on Ctrl-C) and removed at the end unless ``keep_checkpoint``.
        resume: continue from that checkpoint if there is one; if ``out_dir`` already holds a
            finished run of the same recipe and data, load it and return without training. A
            checkpoint of a different recipe or data set raises ``ValueError`` (pass
            ``resume=False`` to start over).
        unet_config: ``UNet2DModel`` kwargs (default: ``default_unet_config(images)``).
        ema_decay: keep an exponential moving average of the weights (saved instead of the raw
            weights); None disables it.
        stop_after_steps: checkpoint and return (``pipeline=None``) once this many steps are done
            in total, for time-boxed sessions; call again to continue.
        train_ids: ids of the training images, recorded in ``training_info.json``.
        save_dtype: dtype of the saved weights (``torch.float16`` halves the file).
        num_threads: ``torch.set_num_threads`` for the run (restored afterwards). On a CPU shared
            with other jobs, 1 thread can be several times faster than oversubscribed threads.
            The float results can depend on the thread count.
        value_range: the range ``images`` must lie in (diffusers pixels: [-1, 1]); None accepts any
            values, e.g. an autoencoder's scaled latents.

    Returns:
        a ``TrainResult`` with the trained ``DDPMPipeline`` (EMA weights when enabled).
    """
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    if images.ndim != 4:
        raise ValueError(f"images must be [N, C, H, W], got shape {tuple(images.shape)}")
    if steps < 1 or batch_size < 1 or len(images) < 1:
        raise ValueError("steps, batch_size and the number of images must be positive")
    if lr_schedule not in ("cosine", "constant"):
        raise ValueError(f"lr_schedule must be 'cosine' or 'constant', got {lr_schedule!r}")
    if train_ids is not None and len(train_ids) != len(images):
        raise ValueError(f"{len(train_ids)} train_ids for {len(images)} images")
    lo, hi = float(images.min()), float(images.max())
    if value_range is not None and (lo < value_range[0] - 1e-4 or hi > value_range[1] + 1e-4):
        raise ValueError(f"images must be in [{value_range[0]:g}, {value_range[1]:g}] (diffusers pixel space: "
                         f"[-1, 1]; pass value_range=None for latents), got [{lo:.3g}, {hi:.3g}]")

    if num_threads is not None:
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(num_threads)
        try:
            return train_ddpm(
                images, steps=steps, batch_size=batch_size, lr=lr, seed=seed, out_dir=out_dir,
                progress=progress, resume=resume, unet_config=unet_config,
                num_train_timesteps=num_train_timesteps, beta_schedule=beta_schedule,
                warmup_steps=warmup_steps, lr_schedule=lr_schedule, min_lr_ratio=min_lr_ratio,
                weight_decay=weight_decay, grad_clip=grad_clip, ema_decay=ema_decay,
                checkpoint_every=checkpoint_every, keep_checkpoint=keep_checkpoint,
                stop_after_steps=stop_after_steps, train_ids=train_ids, save_dtype=save_dtype,
                device=device, num_threads=None, value_range=value_range,
            )
        finally:
            torch.set_num_threads(previous_threads)

    device = torch.device(device)
    out_dir = Path(out_dir)
    ckpt_dir = out_dir / CHECKPOINT_DIR
    ckpt_path = ckpt_dir / _STATE_FILE
    data = images.detach().to(device=device, dtype=torch.float32).contiguous()
    n = data.shape[0]
    unet_config = _jsonable(dict(unet_config) if unet_config is not None else default_unet_config(data))
    scheduler = DDPMScheduler(num_train_timesteps=num_train_timesteps, beta_schedule=beta_schedule)

    recipe = _jsonable(
        dict(
            steps=steps, batch_size=batch_size, lr=lr, seed=seed, unet_config=unet_config,
            num_train_timesteps=num_train_timesteps, beta_schedule=beta_schedule,
            warmup_steps=warmup_steps, lr_schedule=lr_schedule, min_lr_ratio=min_lr_ratio,
            weight_decay=weight_decay, grad_clip=grad_clip, ema_decay=ema_decay,
            objective="epsilon-mse", optimizer="AdamW", data_fingerprint=_fingerprint(data), n_images=n,
        )
    )

    # A finished run of this exact recipe: reuse it.
    info_path = out_dir / _INFO_FILE
    if resume and info_path.is_file() and (out_dir / "model_index.json").is_file() and not ckpt_path.exists():
        try:
            info = json.loads(info_path.read_text())
        except json.JSONDecodeError:
            info = {}
        if info.get("recipe") == recipe and info.get("step") == steps:
            pipe = DDPMPipeline.from_pretrained(str(out_dir))
            return TrainResult(pipe, out_dir, steps, steps, info.get("final_loss", float("nan")),
                               info.get("train_seconds", 0.0), steps, info.get("losses", []))

    torch.manual_seed(seed)
    unet = UNet2DModel(**unet_config).to(device)
    unet.train()
    optimizer = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=weight_decay)
    lr_sched = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_lambda(warmup_steps, steps, lr_schedule, min_lr_ratio)
    )
    ema = {k: v.detach().clone() for k, v in unet.state_dict().items()} if ema_decay else None

    step, losses, seconds_before = 0, [], 0.0
    if resume and ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location=device, weights_only=False)
        if state["recipe"] != recipe:
            diff = sorted(k for k in set(recipe) | set(state["recipe"]) if recipe.get(k) != state["recipe"].get(k))
            raise ValueError(
                f"the checkpoint in {ckpt_dir} is for a different recipe or data set (differs in {diff}); "
                "pass resume=False to start over"
            )
        unet.load_state_dict(state["unet"])
        optimizer.load_state_dict(state["optimizer"])
        lr_sched.load_state_dict(state["lr_scheduler"])
        if ema is not None:
            ema = state["ema"]
        step, losses, seconds_before = state["step"], list(state["losses"]), state["seconds"]
    resumed_from = step

    def save_checkpoint(seconds: float) -> None:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        _atomic_torch_save(
            dict(recipe=recipe, step=step, unet=unet.state_dict(), optimizer=optimizer.state_dict(),
                 lr_scheduler=lr_sched.state_dict(), ema=ema, losses=losses, seconds=seconds),
            ckpt_path,
        )

    target = steps if stop_after_steps is None else min(steps, max(stop_after_steps, 0))
    alphas_cumprod = scheduler.alphas_cumprod.to(device=device, dtype=torch.float32)
    perm_cache: dict[int, torch.Tensor] = {}
    pbar = None
    if progress:
        from tqdm.auto import tqdm

        pbar = tqdm(total=steps, initial=step, desc="train_ddpm", dynamic_ncols=True)
    t_start = time.perf_counter()
    elapsed = lambda: seconds_before + time.perf_counter() - t_start  # noqa: E731
    try:
        while step < target:
            idx = _batch_indices(n, batch_size, step, seed, perm_cache)
            x0 = data[idx.to(device)]
            g = _generator(seed, "step", step)
            noise = torch.randn(x0.shape, generator=g).to(device)
            t = torch.randint(0, num_train_timesteps, (batch_size,), generator=g).to(device)
            abar = alphas_cumprod[t].view(-1, 1, 1, 1)
            xt = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
            loss = F.mse_loss(unet(xt, t).sample, noise)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(unet.parameters(), grad_clip)
            optimizer.step()
            lr_sched.step()
            step += 1
            if ema is not None:
                d = min(ema_decay, (1 + step) / (10 + step))
                with torch.no_grad():
                    for k, v in unet.state_dict().items():
                        if v.dtype.is_floating_point:
                            ema[k].mul_(d).add_(v.detach(), alpha=1 - d)
                        else:
                            ema[k].copy_(v)
            losses.append(float(loss.detach()))
            if pbar is not None:
                pbar.update(1)
                if step % 10 == 0 or step == target:
                    pbar.set_postfix(loss=f"{sum(losses[-100:]) / len(losses[-100:]):.4f}",
                                     lr=f"{lr_sched.get_last_lr()[0]:.2e}")
            if checkpoint_every and step % checkpoint_every == 0 and step < steps:
                save_checkpoint(elapsed())
    except KeyboardInterrupt:
        save_checkpoint(elapsed())
        raise
    finally:
        if pbar is not None:
            pbar.close()

    seconds = elapsed()
    final_loss = sum(losses[-100:]) / max(1, len(losses[-100:]))
    if step < steps:  # stopped early on purpose
        save_checkpoint(seconds)
        return TrainResult(None, out_dir, step, steps, final_loss, seconds, resumed_from, losses)

    final = UNet2DModel(**unet_config)
    final.load_state_dict(ema if ema is not None else unet.state_dict())
    if save_dtype != torch.float32:
        final = final.to(dtype=save_dtype)
    final.eval()
    pipe = DDPMPipeline(unet=final, scheduler=scheduler)
    out_dir.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(str(out_dir), safe_serialization=True)
    curve_every = max(1, steps // 100)
    info = dict(
        recipe=recipe, step=step, final_loss=final_loss, train_seconds=seconds,
        torch_threads=torch.get_num_threads(), device=str(device),
        n_parameters=sum(p.numel() for p in final.parameters()),
        saved_dtype=str(save_dtype).replace("torch.", ""),
        weights="ema" if ema is not None else "raw",
        loss_curve={"every": curve_every, "mean_loss": [
            sum(losses[i:i + curve_every]) / len(losses[i:i + curve_every]) for i in range(0, len(losses), curve_every)
        ]},
        train_ids=list(train_ids) if train_ids is not None else None,
    )
    info_path.write_text(json.dumps(info, indent=1) + "\n")
    if not keep_checkpoint and ckpt_dir.exists():
        shutil.rmtree(ckpt_dir)
    return TrainResult(pipe, out_dir, step, steps, final_loss, seconds, resumed_from, losses)
