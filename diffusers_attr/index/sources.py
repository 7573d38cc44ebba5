"""Everything ``from_images`` / ``build`` accept, turned into one stream of :class:`Record`.

Accepted training sets:

* a tensor ``[N, C, H, W]`` already in the model's space (used as is), or an ``AttributionIndex``;
* a folder (``str`` / ``Path``): image files found recursively, sorted by relative path; the id is the
  relative POSIX path, the label the parent folder's name when every image sits in a subfolder, the
  caption the text of a sibling ``<stem>.txt``; hidden files and folders (``.name``) are ignored;
* a ``datasets.Dataset`` (or ``IterableDataset``) with an image column; other columns become metadata;
* any iterable of PIL images, or of dicts ``{"image": PIL image, **metadata}``;
* the name ``"sklearn-digits"`` (unless a folder of that name exists): the 1000 training digits of
  the embedded demo model, with labels, source and licence.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from .images import image_extensions, load_image
from .space import json_safe

_UNREADABLE = (OSError, SyntaxError, ValueError)
"""What PIL raises for files that are not readable images."""

DIGITS = "sklearn-digits"
"""The name of the embedded demo model's training set (``diffusers_attr.training.digits``)."""


@dataclass
class Record:
    """One training item on its way into the index.

    Attributes
    ----------
    position:
        Position in the source (``ids`` / ``metadata`` given by the user are matched by it).
    id:
        The item's id.
    metadata:
        JSON-safe metadata.
    image:
        A PIL image, or a ``[C, H, W]`` tensor already in the model's space.
    """

    position: int
    id: str
    metadata: dict
    image: Image.Image | torch.Tensor


@dataclass
class ItemSource:
    """A training set ready to stream.

    Attributes
    ----------
    description:
        JSON-safe kind of source (and folder path), compared when a build resumes; the items themselves
        are checked by :class:`~diffusers_attr.index.writer.ResumeCheck`.
    length:
        Number of positions when known up front, else ``None``.
    in_model_space:
        ``True`` when items are tensors used as is (no normalisation, no encoding).
    """

    description: dict
    length: int | None
    in_model_space: bool
    _raw: Iterable[tuple[int, str, dict, Any]]
    _ids: list[str] | None
    _metadata: list[dict] | None
    _skipped: list[str]
    _strict: bool

    def records(self) -> Iterator[Record]:
        """Yield the records in order; when exhausted, warn once about every file that was skipped."""
        count = 0
        for position, default_id, auto_metadata, image in self._raw:
            count = position + 1
            if isinstance(image, Path):
                try:
                    image = load_image(image)
                except _UNREADABLE as err:
                    if self._strict:
                        raise ValueError(
                            f"{default_id} is not a readable image ({err}); remove it or pass strict=False"
                        ) from err
                    self._skipped.append(default_id)
                    continue
            item_id = default_id if self._ids is None else _at(self._ids, position, "ids")
            metadata = dict(auto_metadata)
            if self._metadata is not None:
                metadata.update(_at(self._metadata, position, "metadata"))
            metadata = json_safe(metadata, where=f"metadata of item {item_id!r}")
            yield Record(position, item_id, metadata, image)
        for name, given in (("ids", self._ids), ("metadata", self._metadata)):
            if given is not None and len(given) != count:
                raise ValueError(
                    f"{name} has {len(given)} entries but the training set has {count} images; pass one per image"
                )
        if self._skipped:
            warnings.warn(
                f"skipped {len(self._skipped)} file(s) that are not readable images: {', '.join(self._skipped)}",
                stacklevel=2,
            )


def _at(values: list, position: int, name: str) -> Any:
    """``values[position]``, or a clear error when the training set has more items than ``values``."""
    if position >= len(values):
        raise ValueError(f"{name} has {len(values)} entries but the training set has more images; pass one per image")
    return values[position]


