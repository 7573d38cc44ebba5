"""Aggregate attribution over many generated outputs: what a model leans on, for its model card.

:func:`aggregate` streams over attribution results (run folders written by
``AttributedPipeline(...)(...).save``, single PNG or sidecar files, :class:`~diffusers_attr.Attribution`
objects or ``Attribution.to_dict()`` dicts), keeps one accumulator per training item (dense arrays the
size of the index, never one entry per output) and returns an :class:`AttributionSummary`:

* per training item: total and mean share of the patch mass, how many outputs it is the top source
  of, in how many outputs' top items it is listed, its largest share in one output, its mean share at
  each noise level;
* coverage: how many distinct items carry 50% / 90% of the mass; concentration: entropy, effective
  number of items, Gini;
* breakdowns by any metadata field of the index (label, source, licence, contributor, ...);
* the per-noise-level view (high noise: coarse structure; low noise: fine detail);
* near-copy flags with their evidence (:mod:`diffusers_attr.report.near_copy`).

A run folder is read with :func:`~diffusers_attr.report.iter_run` (the reader of the run report), one
image at a time; unlike the run report, a sidecar whose image is gone still counts (its metadata is all
the aggregate needs). Unreadable files and corrupted sidecars are skipped and listed in ``skipped``.

**What the shares are.** The JSON metadata of a result lists only its top ``K`` items (default 10).
By default shares come from that JSON: an item outside an output's top ``K`` counts 0 for that output,
so every item's share is a lower bound and the mass outside the top ``K`` of each output is reported
as such (``listed_mass`` < 1), never spread over items. With ``full_scores=True`` the shares of every
index item are read from ``<stem>.attribution.safetensors`` (or the object's ``scores``) where present,
which makes them exact; results without arrays still count with their top ``K``. The share of an item
in one output is its score over the output's total score; the mass of one output is 1, so the mass
of all outputs is the number of outputs.
"""

from __future__ import annotations

import io
import json
import math
import os
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..provenance import SIDECAR_SUFFIX, read_attribution, sidecar_path
from .near_copy import (
    SCREEN_FACTOR,
    NearCopyEvidence,
    NearCopyThresholds,
    comparable_pixels,
    dominance,
    level_noise,
    map_alignment,
    pixel_distance,
    ratio,
)
from .formatting import images_noun
from .run_html import RunImage, SkippedFile, _checked, _one_line, _read_image, iter_run

COVERAGE_LEVELS = (0.5, 0.9)
DEFAULT_FIELDS = ("label", "source", "licence", "license", "contributor", "dataset", "split")
"""Metadata fields always broken down when the items carry them."""
FREE_TEXT_FIELDS = {"caption", "text", "prompt", "path", "file", "filename", "url", "sha256", "hash", "id", "title"}
"""Fields never broken down automatically (one value per item)."""
MAX_AUTO_VALUES = 50
"""Other fields are broken down automatically when they take at most this many distinct values."""
PICTURE_SIDE = 192
"""Evidence pictures kept for reports are scaled to at most this many pixels per side."""
MAX_PICTURES = 200
"""Near-copy evidence entries that keep pictures (the first ones found)."""
_CURVE_POINTS = 600


# ------------------------------------------------------------------------------------------ results


@dataclass
class ItemStats:
    """How much the outputs drew on one training item.

    Attributes:
        index: the item's position in its index.
        id: its id.
        metadata: its metadata (from the results, or the index when given).
        total_share: sum over outputs of its share of each output's patch mass ("outputs' worth").
        mean_share: ``total_share / outputs``: its share of the mass of all outputs.
        top1: how many outputs it is the top source of.
        listed: in how many outputs' top items it is listed.
        max_share: its largest share in a single output.
        max_output: that output.
        level_shares: its mean share at each noise level, least noisy first (see ``levels``).
        index_group: which index it belongs to (position in ``AttributionSummary.indexes``).
    """

    index: int
    id: str
    metadata: dict[str, Any]
    total_share: float
    mean_share: float
    top1: int
    listed: int
    max_share: float
    max_output: str | None
    level_shares: list[float]
    index_group: int = 0


@dataclass
class BreakdownRow:
    """One value of a metadata field: its items' share of all outputs' mass, and top-1 counts."""

    value: str
    share: float
    items: int
    top1: int


@dataclass
class LevelStats:
    """The attribution at one noise level position (levels sorted least noisy first per output).

    Attributes:
        position: 0 for the least noisy level of each output (finest detail).
        noise: mean ``nu = sigma / sqrt(alpha^2 + sigma^2)`` at this position.
        outputs: outputs that have this level.
        listed_mass: share of this level's mass on listed items (1.0 with full scores).
        effective_items: ``exp(entropy)`` of this level's aggregated distribution.
        top: the items with the largest mean share at this level: ``(id, share)``.
    """

    position: int
    noise: float
    outputs: int
    listed_mass: float
    effective_items: float
    top: list[tuple[str, float]]


