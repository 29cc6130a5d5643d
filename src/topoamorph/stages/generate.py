"""Stages of rules/generate.smk: melt_quench, relabel, validate_import."""

from __future__ import annotations

import logging

from .. import generate, importer, plan, provenance
from ..formats.checkpoint import remove_checkpoint
from ..formats.frames import read_spec, write_frames
from ..formats.trace import write_trace
from ..io import write_json
from ..mpi import is_root
from ..settings import SourceSettings

log = logging.getLogger(__name__)


def melt_quench(
    *,
    frames: str,
    trace: str,
    structures: dict,
    seed: int,
    density: float,
    run: int,
    checkpoint: str | None,
    workdir: str | None,
) -> None:
    """One melt-quench run: frames and trace written atomically (MPI rank 0), then the checkpoint removed."""
    sched = plan.schedule(structures["protocol"])
    res = generate.melt_quench(structures, sched, density, run, seed, checkpoint=checkpoint, workdir=workdir)
    if is_root():
        write_trace(trace, res.trace)
        write_frames(frames, res.frames)
    remove_checkpoint(checkpoint)
    log.info("wrote %d frames to %s and %d trace rows to %s", len(res.frames), frames, len(res.trace), trace)


def relabel(
    *, frames: str, labels: str, engine: dict, element: str, forces: bool, checkpoint: str | None, workdir: str | None
) -> None:
    """Single-point labels of a run's frames with a second engine (see generate.relabel)."""
    atoms = [f.atoms for f in read_spec(frames)]
    out = generate.relabel(
        atoms, engine, element, checkpoint=checkpoint, workdir=workdir, forces=forces, source=str(frames)
    )
    if is_root():
        write_frames(labels, out)
    remove_checkpoint(checkpoint)
    log.info("wrote %d relabelled frames to %s", len(out), labels)


def validate_import(
    *, frames: list[str], manifest: str, source: dict, species, manifest_format: int = importer.MANIFEST_FORMAT
) -> dict:
    """Every frame of every imported file read and checked; the manifest written. ``frames``: the files
    ``source`` names (the rule's input, so that a changed file reruns the check); ``manifest_format``: the
    format the workflow expects (a rule parameter, so that a manifest of an older format is rewritten)."""
    if manifest_format != importer.MANIFEST_FORMAT:
        raise ValueError(
            f"manifest format {manifest_format} requested, this topoamorph writes {importer.MANIFEST_FORMAT}"
        )
    out = {"format": importer.MANIFEST_FORMAT, **importer.validate(SourceSettings.from_config(source), species)}
    out["provenance"] = provenance.record(source)
    write_json(manifest, out)
    return out
