"""The dataset: descriptors X (n_frames, channels, bins, bins), targets y (eV/atom) and per-frame metadata
(source file, frame index, n_atoms, replicas, energy, density, stage, run, info) in one HDF5 file
(format ``topoamorph-dataset/1``), read lazily: ``Dataset(path).rows(idx)`` reads only the rows asked for.
"""

from __future__ import annotations

import json

import h5py
import numpy as np

from .. import __version__
from ..errors import InputFileError
from ..io import atomic_path, check_hdf5_format, decode_strings

FORMAT = "topoamorph-dataset/1"


#: rows per HDF5 chunk of X: about this many bytes uncompressed, so that reading a block of consecutive rows
#: (the CNN's and the ridge Gram's access pattern) decompresses little beyond what is asked for
CHUNK_BYTES = 2**21


def _rows_per_chunk(row_shape) -> int:
    """Rows of X per HDF5 chunk for one row of ``row_shape`` (float32)."""
    return max(1, CHUNK_BYTES // (4 * int(np.prod(row_shape))))


class DatasetWriter:
    """Writes a dataset block by block, so that no stage holds every descriptor at once:
    ``with DatasetWriter(path, n, row_shape) as w: w.write(block)...; w.finish(y, meta, attrs, provenance)``.
    The file appears (atomically) only when ``finish`` was called and every row was written."""

    def __init__(self, path, n_rows: int, row_shape):
        self.path, self.n, self.row_shape, self.done = path, int(n_rows), tuple(int(s) for s in row_shape), 0

    def __enter__(self):
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        self._h = h5py.File(tmp, "w")
        rows = min(max(self.n, 1), _rows_per_chunk(self.row_shape))
        self._X = self._h.create_dataset(
            "X",
            shape=(self.n,) + self.row_shape,
            dtype=np.float32,
            chunks=(rows,) + self.row_shape,
            compression="gzip",
            shuffle=True,
        )
        self._finished = False
        return self

    def write(self, block: np.ndarray) -> None:
        block = np.asarray(block)
        if block.shape[1:] != self.row_shape or self.done + len(block) > self.n:
            raise ValueError(
                f"dataset block of shape {block.shape} does not fit rows {self.done}.. of {(self.n,) + self.row_shape}"
            )
        self._X[self.done : self.done + len(block)] = block.astype(np.float32)
        self.done += len(block)

    def finish(self, y: np.ndarray, meta: dict, attrs: dict, provenance: dict | None = None) -> None:
        """``meta``: {column: array of one value per frame}; ``attrs``: the descriptor's settings and units."""
        if self.done != self.n or len(y) != self.n:
            raise ValueError(f"dataset has {self.done} rows written and {len(y)} targets for {self.n} rows")
        h = self._h
        h.attrs.update(
            format=FORMAT, version=__version__, **attrs, provenance=json.dumps(provenance or {}, sort_keys=True)
        )
        h.create_dataset("y", data=y)
        m = h.create_group("meta")
        for k, v in meta.items():
            if v.dtype == object:
                m.create_dataset(k, data=list(v), dtype=h5py.string_dtype())
            else:
                m.create_dataset(k, data=v)
        self._finished = True

    def __exit__(self, exc_type, exc, tb):
        self._h.close()
        if exc is None and not self._finished:
            exc = RuntimeError(f"{self.path}: dataset closed before every row and target was written")
            self._atomic.__exit__(RuntimeError, exc, None)  # removes the temporary file
            raise exc
        self._atomic.__exit__(exc_type, exc, tb)
        return False


def write_dataset(path, X: np.ndarray, y: np.ndarray, meta: dict, attrs: dict, provenance: dict | None = None) -> None:
    """A whole dataset at once (``DatasetWriter`` with one block)."""
    with DatasetWriter(path, len(X), np.shape(X)[1:]) as w:
        w.write(X)
        w.finish(y, meta, attrs, provenance)


class _RowBlocks:
    """Reading rows of X block by block (``_read(lo, hi)`` gives rows lo..hi-1): shared by the
    dataset file and an array in memory, so that models stream either the same way."""

    chunk_rows = 1

    def blocks(self, idx, max_rows: int = 1024):
        """Yield (positions into ``idx``, rows) for the rows ``idx`` in file order, each block spanning at most
        ``max_rows`` consecutive rows of X: memory holds one block, whatever the number of rows."""
        idx = np.asarray(idx, dtype=np.int64)
        order = np.argsort(idx, kind="stable")
        ordered = idx[order]
        start = 0
        while start < len(ordered):
            lo = ordered[start]
            stop = int(np.searchsorted(ordered, lo + max(1, int(max_rows)), side="left"))
            hi = int(ordered[stop - 1]) + 1
            yield order[start:stop], self._read(int(lo), hi)[ordered[start:stop] - lo]
            start = stop

    def shuffled_batches(
        self, idx, batch_size: int, rng: np.random.Generator, buffer_rows: int = 2048, cache: dict | None = None
    ):
        """Yield (rows, X rows) minibatches of ``idx`` in a random order that reads whole HDF5 chunks: chunks
        in random order fill a buffer of about ``buffer_rows`` rows, shuffled within (a shuffle buffer, as
        streaming data loaders do). An array in memory (one row per chunk, one buffer) gives a full permutation.
        ``cache``: a dict kept by the caller across epochs that holds the rows read, per chunk (for a training
        set no larger than the buffer, which then is read and decompressed once, not once per epoch); the
        batches are the same with or without it."""
        idx = np.sort(np.asarray(idx, dtype=np.int64))
        chunks = np.unique(idx // self.chunk_rows)
        members = np.split(idx, np.searchsorted(idx, chunks[1:] * self.chunk_rows))
        carry_rows, carry_X = np.zeros(0, np.int64), None
        order = rng.permutation(len(chunks))
        k = 0
        while k < len(order):
            take, n = [], len(carry_rows)
            while k < len(order) and (n < buffer_rows or not take):
                take.append(members[order[k]])
                n += len(members[order[k]])
                k += 1
            rows = np.concatenate(take)
            X = np.concatenate([self._members(r, cache) for r in take])
            if len(carry_rows):
                rows, X = np.concatenate([carry_rows, rows]), np.concatenate([carry_X, X])
            perm = rng.permutation(len(rows))
            rows, X = rows[perm], X[perm]
            full = len(rows) - len(rows) % batch_size if k < len(order) else len(rows)
            for b in range(0, full, batch_size):
                yield rows[b : b + batch_size], X[b : b + batch_size]
            carry_rows, carry_X = rows[full:], X[full:]

    def _members(self, r: np.ndarray, cache: dict | None) -> np.ndarray:
        """Rows ``r`` (sorted, all in one chunk), read from the file or from ``cache``."""
        if cache is not None and int(r[0]) in cache:
            return cache[int(r[0])]
        X = self._read(int(r[0]), int(r[-1]) + 1)[r - r[0]]
        if cache is not None:
            cache[int(r[0])] = X
        return X


class ArrayRows(_RowBlocks):
    """An array of descriptors in memory, read like a dataset file."""

    def __init__(self, X):
        self.X = np.asarray(X)

    def __len__(self):
        return len(self.X)

    def _read(self, lo: int, hi: int) -> np.ndarray:
        return self.X[lo:hi]

    def rows(self, idx) -> np.ndarray:
        return self.X[np.asarray(idx, dtype=np.int64)]


def row_source(X):
    """A dataset file or an array, as something read block by block (``blocks``, ``shuffled_batches``)."""
    return X if isinstance(X, _RowBlocks) else ArrayRows(X)


class Dataset(_RowBlocks):
    """Lazy view of a dataset file: ``rows(idx)`` reads only the rows asked for; ``blocks`` and
    ``shuffled_batches`` stream them."""

    def __init__(self, path):
        self.path = str(path)
        try:
            self._h = h5py.File(self.path, "r")
            check_hdf5_format(self._h, path, FORMAT, "dataset")
            self.X = self._h["X"]
            self.y = self._h["y"][()]
            self.attrs = dict(self._h.attrs)
            self.meta = {}
            for k in self._h["meta"]:
                v = self._h["meta"][k][()]
                self.meta[k] = decode_strings(v) if v.dtype == object else v
        except InputFileError:
            self.close()
            raise
        except (OSError, KeyError) as exc:
            self.close()
            raise InputFileError(path, f"unreadable dataset file ({type(exc).__name__}: {exc})") from None
        if len(self.y) != self.X.shape[0]:
            raise InputFileError(path, "X and y have different lengths (truncated or corrupt)")

    def __len__(self):
        return len(self.y)

    @property
    def chunk_rows(self) -> int:
        return int(self.X.chunks[0]) if self.X.chunks else max(1, len(self))

    def _read(self, lo: int, hi: int) -> np.ndarray:
        return self.X[lo:hi]

    def rows(self, idx) -> np.ndarray:
        unique, inverse = np.unique(np.asarray(idx, dtype=np.int64), return_inverse=True)
        return self.X[unique][inverse] if len(unique) else np.zeros((0,) + self.X.shape[1:], np.float32)

    def close(self):
        h = getattr(self, "_h", None)
        if h is not None:
            h.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