@dataclass
class AttributionSummary:
    """The aggregate attribution of many outputs (see :func:`aggregate`).

    Attributes:
        outputs: number of results aggregated.
        outputs_full: how many of them contributed shares over the whole index (full arrays).
        basis: ``"top-k"`` (JSON top items only), ``"full"`` (full scores for every output) or
            ``"mixed"``.
        top_k: how many items the results list, ``{K: number of outputs}``.
        listed_mass: fraction of all outputs' mass carried by listed items; ``1 - listed_mass`` is
            the mass outside the top-K of each output (unknown per item).
        items: the training items with the largest total share (at most ``max_items``), largest first.
        items_seen: how many distinct items carry any known share.
        index_items: size of the index (sum over indexes when mixed).
        coverage: ``{"50%": n, "90%": n}``: fewest items carrying that fraction of *all* mass (None:
            the listed mass does not reach it).
        coverage_listed: the same over the listed mass only.
        concentration: ``entropy_bits``, ``normalised_entropy`` (over log of the index size),
            ``effective_items`` (2**entropy), ``gini`` (over every index item; unlisted items count 0),
            ``distinct_top1`` (items that are some output's top source), ``top1_max`` (the most
            outputs one item is the top source of).
        breakdowns: per metadata field, one row per value, largest share first.
        levels: the per-noise-level view, least noisy first.
        near_copies: evidence for every output whose dominance passed (flagged, cleared, candidates).
        thresholds: the near-copy thresholds (None: flags were not computed).
        indexes: the index fingerprints with the number of outputs of each.
        models, schedulers, configs: distinct values with their output counts.
        skipped: files (or objects) that could not be used, with the reason.
        sources: what was aggregated, by name (folder names, ``<folder>/<file>``, ``<n objects>``; never an
            absolute path).
        coverage_curve: ``(items, cumulative fraction of all mass)`` points, items sorted by share.
        top1_shares: the top item's share in each output (for the share distribution).
        thumbnails: where pictures of the listed items are (internal: a file path or a PIL image).
        origins: how many results are of generated images and how many of existing ones.
    """

    outputs: int
    outputs_full: int
    basis: str
    top_k: dict[int, int]
    listed_mass: float
    items: list[ItemStats]
    items_seen: int
    index_items: int
    coverage: dict[str, int | None]
    coverage_listed: dict[str, int | None]
    concentration: dict[str, float | int | None]
    breakdowns: dict[str, list[BreakdownRow]]
    levels: list[LevelStats]
    near_copies: list[NearCopyEvidence]
    thresholds: NearCopyThresholds | None
    indexes: list[dict[str, Any]]
    models: dict[str, int]
    schedulers: dict[str, int]
    configs: dict[str, int]
    skipped: list[SkippedFile]
    sources: list[str]
    coverage_curve: tuple[np.ndarray, np.ndarray]
    top1_shares: np.ndarray
    thumbnails: dict[tuple[int, int], Any] = field(default_factory=dict, repr=False)
    index_obj: Any = field(default=None, repr=False)
    origins: dict[str, int] = field(default_factory=dict)

    @property
    def outputs_noun(self) -> str:
        """``"12 generated images"``, ``"3 existing images"`` or ``"15 images"`` (both kinds)."""
        return images_noun(self.origins, self.outputs)

    @property
    def flags(self) -> list[NearCopyEvidence]:
        """The flagged near-copies."""
        return [e for e in self.near_copies if e.flagged]

    @property
    def candidates(self) -> list[NearCopyEvidence]:
        """Outputs whose dominance passed but whose alignment or distance could not be checked."""
        return [e for e in self.near_copies if e.status == "candidate"]

    @property
    def outside_mass(self) -> float:
        """Fraction of all outputs' mass outside the listed top-K items (unknown per item)."""
        return max(0.0, 1.0 - self.listed_mass)

    def thumbnail(self, item: ItemStats) -> Image.Image | None:
        """A picture of a training item (from the index, a run folder's thumbnail or an object)."""
        index = self.index_obj
        if index is not None and index.space.get("kind") == "pixel" and item.index_group == 0:
            from ..attributor import to_pil

            return to_pil(index.gather([item.index]))[0]
        ref = self.thumbnails.get((item.index_group, item.index))
        if isinstance(ref, Image.Image):
            return ref
        if isinstance(ref, Path):
            try:
                with Image.open(ref) as picture:
                    picture.load()
                    return picture.copy()
            except (OSError, SyntaxError, ValueError):
                return None
        return None

    def to_dict(self, *, items: int | None = None) -> dict[str, Any]:
        """JSON-safe summary (the first ``items`` items; all kept ones by default)."""
        return {
            "outputs": self.outputs,
            "outputs_full_scores": self.outputs_full,
            "basis": self.basis,
            "top_k": {str(k): v for k, v in sorted(self.top_k.items())},
            "listed_mass": self.listed_mass,
            "outside_top_k_mass": self.outside_mass,
            "items_seen": self.items_seen,
            "index_items": self.index_items,
            "coverage": self.coverage,
            "coverage_of_listed_mass": self.coverage_listed,
            "concentration": self.concentration,
            "items": [_item_dict(item) for item in self.items[: items if items is not None else len(self.items)]],
            "breakdowns": {
                name: [row.__dict__.copy() for row in rows] for name, rows in self.breakdowns.items()
            },
            "levels": [
                {**level.__dict__, "top": [{"id": i, "share": s} for i, s in level.top]} for level in self.levels
            ],
            "near_copies": [evidence.to_dict() for evidence in self.near_copies],
            "near_copy_thresholds": self.thresholds.to_dict() if self.thresholds else None,
            "indexes": self.indexes,
            "models": self.models,
            "schedulers": self.schedulers,
            "configs": self.configs,
            "skipped": [{"path": str(s.path), "reason": s.reason} for s in self.skipped],
            "sources": self.sources,
            "origins": self.origins,
        }


