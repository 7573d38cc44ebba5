"""The static HTML report of one run folder: every generated image with its sources, maps and collage.

A run folder is what ``AttributedPipeline(...)(...).save(run_dir)`` writes: per image ``<stem>.png``
(attribution embedded), ``<stem>.attribution.json`` (sidecar), ``<stem>.heatmap-k.png`` and
``<stem>.source-k.png`` (query and source maps of the k-th top item, k = 1..M),
``<stem>.collage.png`` (dominant sources) and ``<stem>.train-k.png`` (thumbnails of the top items).
:func:`write_run_report` turns it into one ``index.html`` next to those files: static, relative links
only, no external URL, readable from ``file://``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
from PIL import Image

from .._version import __version__
from ..provenance import (
    SIDECAR_SUFFIX,
    read_attribution,
    read_png_metadata,
    sidecar_path,
)
from ..render.colormap import CATEGORICAL, OTHER_COLOUR, heat
from .assets import CSS, JS
from .formatting import SHARES, escape, html_head, images_noun, write_text_atomic

REPORT_NAME = "index.html"
# Pictures written next to an image by Attribution.save: `<stem>.heatmap-3.png`, `<stem>.collage.png`, ...
_PICTURE = re.compile(r"^(?P<stem>.+)\.(?:heatmap-\d+|source-\d+|train-\d+|collage|card)\.png$", re.IGNORECASE)
# Any `<stem>.<kind>.png`: a picture of `<stem>.png` of a kind this report does not know, unless it
# carries attribution metadata itself.
_OTHER_PICTURE = re.compile(r"^(?P<stem>.+)\.[A-Za-z][A-Za-z0-9_-]*\.png$", re.IGNORECASE)
# Outputs smaller than this (pixels, longest side) are scaled up with crisp pixels rather than blurred.
_PIXELATED_BELOW = 160
_HEAT_GRADIENT = "linear-gradient(to right, " + ", ".join(
    f"rgb({r}, {g}, {b})" for r, g, b in heat(np.linspace(0, 1, 8)).tolist()
) + ")"
_CONFIG_ORDER = ("mode", "patch_size", "scales", "topk", "timesteps", "sigmas", "draws", "seed", "top", "maps")


@dataclass
class RunImage:
    """A generated image of a run folder whose attribution could be read.

    Attributes:
        path: the image file (``<stem>.png``).
        metadata: its attribution (``Attribution.to_dict()`` schema).
        size: ``(width, height)`` of the image in pixels.
        note: how the metadata was read when not from the image itself (e.g. from the sidecar).
    """

    path: Path
    metadata: dict[str, Any]
    size: tuple[int, int]
    note: str | None = None


@dataclass
class SkippedFile:
    """A file of a run folder the report could not use, and why."""

    path: Path
    reason: str


@dataclass
class RunFolder:
    """What a run folder holds: the readable images (sorted by file name) and the skipped files."""

    directory: Path
    images: list[RunImage] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)


def scan_run(run_dir: str | os.PathLike) -> RunFolder:
    """Read the attribution of every generated image in ``run_dir`` (not its subfolders).

    Every ``*.png`` that is not one of the pictures written next to an image (heatmaps, source maps,
    collage, summary card, thumbnails; or any ``<stem>.<kind>.png`` without metadata next to
    ``<stem>.png``) is read as a generated image: its metadata comes from the PNG itself, else from
    its ``.attribution.json`` sidecar. Unreadable images, images without metadata, corrupted
    sidecars and sidecars without their image are listed in ``skipped`` with the reason, never dropped.
    :func:`iter_run` yields the same entries one at a time (for folders too large to hold at once).

    Parameters:
        run_dir: the folder ``AttributedPipeline(...)(...).save`` wrote.

    Returns:
        A :class:`RunFolder`; ``images`` may be empty.

    Example:
        >>> folder = scan_run("out/run")  # doctest: +SKIP
        >>> [image.path.name for image in folder.images], folder.skipped  # doctest: +SKIP
    """
    directory = Path(run_dir)
    folder = RunFolder(directory)
    for entry in iter_run(directory):
        if isinstance(entry, RunImage):
            folder.images.append(entry)
        else:
            folder.skipped.append(entry)
    folder.skipped.sort(key=lambda item: item.path.name)
    return folder


def iter_run(run_dir: str | os.PathLike) -> Iterator[RunImage | SkippedFile]:
    """The entries :func:`scan_run` collects, one at a time in file-name order: a :class:`RunImage`
    per readable generated image and a :class:`SkippedFile` per file that could not be used (a
    corrupted sidecar next to a readable image comes right after that image). Only the file names of
    the folder are held in memory, never the metadata of more than one image.

    Raises:
        FileNotFoundError, NotADirectoryError: when ``run_dir`` is not an existing folder (raised on
            the first ``next``).
    """
    directory = Path(run_dir)
    if not directory.exists():
        raise FileNotFoundError(f"run_dir={str(directory)!r} does not exist")
    if not directory.is_dir():
        raise NotADirectoryError(f"run_dir={str(directory)!r} is not a folder")
    names = {entry.name for entry in directory.iterdir() if entry.is_file()}
    for name in sorted(names):
        path = directory / name
        if name.endswith(SIDECAR_SUFFIX):
            image_name = name[: -len(SIDECAR_SUFFIX)] + ".png"
            if image_name not in names:
                yield SkippedFile(path, f"a sidecar without its image ({image_name} is missing)")
            continue
        if not name.lower().endswith(".png"):
            continue
        picture = _PICTURE.match(name)
        if picture:
            if picture["stem"] + ".png" in names:
                continue  # a heatmap, source map, collage or thumbnail of an image of this folder
            yield SkippedFile(path, f"a picture of an image that is missing ({picture['stem']}.png)")
            continue
        image, skipped = _read_image(path, names)
        other = _OTHER_PICTURE.match(name)
        if image is None and other and other["stem"] + ".png" in names and not _has_sidecar(path, names):
            continue  # e.g. `<stem>.thumbnail.png`: a picture of an image of this folder, not an image
        if image is not None:
            yield image
        yield from skipped


def write_run_report(run_dir: str | os.PathLike, *, title: str | None = None) -> Path:
    """Write ``run_dir/index.html``: a static report of every generated image in a run folder.

    The page has a header (model, scheduler, index size, attribution settings, number of images) and
    one card per image (sorted by file name): the image, where it uses its top training item (heatmap),
    its dominant-source collage with a legend, and its top training items (thumbnail, id, label or
    caption, score, share). Hovering, focusing or clicking an item shows its query map (where the
    output uses it) and source map (which of its regions were used) in the card's detail panel. Files
    that could not be read are listed in a "Skipped files" section. The page links only to files in
    ``run_dir`` (relative links), needs no server or network and is written atomically.

    Parameters:
        run_dir: the folder ``AttributedPipeline(...)(...).save(run_dir)`` wrote.
        title: the page title; defaults to ``"Attribution report: <folder name>"``.

    Returns:
        The path of the written ``index.html``.

    Raises:
        ValueError: when ``run_dir`` holds no image with diffusers-attr metadata.

    Example:
        >>> out = AttributedPipeline(pipe, index)(num_inference_steps=20)  # doctest: +SKIP
        >>> out.save("out/run")  # doctest: +SKIP
        >>> write_run_report("out/run")  # doctest: +SKIP
        PosixPath('out/run/index.html')
    """
    folder = scan_run(run_dir)
    if not folder.images:
        detail = "".join(f"\n  {item.path.name}: {item.reason}" for item in folder.skipped)
        raise ValueError(
            f"no images with diffusers-attr metadata in {folder.directory}; expected the PNGs that "
            "AttributedPipeline(...)(...).save(run_dir) writes" + (f". Skipped files:{detail}" if detail else "")
        )
    directory = folder.directory.resolve()
    if title is None:
        title = f"Attribution report: {directory.name or directory}"
    names = {entry.name for entry in directory.iterdir() if entry.is_file()}
    page = _page(folder, str(title), names)
    target = directory / REPORT_NAME
    write_text_atomic(target, page)
    return target


# --------------------------------------------------------------------------------------------- reading


def _read_image(path: Path, names: set[str]) -> tuple[RunImage | None, list[SkippedFile]]:
    """The image at ``path`` with its attribution, and the files that had to be skipped."""
    skipped: list[SkippedFile] = []
    try:
        with Image.open(path) as picture:
            size = picture.size
            picture.verify()
    except Exception as error:  # PIL raises many types for a broken file
        return None, [SkippedFile(path, f"not a readable PNG image ({_one_line(error)})")]

    sidecar = sidecar_path(path)
    sidecar_metadata, sidecar_error = None, None
    if sidecar.name in names:
        try:
            sidecar_metadata = _checked(read_attribution(sidecar))
        except (ValueError, OSError) as error:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
            sidecar_error = _one_line(error)

    try:
        embedded = _checked(read_png_metadata(path))
    except (ValueError, OSError) as error:
        embedded, embedded_error = None, _one_line(error).replace(str(path), path.name)
    else:
        embedded_error = None

    if embedded is not None:
        if sidecar_error is not None:
            skipped.append(
                SkippedFile(sidecar, f"corrupted sidecar ({sidecar_error}); the metadata embedded in {path.name} was used")
            )
        return RunImage(path, embedded, size), skipped
    if sidecar_metadata is not None:
        note = f"metadata read from {sidecar.name} (none embedded in the image)"
        return RunImage(path, sidecar_metadata, size, note=note), skipped
    if sidecar_error is not None:
        skipped.append(SkippedFile(sidecar, f"corrupted sidecar ({sidecar_error})"))
        reason = f"{embedded_error}; its sidecar {sidecar.name} is corrupted too"
    else:
        reason = embedded_error
    skipped.append(SkippedFile(path, reason))
    return None, skipped


def _has_sidecar(path: Path, names: set[str]) -> bool:
    return sidecar_path(path).name in names


def _checked(metadata: Any) -> dict[str, Any]:
    """``metadata`` when it has the shape of ``Attribution.to_dict()`` (as far as the report reads it)."""
    if not isinstance(metadata, dict):
        raise ValueError(f"expected a JSON object, got {type(metadata).__name__}")
    if metadata.get("format") != "diffusers-attr":
        raise ValueError(f"format={metadata.get('format')!r}, expected 'diffusers-attr'")
    top = metadata.get("top")
    if not isinstance(top, list):
        raise ValueError("'top' is missing or not a list")
    for position, item in enumerate(top):
        if not isinstance(item, dict) or "id" not in item:
            raise ValueError(f"top[{position}] is not an item with an 'id'")
        for key in ("score", "share"):
            if not isinstance(item.get(key, 0.0), (int, float)) or isinstance(item.get(key), bool):
                raise ValueError(f"top[{position}].{key}={item.get(key)!r} is not a number")
        if not isinstance(item.get("metadata", {}), dict):
            raise ValueError(f"top[{position}].metadata is not an object")
    for key in ("config", "index"):
        if not isinstance(metadata.get(key, {}), dict):
            raise ValueError(f"'{key}' is not an object")
    if not isinstance(metadata.get("levels", []), list):
        raise ValueError("'levels' is not a list")
    return metadata


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


# --------------------------------------------------------------------------------------------- writing




def _url(name: str) -> str:
    """A relative link to a file of the run folder, escaped for an attribute value."""
    return escape(quote(name))


def _number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    try:
        return f"{float(value):.{digits}g}"
    except (TypeError, ValueError):
        return str(value)


def _percent(share: Any) -> str:
    try:
        share = float(share)
    except (TypeError, ValueError):
        return "?"
    if share >= 0.1:
        return f"{share * 100:.1f}%"
    if share >= 0.001:
        return f"{share * 100:.2f}%"
    return f"{share * 100:.2g}%"


def _rgb(colour) -> str:
    return f"rgb({int(colour[0])}, {int(colour[1])}, {int(colour[2])})"


def _config_summary(config: dict[str, Any]) -> str:
    keys = [key for key in _CONFIG_ORDER if key in config] + sorted(k for k in config if k not in _CONFIG_ORDER)
    parts = []
    for key in keys:
        value = config[key]
        if value is None:
            continue
        shown = value if isinstance(value, (str, int, float)) else json.dumps(value, separators=(",", ":"))
        parts.append(f"{key}={shown}")
    return ", ".join(parts) or "defaults"


def _distinct(values: list[str]) -> str:
    unique = list(dict.fromkeys(values))
    if len(unique) == 1:
        return unique[0]
    return "; ".join(unique) + " (varies per image)"


def _item_text(item: dict[str, Any]) -> tuple[str, str]:
    """(label and caption line, tooltip with all metadata) of a top item."""
    metadata = item.get("metadata") or {}
    parts = []
    if metadata.get("label") is not None:
        parts.append(f"label {metadata['label']}")
    if metadata.get("caption"):
        parts.append(str(metadata["caption"]))
    tooltip = "\n".join(
        [f"id: {item.get('id')}"]
        + [f"{key}: {value}" for key, value in metadata.items() if value is not None and value != ""]
    )
    return " · ".join(parts), tooltip


def _frame(name: str | None, alt: str, missing: str, shape: str = "") -> str:
    """An image in a square frame, or a note saying it is missing (never a broken <img>). With a
    ``shape`` (:func:`_map_shape`) the image is a map picture shown without the legend below it."""
    if name is None:
        return f'<div class="frame"{shape}><p class="missing">{escape(missing)}</p></div>'
    return f'<div class="frame"{shape}><img src="{_url(name)}" alt="{escape(alt)}" decoding="async"></div>'


def _map_shape(size: tuple[float, float]) -> str:
    """Attributes of a frame that shows map pictures of ``size`` (width, height): their aspect ratio,
    so the picture is fitted in its shape and the legend the file carries below it is cut off (this
    page has its own legends)."""
    width, height = max(1, round(size[0])), max(1, round(size[1]))
    return f' data-map="{"wide" if width >= height else "tall"}" style="--ratio: {width} / {height}"'


def _page(folder: RunFolder, title: str, names: set[str]) -> str:
    images = folder.images
    metadatas = [image.metadata for image in images]
    models = _distinct([str(m.get("model", "unknown")) for m in metadatas])
    schedulers = _distinct([str(m.get("scheduler", "unknown")) for m in metadatas])
    index_items = _distinct([_index_text(m.get("index") or {}) for m in metadatas])
    configs = _distinct([_config_summary(m.get("config") or {}) for m in metadatas])
    toc = "".join(
        f'<li><a class="chip" href="#{escape(_anchor(image))}">{escape(image.path.stem)}</a></li>' for image in images
    )
    notice = ""
    if folder.skipped:
        count = len(folder.skipped)
        notice = (
            f'<p class="notice" role="status">{count} file{"s" if count != 1 else ""} could not be used: '
            f'see <a href="#skipped">skipped files</a>.</p>'
        )
    cards = "\n".join(_card(image, names) for image in images)
    skipped = _skipped_section(folder.skipped) if folder.skipped else ""
    return f"""{html_head(title, CSS)}
