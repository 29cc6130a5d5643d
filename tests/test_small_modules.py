import json
import logging

import numpy as np
import pytest
from ase.build import bulk

from topoamorph import cli, logs, provenance, report, units
from topoamorph.io import atomic_path, read_json, write_json
from topoamorph.paths import CampaignPaths

from conftest import ROOT


def test_units_round_trip_and_diamond_density():
    v = units.volume_for_density("C", 216, 2.5)
    assert v == pytest.approx(216 * 12.011 / (2.5 * 0.602214076), rel=1e-4)
    assert units.density_of(bulk("C", "diamond", a=3.567, cubic=True)) == pytest.approx(3.51, abs=0.01)


def test_paths_are_patterns_without_arguments():
    p = CampaignPaths("demo")
    assert p.structures() == "results/demo/structures/rho{density}/run{run}.extxyz"
    assert p.structures(1.5, 2) == "results/demo/structures/rho1.50/run2.extxyz"
    assert p.diagrams("0003") == "results/demo/diagrams/batch0003.h5"
    assert p.metrics("cnn") == "results/demo/metrics/cnn.json"
    assert p.log("homology", "batch0001") == "results/demo/logs/homology/batch0001.log"


def test_atomic_writes_leave_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("killed")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    write_json(target, {"a": np.float64(1.5), "b": np.arange(2)})
    assert read_json(target) == {"a": 1.5, "b": [0, 1]}


def test_provenance_records_versions_and_hash():
    r = provenance.record({"x": 1}, seed=3)
    assert r["seed"] == 3 and len(r["config_hash"]) == 16 and "numpy" in r["packages"]
    assert provenance.record({"x": 1})["config_hash"] == r["config_hash"] != provenance.record({"x": 2})["config_hash"]


def test_run_logged_sends_output_and_errors_to_the_log(tmp_path):
    log = tmp_path / "job.log"

    def job():
        logging.getLogger("topoamorph.test").info("hello")
        print("stray print")
        raise ValueError("bad frame 7")

    with pytest.raises(ValueError):
        logs.run_logged(str(log), job)
    text = log.read_text()
    assert "hello" in text and "stray print" in text and "bad frame 7" in text and "Traceback" in text


def test_report_table_and_figures(tmp_path):
    rows = "row,part,y_true_ev_per_atom,y_pred_ev_per_atom,density,stage,n_atoms,source,frame\n"
    rng = np.random.default_rng(0)
    for i in range(20):
        y = -7 + rng.random()
        rows += f"{i},{'test' if i % 5 == 0 else 'train'},{y},{y + 0.01},2.0,quench2,64,a.extxyz,{i}\n"
    (tmp_path / "p.csv").write_text(rows)
    for name, mae in (("ridge", 10.0), ("mean", 300.0)):
        write_json(
            tmp_path / f"{name}.json",
            {
                "train": {"mae_mev_per_atom": mae, "rmse_mev_per_atom": mae, "n": 16},
                "test": {"mae_mev_per_atom": mae, "rmse_mev_per_atom": mae, "n": 4},
            },
        )
    out = report.metrics_table(
        {"mean": tmp_path / "mean.json", "ridge": tmp_path / "ridge.json"}, tmp_path / "m.md", tmp_path / "m.csv"
    )
    assert [r["model"] for r in out] == ["ridge", "mean"]
    assert "| ridge | 10.00 |" in (tmp_path / "m.md").read_text()
    report.parity_plots({"ridge": tmp_path / "p.csv"}, tmp_path / "parity.png", dpi=50)
    assert (tmp_path / "parity.png").read_bytes()[:4] == b"\x89PNG"


def test_reliability_bins_follow_an_informative_sigma_and_collapse_for_a_constant_one(tmp_path):
    rng = np.random.default_rng(3)
    sigma = rng.uniform(0.01, 0.1, 5000)
    errors = rng.normal(0, sigma)
    b = report.reliability_bins(errors, sigma)
    assert len(b["n"]) == 5 and b["n"].sum() == 5000
    np.testing.assert_allclose(b["rms_error"], b["mean_sigma"], rtol=0.1)  # calibrated: on the diagonal
    flat = report.reliability_bins(errors, np.full(5000, 0.05))
    assert np.ptp(flat["mean_sigma"]) == 0  # a constant sigma is one point, whatever its coverage
    rows = "row,part,y_true_ev_per_atom,y_pred_ev_per_atom,y_sigma_ev_per_atom,density,stage,n_atoms,source,frame\n"
    for i in range(40):
        rows += f"{i},test,-7.0,{-7.0 + errors[i]},{sigma[i]},2.0,quench2,64,a.extxyz,{i}\n"
    (tmp_path / "p.csv").write_text(rows)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an empty legend would mean that no model was drawn
        report.calibration_plot({"ridge": tmp_path / "p.csv"}, tmp_path / "calibration.png", dpi=40)
    assert (tmp_path / "calibration.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_validate_and_plan(tmp_path, capsys):
    assert cli.main(["validate-config", "--defaults", str(ROOT / "config" / "config.yaml")]) == 0
    assert cli.main(["plan", "--defaults", str(ROOT / "config" / "config.yaml")]) == 0
    assert "melt-quench runs" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(json.dumps({"homology": {"maxdim": 7}}))
    assert cli.main(["validate-config", str(bad), "--defaults", str(ROOT / "config" / "config.yaml")]) == 2
    assert "homology.maxdim" in capsys.readouterr().err
