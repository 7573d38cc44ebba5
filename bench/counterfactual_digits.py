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
    python bench/counterfactual_digits.py --report              # statistics, figure, docs section only

``--report`` trains nothing: it regenerates any image a run did not store (from the kept model, which
also checks that sampling is deterministic) and keeps the originals and NDA's top items beside the runs
in the JSON (so later reports need nothing from the work dir), then writes the per-method statistics (mean L2 with a
bootstrap interval over samples, paired comparison with the random control and a sign test), the
figure ``docs/images/counterfactual_digits.png`` and the table between the ``counterfactual`` markers
of ``docs/evaluation.md``. It runs automatically at the end of a complete run.
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
from bench.common import write_docs_section  # noqa: E402
from diffusers_attr.eval import baselines as B  # noqa: E402
from diffusers_attr.training import digits_split  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "counterfactual_digits.json"
FIGURE = ROOT / "docs" / "images" / "counterfactual_digits.png"
DOCS = ROOT / "docs" / "evaluation.md"
BASELINES = ("dtrak_square", "dtrak_loss", "pixel_cosine", "pixel_dot", "imagewise", "patch_nearest")
NDA_PATCH = {"nda": 7, "nda_p11": 11}  # trajectory mode at the recorded t=100/200/300
METHOD_ORDER = (*NDA_PATCH, "baseline", "random")


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
    p.add_argument("--report", action="store_true", help="only statistics, figure and docs from finished runs")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    deadline = time.time() + 60 * args.max_minutes if args.max_minutes else None

    work = Path(args.work_dir)
    train, _ = digits_split()
    recipe = dict(L.SUBSET_RECIPE, steps=args.steps)
    full_dir = work / "full" if args.steps == L.SUBSET_RECIPE["steps"] else work / f"full-steps{args.steps}"
    cf = work / "counterfactual" / f"steps{args.steps}"
    if args.report:
        return report(args, cf, train)
    L.train_model(train.images, train.ids, full_dir, recipe)
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
    methods = [m.strip() for m in args.methods.split(",")]
    unknown = set(methods) - set(METHOD_ORDER)
    if unknown:
        raise SystemExit(f"unknown --methods {sorted(unknown)}; choose from {METHOD_ORDER}")
    score_path = cf / f"scores_seed{args.seed}_n{args.samples}_{args.baseline}.pt"
    scores = torch.load(score_path) if score_path.is_file() else {}
    for method in {"nda", *methods} - {"random", *scores}:  # the figure always shows NDA's top items
        if method == "baseline":
            scores[method] = baseline_scores(args.baseline, x0, y, full_dir)
        else:
            scores[method] = B.nda_noisy_scores(
                [orig["states"][t] for t in L.DEFAULT_T], [L.coefficients(t)[0] for t in L.DEFAULT_T],
                [L.coefficients(t)[1] for t in L.DEFAULT_T], y, patch_size=NDA_PATCH[method])
        torch.save(scores, score_path)

    out_path = Path(args.out)
    results = json.loads(out_path.read_text()) if out_path.is_file() else {}
    key = f"steps{args.steps}_seed{args.seed}_remove{args.remove}"
    runs = results.setdefault(key, {"recipe": {k: v for k, v in recipe.items() if k != "unet_config"},
                                     "baseline": args.baseline, "runs": []})
    runs["baseline"] = args.baseline
    done = {(r["method"], r["sample"]) for r in runs["runs"]}
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
            folder = model_folder(cf, method, args.baseline, i)
            t0 = time.perf_counter()
            L.train_model(y[keep], [train.ids[k] for k in keep], folder, recipe)
            x_new = regenerate(folder, args.seed + i)
            dist = float(np.linalg.norm(x_new - x0[i, 0].numpy()))
            runs["runs"].append(dict(method=method, baseline=args.baseline if method == "baseline" else None, sample=i,
                                     l2=dist, removed=[train.ids[k] for k in sorted(removed.tolist())],
                                     seconds=time.perf_counter() - t0, image=np.round(x_new, 5).tolist()))
            out_path.parent.mkdir(parents=True, exist_ok=True)
            out_path.write_text(json.dumps(results, indent=1) + "\n")
            log(f"sample {i} {folder.name}: L2 {dist:.3f} ({time.perf_counter() - t0:.0f}s)")
    return report(args, cf, train)


