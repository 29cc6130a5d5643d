# Configuration (validated before anything is planned), paths and input functions.
envvars:
    "PATH",

import json
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

# Jobs use the tools of the environment running snakemake (topoamorph, mpiexec), activated or not.
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
if hasattr(os, "geteuid") and os.geteuid() == 0:  # OpenMPI (GPAW, CP2K, QE) refuses root without these
    os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")

try:
    from topoamorph import config as tconfig
    from topoamorph import engines, plan
    from topoamorph.errors import TopoamorphError
    from topoamorph.paths import CampaignPaths
except ImportError as exc:
    raise WorkflowError(
        f"the topoamorph package is not importable ({exc}): run 'make venv' and use .venv/bin/snakemake"
    )

DEFAULTS = Path(workflow.basedir).parent / "config" / "config.yaml"
try:
    _merged = tconfig.validate(tconfig.deep_merge(tconfig.load_yaml(DEFAULTS), config))
except TopoamorphError as exc:
    raise WorkflowError(f"invalid configuration: {exc}")
config.clear()
config.update(tconfig.canonical(_merged))

P = CampaignPaths(config["campaign"])
# Every job's outputs carry the campaign's provenance (config hash, seed, engine and version): see provenance.py
from topoamorph import provenance as _provenance

os.environ[_provenance.ENV] = json.dumps(_provenance.campaign_record(config), sort_keys=True)
IMPORT = config["source"]["kind"] == "import"
RUNS = plan.runs(config)
try:
    BATCHES = plan.batches(config)  # an imported file that is missing or malformed stops planning here
except TopoamorphError as exc:
    raise WorkflowError(f"invalid input: {exc}")
BATCH_IDS = plan.batch_ids(config)
MODELS = ["ridge", "cnn"]
BASELINES = ["mean", "density", "soap", "rdf"]
SPECIES = [config["structures"]["element"]]
STRUCTURE_KEYS = ("element", "natoms", "lattice", "rattle_angstrom", "engine", "protocol")
MD_MINUTES = plan.md_runtime_minutes(config["structures"])
RELABEL_MINUTES = plan.relabel_runtime_minutes(config) if config.get("relabel") else 0


wildcard_constraints:
    density=r"\d+\.\d\d",
    run=r"\d+",
    batch=r"\d{4}",


def structures_params():
    """What one melt-quench depends on (not the list of densities or the number of runs)."""
    s = config["structures"]
    return {k: s[k] for k in STRUCTURE_KEYS if k in s}


def compact_json(obj):
    """A config block as one line of JSON for a job's command line (keys sorted: stable params)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def structures_json():
    return compact_json(structures_params())


def relabel_engine():
    """The relabel engine block (the MD engine's when relabel is off: the rule is then never used)."""
    return (config.get("relabel") or {}).get("engine") or config["structures"]["engine"]


def relabel_json():
    return compact_json(relabel_engine())


def engine_ranks(engine_cfg):
    return engines.ranks(engine_cfg)


def engine_mpi(engine_cfg):
    """The `mpi` resource (the launcher; a profile may set it) for engines on several ranks, else none:
    the slurm executor refuses MPI jobs of one task."""
    return {"mpi": engines.mpi_launcher(engine_cfg)} if engines.ranks(engine_cfg) > 1 else {}


def md_launch(wildcards, resources):
    """MPI launcher in front of the job for engines whose Python runs under MPI (GPAW), else nothing."""
    return engines.launch_prefix(config["structures"]["engine"], getattr(resources, "mpi", ""))


def relabel_launch(wildcards, resources):
    return engines.launch_prefix(relabel_engine(), getattr(resources, "mpi", ""))


def run_seed(wildcards):
    return plan.find_run(config, wildcards.density, wildcards.run).seed


def batch_files(wildcards):
    """A batch's frame files; for imported data also the manifest, so that every file is validated
    before any homology job starts."""
    files = sorted({c.path for c in BATCHES[int(wildcards.batch)]})
    return files + [P.manifest()] if IMPORT else files


def energy_key_option():
    return f"--energy-key {config['source'].get('energy_key', 'energy')}" if IMPORT else ""


def split_params():
    """The split: the config's, or for imported data the files' own (train/test) or a seeded random one."""
    split = config["train"]["split"]
    if not IMPORT:
        return split
    src = config["source"]
    val = {"validation_fraction": split.get("validation_fraction", 0.0)}
    if src.get("file"):
        return {"by": "frame", "test_fraction": src.get("test_fraction", split["test_fraction"]), **val}
    return {"by": "source", "test_source": src["test"], **val}


def learning_curve_model_params():
    """Settings of the PH models the learning curve refits (only those: a CNN change must not rerun a curve
    without the CNN)."""
    return {m: config["train"][m] for m in ("ridge", "cnn") if m in config["train"]["learning_curve"]["models"]}


def split_seed():
    return config["source"].get("seed", config["seed"]) if IMPORT else config["seed"]


def batch_specs(wildcards):
    return [c.spec() for c in BATCHES[int(wildcards.batch)]]


def homology_options():
    """Backend-specific CLI options: only what the chosen backend uses, so that changing another
    backend's setting does not rerun homology."""
    h = config["homology"]
    if h["backend"] == "rips":
        return f"--threshold {h.get('rips_threshold', 5.0)} {energy_key_option()}".strip()
    return f"--precision {h.get('precision', 'safe')} {energy_key_option()}".strip()


REPORT_NAMES = ("metrics.md", "metrics.csv", "parity.png", "diagrams.png", "ridge_coefficients.png",
                "energy_density.png", "structure.png", "structure.csv", "learning_curve.png", "per_density.png")


def report_files():
    return [P.report(n) for n in REPORT_NAMES] + ([] if IMPORT else [P.report("trace.png")])


def all_outputs():
    return [P.metrics(m) for m in MODELS + BASELINES] + [P.metrics("learning_curve")] + report_files()


def frames_files():
    """Frame files with structures: the runs' frames, or the imported files."""
    return [path for path, _ in plan.frame_files(config)]