def _item_dict(item: ItemStats) -> dict[str, Any]:
    out = dict(item.__dict__)
    return out


# ------------------------------------------------------------------------------------------ records


@dataclass
class _Record:
    """One result to aggregate, wherever it came from; pictures and arrays are read on demand."""

    name: str
    metadata: dict[str, Any]
    path: Path | None = None
    attribution: Any = None

    def arrays(self, keys: Iterable[str]) -> dict[str, np.ndarray] | None:
        if self.attribution is not None:
            a = self.attribution
            return {key: getattr(a, key).detach().float().cpu().numpy() for key in keys}
        if self.path is None:
            return None
        file = self.arrays_path
        if not file.is_file():
            return None
        from safetensors import safe_open

        try:
            with safe_open(str(file), framework="np") as handle:
                return {key: handle.get_tensor(key) for key in keys}
        except Exception:  # noqa: BLE001 - a truncated or foreign file: treat as missing, say so
            return None

    @property
    def arrays_path(self) -> Path:
        return self.path.with_name(self.path.stem + ".attribution.safetensors")

    def image(self) -> Image.Image | None:
        if self.attribution is not None:
            return self.attribution.image
        if self.path is None or not self.path.is_file():
            return None
        try:
            with Image.open(self.path) as picture:
                picture.load()
                return picture.copy()
        except (OSError, SyntaxError, ValueError):
            return None

    def thumbnail_ref(self, rank: int) -> Any:
        """The picture of the item at ``rank`` (1-based) of this output: a path, a PIL image or None."""
        if self.attribution is not None:
            images = self.attribution.source_images
            return images[rank - 1] if rank - 1 < len(images) else None
        if self.path is None:
            return None
        thumb = self.path.with_name(f"{self.path.stem}.train-{rank}.png")
        return thumb if thumb.is_file() else None


def _records(sources: Any, skipped: list[SkippedFile], names: list[str]) -> Iterator[_Record]:
    """Every result of ``sources``, streamed; unusable files go to ``skipped``."""
    from ..attribution import Attribution

    if isinstance(sources, (str, os.PathLike, dict, Attribution)):
        sources = [sources]
    objects = 0
    for source in sources:
        if isinstance(source, Attribution):
            objects += 1
            yield _Record(f"result-{objects}", source.to_dict(), attribution=source)
            continue
        if isinstance(source, dict):
            objects += 1
            name = f"result-{objects}"
            try:
                yield _Record(name, _checked(source))
            except ValueError as error:
                skipped.append(SkippedFile(Path(name), f"not attribution metadata ({_one_line(error)})"))
            continue
        if not isinstance(source, (str, os.PathLike)):
            raise TypeError(
                f"cannot aggregate a {type(source).__name__}; give run folders, PNG or .attribution.json "
                "files, Attribution objects or Attribution.to_dict() dicts"
            )
        path = Path(source)
        names.append(display_name(path, folder=True))
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        if path.is_dir():
            for entry in iter_run(path):
                if isinstance(entry, RunImage):
                    yield _Record(display_name(entry.path), entry.metadata, path=entry.path)
                elif entry.path.name.endswith(SIDECAR_SUFFIX) and not _image_of(entry.path).exists():
                    # a sidecar whose image is gone (kept without the pictures): its metadata still counts
                    record = _file_record(entry.path, skipped)
                    if record is not None:
                        yield record
                else:
                    skipped.append(SkippedFile(Path(display_name(entry.path)), entry.reason))
        else:
            record = _file_record(path, skipped)
            if record is not None:
                yield record
    if objects:
        names.append(f"<{objects} objects>")


def display_name(path: Path, *, folder: bool = False) -> str:
    """How a file (``<folder name>/<file name>``) or a folder (its name) is named in summaries, cards
    and reports: never the absolute path, which would tell the user's machine layout to every reader."""
    parent = path if folder else path.parent
    name = parent.name if parent.name not in ("", "..") else parent.resolve().name
    if folder:
        return name or str(path)
    return f"{name}/{path.name}" if name else path.name


def _image_of(sidecar: Path) -> Path:
    return sidecar.with_name(sidecar.name[: -len(SIDECAR_SUFFIX)] + ".png")


def _file_record(path: Path, skipped: list[SkippedFile]) -> _Record | None:
    """One PNG or sidecar file given by name."""
    if path.name.endswith(SIDECAR_SUFFIX):
        image_path = _image_of(path)
        try:
            metadata = _checked(read_attribution(path))
        except (ValueError, OSError) as error:
            skipped.append(SkippedFile(Path(display_name(path)), f"corrupted sidecar ({_one_line(error)})"))
            return None
        return _Record(display_name(image_path if image_path.exists() else path), metadata, path=image_path)
    names = {path.name}
    if sidecar_path(path).exists():
        names.add(sidecar_path(path).name)
    image, skipped_here = _read_image(path, names)
    skipped.extend(SkippedFile(Path(display_name(entry.path)), entry.reason) for entry in skipped_here)
    return None if image is None else _Record(display_name(path), image.metadata, path=path)


# ------------------------------------------------------------------------------------- accumulators


