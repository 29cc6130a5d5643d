"""The homology stage over MPI: frames of one batch spread over ranks, one output file per batch.

Frames are handed out dynamically (an atomic counter in an MPI window, largest frames first), so
ranks stay busy when costs differ; results are gathered on rank 0, put in input order and written
atomically. The output is identical for any number of ranks. A failing frame aborts the whole job
(MPI_Abort) with a message naming it, and nothing is written.
"""

from __future__ import annotations

import logging
import sys
import time

import numpy as np

from . import __version__, homology
from .frames import frame_metadata, read_spec
from .store import write_diagrams

log = logging.getLogger(__name__)


def _comm():
    try:
        from mpi4py import MPI
    except ImportError:  # pragma: no cover - mpi4py is a dependency, but keep serial use possible
        return None, None
    return MPI, MPI.COMM_WORLD


class _Counter:
    """A shared task counter (MPI-3 one-sided fetch-and-add on rank 0)."""

    def __init__(self, MPI, comm):
        self.MPI = MPI
        itemsize = MPI.INT64_T.Get_size()
        self.win = MPI.Win.Allocate(itemsize if comm.rank == 0 else 0, itemsize, comm=comm)
        if comm.rank == 0:
            self.win.Lock(0)
            self.win.Put(np.zeros(1, dtype=np.int64), 0)
            self.win.Unlock(0)
        comm.Barrier()

    def next(self) -> int:
        one, out = np.ones(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
        self.win.Lock(0, self.MPI.LOCK_SHARED)
        self.win.Fetch_and_op(one, out, 0, 0, self.MPI.SUM)
        self.win.Unlock(0)
        return int(out[0])

    def free(self):
        self.win.Free()


def run(specs: list[str], output: str, backend: str = "alpha", maxdim: int = 2, precision: str = "safe",
        provenance: dict | None = None) -> int:
    MPI, comm = _comm()
    rank, size = (comm.rank, comm.size) if comm is not None else (0, 1)
    t0 = time.perf_counter()
    try:
        frames = [f for spec in specs for f in read_spec(spec)]
    except Exception as exc:
        return _fail(comm, rank, f"{exc}")
    order = sorted(range(len(frames)), key=lambda i: -len(frames[i].atoms))  # largest first
    if rank == 0:
        log.info("homology %s maxdim=%d: %d frames from %d inputs on %d rank(s)", backend, maxdim, len(frames),
                 len(specs), size)

    local: dict[int, dict] = {}
    counter = _Counter(MPI, comm) if size > 1 else None
    k = counter.next() if counter else 0
    while k < len(order):
        i = order[k]
        fr = frames[i]
        try:
            res = homology.compute(fr.atoms, backend=backend, maxdim=maxdim, precision=precision)
        except Exception as exc:
            return _fail(comm, rank, f"{fr.source}, frame {fr.index}: {exc}")
        rec = frame_metadata(fr)
        rec.update(replicas=res.replicas, diagrams=res.diagrams)
        local[i] = rec
        k = counter.next() if counter else k + 1
    cpu = time.perf_counter() - t0
    if counter:
        comm.Barrier()
        counter.free()
        gathered = comm.gather((local, cpu), root=0)
    else:
        gathered = [(local, cpu)]
    if rank == 0:
        records, cpus = {}, []
        for part, c in gathered:
            records.update(part)
            cpus.append(c)
        assert len(records) == len(frames), "a rank lost frames"
        ordered = [records[i] for i in range(len(frames))]
        prov = dict(provenance or {}, topoamorph=__version__)
        write_diagrams(output, ordered, backend, maxdim, homology.UNITS[backend], prov)
        log.info("wrote %s: %d frames, %.1f s, per-rank busy times %s; replicated frames: %d", output,
                 len(frames), time.perf_counter() - t0, [round(c, 1) for c in cpus],
                 sum(r["replicas"] > 1 for r in ordered))
    return 0


def _fail(comm, rank, message: str) -> int:
    print(f"topoamorph homology: error on rank {rank}: {message}", file=sys.stderr, flush=True)
    if comm is not None and comm.size > 1:
        comm.Abort(1)
    return 1
