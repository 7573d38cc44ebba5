"""Speed and peak memory of ``diffusers_attr.engine.nda_scores`` against a straightforward
re-implementation of the published NDA code (``bench/published_baseline.py``), side by side.

    python bench/engine.py                 # full run (N = 250, 1000, 4000), ~15-20 min on 2 CPU cores
    python bench/engine.py --quick         # CI smoke run (small N), ~1 min
    python bench/engine.py --write-docs    # also rewrite the "Engine" section of docs/benchmarks.md
    python bench/engine.py --device cuda

Two settings, single scale, no top-k, one query, one timestep (alpha=0.8, sigma=0.6):

* ``digits16``: 16x16x1, p=5. Training items are sklearn digits (8x8, bilinearly upsampled to 16x16,
  [-1, 1]) plus shifted/jittered copies when N > 1796; the query's x_0 is a held-out digit.
* ``photos32``: 32x32x3, p=7. Training items are random crops (random size 40-200 px, random flip,
  antialiased resize to 32x32, [-1, 1]) of the colour photos that ship with scikit-image; the query's
  x_0 is another crop.

Query x_t = alpha * x_0 + sigma * eps. Each (method, setting, N) is measured in a fresh subprocess:
one warm-up call on a small problem, then up to ``--repeats`` timed calls (median reported).
Peak memory: on CPU the peak RSS increase over the RSS after imports and data loading (psutil
sampling every 5 ms combined with ``ru_maxrss``); on CUDA ``torch.cuda.max_memory_allocated`` above
the allocation after loading. When the baseline's convolution work exceeds ``--baseline-max-macs``,
it is timed on an evenly spaced subset of query windows and extrapolated linearly in the number of
query windows (fixed cost measured separately and added once); the table says so ("extrapolated").
The baseline's memory does not depend on the number of query windows (it is set by the kernel batch),
so its peak is measured on the subset as is.

Outputs: ``bench/results/engine_<device>[_quick].json`` (raw figures and machine info),
``bench/results/engine_<device>[_quick]_time_vs_n.png`` and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for _p in (ROOT, HERE):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import torch

ALPHA, SIGMA = 0.8, 0.6
SETTINGS = {
    "digits16": {"label": "16x16x1, p=5", "channels": 1, "size": 16, "patch_size": 5},
    "photos32": {"label": "32x32x3, p=7", "channels": 3, "size": 32, "patch_size": 7},
}
DOCS_BEGIN, DOCS_END = "<!-- engine:begin -->", "<!-- engine:end -->"


# --------------------------------------------------------------------------------------------- data
def make_digits(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` training digits [n, 1, 16, 16] in [-1, 1] and a held-out query x_0 [1, 16, 16]."""
    from sklearn.datasets import load_digits

    g = torch.Generator().manual_seed(seed)
    raw = torch.tensor(load_digits().images, dtype=torch.float32)[:, None] / 8.0 - 1.0  # [1797,1,8,8]
    up = torch.nn.functional.interpolate(raw, size=(16, 16), mode="bilinear", align_corners=False)
    query, pool = up[-1], up[:-1]
    items = [pool[: min(n, len(pool))]]
    remaining = n - items[0].shape[0]
    while remaining > 0:
        k = min(remaining, len(pool))
        base = pool[torch.randperm(len(pool), generator=g)[:k]]
        padded = torch.nn.functional.pad(base, (2, 2, 2, 2), value=-1.0)
        dy, dx = torch.randint(0, 5, (2,), generator=g).tolist()
        shifted = padded[:, :, dy : dy + 16, dx : dx + 16]
        gain = 1.0 + 0.1 * torch.randn(k, 1, 1, 1, generator=g)
        items.append(((shifted + 1) * gain - 1).clamp(-1, 1))
        remaining -= k
    return torch.cat(items)[:n].contiguous(), query.contiguous()


