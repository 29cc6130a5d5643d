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
from ..formats.dataset import Dataset, DatasetWriter
from ..formats.delta import write_delta_energies
from ..formats.diagrams import count_diagrams, read_diagrams
from ..formats.features import KINDS, write_features
from ..formats.frames import read_rows
from ..importer import unchanged_while_read
from ..units import ENERGY_PER_ATOM

log = logging.getLogger(__name__)


def descriptors(*, diagrams: list[str], dataset: str, descriptors: dict) -> dict:
    """Vectorise every frame of the batch files into one dataset file (X, y in eV/atom, metadata), one batch
    file at a time: memory holds one batch's diagrams and images, whatever the number of frames."""
    if not diagrams:
        raise InputFileError("<none>", "no diagram files")
    vec = make_vectorizer(descriptors).fit()
    counts = [count_diagrams(p) for p in diagrams]
    if not sum(counts):
        raise InputFileError(diagrams[0], "no frames in the diagram files")
    row_shape = (len(vec.dims), int(vec.bins), int(vec.bins))
    cols, units, outside, total = {}, None, 0, 0
    with DatasetWriter(dataset, sum(counts), row_shape) as out:
        for path in diagrams:
            part = read_diagrams(path, simplices=False)
            units = units or part["attrs"]["units"]
            if part["attrs"]["units"] != units:
                raise InputFileError(path, f"units {part['attrs']['units']!r} differ from {units!r} of earlier batches")
            for k, v in part["frames"].items():
                cols.setdefault(k, []).append(v)
            out.write(vec.images(part["results"]))
            o, t = vec.out_of_range_counts(part["results"])
            outside, total = outside + o, total + t
        cols = {k: np.concatenate(v) for k, v in cols.items()}
        y = cols["energy"] / cols["n_atoms"]
        outside = outside / max(total, 1)
        if outside > 0.01:
            log.warning(
                "%.1f%% of finite pairs fall outside descriptors.range %s %s: widen it",
                100 * outside,
                list(vec.range),
                units,
            )
        attrs = dict(
            kind=kind_of(vec),
            dims=list(vec.dims),
            bins=int(vec.bins),
            range=list(vec.range),
            units=units,
            axes=vec.axes,
            y_range=[float(vec.y_edges_[0]), float(vec.y_edges_[-1])],
            params=json.dumps(descriptors, sort_keys=True),
            normalize=vec.normalize,
            y_units=ENERGY_PER_ATOM,
            out_of_range_fraction=outside,
        )
        out.finish(y, cols, attrs, provenance.record(descriptors))
    shape = [len(y), *row_shape]
    log.info(
        "dataset %s: X %s, y %.4f..%.4f eV/atom, %.2f%% pairs out of range",
        dataset,
        tuple(shape),
        y.min(),
        y.max(),
        100 * outside,
    )
    return {"n": len(y), "shape": shape, "out_of_range_fraction": outside}


def structure_features(
    *,
    dataset: str,
    frames: list[str],
    features: str,
    baselines: dict,
    species,
    threads: int = 1,
    manifest: str | None = None,
) -> dict:
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


def delta_energies(
    *,
    dataset: str,
    frames: list[str],
    energies: str,
    engine: dict,
    element: str,
    workdir: str,
    manifest: str | None = None,
) -> dict:
    """The Δ-learning engine's energy per atom of every dataset row (``train.delta.engine``), in the dataset's
    row order (``frames``: the files the rows come from; ``manifest``: the import manifest they are checked
    against). One calculator for all rows; a row the engine cannot compute fails the job naming the frame."""
    from .. import engines
    from ..trained import engine_energies

    with Dataset(dataset) as ds:
        meta = {k: v.copy() for k, v in ds.meta.items()}
    with unchanged_while_read(manifest, frames):
        atoms = read_rows(meta["source"], meta["index"])
    t0 = time.perf_counter()
    energy, _ = engine_energies(
        engine,
        element,
        atoms,
        [str(s) for s in meta["source"]],
        meta["index"],
        forces=False,
        workdir=workdir,
        key="train.delta.engine",
    )
    described = engines.describe(engine)
    write_delta_energies(energies, energy, meta, engine, described, provenance.record(engine))
    log.info(
        "%s: %d rows in %.1f s, %.4f..%.4f eV/atom",
        described,
        len(atoms),
        time.perf_counter() - t0,
        energy.min(),
        energy.max(),
    )
    return {"rows": len(atoms), "engine": described}
