import numpy as np
import pytest

from topoamorph import models
from topoamorph.settings import SplitSettings


def split(meta, test_fraction, seed, by="frame", test_source=None, validation_fraction=0.0):
    return models.split(meta, SplitSettings(test_fraction, by, validation_fraction, test_source), seed)


def synthetic(n=300, seed=0, channels=2, bins=8):
    rng = np.random.default_rng(seed)
    X = rng.random((n, channels, bins, bins)).astype(np.float32) * (rng.random((1, channels, bins, bins)) < 0.3)
    w = rng.normal(size=(channels, bins, bins))
    y = -7.0 + 0.05 * np.tensordot(X, w, axes=3) + rng.normal(0, 0.002, n)
    return X, y


def test_split_by_frame_and_by_run_are_disjoint_and_seeded():
    meta = {"energy": np.zeros(100), "source": np.array([f"run{i // 10}" for i in range(100)], dtype=object)}
    a = split(meta, 0.2, seed=1)
    assert len(a["test"]) == 20 and not set(a["test"]) & set(a["train"])
    assert a == split(meta, 0.2, seed=1) and a["test"] != split(meta, 0.2, seed=2)["test"]
    r = split(meta, 0.2, seed=1, by="run")
    held = {meta["source"][i] for i in r["test"]}
    assert len(held) == 2 and not held & {meta["source"][i] for i in r["train"]}
    with pytest.raises(ValueError, match="training frames"):
        split({"energy": np.zeros(2), "source": np.array(["a", "b"])}, 0.9, 0)


def test_errors_in_mev_per_atom():
    e = models.errors([-7.0, -7.0], [-7.001, -6.997])
    assert e["mae_mev_per_atom"] == pytest.approx(2.0) and e["n"] == 2
    assert e["rmse_mev_per_atom"] == pytest.approx(np.sqrt((1 + 9) / 2))


def test_ridge_matches_scikit_learn_at_the_chosen_alpha_and_learns():
    from sklearn.linear_model import Ridge

    X, y = synthetic()
    m = models.RidgeModel(alpha_min=1e-6, alpha_max=1e2, n_alphas=9, cv_folds=4, seed=0).fit(X[:240], y[:240])
    ref = Ridge(alpha=m.alpha_).fit(X[:240].reshape(240, -1), y[:240])
    np.testing.assert_allclose(m.predict(X[240:]), ref.predict(X[240:].reshape(60, -1)), atol=1e-6)
    mae = np.mean(np.abs(m.predict(X[240:]) - y[240:]))
    assert mae < 0.25 * np.mean(np.abs(y[240:] - y[:240].mean()))


def test_ridge_members_are_refits_at_the_given_alpha():
    from sklearn.linear_model import Ridge

    X, y = synthetic(n=80)
    Xf = X.reshape(80, -1)
    rows = [np.arange(80), np.random.default_rng(0).integers(0, 80, 80)]
    coefs, icpts = models.ridge_members(X, y, 0.1, rows)
    for c, b, r in zip(coefs, icpts, rows):
        ref = Ridge(alpha=0.1).fit(Xf[r], y[r])
        np.testing.assert_allclose(c, ref.coef_, atol=1e-6)  # sklearn solves in float32 for float32 X
        assert b == pytest.approx(ref.intercept_, abs=1e-6)


def test_density_baseline_recovers_a_polynomial():
    rho = np.linspace(1.5, 3.5, 50)
    y = -6 - 0.4 * rho + 0.05 * rho**2
    b = models.DensityBaseline().fit(rho, y)
    assert np.max(np.abs(b.predict(rho) - y)) < 1e-3


