# GPAW build configuration used by `make gpaw` (GPAW_CONFIG=tools/gpaw-siteconfig.py pip install gpaw).
# Debian's OpenMPI, ScaLAPACK, libxc and FFTW (apt packages listed in the Makefile's GPAW_APT).
# The venv's PyPI mpich wheel installs its own mpi.h into <venv>/include: OpenMPI's headers must come first,
# or _gpaw is compiled against MPICH's handles and segfaults in MPI_Comm_size when linked to OpenMPI.
import subprocess

_flags = subprocess.run(["/usr/bin/mpicc", "--showme:compile"], capture_output=True, text=True).stdout.split()
include_dirs += [f[2:] for f in _flags if f.startswith("-I")]  # noqa: F821 (GPAW's setup provides it)
scalapack = True
libraries = ["xc", "blas", "scalapack-openmpi"]
fftw = True
libraries += ["fftw3"]
