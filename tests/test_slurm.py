"""A real SLURM: the default campaign submitted with profiles/slurm-local to the single-node cluster of
tools/slurm-local.sh (started and stopped here; installed from apt if missing). Everything is time-bound."""

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, local_snakemake_env, run, snakemake, venv_tool

pytestmark = pytest.mark.slurm
SCRIPT = ROOT / "tools" / "slurm-local.sh"


@pytest.fixture(scope="module")
def slurm():
    if os.geteuid() != 0:
        pytest.skip("the local SLURM cluster needs root (munge, slurmctld, slurmd)")
    installed_before = shutil.which("slurmctld") is not None
    p = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=1200)
    if p.returncode != 0:
        pytest.fail(f"tools/slurm-local.sh start failed:\n{p.stdout}\n{p.stderr}")
    yield
    # leave the machine as found: a SLURM client without a controller slows every later Snakemake start
    action = "stop" if installed_before else "uninstall"
    subprocess.run(["bash", str(SCRIPT), action], capture_output=True, text=True, timeout=700)


def test_default_campaign_runs_as_slurm_jobs(slurm, tmp_path):
    p = run(
        [
            venv_tool("topoamorph"),
            "submit",
            ROOT / "profiles" / "slurm-local",
            "--directory",
            tmp_path,
            "--",
            "--snakefile",
            ROOT / "workflow" / "Snakefile",
        ],
        cwd=tmp_path,
        timeout=1000,
        check=False,
    )
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


def _melt_quench_seconds_per_step(structures) -> float:
    """This machine's cost of one MD step of ``structures`` (engine start-up included, so an over-estimate)."""
    from topoamorph import generate, plan

    s = json.loads(json.dumps(structures))
    s["protocol"]["segments"] = [{"name": "heat", "t_start_K": 300, "t_end_K": 9000, "duration_ps": 3.0, "frames": 1}]
    t = time.perf_counter()
    generate.melt_quench(s, plan.schedule(s["protocol"]), 2.5, 1, 1)
    return (time.perf_counter() - t) / plan.schedule(s["protocol"]).total_steps


def _jobcomp(workdir) -> list[dict]:
    """SLURM's own record (jobcomp/filetxt) of the jobs that ran in ``workdir``, in order."""
    jobs = []
    for line in Path("/var/log/slurm/jobcomp.txt").read_text().splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        if fields.get("WorkDir") == str(workdir):
            jobs.append(fields)
    return sorted(jobs, key=lambda f: int(f["JobId"]))