<body>
<header class="page-head">
<div class="inner">
<h1>{escape(title)}</h1>
<p class="subtitle">Training-data attribution of {escape(images_noun((m.get("origin") for m in metadatas), len(images)))}:
which training items each image draws on, how much, and where.</p>
<p class="subtitle">{escape(SHARES)}</p>
<dl class="facts">
<div class="double"><dt>Model</dt><dd>{escape(models)}</dd></div>
<div><dt>Scheduler</dt><dd>{escape(schedulers)}</dd></div>
<div><dt>Index</dt><dd>{escape(index_items)}</dd></div>
<div><dt>Images</dt><dd>{len(images)}</dd></div>
<div class="wide"><dt>Attribution settings</dt><dd class="mono">{escape(configs)}</dd></div>
<div class="wide"><dt>Maps</dt><dd><span class="ramp" style="background: {_HEAT_GRADIENT}"></span> unused → most used by the
item (each map scaled to its maximum); only the part of an image that was attributed is coloured, the rest is dimmed</dd></div>
<div class="wide"><dt>Images in this run</dt><dd><ul class="chips">{toc}</ul></dd></div>
</dl>
{notice}
</div>
</header>
<main>
{cards}
{skipped}
</main>
<footer>Written by diffusers-attr {escape(__version__)} (nonparametric data attribution). A static page: every
picture is a file in this folder.</footer>
<script>{JS}</script>
</body>
</html>
"""


def _index_text(index: dict[str, Any]) -> str:
    items = index.get("items")
    space = index.get("space") if isinstance(index.get("space"), dict) else {}
    parts = [f"{items} items" if items is not None else "unknown size"]
    if space.get("kind"):
        parts.append(f"{space['kind']} space")
    if index.get("ids_sha256"):
        parts.append(f"ids sha256 {str(index['ids_sha256'])[:12]}")
    return ", ".join(parts)


def _anchor(image: RunImage) -> str:
    return "img-" + re.sub(r"[^A-Za-z0-9_-]", "-", image.path.stem)


def _card(image: RunImage, names: set[str]) -> str:
    metadata = image.metadata
    stem = image.path.stem
    top = metadata.get("top") or []
    config = metadata.get("config") or {}
    maps_kept = config.get("maps") if isinstance(config.get("maps"), int) else None

    def present(kind: str) -> str | None:
        name = f"{stem}.{kind}.png"
        return name if name in names else None

    def map_note(kind: str, rank: int) -> str:
        if maps_kept is not None and rank > maps_kept:
            return (
                f"No maps were kept for rank {rank}: this run kept them for the top {maps_kept} "
                "items (raise --maps, or maps= of AttributedPipeline, to keep more)."
            )
        return f"{stem}.{kind}-{rank}.png is missing from this folder."

    origin = str(metadata.get("origin") or "generated")
    region = metadata.get("region") or (0, 0, *image.size)
    output_shape = _map_shape(image.size)
    source_shape = _map_shape((region[2] - region[0], region[3] - region[1]))
    first = top[0] if top else None
    first_label = f"#1 ({first['id']})" if first else "the top item"
    heatmap_view = _frame(
        present("heatmap-1"), f"where {stem} uses {first_label}",
        map_note("heatmap", 1) if first else "No training items were listed.", output_shape,
    )
    collage = present("collage")
    legend_items = "".join(
        f'<li title="{escape(item.get("id"))}"><span class="swatch" style="background: {_rgb(CATEGORICAL[k])}"></span>'
        f'<span class="id">#{k + 1} {escape(item.get("id"))}</span></li>'
        for k, item in enumerate(top[: len(CATEGORICAL)])
    )
    legend_items += (
        f'<li><span class="swatch" style="background: {_rgb(OTHER_COLOUR)}"></span><span class="id">other items</span></li>'
    )
    views = f"""<div class="views">
