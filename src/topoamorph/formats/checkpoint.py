"""Checkpoints of long jobs (melt-quench, relabel): one atomic ``.npz`` file of named arrays plus a JSON
``meta`` record (format ``topoamorph-checkpoint/1``). A checkpoint is resumed only under the settings key
it was written with; an unreadable one is reported and ignored. Written and removed by MPI rank 0 only."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from ..io import atomic_path
from ..mpi import is_root

log = logging.getLogger(__name__)

FORMAT = "topoamorph-checkpoint/1"


def settings_key(*parts) -> str:
    """A hash of what a job's result depends on; a checkpoint is only resumed under the same key."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


class Checkpoint:
    FORMAT = FORMAT

    def __init__(self, path, key: str):
        self.path = Path(path) if path else None
        self.key = key

    def load(self) -> tuple[dict, dict] | None:
        if self.path is None or not self.path.exists():
            return None
        try:
            with np.load(self.path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            meta = json.loads(str(arrays.pop("meta")))
        except Exception as exc:  # noqa: BLE001 (a corrupt checkpoint is reported, then ignored)
            log.warning("checkpoint %s is unreadable (%s): starting from the beginning", self.path, exc)
            return None
        if meta.get("format") != self.FORMAT or meta.get("key") != self.key:
            log.warning("checkpoint %s was written for other settings: starting from the beginning", self.path)
            return None
        return arrays, meta

    def save(self, arrays: dict, meta: dict) -> None:
        if self.path is None or not is_root():
            return
        meta = dict(meta, format=self.FORMAT, key=self.key)
        with atomic_path(self.path, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, meta=np.array(json.dumps(meta)), **arrays)


def remove_checkpoint(path) -> None:
    """Delete a job's checkpoint once its outputs are complete (MPI rank 0; no-op without one)."""
    if path and is_root():
        Path(path).unlink(missing_ok=True)