def _check_ids(ids: Any, length: int | None) -> list[str] | None:
    """Validate user ids: a list of unique strings, one per item when the length is known."""
    if ids is None:
        return None
    ids = list(ids)
    bad = [i for i, item_id in enumerate(ids) if not isinstance(item_id, str)]
    if bad:
        raise TypeError(f"ids must be strings; ids[{bad[0]}] is {type(ids[bad[0]]).__name__} {ids[bad[0]]!r}")
    if length is not None and len(ids) != length:
        raise ValueError(f"ids has {len(ids)} entries but the training set has {length} items; pass one id per item")
    seen: set[str] = set()
    duplicates = sorted({i for i in ids if i in seen or seen.add(i)})
    if duplicates:
        raise ValueError(f"ids must be unique; repeated: {duplicates[:10]}")
    return ids


def _check_metadata(metadata: Any, length: int | None) -> list[dict] | None:
    """Validate user metadata: a list of dicts, one per item when the length is known."""
    if metadata is None:
        return None
    metadata = list(metadata)
    bad = [i for i, meta in enumerate(metadata) if not isinstance(meta, dict)]
    if bad:
        raise TypeError(f"metadata must be a list of dicts; metadata[{bad[0]}] is {type(metadata[bad[0]]).__name__}")
    if length is not None and len(metadata) != length:
        raise ValueError(
            f"metadata has {len(metadata)} entries but the training set has {length} items; pass one dict per item"
        )
    return metadata


def _scan_folder(root: Path, strict: bool) -> tuple[list[Path], list[str]]:
    """Image files under ``root`` (sorted by relative path) and the other files, by relative path."""
    if not root.exists():
        raise FileNotFoundError(f"training folder {root} does not exist; check the path")
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is a file; pass the folder that holds the training images")
    extensions = image_extensions()
    files = {}
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            files[relative.as_posix()] = path
    images = {name: path for name, path in files.items() if path.suffix.lower() in extensions}
    stems = {path.with_suffix("") for path in images.values()}
    others = sorted(
        name for name, path in files.items()
        if name not in images and not (path.suffix.lower() == ".txt" and path.with_suffix("") in stems)
    )
    if not images:
        found = f"; it holds only: {', '.join(others[:20])}" if others else " (it is empty)"
        raise ValueError(f"no image files in training folder {root}{found}. Point to the folder with the images")
    if others and strict:
        raise ValueError(f"files that are not images in {root}: {', '.join(others)}; remove them or pass strict=False")
    return [images[name] for name in sorted(images)], others


def _folder_source(root: Path, strict: bool) -> tuple[Iterable, int, list[str]]:
    """Raw records of a folder: ``(position, relative path, {source, caption, label}, Path)``."""
    paths, others = _scan_folder(root, strict)
    labelled = all(len(path.relative_to(root).parts) > 1 for path in paths)

    def raw() -> Iterator[tuple[int, str, dict, Path]]:
        for position, path in enumerate(paths):
            relative = path.relative_to(root).as_posix()  # never the absolute path: it would leak into every result
            metadata: dict[str, Any] = {"source": relative}
            caption = path.with_suffix(".txt")
            if caption.is_file():
                metadata["caption"] = caption.read_text(encoding="utf-8").strip()
            if labelled:
                metadata["label"] = path.parent.name
            yield position, relative, metadata, path

    return raw(), len(paths), list(others)


def _dataset_source(dataset: Any) -> Iterable:
    """Raw records of a ``datasets`` dataset: the image column, other columns as metadata."""
    features = dataset.features or {}
    image_columns = [name for name, feature in features.items() if type(feature).__name__ == "Image"]
    if len(image_columns) > 1 and "image" in image_columns:
        image_columns = ["image"]
    if len(image_columns) != 1:
        raise ValueError(
            f"the dataset needs exactly one image column (datasets.Image feature); columns are {list(features)}. "
            f"Cast the image column with dataset.cast_column(name, datasets.Image()) or drop the extra ones"
        )
    column = image_columns[0]
    class_labels = {name: f for name, f in features.items() if type(f).__name__ == "ClassLabel"}

    def raw() -> Iterator[tuple[int, str, dict, Any]]:
        for position, row in enumerate(dataset):
            metadata = {
                name: class_labels[name].int2str(value) if name in class_labels and value is not None else value
                for name, value in row.items() if name != column
            }
            yield position, str(position), metadata, _pil(row[column], f"dataset row {position}, column {column!r}")

    return raw()


