"""Predictions of a model, CSV with a first line ``# provenance: {...}``:

- ``write_predictions`` / ``read_predictions``: one row per dataset row of a campaign, with its part of
  the split, true and predicted energy per atom and the calibrated standard deviation (eV/atom), and the
  frame's metadata;
- ``write_applied`` / ``read_applied``: a model applied to frames (``topoamorph predict``, the workflow's
  evaluation): source file, frame, atom count, density (g/cm³), predicted energy per atom and total energy
  (eV), σ of both, the applicability-domain flag and reasons, and the reference energy and error when the
  frames carry one (empty otherwise);
- ``write_pairs`` / ``read_pairs``: the persistence pairs behind an explanation (``topoamorph explain``): source
  file, frame, homology dimension, birth, death (the diagram's units), the pair's contribution (eV) and the
  atoms of its birth and death simplices (space-separated indices into the frame).
"""

from __future__ import annotations

import csv

import numpy as np

from ..io import atomic_path
from ..provenance import csv_header, skip_comments

COLUMNS = (
    "row",
    "part",
    "y_true_ev_per_atom",
    "y_pred_ev_per_atom",
    "y_sigma_ev_per_atom",
    "density",
    "stage",
    "n_atoms",
    "source",
    "frame",
)
APPLIED = (
    "source",
    "frame",
    "n_atoms",
    "density",
    "energy_per_atom_ev",
    "energy_ev",
    "sigma_ev_per_atom",
    "sigma_ev",
    "in_domain",
    "out_of_domain",
    "descriptor_distance",
    "reference_energy_per_atom_ev",
    "error_mev_per_atom",
)
PAIRS = ("source", "frame", "dim", "birth", "death", "contribution_ev", "birth_atoms", "death_atoms")


def write_predictions(path, y, pred, meta, parts: dict, prov: dict | None = None, sigma=None) -> None:
    part_of = np.full(len(y), "", dtype=object)
    for name, idx in parts.items():
        part_of[np.asarray(idx, dtype=np.int64)] = name
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        fh.write(csv_header(prov) + "\n")
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for i in range(len(y)):
            w.writerow(
                [
                    i,
                    part_of[i],
                    f"{y[i]:.12f}",
                    f"{pred[i]:.12f}",
                    "" if sigma is None else f"{sigma[i]:.8f}",
                    f"{meta['density'][i]:.4f}",
                    meta["stage"][i],
                    meta["n_atoms"][i],
                    meta["source"][i],
                    meta["index"][i],
                ]
            )


def read_predictions(path) -> dict:
    """Columns of a predictions file: part, y, pred, sigma (NaN where absent), density, stage (numpy arrays)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(skip_comments(fh)))
    return {
        "part": np.array([r["part"] for r in rows]),
        "y": np.array([float(r["y_true_ev_per_atom"]) for r in rows]),
        "pred": np.array([float(r["y_pred_ev_per_atom"]) for r in rows]),
        "sigma": np.array([float(r.get("y_sigma_ev_per_atom") or "nan") for r in rows]),
        "density": np.array([float(r["density"]) for r in rows]),
        "stage": np.array([r["stage"] for r in rows]),
    }


def write_applied(path, out: dict, sources, frames, reference=None, prov: dict | None = None) -> None:
    """``out``: what ``TrainedModel.apply`` returns; ``reference``: eV/atom per frame, NaN where unknown."""
    n = len(out["energy_per_atom"])
    ref = np.full(n, np.nan) if reference is None else np.asarray(reference, float)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        fh.write(csv_header(prov) + "\n")
        w = csv.writer(fh)
        w.writerow(APPLIED)
        for i in range(n):
            e, s, na = float(out["energy_per_atom"][i]), float(out["sigma"][i]), int(out["n_atoms"][i])
            has_ref = np.isfinite(ref[i])
            w.writerow(
                [
                    sources[i],
                    frames[i],
                    na,
                    f"{out['density'][i]:.4f}",
                    f"{e:.12f}",
                    f"{e * na:.10f}",
                    f"{s:.8f}",
                    f"{s * na:.6f}",
                    int(bool(out["in_domain"][i])),
                    out["reasons"][i],
                    f"{out['descriptor_distance'][i]:.6g}",
                    f"{ref[i]:.12f}" if has_ref else "",
                    f"{1000 * (e - ref[i]):.4f}" if has_ref else "",
                ]
            )


def read_applied(path) -> dict:
    """Columns of an applied-predictions file as numpy arrays (reference and error NaN where absent)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(skip_comments(fh)))
    num = lambda k: np.array([float(r[k]) if r[k] != "" else np.nan for r in rows])  # noqa: E731
    out = {k: num(k) for k in APPLIED if k not in ("source", "out_of_domain", "frame", "n_atoms", "in_domain")}
    out.update(
        source=np.array([r["source"] for r in rows], dtype=object),
        out_of_domain=np.array([r["out_of_domain"] for r in rows], dtype=object),
        frame=np.array([int(r["frame"]) for r in rows], dtype=np.int64),
        n_atoms=np.array([int(r["n_atoms"]) for r in rows], dtype=np.int64),
        in_domain=np.array([r["in_domain"] == "1" for r in rows]),
    )
    return out


def write_pairs(path, rows, prov: dict | None = None) -> None:
    """``rows``: dicts with the ``PAIRS`` keys (atoms as lists of indices)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        fh.write(csv_header(prov) + "\n")
        w = csv.writer(fh)
        w.writerow(PAIRS)
        for r in rows:
            w.writerow(
                [
                    r["source"],
                    r["frame"],
                    r["dim"],
                    f"{r['birth']:.12g}",
                    f"{r['death']:.12g}",
                    f"{r['contribution_ev']:.12e}",
                    " ".join(map(str, r["birth_atoms"])),
                    " ".join(map(str, r["death_atoms"])),
                ]
            )


def read_pairs(path) -> list[dict]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(skip_comments(fh)))
    return [
        {
            "source": r["source"],
            "frame": int(r["frame"]),
            "dim": int(r["dim"]),
            "birth": float(r["birth"]),
            "death": float(r["death"]),
            "contribution_ev": float(r["contribution_ev"]),
            "birth_atoms": [int(a) for a in r["birth_atoms"].split()],
            "death_atoms": [int(a) for a in r["death_atoms"].split()],
        }
        for r in rows
    ]
