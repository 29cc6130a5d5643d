"""End-to-end: the real Snakemake workflow on a small campaign, then the rerun rules and config errors."""

import json
import re
import shutil

import h5py
import numpy as np
import pytest
import yaml

from conftest import ROOT, local_snakemake_env, snakemake

pytestmark = pytest.mark.workflow
TINY = ROOT / "tests" / "data" / "tiny.yaml"
MODELS = ("ridge", "cnn", "mean", "density", "soap", "rdf")


def assert_same_outputs(a, b):
    """Two campaigns' results (a, b: results/<campaign>): structures and diagrams byte for byte, descriptors and
    every model's metrics exactly."""
    for f in sorted((a / "structures").rglob("*.extxyz")) + sorted((a / "diagrams").glob("*.h5")):
        assert f.read_bytes() == (b / f.relative_to(a)).read_bytes(), f
    with h5py.File(a / "dataset" / "descriptors.h5") as ha, h5py.File(b / "dataset" / "descriptors.h5") as hb:
        np.testing.assert_array_equal(ha["X"][()], hb["X"][()])
        np.testing.assert_array_equal(ha["y"][()], hb["y"][()])
    for model in MODELS:
        ma = json.loads((a / "metrics" / f"{model}.json").read_text())
        mb = json.loads((b / "metrics" / f"{model}.json").read_text())
        for part in ("train", "validation", "test"):
            assert ma[part] == mb[part], (model, part)


def job_counts(output: str) -> dict:
    """Parse Snakemake's 'Job stats' table."""
    table = output.split("Job stats:")[1]
    counts = {}
    for line in table.splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    counts.pop("total", None)
    return counts


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    work = tmp_path_factory.mktemp("campaign")
    cfg = work / "tiny.yaml"
    shutil.copy(TINY, cfg)
    p = snakemake(["--cores", "2", "--configfile", cfg], work, timeout=1200)
    return work, cfg, p


def test_workflow_runs_end_to_end(campaign):
    work, cfg, p = campaign
    res = work / "results" / "tiny"
    for model in MODELS:
        m = json.loads((res / "metrics" / f"{model}.json").read_text())
        for part in ("train", "validation", "test"):
            assert set(m[part]) >= {"mae_mev_per_atom", "rmse_mev_per_atom", "n"}
        assert m["test"]["n"] == 12  # 2 runs x 30 frames, 20% test
        assert m["test"]["mae_mev_per_atom"] > 0
    assert json.loads((res / "metrics" / "cnn.json").read_text())["validation"]["n"] > 0
    # structures: every frame with energy and the promised metadata
    from ase.io import read

    frames = read(res / "structures" / "rho2.00" / "run1.extxyz", ":")
    assert len(frames) == 30
    for key in ("density", "stage", "temperature_K", "time_ps", "run", "seed", "engine"):
        assert key in frames[0].info
    assert {f.info["stage"] for f in frames} == {"hold_9000", "quench1", "hold_5000", "quench2"}
    # homology: 60 frames in batches of 20, computed with 2 MPI ranks
    batches = sorted((res / "diagrams").glob("batch*.h5"))
    assert len(batches) == 3
    assert "on 2 rank(s)" in (res / "logs" / "homology" / "batch0000.log").read_text()
    with h5py.File(res / "dataset" / "descriptors.h5") as h:
        assert h["X"].shape == (60, 3, 16, 16) and h.attrs["y_units"] == "eV/atom"
        y = h["y"][()]
    np.testing.assert_allclose(y[0], frames[0].get_potential_energy() / 64)
    for name in (
        "metrics.md",
        "parity.png",
        "diagrams.png",
        "ridge_coefficients.png",
        "energy_density.png",
        "structure.png",
        "structure.csv",
        "learning_curve.png",
        "per_density.png",
        "explanations.png",
        "explanations.csv",
    ):
        assert (res / "report" / name).stat().st_size > 0
    curve = json.loads((res / "metrics" / "learning_curve.json").read_text())
    assert set(curve["models"]) == {"ridge", "soap", "rdf", "density"}
    assert [r["n_train"] for r in curve["models"]["ridge"]][-1] == 43  # 60 - 12 test - 5 validation
    # the models learn something: better than predicting the mean
    mean = json.loads((res / "metrics" / "mean.json").read_text())["test"]["mae_mev_per_atom"]
    ridge = json.loads((res / "metrics" / "ridge.json").read_text())["test"]["mae_mev_per_atom"]
    assert ridge < mean
    # every model is a self-contained file with a calibrated uncertainty, and `topoamorph predict` on the test
    # frames gives exactly the workflow's predictions
    from topoamorph.formats.predictions import read_applied
    from topoamorph.provenance import skip_comments

    from conftest import BIN, run

    for model in MODELS:
        cal = json.loads((res / "metrics" / f"{model}.json").read_text())["calibration"]
        assert cal["test"]["n"] == 12 and cal["test"]["within_2sigma"] is not None
    for model, ext in (("ridge", "npz"), ("cnn", "pt"), ("soap", "npz")):
        import csv

        rows = [
            r for r in csv.DictReader(skip_comments(open(res / "predictions" / f"{model}.csv"))) if r["part"] == "test"
        ]
        out = work / f"predict_{model}.csv"
        specs = sorted({r["source"] for r in rows})
        run([BIN / "topoamorph", "predict", res / "models" / f"{model}.{ext}", *specs, "--output", out], cwd=work)
        got = read_applied(out)
        by = {(s, f): e for s, f, e in zip(got["source"], got["frame"], got["energy_per_atom_ev"])}
        # SOAP features are recomputed by predict: dscribe's sums depend on its thread count (~2e-10 in the features)
        np.testing.assert_allclose(
            [by[(r["source"], int(r["frame"]))] for r in rows],
            [float(r["y_pred_ev_per_atom"]) for r in rows],
            rtol=0,
            atol=1e-8 if model == "soap" else 1e-10,
        )
    assert "Best on the test part" in (res / "report" / "metrics.md").read_text().splitlines()[0]
    assert "Regime:" in (res / "report" / "metrics.md").read_text()
    # nothing left to do
    again = snakemake(["-n", "--cores", "2", "--configfile", cfg], work)
    assert "Nothing to be done" in again.stdout + again.stderr