<figure class="view"><figcaption>{escape(origin.capitalize())} image</figcaption>{_frame(image.path.name, f"{origin} image {stem}", "")}</figure>
<figure class="view"><figcaption>Where it uses {escape(first_label)}</figcaption>{heatmap_view}</figure>
<figure class="view collage-view"><div><figcaption>Dominant source per pixel</figcaption>{_frame(collage, f"dominant-source collage of {stem}", f"{stem}.collage.png is missing from this folder.", output_shape)}</div>
<ul class="legend" aria-label="collage colours">{legend_items}</ul></figure>
</div>"""

    buttons = []
    top_share = max((float(item.get("share", 0.0)) for item in top), default=0.0)
    for k, item in enumerate(top):
        rank = k + 1
        item_id = str(item.get("id"))
        subtitle, tooltip = _item_text(item)
        share = float(item.get("share", 0.0))
        width = 0.0 if top_share <= 0 else max(0.0, min(1.0, share / top_share)) * 100
        stats = f"score {_number(item.get('score'))} · share {_percent(share)}"
        thumb = present(f"train-{rank}")
        thumb_html = (
            f'<img src="{_url(thumb)}" alt="" decoding="async">' if thumb else '<p class="missing">no thumbnail</p>'
        )
        query, source = present(f"heatmap-{rank}"), present(f"source-{rank}")
        swatch = (
            f'<span class="swatch" style="background: {_rgb(CATEGORICAL[k])}" aria-hidden="true"></span>'
            if k < len(CATEGORICAL) else ""
        )
        buttons.append(
            f'<li><button type="button" class="item{" shown" if k == 0 else ""}" aria-pressed="{"true" if k == 0 else "false"}"'
            f' aria-controls="{escape(_anchor(image))}-detail" title="{escape(tooltip)}"'
            f' data-rank="{rank}" data-id="{escape(item_id)}" data-caption="{escape(subtitle)}" data-stats="{escape(stats)}"'
            f' data-query="{_url(query) if query else ""}" data-query-note="{escape(map_note("heatmap", rank))}"'
            f' data-source="{_url(source) if source else ""}" data-source-note="{escape(map_note("source", rank))}">'
            f'<span class="thumb">{thumb_html}</span>'
            f'<span class="item-text"><span class="item-title">{swatch}<span class="rank">#{rank}</span>'
            f'<span class="item-id">{escape(item_id)}</span></span>'
            f'<span class="item-sub">{escape(subtitle) if subtitle else "&nbsp;"}</span>'
            f'<span class="item-stats"><span class="share">{escape(_percent(share))}</span>'
            f'<span>score {escape(_number(item.get("score")))}</span></span>'
            f'<span class="bar" aria-hidden="true"><span style="width: {width:.1f}%"></span></span></span>'
            "</button></li>"
        )
    if buttons:
        items_block = f"""<section class="items-block" aria-label="top training items of {escape(stem)}">