def make_photos(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` 32x32 RGB crops [n, 3, 32, 32] in [-1, 1] of scikit-image's colour photos, and a query x_0."""
    import skimage.data as skd

    g = torch.Generator().manual_seed(seed)
    names = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "colorwheel"]
    photos = [torch.tensor(getattr(skd, name)(), dtype=torch.float32).permute(2, 0, 1) / 127.5 - 1 for name in names]

    def crop() -> torch.Tensor:
        img = photos[int(torch.randint(len(photos), (1,), generator=g))]
        _, h, w = img.shape
        side = int(torch.randint(40, min(200, h, w) + 1, (1,), generator=g))
        y0 = int(torch.randint(0, h - side + 1, (1,), generator=g))
        x0 = int(torch.randint(0, w - side + 1, (1,), generator=g))
        patch = img[None, :, y0 : y0 + side, x0 : x0 + side]
        if bool(torch.rand(1, generator=g) < 0.5):
            patch = patch.flip(-1)
        return torch.nn.functional.interpolate(patch, size=(32, 32), mode="bilinear", antialias=True, align_corners=False)[0]

    items = torch.stack([crop() for _ in range(n)]).clamp(-1, 1)
    return items.contiguous(), crop().clamp(-1, 1).contiguous()


def build_data(path: str, max_n: int) -> None:
    g = torch.Generator().manual_seed(1234)
    data = {}
    for name, make in (("digits16", make_digits), ("photos32", make_photos)):
        train, x0 = make(max_n)
        eps = torch.randn(x0.shape, generator=g)
        data[name] = {"train": train, "query": (ALPHA * x0 + SIGMA * eps)[None].contiguous()}
    torch.save(data, path)


# ------------------------------------------------------------------------------------------- worker
class PeakRSS:
    """Samples this process's RSS in a thread; combined with ru_maxrss for spikes the thread misses."""

    def __init__(self, interval: float = 0.005):
        import psutil

        self.proc = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self):
        import resource

        gc.collect()
        self.base = self.proc.memory_info().rss
        self.ru_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.peak = self.base
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *exc):
        import resource

        self._stop.set()
        self._thread.join()
        ru_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        if ru_after > self.ru_before:  # the measured region set a new lifetime peak: exact
            self.peak = max(self.peak, ru_after)
        self.increase = self.peak - self.base


def _busy(times) -> float:
    return sum(getattr(times, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq", "steal", "guest"))


class OtherLoad:
    """CPU time the rest of the machine used while the block ran, as a share of all cores
    (0 = the benchmark had the machine to itself). Other processes competing for the cores inflate
    the timings; the driver waits for an idle machine before each measurement and records this."""

    def __enter__(self):
        import psutil

        self.proc = psutil.Process()
        self.t0 = time.perf_counter()
        self.sys0 = _busy(psutil.cpu_times())
        own = self.proc.cpu_times()
        self.own0 = own.user + own.system
        return self

    def __exit__(self, *exc):
        import psutil

        wall = time.perf_counter() - self.t0
        own = self.proc.cpu_times()
        self.own_cpu = own.user + own.system - self.own0
        other = _busy(psutil.cpu_times()) - self.sys0 - self.own_cpu
        self.other_share = max(0.0, other) / (wall * (psutil.cpu_count() or 1))


def wait_for_idle(max_wait: float, threshold: float = 0.1) -> tuple[float, float]:
    """Wait (up to ``max_wait`` s) until the other processes use less than ``threshold`` of all cores
    for 3 s in a row. Returns (seconds waited, last measured busy share)."""
    import psutil

    start = time.perf_counter()
    quiet = 0
    while True:
        busy = psutil.cpu_percent(interval=1.0) / 100.0
        quiet = quiet + 1 if busy < threshold else 0
        waited = time.perf_counter() - start
        if quiet >= 3 or waited >= max_wait:
            return waited, busy


def engine_fingerprint() -> str:
    """Short hash of the engine's source files, so results from different engine versions are told apart."""
    import hashlib

    folder = os.path.join(ROOT, "diffusers_attr", "engine")
    digest = hashlib.sha1()
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py"):
            with open(os.path.join(folder, name), "rb") as f:
                digest.update(name.encode() + b"\0" + f.read())
    return digest.hexdigest()[:12]


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def run_worker(spec: dict) -> dict:
    device = spec["device"]
    torch.manual_seed(0)
    if spec["method"] == "engine":
        from diffusers_attr.engine import nda_scores
    else:
        from published_baseline import published_scores
    data = torch.load(spec["data"])[spec["setting"]]
    cfg = SETTINGS[spec["setting"]]
    n, p = spec["n"], cfg["patch_size"]
    train = data["train"][:n].clone().to(device)
    query = data["query"].to(device)
    del data
    kb = spec["kernel_batch_size"]
    positions = cfg["size"] ** 2

    def call(items, windows=None):
        if spec["method"] == "engine":
            kwargs = {} if spec.get("memory_budget") is None else {"memory_budget": spec["memory_budget"]}
            return nda_scores(query, items, alpha=ALPHA, sigma=SIGMA, patch_size=p, **kwargs)
        return published_scores(query[0], items, alpha=ALPHA, sigma=SIGMA, patch_size=p,
                                kernel_batch_size=kb, windows=windows)

    windows = None
    n_windows = positions
    if spec["method"] == "baseline" and spec.get("windows"):
        n_windows = spec["windows"]
        windows = torch.linspace(0, positions - 1, n_windows).round().long()

    # warm-up on a small problem (same code paths, first-call overheads out of the way)
    call(train[: min(n, 32)], windows[:kb] if windows is not None else None)
    _sync(device)

    fixed = fixed_cpu = None
    times, cpu_times = [], []
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    meter = PeakRSS()
    load = OtherLoad()
    with meter, load:
        if windows is not None:  # fixed cost (padding, key norms) of the extrapolated baseline
            fixed_times, fixed_cpu_times = [], []
            for _ in range(2):
                t0, c0 = time.perf_counter(), time.process_time()
                call(train, windows[:0])
                _sync(device)
                fixed_times.append(time.perf_counter() - t0)
                fixed_cpu_times.append(time.process_time() - c0)
            fixed, fixed_cpu = min(fixed_times), min(fixed_cpu_times)
        for _ in range(spec["repeats"]):
            t0, c0 = time.perf_counter(), time.process_time()
            out = call(train, windows)
            _sync(device)
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
            del out
            if sum(times) > spec["time_cap"]:
                break
    def scale(measured: float, fixed_part: float | None) -> float:
        if windows is None:
            return measured
        return fixed_part + (measured - fixed_part) * positions / n_windows

    seconds = scale(statistics.median(times), fixed)
    cpu_seconds = scale(statistics.median(cpu_times), fixed_cpu)
    result = {
        "method": spec["method"], "setting": spec["setting"], "n": n, "seconds": seconds,
        "measured_seconds": times, "repeats": len(times), "extrapolated": windows is not None,
        "query_windows_timed": n_windows, "query_windows_total": positions, "fixed_seconds": fixed,
        "engine_source_sha1": engine_fingerprint(),
        "min_seconds": scale(min(times), fixed), "cpu_seconds": cpu_seconds, "measured_cpu_seconds": cpu_times,
        "fixed_cpu_seconds": fixed_cpu, "own_cpu_seconds": load.own_cpu,
        "other_cpu_share": load.other_share, "threads": torch.get_num_threads(),
        "peak_rss_increase_bytes": meter.increase, "rss_base_bytes": meter.base,
    }
    if device == "cuda":
        result["peak_cuda_bytes"] = torch.cuda.max_memory_allocated() - base
    return result


def run_accuracy(spec: dict) -> dict:
    """Engine float32 vs float64 and baseline (float32, both mask modes) vs engine float64."""
    from published_baseline import published_scores
    from scipy.stats import spearmanr

    from diffusers_attr.engine import nda_scores

    device = spec["device"]
    data = torch.load(spec["data"])[spec["setting"]]
    cfg = SETTINGS[spec["setting"]]
    n, p = spec["n"], cfg["patch_size"]
    train = data["train"][:n].to(device)
    query = data["query"].to(device)
    e64 = nda_scores(query.double(), train.double(), alpha=ALPHA, sigma=SIGMA, patch_size=p)[0].cpu()
    e32 = nda_scores(query, train, alpha=ALPHA, sigma=SIGMA, patch_size=p)[0].cpu()
    kb = spec["kernel_batch_size"]
    base = {
        "baseline_embed_f32": published_scores(query[0], train, alpha=ALPHA, sigma=SIGMA, patch_size=p, kernel_batch_size=kb),
        "baseline_additive_f32": published_scores(query[0], train, alpha=ALPHA, sigma=SIGMA, patch_size=p, kernel_batch_size=kb, mask_mode="additive"),
        "baseline_embed_f64": published_scores(query[0].double(), train.double(), alpha=ALPHA, sigma=SIGMA, patch_size=p, kernel_batch_size=kb),
    }
    ref = e64.double()
    cutoff = 1e-6 * float(ref.max())
    keep = ref >= cutoff

    def compare(x: torch.Tensor) -> dict:
        x = x.double().cpu()
        rel = ((x - ref).abs() / ref.abs())[keep]
        worst = int(torch.nonzero(keep).flatten()[rel.argmax()])
        return {
            "spearman_vs_engine_f64": float(spearmanr(x.numpy(), ref.numpy()).statistic),
            "max_rel_err_vs_engine_f64": float(rel.max()),
            "max_abs_err_over_max_score": float((x - ref).abs().max() / ref.max()),
            "worst_item": worst, "worst_item_score_f64": float(ref[worst]),
            "top10_overlap_with_engine_f64": len(set(x.topk(10).indices.tolist()) & set(ref.topk(10).indices.tolist())),
            "sum": float(x.sum()),
        }

    out = {"setting": spec["setting"], "n": n, "engine_f64_sum": float(ref.sum()),
           "items_compared_for_rel_err": int(keep.sum()), "rel_err_cutoff": "score_f64 >= 1e-6 * max score",
           "engine_f32": compare(e32)}
    for name, x in base.items():
        out[name] = compare(x)
    return out


# ------------------------------------------------------------------------------------------- driver
from common import machine_info as _common_machine_info


def machine_info(device: str) -> dict:
    """The shared machine description plus which engine source was measured."""
    info = _common_machine_info(device)
    try:
        status = subprocess.run(["git", "status", "--porcelain", "--", "diffusers_attr/engine"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout.strip()
        info["engine_uncommitted_changes"] = bool(status)
    except (OSError, subprocess.CalledProcessError):
        info["engine_uncommitted_changes"] = None
    info["engine_source_sha1"] = engine_fingerprint()
    return info


def spawn(spec: dict, mode: str = "--worker") -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), mode, json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed ({spec}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def baseline_windows(setting: str, n: int, kb: int, max_macs: float) -> int | None:
    from published_baseline import baseline_macs

    cfg = SETTINGS[setting]
    size, c, p = cfg["size"], cfg["channels"], cfg["patch_size"]
    positions = size * size
    per_window = baseline_macs(n, c, size, size, p, n_windows=1)
    if per_window * positions <= max_macs:
        return None
    windows = max(kb, int(max_macs // per_window) // kb * kb)
    return min(windows, positions)


def fmt_bytes(b: float | None) -> str:
    return "n/a" if b is None else f"{b / 2**20:,.0f}"


def fmt_s(s: float) -> str:
    return f"{s:.3g}" if s < 100 else f"{s:,.0f}"


def markdown_table(report: dict) -> str:
    cuda = report["device"] == "cuda"
    mem = "peak CUDA MiB" if cuda else "peak RSS +MiB"
    rows = [
        f"| setting | N | engine s (CPU s) | baseline s (CPU s) | speedup | engine {mem} | baseline {mem} | extrapolated | other load |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    by_key = {(r["method"], r["setting"], r["n"]): r for r in report["results"]}
    for setting in SETTINGS:
        for n in report["config"]["ns"]:
            e, b = by_key.get(("engine", setting, n)), by_key.get(("baseline", setting, n))
            if e is None or b is None:
                continue
            key = "peak_cuda_bytes" if cuda else "peak_rss_increase_bytes"
            extra = (f"baseline: yes ({b['query_windows_timed']}/{b['query_windows_total']} query windows)"
                     if b["extrapolated"] else "no")
            rows.append(
                f"| {SETTINGS[setting]['label']} | {n} | {fmt_s(e['seconds'])} ({fmt_s(e['cpu_seconds'])}) | "
                f"{fmt_s(b['seconds'])} ({fmt_s(b['cpu_seconds'])}) | "
                f"{b['seconds'] / e['seconds']:.1f}x | {fmt_bytes(e.get(key))} | {fmt_bytes(b.get(key))} | {extra} | "
                f"{e['other_cpu_share']:.0%} / {b['other_cpu_share']:.0%} |"
            )
    return "\n".join(rows)


def accuracy_table(acc: dict) -> str:
    rows = [
        "| scores | Spearman vs engine f64 | max rel. err vs engine f64 | max abs err / max score | top-10 overlap | sum |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    names = {"engine_f32": "engine float32", "baseline_embed_f32": "baseline float32 (embedded mask, public code)",
             "baseline_additive_f32": "baseline float32 (additive mask)", "baseline_embed_f64": "baseline float64 (embedded mask)"}
    for key, label in names.items():
        r = acc[key]
        rows.append(f"| {label} | {r['spearman_vs_engine_f64']:.6f} | {r['max_rel_err_vs_engine_f64']:.2e} | "
                    f"{r['max_abs_err_over_max_score']:.2e} | {r['top10_overlap_with_engine_f64']}/10 | {r['sum']:.3f} |")
    return "\n".join(rows)


def plot(report: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    colors = {"digits16": "tab:blue", "photos32": "tab:orange"}
    styles = {"engine": ("-", "o", "engine (diffusers_attr)"), "baseline": ("--", "s", "baseline (published algorithm)")}
    for setting in SETTINGS:
        for method, (ls, marker, mlabel) in styles.items():
            rs = sorted((r for r in report["results"] if r["setting"] == setting and r["method"] == method), key=lambda r: r["n"])
            if not rs:
                continue
            ns = [r["n"] for r in rs]
            ts = [r["seconds"] for r in rs]
            ax.plot(ns, ts, ls, color=colors[setting], label=f"{mlabel}, {SETTINGS[setting]['label']}")
            for r in rs:
                ax.plot(r["n"], r["seconds"], marker, color=colors[setting],
                        markerfacecolor="white" if r["extrapolated"] else colors[setting])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ns = sorted({r["n"] for r in report["results"]})
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("training items N")
    ax.set_ylabel("seconds per query per timestep")
    m = report["machine"]
    threads = report["config"].get("threads") or m["torch_threads"]
    where = m.get("gpu") if report["device"] == "cuda" else f"{m['cpu_model']}, {threads} torch thread{'s' if threads != 1 else ''}"
    ax.set_title(f"NDA scores, single scale ({where})", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2,
              title="hollow markers: extrapolated", title_fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _run_subsection(report: dict, json_rel: str, png_rel: str) -> list[str]:
    m = report["machine"]
    cfg = report["config"]
    hw = (f"{m.get('gpu')} (CUDA {m.get('cuda')})" if report["device"] == "cuda" else
          f"{m['cpu_model']}, {m['cpu_cores']} cores, {m['memory_gib']} GiB RAM")
    threads = m["torch_threads"] if not cfg.get("threads") else cfg["threads"]
    title = (f"### {report['device'].upper()}, {threads} torch thread{'s' if threads != 1 else ''}"
             + (" (torch default)" if not cfg.get("threads") else ""))
    acc = report.get("accuracy")
    lines = [
        title,
        "",
        (f"* Machine: {hw}; torch {m['torch']}, Python {m['python']}; commit {m.get('git_commit')}"
         f"{' + uncommitted engine changes' if m.get('engine_uncommitted_changes') else ''} (engine source sha1 "
         f"{m.get('engine_source_sha1')}); {report['date']}."),
        (f"* Command: `{report['command']}` (total {report['runtime_seconds'] / 60:.1f} min, of which "
         f"{report.get('waited_for_idle_total_s', 0) / 60:.1f} min waiting for other processes to go quiet)."),
        f"* Median of up to {cfg['repeats']} timed call(s) after a warm-up; baseline kernel batch {cfg['kernel_batch_size']}.",
    ]
    if report.get("engine_changed_during_run"):
        lines.append("* WARNING: the engine's source changed during this run; rows may mix engine versions.")
    lines += ["", markdown_table(report), ""]
    if any(r["extrapolated"] for r in report["results"]):
        lines += [
            "\"extrapolated\": the baseline was timed on an evenly spaced subset of query windows and scaled linearly",
            "to all of them (its fixed cost, padding and key norms, measured separately and added once). Its memory",
            "does not depend on the number of query windows, so the peak shown is measured.",
            "",
        ]
    if acc:
        lines += [
            (f"Agreement on {SETTINGS[acc['setting']]['label']}, N={acc['n']} (relative error over the "
             f"{acc['items_compared_for_rel_err']} items with float64 score >= 1e-6 x the largest):"),
            "",
            accuracy_table(acc),
            "",
        ]
    lines += [f"![time vs N]({png_rel})", "", f"Raw figures: [`{json_rel}`]({json_rel}).", ""]
    return lines


def docs_section(runs: list[tuple[dict, str, str]], notes: str | None = None) -> str:
    """The "Engine" section: a common introduction, then one subsection per results file."""
    device = runs[0][0]["device"]
    lines = [
        "## Engine",
        "",
        "Seconds per query per timestep and peak memory of `diffusers_attr.engine.nda_scores` against a",
        "straightforward re-implementation of the published NDA code's algorithm (`bench/published_baseline.py`:",
        "`conv2d` per kernel batch of query windows, softmax over all N*H*W key windows, boundary classes through",
        "the public code's embedded mask constant). Single scale, no top-k, one query, one timestep,",
        f"alpha={ALPHA}, sigma={SIGMA}. 16x16x1: sklearn digits upsampled; 32x32x3: crops of scikit-image's photos.",
        "Each (method, setting, N) runs in a fresh process. Produced by `bench/engine.py --write-docs`.",
        "",
        "* Wall seconds per query per timestep; in brackets the CPU seconds of the process (all threads).",
        "* speedup = baseline wall seconds / engine wall seconds.",
        "* Peak memory: " + ("`torch.cuda.max_memory_allocated` above the loaded data." if device == "cuda"
                            else "peak RSS increase over the process after imports and data loading."),
        "* other load = share of all cores that *other* processes used during the engine / baseline measurement",
        "  (0% = the benchmark had the machine to itself). The script waits for a quiet machine before each",
        "  measurement, up to a limit; figures taken under load are slower than the machine is.",
        "",
    ]
    if notes:
        lines += [notes.strip(), ""]
    for report, json_rel, png_rel in runs:
        lines += _run_subsection(report, json_rel, png_rel)
    return "\n".join(lines)


def write_docs(section: str, path: str) -> None:
    block = f"{DOCS_BEGIN}\n{section}\n{DOCS_END}"
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
    else:
        text = "# Benchmarks\n\nFigures produced by the scripts in `bench/`; each section is rewritten by its script.\n"
    if DOCS_BEGIN in text and DOCS_END in text:
        head, rest = text.split(DOCS_BEGIN, 1)
        _, tail = rest.split(DOCS_END, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)


def write_engine_docs(args, report: dict | None, json_path: str | None, png_path: str | None) -> None:
    """Rewrite the Engine section of docs/benchmarks.md from the results files in ``args.out_dir``."""
    docs = os.path.join(ROOT, "docs", "benchmarks.md")
    rel = lambda path: os.path.relpath(path, os.path.dirname(docs))
    if report is not None and args.quick:  # a quick run documents itself only
        runs = [(report, rel(json_path), rel(png_path))]
    else:
        runs = []
        for name in sorted(os.listdir(args.out_dir), key=lambda n: ("_threads" in n, n)):
            if name.endswith(".json") and (name == f"engine_{args.device}.json"
                                           or (name.startswith(f"engine_{args.device}_threads") and "_quick" not in name)):
                path = os.path.join(args.out_dir, name)
                with open(path) as f:
                    runs.append((json.load(f), rel(path), rel(path[: -len(".json")] + "_time_vs_n.png")))
    if not runs:
        raise SystemExit(f"no engine_{args.device}*.json results in {args.out_dir}")
    notes = None
    notes_path = args.docs_notes or os.path.join(HERE, "engine_notes.md")
    if os.path.exists(notes_path):
        with open(notes_path) as f:
            notes = f.read()
    write_docs(docs_section(runs, notes), docs)
    print(f"updated {os.path.relpath(docs, ROOT)}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("--worker", "--accuracy-worker"):
        spec = json.loads(argv[1])
        if spec["device"] == "cpu" and spec.get("threads"):
            torch.set_num_threads(spec["threads"])
        out = run_worker(spec) if argv[0] == "--worker" else run_accuracy(spec)
        print(json.dumps(out))
        return 0

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small N, one timed repeat (CI smoke run, ~1 min)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--ns", type=lambda s: [int(x) for x in s.split(",")], default=None,
                    help="comma-separated training-set sizes (default 250,1000,4000; quick: 64,256)")
    ap.add_argument("--settings", type=lambda s: s.split(","), default=list(SETTINGS), help="digits16,photos32")
    ap.add_argument("--repeats", type=int, default=None, help="timed calls per measurement (default 3; quick: 1)")
    ap.add_argument("--time-cap", type=float, default=60.0, help="stop repeating once the timed calls took this long (s)")
    ap.add_argument("--kernel-batch-size", type=int, default=16, help="baseline query windows per conv (public default 16)")
    ap.add_argument("--baseline-max-macs", type=float, default=None,
                    help="extrapolate the baseline above this many conv multiply-adds per query (default 1e12; quick 1e10)")
    ap.add_argument("--memory-budget", type=int, default=None, help="engine memory_budget in bytes (default: the engine's)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads in the workers (default: torch's)")
    ap.add_argument("--wait-idle", type=float, default=None,
                    help="before each measurement wait up to this many seconds for other processes to go quiet "
                         "(default 120; quick 0 = do not wait)")
    ap.add_argument("--wait-idle-total", type=float, default=480.0, help="cap on all the waiting for idle (s)")
    ap.add_argument("--no-accuracy", action="store_true", help="skip the float32/float64 agreement check")
    ap.add_argument("--out-dir", default=os.path.join(HERE, "results"))
    ap.add_argument("--write-docs", action="store_true",
                    help="rewrite the Engine section of docs/benchmarks.md from every engine_<device>[_threadsN].json "
                         "in --out-dir (this run included)")
    ap.add_argument("--docs-only", action="store_true", help="only rewrite the docs section from existing results")
    ap.add_argument("--docs-notes", default=None, help="markdown file whose text goes under the section's introduction (default bench/engine_notes.md)")
    args = ap.parse_args(argv)

    if args.docs_only:
        write_engine_docs(args, None, None, None)
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda but torch.cuda.is_available() is False")
    ns = args.ns or ([64, 256] if args.quick else [250, 1000, 4000])
    repeats = args.repeats or (1 if args.quick else 3)
    max_macs = args.baseline_max_macs or (1e10 if args.quick else 1e12)
    acc_n = 64 if args.quick else 250
    if args.wait_idle is None:
        args.wait_idle = 0.0 if args.quick else 120.0
    suffix = f"{args.device}{f'_threads{args.threads}' if args.threads else ''}{'_quick' if args.quick else ''}"
    os.makedirs(args.out_dir, exist_ok=True)
    json_path = os.path.join(args.out_dir, f"engine_{suffix}.json")
    png_path = os.path.join(args.out_dir, f"engine_{suffix}_time_vs_n.png")

    started = time.perf_counter()
    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, ROOT), *argv])
    report = {"device": args.device, "command": command,
              "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine_info(args.device),
              "config": {"ns": ns, "settings": args.settings, "repeats": repeats, "time_cap_s": args.time_cap,
                         "kernel_batch_size": args.kernel_batch_size, "baseline_max_macs": max_macs,
                         "engine_memory_budget": args.memory_budget, "wait_idle_s": args.wait_idle, "wait_idle_total_s": args.wait_idle_total, "alpha": ALPHA, "sigma": SIGMA,
                         "baseline_mask_mode": "embed", "quick": args.quick, "threads": args.threads},
              "results": []}
    with tempfile.TemporaryDirectory() as tmp:
        data_path = os.path.join(tmp, "data.pt")
        build_data(data_path, max(max(ns), acc_n))
        print(f"data ready ({time.perf_counter() - started:.1f}s)", file=sys.stderr)
        total_waited = 0.0
        for setting in args.settings:
            for n in ns:
                for method in ("engine", "baseline"):
                    spec = {"method": method, "setting": setting, "n": n, "device": args.device, "data": data_path,
                            "repeats": repeats, "time_cap": args.time_cap, "kernel_batch_size": args.kernel_batch_size,
                            "memory_budget": args.memory_budget, "threads": args.threads,
                            "windows": baseline_windows(setting, n, args.kernel_batch_size, max_macs) if method == "baseline" else None}
                    allowed = min(args.wait_idle, args.wait_idle_total - total_waited)
                    waited, busy = wait_for_idle(allowed) if allowed > 0 else (0.0, float("nan"))
                    total_waited += waited
                    t0 = time.perf_counter()
                    r = spawn(spec)
                    r["waited_for_idle_s"], r["busy_before"] = waited, busy
                    report["results"].append(r)
                    print(f"{method:8s} {setting} N={n:5d}: {r['seconds']:.4g} s/query"
                          f"{' (extrapolated)' if r['extrapolated'] else ''}, peak +{fmt_bytes(r['peak_rss_increase_bytes'])} MiB RSS"
                          f", other load {r['other_cpu_share']:.0%} [{time.perf_counter() - t0:.0f}s wall, waited {waited:.0f}s]",
                          file=sys.stderr)
        if not args.no_accuracy and "photos32" in args.settings:
            spec = {"setting": "photos32", "n": acc_n, "device": args.device, "data": data_path,
                    "kernel_batch_size": args.kernel_batch_size, "threads": args.threads}
            report["accuracy"] = spawn(spec, "--accuracy-worker")
        report["waited_for_idle_total_s"] = total_waited
    report["runtime_seconds"] = time.perf_counter() - started
    seen = {r["engine_source_sha1"] for r in report["results"]} | {report["machine"]["engine_source_sha1"]}
    report["engine_changed_during_run"] = len(seen) > 1
    if len(seen) > 1:
        print(f"WARNING: the engine's source changed during the run ({sorted(seen)}); rerun for consistent figures",
              file=sys.stderr)

    with open(json_path, "w") as f:
        json.dump(report, f, indent=2)
    plot(report, png_path)
    print(markdown_table(report))
    if "accuracy" in report:
        print()
        print(f"Agreement, {SETTINGS['photos32']['label']}, N={acc_n}:")
        print(accuracy_table(report["accuracy"]))
    print(f"\nwrote {os.path.relpath(json_path, ROOT)}, {os.path.relpath(png_path, ROOT)} "
          f"({report['runtime_seconds'] / 60:.1f} min)")
    if args.write_docs:
        write_engine_docs(args, report, json_path, png_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