def edited(work, cfg, name, change):
    c = yaml.safe_load(cfg.read_text())
    change(c)
    out = work / name
    out.write_text(yaml.safe_dump(c))
    return out


def test_changing_cnn_epochs_reruns_only_training_and_report(campaign):
    work, cfg, _ = campaign
    new = edited(work, cfg, "epochs.yaml", lambda c: c["train"]["cnn"].update(epochs=7))
    p = snakemake(["-n", "--cores", "2", "--configfile", new], work)
    assert set(job_counts(p.stdout)) == {"train_cnn", "merge_metrics", "report", "all"}


def test_changing_homology_reruns_homology_and_after_never_md(campaign):
    work, cfg, _ = campaign
    new = edited(work, cfg, "homology.yaml", lambda c: c["homology"].update(precision="exact"))
    counts = job_counts(snakemake(["-n", "--cores", "2", "--configfile", new], work).stdout)
    assert "melt_quench" not in counts
    assert counts["homology"] == 3 and {"descriptors", "split", "train_ridge", "train_cnn", "report"} <= set(counts)


def test_adding_a_density_runs_only_its_md(campaign):
    work, cfg, _ = campaign
    new = edited(work, cfg, "density.yaml", lambda c: c["structures"].update(densities=[2.0, 3.0, 3.5]))
    counts = job_counts(snakemake(["-n", "--cores", "2", "--configfile", new], work).stdout)
    assert counts["melt_quench"] == 1


def test_bad_config_stops_the_dry_run_naming_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"structures": {"densities": [2.0, "dense"]}}))
    p = snakemake(["-n", "--configfile", bad], tmp_path, check=False)
    assert p.returncode != 0
    assert "structures.densities.1" in p.stdout + p.stderr
    assert not (tmp_path / "results").exists()


def test_default_campaign_dry_run_shows_the_dag(tmp_path):
    p = snakemake(["-n", "--cores", "2"], tmp_path)
    counts = job_counts(p.stdout)
    assert counts["melt_quench"] == 10 and counts["homology"] == 4 and counts["train_cnn"] == 1


def test_rips_backend_options_reach_the_homology_jobs(tmp_path):
    cfg = tmp_path / "rips.yaml"
    cfg.write_text(
        yaml.safe_dump({"homology": {"backend": "rips", "rips_threshold": 4.0}, "descriptors": {"range": [0.0, 5.0]}})
    )
    p = snakemake(["-n", "-p", "--configfile", cfg], tmp_path)
    assert "--backend rips" in p.stdout and "--threshold 4.0" in p.stdout and "--precision" not in p.stdout


