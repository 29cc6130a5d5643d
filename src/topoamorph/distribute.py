"""The homology stage over MPI: frames of one batch spread over ranks, one output file per batch.

Rank 0 indexes the batch's files (``formats.frames.index_frames``: where each frame starts and how many
atoms it has, from the atom-count lines) and broadcasts the index; each rank then reads and parses only
the frames it computes. Frames are handed out dynamically, largest first, so ranks stay busy when costs
differ: rank 0 works too and, between its own frames, answers the other ranks' requests; each worker
keeps ``PREFETCH`` requests outstanding, so its next frame is already assigned when it finishes one (an
MPI-3 atomic counter was tried first: without an asynchronous progress thread MPICH stalls a rank's fetch
until the target rank re-enters MPI, which cost 30 % efficiency on 2 ranks). Results are gathered on
rank 0, put in input order and written atomically. The output is identical for any number of ranks. A
failing frame aborts the whole job (MPI_Abort) with a message naming it, and nothing is written.
"""

from __future__ import annotations

import logging
import sys
import time

from . import homology
from .errors import InputFileError
from .formats.diagrams import write_diagrams
from .formats.frames import checked_frame, frame_metadata, index_frames, parse_spec, read_atoms
from .importer import check_unchanged
from .io import read_json
from .mpi import comm_world
from .provenance import record
from .settings import HomologySettings

log = logging.getLogger(__name__)

REQUEST, ASSIGN = 11, 12
PREFETCH = 3  # requests a worker keeps outstanding
DONE = -1


class _Dispatcher:
    """Rank 0's side: hands out task numbers 0..n-1 in order, to itself and to requesting workers."""

    def __init__(self, MPI, comm, n_tasks: int):
        self.MPI, self.comm, self.n, self.next_task = MPI, comm, n_tasks, 0
        self.done_sent = {r: 0 for r in range(1, comm.size)}

    def _take(self) -> int:
        if self.next_task >= self.n:
            return DONE
        k, self.next_task = self.next_task, self.next_task + 1
        return k

    def _answer(self, source: int) -> None:
        self.comm.recv(source=source, tag=REQUEST)
        k = self._take()
        if k == DONE:
            self.done_sent[source] += 1
        self.comm.send(k, dest=source, tag=ASSIGN)

    def serve_pending(self) -> None:
        status = self.MPI.Status()
        while self.comm.Iprobe(source=self.MPI.ANY_SOURCE, tag=REQUEST, status=status):
            self._answer(status.Get_source())

    def own_task(self) -> int:
        self.serve_pending()
        return self._take()

    def finish(self) -> None:
        """Answer DONE until every worker has had one per request it can still have outstanding."""
        status = self.MPI.Status()
        while any(v < PREFETCH for v in self.done_sent.values()):
            self.comm.Probe(source=self.MPI.ANY_SOURCE, tag=REQUEST, status=status)
            self._answer(status.Get_source())


def _worker_tasks(comm):
    """A worker's task numbers, requested ahead so the next one is waiting when a frame is done."""
    for _ in range(PREFETCH):
        comm.send(None, dest=0, tag=REQUEST)
    while True:
        k = comm.recv(source=0, tag=ASSIGN)
        if k == DONE:
            for _ in range(PREFETCH - 1):  # drain the other outstanding answers
                comm.recv(source=0, tag=ASSIGN)
            return
        comm.send(None, dest=0, tag=REQUEST)
        yield k


def _plan(specs: list[str]) -> tuple[dict, list[tuple[str, int]], list[int]]:
    """The files' indexes, the batch's frames as (path, frame index) in input order, and their atom counts."""
    indexes, frames, natoms = {}, [], []
    for spec in specs:
        path, start, stop = parse_spec(spec)
        idx = indexes.setdefault(path, index_frames(path))
        stop = len(idx) if stop is None else stop
        if not 0 <= start < stop <= len(idx):
            raise InputFileError(path, f"expected frames {start}:{stop} but the file holds {len(idx)}")
        frames.extend((path, i) for i in range(start, stop))
        natoms.extend(idx.natoms[start:stop])
    return indexes, frames, natoms


