"""Persistence images: equal to persim's PersistenceImager, HomCloud's weights, both axis conventions."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from topoamorph import config as tconfig
from topoamorph.descriptors import PersistenceHistogram, PersistenceImage, make_vectorizer
from topoamorph.errors import ConfigError
from topoamorph.persistence import PersistenceResult
from topoamorph.stages.descriptors import descriptors

persim = pytest.importorskip("persim")
DEFAULTS = Path(__file__).resolve().parents[1] / "config" / "config.yaml"


def random_diagrams(seed, n_frames=5, k=300):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_frames):
        b = rng.uniform(0.0, 3.0, k)
        d = b + rng.exponential(0.6, k)
        pd = np.column_stack([b, d])
        pd[:3, 1] = np.inf  # essential classes are never drawn
        out.append({1: pd})
    return out


def persim_images(diagrams, weight_fn, sigma, birth_range, y_range, pixel, skew):
    pim = persim.PersistenceImager(
        birth_range=birth_range,
        pers_range=y_range,
        pixel_size=pixel,
        weight=weight_fn,
        weight_params={},
        kernel_params={"sigma": sigma**2},
    )
    finite = [g[1][np.isfinite(g[1][:, 1])] for g in diagrams]
    return np.array(pim.transform(finite, skew=skew)), pim.resolution


@pytest.mark.parametrize("axes", ["birth_death", "birth_persistence"])
@pytest.mark.parametrize("weight", ["none", "linear", "atan"])
def test_equal_to_persim(axes, weight):
    dg = random_diagrams(1)
    vec = PersistenceImage(
        dims=(1,),
        bins=40,
        range=(0.0, 4.0),
        sigma=0.08,
        weight=weight,
        weight_a=0.5,
        weight_c=2.0,
        weight_p=1.5,
        normalize="none",
        axes=axes,
    ).fit()
    X = vec.images(dg)
    skew = axes == "birth_persistence"

    def pers(b, y):  # persim hands the weight (birth, y): y is persistence when skewed, else death
        return y if skew else y - b

    fn = {
        "none": lambda b, y: np.ones_like(y),
        "linear": lambda b, y: 0.5 * pers(b, y),
        "atan": lambda b, y: np.arctan(2.0 * np.abs(pers(b, y)) ** 1.5),
    }[weight]
    ref, res = persim_images(dg, fn, 0.08, (0.0, 4.0), (0.0, 4.0), 0.1, skew)
    assert res == (40, 40)
    assert np.abs(ref).max() > 0.1
    np.testing.assert_allclose(X[:, 0], ref, rtol=0, atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    sigma=st.floats(0.02, 0.5),
    lo=st.floats(0.0, 1.0),
    width=st.floats(1.0, 5.0),
    bins=st.integers(3, 30),
)
def test_equal_to_persim_for_any_grid(seed, sigma, lo, width, bins):
    dg = random_diagrams(seed, n_frames=2, k=40)
    hi = lo + width
    vec = PersistenceImage(
        dims=(1,),
        bins=bins,
        range=(lo, hi),
        sigma=sigma,
        weight="atan",
        normalize="none",
        axes="birth_persistence",
        persistence_range=(0.0, width),
    ).fit()
    pixel = width / bins
    ref, res = persim_images(dg, lambda b, p: np.arctan(np.abs(p)), sigma, (lo, hi), (0.0, width), pixel, True)
    if res != (bins, bins):  # persim rounds the pixel count up when the range is not a whole number of pixels
        return
    np.testing.assert_allclose(vec.images(dg)[:, 0], ref, rtol=0, atol=1e-10)


def test_mass_weights_and_normalisation():
    # a narrow Gaussian well inside the grid puts its whole weight into the image
    dg = {0: np.array([[0.0, 1.0], [0.0, np.inf]]), 1: np.array([[1.0, 2.0], [1.5, 3.5]]), 2: np.zeros((0, 2))}
    img = PersistenceImage(dims=(0, 1, 2), bins=50, range=(-1.0, 5.0), sigma=0.05, normalize="per_atom")
    X = img.fit().images([PersistenceResult(dg, n_atoms=10)])
    np.testing.assert_allclose(X[0].sum(axis=(1, 2)), [0.1, 0.2, 0.0], atol=1e-9)
    lin = (
        PersistenceImage(
            dims=(1,), bins=50, range=(-1.0, 5.0), sigma=0.05, weight="linear", weight_a=2.0, normalize="none"
        )
        .fit()
        .images([dg])
    )
    np.testing.assert_allclose(lin.sum(), 2.0 * (1.0 + 2.0), atol=1e-9)
    # the image's peak sits in the pixel of the pair
    peak = np.unravel_index(np.argmax(X[0, 1]), X[0, 1].shape)
    edges = img.x_edges_
    assert edges[peak[0]] <= 1.5 < edges[peak[0] + 1] and edges[peak[1]] <= 3.5 < edges[peak[1] + 1]
    with pytest.raises(ValueError, match="n_atoms"):
        img.transform([dg])


def test_vectorisers_are_scikit_learn_transformers():
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline

    from topoamorph import homology

    from conftest import random_cell

    frames = [random_cell(24 + 4 * i, 2.0 + 0.2 * i, seed=i) for i in range(6)]
    results = [homology.compute(a) for a in frames]
    assert all(r.n_atoms == len(a) and r.units.startswith("angstrom^2") for r, a in zip(results, frames))
    y = np.linspace(-7.0, -6.0, len(frames))
    for vec in (PersistenceImage(bins=8), PersistenceHistogram(bins=8)):
        with pytest.raises(NotFittedError):
            clone(vec).transform(results)
        pipe = make_pipeline(clone(vec), Ridge(alpha=1e-3)).fit(results, y)
        assert pipe.predict(results).shape == (len(frames),)
        X = clone(vec).fit(results).transform(results)
        assert X.shape == (len(frames), 3 * 8 * 8) and len(vec.fit().get_feature_names_out()) == X.shape[1]
        np.testing.assert_array_equal(X, vec.images(results).reshape(len(frames), -1))


def test_histogram_on_birth_persistence_axes():
    dg = {1: np.array([[1.0, 2.5], [0.2, 0.6]])}
    h = (
        PersistenceHistogram(
            dims=(1,),
            bins=4,
            range=(0.0, 4.0),
            axes="birth_persistence",
            persistence_range=(0.0, 2.0),
            normalize="none",
        )
        .fit()
        .images([dg])
    )
    assert h.sum() == 2
    assert h[0, 0, 1, 3] == 1  # birth 1.0 in [1, 2), persistence 1.5 in [1.5, 2.0]
    assert h[0, 0, 0, 0] == 1  # birth 0.2, persistence 0.4 in [0, 0.5)
    assert h.shape == (1, 1, 4, 4)


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="weight"):
        PersistenceImage(weight="gauss").fit()
    with pytest.raises(ValueError, match="sigma"):
        PersistenceImage(sigma=0).fit()
    with pytest.raises(ValueError, match="axes"):
        PersistenceHistogram(axes="death_birth").fit()
    with pytest.raises(ValueError, match="persistence_range"):
        PersistenceHistogram(axes="birth_persistence", persistence_range=(1.0, 0.5)).fit()


def test_config_selects_the_vectoriser():
    cfg = tconfig.load(
        defaults=DEFAULTS,
        overrides={
            "descriptors": {
                "kind": "image",
                "sigma": 0.1,
                "weight": "atan",
                "weight_c": 0.5,
                "axes": "birth_persistence",
            }
        },
    )
    vec = make_vectorizer(cfg["descriptors"])
    assert isinstance(vec, PersistenceImage) and vec.weight == "atan" and vec.weight_c == 0.5
    assert isinstance(make_vectorizer(tconfig.load(defaults=DEFAULTS)["descriptors"]), PersistenceImage)
    hist = tconfig.load(defaults=DEFAULTS, overrides={"descriptors": {"kind": "histogram"}})["descriptors"]
    assert isinstance(make_vectorizer(hist), PersistenceHistogram)  # the image-only keys are ignored there
    with pytest.raises(ConfigError, match="descriptors.weight"):
        tconfig.load(defaults=DEFAULTS, overrides={"descriptors": {"kind": "image", "weight": "gauss"}})
    with pytest.raises(ConfigError, match="descriptors.persistence_range"):
        tconfig.load(defaults=DEFAULTS, overrides={"descriptors": {"persistence_range": [2.0, 1.0]}})


def test_image_dataset(tmp_path):
    from test_store_descriptors import record  # noqa: F401  (fixture helpers)

    from topoamorph import homology
    from topoamorph.formats.dataset import Dataset
    from topoamorph.formats.diagrams import write_diagrams

    from conftest import random_cell

    recs = []
    for i, (n, rho) in enumerate([(40, 2.0), (64, 3.0)]):
        atoms = random_cell(n, rho, seed=i)
        recs.append(record(i, atoms, homology.compute(atoms)))
    path = tmp_path / "b.h5"
    write_diagrams(path, recs, "alpha", 2, homology.UNITS["alpha"], {})
    params = {
        "kind": "image",
        "dims": [1, 2],
        "bins": 16,
        "range": [0.0, 8.0],
        "sigma": 0.2,
        "weight": "atan",
        "axes": "birth_persistence",
    }
    descriptors(diagrams=[str(path)], dataset=str(tmp_path / "ds.h5"), descriptors=params)
    with Dataset(tmp_path / "ds.h5") as ds:
        assert ds.attrs["kind"] == "image" and ds.attrs["axes"] == "birth_persistence"
        assert ds.X.shape == (2, 2, 16, 16)
        assert list(ds.attrs["y_range"]) == [0.0, 8.0]
        assert np.all(ds.rows([0, 1]) >= 0) and ds.rows([1]).sum() > 0
