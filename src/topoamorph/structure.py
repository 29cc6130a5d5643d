"""Structure analysis of frames: coordination, sp/sp2/sp3 fractions (carbon) and the radial distribution.

Hybridisation is read from the coordination number within ``BOND_CUTOFF`` (1.85 Å, the usual choice for
amorphous carbon, between the first-neighbour peak at 1.4-1.6 Å and the first minimum of g(r)):
coordination <= 2 counts as sp, 3 as sp2, >= 4 as sp3.

``crystalline_fraction`` says whether a frame is amorphous (the method's domain) or near-crystalline: the
fraction of atoms in a crystal-like environment, i.e. an atom with 4 (diamond-like) or 3 (graphite-like)
bonds whose bond angles all lie within ``ANGLE_TOLERANCE`` of the ideal (109.47° or 120°) and bond
lengths within ``LENGTH_TOLERANCE`` of their mean, and whose bonded neighbours are all such atoms of the
same coordination (a second shell, as OVITO's diamond identification asks). Strained diamond scores near
1, melt-quenched amorphous carbon near 0.
"""

from __future__ import annotations

import numpy as np
from ase.neighborlist import neighbor_list

BOND_CUTOFF = 1.85  # Å
ANGLE_TOLERANCE = 15.0  # degrees
LENGTH_TOLERANCE = 0.12  # relative
CRYSTALLINE_FRAME = 0.5  # a frame with more than this fraction of crystal-like atoms counts as near-crystalline


def coordination(atoms, cutoff: float = BOND_CUTOFF) -> np.ndarray:
    i = neighbor_list("i", atoms, cutoff)
    return np.bincount(i, minlength=len(atoms))


def hybridisation(atoms, cutoff: float = BOND_CUTOFF) -> dict:
    """Fractions of sp (coordination <= 2), sp2 (3) and sp3 (>= 4) atoms, and the mean coordination."""
    return _hybridisation_of(coordination(atoms, cutoff))


ENVIRONMENTS = ("sp", "sp2", "sp3")


def environment_of(cn) -> np.ndarray:
    """Each atom's environment from its coordination number: 'sp' (at most 2 neighbours), 'sp2' (3), 'sp3' (4
    or more)."""
    cn = np.asarray(cn)
    return np.where(cn <= 2, "sp", np.where(cn == 3, "sp2", "sp3"))


def _hybridisation_of(cn) -> dict:
    n = max(len(cn), 1)
    env = environment_of(cn)
    return {
        **{e: float(np.sum(env == e) / n) for e in ENVIRONMENTS},
        "mean_coordination": float(cn.mean()) if len(cn) else 0.0,
    }


def crystalline_fraction(atoms, cutoff: float = BOND_CUTOFF, bonds=None) -> float:
    """Fraction of atoms in a crystal-like (diamond- or graphite-like) environment, see the module notes
    (``bonds``: ``neighbor_list("ijD", atoms, cutoff)`` when the caller has it)."""
    i, j, D = bonds if bonds is not None else neighbor_list("ijD", atoms, cutoff)
    n = len(atoms)
    cn = np.bincount(i, minlength=n)
    ordered = np.zeros(n, bool)
    order = np.argsort(i, kind="stable")
    i, j, D = i[order], j[order], D[order]
    starts = np.concatenate([[0], np.cumsum(cn)])
    for a in range(n):
        k = cn[a]
        if k not in (3, 4):
            continue
        v = D[starts[a] : starts[a + 1]]
        length = np.linalg.norm(v, axis=1)
        if np.max(np.abs(length / length.mean() - 1)) > LENGTH_TOLERANCE:
            continue
        u = v / length[:, None]
        cos = (u @ u.T)[np.triu_indices(k, 1)]
        angles = np.degrees(np.arccos(np.clip(cos, -1, 1)))
        ideal = 109.4712 if k == 4 else 120.0
        ordered[a] = np.max(np.abs(angles - ideal)) <= ANGLE_TOLERANCE
    crystal = ordered.copy()
    for a in np.nonzero(ordered)[0]:
        nb = j[starts[a] : starts[a + 1]]
        crystal[a] = bool(np.all(ordered[nb]) and np.all(cn[nb] == cn[a]))
    return float(crystal.mean()) if n else 0.0


def neighbour_histogram(atoms, rmax: float = 5.0, nbins: int = 100):
    """Neighbours per atom in each distance shell up to ``rmax`` (Å), periodic images included:
    (edges, counts per atom). The RDF before its ideal-gas normalisation."""
    edges = np.linspace(0.0, rmax, nbins + 1)
    counts = np.zeros(nbins, dtype=np.int64)
    cell = np.asarray(atoms.cell)
    pos = atoms.get_positions(wrap=True)
    # enough images that every neighbour within rmax of an atom in the cell is seen, whatever the cell shape
    widths = atoms.get_volume() / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
    reach = [int(np.ceil(rmax / w)) for w in widths]
    shifts = (
        np.array(
            [
                (i, j, k)
                for i in range(-reach[0], reach[0] + 1)
                for j in range(-reach[1], reach[1] + 1)
                for k in range(-reach[2], reach[2] + 1)
            ],
            dtype=float,
        )
        @ cell
    )
    step = max(1, 2_000_000 // max(1, len(pos) ** 2))
    for start in range(0, len(shifts), step):
        images = (pos[None, :, :] + shifts[start : start + step, None, :]).reshape(-1, 3)
        d = np.sqrt(((pos[:, None, :] - images[None, :, :]) ** 2).sum(axis=-1)).ravel()
        d = d[(d < rmax) & (d > 1e-8)]
        counts += np.bincount(np.minimum((d * (nbins / rmax)).astype(np.int64), nbins - 1), minlength=nbins)
    return edges, counts / len(atoms)


def rdf(atoms, rmax: float = 5.0, nbins: int = 100):
    """g(r) of a periodic cell up to ``rmax`` (Å): (bin centres, g). Normalised to 1 for an ideal gas."""
    edges, per_atom = neighbour_histogram(atoms, rmax, nbins)
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    rho = len(atoms) / atoms.get_volume()
    return 0.5 * (edges[1:] + edges[:-1]), per_atom / (rho * shell)


def analyse_frames(frames) -> list[dict]:
    """One row per frame: density, stage, run, time and hybridisation."""
    from .units import density_of

    rows = []
    for fr in frames:
        atoms = fr.atoms if hasattr(fr, "atoms") else fr
        row = {
            "source": getattr(fr, "source", ""),
            "frame": getattr(fr, "index", -1),
            "density": density_of(atoms),
            "stage": str(atoms.info.get("stage", "")),
            "run": int(atoms.info.get("run", -1)),
            "time_ps": float(atoms.info.get("time_ps", np.nan)),
        }
        bonds = neighbor_list("ijD", atoms, BOND_CUTOFF)  # one neighbour list for both analyses
        row.update(_hybridisation_of(np.bincount(bonds[0], minlength=len(atoms))))
        row["crystalline"] = crystalline_fraction(atoms, bonds=bonds)
        rows.append(row)
    return rows
