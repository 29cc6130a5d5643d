"""The temperature/energy trace of one melt-quench run: CSV, a first line ``# provenance: {...}``, then a
row every ``trace_every_steps`` steps."""

from __future__ import annotations

import csv

import numpy as np

from ..errors import InputFileError
from ..io import atomic_path
from ..provenance import csv_header, skip_comments

COLUMNS = ("step", "time_ps", "stage", "target_K", "kinetic_K", "epot_eV_per_atom", "etot_eV_per_atom")


def write_trace(path, rows) -> None:
    """``rows``: tuples in the order of COLUMNS, written atomically (the caller decides which MPI rank)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as fh:
            fh.write(csv_header() + "\n")
            fh.write(",".join(COLUMNS) + "\n")
            for r in rows:
                fh.write(f"{r[0]},{r[1]!r},{r[2]},{r[3]!r},{r[4]!r},{r[5]!r},{r[6]!r}\n")


def read_trace(path) -> dict:
    """A trace CSV as columns (numpy arrays; ``stage`` as strings)."""
    with open(path) as fh:
        rows = list(csv.DictReader(skip_comments(fh)))
    if not rows:
        raise InputFileError(path, "trace has no rows")
    out = {}
    for c in COLUMNS:
        vals = [r[c] for r in rows]
        out[c] = np.array(vals) if c == "stage" else np.array(vals, dtype=float)
    return out
