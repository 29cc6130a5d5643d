"""The stage of rules/homology.smk: persistence diagrams of one batch of frames, under MPI."""

from __future__ import annotations

from .. import distribute
from ..settings import HomologySettings


def homology(
    *,
    frames: list[str],
    diagrams: str,
    settings: HomologySettings,
    energy_key: str | None = None,
    manifest: str | None = None,
) -> int:
    """``frames``: ``path`` or ``path@start:stop`` specs; ``diagrams``: the batch's output file; ``manifest``:
    the import manifest the files are checked against (imported data). Run under ``mpiexec -n N`` (or
    ``srun``) to spread the frames over N ranks; returns the exit status."""
    return distribute.run(list(frames), diagrams, settings, energy_key=energy_key, manifest=manifest)