def test_keep_simplices_reaches_the_homology_jobs_only_when_on(tmp_path):
    """homology.keep_simplices: true adds --keep-simplices; off (the default), the command line is unchanged so
    existing campaigns do not rerun."""
    cfg = tmp_path / "keep.yaml"
    cfg.write_text(yaml.safe_dump({"homology": {"keep_simplices": True}}))
    assert "--keep-simplices" in snakemake(["-n", "-p", "--configfile", cfg], tmp_path).stdout
    assert "--keep-simplices" not in snakemake(["-n", "-p"], tmp_path).stdout


def test_paper_campaign_dry_run_counts(tmp_path):
    from topoamorph import config, plan

    cfg = config.load(ROOT / "config" / "paper.yaml", defaults=ROOT / "config" / "config.yaml")
    assert plan.schedule(cfg["structures"]["protocol"]).frames == 255
    assert len(plan.runs(cfg)) * 255 == 16830
    counts = job_counts(snakemake(["-n", "--configfile", ROOT / "config" / "paper.yaml"], tmp_path).stdout)
    assert counts["melt_quench"] == 66 and counts["homology"] == 9  # 2,040 frames per batch (docs/scale.md)


def test_relabel_adds_one_job_per_run_and_homology_reads_the_labels(tmp_path):
    cfg = tmp_path / "relabel.yaml"
    cfg.write_text(yaml.safe_dump({"relabel": {"engine": {"name": "gpaw", "mpi_ranks": 4}}}))
    p = snakemake(["-n", "-p", "--configfile", cfg], tmp_path)
    counts = job_counts(p.stdout)
    assert counts["relabel"] == counts["melt_quench"] == 10
    assert "results/demo/labels/rho1.50/run1.extxyz" in p.stdout
    assert "-n 4 env GPAW_MPI_BACKEND=cgpaw topoamorph relabel" in p.stdout
    homology = p.stdout.split("topoamorph homology")[1].split("--output")[0]
    assert "/labels/" in homology and "/structures/" not in homology


def test_every_output_carries_provenance(campaign):
    """Config hash, versions, git commit, engine and version, seed: in JSON, HDF5, CSV, PNG, npz, pt, extxyz."""
    import torch
    from PIL import Image

    from topoamorph import config as tconfig
    from topoamorph.provenance import config_hash

    work, cfg, _ = campaign
    res = work / "results" / "tiny"
    full = tconfig.canonical(tconfig.load(cfg, defaults=ROOT / "config" / "config.yaml"))
    want = config_hash(full)

    def check(prov, what):
        camp = prov["campaign"]
        assert camp["config_hash"] == want and camp["seed"] == full["seed"], what
        assert camp["engine"] == "lammps" and camp["engine_version"].startswith("lammps "), what
        assert prov["packages"]["numpy"] and "git_commit" in prov, what

    for f in list((res / "metrics").glob("*.json")) + [res / "dataset" / "split.json"]:
        check(json.loads(f.read_text())["provenance"], f)
    for f in [
        res / "dataset" / "descriptors.h5",
        res / "dataset" / "structure_features.h5",
        *sorted((res / "diagrams").glob("*.h5")),
    ]:
        with h5py.File(f) as h:
            check(json.loads(h.attrs["provenance"]), f)
    for f in list((res / "predictions").glob("*.csv")) + [
        res / "report" / "metrics.csv",
        res / "report" / "structure.csv",
        res / "structures" / "rho2.00" / "run1.trace.csv",
    ]:
        first = f.read_text().splitlines()[0]
        assert first.startswith("# provenance: "), f
        check(json.loads(first[len("# provenance: ") :]), f)
    for f in (res / "report").glob("*.png"):
        check(json.loads(Image.open(f).info["Description"]), f)
    from topoamorph import load_model

    for name in MODELS:
        path = res / "models" / f"{name}.{'pt' if name == 'cnn' else 'npz'}"
        check(load_model(path).header["provenance"], path)
    assert "__header__" in torch.load(res / "models" / "cnn.pt", weights_only=True)  # no pickled code
    assert f"config hash {want}" in (res / "report" / "metrics.md").read_text()
    from ase.io import read

    frame = read(res / "structures" / "rho2.00" / "run1.extxyz", 0)
    assert frame.info["campaign_config_hash"] == want and frame.info["engine"].startswith("lammps ")
    assert "seed" in frame.info and "git_commit" in frame.info


