import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
os.environ.setdefault("OMP_NUM_THREADS", "1")


def venv_tool(name: str) -> str:
    path = BIN / name
    return str(path) if path.exists() else shutil.which(name)


def run(cmd, cwd=None, timeout=900, check=True, env=None):
    e = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {}))
    p = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=e)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} failed ({p.returncode}):\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}")
    return p


# Local Snakemake runs outside a SLURM allocation: an empty SLURM_CONF, so that snakemake-executor-plugin-slurm's
# `scontrol show config` at import fails at once instead of waiting ~9 s for a controller that does not answer
# (the Makefile's SNAKEMAKE_LOCAL; docs/workflow.md). Submission (tests/test_slurm.py) keeps the real config.
def local_snakemake_env() -> dict:
    return {} if os.environ.get("SLURM_JOB_ID") else {"SLURM_CONF": os.devnull}


def snakemake(args, workdir, env=None, **kw):
    return run(
        [venv_tool("snakemake"), "--snakefile", ROOT / "workflow" / "Snakefile", "--directory", workdir, *args],
        cwd=workdir,
        env={**local_snakemake_env(), **(env or {})},
        **kw,
    )


def train_ph_models(res, frames, descriptors: dict, uncertainty: dict, cnn: dict) -> dict:
    """A campaign's PH models built stage by stage from a file of frames with energies, as the workflow's
    stages build them, in ``res``: batch0000.h5, descriptors.h5, split.json (test 0.25, validation 0.2,
    seed 3), ridge.{npz,json,csv}, cnn.{pt,json,csv}. Returns the arguments every training stage shares."""
    from topoamorph import distribute
    from topoamorph.settings import HomologySettings, defaults
    from topoamorph.stages import descriptors as sd
    from topoamorph.stages import train

    hom = HomologySettings.from_config({})
    assert distribute.run([str(frames)], str(res / "batch0000.h5"), hom, energy_key="energy") == 0
    sd.descriptors(diagrams=[str(res / "batch0000.h5")], dataset=str(res / "descriptors.h5"), descriptors=descriptors)
    train.split(
        dataset=str(res / "descriptors.h5"),
        split=str(res / "split.json"),
        settings={"by": "frame", "test_fraction": 0.25, "validation_fraction": 0.2},
        seed=3,
    )
    common = dict(
        dataset=str(res / "descriptors.h5"),
        split=str(res / "split.json"),
        seed=3,
        species=["C"],
        uncertainty=uncertainty,
    )
    train.train_ridge(
        **common,
        metrics=str(res / "ridge.json"),
        predictions=str(res / "ridge.csv"),
        model=str(res / "ridge.npz"),
        ridge=defaults()["train"]["ridge"],
        homology=hom.compute_options(),
    )
    train.train_cnn(
        **common,
        metrics=str(res / "cnn.json"),
        predictions=str(res / "cnn.csv"),
        model=str(res / "cnn.pt"),
        cnn=cnn,
        homology=hom.compute_options(),
    )
    return common


def random_cell(n, density, seed, element="C"):
    from topoamorph.units import volume_for_density

    L = volume_for_density(element, n, density) ** (1 / 3)
    rng = np.random.default_rng(seed)
    return Atoms(f"{element}{n}", positions=rng.uniform(0, L, (n, 3)), cell=[L] * 3, pbc=True)


@pytest.fixture(scope="session")
def default_config():
    from topoamorph import config

    return config.load(defaults=ROOT / "config" / "config.yaml")