def test_cnn_learns_and_is_deterministic_on_cpu(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.random((200, 2, 8, 8)).astype(np.float32)
    # energy from the weight of two regions of the (birth, death) plane, as for real diagrams
    y = -7.0 + 0.05 * X[:, 0, :4, :].sum(axis=(1, 2)) - 0.03 * X[:, 1, 4:, 4:].sum(axis=(1, 2))
    kw = dict(
        epochs=60,
        batch_size=16,
        learning_rate=3e-3,
        channels=(4, 8),
        hidden=16,
        patience=60,
        pool="avg",
        device="cpu",
        seed=5,
    )
    a = models.CNNModel(**kw).fit(X[:160], y[:160])
    b = models.CNNModel(**kw).fit(X[:160], y[:160])
    pa, pb = a.predict(X[160:]), b.predict(X[160:])
    np.testing.assert_array_equal(pa, pb)
    base = np.mean(np.abs(y[160:] - y[:160].mean()))
    assert np.mean(np.abs(pa - y[160:])) < 0.6 * base
    assert a.device_ == "cpu" and 1 <= a.best_epoch_ <= 60 and len(a.validation_index_) == 16
    state = a.state_arrays()
    assert state["x_scale"].shape == (2,) and np.isfinite(state["y_std"]) and any(k.startswith("net.") for k in state)


def test_cnn_validates_every_k_epochs_and_counts_patience_in_epochs():
    rng = np.random.default_rng(2)
    X = rng.random((60, 1, 4, 4)).astype(np.float32)
    y = X[:, 0].sum(axis=(1, 2))
    kw = dict(batch_size=8, channels=(2,), hidden=4, device="cpu", seed=1)
    m = models.CNNModel(epochs=7, patience=100, validate_every=3, **kw).fit(X, y)
    validated = [h["epoch"] for h in m.history_ if h["val_mae_ev"] is not None]
    assert len(m.history_) == 7 and validated == [3, 6, 7] and m.best_epoch_ in validated
    # a frozen net (learning rate 0) never improves after its first validation (epoch 2): patience 3 with
    # validations every 2 epochs stops it at the first validation 3 or more epochs later, epoch 6
    m = models.CNNModel(epochs=40, patience=3, validate_every=2, learning_rate=0.0, **kw).fit(X, y)
    assert (m.best_epoch_, len(m.history_)) == (2, 6)
    one = models.CNNModel(epochs=4, patience=100, **kw).fit(X, y)
    assert all(h["val_mae_ev"] is not None for h in one.history_)


def test_report_metrics_structure():
    y = np.array([-7.0, -6.0, -5.0, -6.5])
    out = models.report_metrics(
        "m", y, y + 0.01, np.array([2.0, 2.0, 3.0, 3.0]), {"train": [0, 1], "test": [2, 3]}, {}, {}
    )
    for part in ("train", "test"):
        assert set(out[part]) == {"mae_mev_per_atom", "rmse_mev_per_atom", "n"}
    assert out["test"]["mae_mev_per_atom"] == pytest.approx(10.0)
    assert set(out["per_density"]["test"]) == {"3.0"}


def test_split_has_a_disjoint_seeded_validation_part():
    meta = {"energy": np.zeros(100), "source": np.array([f"run{i // 10}" for i in range(100)], dtype=object)}
    s = split(meta, 0.2, seed=3, validation_fraction=0.125)
    parts = [set(s[p]) for p in ("train", "validation", "test")]
    assert [len(p) for p in parts] == [70, 10, 20] and set().union(*parts) == set(range(100))
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert s == split(meta, 0.2, seed=3, validation_fraction=0.125)
    r = split(meta, 0.2, seed=3, by="run", validation_fraction=0.125)
    runs = [{meta["source"][i] for i in r[p]} for p in ("train", "validation", "test")]
    assert len(runs[1]) == 1 and not (runs[0] & runs[1] or runs[1] & runs[2])  # whole runs held out
    src = {"energy": np.zeros(10), "source": np.array(["a"] * 6 + ["b"] * 4, dtype=object)}
    f = split(src, 0.0, seed=0, by="source", test_source="b", validation_fraction=0.2)
    assert f["test"] == [6, 7, 8, 9] and len(f["validation"]) == 1 and f["validation"][0] < 6
    assert split(meta, 0.2, seed=3)["validation"] == []


def test_scaled_ridge_ignores_feature_scale_and_constant_columns():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0, 0.0]) + rng.normal(0, 0.01, 200)
    scaled = X * np.array([1e-4, 1.0, 1e3, 1.0, 1.0])
    scaled[:, 4] = 7.0
    a = models.ScaledRidge(seed=0).fit(X[:150], y[:150]).predict(X[150:])
    b = models.ScaledRidge(seed=0).fit(scaled[:150], y[:150]).predict(scaled[150:])
    assert np.mean(np.abs(b - y[150:])) < 0.05
    assert np.mean(np.abs(a - y[150:])) < 0.05


def test_report_metrics_per_density_for_every_part():
    y = np.array([-7.0, -6.0, -5.0, -6.5, -6.0])
    out = models.report_metrics(
        "m",
        y,
        y + 0.002,
        np.array([2.0, 2.0, 3.0, 3.0, 2.5]),
        {"train": [0, 1], "validation": [4], "test": [2, 3]},
        {},
        {},
    )
    assert set(out["per_density"]) == {"train", "validation", "test"}
    assert out["per_density"]["validation"]["2.5"]["mae_mev_per_atom"] == pytest.approx(2.0)
