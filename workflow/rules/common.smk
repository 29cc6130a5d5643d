# Configuration (validated before anything is planned), paths and input functions.
import dataclasses
import json
import re
import shlex
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

# Jobs use the tools of the environment running snakemake (topoamorph, mpiexec), activated or not.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
if hasattr(os, "geteuid") and os.geteuid() == 0:  # OpenMPI (GPAW, CP2K, QE) refuses root without these
    os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")

try:
    from topoamorph import config as tconfig
    from topoamorph import engines, importer, plan, provenance
    from topoamorph.errors import TopoamorphError
    from topoamorph.paths import CampaignPaths, split_selection
    from topoamorph.settings import Campaign, defaults
except ImportError as exc:
    raise WorkflowError(
        f"the topoamorph package is not importable ({exc}): run 'make venv' and use .venv/bin/snakemake"
    )

# The campaign defaults (config/config.yaml links to the package's file), then the campaign's config. Snakemake
# has read the --configfile files already; they are read again here for what its loader lets pass silently
# (a key given twice: the last would win).
try:
    for _configfile in workflow.overwrite_configfiles or []:
        tconfig.load_yaml(_configfile)
    _merged = tconfig.validate(tconfig.deep_merge(defaults(), config))
except TopoamorphError as exc:
    raise WorkflowError(f"invalid configuration: {exc}")
config.clear()
config.update(tconfig.canonical(_merged))
CAMPAIGN = Campaign.from_config(config)

P = CampaignPaths(config["campaign"])
# Every job's outputs carry the campaign's provenance (config hash, seed, engine and version): see provenance.py
os.environ[provenance.ENV] = json.dumps(plan.campaign_record(config), sort_keys=True)
IMPORT = CAMPAIGN.imported
RUNS = plan.runs(config)
try:
    BATCHES = plan.batches(config)  # an imported file that is missing or malformed stops planning here
except TopoamorphError as exc:
    raise WorkflowError(f"invalid input: {exc}")
try:  # an engine whose program or data files are missing here stops planning (engines.check_installation)
    if not IMPORT:
        engines.check_installation(config["structures"]["engine"], config["structures"]["element"])
    if CAMPAIGN.relabel:
        engines.check_installation(CAMPAIGN.relabel.engine, config["structures"]["element"], "relabel.engine")
    if CAMPAIGN.delta_engine:
        engines.check_installation(CAMPAIGN.delta_engine, config["structures"]["element"], "train.delta.engine")
    if CAMPAIGN.active:
        engines.check_installation(CAMPAIGN.active.label["engine"], config["structures"]["element"],
                                   "active.label.engine")
except TopoamorphError as exc:
    raise WorkflowError(f"engine not installed: {exc}")
BATCH_IDS = plan.batch_ids(config)
MODELS = ["ridge", "cnn"]
BASELINES = ["mean", "density", "soap", "rdf"]
ALL_MODELS = MODELS + BASELINES
MODEL_EXT = {"cnn": "pt"}  # the CNN's file is a PyTorch one; the others NumPy (formats/model.py)
EVALUATIONS = {ev.name: ev for ev in CAMPAIGN.evaluations()}
try:  # an evaluation file that is missing or not extxyz stops planning here, before any job
    for _ev in EVALUATIONS.values():
        plan.check_frames_spec(_ev.file)
except TopoamorphError as exc:
    raise WorkflowError(f"invalid input (evaluate): {exc}")
SPECIES = [CAMPAIGN.structures.element]
STRUCTURE_KEYS = ("element", "natoms", "lattice", "rattle_angstrom", "engine", "protocol")
MD_MINUTES = plan.md_runtime_minutes(config["structures"])
RELABEL_MINUTES = plan.relabel_runtime_minutes(config) if CAMPAIGN.relabel else 0
DELTA_MINUTES = plan.delta_runtime_minutes(config) if CAMPAIGN.delta_engine else 0
ACTIVE = CAMPAIGN.active
ACTIVE_LABEL_MINUTES = plan.active_label_minutes(config) if ACTIVE else 0


wildcard_constraints:
    density=r"\d+\.\d\d",
    run=r"\d+",
    batch=r"\d\d\d\d+",
    model="|".join(ALL_MODELS),
    name="|".join(re.escape(n) for n in EVALUATIONS) or "(?!)",


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
    return CAMPAIGN.relabel.engine if CAMPAIGN.relabel else config["structures"]["engine"]


def relabel_json():
    return compact_json(relabel_engine())


# --- the active-labelling loop (rules/active.smk) ---
def active_label_engine():
    """The label engine block of the active loop (the MD engine's when active is off: its rules never run)."""
    return ACTIVE.label["engine"] if ACTIVE else config["structures"]["engine"]


def active_label_json():
    return compact_json(active_label_engine())


def active_label_described():
    return engines.describe(active_label_engine())


def active_forces():
    return "" if ACTIVE is None or ACTIVE.label.get("forces", True) else "--no-forces"


def active_launch(wildcards, resources):
    return engines.launch_prefix(active_label_engine(), getattr(resources, "mpi", ""))


# the one command of every labelling job (relabel, active_label_set, active_label): topoamorph relabel, checkpointed
RELABEL_SHELL = ("{params.launch} topoamorph relabel {input.frames:q} --engine {params.engine:q} --element "
                 "{params.element} --output {output.labels:q} {params.forces} --checkpoint {params.checkpoint:q} "
                 "--workdir {params.workdir:q} >> {log:q} 2>&1")


def active_round_frames(wildcards):
    """The frames round r (>= 1) of a strategy labels: round r-1's picks, or for `all` the rest of the pool."""
    if wildcards.strategy == "all":
        return P.active_frames("all", 1)
    return P.active_picks(wildcards.strategy, int(wildcards.round) - 1)


