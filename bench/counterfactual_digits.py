"""Counterfactual check on the digits DDPM: remove an attribution's top training images, retrain,
regenerate with the same seed, measure how far the image moves.

For each of ``--samples`` generated images (the full-data model of ``bench/lds_digits.py``, same short
recipe; sample ``i`` is generated alone from ``torch.Generator().manual_seed(seed + i)``, DDPM ancestral
sampling, 1000 steps), and for each method in ``--methods``:

* ``nda``: the product default, trajectory mode, p=7 at the recorded states t=100/200/300;
* the best baseline by LDS (``--baseline``, default ``imagewise``; any name of
  ``BASELINES``);
* ``random``: ``--remove`` training images drawn at random (seeded per sample);

the ``--remove`` (100) highest-scoring training images are removed, a model is retrained on the other
900 with exactly the recipe of the full-data model (``--steps`` shortens it; then the full-data
model is retrained with the shortened recipe too, so every comparison uses one recipe), the sample is
regenerated with the same seed, and the pixel L2 distance (pixels in [-1, 1], 16x16) to the original
is recorded. Larger distance = the removed images mattered more. ``random`` is the control for "any
10% of the data removed" (retraining changes samples even when the removed images are irrelevant).

Resumable: each retrained model lives in ``--work-dir/counterfactual/<method>-<i>`` and each result is
appended to ``bench/results/counterfactual_digits.json`` as soon as it exists; rerun the same command
to continue. Runs are interleaved (sample 0: nda, baseline, random; sample 1: ...) so a partial run
is balanced.

    python bench/counterfactual_digits.py                       # 10 samples x 3 methods = 30 retrains
    python bench/counterfactual_digits.py --samples 4 --steps 750 --max-minutes 60
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import lds_digits as L  # noqa: E402
from diffusers_attr.eval import baselines as B  # noqa: E402
from diffusers_attr.training import digits_split  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "counterfactual_digits.json"
BASELINES = ("dtrak_square", "dtrak_loss", "pixel_cosine", "pixel_dot", "imagewise", "patch_nearest")


def log(msg):
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def baseline_scores(name: str, x0: torch.Tensor, train: torch.Tensor, full_dir: Path) -> torch.Tensor:
    if name.startswith("dtrak"):
        from diffusers import DDPMScheduler

        abar = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2").alphas_cumprod
        return B.DTRAK(L.load_unet(full_dir), abar, function=name.split("_")[1], seed=0)(x0, train)
    if name.startswith("pixel"):
        return B.PixelSimilarity(name.split("_")[1])(x0, train)
    if name == "imagewise":
        return B.ImageWise([L.coefficients(t) for t in L.DEFAULT_T], draws=2)(x0, train)
    if name == "patch_nearest":
        return B.PatchNearest(5, 10)(x0, train)
    raise ValueError(f"unknown baseline {name!r}; choose from {BASELINES}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work-dir", default=str(L.DEFAULT_WORK))
    p.add_argument("--samples", type=int, default=10)
    p.add_argument("--remove", type=int, default=100)
    p.add_argument("--methods", default="nda,baseline,random")
    p.add_argument("--baseline", default="imagewise", choices=BASELINES)
    p.add_argument("--seed", type=int, default=5000, help="sample i uses seed + i")
    p.add_argument("--steps", type=int, default=L.SUBSET_RECIPE["steps"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--max-minutes", type=float, default=None, help="start no new retrain after this")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    deadline = time.time() + 60 * args.max_minutes if args.max_minutes else None

    work = Path(args.work_dir)
    train, _ = digits_split()
    recipe = dict(L.SUBSET_RECIPE, steps=args.steps)
    full_dir = work / "full" if args.steps == L.SUBSET_RECIPE["steps"] else work / f"full-steps{args.steps}"
    L.train_model(train.images, train.ids, full_dir, recipe)
    cf = work / "counterfactual" / f"steps{args.steps}"
    cf.mkdir(parents=True, exist_ok=True)

    # originals (one sample per seed, with its trajectory) and the scores of every method
    orig_path = cf / f"originals_seed{args.seed}_n{args.samples}.pt"
    if not orig_path.is_file():
        unet = L.load_unet(full_dir)
        x0, states = [], {t: [] for t in L.DEFAULT_T}
        for i in range(args.samples):
            x, st = L.sample_with_trajectory(unet, 1, args.seed + i)
            x0.append(x)
            for t in L.DEFAULT_T:
                states[t].append(st[t])
        torch.save({"x0": torch.cat(x0), "states": {t: torch.cat(v) for t, v in states.items()}}, orig_path)
        log(f"generated {args.samples} originals")
    orig = torch.load(orig_path)
    x0 = orig["x0"]
    y = train.images
    score_path = cf / f"scores_seed{args.seed}_n{args.samples}_{args.baseline}.pt"
    if not score_path.is_file():
        nda = B.nda_noisy_scores([orig["states"][t] for t in L.DEFAULT_T], [L.coefficients(t)[0] for t in L.DEFAULT_T],
                                 [L.coefficients(t)[1] for t in L.DEFAULT_T], y, patch_size=7)
        base = baseline_scores(args.baseline, x0, y, full_dir)
        torch.save({"nda": nda, "baseline": base}, score_path)
    scores = torch.load(score_path)

    out_path = Path(args.out)
    results = json.loads(out_path.read_text()) if out_path.is_file() else {}
    key = f"steps{args.steps}_seed{args.seed}_remove{args.remove}"
    runs = results.setdefault(key, {"recipe": {k: v for k, v in recipe.items() if k != "unet_config"},
                                     "baseline": args.baseline, "runs": []})
    runs["baseline"] = args.baseline
    done = {(r["method"], r["sample"]) for r in runs["runs"]}
    methods = [m.strip() for m in args.methods.split(",")]
    for i in range(args.samples):
        for method in methods:
            if (method, i) in done:
                continue
            if deadline is not None and time.time() > deadline:
                log("--max-minutes reached; rerun the same command to continue")
                return 0
            if method == "random":
                removed = np.random.default_rng(10_000 + i).choice(len(y), args.remove, replace=False)
            else:
                removed = scores[method][i].topk(args.remove).indices.numpy()
            keep = np.setdiff1d(np.arange(len(y)), removed)
            name = method if method != "baseline" else f"baseline-{args.baseline}"
            folder = cf / f"{name}-{i:02d}"
            t0 = time.perf_counter()
            L.train_model(y[keep], [train.ids[k] for k in keep], folder, recipe)
            x_new, _ = L.sample_with_trajectory(L.load_unet(folder), 1, args.seed + i)
            dist = float((x_new[0] - x0[i]).flatten().norm())
            runs["runs"].append(dict(method=method, baseline=args.baseline if method == "baseline" else None, sample=i,
                                     l2=dist, removed=[train.ids[k] for k in sorted(removed.tolist())],
                                     seconds=time.perf_counter() - t0))
            out_path.parent.mkdir(parents=True, exist_ok=True)
            out_path.write_text(json.dumps(results, indent=1) + "\n")
            log(f"sample {i} {name}: L2 {dist:.3f} ({time.perf_counter() - t0:.0f}s)")
    summary(runs)
    return 0


def summary(runs) -> None:
    by = {}
    for r in runs["runs"]:
        by.setdefault(r["method"], []).append(r["l2"])
    for m, v in by.items():
        print(f"{m:10s} n={len(v):2d} mean L2 {np.mean(v):.3f} (median {np.median(v):.3f})")


if __name__ == "__main__":
    raise SystemExit(main())