<h3>Top training items <span class="hint">(hover, focus or click one to see its maps; bars are relative to #1)</span></h3>
<ul class="items">{"".join(buttons)}</ul>
</section>"""
    else:
        items_block = '<section class="items-block"><h3>Top training items</h3><p>None were listed.</p></section>'

    if first is not None:
        subtitle, _ = _item_text(first)
        share = float(first.get("share", 0.0))
        detail_title = f"#1 · {first.get('id')}"
        detail_stats = f"score {_number(first.get('score'))} · share {_percent(share)}"
        query_slot = _slot(present("heatmap-1"), f"query map of {first.get('id')}", map_note("heatmap", 1))
        source_slot = _slot(present("source-1"), f"source map of {first.get('id')}", map_note("source", 1))
    else:
        subtitle, detail_title, detail_stats = "", "No training items", ""
        query_slot = source_slot = '<p class="missing">no maps</p>'
    detail = f"""<aside class="detail" id="{escape(_anchor(image))}-detail" aria-live="polite">
<h3>Selected training item</h3>
<div class="detail-title">{escape(detail_title)}</div>
<p class="detail-caption">{escape(subtitle)}</p>
<p class="detail-stats">{escape(detail_stats)}</p>
<div class="maps">
<figure class="map"><figcaption>In the output (query map)</figcaption><div class="frame" data-slot="query"{output_shape}>{query_slot}</div></figure>
<figure class="map"><figcaption>In the training item (source map)</figcaption><div class="frame" data-slot="source"{source_shape}>{source_slot}</div></figure>
</div>
</aside>"""

    levels = metadata.get("levels") or []
    level_rows = "".join(
        f"<tr><td>{escape(_number(level.get('step'), 6))}</td><td>{escape(_number(level.get('timestep'), 5))}</td>"
        f"<td>{escape(_number(level.get('alpha')))}</td><td>{escape(_number(level.get('sigma')))}</td></tr>"
        for level in levels
        if isinstance(level, dict)
    )
    note = f"<p>{escape(image.note)}</p>" if image.note else ""
    more = f"""<details class="details-more"><summary>Run details: {len(levels)} noise level{"s" if len(levels) != 1 else ""}, model, index fingerprint</summary>
{note}<p>Model {escape(metadata.get("model", "unknown"))} · scheduler {escape(metadata.get("scheduler", "unknown"))} · index {escape(_index_text(metadata.get("index") or {}))}</p>
<table><thead><tr><th>step</th><th>timestep</th><th>alpha</th><th>sigma</th></tr></thead><tbody>{level_rows}</tbody></table>
<pre>{escape(json.dumps({"config": config, "index": metadata.get("index")}, indent=1, default=str))}</pre>
</details>"""

    summary = []  # HTML fragments
    if first is not None:
        summary.append(escape(f"top source {first.get('id')} ({_percent(first.get('share'))})"))
    summary.append(escape(f"{len(top)} items listed"))
    if "total_score" in metadata:
        total = f"total score {_number(metadata['total_score'])} (= patches; shares are scores over it)"
        summary.append(f'<span title="{escape(SHARES)}">{escape(total)}</span>')
    card_picture = present("card")
    if card_picture:
        summary.append(f'<a href="{_url(card_picture)}">summary card</a>')
    pixelated = " px" if max(image.size) < _PIXELATED_BELOW else ""
    return f"""<article class="card{pixelated}" id="{escape(_anchor(image))}">
<header class="card-head"><h2><a href="{_url(image.path.name)}">{escape(image.path.name)}</a></h2>
<span class="meta">{" · ".join(summary)}</span></header>
{views}
{items_block}
{detail}
{more}
</article>"""


def _slot(name: str | None, alt: str, note: str) -> str:
    """The content of a detail-panel frame, as the page script writes it."""
    if name is None:
        return f'<p class="missing">{escape(note)}</p>'
    return f'<img src="{_url(name)}" alt="{escape(alt)}">'


def _skipped_section(skipped: list[SkippedFile]) -> str:
    rows = "".join(f"<li><code>{escape(item.path.name)}</code>: {escape(item.reason)}</li>" for item in skipped)
    return f"""<section class="skipped" id="skipped">
<h2>Skipped files</h2>
<p>These files in the folder could not be read as attributed images and are not shown above.</p>
<ul>{rows}</ul>
</section>"""
