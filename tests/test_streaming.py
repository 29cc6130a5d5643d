"""Paper-scale streaming (issue #17): the dataset read in blocks and shuffled chunk-wise, ridge from a streamed
Gram matrix, the applicability domain from a streamed randomized SVD: the same answers as in memory."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from topoamorph import models, uncertainty
from topoamorph.formats.dataset import Dataset, write_dataset


@pytest.fixture()
def small_dataset(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.random((230, 2, 8, 8)).astype(np.float32)
    y = X.reshape(230, -1) @ rng.random(128) / 50 + 0.01 * rng.random(230)
    meta = {"density": rng.random(230) + 2.0, "n_atoms": np.full(230, 64)}
    path = tmp_path / "ds.h5"
    write_dataset(path, X, y, meta, {"units": "angstrom^2"})
    return path, X, y


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.integers(0, 229), min_size=1, max_size=120, unique=True),
    st.integers(1, 64),
    st.integers(1, 40),
    st.integers(0, 10**6),
)
def test_blocks_and_shuffled_batches_read_exactly_the_rows_asked(tmp_path_factory, rows, max_rows, batch, seed):
    rng = np.random.default_rng(0)
    X = rng.random((230, 2, 8, 8)).astype(np.float32)
    path = tmp_path_factory.mktemp("d") / "ds.h5"
    write_dataset(path, X, np.zeros(230), {"n_atoms": np.full(230, 1)}, {})
    rows = np.array(rows)
    with Dataset(path) as ds:
        got = np.zeros((len(rows), 2, 8, 8), np.float32)
        for pos, block in ds.blocks(rows, max_rows):
            got[pos] = block
        np.testing.assert_array_equal(got, X[rows])
        seen = []
        for r, block in ds.shuffled_batches(rows, batch, np.random.default_rng(seed), buffer_rows=50):
            np.testing.assert_array_equal(block, X[r])
            assert len(r) <= batch
            seen.extend(r.tolist())
        assert sorted(seen) == sorted(rows.tolist())


def test_a_cache_kept_across_epochs_reads_each_chunk_once_and_changes_no_batch(small_dataset):
    path, X, _ = small_dataset
    rows = np.arange(3, 230, 7)
    with Dataset(path) as ds:
        reads = []
        plain_read = ds._read
        ds._read = lambda lo, hi: reads.append((lo, hi)) or plain_read(lo, hi)
        cache, plain, cached = {}, [], []
        for epoch in range(3):
            n_reads = len(reads)
            for r, block in ds.shuffled_batches(rows, 8, np.random.default_rng(epoch), buffer_rows=64):
                plain.append((r, block))
            for r, block in ds.shuffled_batches(rows, 8, np.random.default_rng(epoch), buffer_rows=64, cache=cache):
                cached.append((r, block))
            if epoch:  # only the uncached pass read the file
                assert len(reads) - n_reads == len(cache)
        assert len(cache) == len(np.unique(rows // ds.chunk_rows))
        for (ra, xa), (rb, xb) in zip(plain, cached, strict=True):
            np.testing.assert_array_equal(ra, rb)
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(xb, X[rb])


def test_gram_ridge_equals_the_svd_ridge_and_brute_force_leave_one_out(small_dataset):
    path, X, y = small_dataset
    tr = np.arange(0, 230, 2)
    Xf = X.reshape(230, -1).astype(float)
    with Dataset(path) as ds:
        G = models.gram_matrix(ds, tr, block_rows=37)
        np.testing.assert_allclose(G, Xf[tr] @ Xf[tr].T, rtol=1e-12)
        m = models.RidgeModel(alpha_min=1e-3, alpha_max=1e-3, n_alphas=1, solver="gram").fit_gram(G, y[tr])
        m.set_coef(models.weighted_rows(ds, tr, m.weights_[None], block_rows=29)[0])
        resamples = [np.random.default_rng(k).integers(0, len(tr), len(tr)) for k in range(3)]
        W, offsets = models.gram_members(G, y[tr], 1e-3, resamples)
        coefs = models.weighted_rows(ds, tr, W)
    coef, b = models._ridge_coef(models._ridge_svd(Xf[tr], y[tr]), 1e-3)
    np.testing.assert_allclose(m.predict(Xf), Xf @ coef + b, rtol=1e-6, atol=1e-9)
    loo = []
    for i in range(len(tr)):
        keep = np.arange(len(tr)) != i
        c, bi = models._ridge_coef(models._ridge_svd(Xf[tr][keep], y[tr][keep]), 1e-3)
        loo.append(Xf[tr][i] @ c + bi - y[tr][i])
    assert m.cv_rmse_[0] == pytest.approx(np.sqrt(np.mean(np.square(loo))), rel=1e-6)
    ref_coefs, ref_icpts = models.ridge_members(Xf[tr], y[tr], 1e-3, resamples)
    np.testing.assert_allclose(coefs, ref_coefs, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(offsets, ref_icpts, rtol=1e-6, atol=1e-9)


def test_streamed_domain_equals_the_exact_one(monkeypatch):
    rng = np.random.default_rng(0)
    n, d = 300, 120
    X = rng.standard_normal((n, 6)) @ rng.standard_normal((6, d)) + 0.01 * rng.standard_normal((n, d))
    density, n_atoms = rng.random(n) + 2, np.full(n, 64)
    exact = uncertainty.ApplicabilityDomain(99, 6).fit(X, density, n_atoms)

    def blocks():
        for i in range(0, n, 41):
            yield np.arange(i, min(n, i + 41)), X[i : i + 41]

    monkeypatch.setattr(uncertainty, "EXACT_ELEMENTS", 0)
    streamed = uncertainty.ApplicabilityDomain(99, 6).fit_blocks(blocks, d, density, n_atoms)
    np.testing.assert_allclose(np.abs(exact.basis_ @ streamed.basis_.T), np.eye(6), atol=1e-8)
    assert streamed.distance_threshold_ == pytest.approx(exact.distance_threshold_, rel=1e-8)
    assert streamed.residual_threshold_ == pytest.approx(exact.residual_threshold_, rel=1e-6)


def test_cnn_trains_from_the_dataset_file_deterministically_and_predicts_it_in_blocks(small_dataset):
    path, X, y = small_dataset
    params = dict(epochs=3, batch_size=16, channels=(4,), hidden=8, patience=5)
    val, tr = np.arange(0, 230, 5), np.setdiff1d(np.arange(230), np.arange(0, 230, 5))
    with Dataset(path) as ds:
        a = models.CNNModel(**params, seed=1).fit(ds, y, validation_index=val, train_index=tr)
        b = models.CNNModel(**params, seed=1).fit(ds, y, validation_index=val, train_index=tr)
        pa = a.predict(ds)
        np.testing.assert_array_equal(pa, b.predict(ds))
    np.testing.assert_allclose(pa, a.predict(X), rtol=1e-6)
    assert a.timing_["read_s"] > 0 and a.timing_["step_s"] > 0
    np.testing.assert_array_equal(a.train_index_, tr)
