"""Which default settings to ship: NDA variants scored against a committed LDS ground truth.

Generic over the benchmark: ``--benchmark pixel`` reads ``bench/results/lds_digits_groundtruth.npz``
(16 px digits; the queries are rebuilt by ``bench/lds_digits.py``'s ``prepare``, cached in its work
dir), ``--benchmark latent --ground-truth PATH`` reads a latent ground truth that holds its own
``train``/``val``/``gen`` latents, ``gen_trajectory`` and ``alphas_cumprod``. Nothing is retrained.

Every score matrix is one *piece* (one patch size, one noise level, one draw, one temperature; or
one recorded trajectory state), cached as ``.npy`` with its wall seconds under ``--work-dir``;
settings are means of pieces, so their cost is the sum of their pieces' seconds. ``--shard i/k``
computes every k-th piece (run k processes side by side on k cores). The LDS of each setting
(val and gen, 95% bootstrap interval over subsets) and its seconds per query image go to
``bench/results/lds_defaults_<benchmark>.json``; ``--report`` prints the markdown table.

    OMP_NUM_THREADS=1 python bench/lds_defaults.py --benchmark pixel --shard 0/2 &
    OMP_NUM_THREADS=1 python bench/lds_defaults.py --benchmark pixel --shard 1/2
    python bench/lds_defaults.py --benchmark pixel --report
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diffusers_attr.config import AttributionConfig  # noqa: E402
from diffusers_attr.eval import baselines as B  # noqa: E402
from diffusers_attr.eval import lds  # noqa: E402

RESULTS = ROOT / "bench" / "results"
LEVELS = (100, 200, 300)
TRAJ_T = (100, 130, 150, 160, 200, 230, 250, 260, 300)  # recorded states between the default levels


@dataclass
class Benchmark:
    """One LDS benchmark: training items, queries (val then gen), the ground truth, the schedule."""

    name: str
    train: torch.Tensor
    val: torch.Tensor
    gen: torch.Tensor
    trajectory: dict[int, torch.Tensor]  # t -> the gen queries' recorded sampler state at t
    alphas_cumprod: np.ndarray
    masks: np.ndarray
    loss_val: np.ndarray  # [S, n_val]
    loss_gen: np.ndarray  # [S, n_gen]

    def coefficients(self, t: int) -> tuple[float, float]:
        abar = float(self.alphas_cumprod[t])
        return math.sqrt(abar), math.sqrt(1 - abar)


def load_pixel(ground_truth: Path, work_dir: str | None) -> Benchmark:
    from bench import lds_digits as D

    args = argparse.Namespace(
        work_dir=work_dir or str(D.DEFAULT_WORK), steps=D.SUBSET_RECIPE["steps"], batch_size=D.SUBSET_RECIPE["batch_size"],
        lr=D.SUBSET_RECIPE["lr"], train_seed=D.SUBSET_RECIPE["seed"], n_gen=200, n_val=200, gen_seed=1234,
    )
    train, queries, query_ids, gen, _, _ = D.prepare(args)
    gt = np.load(ground_truth)
    if list(gt["query_ids"]) != query_ids:
        raise SystemExit(f"{ground_truth} was made for other queries")
    n_gen = int(json.loads(str(gt["meta"]))["n_gen"])
    from diffusers import DDPMScheduler

    abar = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2").alphas_cumprod.numpy()
    losses = gt["losses"].astype(np.float64)
    return Benchmark("pixel", train.images, queries[n_gen:], queries[:n_gen], {t: gen["states"][t] for t in TRAJ_T},
                     abar, gt["masks"], losses[:, n_gen:], losses[:, :n_gen])


def load_latent(ground_truth: Path) -> Benchmark:
    gt = np.load(ground_truth)
    traj = torch.as_tensor(gt["gen_trajectory"]).float()
    steps = [int(t) for t in gt["gen_trajectory_timesteps"]] if "gen_trajectory_timesteps" in gt.files else None
    if steps is None:
        raise SystemExit(f"{ground_truth} has gen_trajectory but no gen_trajectory_timesteps")
    trajectory = {t: traj[i] for i, t in enumerate(steps)}
    return Benchmark("latent", torch.as_tensor(gt["train"]).float(), torch.as_tensor(gt["val"]).float(),
                     torch.as_tensor(gt["gen"]).float(), trajectory, gt["alphas_cumprod"], gt["masks"],
                     gt["loss_val"].astype(np.float64), gt["loss_gen"].astype(np.float64))


def default_patch(bench: Benchmark) -> int:
    return AttributionConfig().resolved(tuple(bench.train.shape[1:])).patch_size


def piece_names(bench: Benchmark) -> list[str]:
    """Every piece, cheapest-to-most-informative first. ``nda_p{p}_t{t}_d{d}[_T{tau}]``: renoise;
    ``traj_p{p}_t{t}``: a recorded state (gen queries only); ``iw_t{t}_d{d}``: image-wise."""
    side = int(bench.train.shape[-1])
    p = default_patch(bench)
    odd = [q for q in range(3, side + 1, 2)]
    near = [q for q in (p - 2, p + 2) if q in odd]
    names = [f"iw_t{t}_d{d}" for t in (50, *LEVELS) for d in range(3)]
    names += [f"nda_p7_t200_d0"] if 7 in odd else []  # today's default at one level: the cost reference
    names += [f"nda_p{p}_t{t}_d{d}" for d in range(3) for t in LEVELS]
    names += [f"traj_p{p}_t{t}" for t in TRAJ_T if t in bench.trajectory]
    names += [f"nda_p{p}_t200_d0_T{tau}" for tau in ("0.5", "2")]
    names += [f"nda_p{p}_t{t}_d0" for t in (50, 150)]
    names += [f"nda_p{q}_t{t}_d{d}" for q in near for d in range(2) for t in LEVELS]
    return list(dict.fromkeys(names))


def compute_piece(bench: Benchmark, name: str) -> torch.Tensor:
    parts = name.split("_")
    kind, fields = parts[0], {f[0]: f[1:] for f in parts[1:]}
    t = int(fields["t"])
    a, s = bench.coefficients(t)
    if kind == "traj":
        return B.nda_noisy_scores([bench.trajectory[t]], [a], [s], bench.train, patch_size=int(fields["p"]))
    queries = torch.cat([bench.val, bench.gen])
    noisy = B.renoise(queries, a, s, 0, int(fields["d"]))
    if kind == "iw":
        return B.image_wise_scores(noisy, bench.train, a, s)
    tau = float(fields.get("T", 1.0))  # temperature: 2 sigma^2 -> tau * 2 sigma^2 in the logits
    return B.nda_noisy_scores([noisy], [a], [s * math.sqrt(tau)], bench.train, patch_size=int(fields["p"]))


def compute(bench: Benchmark, folder: Path, shard: tuple[int, int]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(piece_names(bench)):
        path = folder / f"{name}.npy"
        if i % shard[1] != shard[0] or path.is_file():
            continue
        t0 = time.perf_counter()
        scores = compute_piece(bench, name).numpy().astype(np.float32)
        seconds = time.perf_counter() - t0
        np.save(folder / f"{name}.tmp.npy", scores)
        (folder / f"{name}.tmp.npy").replace(path)
        (folder / f"{name}.seconds").write_text(f"{seconds:.2f}\n")
        print(time.strftime("%H:%M:%S"), f"{name}: {seconds:.0f}s", flush=True)


def settings(bench: Benchmark) -> list[tuple[str, list[str], float]]:
    """(label, pieces, image-wise fusion weight) of every reported setting."""
    p = default_patch(bench)
    side = int(bench.train.shape[-1])
    out = []

    def renoise(q, draws, levels=LEVELS, tau=""):
        return [f"nda_p{q}_t{t}_d{d}{tau}" for t in levels for d in range(draws)]

    if side >= 7:
        out.append(("today's default: p=7, t=100/200/300, 2 draws", renoise(7, 2), 0.0))
    for q in (p - 2, p, p + 2):
        for draws in (1, 2, 3):
            out.append((f"renoise p={q}, t=100/200/300, {draws} draw(s)", renoise(q, draws), 0.0))
    out.append((f"renoise p={p}, t=50/100/150/200/300, 1 draw", renoise(p, 1, (50, 100, 150, 200, 300)), 0.0))
    out.append((f"renoise p={p}, t=200, 1 draw", renoise(p, 1, (200,)), 0.0))
    for tau in ("0.5", "2"):
        out.append((f"renoise p={p}, t=200, 1 draw, temperature x{tau}", [f"nda_p{p}_t200_d0_T{tau}"], 0.0))
    for w in (0.25, 0.5):
        for draws in (2, 3):
            out.append((f"renoise p={p}, {draws} draw(s) + image-wise fused (weight {w})",
                        renoise(p, draws) + [f"iw_t{t}_d{d}" for t in LEVELS for d in range(draws)], w))
    for steps in ((100, 200, 300), (100, 150, 200, 250, 300), (100, 150, 200, 230, 260, 300), TRAJ_T):
        out.append((f"trajectory p={p}, {len(steps)} recorded states {list(steps)}", [f"traj_p{p}_t{t}" for t in steps], 0.0))
    out.append(("image-wise, t=100/200/300, 2 draws", [f"iw_t{t}_d{d}" for t in LEVELS for d in range(2)], 0.0))
    out.append(("image-wise, t=100/200/300, 3 draws", [f"iw_t{t}_d{d}" for t in LEVELS for d in range(3)], 0.0))
    return out


def evaluate(bench: Benchmark, folder: Path) -> list[dict]:
    n_val, n_gen = len(bench.val), len(bench.gen)
    rows = []
    for label, names, fuse in settings(bench):
        if not all((folder / f"{n}.npy").is_file() for n in names):
            rows.append(dict(setting=label, pieces=names, missing=True))
            continue
        nda = [np.load(folder / f"{n}.npy").astype(np.float64) for n in names if not n.startswith("iw")]
        iw = [np.load(folder / f"{n}.npy").astype(np.float64) for n in names if n.startswith("iw")]
        gen_only = names[0].startswith("traj")
        scores = np.mean(nda or iw, 0)
        if fuse:
            norm = lambda m: m / m.sum(1, keepdims=True)  # noqa: E731  (both are non-negative weights)
            scores = (1 - fuse) * norm(scores) + fuse * norm(np.mean(iw, 0))
        seconds = sum(float((folder / f"{n}.seconds").read_text()) for n in names)
        per_image = seconds / (n_gen if gen_only else n_val + n_gen)
        row = dict(setting=label, pieces=names, seconds_per_image=per_image)
        if gen_only:
            row["gen"] = lds(scores, bench.masks, bench.loss_gen).to_dict()
        else:
            row["val"] = lds(scores[:n_val], bench.masks, bench.loss_val).to_dict()
            row["gen"] = lds(scores[n_val:], bench.masks, bench.loss_gen).to_dict()
        rows.append(row)
    return rows


def fmt(r: dict | None) -> str:
    return "n/a" if r is None else f"{100 * r['mean']:.1f} [{100 * r['ci_low']:.1f}, {100 * r['ci_high']:.1f}]"


def report(rows: list[dict]) -> str:
    lines = ["| setting | val LDS | gen LDS | s / image |", "|---|---|---|---|"]
    for r in rows:
        if r.get("missing"):
            continue
        lines.append(f"| {r['setting']} | {fmt(r.get('val'))} | {fmt(r.get('gen'))} | {r['seconds_per_image']:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--benchmark", choices=["pixel", "latent"], default="pixel")
    p.add_argument("--ground-truth", default=None, help="the ground-truth npz (pixel: the committed one)")
    p.add_argument("--work-dir", default=None, help="where pieces are cached (pixel: also lds_digits' work dir)")
    p.add_argument("--shard", default="0/1", help="i/k: compute every k-th piece starting at i")
    p.add_argument("--report", action="store_true", help="evaluate cached pieces, write the json, print the table")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.benchmark == "pixel":
        bench = load_pixel(Path(args.ground_truth or RESULTS / "lds_digits_groundtruth.npz"), args.work_dir)
    else:
        if not args.ground_truth:
            raise SystemExit("--benchmark latent needs --ground-truth PATH (the latent benchmark's npz)")
        bench = load_latent(Path(args.ground_truth))
    from bench.lds_digits import DEFAULT_WORK

    folder = Path(args.work_dir or DEFAULT_WORK) / f"defaults_{bench.name}"
    if args.report:
        rows = evaluate(bench, folder)
        out = RESULTS / f"lds_defaults_{bench.name}.json"
        out.write_text(json.dumps(dict(benchmark=bench.name, rows=rows), indent=1) + "\n")
        print(report(rows))
    else:
        i, k = (int(v) for v in args.shard.split("/"))
        compute(bench, folder, (i, k))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