def test_md_jobs_declare_engine_tasks_and_runtime(tmp_path):
    cfg = tmp_path / "gpaw.yaml"
    cfg.write_text(yaml.safe_dump({"structures": {"engine": {"name": "gpaw", "mpi_ranks": 8}}}))
    p = snakemake(["-n", "-p", "--configfile", cfg], tmp_path)
    assert "-n 8 env GPAW_MPI_BACKEND=cgpaw topoamorph melt-quench" in p.stdout
    m = re.search(r"rule melt_quench:.*?resources: ([^\n]*)", p.stdout, re.S)
    assert "tasks=8" in m.group(1) and "runtime=" in m.group(1)


def test_same_config_and_seed_reproduce_every_output(campaign, tmp_path_factory):
    """A second, independent run of the same campaign: identical structures, diagrams, descriptors, metrics."""
    work, cfg, _ = campaign
    other = tmp_path_factory.mktemp("again")
    shutil.copy(cfg, other / "tiny.yaml")
    snakemake(["--cores", "2", "--configfile", other / "tiny.yaml"], other, timeout=1200)
    a, b = work / "results" / "tiny", other / "results" / "tiny"
    assert_same_outputs(a, b)
    assert (a / "predictions" / "cnn.csv").read_text() == (b / "predictions" / "cnn.csv").read_text()
    ca = json.loads((a / "metrics" / "learning_curve.json").read_text())
    cb = json.loads((b / "metrics" / "learning_curve.json").read_text())
    assert ca["models"] == cb["models"]


KILL_STAGES = ("melt_quench", "homology", "descriptors", "structure_features", "train_cnn", "learning_curve", "report")


def test_workflow_killed_in_every_stage_resumes_to_the_same_outputs(campaign, tmp_path_factory):
    """SIGKILL the whole workflow (snakemake and its jobs) once during each stage; after each kill the documented
    resume (`--unlock`, then the same command with `--rerun-incomplete`). The campaign completes and its outputs
    equal the uninterrupted run's: structures and diagrams byte for byte, descriptors and metrics exactly, no
    frame lost or duplicated."""
    import os
    import signal
    import subprocess
    import time

    from conftest import venv_tool

    ref_work, cfg, _ = campaign
    work = tmp_path_factory.mktemp("killed")
    shutil.copy(cfg, work / "tiny.yaml")
    args = ["--cores", "2", "--configfile", work / "tiny.yaml"]
    cmd = [
        str(c)
        for c in (
            venv_tool("snakemake"),
            "--snakefile",
            ROOT / "workflow" / "Snakefile",
            "--directory",
            work,
            *args,
            "--rerun-incomplete",
        )
    ]
    logs = work / "results" / "tiny" / "logs"
    killed = []
    for stage in KILL_STAGES:
        started = time.time()
        # --until: the stage and what it needs, so a sibling stage cannot finish first and be missed
        p = subprocess.Popen(
            cmd + ["--until", stage],
            cwd=work,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=dict(os.environ, **local_snakemake_env()),
        )
        deadline = started + 600
        while p.poll() is None and time.time() < deadline:
            if (logs / stage).is_dir() and any(f.stat().st_mtime >= started for f in (logs / stage).iterdir()):
                break  # a job of this stage is running (its log was just opened)
            time.sleep(0.01)
        if p.poll() is None:
            time.sleep(0.2)
            os.killpg(p.pid, signal.SIGKILL)
            killed.append(stage)
        p.wait()
        snakemake(["--unlock", *args], work)
    assert killed == list(KILL_STAGES), killed
    snakemake([*args, "--rerun-incomplete"], work, timeout=1200)
    a, b = ref_work / "results" / "tiny", work / "results" / "tiny"
    assert_same_outputs(a, b)
    with h5py.File(b / "dataset" / "descriptors.h5") as hb:
        assert len(hb["y"]) == 60 and len(set(zip(hb["meta/source"][()], hb["meta/index"][()]))) == 60
    for name in ("metrics.md", "learning_curve.png", "parity.png"):
        assert (b / "report" / name).stat().st_size > 0


