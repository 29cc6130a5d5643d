"""A real SLURM: the default campaign submitted with profiles/slurm-local to the single-node cluster of
tools/slurm-local.sh (started and stopped here; installed from apt if missing). Everything is time-bound."""

import json
import os
import subprocess

import pytest

from conftest import ROOT, run, venv_tool

pytestmark = pytest.mark.slow
SCRIPT = ROOT / "tools" / "slurm-local.sh"


@pytest.fixture(scope="module")
def slurm():
    if os.geteuid() != 0:
        pytest.skip("the local SLURM cluster needs root (munge, slurmctld, slurmd)")
    p = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=1200)
    if p.returncode != 0:
        pytest.fail(f"tools/slurm-local.sh start failed:\n{p.stdout}\n{p.stderr}")
    yield
    subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True, text=True, timeout=120)


def test_default_campaign_runs_as_slurm_jobs(slurm, tmp_path):
    p = run([venv_tool("topoamorph"), "submit", ROOT / "profiles" / "slurm-local", "--directory", tmp_path,
             "--", "--snakefile", ROOT / "workflow" / "Snakefile"], cwd=tmp_path, timeout=1000, check=False)
    assert p.returncode == 0, f"{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    res = tmp_path / "results" / "demo"
    # every generation, homology and training job ran as a SLURM job (one log directory per rule)
    logs = tmp_path / ".snakemake" / "slurm_logs"
    counts = {d.name: len(list(d.rglob("*.log"))) for d in logs.iterdir()}
    assert counts.get("rule_melt_quench") == 10, counts
    assert counts.get("rule_homology") == 4, counts
    for rule in ("rule_descriptors", "rule_train_ridge", "rule_train_cnn"):
        assert counts.get(rule) == 1, counts
    assert "rule_report" not in counts and "rule_split" not in counts  # local rules stay local
    # the homology jobs ran with 2 MPI ranks through srun
    for log in (res / "logs" / "homology").glob("*.log"):
        assert "on 2 rank(s)" in log.read_text()
    assert "srun --mpi=pmi2 -n 2 topoamorph homology" in p.stdout + p.stderr
    for model in ("ridge", "cnn", "mean", "density"):
        m = json.loads((res / "metrics" / f"{model}.json").read_text())
        assert m["test"]["n"] == 216 and m["test"]["mae_mev_per_atom"] > 0
    ridge = json.loads((res / "metrics" / "ridge.json").read_text())["test"]["mae_mev_per_atom"]
    mean = json.loads((res / "metrics" / "mean.json").read_text())["test"]["mae_mev_per_atom"]
    assert ridge < 0.5 * mean
    assert (res / "report" / "parity.png").stat().st_size > 0


def test_submit_merges_site_values_into_a_generated_profile(tmp_path):
    from topoamorph import submit

    site = tmp_path / "site.yaml"
    site.write_text("account: proj_1\npartition: small\ngpu_partition: gpu\n")
    values = submit.site_values(site, environ={"TOPOAMORPH_SLURM_QOS": "high", "TOPOAMORPH_SLURM_PARTITION": "big"})
    assert values == {"account": "proj_1", "partition": "big", "gpu_partition": "gpu", "qos": "high"}
    cfg = submit.merged_profile(ROOT / "profiles" / "slurm-gpu", values)
    assert cfg["default-resources"]["slurm_account"] == "'proj_1'"
    assert cfg["default-resources"]["slurm_partition"] == "'big'"
    assert cfg["set-resources"]["train_cnn"]["slurm_partition"] == "'gpu'"
    assert cfg["set-resources"]["train_cnn"]["gpu"] == 1 and cfg["slurm-qos"] == "high"
    bad = tmp_path / "bad.yaml"
    bad.write_text("acount: x\n")
    from topoamorph.errors import InputFileError

    with pytest.raises(InputFileError, match="acount"):
        submit.site_values(bad, environ={})


@pytest.mark.parametrize("profile", ["slurm", "slurm-gpu", "puhti", "lumi", "slurm-local"])
def test_profiles_dry_run(profile, tmp_path):
    """Each profile plans the default campaign (no submission) with per-rule resources that grow on retry."""
    env = {"TOPOAMORPH_SLURM_ACCOUNT": "project_0", "TOPOAMORPH_SITE": str(tmp_path / "none.yaml")}
    p = run([venv_tool("topoamorph"), "submit", ROOT / "profiles" / profile, "--directory", tmp_path, "-n",
             "--", "--snakefile", ROOT / "workflow" / "Snakefile"], cwd=tmp_path, env=env, timeout=300)
    out = p.stdout + p.stderr
    assert "melt_quench" in out and "homology" in out
    assert "tasks=" in out and "slurm_account=project_0" in out