def model_folder(cf: Path, method: str, baseline: str, sample: int) -> Path:
    name = method if method != "baseline" else f"baseline-{baseline}"
    return cf / f"{name}-{sample:02d}"


def regenerate(folder: Path, seed: int) -> np.ndarray:
    """The sample of the model in ``folder`` from ``seed``: ``[16, 16]`` in [-1, 1]."""
    x, _ = L.sample_with_trajectory(L.load_unet(folder), 1, seed)
    return x[0, 0].numpy()


# --------------------------------------------------------------------------- report
FIGURE_TOP = 4  # NDA's top training images shown per sample


def report(args, cf: Path, train) -> int:
    """Statistics, figure and docs section from the finished runs of this setting."""
    out_path = Path(args.out)
    results = json.loads(out_path.read_text())
    key = f"steps{args.steps}_seed{args.seed}_remove{args.remove}"
    if key not in results or not results[key]["runs"]:
        raise SystemExit(f"no finished runs for {key} in {out_path}; run without --report first")
    runs = results[key]
    if "originals" not in runs:  # kept beside the runs, so the report needs nothing from the work dir
        orig = torch.load(cf / f"originals_seed{args.seed}_n{args.samples}.pt")
        scores = torch.load(cf / f"scores_seed{args.seed}_n{args.samples}_{runs['baseline']}.pt")
        runs["originals"] = np.round(orig["x0"][:, 0].numpy(), 5).tolist()
        runs["nda_top"] = scores["nda"].topk(FIGURE_TOP, dim=1).indices.tolist()
    originals = np.array(runs["originals"], dtype=np.float32)
    for run in runs["runs"]:
        if "image" not in run:  # runs from before images were stored: the kept model regenerates it
            x_new = regenerate(model_folder(cf, run["method"], run["baseline"] or runs["baseline"], run["sample"]),
                               args.seed + run["sample"])
            again = float(np.linalg.norm(x_new - originals[run["sample"]]))
            if abs(again - run["l2"]) > 1e-3:
                raise SystemExit(f"sample {run['sample']} {run['method']}: regenerated L2 {again:.4f} != stored "
                                 f"{run['l2']:.4f}; sampling is not deterministic on this machine")
            run["image"] = np.round(x_new, 5).tolist()
    stats = statistics(runs["runs"])
    runs["statistics"] = stats
    out_path.write_text(json.dumps(results, indent=1) + "\n")
    draw_figure(runs, originals, train.images[:, 0].numpy(), runs["nda_top"], FIGURE)
    write_docs_section("counterfactual", markdown(stats, runs), DOCS)
    log(f"report: {len(runs['runs'])} runs -> {FIGURE.relative_to(ROOT)}, {DOCS.relative_to(ROOT)}")
    return 0


def _bootstrap_mean(values: np.ndarray, seed: int = 0, n: int = 10_000) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n, len(values)))].mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def statistics(runs: list[dict]) -> dict:
    """Per method: mean/median L2 with a bootstrap interval; paired against ``random`` on the samples
    both finished: mean difference with its interval, wins, and a two-sided sign test."""
    from scipy.stats import binomtest

    by = {m: {r["sample"]: r["l2"] for r in runs if r["method"] == m} for m in METHOD_ORDER}
    stats = {}
    for method, l2 in by.items():
        if not l2:
            continue
        values = np.array(list(l2.values()))
        entry = dict(n=len(values), mean=float(values.mean()), median=float(np.median(values)))
        entry["ci_low"], entry["ci_high"] = _bootstrap_mean(values)
        shared = sorted(set(l2) & set(by["random"]))
        if method != "random" and shared:
            diff = np.array([l2[i] - by["random"][i] for i in shared])
            wins = int((diff > 0).sum())
            entry["vs_random"] = dict(
                n=len(shared), mean_diff=float(diff.mean()), wins=wins,
                sign_test_p=float(binomtest(wins, len(shared)).pvalue),
            )
            entry["vs_random"]["ci_low"], entry["vs_random"]["ci_high"] = _bootstrap_mean(diff)
        stats[method] = entry
    return stats