def _iterable_source(images: Iterable) -> Iterable:
    """Raw records of an iterable of PIL images or of dicts ``{"image": PIL, **metadata}``."""
    for position, item in enumerate(images):
        if isinstance(item, dict):
            if "image" not in item:
                raise ValueError(f"images[{position}] is a dict without an 'image' key; keys are {list(item)}")
            metadata = {k: v for k, v in item.items() if k != "image"}
            yield position, str(position), metadata, _pil(item["image"], f"images[{position}]['image']")
        else:
            yield position, str(position), {}, _pil(item, f"images[{position}]")


def _pil(image: Any, where: str) -> Image.Image:
    """``image`` if it is a PIL image, else a clear error."""
    if not isinstance(image, Image.Image):
        raise TypeError(
            f"{where} is a {type(image).__name__}; expected a PIL image (pass a folder path for files on disk, "
            f"or a tensor [N, C, H, W] already in the model's space)"
        )
    return image


def _tensor_source(items: torch.Tensor) -> Iterable:
    """Raw records of a tensor ``[N, C, H, W]`` already in the model's space."""
    if items.dim() != 4 or not items.is_floating_point():
        raise ValueError(
            f"a tensor training set must be float [N, C, H, W] in the model's space (pixels in [-1, 1], or "
            f"scaled VAE latents); got {items.dtype} of shape {tuple(items.shape)}"
        )
    items = items.detach().to("cpu")
    return ((n, str(n), {}, items[n]) for n in range(items.shape[0]))


def _index_source(index: Any) -> Iterator[tuple[int, str, dict, torch.Tensor]]:
    """Raw records of an ``AttributionIndex`` (read chunk by chunk)."""
    position = 0
    for chunk in index.iter_chunks(256):
        for item in chunk:
            yield position, index.ids[position], index.metadata[position], item
            position += 1


def open_source(images: Any, ids: Any = None, metadata: Any = None, *, strict: bool = False) -> ItemSource:
    """Recognise a training set and prepare it for streaming.

    Parameters
    ----------
    images:
        See the module docstring for what is accepted.
    ids:
        One unique string per item, or ``None`` for defaults (relative paths for folders, positions
        ``"0"``, ``"1"``, ... otherwise).
    metadata:
        One dict per item, merged over the metadata found in the source, or ``None``.
    strict:
        Raise instead of warning about files in a folder that are not readable images.

    Returns
    -------
    An :class:`ItemSource`.
    """
    skipped: list[str] = []
    in_model_space = False
    if isinstance(images, str) and images == DIGITS and not Path(images).exists():
        from ..training.digits import digits_training_set

        images, digit_ids, digit_metadata = digits_training_set()
        ids = digit_ids if ids is None else ids
        given = _check_metadata(metadata, len(digit_ids))
        metadata = digit_metadata if given is None else [found | mine for found, mine in zip(digit_metadata, given)]
    if isinstance(images, (str, Path)):
        root = Path(images)
        raw, length, skipped = _folder_source(root, strict)
        description = {"kind": "folder", "path": root.resolve().as_posix()}
    elif isinstance(images, torch.Tensor):
        raw, length, in_model_space = _tensor_source(images), images.shape[0], True
        description = {"kind": "tensor"}
    elif hasattr(images, "iter_chunks") and hasattr(images, "ids"):
        raw, length, in_model_space = _index_source(images), len(images), True
        description = {"kind": "index"}
    elif hasattr(images, "features") and hasattr(images, "column_names"):
        length = len(images) if hasattr(images, "__len__") else None
        raw = _dataset_source(images)
        description = {"kind": "dataset", "columns": list(images.column_names or [])}
    elif isinstance(images, Iterable):
        length = len(images) if hasattr(images, "__len__") else None
        raw = _iterable_source(images)
        description = {"kind": "images"}
    else:
        raise TypeError(
            f"images must be a tensor [N, C, H, W], a folder path, a datasets.Dataset or an iterable of PIL "
            f"images; got {type(images).__name__}"
        )
    if length == 0:
        raise ValueError("the training set is empty; pass at least one image")
    return ItemSource(
        description, length, in_model_space, raw,
        _check_ids(ids, length), _check_metadata(metadata, length), skipped, strict,
    )