class _Group:
    """Dense per-item accumulators of the outputs attributed against one index."""

    def __init__(self, fingerprint: dict[str, Any], first: str):
        self.fingerprint = fingerprint
        self.first = first
        items = fingerprint.get("items")
        self.size = int(items) if isinstance(items, int) and not isinstance(items, bool) and items > 0 else 0
        self.total = np.zeros(self.size)
        self.top1 = np.zeros(self.size, dtype=np.int64)
        self.listed = np.zeros(self.size, dtype=np.int64)
        self.max_share = np.zeros(self.size)
        self.level_share: list[np.ndarray] = []
        self.ids: dict[int, str] = {}
        self.metadata: dict[int, dict[str, Any]] = {}
        self.max_output: dict[int, str] = {}
        self.outputs = 0

    def ensure(self, size: int) -> None:
        if size <= self.size:
            return
        grow = lambda a: np.concatenate([a, np.zeros(size - len(a), dtype=a.dtype)])
        self.total, self.top1, self.listed, self.max_share = (
            grow(self.total), grow(self.top1), grow(self.listed), grow(self.max_share),
        )
        self.level_share = [grow(a) for a in self.level_share]
        self.size = size

    def level(self, position: int) -> np.ndarray:
        while len(self.level_share) <= position:
            self.level_share.append(np.zeros(self.size))
        return self.level_share[position]


def _valid_top(metadata: dict[str, Any]) -> str | None:
    """Why the top list cannot be aggregated, or None."""
    for position, item in enumerate(metadata["top"]):
        index = item.get("index")
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            return f"top[{position}].index={index!r} is not an index position"
        share = item.get("share")
        if share is None or not math.isfinite(float(share)) or not -1e-6 <= float(share) <= 1 + 1e-6:
            return f"top[{position}].share={share!r} is not a share in [0, 1]"
    return None


def _level_entries(metadata: dict[str, Any]) -> list[tuple[int, float]]:
    """``(position in metadata["levels"], nu)`` of the usable levels, least noisy first."""
    entries = []
    for i, level in enumerate(metadata.get("levels") or []):
        if isinstance(level, dict):
            nu = level_noise(level)
            if nu is not None:
                entries.append((i, nu))
    return sorted(entries, key=lambda e: e[1])