def methods_run(runs: dict) -> list[str]:
    return [m for m in METHOD_ORDER if any(r["method"] == m for r in runs["runs"])]


def method_label(method: str, baseline: str) -> str:
    return {"nda": "NDA top-100 (product default)", "nda_p11": "NDA p=11 top-100", "baseline": f"{baseline} top-100",
            "random": "100 random"}[method]


def markdown(stats: dict, runs: dict) -> str:
    baseline = runs["baseline"]
    samples = sorted({r["sample"] for r in runs["runs"]})
    lines = [f"*{len(runs['runs'])} retrains on {len(samples)} samples; pixel L2 distance (16x16, pixels in [-1, 1]) "
             "between the regeneration and the original; 95% bootstrap intervals over samples. Generated by "
             "`python bench/counterfactual_digits.py --report`.*", "",
             "| removed | samples | mean L2 | median | minus random, paired | moved more than random | sign test p |",
             "|---|---|---|---|---|---|---|"]
    for method in METHOD_ORDER:
        if method not in stats:
            continue
        e = stats[method]
        paired = e.get("vs_random")
        lines.append(
            f"| {method_label(method, baseline)} | {e['n']} | {e['mean']:.2f} [{e['ci_low']:.2f}, {e['ci_high']:.2f}] "
            f"| {e['median']:.2f} | "
            + (f"{paired['mean_diff']:+.2f} [{paired['ci_low']:+.2f}, {paired['ci_high']:+.2f}] | "
               f"{paired['wins']} of {paired['n']} | {paired['sign_test_p']:.3f} |" if paired else "| | |")
        )
    methods = methods_run(runs)
    lines += ["", "Per sample (L2):", "", "| sample | " + " | ".join(method_label(m, baseline) for m in methods) + " |",
              "|---" * (len(methods) + 1) + "|"]
    by = {(r["method"], r["sample"]): r["l2"] for r in runs["runs"]}
    for i in samples:
        cells = [f"{by[(m, i)]:.2f}" if (m, i) in by else "not run" for m in methods]
        lines.append(f"| {i} | " + " | ".join(cells) + " |")
    lines += ["", "![originals, regenerations after each removal, and NDA's top removed training images]"
              "(images/counterfactual_digits.png)"]
    return "\n".join(lines)


def draw_figure(runs: dict, originals: np.ndarray, train: np.ndarray, nda_top: list[list[int]], path: Path) -> None:
    """One row per sample: the original, the regeneration after each removal (with its L2), and NDA's
    highest-scoring training images (``nda_top[sample]``: the first of the 100 it removed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    baseline = runs["baseline"]
    by = {(r["method"], r["sample"]): r for r in runs["runs"]}
    samples = sorted({r["sample"] for r in runs["runs"]})
    methods = methods_run(runs)
    top = len(nda_top[0])
    columns = 1 + len(methods) + top
    fig, axes = plt.subplots(len(samples), columns, figsize=(1.25 * columns, 1.35 * len(samples) + 0.5), squeeze=False)
    titles = ["original"] + [method_label(m, baseline).replace(" (product default)", "") + "\nremoved" for m in methods]
    titles += [f"NDA top-{top}\n(removed)"] + [""] * (top - 1)
    for row, i in enumerate(samples):
        panels = [(originals[i], "")]
        for m in methods:
            run = by.get((m, i))
            panels.append((np.array(run["image"]) if run else None, f"L2 {run['l2']:.2f}" if run else "not run"))
        panels += [(train[k], f"#{k}") for k in nda_top[i]]
        panels += [(None, "")] * (columns - len(panels))
        for col, (image, label) in enumerate(panels):
            ax = axes[row, col]
            ax.set_xticks([]), ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(image is not None)
            if image is not None:
                ax.imshow(image, cmap="gray", vmin=-1, vmax=1)
            ax.set_xlabel(label, fontsize=7, labelpad=2)
            if row == 0:
                ax.set_title(titles[col], fontsize=7)
        axes[row, 0].set_ylabel(f"sample {i}", fontsize=7)
    fig.suptitle("Counterfactual check: regenerate with the same seed after removing 100 training images", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
