#!/usr/bin/env python3
"""Compare two campaigns' results (results/<campaign> of two checkouts or two runs), as the architecture
change was checked: structures, traces and diagram files byte for byte once the provenance hashes they
carry (git commit, config hash) are masked; descriptors, split, metrics and predictions by value, the
provenance records aside.

    python tools/compare-results.py OLD/results/demo NEW/results/demo      # exit 0 when all agree
"""

import glob
import json
import os
import re
import sys

import h5py
import numpy as np


def masked(data: bytes) -> bytes:
    """Bytes with every hex hash of provenance (git commit 40/12 digits, config hash 16) replaced by Xs."""
    for n in (40, 16, 12):
        data = re.sub(rb"(?<![0-9a-f])[0-9a-f]{%d}(?![0-9a-f])" % n, b"X" * n, data)
    return data


def without_provenance(obj):
    if isinstance(obj, dict):
        return {k: without_provenance(v) for k, v in obj.items() if k != "provenance"}
    if isinstance(obj, list):
        return [without_provenance(v) for v in obj]
    return obj


def arrays(path) -> dict:
    out = {}
    with h5py.File(path, "r") as h:
        h.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def main(a: str, b: str) -> int:
    rows = []
    for pattern in ("structures/*/*.extxyz", "diagrams/*.h5"):
        for f in sorted(glob.glob(os.path.join(a, pattern))):
            x, y = open(f, "rb").read(), open(f.replace(a, b, 1), "rb").read()
            rows.append(
                (
                    os.path.relpath(f, a),
                    "identical"
                    if x == y
                    else ("identical with provenance hashes masked" if masked(x) == masked(y) else "DIFFERENT"),
                )
            )
    for f in sorted(
        glob.glob(os.path.join(a, "structures/*/*.trace.csv")) + glob.glob(os.path.join(a, "predictions/*.csv"))
    ):
        x, y = (open(p).read().split("\n", 1)[1] for p in (f, f.replace(a, b, 1)))  # below the provenance line
        rows.append((os.path.relpath(f, a), "identical below the provenance line" if x == y else "DIFFERENT"))
    for name in ("dataset/descriptors.h5", "dataset/structure_features.h5"):
        x, y = arrays(os.path.join(a, name)), arrays(os.path.join(b, name))
        differ = [k for k in x if k not in y or not np.array_equal(x[k], y[k])]
        text = [
            k
            for k in differ
            if x[k].dtype == object
            and [masked(v if isinstance(v, bytes) else v.encode()) for v in x[k]]
            == [masked(v if isinstance(v, bytes) else v.encode()) for v in y[k]]
        ]
        rows.append(
            (
                name,
                "arrays identical" + (f" ({', '.join(text)}: with provenance hashes masked)" if text else "")
                if set(differ) == set(text)
                else f"DIFFERENT: {sorted(set(differ) - set(text))}",
            )
        )
    for f in sorted(glob.glob(os.path.join(a, "metrics/*.json"))) + [os.path.join(a, "dataset/split.json")]:
        x, y = (without_provenance(json.load(open(p))) for p in (f, f.replace(a, b, 1)))
        rows.append((os.path.relpath(f, a), "identical (provenance aside)" if x == y else "DIFFERENT"))
    width = max(len(r[0]) for r in rows)
    for name, verdict in rows:
        print(f"{name:<{width}}  {verdict}")
    bad = sum("DIFFERENT" in v for _, v in rows)
    print(f"{len(rows) - bad} of {len(rows)} outputs agree")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]) if len(sys.argv) == 3 else (print(__doc__), 2)[1])