class _Aggregator:
    def __init__(self, *, full_scores, thresholds, index, allow_mixed_indexes):
        self.full_scores = full_scores
        self.thresholds = thresholds
        self.index = index
        self.allow_mixed = allow_mixed_indexes
        self.groups: dict[str, _Group] = {}
        self.outputs = 0
        self.outputs_full = 0
        self.listed_mass = 0.0
        self.top_k: Counter = Counter()
        self.models: Counter = Counter()
        self.schedulers: Counter = Counter()
        self.configs: Counter = Counter()
        self.origins: Counter = Counter()
        self.top1_shares = array("d")
        self.level_noise_sum: list[float] = []
        self.level_outputs: list[int] = []
        self.level_listed: list[float] = []
        self.near_copies: list[NearCopyEvidence] = []
        self.thumbnails: dict[tuple[int, int], Any] = {}
        self.skipped: list[SkippedFile] = []

    # -- one output

    def add(self, record: _Record) -> None:
        metadata = record.metadata
        problem = _valid_top(metadata)
        if problem is not None:
            self.skipped.append(SkippedFile(Path(record.name), f"cannot aggregate: {problem}"))
            return
        group_number, group = self._group(metadata, record.name)
        top = metadata["top"]
        positions = [int(item["index"]) for item in top]
        group.ensure(max(positions, default=-1) + 1)

        full = None
        if self.full_scores:
            full = record.arrays(("scores", "level_scores"))
            if full is not None and (full["scores"].ndim != 1 or len(full["scores"]) < group.size
                                     or full["level_scores"].shape[-1] != len(full["scores"])):
                full = None
        levels = _level_entries(metadata)
        if full is not None:
            scores = full["scores"].astype(np.float64)
            total = float(scores.sum())
            if total <= 0 or not math.isfinite(total):
                full = None
        name = record.name
        if full is not None:
            group.ensure(len(scores))
            shares = scores / total
            group.total[: len(shares)] += shares
            improved = np.flatnonzero(shares > group.max_share[: len(shares)])
            group.max_share[improved] = shares[improved]
            for i in improved.tolist():
                group.max_output[i] = name
            self.outputs_full += 1
            self.listed_mass += 1.0
            level_scores = full["level_scores"].astype(np.float64)
            rows = levels if level_scores.shape[0] == len(metadata.get("levels") or []) else [
                (row, None) for row in range(level_scores.shape[0])
            ]
            for position, (row, nu) in enumerate(rows):
                level_total = float(level_scores[row].sum())
                if level_total > 0:
                    group.level(position)[: level_scores.shape[1]] += level_scores[row] / level_total
                self._level_seen(position, nu, 1.0 if level_total > 0 else 0.0)
        else:
            shares = np.array([float(item["share"]) for item in top])
            positions_array = np.array(positions, dtype=np.int64)
            np.add.at(group.total, positions_array, shares)
            for pos, share in zip(positions, shares.tolist()):
                if share > group.max_share[pos]:
                    group.max_share[pos] = share
                    group.max_output[pos] = name
            self.listed_mass += float(shares.sum())
            total_score = metadata.get("total_score")
            for position, (row, nu) in enumerate(levels):
                scores_here = metadata["levels"][row].get("top_scores")
                listed = 0.0
                if (isinstance(total_score, (int, float)) and total_score > 0 and isinstance(scores_here, list)
                        and len(scores_here) == len(top)):
                    values = np.array(scores_here, dtype=np.float64) / float(total_score)
                    np.add.at(group.level(position), positions_array, values)
                    listed = float(values.sum())
                self._level_seen(position, nu, listed)

        for rank, (pos, item) in enumerate(zip(positions, top), start=1):
            group.listed[pos] += 1
            if pos not in group.ids:
                group.ids[pos] = str(item["id"])
                group.metadata[pos] = item.get("metadata") or {}
                ref = record.thumbnail_ref(rank)  # `<stem>.train-<rank>.png`, in `top` order
                if ref is not None:
                    self.thumbnails[(group_number, pos)] = ref
        if positions:
            best = max(range(len(top)), key=lambda j: float(top[j]["share"]))
            group.top1[positions[best]] += 1
            self.top1_shares.append(float(top[best]["share"]))
        else:
            self.top1_shares.append(0.0)
        group.outputs += 1
        self.outputs += 1
        self.top_k[len(top)] += 1
        self.models[str(metadata.get("model", "unknown"))] += 1
        self.schedulers[str(metadata.get("scheduler", "unknown"))] += 1
        self.configs[json.dumps(metadata.get("config") or {}, sort_keys=True)] += 1
        self.origins[str(metadata.get("origin") or "generated")] += 1
        if self.thresholds is not None:
            evidence = self._near_copy(record, levels, group_number)
            if evidence is not None:
                self.near_copies.append(evidence)

    def _level_seen(self, position: int, nu: float | None, listed: float) -> None:
        while len(self.level_outputs) <= position:
            self.level_outputs.append(0)
            self.level_noise_sum.append(0.0)
            self.level_listed.append(0.0)
        self.level_outputs[position] += 1
        self.level_noise_sum[position] += nu if nu is not None else 0.0
        self.level_listed[position] += listed

    def _group(self, metadata: dict[str, Any], name: str) -> tuple[int, _Group]:
        fingerprint = metadata.get("index") or {}
        key = json.dumps(fingerprint, sort_keys=True, default=str)
        group = self.groups.get(key)
        if group is None:
            if self.groups and not self.allow_mixed:
                first = next(iter(self.groups.values()))
                raise ValueError(
                    "results from different indexes cannot be aggregated together: "
                    f"{name} was attributed against {_fingerprint_text(fingerprint)}, but {first.first} against "
                    f"{_fingerprint_text(first.fingerprint)}; report one index at a time, or allow it explicitly "
                    "(allow_mixed_indexes=True, --allow-mixed-indexes)"
                )
            group = self.groups[key] = _Group(fingerprint, name)
            if self.index is not None:
                self._check_index(group)
        return list(self.groups).index(key), group

    # -- near copies

    def _near_copy(self, record: _Record, levels: list[tuple[int, float]], group_number: int) -> NearCopyEvidence | None:
        thresholds = self.thresholds
        metadata = record.metadata
        top = metadata["top"]
        if not levels or not top:
            return None
        row, nu = levels[0]
        scores_here = metadata["levels"][row].get("top_scores")
        total_score = metadata.get("total_score")
        if not (isinstance(scores_here, list) and len(scores_here) == len(top) and isinstance(total_score, (int, float))
                and total_score > 0):
            return None
        values = np.array(scores_here, dtype=np.float64)
        order = np.argsort(-values)
        estimate = float(values[order[0]]) / float(total_score)
        if estimate < SCREEN_FACTOR * thresholds.min_share:
            return None

        arrays = record.arrays(("level_scores", "query_maps", "source_maps"))
        files = [record.name]
        if arrays is not None and arrays["level_scores"].shape[0] == len(metadata["levels"]):
            item, share, runner_up = dominance(arrays["level_scores"][row].astype(np.float64))
            exact = True
            if record.path is not None:
                files.append(display_name(record.arrays_path))
        else:
            arrays = None
            j = int(order[0])
            item = int(top[j]["index"])
            share = estimate
            runner_up = float(values[order[1]]) / float(total_score) if len(values) > 1 else 0.0
            exact = False
        dominance_ratio = ratio(share, runner_up)
        if share < thresholds.min_share or dominance_ratio < thresholds.min_ratio:
            return None
        ranks = [int(entry["index"]) for entry in top]
        rank = ranks.index(item) + 1 if item in ranks else None
        evidence = NearCopyEvidence(
            output=record.name, path=record.name if record.path is not None else None,
            item_id=str(top[rank - 1]["id"]) if rank else f"#{item}", item_index=item, item_rank=rank,
            level=nu, share=share, runner_up_share=runner_up, ratio=dominance_ratio, exact=exact, files=files,
            output_share=float(top[rank - 1]["share"]) if rank else None,
        )
        keep_pictures = len(self.near_copies) < MAX_PICTURES
        if arrays is None:
            missing = "the arrays file is missing or unreadable" if record.path is not None else "the result has no arrays"
            evidence.reasons.append(f"alignment and distance not checked: {missing} (dominance estimated from the JSON top items)")
            return evidence
        maps = arrays["query_maps"].shape[0]
        if rank is None or rank > maps:
            evidence.reasons.append(
                f"alignment and distance not checked: maps were kept for the top {maps} items only and the "
                f"dominant item is {'not listed' if rank is None else f'rank {rank}'}"
            )
            return evidence
        query_map = arrays["query_maps"][rank - 1].astype(np.float64)
        source_map = arrays["source_maps"][rank - 1].astype(np.float64)
        evidence.alignment, evidence.alignment_shift = map_alignment(query_map, source_map, thresholds.max_shift)

        output = record.image()
        source, source_name = self._item_picture(record, group_number, item, rank)
        region = None
        if output is None:
            evidence.reasons.append("distance not checked: the output image could not be read")
        elif source is None:
            evidence.reasons.append(f"distance not checked: no pixels of {evidence.item_id} (pass the index, or keep the thumbnails)")
        else:
            space = (metadata.get("index") or {}).get("space")
            out_pixels, src_pixels, evidence.distance_basis, region = comparable_pixels(output, source, space)
            scale = max(out_pixels.shape[1] / query_map.shape[1], out_pixels.shape[0] / query_map.shape[0])
            shift = math.ceil(thresholds.max_shift * scale)
            evidence.distance, evidence.distance_shift = pixel_distance(out_pixels, src_pixels, shift)
            evidence.distance_source = source_name
            if source_name and source_name.endswith(".png"):
                files.append(source_name)

        if evidence.alignment < thresholds.min_alignment:
            evidence.reasons.append(f"alignment {evidence.alignment:.2f} < {thresholds.min_alignment}")
        if evidence.distance is not None and evidence.distance > thresholds.max_distance:
            evidence.reasons.append(f"pixel distance {evidence.distance:.3f} > {thresholds.max_distance}")
        evidence.flagged = not evidence.reasons
        if keep_pictures and output is not None:
            evidence.pictures = _evidence_pictures(output, region or metadata.get("region"), source, query_map, source_map)
        return evidence

    def _item_picture(self, record: _Record, group_number: int, item: int, rank: int):
        """The item's pixels: from the index (pixel space, as stored) or the output's thumbnail of it."""
        index = self.index
        if index is not None and group_number == 0 and index.space.get("kind") == "pixel":
            return index.gather([item])[0], "index"
        ref = record.thumbnail_ref(rank)
        if isinstance(ref, Image.Image):
            return ref, "source image of the result"
        if isinstance(ref, Path):
            try:
                with Image.open(ref) as picture:
                    picture.load()
                    return picture.copy(), display_name(ref)
            except (OSError, SyntaxError, ValueError):
                return None, None
        return None, None

    # -- the summary

    def finish(self, *, fields, max_items, sources) -> AttributionSummary:
        if self.outputs == 0:
            detail = "".join(f"\n  {item.path}: {item.reason}" for item in self.skipped[:20])
            raise ValueError(
                f"no attribution results in {', '.join(sources) or 'the input'}; expected folders of PNGs written "
                "by AttributedPipeline(...)(...).save (or their .attribution.json sidecars)"
                + (f". Skipped files:{detail}" if detail else "")
            )
        groups = list(self.groups.values())
        n = self.outputs
        index_items = sum(group.size for group in groups)
        # flat views over all groups: (group, position)
        totals = np.concatenate([g.total for g in groups])
        top1 = np.concatenate([g.top1 for g in groups])
        owner = np.concatenate([np.full(g.size, k, dtype=np.int64) for k, g in enumerate(groups)])
        offset = np.cumsum([0] + [g.size for g in groups])
        order = np.argsort(-totals, kind="stable")
        seen = int(np.count_nonzero(totals > 0))
        listed_mass = self.listed_mass / n

        def ident(flat: int) -> tuple[_Group, int]:
            k = int(owner[flat])
            return groups[k], flat - int(offset[k])

        def item_id(group: _Group, pos: int) -> str:
            if pos in group.ids:
                return group.ids[pos]
            if self.index is not None and group is groups[0]:
                return self.index.ids[pos]
            return f"#{pos}"

        def item_metadata(group: _Group, pos: int) -> dict[str, Any] | None:
            if pos in group.metadata:
                return group.metadata[pos]
            if self.index is not None and group is groups[0]:
                return self.index.metadata[pos]
            return None

        n_levels = len(self.level_outputs)
        items = []
        for flat in order[: max(0, max_items)].tolist():
            if totals[flat] <= 0 and top1[flat] == 0:
                break
            group, pos = ident(flat)
            level_shares = [
                float(group.level_share[r][pos]) / self.level_outputs[r] if r < len(group.level_share) and self.level_outputs[r] else 0.0
                for r in range(n_levels)
            ]
            items.append(ItemStats(
                index=pos, id=item_id(group, pos), metadata=item_metadata(group, pos) or {},
                total_share=float(totals[flat]), mean_share=float(totals[flat]) / n, top1=int(top1[flat]),
                listed=int(group.listed[pos]), max_share=float(group.max_share[pos]),
                max_output=group.max_output.get(pos), level_shares=level_shares, index_group=int(owner[flat]),
            ))

        cumulative = np.cumsum(totals[order]) / n
        coverage = {_pct(q): _first_reaching(cumulative, q) for q in COVERAGE_LEVELS}
        coverage_listed = {
            _pct(q): _first_reaching(cumulative / listed_mass, q) if listed_mass > 0 else None for q in COVERAGE_LEVELS
        }
        concentration = _concentration(totals, index_items, top1)

        breakdowns = self._breakdowns(groups, fields, item_metadata, n)
        levels = []
        for r in range(n_levels):
            count = self.level_outputs[r]
            mass = np.concatenate([g.level_share[r] if r < len(g.level_share) else np.zeros(g.size) for g in groups])
            best = np.argsort(-mass, kind="stable")[:10]
            levels.append(LevelStats(
                position=r, noise=self.level_noise_sum[r] / count if count else float("nan"), outputs=count,
                listed_mass=self.level_listed[r] / count if count else 0.0,
                effective_items=_effective(mass),
                top=[(item_id(*ident(int(f))), float(mass[f]) / count) for f in best.tolist() if mass[f] > 0],
            ))

        x = np.unique(np.concatenate([np.geomspace(1, max(len(cumulative), 1), _CURVE_POINTS).round().astype(int), [1, len(cumulative)]]))
        x = x[(x >= 1) & (x <= len(cumulative))]
        curve = (x, cumulative[x - 1] if len(cumulative) else np.zeros(0))

        basis = "full" if self.outputs_full == n else ("top-k" if self.outputs_full == 0 else "mixed")
        self.near_copies.sort(key=lambda e: ({"flagged": 0, "candidate": 1, "cleared": 2}[e.status], -e.share))
        return AttributionSummary(
            outputs=n, outputs_full=self.outputs_full, basis=basis, top_k=dict(self.top_k), listed_mass=listed_mass,
            items=items, items_seen=seen, index_items=index_items, coverage=coverage, coverage_listed=coverage_listed,
            concentration=concentration, breakdowns=breakdowns, levels=levels, near_copies=self.near_copies,
            thresholds=self.thresholds,
            indexes=[{"fingerprint": g.fingerprint, "outputs": g.outputs, "first": g.first} for g in groups],
            models=dict(self.models.most_common()), schedulers=dict(self.schedulers.most_common()),
            configs=dict(self.configs.most_common()), skipped=sorted(self.skipped, key=lambda s: str(s.path)),
            sources=sources, coverage_curve=curve, top1_shares=np.frombuffer(self.top1_shares, dtype=np.float64).copy(),
            thumbnails=self.thumbnails, index_obj=self.index, origins=dict(self.origins),
        )

    def _check_index(self, group: _Group) -> None:
        from ..attributor import index_fingerprint

        expected = json.loads(json.dumps(index_fingerprint(self.index), default=str))
        if json.loads(json.dumps(group.fingerprint, default=str)) != expected:
            raise ValueError(
                f"the index given ({_fingerprint_text(expected)}) is not the one {group.first} was attributed "
                f"against ({_fingerprint_text(group.fingerprint)})"
            )
        group.ensure(len(self.index))

    def _breakdowns(self, groups, fields, item_metadata, n) -> dict[str, list[BreakdownRow]]:
        # which fields
        seen_fields: dict[str, set] = {}
        for k, group in enumerate(groups):
            metadatas = group.metadata.values() if self.index is None or k else self.index.metadata
            for metadata in metadatas:
                for key, value in (metadata or {}).items():
                    values = seen_fields.setdefault(key, set())
                    if len(values) <= MAX_AUTO_VALUES:
                        values.add(_value_key(value))
        if fields is None:
            chosen = [f for f in seen_fields if f in DEFAULT_FIELDS] + sorted(
                f for f, values in seen_fields.items()
                if f not in DEFAULT_FIELDS and f.lower() not in FREE_TEXT_FIELDS and len(values) <= MAX_AUTO_VALUES
            )
        else:
            chosen = list(fields)
        result = {}
        for name in chosen:
            share: Counter = Counter()
            items: Counter = Counter()
            top1: Counter = Counter()
            for group in groups:
                nonzero = np.flatnonzero((group.total > 0) | (group.top1 > 0))
                for pos in nonzero.tolist():
                    metadata = item_metadata(group, pos)
                    if metadata is None:
                        value = "(not listed: metadata unknown)"
                    elif name not in metadata or metadata[name] is None:
                        value = "(missing)"
                    else:
                        value = _value_key(metadata[name])
                    share[value] += float(group.total[pos])
                    items[value] += 1
                    top1[value] += int(group.top1[pos])
            rows = [BreakdownRow(v, share[v] / n, items[v], top1[v]) for v in share]
            rows.sort(key=lambda row: (-row.share, row.value))
            result[name] = rows
        return result


