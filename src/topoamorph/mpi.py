"""MPI, in one place: the communicator of an MD job (GPAW's when GPAW runs), the homology job's
communicator (mpi4py), and this process's rank as the launcher announced it.

Test ``_gpaw``, never ``gpaw``: with GPAW installed, ASE's I/O plugin discovery imports the ``gpaw``
package in every process. Taking that as "GPAW runs here" loaded ``_gpaw`` (linked to OpenMPI) into
LAMMPS processes (MPICH loaded globally), and OpenMPI's C++ bindings then called MPICH's
MPI_Comm_test_inter at load time: an abort in about one run in six, depending on load addresses.
"""

from __future__ import annotations

import os
import sys


def world():
    """The MPI communicator MD runs under (rank 0 writes files): GPAW's once GPAW's C extension is loaded
    (by a GPAW calculator), else a serial stand-in."""
    if "_gpaw" in sys.modules:
        from gpaw.mpi import world as w

        return w
    from ase.parallel import DummyMPI

    return DummyMPI()


def is_root() -> bool:
    return world().rank == 0


def comm_world():
    """(the mpi4py module, COMM_WORLD) of a homology job, or (None, None) where mpi4py is missing."""
    try:
        from mpi4py import MPI
    except ImportError:  # pragma: no cover - mpi4py is a dependency, but keep serial use possible
        return None, None
    return MPI, MPI.COMM_WORLD


def launcher_size() -> int:
    """The number of ranks the launcher started (1 when not under mpiexec/srun)."""
    for var in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_NTASKS"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 1


def launcher_rank() -> int:
    """This process's MPI rank from the launcher's environment (before any MPI library is loaded)."""
    for var in ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0
