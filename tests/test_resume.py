"""Checkpoint and resume of melt-quench runs: SIGKILL mid-run, then the same frames as an uninterrupted run."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from ase.io import read

from topoamorph import generate, plan
from topoamorph.formats.checkpoint import Checkpoint, settings_key

from conftest import BIN, ROOT, local_snakemake_env, run, snakemake, venv_tool

STRUCTURES = {
    "element": "C",
    "natoms": 64,
    "lattice": "simple_cubic",
    "rattle_angstrom": 0.05,
    "engine": {"name": "lammps", "potential": "tersoff"},
    "protocol": {
        "timestep_fs": 1.0,
        "thermostat": {"name": "langevin", "friction_per_ps": 20.0},
        "segments": [
            {"name": "heat", "t_start_K": 300, "t_end_K": 9000, "duration_ps": 0.6, "frames": 6},
            {"name": "cool", "t_start_K": 9000, "t_end_K": 300, "duration_ps": 1.8, "frames": 24},
        ],
        "log_every_steps": 300,
        "checkpoint_every_steps": 50,
    },
}


def _cmd(structures, out: Path, checkpoint=None):
    cmd = [
        venv_tool("topoamorph"),
        "melt-quench",
        "--structures",
        json.dumps(structures),
        "--density",
        "2.5",
        "--run",
        "1",
        "--seed",
        "11",
        "--output",
        str(out),
        "--trace",
        str(out.with_suffix(".csv")),
    ]
    return cmd + (["--checkpoint", str(checkpoint)] if checkpoint else [])


def _kill_after_checkpoint(cmd, checkpoint: Path, extra_s: float):
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and p.poll() is None:
        time.sleep(0.02)
    time.sleep(extra_s)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL, "the run finished before it could be killed: lengthen the protocol"


@pytest.mark.parametrize(
    "thermostat, extra_s",
    [
        ({"name": "langevin", "friction_per_ps": 20.0}, 0.7),
        ({"name": "nose_hoover_chain", "tdamp_fs": 50.0}, 0.3),
        ({"name": "bussi", "taut_fs": 50.0}, 0.0),
    ],
)
@pytest.mark.slow
def test_sigkill_mid_run_then_resume_gives_the_uninterrupted_frames(tmp_path, thermostat, extra_s):
    s = json.loads(json.dumps(STRUCTURES))
    s["protocol"]["thermostat"] = thermostat
    full, part, ck = tmp_path / "full.extxyz", tmp_path / "part.extxyz", tmp_path / "ck" / "run1.ckpt.npz"
    run(_cmd(s, full))
    _kill_after_checkpoint(_cmd(s, part, ck), ck, extra_s)
    assert ck.exists() and not part.exists()  # killed: a checkpoint, no output that looks complete
    with np.load(ck) as z:
        killed_at = json.loads(str(z["meta"]))["step"]
    assert 0 < killed_at < plan.schedule(s["protocol"]).total_steps
    p = run(_cmd(s, part, ck))
    assert f"resuming from checkpoint {ck}: step {killed_at}/" in p.stderr
    assert part.read_bytes() == full.read_bytes()  # bitwise the same frames: none lost, none duplicated
    assert part.with_suffix(".csv").read_bytes() == full.with_suffix(".csv").read_bytes()
    assert len(read(part, ":")) == 30
    assert not ck.exists()  # removed once the outputs are written


def test_checkpoint_of_other_settings_or_corrupt_is_not_resumed(tmp_path, caplog):
    s = json.loads(json.dumps(STRUCTURES))
    s["protocol"]["segments"] = [{"name": "heat", "t_start_K": 300, "t_end_K": 3000, "duration_ps": 0.1, "frames": 2}]
    sched = plan.schedule(s["protocol"])
    ck = tmp_path / "ck.npz"
    ref = generate.melt_quench(s, sched, 2.5, 1, 11).frames
    # a checkpoint written by another seed must not leak into this run
    Checkpoint(ck, settings_key(s, 2.5, 1, 99)).save({"positions": np.zeros((64, 3))}, {"step": 50})
    out = generate.melt_quench(s, sched, 2.5, 1, 11, checkpoint=str(ck)).frames
    assert "written for other settings" in caplog.text
    np.testing.assert_array_equal(out[-1].positions, ref[-1].positions)
    ck.write_bytes(b"PK\x03\x04 truncated")
    out = generate.melt_quench(s, sched, 2.5, 1, 11, checkpoint=str(ck)).frames
    assert "unreadable" in caplog.text
    np.testing.assert_array_equal(out[-1].positions, ref[-1].positions)


def test_relabel_with_a_second_engine_keeps_both_energies(tmp_path):
    s = json.loads(json.dumps(STRUCTURES))
    s["protocol"]["segments"] = [{"name": "heat", "t_start_K": 300, "t_end_K": 3000, "duration_ps": 0.05, "frames": 3}]
    frames = generate.melt_quench(s, plan.schedule(s["protocol"]), 2.5, 1, 11).frames
    out = generate.relabel(frames, {"name": "lammps", "potential": "rebo"}, "C")
    assert len(out) == 3
    for md, lab in zip(frames, out):
        assert lab.info["md_energy"] == md.get_potential_energy()
        assert "tersoff" in lab.info["md_engine"] and "rebo" in lab.info["label_engine"]
        assert lab.get_potential_energy() != md.get_potential_energy()
        assert lab.get_forces().shape == (64, 3)
        np.testing.assert_array_equal(lab.positions, md.positions)


@pytest.mark.workflow
def test_workflow_killed_during_md_resumes_after_unlock(tmp_path):
    """SIGKILL snakemake and its MD job mid-trajectory; `--unlock`, then rerun with `--rerun-incomplete`:
    the job resumes from its checkpoint and the frames equal an uninterrupted run's."""
    cfg = {
        "campaign": "kill",
        "structures": {"densities": [2.5], "runs": 1, **{k: STRUCTURES[k] for k in ("natoms", "engine", "protocol")}},
    }
    cfg["structures"]["protocol"] = json.loads(json.dumps(STRUCTURES["protocol"]))
    cfg["structures"]["protocol"]["segments"][1]["duration_ps"] = 3.0
    (tmp_path / "c.yaml").write_text(json.dumps(cfg))
    target = "results/kill/structures/rho2.50/run1.extxyz"
    args = [target, "--cores", "1", "--configfile", "c.yaml"]
    cmd = [venv_tool("snakemake"), "--snakefile", ROOT / "workflow" / "Snakefile", "--directory", tmp_path, *args]
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", **local_snakemake_env())
    p = subprocess.Popen(
        [str(c) for c in cmd],
        cwd=tmp_path,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ck = tmp_path / "results/kill/checkpoints/melt_quench/rho2.50/run1.ckpt.npz"
    deadline = time.time() + 300
    while not ck.exists() and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)
    os.killpg(p.pid, signal.SIGKILL)  # the whole workflow: snakemake and the MD job
    p.wait()
    assert ck.exists() and not (tmp_path / target).exists()
    snakemake(["--unlock", *args], tmp_path)
    snakemake(["--rerun-incomplete", *args], tmp_path, timeout=600)
    log = (tmp_path / "results/kill/logs/melt_quench/rho2.50_run1.log").read_text()
    assert "resuming from checkpoint" in log
    # the uninterrupted reference: the same job's command, run directly
    from topoamorph import config as tconfig

    merged = tconfig.load(tmp_path / "c.yaml", defaults=ROOT / "config" / "config.yaml")
    structures = {
        k: merged["structures"][k] for k in ("element", "natoms", "lattice", "rattle_angstrom", "engine", "protocol")
    }
    seed = plan.runs(merged)[0].seed
    ref = tmp_path / "ref.extxyz"
    from topoamorph import provenance

    camp = json.dumps(plan.campaign_record(tconfig.canonical(merged)), sort_keys=True)  # as the Snakefile sets
    run(
        [
            venv_tool("topoamorph"),
            "melt-quench",
            "--structures",
            json.dumps(structures),
            "--density",
            "2.5",
            "--run",
            "1",
            "--seed",
            str(seed),
            "--output",
            ref,
            "--trace",
            tmp_path / "ref.csv",
        ],
        env={provenance.ENV: camp},
    )
    assert (tmp_path / target).read_bytes() == ref.read_bytes()
