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
    return run([venv_tool("snakemake"), "--snakefile", ROOT / "workflow" / "Snakefile", "--directory", workdir,
                *args], cwd=workdir, env={**local_snakemake_env(), **(env or {})}, **kw)


def random_cell(n, density, seed, element="C"):
    from topoamorph.units import volume_for_density

    L = volume_for_density(element, n, density) ** (1 / 3)
    rng = np.random.default_rng(seed)
    return Atoms(f"{element}{n}", positions=rng.uniform(0, L, (n, 3)), cell=[L] * 3, pbc=True)


@pytest.fixture(scope="session")
def default_config():
    from topoamorph import config

    return config.load(defaults=ROOT / "config" / "config.yaml")
