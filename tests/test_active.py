"""The active-labelling loop (``active:``): the selection rules, one round's ridge and σ, the curve, and the
loop as Snakemake jobs (marker workflow; with GPAW labels on 8-atom cells, marker gpaw)."""

import json

import numpy as np
import pytest
from test_engines import needs_gpaw
from test_workflow import TINY, edited, job_counts

from topoamorph import active, load_model
from topoamorph.settings import ActiveSettings

from conftest import snakemake


def test_initial_rows_are_a_seeded_subset_of_the_pool():
    pool = np.arange(10, 60)
    a, b = active.initial_rows(pool, 12, seed=3), active.initial_rows(pool, 12, seed=3)
    np.testing.assert_array_equal(a, b)
    assert len(set(a)) == 12 and set(a) <= set(pool) and np.all(np.diff(a) > 0)
    assert len(active.initial_rows(pool, 500, seed=3)) == len(pool)


def _synthetic(n=240, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) * 0.05 + rng.normal(0, 0.01, n)
    meta = {"density": np.repeat([2.0, 2.5, 3.0], n // 3), "n_atoms": np.full(n, 64), "run": np.ones(n, int)}
    return X, y, meta


def test_a_round_fits_scores_and_picks_without_the_labelled_or_near_copies():
    X, y, meta = _synthetic()
    pool, va = np.arange(0, 200), np.arange(200, 220)
    labelled = active.initial_rows(pool, 30, seed=1)
    rnd = active.fit_round(X, y, meta, labelled, va, seed=1, domain={"components": 4})
    assert np.all(rnd.sigma > 0) and rnd.spacing > 0
    assert np.mean(np.abs(rnd.pred[220:] - y[220:])) < 0.03  # a linear target, recovered
    picks = active.pick("sigma", rnd, pool, labelled, 10, seed=1, round_index=0)
    assert len(picks) == 10 and not set(picks) & set(labelled) and set(picks) <= set(pool)
    # σ-selection takes the largest σ first; random is seeded by seed and round, and differs between rounds
    rest = np.setdiff1d(pool, labelled)
    assert rnd.sigma[picks[0]] == pytest.approx(rnd.sigma[rest].max())
    r0 = active.pick("random", rnd, pool, labelled, 10, seed=1, round_index=0)
    np.testing.assert_array_equal(r0, active.pick("random", rnd, pool, labelled, 10, seed=1, round_index=0))
    assert not np.array_equal(r0, active.pick("random", rnd, pool, labelled, 10, seed=1, round_index=1))
    assert len(active.pick("all", rnd, pool, labelled, 10, seed=1, round_index=0)) == 0
    # a pool of exact copies of one uncertain frame: one copy, then distinct frames
    Xc = np.vstack([X, np.repeat(X[:1] * 6, 5, axis=0)])
    yc = np.concatenate([y, np.repeat(y[:1], 5)])
    metac = {k: np.concatenate([v, np.repeat(v[:1], 5)]) for k, v in meta.items()}
    poolc = np.concatenate([pool, np.arange(240, 245)])
    rndc = active.fit_round(Xc, yc, metac, labelled, va, seed=1, domain={"components": 4})
    pc = active.pick("sigma", rndc, poolc, labelled, 4, seed=1, round_index=0)
    assert len(set(pc) & set(range(240, 245))) == 1


def test_labels_needed_and_settings():
    rounds = [{"n_labels": n, "test": {"mae_mev_per_atom": m}} for n, m in ((10, 90.0), (20, 70.0), (30, 60.0))]
    assert active.labels_needed(rounds, 70.0) == 20 and active.labels_needed(rounds, 50.0) is None
    s = ActiveSettings.from_config({"label": {"engine": {"name": "mlip"}}, "compare": ["random", "all", "sigma"]})
    assert s.strategies == ("sigma", "random", "all") and s.rounds_of("all") == [0]
    assert s.rounds_of("sigma") == list(range(s.rounds + 1)) and (s.initial, s.per_round) == (20, 20)


ACTIVE = {
    "label": {"engine": {"name": "lammps", "potential": "rebo"}},
    "initial": 6,
    "per_round": 3,
    "rounds": 2,
    "compare": ["random", "all"],
}


@pytest.fixture(scope="module")
def active_campaign(tmp_path_factory):
    work = tmp_path_factory.mktemp("active")
    cfg = edited(work, TINY, "active.yaml", lambda c: c.update(active=ACTIVE))
    return work, cfg


@pytest.mark.workflow
def test_the_loop_is_jobs_and_a_changed_per_round_reruns_only_what_depends_on_it(active_campaign):
    work, cfg = active_campaign
    counts = job_counts(snakemake(["-n", "--cores", "2", "--configfile", cfg], work).stdout)
    # shared sets labelled once; rounds 1..2 of sigma and random, the rest of the pool once for `all`
    assert counts["active_label_set"] == 2 and counts["active_label"] == 2 + 2 + 1
    assert counts["active_round"] == 3 + 3 + 1 and counts["active_curve"] == 1
    snakemake(["--cores", "2", "--configfile", cfg], work, timeout=1200)
    res = work / "results" / "tiny"
    curve = json.loads((res / "active" / "curve.json").read_text())
    sigma = curve["strategies"]["sigma"]
    assert [r["n_labels"] for r in sigma] == [6, 9, 12]
    assert [r["n_labels"] for r in curve["strategies"]["random"]] == [6, 9, 12]
    whole = curve["strategies"]["all"][0]["n_labels"]
    assert whole == len(json.loads((res / "dataset" / "split.json").read_text())["train"])
    assert "rebo" in curve["label_engine"] and (res / "report" / "active.png").stat().st_size > 0
    assert "σ-selected" in (res / "report" / "active.md").read_text()
    # the labels are the label engine's; the picks of round 0 are what round 1 labelled, none labelled twice
    from ase.io import read

    r0 = json.loads((res / "active" / "sigma" / "round0.json").read_text())
    r1 = read(res / "active" / "sigma" / "round1.labels.extxyz", ":")
    assert sorted(int(a.info["row"]) for a in r1) == sorted(r0["picked_rows"])
    assert all("rebo" in a.info["label_engine"] and "tersoff" in a.info["md_engine"] for a in r1)
    assert not set(r0["picked_rows"]) & set(r0["labelled_rows"])
    # every round's model is a model file that predicts
    model = load_model(res / "active" / "sigma" / "round2.model.npz")
    frames = read(res / "structures" / "rho3.00" / "run1.extxyz", "-2:")
    assert np.all(np.isfinite(model.predict_with_uncertainty(frames)[1]))
    # a changed per_round: the rounds and their labels rerun, never the shared labels, MD or the main models
    new = edited(work, cfg, "per_round.yaml", lambda c: c["active"].update(per_round=4))
    counts = job_counts(snakemake(["-n", "--cores", "2", "--configfile", new], work).stdout)
    assert set(counts) == {"active_round", "active_label", "active_curve", "all"}, counts
    assert counts["active_round"] == 6 and counts["active_label"] == 4  # `all` keeps its round


@needs_gpaw
@pytest.mark.workflow
def test_the_loop_with_gpaw_labels_on_eight_atom_cells(tmp_path):
    """The same loop labelled by real DFT (GPAW, PW 250 eV, k 2x2x2) on 8-atom cells: 2 densities x 12 frames."""
    gpaw = {"name": "gpaw", "mode": "pw", "ecut_eV": 250.0, "kpts": [2, 2, 2]}

    def change(c):
        c["structures"].update(natoms=8)
        for seg in c["structures"]["protocol"]["segments"]:
            seg["frames"] = min(seg["frames"], 3)
        c["homology"]["batch_size"] = 30
        c["active"] = {
            "label": {"engine": gpaw, "forces": False},
            "initial": 3,
            "per_round": 2,
            "rounds": 1,
            "compare": ["random"],
        }

    cfg = edited(tmp_path, TINY, "gpaw.yaml", change)
    env = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OPENBLAS_NUM_THREADS": "1"}
    snakemake(["--cores", "2", "--configfile", cfg], tmp_path, env=env, timeout=1800)
    curve = json.loads((tmp_path / "results" / "tiny" / "active" / "curve.json").read_text())
    assert "gpaw" in curve["label_engine"]
    assert [r["n_labels"] for r in curve["strategies"]["sigma"]] == [3, 5]
    assert all(np.isfinite(r["test"]["mae_mev_per_atom"]) for r in curve["strategies"]["random"])