def active_round_labels(wildcards):
    """Every label file a round's model learns from: the initial frames and rounds 1..r of its strategy (for
    `all`, round 0 is the whole pool: the initial frames and the rest)."""
    r = int(wildcards.round)
    if wildcards.strategy == "all":
        return [P.active_set("initial", "labels"), P.active_labels("all", 1)]
    return [P.active_set("initial", "labels")] + [P.active_labels(wildcards.strategy, k) for k in range(1, r + 1)]


def active_per_round(wildcards):
    """Frames a round picks: active.per_round, none for `all` (so that a changed per_round leaves its round be)."""
    return 0 if wildcards.strategy == "all" or not ACTIVE else ACTIVE.per_round


def active_round_records():
    return [P.active_round(s, r) for s in ACTIVE.strategies for r in ACTIVE.rounds_of(s)] if ACTIVE else []


def engine_ranks(engine_cfg):
    return engines.ranks(engine_cfg)


def engine_cores(engine_cfg):
    """The job's threads: MPI ranks, or an ML potential's torch threads."""
    return engines.cores(engine_cfg)


def engine_gpus(engine_cfg):
    """The `gpu` resource (SLURM's --gpus): 1 for an engine block that asks for CUDA, else 0."""
    return engines.gpus(engine_cfg)


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
    """The homology job's --energy-key and --manifest options for imported frames (generated frames carry
    their energy, and are written by the workflow itself)."""
    if not IMPORT:
        return ""
    return f"--energy-key {shlex.quote(CAMPAIGN.source.energy_key)} --manifest {shlex.quote(P.manifest())}"


def delta_engine():
    """The Δ-learning engine block (the MD engine's when train.delta is off: the rule is then never used)."""
    return CAMPAIGN.delta_engine or config["structures"]["engine"]


def delta_inputs():
    """The Δ-learning engine's energies as an input of the training jobs, none without train.delta."""
    return {"delta": P.delta_energies()} if CAMPAIGN.delta_engine else {}


def delta_params():
    """The Δ-learning engine block as a parameter of the training jobs (none without train.delta, so that
    campaigns without it plan exactly the jobs they did before it existed)."""
    return {"delta_engine": CAMPAIGN.delta_engine} if CAMPAIGN.delta_engine else {}


def import_manifest():
    """The import manifest as an input of the jobs that read imported files (they check the files against
    it), none for generated frames."""
    return {"manifest": P.manifest()} if IMPORT else {}


def split_params():
    """The split every model shares (settings.Campaign.split): the fields that are set."""
    return {k: v for k, v in sorted(dataclasses.asdict(CAMPAIGN.split()).items()) if v is not None}


def learning_curve_model_params():
    """Settings of the PH models the learning curve refits (only those: a CNN change must not rerun a curve
    without the CNN)."""
    return {m: config["train"][m] for m in ("ridge", "cnn") if m in config["train"]["learning_curve"]["models"]}


def model_file(name):
    """A model's file (formats/model.py)."""
    return P.model(name, MODEL_EXT.get(name, "npz"))


def uncertainty_params(ensemble):
    """The uncertainty settings of a training rule: its ensemble size (``bootstrap`` or ``cnn_members``) and
    the domain's, so that the CNN's ensemble size never reruns ridge, nor the bootstrap size the CNN."""
    u = config["train"]["uncertainty"]
    return {k: u[k] for k in (ensemble, "domain_percentile", "domain_components")}


def homology_compute_options():
    """What a diagram depends on (the homology settings a model file records to recompute its inputs)."""
    return CAMPAIGN.homology.compute_options()


def evaluation_file(wildcards):
    """The path of an evaluation file (without its @start:stop selection): a changed file reruns it."""
    return split_selection(EVALUATIONS[wildcards.name].file)[0]


def evaluation_selection(wildcards):
    """The @start:stop selection of an evaluation file ('' for all its frames)."""
    path, sel = split_selection(EVALUATIONS[wildcards.name].file)
    return "" if path == EVALUATIONS[wildcards.name].file else f"@{sel}"


def split_seed():
    return CAMPAIGN.split_seed()


def batch_specs(wildcards):
    """The batch's frames as ``path@start:stop``; a relative path starting with '-' gets './' so that the
    command line never reads it as an option."""
    return [(f"./{s}" if s.startswith("-") else s) for s in (c.spec() for c in BATCHES[int(wildcards.batch)])]


def homology_options():
    """Backend-specific CLI options: only what the chosen backend uses, so that changing another
    backend's setting does not rerun homology."""
    h = CAMPAIGN.homology
    if h.backend == "rips":
        return f"--threshold {h.rips_threshold} {energy_key_option()}".strip()
    keep = " --keep-simplices" if h.keep_simplices else ""  # absent when false: existing campaigns do not rerun
    return f"--precision {h.precision} --diagram {h.diagram}{keep} {energy_key_option()}".strip()


REPORT_NAMES = ("metrics.md", "metrics.csv", "parity.png", "diagrams.png", "ridge_coefficients.png",
                "energy_density.png", "structure.png", "structure.csv", "learning_curve.png", "per_density.png",
                "calibration.png", "explanations.png", "explanations.csv")


def report_files():
    return [P.report(n) for n in REPORT_NAMES] + ([] if IMPORT else [P.report("trace.png")]) + \
        [P.report(f"evaluation_{n}.png") for n in EVALUATIONS]


def all_outputs():
    active = [P.active_curve(), P.report("active.png"), P.report("active.md")] if ACTIVE else []
    return [P.metrics(m) for m in ALL_MODELS] + [P.metrics("learning_curve")] + report_files() + active


def frames_files():
    """Frame files with structures: the runs' frames, or the imported files."""
    return [path for path, _ in plan.frame_files(config)]
