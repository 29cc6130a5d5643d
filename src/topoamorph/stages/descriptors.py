"""Stages of rules/descriptors.smk: descriptors (the dataset) and structure_features (SOAP, RDF)."""

from __future__ import annotations

import json
import logging
import time

import numpy as np

from .. import provenance
from ..baselines import make_featurizer
from ..descriptors import kind_of, make_vectorizer
from ..errors import InputFileError
from ..formats.dataset import Dataset, write_dataset
from ..formats.diagrams import read_diagrams
from ..formats.features import KINDS, write_features
from ..formats.frames import read_rows
from ..importer import unchanged_while_read

log = logging.getLogger(__name__)


def descriptors(*, diagrams: list[str], dataset: str, descriptors: dict) -> dict:
    """Vectorise every frame of the batch files into one dataset file (X, y in eV/atom, metadata)."""
    results, cols, units = [], {}, None
    for path in diagrams:
        part = read_diagrams(path)
        units = units or part["attrs"]["units"]
        if part["attrs"]["units"] != units:
            raise InputFileError(path, f"units {part['attrs']['units']!r} differ from {units!r} of earlier batches")
        results.extend(part["results"])
        for k, v in part["frames"].items():
            cols.setdefault(k, []).append(v)
    if not results:
        raise InputFileError(diagrams[0] if diagrams else "<none>", "no frames in the diagram files")
    cols = {k: np.concatenate(v) for k, v in cols.items()}
    vec = make_vectorizer(descriptors).fit()
    X = vec.images(results)
    y = cols["energy"] / cols["n_atoms"]
    outside = vec.out_of_range_fraction(results)
    if outside > 0.01:
        log.warning("%.1f%% of finite pairs fall outside descriptors.range %s %s: widen it", 100 * outside,
                    list(vec.range), units)
    attrs = dict(kind=kind_of(vec), dims=list(vec.dims), bins=int(vec.bins), range=list(vec.range), units=units,
                 axes=vec.axes, y_range=[float(vec.y_edges_[0]), float(vec.y_edges_[-1])],
                 params=json.dumps(descriptors, sort_keys=True), normalize=vec.normalize, y_units="eV/atom",
                 out_of_range_fraction=outside)
    write_dataset(dataset, X, y, cols, attrs, provenance.record(descriptors))
    log.info("dataset %s: X %s, y %.4f..%.4f eV/atom, %.2f%% pairs out of range", dataset, X.shape, y.min(),
             y.max(), 100 * outside)
    return {"n": len(y), "shape": list(X.shape), "out_of_range_fraction": outside}


def structure_features(*, dataset: str, frames: list[str], features: str, baselines: dict, species,
                       threads: int = 1, manifest: str | None = None) -> dict:
    """SOAP and RDF features of every dataset row, in the dataset's row order (``frames``: the files the
    rows come from, inputs of the rule so that a changed file reruns it; ``manifest``: the import manifest
    they are checked against, before and after reading)."""
    with Dataset(dataset) as ds:
        meta = {k: v.copy() for k, v in ds.meta.items()}
    with unchanged_while_read(manifest, frames):
        atoms = read_rows(meta["source"], meta["index"])
    feats = {}
    for kind in KINDS:
        t0 = time.perf_counter()
        feats[kind] = make_featurizer(kind, baselines[kind], species, threads).fit().transform(atoms)
        log.info("%s: %d frames x %d features in %.1f s", kind, *feats[kind].shape, time.perf_counter() - t0)
    write_features(features, feats, meta, baselines, species, provenance.record(baselines))
    shapes = {k: list(v.shape) for k, v in feats.items()}
    log.info("structure features %s written to %s", shapes, features)
    return shapes
