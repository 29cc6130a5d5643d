"""Calibration of ensemble spreads, coverage, the applicability domain, and the crystal-like environment
check behind the report's regime line."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from topoamorph.uncertainty import ApplicabilityDomain, Calibration, bootstrap_indices, coverage


@settings(max_examples=25, deadline=None)
@given(scale=st.floats(0.3, 5.0), floor=st.floats(0.001, 0.05), seed=st.integers(0, 1000))
def test_calibration_recovers_the_scale_and_floor_of_gaussian_errors(scale, floor, seed):
    rng = np.random.default_rng(seed)
    spread = rng.uniform(0.005, 0.05, 4000)
    errors = rng.normal(0, np.sqrt((scale * spread) ** 2 + floor**2))
    cal = Calibration.fit(spread, errors)
    sigma = cal.sigma(spread)
    cov = coverage(errors, sigma)
    assert cov["within_1sigma"] == pytest.approx(0.683, abs=0.04)
    assert cov["within_2sigma"] == pytest.approx(0.954, abs=0.03)
    assert np.median(sigma / np.sqrt((scale * spread) ** 2 + floor**2)) == pytest.approx(1.0, abs=0.15)


def test_calibration_without_spread_is_a_constant_and_round_trips():
    errors = np.random.default_rng(0).normal(0, 0.02, 500)
    cal = Calibration.fit(np.zeros(500), errors)
    assert cal.scale == 0 and cal.floor == pytest.approx(0.02, rel=0.1)
    assert Calibration.from_dict(cal.to_dict()) == cal
    assert Calibration.fit(np.ones(1), np.ones(1)).fitted_on == "none"  # too few frames: left uncalibrated
    assert coverage([], []) == {"n": 0, "within_1sigma": None, "within_2sigma": None, "spearman_sigma_abs_error": None}
    # a constant sigma meets coverage and ranks nothing: its rank correlation is undefined, not a number
    assert coverage(errors, cal.sigma(np.zeros(500)))["spearman_sigma_abs_error"] is None


def test_rank_correlation_says_whether_sigma_ranks_the_errors():
    rng = np.random.default_rng(1)
    sigma = rng.uniform(0.01, 0.1, 2000)
    errors = rng.normal(0, sigma)
    informative = coverage(errors, sigma)["spearman_sigma_abs_error"]
    shuffled = coverage(errors, rng.permutation(sigma))["spearman_sigma_abs_error"]
    assert informative > 0.3 and abs(shuffled) < 0.1


def test_bootstrap_indices_are_seeded_resamples():
    a, b = bootstrap_indices(50, 3, seed=1), bootstrap_indices(50, 3, seed=1)
    assert len(a) == 3 and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert all(len(x) == 50 and x.min() >= 0 and x.max() < 50 for x in a)
    assert len(set(a[0].tolist())) < 50  # with replacement


def test_domain_flags_what_lies_outside_the_training_data():
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(8, 40))
    X = rng.normal(size=(300, 8)) @ basis  # descriptors on an 8-dim subspace
    dens, n = rng.uniform(2.0, 3.0, 300), np.full(300, 64)
    ad = ApplicabilityDomain(percentile=99, components=16).fit(X, dens, n)
    assert ad.check(X[:50], dens[:50], n[:50])["in_domain"].all()
    fresh = rng.normal(size=(400, 8)) @ basis  # new frames like the training ones: about 1% flagged
    assert ad.check(fresh, rng.uniform(2.0, 3.0, 400), np.full(400, 64))["in_domain"].mean() > 0.95
    far = X[:3] + 50 * np.abs(X).max()
    out = ad.check(np.vstack([far, X[:3]]), np.r_[dens[:3], [1.0, 3.5, 2.5]], np.r_[[64] * 5, 216])
    assert out["reasons"] == ["descriptor"] * 3 + ["density", "density", "n_atoms"]
    assert not out["in_domain"].any()
    again = ApplicabilityDomain.load(ad.to_header(), ad.to_arrays()).check(X[:5], dens[:5], n[:5])
    assert again["in_domain"].all()
    # a model without a descriptor (mean, density baselines): only the density and atom-count checks
    plain = ApplicabilityDomain().fit(np.zeros((300, 0)), dens, n)
    assert plain.check(np.zeros((2, 0)), [2.5, 9.0], [64, 64])["reasons"] == ["", "density"]


def test_crystal_like_environments_separate_diamond_from_amorphous_carbon():
    from ase.build import bulk

    from topoamorph.structure import crystalline_fraction

    from conftest import random_cell

    diamond = bulk("C", "diamond", cubic=True) * (2, 2, 2)
    diamond.rattle(0.03, seed=1)
    strained = diamond.copy()
    strained.set_cell(diamond.cell * [1.04, 0.97, 1.0], scale_atoms=True)
    graphite_like = bulk("C", "diamond", cubic=True) * (2, 2, 2)
    graphite_like.rattle(0.2, seed=2)  # destroyed order
    assert crystalline_fraction(diamond) == 1.0 and crystalline_fraction(strained) == 1.0
    assert crystalline_fraction(graphite_like) < 0.1
    assert crystalline_fraction(random_cell(64, 2.5, seed=3)) < 0.1


@settings(max_examples=15, deadline=None)
@given(b=st.floats(0.01, 0.5), floor=st.floats(0.005, 0.05), seed=st.integers(0, 1000))
def test_distance_term_is_recovered_from_held_out_errors(b, floor, seed):
    rng = np.random.default_rng(seed)
    reference = 2.0
    distance = rng.uniform(0.5, 8.0, 3000)  # held-out groups: from inside the training cloud to far off it
    excess = np.maximum(0, distance / reference - 1)
    errors = rng.normal(0, np.sqrt(floor**2 + (b * excess) ** 2))
    cal = Calibration(scale=0.0, floor=floor, fitted_on="validation").fit_distance(
        distance, errors, reference, "groups"
    )
    assert cal.distance_scale == pytest.approx(b, rel=0.15)
    sigma = cal.sigma(np.zeros(3000), distance)
    assert coverage(errors, sigma)["within_1sigma"] == pytest.approx(0.683, abs=0.04)
    # inside the training cloud the distance adds nothing; far off it sigma grows linearly
    assert cal.sigma([0.0], [reference])[0] == pytest.approx(floor)
    assert cal.sigma([0.0], [20 * reference])[0] > 10 * b
    assert Calibration.from_dict(cal.to_dict()) == cal


def test_distance_term_vanishes_when_held_out_errors_do_not_grow():
    rng = np.random.default_rng(5)
    distance = rng.uniform(0.5, 8.0, 3000)
    errors = rng.normal(0, 0.03, 3000)  # no growth with distance
    cal = Calibration(scale=0.0, floor=0.03).fit_distance(distance, errors, 2.0, "groups")
    assert cal.distance_scale < 0.003
    assert Calibration(floor=0.03).fit_distance(distance, errors, 0.0, "groups").distance_scale == 0  # no reference
    assert np.array_equal(
        Calibration(floor=0.03).sigma([0.01, 0.02]), Calibration(floor=0.03).sigma([0.01, 0.02], None)
    )


def test_group_refits_agree_between_primal_and_gram_and_groups_follow_densities():
    from topoamorph.models import group_residuals_gram, group_residuals_primal, shift_groups

    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 25))
    y = X @ rng.normal(size=25) + rng.normal(0, 0.1, 60)
    meta = {"density": np.repeat([1.5, 2.0, 2.5, 3.0], 15), "source": np.array(["a"] * 60)}
    what, groups = shift_groups(meta, np.arange(60))
    assert what == "density" and [len(g) for g in groups] == [15] * 4
    primal = group_residuals_primal(X, y, 0.3, groups)
    gram = group_residuals_gram(X @ X.T, y, 0.3, groups)
    for a, b in zip(primal, gram):
        np.testing.assert_allclose(a, b, atol=1e-8)
    two = {"density": np.repeat([1.5, 2.0], 30), "source": np.repeat(["r1", "r2", "r3"], 20)}
    assert shift_groups(two, np.arange(60))[0] == "run"
    assert shift_groups({"density": np.ones(60), "source": np.array(["a"] * 60)}, np.arange(60)) == ("none", [])


def test_many_densities_are_held_out_as_a_few_contiguous_ranges():
    from topoamorph.models import SHIFT_BINS, shift_groups

    dens = np.round(np.random.default_rng(0).uniform(0.5, 3.0, 80), 1)  # continuous, some frames share one
    what, groups = shift_groups({"density": dens, "source": np.array(["a"] * 80)}, np.arange(80))
    assert what == "density" and len(groups) == SHIFT_BINS  # one refit per group: bounded cost
    assert sorted(np.concatenate(groups).tolist()) == list(range(80))
    assert all(dens[a].max() < dens[b].min() for a, b in zip(groups, groups[1:]))  # whole densities, in order


def test_selection_takes_the_most_uncertain_and_skips_near_copies():
    from topoamorph.uncertainty import select_frames

    rng = np.random.default_rng(4)
    coords = rng.normal(size=(50, 3)) * 10
    sigma = rng.uniform(0.01, 0.05, 50)
    # five near-copies of one frame with the largest sigma
    coords = np.vstack([coords, coords[7] + rng.normal(scale=1e-3, size=(5, 3))])
    sigma = np.concatenate([sigma, np.full(5, 0.2)])
    sigma[7] = 0.2
    picked = select_frames(sigma, coords, 6, spacing=1.0)
    assert len(set(picked.tolist())) == 6
    copies = {7, 50, 51, 52, 53, 54}
    assert len(copies & set(picked.tolist())) == 1  # one of the copies, then distinct frames by sigma
    rest = [k for k in np.argsort(-sigma) if k not in copies][:5]
    assert sorted(set(picked.tolist()) - copies) == sorted(rest)
    # without a spacing the rule is sigma alone
    assert set(select_frames(sigma, coords, 6, spacing=0.0).tolist()) == copies
    assert len(select_frames(sigma, coords, 500, spacing=1.0)) == 55  # never more than the pool
