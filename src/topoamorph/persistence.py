"""The value a homology computation returns: persistence diagrams that carry their units, the atoms of
the structure and the replication of the complex (what per-atom normalisation divides by).

Diagrams are ``{dim: (k, 2) float64 array}`` of (birth, death) pairs; essential classes have
death = inf. A ``PersistenceResult`` is what ``topoamorph.homology.compute(atoms)`` returns, what the
diagram files hold per frame, and what the vectorisers of ``topoamorph.descriptors`` take, so that
``make_pipeline(PersistenceImage(), Ridge()).fit([compute(a) for a in frames], y)`` works as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class PersistenceResult:
    """Diagrams of one structure, with how they were obtained.

    ``n_atoms``: atoms of the input cell; ``replicas``: atoms of the complex per atom of the input cell
    (1, 8 or 27 for alpha; k**3 for rips); ``units``: of births and deaths; ``margin``: width of the
    periodic images used (Å); ``info``: the path taken (``cgal-delaunay`` or ``qhull``: the
    fast path with that Delaunay backend; ``cgal``: the exact path; ``ripser``); ``pairs``: when asked for
    (``compute(..., keep_simplices=True)``, or a diagram file that stores them), ``{dim: PairSimplices}`` of the
    finite pairs (``topoamorph.inverse`` uses them).
    """

    diagrams: dict[int, np.ndarray]
    n_atoms: int | None = None
    replicas: int = 1
    units: str = ""
    margin: float = 0.0
    info: dict = field(default_factory=dict)
    pairs: dict | None = None

    @property
    def n_complex(self) -> int | None:
        """Atoms in the complex (n_atoms x replicas): what ``normalize='per_atom'`` divides by."""
        return None if self.n_atoms is None else int(self.n_atoms) * int(self.replicas)

    def __getitem__(self, dim: int) -> np.ndarray:
        return self.diagrams[dim]


@dataclass
class PairSimplices:
    """The simplices of the finite pairs of one homology dimension (k pairs; -1 pads rows of fewer than 4
    atoms). ``birth``/``death``: atoms of the birth and death simplices; ``birth_critical``/
    ``death_critical``: atoms of the simplices whose squared circumradius is the birth/death value, with
    ``*_shift`` (k, 4, 3): the lattice vector (Å) from each atom's position to the vertex."""

    birth: np.ndarray
    death: np.ndarray
    birth_critical: np.ndarray
    birth_shift: np.ndarray
    death_critical: np.ndarray
    death_shift: np.ndarray

    def __len__(self) -> int:
        return len(self.birth)

    def atoms_of(self, k: int) -> np.ndarray:
        """The distinct atoms of pair k's birth and death simplices."""
        a = np.concatenate([self.birth[k], self.death[k]])
        return np.unique(a[a >= 0])


def split_essential(diagram: np.ndarray):
    """(finite pairs (k, 2), essential births (m,)) of one diagram."""
    finite = np.isfinite(diagram[:, 1])
    return diagram[finite], diagram[~finite, 0]
