"""``AttributionIndex``: the training set in the model's space, with ids and metadata."""

from __future__ import annotations

import bisect
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .build import build_index, collect
from .manifest import PARTIAL_SUFFIX, check_file, read_items, read_manifest
from .shardfile import open_shard
from .space import check_space

_DTYPE_NAMES = {np.dtype(np.float32): "float32", np.dtype(np.float16): "float16"}


class AttributionIndex:
    """The training set of a diffusion model, in the space its denoiser works in.

    Items are stored as blocks of ``[n, C, H, W]`` arrays: one in-memory block for an index made by
    :meth:`from_images`, one memory-mapped safetensors shard per block for an index opened with
    :meth:`load` (nothing is read until used). The index implements the engine's training-source
    protocol (``len``, ``item_shape``, ``iter_chunks``, ``gather``), so ``nda_scores(queries, index, ...)``
    streams over it.

    Build one with :meth:`from_images` (in memory) or :meth:`build` (streamed to disk, resumable);
    open a saved one with :meth:`load`.

    Attributes
    ----------
    ids:
        ``N`` unique, stable strings (relative paths for a folder, positions otherwise).
    metadata:
        ``N`` JSON-safe dicts (``source``, ``caption``, ``label``, dataset columns, your own fields).
    space:
        The space fingerprint (see :func:`~diffusers_attr.index.space.space_fingerprint`).
    path:
        The folder the index was loaded from, or ``None`` for an in-memory index.

    Example
    -------
    >>> import torch
    >>> index = AttributionIndex.from_images(torch.zeros(5, 3, 8, 8), progress=False)
    >>> len(index), index.item_shape, index.ids[:2]
    (5, (3, 8, 8), ['0', '1'])
    """

    def __init__(
        self,
        blocks: Sequence[np.ndarray],
        ids: list[str],
        metadata: list[dict],
        space: dict,
        *,
        path: Path | None = None,
    ):
        """Wrap item blocks; prefer :meth:`from_images`, :meth:`build` and :meth:`load`.

        Parameters
        ----------
        blocks:
            Arrays ``[n_b, C, H, W]`` (float32 or float16, all alike), items in order.
        ids, metadata:
            One unique string and one dict per item.
        space:
            The space fingerprint.
        path:
            The folder the blocks are mapped from, if any.
        """
        if not blocks or any(b.ndim != 4 or b.shape[1:] != blocks[0].shape[1:] for b in blocks):
            raise ValueError(f"blocks must be [n, C, H, W] arrays of one item shape; got {[b.shape for b in blocks]}")
        if any(b.dtype != blocks[0].dtype or b.dtype not in _DTYPE_NAMES for b in blocks):
            raise ValueError(f"blocks must all be float32 or all float16; got {[str(b.dtype) for b in blocks]}")
        sizes = [int(b.shape[0]) for b in blocks]
        total = sum(sizes)
        if len(ids) != total or len(metadata) != total:
            raise ValueError(f"{total} items but {len(ids)} ids and {len(metadata)} metadata dicts; pass one per item")
        if len(set(ids)) != total:
            raise ValueError("ids must be unique")
        self._blocks = list(blocks)
        self._starts = np.cumsum([0, *sizes]).tolist()
        self.ids = list(ids)
        self.metadata = list(metadata)
        self.space = space
        self.path = path

    def __len__(self) -> int:
        """Number of items N."""
        return self._starts[-1]

    @property
    def item_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one item."""
        return tuple(int(s) for s in self._blocks[0].shape[1:])  # type: ignore[return-value]

    @property
    def dtype(self) -> str:
        """Storage dtype name, ``"float32"`` or ``"float16"``; items are always returned as float32."""
        return _DTYPE_NAMES[self._blocks[0].dtype]

    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path is not None else ""
        return f"AttributionIndex(n={len(self)}, item_shape={self.item_shape}, kind={self.space.get('kind')!r}{where})"

    def _read(self, start: int, stop: int) -> torch.Tensor:
        """Items ``start:stop`` as a new float32 tensor (reads only the blocks they lie in)."""
        pieces = []
        block = bisect.bisect_right(self._starts, start) - 1
        while start < stop:
            offset = start - self._starts[block]
            take = min(stop, self._starts[block + 1]) - start
            pieces.append(self._blocks[block][offset : offset + take])
            start += take
            block += 1
        array = np.concatenate(pieces) if len(pieces) > 1 else np.array(pieces[0])
        return torch.from_numpy(array.astype(np.float32, copy=False))

    def __getitem__(self, key: int | slice) -> torch.Tensor:
        """One item ``[C, H, W]`` (int key) or consecutive items ``[n, C, H, W]`` (slice, step 1), as float32."""
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step != 1:
                raise IndexError(f"slices of an AttributionIndex must be contiguous (step 1); got step {step}")
            if start >= stop:
                return torch.empty((0, *self.item_shape))
            return self._read(start, stop)
        position = int(key)
        if not -len(self) <= position < len(self):
            raise IndexError(f"item {key} is out of range for an index of {len(self)} items")
        position %= len(self)
        return self._read(position, position + 1)[0]

    def gather(self, indices: Sequence[int]) -> torch.Tensor:
        """The items at ``indices`` (any order, repeats allowed) as one float32 ``[len(indices), C, H, W]`` tensor.

        Parameters
        ----------
        indices:
            Item positions; negative ones count from the end.

        Returns
        -------
        A new tensor; only the requested items are read from disk.
        """
        positions = np.asarray(indices, dtype=np.int64).reshape(-1)
        if positions.size and not (-len(self) <= positions.min() and positions.max() < len(self)):
            raise IndexError(f"indices must lie in [-{len(self)}, {len(self)}); got {indices}")
        positions %= len(self)
        out = np.empty((positions.size, *self.item_shape), dtype=np.float32)
        blocks = np.searchsorted(self._starts, positions, side="right") - 1
        for block in np.unique(blocks):
            rows = blocks == block
            out[rows] = self._blocks[block][positions[rows] - self._starts[block]]
        return torch.from_numpy(out)

    def iter_chunks(self, chunk_size: int) -> Iterator[torch.Tensor]:
        """Yield consecutive float32 ``[n, C, H, W]`` tensors (``n == chunk_size`` but maybe the last).

        Parameters
        ----------
        chunk_size:
            Items per chunk; chunks may span shards.

        Returns
        -------
        An iterator over new tensors (changing them does not change the index).
        """
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size={chunk_size!r} must be a positive integer")
        for start in range(0, len(self), chunk_size):
            yield self._read(start, min(start + chunk_size, len(self)))

    @classmethod
    def from_images(
        cls,
        images: Any,
        ids: Sequence[str] | None = None,
        metadata: Sequence[dict] | None = None,
        encoder: Any = None,
        *,
        resolution: int | None = None,
        channels: int | None = None,
        batch_size: int = 16,
        strict: bool = False,
        progress: bool = True,
        space: dict | None = None,
    ) -> AttributionIndex:
        """Bring a training set into the model's space, in memory.

        Parameters
        ----------
        images:
            A tensor ``[N, C, H, W]`` already in the model's space (used as is); a folder path
            (recursive, sorted; ids are relative paths, labels the class subfolder, captions from
            ``<stem>.txt``); a ``datasets.Dataset`` with an image column (other columns become
            metadata); or an iterable of PIL images or of dicts ``{"image": PIL image, **metadata}``.
        ids:
            One unique string per item (for a folder: per image file, in sorted order; unreadable files
            drop theirs); default: relative paths (folders) or ``"0"``, ``"1"``, ...
        metadata:
            One dict per item, merged over what the source provides.
        encoder:
            For latent models, the pipeline (``encoder=pipe``: its declared autoencoder, scaled as the
            pipeline scales it) or its autoencoder (``pipe.vae``, ``pipe.movq``, ``pipe.vqvae``,
            ``pipe.vqgan``); see :mod:`diffusers_attr.autoencoders` for the supported families. Items
            become the latents the denoiser works on (e.g. ``latent_dist.mean * scaling_factor``).
            ``None`` for pixel models.
        resolution:
            Resize the shorter side to this and centre-crop, as diffusers' training scripts do.
            Without it all images must have the first one's size.
        channels:
            3 (RGB) or 1 (grayscale); default the encoder's ``in_channels``, else 3.
        batch_size:
            Images per encoder call.
        strict:
            Raise on unreadable files in a folder instead of skipping them with a warning.
        progress:
            Show a progress bar.
        space:
            Only for tensors: the fingerprint of their space (e.g. ``space_fingerprint(shape, encoder=pipe)``
            for precomputed latents); default a pixel-space fingerprint.

        Returns
        -------
        An in-memory :class:`AttributionIndex`.
        """
        items, ids, metadata, space = collect(
            images, ids, metadata, encoder, resolution=resolution, channels=channels, batch_size=batch_size,
            strict=strict, progress=progress, space=space,
        )
        return cls([items.numpy()], ids, metadata, space)

    @classmethod
    def build(
        cls,
        path: str | Path,
        images: Any,
        ids: Sequence[str] | None = None,
        metadata: Sequence[dict] | None = None,
        encoder: Any = None,
        *,
        resolution: int | None = None,
        channels: int | None = None,
        dtype: str | torch.dtype = "float32",
        shard_size: int | None = None,
        batch_size: int = 16,
        resume: bool = True,
        overwrite: bool = False,
        strict: bool = False,
        progress: bool = True,
        space: dict | None = None,
    ) -> AttributionIndex:
        """Stream a training set into an index folder, shard by shard; resumable and atomic.

        Shards are written into ``<path>.partial`` as they fill; ``path`` appears only when the build
        is complete. Run the same call again after an interruption and it continues after the last
        finished shard (checking that the images and settings are unchanged).

        Parameters
        ----------
        path:
            The index folder to create.
        images, ids, metadata, encoder, resolution, channels, batch_size, strict, progress, space:
            As in :meth:`from_images`.
        dtype:
            Storage dtype, ``"float32"`` or ``"float16"`` (half the disk; items are read back as float32).
        shard_size:
            Items per shard; default as many as fit in 256 MiB.
        resume:
            Continue an unfinished build of the same training set; ``False`` starts over.
        overwrite:
            Replace an existing index at ``path`` (only once the new one is complete).

        Returns
        -------
        The finished index, memory-mapped from ``path``.

        Example
        -------
        >>> import tempfile, torch
        >>> folder = tempfile.mkdtemp()
        >>> index = AttributionIndex.build(f"{folder}/index", torch.zeros(4, 3, 8, 8), progress=False)
        >>> AttributionIndex.load(f"{folder}/index").ids
        ['0', '1', '2', '3']
        """
        build_index(
            path, images, ids, metadata, encoder, resolution=resolution, channels=channels, dtype=dtype,
            shard_size=shard_size, batch_size=batch_size, resume=resume, overwrite=overwrite, strict=strict,
            progress=progress, space=space,
        )
        return cls.load(path, verify=False)

    def save(
        self,
        path: str | Path,
        *,
        dtype: str | torch.dtype | None = None,
        shard_size: int | None = None,
        overwrite: bool = False,
    ) -> None:
        """Write the index to a folder (safetensors shards + ``index.json``), atomically.

        Parameters
        ----------
        path:
            The folder to create.
        dtype:
            Storage dtype, ``"float32"`` or ``"float16"``; default the index's own.
        shard_size:
            Items per shard; default as many as fit in 256 MiB.
        overwrite:
            Replace an existing index at ``path``.
        """
        try:
            build_index(
                path, self, dtype=dtype or self.dtype, shard_size=shard_size, resume=False, overwrite=overwrite,
                progress=False, space=self.space,
            )
        except BaseException:
            shutil.rmtree(Path(path).with_name(Path(path).name + PARTIAL_SUFFIX), ignore_errors=True)
            raise

    @classmethod
    def load(cls, path: str | Path, *, verify: bool = True, expected_space: dict | None = None) -> AttributionIndex:
        """Open a saved index, memory-mapped.

        Parameters
        ----------
        path:
            The index folder.
        verify:
            Check every shard's SHA-256 (reads all of it once). Sizes are always checked.
        expected_space:
            The fingerprint of the pipeline's space; raise :class:`SpaceMismatchError` when the index's differs.

        Returns
        -------
        The index; items are read from disk only when used.
        """
        folder = Path(path)
        manifest = read_manifest(folder)
        if expected_space is not None:
            check_space(expected_space, manifest["space"])
        ids, metadata = read_items(folder, manifest["items"], manifest["num_items"])
        item_shape = tuple(manifest["item_shape"])
        blocks = []
        for entry in manifest["shards"]:
            shard = check_file(folder, entry, hash_contents=verify)
            blocks.append(open_shard(shard, manifest["dtype"], entry["num_items"], item_shape))
        return cls(blocks, ids, metadata, manifest["space"], path=folder)

    def verify(self) -> None:
        """Check that the files behind a loaded index are intact (sizes and SHA-256 of every file).

        An in-memory index has no files; there is nothing to check.

        Raises
        ------
        IndexFormatError
            Naming the file that is missing, truncated or corrupted.
        """
        if self.path is None:
            return
        manifest = read_manifest(self.path)
        read_items(self.path, manifest["items"], manifest["num_items"])
        for entry in manifest["shards"]:
            check_file(self.path, entry, hash_contents=True)