def test_md_job_at_its_time_limit_is_retried_with_more_time_and_resumes(slurm, tmp_path):
    """A melt-quench job given 1 minute for a ~130 s trajectory: SLURM kills it at its time limit (TIMEOUT), the
    profile's retry asks for 2 minutes (runtime x attempt), and the second job resumes from the checkpoint the
    first one left, so it needs only what was left of the trajectory."""
    structures = {
        "densities": [2.5],
        "runs": 1,
        "natoms": 64,
        "engine": {"name": "lammps", "potential": "tersoff"},
        "protocol": {
            "timestep_fs": 1.0,
            "thermostat": {"name": "langevin", "friction_per_ps": 20.0},
            "segments": [],
            "log_every_steps": 5000,
            "checkpoint_every_steps": 1000000,
            "checkpoint_every_s": 3.0,
        },
    }
    # size the trajectory to this machine: ~130 s of MD, past the 1-minute limit (SLURM checks limits every
    # 30 s, so the kill lands 60-90 s in) and well inside 2 minutes once half of it is done
    steps = int(
        130.0
        / _melt_quench_seconds_per_step(
            {**structures, "element": "C", "lattice": "simple_cubic", "rattle_angstrom": 0.05}
        )
    )
    half_ps = round(steps / 2 / 1000.0, 3)
    structures["protocol"]["segments"] = [
        {"name": "heat", "t_start_K": 300, "t_end_K": 9000, "duration_ps": half_ps, "frames": 4},
        {"name": "quench", "t_start_K": 9000, "t_end_K": 300, "duration_ps": half_ps, "frames": 6},
    ]
    cfg = tmp_path / "timelimit.yaml"
    cfg.write_text(yaml.safe_dump({"campaign": "timelimit", "structures": structures}))
    profile = yaml.safe_load((ROOT / "profiles" / "slurm-local" / "config.yaml").read_text())
    assert profile["retries"] >= 1
    profile["set-resources"]["melt_quench"]["runtime"] = "1 * attempt"  # minutes: 1, then 2
    (tmp_path / "profile").mkdir()
    (tmp_path / "profile" / "config.yaml").write_text(yaml.safe_dump(profile))
    target = "results/timelimit/structures/rho2.50/run1.extxyz"
    p = run(
        [
            venv_tool("topoamorph"),
            "submit",
            tmp_path / "profile",
            "--directory",
            tmp_path,
            "--",
            target,
            "--snakefile",
            ROOT / "workflow" / "Snakefile",
            "--configfile",
            cfg,
        ],
        cwd=tmp_path,
        timeout=900,
        check=False,
    )
    assert p.returncode == 0, f"{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    jobs = _jobcomp(tmp_path)
    assert [(j["JobState"], j["TimeLimit"]) for j in jobs] == [("TIMEOUT", "1"), ("COMPLETED", "2")], jobs
    slurm_log = tmp_path / ".snakemake" / "slurm_logs" / "rule_melt_quench" / "2.50_1" / f"{jobs[0]['JobId']}.log"
    assert "DUE TO TIME LIMIT" in slurm_log.read_text()  # what a user finds when asking why the first job died
    log = (tmp_path / "results" / "timelimit" / "logs" / "melt_quench" / "rho2.50_run1.log").read_text()
    resumed = [line for line in log.splitlines() if "resuming from checkpoint" in line]
    assert len(resumed) == 1, log[-3000:]
    done = int(resumed[0].split("step ")[1].split("/")[0])
    assert done > 0.3 * steps, resumed  # the first job's minute of work was kept, not redone
    from ase.io import read

    frames = read(tmp_path / target, ":")
    assert len(frames) == 10 and [f.info["stage"] for f in frames] == ["heat"] * 4 + ["quench"] * 6
    assert not (
        tmp_path / "results" / "timelimit" / "checkpoints" / "melt_quench" / "rho2.50" / "run1.ckpt.npz"
    ).exists()


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
    empty = tmp_path / "site.yaml"  # a site file without values: this machine's own one is not read
    empty.write_text("")
    env = {"TOPOAMORPH_SLURM_ACCOUNT": "project_0", "TOPOAMORPH_SITE": str(empty)}
    p = run(
        [
            venv_tool("topoamorph"),
            "submit",
            ROOT / "profiles" / profile,
            "--directory",
            tmp_path,
            "-n",
            "--",
            "--snakefile",
            ROOT / "workflow" / "Snakefile",
        ],
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    out = p.stdout + p.stderr
    assert "melt_quench" in out and "homology" in out
    assert "tasks=" in out and "slurm_account=project_0" in out


@pytest.mark.parametrize("profile", ["slurm", "slurm-gpu", "puhti", "lumi", "slurm-local"])
def test_profiles_leave_out_job_arrays_and_ignored_status_pacing(profile):
    """profiles/README.md, "Many jobs": with snakemake-executor-plugin-slurm 2.8.0, array tasks check the first
    job's outputs and MPI array tasks all run the first job's command (measured on the real cluster), and
    --seconds-between-status-checks is overridden by the plugin's own interval. squeue polling only where there
    is no accounting database (it waits forever for a job that leaves the queue unseen)."""
    cfg = yaml.safe_load((ROOT / "profiles" / profile / "config.yaml").read_text())
    assert not {"slurm-array-jobs", "slurm-array-limit", "seconds-between-status-checks"} & set(cfg), cfg
    assert cfg.get("slurm-status-command") == ("squeue" if profile == "slurm-local" else None)


def _unanswered_slurm_conf(tmp_path) -> Path:
    """A client config whose controller port nobody listens on: a machine with the SLURM client installed and
    its controller stopped, as scontrol sees it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = tmp_path / "slurm.conf"
    conf.write_text(f"ClusterName=gone\nSlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort={port}\n")
    return conf


def _seconds(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def test_local_snakemake_does_not_wait_for_an_unanswered_slurm_controller(tmp_path, monkeypatch):
    """Issue #15: snakemake-executor-plugin-slurm runs `scontrol show config` (10 s timeout) when Snakemake imports
    it, at every start, whatever the executor. Local runs outside an allocation (the tests' snakemake() helper,
    the Makefile's local targets) give scontrol an empty config, on which it fails at once; inside an allocation
    they keep the real one (srun launchers need it); submission never goes through them."""
    if shutil.which("scontrol") is None:
        pytest.skip("no SLURM client installed")
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setenv("SLURM_CONF", str(_unanswered_slurm_conf(tmp_path)))
    probe, probe_s = _seconds(
        lambda: subprocess.run(["scontrol", "show", "config"], check=False, capture_output=True, timeout=120)
    )
    assert probe.returncode != 0
    local_env = dict(os.environ, **local_snakemake_env())
    fast, fast_s = _seconds(
        lambda: subprocess.run(
            ["scontrol", "show", "config"], check=False, capture_output=True, env=local_env, timeout=120
        )
    )
    assert fast.returncode != 0 and fast_s < 0.05 * probe_s, (fast_s, probe_s)
    # without the empty config, a dry-run takes the probe plus the planning
    p, dry_s = _seconds(lambda: snakemake(["-n", "--cores", "1"], tmp_path, timeout=300))
    assert "melt_quench" in p.stdout
    assert dry_s < probe_s, (dry_s, probe_s)
    monkeypatch.setenv("SLURM_JOB_ID", "1")
    assert "SLURM_CONF" not in local_snakemake_env()
    # the Makefile: every target that runs Snakemake locally, and none inside an allocation
    targets = ["campaign", "dry-run", "dag", "rulegraph", "report"]
    for job_id, expected in ((None, True), ("1", False)):
        env = {k: v for k, v in os.environ.items() if k != "SLURM_JOB_ID"}
        env.update({"SLURM_JOB_ID": job_id} if job_id else {})
        lines = subprocess.run(
            ["make", "-n", "-C", ROOT, *targets], capture_output=True, text=True, env=env, timeout=60, check=True
        ).stdout.splitlines()
        calls = [line for line in lines if "/snakemake " in line]
        assert len(calls) == len(targets), lines
        assert all(("SLURM_CONF=/dev/null " in line) == expected for line in calls), calls