def run(
    specs: list[str],
    output: str,
    settings: HomologySettings,
    energy_key: str | None = None,
    provenance: dict | None = None,
    require_energy: bool = True,
    manifest: str | None = None,
) -> int:
    """Diagrams of the frames of ``specs`` into ``output`` (``require_energy=False``: frames without an
    energy are accepted, their energy recorded as NaN; used to apply a model to unlabelled frames).
    ``manifest``: the import manifest; rank 0 checks the files against it before reading them and again
    before writing, so that a file replaced during the job is refused instead of mixed."""
    MPI, comm = comm_world()
    rank, size = (comm.rank, comm.size) if comm is not None else (0, 1)
    t0 = time.perf_counter()
    plan = None
    recorded = read_json(manifest) if (manifest and rank == 0) else None
    paths = sorted({parse_spec(s)[0] for s in specs})
    if rank == 0:
        try:
            if recorded is not None:
                check_unchanged(recorded, paths)
            plan = _plan(specs)
        except Exception as exc:  # noqa: BLE001 - every rank must hear of any failure, or the others wait forever
            return _fail(comm, rank, f"{exc}")
    if size > 1:
        plan = comm.bcast(plan, root=0)
    indexes, frames, natoms = plan
    order = sorted(range(len(frames)), key=lambda i: -natoms[i])  # largest first
    if rank == 0:
        from .alpha_fast import default_delaunay

        log.info(
            "homology %s maxdim=%d: %d frames from %d inputs on %d rank(s)%s",
            settings.backend,
            settings.maxdim,
            len(frames),
            len(specs),
            size,
            f", {settings.diagram} diagrams, Delaunay {default_delaunay()}" if settings.backend == "alpha" else "",
        )

    local: dict[int, dict] = {}
    if size == 1:
        tasks = iter(range(len(order)))
    elif rank == 0:
        dispatcher = _Dispatcher(MPI, comm, len(order))
        tasks = iter(dispatcher.own_task, DONE)
    else:
        tasks = _worker_tasks(comm)
    for k in tasks:
        i = order[k]
        path, index = frames[i]
        try:
            atoms = read_atoms(path, index, index + 1, index=indexes[path])[0]
            fr = checked_frame(atoms, path, index, require_energy=require_energy, energy_key=energy_key)
        except Exception as exc:  # noqa: BLE001 - reported to every rank (see above)
            return _fail(comm, rank, f"{exc}")
        try:
            res = homology.compute(fr.atoms, **settings.compute_options(), keep_simplices=settings.keep_simplices)
        except Exception as exc:  # noqa: BLE001 - reported to every rank, naming the frame
            return _fail(comm, rank, f"{fr.source}, frame {fr.index}: {exc}")
        rec = frame_metadata(fr, with_energy=require_energy)
        rec.update(replicas=res.replicas, diagrams=res.diagrams)
        if settings.keep_simplices:  # the pairs' simplices, and the cell their lattice images refer to
            rec.update(pairs=res.pairs, cell=fr.atoms.cell[:])
        local[i] = rec
    cpu = time.perf_counter() - t0
    if size > 1:
        if rank == 0:
            dispatcher.finish()
        gathered = comm.gather((local, cpu), root=0)
    else:
        gathered = [(local, cpu)]
    if rank == 0:
        records, cpus = {}, []
        for part, c in gathered:
            records.update(part)
            cpus.append(c)
        assert len(records) == len(frames), "a rank lost frames"
        if recorded is not None:
            try:
                check_unchanged(recorded, paths)
            except InputFileError as exc:
                return _fail(comm, rank, f"{exc}")
        ordered = [records[i] for i in range(len(frames))]
        backend = settings.backend
        prov = dict(
            record(),
            **(provenance or {}),
            backend=backend,
            maxdim=settings.maxdim,
            **(
                {"rips_threshold_angstrom": settings.rips_threshold}
                if backend == "rips"
                else {"diagram": settings.diagram}
            ),
            **({"keep_simplices": True} if settings.keep_simplices else {}),
        )
        write_diagrams(output, ordered, backend, settings.maxdim, homology.UNITS[backend], prov)
        log.info(
            "wrote %s: %d frames, %.2f s, per-rank busy times %s, frames per rank %s; replicated frames: %d",
            output,
            len(frames),
            time.perf_counter() - t0,
            [round(c, 2) for c in cpus],
            [len(part) for part, _ in gathered],
            sum(r["replicas"] > 1 for r in ordered),
        )
    return 0


def _fail(comm, rank, message: str) -> int:
    print(f"topoamorph homology: error on rank {rank}: {message}", file=sys.stderr, flush=True)
    if comm is not None and comm.size > 1:
        comm.Abort(1)
    return 1