def test_evaluation_files_rerun_only_evaluation_and_report(campaign, tmp_path_factory):
    """`evaluate:` in the config: every model predicts each file after training (a transfer test on a cell
    twice the size of the training cells); adding it runs only the evaluation, the metrics merge and the
    report, and a bad file stops the run at its validation, naming the file and frame."""
    from ase.io import read, write

    src, cfg, _ = campaign
    work = tmp_path_factory.mktemp("evaluate")
    shutil.copytree(src, work, dirs_exist_ok=True, symlinks=True)
    res = work / "results" / "tiny"
    frames = read(res / "structures" / "rho3.00" / "run1.extxyz", "-6:")
    big = frames[-1].repeat((2, 1, 1))
    big.calc = None
    big.info["energy"] = frames[-1].get_potential_energy() * 2
    unlabelled = frames[0].copy()  # no energy: predicted, not scored
    for a in frames[1:-1]:
        a.info["energy"] = a.get_potential_energy()
        a.calc = None
    write(work / "transfer.extxyz", frames[1:-1] + [big, unlabelled], format="extxyz")
    new = edited(
        work, cfg, "evaluate.yaml", lambda c: c.update(evaluate=[{"file": "transfer.extxyz", "name": "transfer"}])
    )
    counts = job_counts(snakemake(["-n", "--cores", "2", "--configfile", new], work).stdout)
    assert counts == {"validate_evaluation": 1, "evaluate": 1, "merge_metrics": 6, "report": 1, "all": 1}
    snakemake(["--cores", "2", "--configfile", new], work)
    for model in MODELS:
        m = json.loads((res / "metrics" / f"{model}.json").read_text())
        ev = m["evaluation"]["transfer"]
        assert ev["n_frames"] == 6 and ev["n_with_reference"] == 5 and ev["n_atoms"] == [64, 128]
        assert ev["all"]["n"] == 5 and ev["out_of_domain_reasons"].get("n_atoms") == 1
        assert m["test"]["n"] == 12  # the training metrics are kept
    table = (res / "report" / "metrics.md").read_text()
    assert "Evaluation: transfer" in table and (res / "report" / "evaluation_transfer.png").stat().st_size > 0
    # a frame of another species in the evaluation file: one line naming the file and frame, before predicting
    bad = frames[1].copy()
    bad.set_chemical_symbols(["Si"] * len(bad))
    write(work / "transfer.extxyz", frames[1:-1] + [bad], format="extxyz")
    p = snakemake(["--cores", "2", "--configfile", new], work, check=False)
    assert p.returncode != 0
    log = (res / "logs" / "validate_evaluation" / "transfer.log").read_text()
    assert "transfer.extxyz, frame 4: species ['Si'] not supported" in log
    # a missing evaluation file stops planning
    gone = edited(work, cfg, "gone.yaml", lambda c: c.update(evaluate=["absent.extxyz"]))
    p = snakemake(["-n", "--configfile", gone], work, check=False)
    assert p.returncode != 0 and "absent.extxyz: file not found" in p.stdout + p.stderr


@pytest.mark.workflow
def test_delta_learning_reruns_only_training_and_adds_the_engine_back(campaign, tmp_path_factory):
    """train.delta with the MD engine itself: the engine's energies of every row are one new job, every model is
    retrained on the correction (zero here: the reference is that engine's energy) and reports the energy, so
    every model is exact; nothing upstream reruns."""
    src, cfg, _ = campaign
    work = tmp_path_factory.mktemp("delta")
    shutil.copytree(src, work, dirs_exist_ok=True, symlinks=True)
    res = work / "results" / "tiny"
    engine = {"name": "lammps", "potential": "tersoff"}
    new = edited(work, cfg, "delta.yaml", lambda c: c["train"].update(delta={"engine": engine}))
    counts = job_counts(snakemake(["-n", "--cores", "2", "--configfile", new], work).stdout)
    assert counts == {
        "delta_energies": 1,
        "train_ridge": 1,
        "train_cnn": 1,
        "train_baselines": 1,
        "learning_curve": 1,
        "merge_metrics": 6,
        "report": 1,
        "all": 1,
    }
    snakemake(["--cores", "2", "--configfile", new], work)
    for model in MODELS:
        m = json.loads((res / "metrics" / f"{model}.json").read_text())
        assert m["hyperparameters"]["delta"]["engine"] == engine, model
        assert m["test"]["mae_mev_per_atom"] < 1.0, (model, m["test"])  # the correction to learn is zero
    from topoamorph import load_model

    ridge = load_model(res / "models" / "ridge.npz")
    assert ridge.delta["engine"] == engine
    frames = str(res / "structures" / "rho3.00" / "run1.extxyz")
    from ase.io import read

    atoms = read(frames, "-3:")
    np.testing.assert_allclose(ridge.predict(atoms), [a.get_potential_energy() / len(a) for a in atoms], atol=1e-3)