def _value_key(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def _pct(q: float) -> str:
    return f"{q:.0%}"


def _first_reaching(cumulative: np.ndarray, q: float) -> int | None:
    if len(cumulative) == 0 or cumulative[-1] < q - 1e-9:
        return None
    return int(np.searchsorted(cumulative, q - 1e-12) + 1)


def _effective(mass: np.ndarray) -> float:
    total = float(mass.sum())
    if total <= 0:
        return 0.0
    p = mass[mass > 0] / total
    return float(np.exp(-(p * np.log(p)).sum()))


def _concentration(totals: np.ndarray, index_items: int, top1: np.ndarray) -> dict[str, Any]:
    total = float(totals.sum())
    if total <= 0:
        return {"entropy_bits": None, "normalised_entropy": None, "effective_items": None, "gini": None,
                "distinct_top1": 0, "top1_max": 0}
    p = totals[totals > 0] / total
    entropy = float(-(p * np.log2(p)).sum())
    sorted_totals = np.sort(totals)
    count = len(sorted_totals)
    ranks = np.arange(1, count + 1)
    gini = float((2 * (ranks * sorted_totals).sum()) / (count * total) - (count + 1) / count) if count else None
    return {
        "entropy_bits": entropy,
        "normalised_entropy": entropy / math.log2(index_items) if index_items > 1 else None,
        "effective_items": float(2.0 ** entropy),
        "gini": gini,
        "distinct_top1": int(np.count_nonzero(top1)),
        "top1_max": int(top1.max()) if len(top1) else 0,
    }


def _fingerprint_text(fingerprint: dict[str, Any]) -> str:
    if not fingerprint:
        return "an unknown index (no fingerprint)"
    space = fingerprint.get("space") if isinstance(fingerprint.get("space"), dict) else {}
    parts = [f"{fingerprint.get('items', '?')} items"]
    if space.get("kind"):
        parts.append(f"{space['kind']} space")
    parts.append(f"ids sha256 {str(fingerprint.get('ids_sha256', '?'))[:12]}")
    return "an index of " + ", ".join(parts)


def _evidence_pictures(
    output: Image.Image, region: Any, source: Any, query_map: np.ndarray, source_map: np.ndarray
) -> dict[str, bytes]:
    """PNGs of the part of the output that was attributed (``region``), the item and both maps, all
    at that part's size and aspect ratio."""
    import torch

    from ..attributor import to_pil
    from ..render import overlay

    if region is not None:
        output = output.crop(tuple(round(float(v)) for v in region))
    size = output.size
    if isinstance(source, torch.Tensor):
        source = to_pil(source[None])[0]
    pictures = {"output": output.convert("RGB")}
    if source is not None:
        pictures["source"] = source.convert("RGB").resize(size, Image.BICUBIC) if source.size != size else source.convert("RGB")
    pictures["query_map"] = overlay(output, torch.from_numpy(query_map), size)
    pictures["source_map"] = overlay(source, torch.from_numpy(source_map), size)
    out = {}
    for key, picture in pictures.items():
        if max(picture.size) > PICTURE_SIDE:
            picture = picture.copy()
            picture.thumbnail((PICTURE_SIDE, PICTURE_SIDE), Image.BICUBIC)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        out[key] = buffer.getvalue()
    return out


# ------------------------------------------------------------------------------------------- public


def aggregate(
    sources: Any,
    *,
    full_scores: bool = False,
    near_copy: NearCopyThresholds | None | bool = True,
    index: Any = None,
    fields: list[str] | None = None,
    allow_mixed_indexes: bool = False,
    max_items: int = 500,
) -> AttributionSummary:
    """Aggregate the attribution of many generated outputs.

    Parameters:
        sources: run folders (``AttributedPipeline(...)(...).save(run_dir)``; read with
            :func:`~diffusers_attr.report.iter_run`, subfolders not included), PNG or
            ``.attribution.json`` files, :class:`~diffusers_attr.Attribution` objects or
            ``Attribution.to_dict()`` dicts: one, or any iterable of them (a generator is consumed once,
            lazily).
        full_scores: read every item's share from the full arrays (``<stem>.attribution.safetensors``,
            or the objects' ``scores``) where present; otherwise (default) from the JSON top items only,
            and the mass outside each output's top K is reported as such.
        near_copy: the near-copy thresholds (:class:`NearCopyThresholds`); ``True`` for the defaults,
            ``None`` or ``False`` to skip the flags.
        index: the :class:`~diffusers_attr.AttributionIndex` the results were attributed against
            (optional): it must match their fingerprint; it gives the ids and metadata of items no
            output lists and, for pixel indexes, the exact pixels for the near-copy distance.
        fields: metadata fields to break the shares down by; default: ``label``, ``source``,
            ``licence``, ``contributor`` (when present) and every other field with at most 50
            distinct values that is not free text.
        allow_mixed_indexes: aggregate results attributed against different indexes (their items are
            kept apart); by default that is an error.
        max_items: how many items (largest total share first) the summary lists.

    Returns:
        An :class:`AttributionSummary`.

    Raises:
        ValueError: no usable result at all (the message lists skipped files), results from different
            indexes without ``allow_mixed_indexes``, or an ``index`` that does not match.
        FileNotFoundError: a path that does not exist.

    Example:
        >>> summary = aggregate(["out/run-1", "out/run-2"])  # doctest: +SKIP
        >>> summary.coverage, [item.id for item in summary.items[:5]], summary.flags  # doctest: +SKIP
    """
    if near_copy is True:
        near_copy = NearCopyThresholds()
    elif near_copy is False:
        near_copy = None
    elif near_copy is not None and not isinstance(near_copy, NearCopyThresholds):
        raise TypeError(f"near_copy={near_copy!r} must be a NearCopyThresholds, True or None")
    if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 0:
        raise ValueError(f"max_items={max_items!r} must be a non-negative integer")
    if fields is not None and (isinstance(fields, str) or not all(isinstance(f, str) for f in fields)):
        raise ValueError(f"fields={fields!r} must be a list of metadata field names, e.g. ['label', 'licence']")
    aggregator = _Aggregator(
        full_scores=full_scores, thresholds=near_copy, index=index, allow_mixed_indexes=allow_mixed_indexes
    )
    names: list[str] = []
    for record in _records(sources, aggregator.skipped, names):
        aggregator.add(record)
    return aggregator.finish(fields=fields, max_items=max_items, sources=names)
