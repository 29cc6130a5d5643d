"""Per-frame predictions of a model: CSV, a first line ``# provenance: {...}``, then one row per dataset
row with its part of the split, true and predicted energy per atom (eV/atom) and the frame's metadata."""

from __future__ import annotations

import csv

import numpy as np

from ..io import atomic_path
from ..provenance import csv_header, skip_comments

COLUMNS = ("row", "part", "y_true_ev_per_atom", "y_pred_ev_per_atom", "density", "stage", "n_atoms", "source",
           "frame")


def write_predictions(path, y, pred, meta, parts: dict, prov: dict | None = None) -> None:
    part_of = np.full(len(y), "", dtype=object)
    for name, idx in parts.items():
        part_of[np.asarray(idx, dtype=np.int64)] = name
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        fh.write(csv_header(prov) + "\n")
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for i in range(len(y)):
            w.writerow([i, part_of[i], f"{y[i]:.8f}", f"{pred[i]:.8f}", f"{meta['density'][i]:.4f}",
                        meta["stage"][i], meta["n_atoms"][i], meta["source"][i], meta["index"][i]])


def read_predictions(path) -> dict:
    """Columns of a predictions file: part, y, pred, density, stage (numpy arrays)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(skip_comments(fh)))
    return {
        "part": np.array([r["part"] for r in rows]),
        "y": np.array([float(r["y_true_ev_per_atom"]) for r in rows]),
        "pred": np.array([float(r["y_pred_ev_per_atom"]) for r in rows]),
        "density": np.array([float(r["density"]) for r in rows]),
        "stage": np.array([r["stage"] for r in rows]),
    }
