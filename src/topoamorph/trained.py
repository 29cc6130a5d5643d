"""Trained models as a product: load a model file, apply it to frames it has never seen, with an
uncertainty and an applicability-domain flag.

    model = topoamorph.load_model("results/demo/models/ridge.npz")
    e = model.predict(frames)                          # eV/atom, one per frame (ASE Atoms or a FrameSet)
    e, sigma = model.predict_with_uncertainty(frames)  # calibrated standard deviation, eV/atom
    out = model.apply(frames)                          # + in_domain, reasons, descriptor distance

A model file (``topoamorph.formats.model``) is self-contained: its header says how frames become the
model's inputs (``inputs.kind``: ``persistence`` — homology settings, vectoriser parameters and units;
``soap`` / ``rdf`` — the feature settings; ``density``; ``none``), the species and periodicity it was
trained on, its calibration and domain; its arrays hold the estimator. Estimators (``estimator``):

- ``linear``: y = (x - x_mean) / x_scale · coef + intercept (ridge on images, SOAP, RDF, the density
  polynomial, the mean), with a bootstrap ensemble of (coef, intercept) for the spread;
- ``cnn``: the mean of an ensemble of networks trained from different seeds.

With Δ-learning (``train.delta``; header ``delta``: the engine block) the estimator predicts what an engine
misses (E_reference − E_engine per atom) and every prediction here adds the engine's energy back (forces too, in
``energy_and_forces`` and the ASE calculator): the engine runs on every frame predicted.

The workflow's training stages write their predictions through the same ``predict_inputs``, so applying
a model to a campaign's own frames gives exactly the predictions the workflow wrote.
"""

from __future__ import annotations

import json
import logging

import numpy as np

from .errors import InputFileError
from .formats.frames import frame_energy, parse_spec, read_atoms
from .formats.model import read_model, write_model
from .uncertainty import ApplicabilityDomain, Calibration
from .units import density_of

log = logging.getLogger(__name__)

INPUT_KINDS = ("persistence", "soap", "rdf", "density", "none")
ESTIMATORS = ("linear", "cnn")


class FrameSet:
    """Frames to predict (ASE ``Atoms``) with where each comes from; each model input (diagrams under some
    homology settings, structure features) is computed once and shared by every model applied."""

    def __init__(self, atoms, sources=None, indices=None):
        self.atoms = list(atoms)
        n = len(self.atoms)
        self.sources = [str(s) for s in sources] if sources is not None else ["<atoms>"] * n
        self.indices = [int(i) for i in indices] if indices is not None else list(range(n))
        self._cache: dict = {}
        self._checked: set[int] = set()  # frames whose geometry was checked

    @classmethod
    def read(cls, specs, energy_key: str = "energy") -> FrameSet:
        """Frames of extxyz files, ``path`` or ``path@start:stop``, each checked as the workflow checks evaluation
        files (``importer.check_frame``: cell, periodicity, finite positions, no overlapping atoms, an energy under
        ``energy_key`` finite where there is one; energies not required). A selection without frames is an error."""
        from .importer import check_frame

        atoms, sources, indices = [], [], []
        for spec in [specs] if isinstance(specs, str) else specs:
            path, start, stop = parse_spec(spec)
            images = read_atoms(path, start, stop)
            if not images:
                raise InputFileError(spec, "no frames selected")
            for i, a in enumerate(images, start=start):
                check_frame(a, path, i, energy_key, None, require_energy=False)
            atoms += images
            sources += [path] * len(images)
            indices += range(start, start + len(images))
        fs = cls(atoms, sources, indices)
        fs._checked.update(range(len(fs)))  # check_frame did check's geometry part: not again per model
        return fs

    def __len__(self) -> int:
        return len(self.atoms)

    @property
    def n_atoms(self) -> np.ndarray:
        return np.array([len(a) for a in self.atoms], dtype=np.int64)

    @property
    def density(self) -> np.ndarray:
        return np.array([density_of(a) for a in self.atoms])

    def check(self, species, model_path) -> None:
        """Every frame periodic in 3D, made of ``species`` only, with a cell, finite positions and no overlapping
        atoms (``importer.check_geometry``); else an error naming frame and model. Done once per frame set."""
        from .formats.frames import check_atoms
        from .importer import check_geometry

        allowed = set(species)
        for k, (a, src, i) in enumerate(zip(self.atoms, self.sources, self.indices)):
            if not all(a.pbc):
                raise InputFileError(
                    src,
                    f"frame is not periodic in all three directions; model {model_path} was trained on periodic cells",
                    i,
                )
            unknown = sorted(set(a.get_chemical_symbols()) - allowed)
            if unknown:
                raise InputFileError(
                    src, f"species {unknown} not in model {model_path}, trained on {sorted(allowed)}", i
                )
            if k not in self._checked:
                check_atoms(a, src, i, require_energy=False)
                check_geometry(a, src, i)
                self._checked.add(k)

    def set_persistence(self, homology: dict, results: list) -> None:
        """Diagrams computed elsewhere (e.g. under MPI) for the homology settings ``homology``."""
        if len(results) != len(self):
            raise ValueError(f"{len(results)} diagrams for {len(self)} frames")
        self._cache[("persistence", json.dumps(homology, sort_keys=True))] = list(results)

    def persistence(self, homology: dict) -> list:
        key = ("persistence", json.dumps(homology, sort_keys=True))
        if key not in self._cache:
            from .homology import compute

            out = []
            for a, src, i in zip(self.atoms, self.sources, self.indices):
                try:
                    out.append(compute(a, **homology))
                except Exception as exc:  # noqa: BLE001 - any failure is reported naming the file and frame
                    raise InputFileError(src, f"homology failed ({type(exc).__name__}: {exc})", i) from None
            self._cache[key] = out
        return self._cache[key]

    def features(self, kind: str, params: dict, species) -> np.ndarray:
        key = (kind, json.dumps(params, sort_keys=True), tuple(sorted(species)))
        if key not in self._cache:
            from .baselines import make_featurizer

            self._cache[key] = make_featurizer(kind, params, species).fit().transform(self.atoms)
        return self._cache[key]

    def engine(self, block: dict, element: str, calc=None) -> tuple[np.ndarray, list]:
        """(energy per atom eV/atom, forces eV/Å per frame) of every frame by the engine ``block`` (Δ-learning),
        computed once (``calc``: an existing calculator of that block, e.g. a model's kept one)."""
        key = ("engine", json.dumps(block, sort_keys=True))
        if key not in self._cache:
            self._cache[key] = engine_energies(block, element, self.atoms, self.sources, self.indices, calc=calc)
        return self._cache[key]

    def reference(self, energy_key: str = "energy") -> np.ndarray:
        """Reference energies per atom (eV/atom) under ``energy_key`` (info entry or calculator result);
        NaN for frames without one."""
        out = np.full(len(self), np.nan)
        for k, (a, src, i) in enumerate(zip(self.atoms, self.sources, self.indices)):
            try:
                out[k] = frame_energy(a, energy_key, src, i, required=False) / len(a)
            except InputFileError:  # an energy that is not a finite number: not a reference
                pass
        return out


def engine_energies(
    block: dict,
    element: str,
    atoms,
    sources,
    indices,
    *,
    forces: bool = True,
    workdir=None,
    key: str = "train.delta.engine",
    calc=None,
) -> tuple[np.ndarray, list | None]:
    """(energy per atom (n,) eV/atom, forces (n_i, 3) eV/Å per frame or None) of ``atoms`` by an engine block, one
    calculator for all (``calc``: an existing one); a frame the engine fails on is an error naming it."""
    from . import engines

    if calc is None:
        calc = engines.calculator(block, element, key=key, workdir=workdir, natoms=len(atoms[0]) if len(atoms) else 0)
    energy, out = np.empty(len(atoms)), []
    for k, (a, src, i) in enumerate(zip(atoms, sources, indices)):
        frame = a.copy()  # without the frame's own (stored) results
        frame.calc = calc
        try:
            energy[k] = frame.get_potential_energy() / len(frame)
            if forces:
                out.append(np.asarray(frame.get_forces(), dtype=float))
        except Exception as exc:  # noqa: BLE001 - engines raise many kinds; the frame is what the user needs
            raise InputFileError(src, f"{key} {block.get('name')} failed ({type(exc).__name__}: {exc})", i) from None
        if not np.isfinite(energy[k]):
            raise InputFileError(src, f"{key} {block.get('name')} gave a non-finite energy", i)
    return energy, (out if forces else None)


def as_frameset(frames) -> FrameSet:
    if isinstance(frames, FrameSet):
        return frames
    if hasattr(frames, "get_positions"):  # one Atoms
        return FrameSet([frames])
    return FrameSet(list(frames))


class TrainedModel:
    """A trained model: ``header`` (what it is and how frames become its inputs) and ``arrays``."""

    def __init__(self, header: dict, arrays: dict, path: str | None = None):
        self.path = path or (f"<{header.get('name', 'model')}>" if isinstance(header, dict) else "<model>")
        if not isinstance(header, dict) or not isinstance(header.get("inputs"), dict):
            raise InputFileError(self.path, "model header is not a mapping with 'inputs' (corrupt file)")
        self.header, self.arrays = header, arrays
        if header.get("estimator") not in ESTIMATORS or header["inputs"].get("kind") not in INPUT_KINDS:
            raise InputFileError(
                self.path,
                f"unknown estimator {header.get('estimator')!r} or input kind {header['inputs'].get('kind')!r}",
            )
        self._nets = None
        self._engine_calc = None

    def check_complete(self) -> TrainedModel:
        """Raise InputFileError naming the file when the header lacks what the model needs (homology settings,
        calibration, domain, member count), when an array is missing, not finite, or not shaped as the header and
        the other arrays say (a damaged or hand-edited file)."""
        bad = lambda why: InputFileError(self.path, f"{why} (damaged or edited model file): retrain it")  # noqa: E731
        h = self.header
        if h["inputs"]["kind"] == "persistence" and not isinstance(h["inputs"].get("homology"), dict):
            raise bad("model header has no inputs.homology settings")
        for key in ("calibration", "domain"):
            if not isinstance(h.get(key), dict):
                raise bad(f"model header has no {key}")
        if h["estimator"] == "cnn":
            members = h.get("cnn", {}).get("members") if isinstance(h.get("cnn"), dict) else None
            if not isinstance(members, int) or isinstance(members, bool) or members < 1:
                raise bad(f"model header's cnn.members is {members!r}, not a positive integer")
            need = [f"m{j}.{k}" for j in range(members) for k in ("x_scale", "y_mean", "y_std")]
        else:
            need = ["coef", "intercept"]
        need += ["domain_mean", "domain_basis", "domain_train"]
        delta = self.header.get("delta")
        if delta is not None and not (
            isinstance(delta, dict)
            and isinstance(delta.get("engine"), dict)
            and isinstance(delta["engine"].get("name"), str)
        ):
            raise InputFileError(self.path, "model header's delta is not a mapping with an engine block (corrupt file)")
        missing = [k for k in need if k not in self.arrays]
        if missing:
            raise InputFileError(self.path, f"model file lacks {missing} (damaged or incomplete): retrain it")
        for name, value in self.arrays.items():
            a = np.asarray(value)
            if a.dtype.kind in "fiu" and not np.all(np.isfinite(a)):
                raise bad(f"array {name} holds NaN or infinite values")
        self._check_shapes(bad)
        return self

    def _check_shapes(self, bad) -> None:
        """The linear arrays agree with each other and with the image shape; the domain's with its components."""
        a = self.arrays
        if self.header["estimator"] == "linear":
            n = np.asarray(a["coef"]).reshape(-1).size
            if np.asarray(a["intercept"]).size != 1:
                raise bad("intercept is not one number")
            shape = self.header.get("image_shape")
            if self.inputs["kind"] == "persistence" and shape is not None and int(np.prod(shape)) != n:
                raise bad(f"coef has {n} values, the header's image_shape {shape} has {int(np.prod(shape))}")
            for k in ("x_mean", "x_scale", "members_coef"):
                if k in a and np.asarray(a[k]).shape[-1:] != (n,):
                    raise bad(f"{k} has shape {np.asarray(a[k]).shape}, coef has {n} values")
            if "members_coef" in a and len(np.asarray(a["members_coef"])) != np.asarray(a["members_intercept"]).size:
                raise bad("members_coef and members_intercept have different member counts")
        basis, mean = np.asarray(a["domain_basis"]), np.asarray(a["domain_mean"])
        train = np.asarray(a["domain_train"])
        if basis.ndim != 2 or mean.shape != basis.shape[1:] or train.ndim != 2 or train.shape[1] != basis.shape[0]:
            raise bad(
                f"domain arrays do not fit together (basis {basis.shape}, mean {mean.shape}, train {train.shape})"
            )

    # ---- what the model is
    @property
    def name(self) -> str:
        return self.header["name"]

    @property
    def inputs(self) -> dict:
        return self.header["inputs"]

    @property
    def species(self) -> list[str]:
        return list(self.header["inputs"]["species"])

    @property
    def calibration(self) -> Calibration:
        return Calibration.from_dict(self.header["calibration"]) if "calibration" in self.header else Calibration()

    @property
    def delta(self) -> dict | None:
        """Δ-learning: ``{"engine": block, "described": ...}`` of the engine whose energy every prediction adds to
        the estimator's correction; None for a model of the energy itself."""
        return self.header.get("delta")

    def engine_results(self, fs: FrameSet) -> tuple[np.ndarray, list]:
        """(energy per atom, forces) of the Δ-learning engine on the frames; its calculator is built once per
        model (loading a universal potential takes seconds) and kept."""
        block = self.delta["engine"]
        if self._engine_calc is None:
            from . import engines

            self._engine_calc = engines.calculator(block, self.species[0], key=f"{self.path}: delta.engine")
        return fs.engine(block, self.species[0], calc=self._engine_calc)

    @property
    def domain(self) -> ApplicabilityDomain | None:
        return ApplicabilityDomain.load(self.header["domain"], self.arrays) if "domain" in self.header else None

    def __repr__(self) -> str:
        return (
            f"TrainedModel({self.name!r}, estimator={self.header['estimator']!r}, inputs={self.inputs['kind']!r}, "
            f"members={self.n_members}, path={self.path!r})"
        )

    # ---- inputs
    def check_frames(self, frames) -> FrameSet:
        """The frames as a ``FrameSet``, each periodic and made of the model's species (else an error naming
        the frame and the model)."""
        fs = as_frameset(frames)
        fs.check(self.species, self.path)
        return fs

    def features(self, frames) -> np.ndarray:
        """The model's inputs for ``frames``: images (persistence), feature rows (soap, rdf), densities."""
        fs = self.check_frames(frames)
        kind = self.inputs["kind"]
        if kind == "persistence":
            from .descriptors import make_vectorizer

            results = fs.persistence(self.inputs["homology"])
            units = {r.units for r in results}
            if units and units != {self.inputs["units"]}:
                raise InputFileError(self.path, f"diagrams in {sorted(units)}, model trained on {self.inputs['units']}")
            # the dataset stores descriptors as float32: the model sees exactly what it was trained on
            return make_vectorizer(self.inputs["descriptors"]).fit().images(results).astype(np.float32)
        if kind in ("soap", "rdf"):
            return fs.features(kind, self.inputs["params"], self.species)
        if kind == "density":
            return fs.density
        return np.zeros((len(fs), 0))

    def domain_features(self, X) -> np.ndarray:
        """What the applicability domain measures distances on (flattened descriptors; standardised features
        for soap/rdf; nothing for density and mean, whose domain is the density and atom-count range)."""
        if self.inputs["kind"] in ("density", "none"):
            return np.zeros((len(X), 0))
        return self._standardised(X)

    def _standardised(self, X) -> np.ndarray:
        """Rows flattened to float64, standardised where the model was fitted on standardised features."""
        X = np.asarray(X, dtype=float)
        X = X.reshape(X.shape[0], int(np.prod(X.shape[1:])))
        if "x_mean" in self.arrays:
            X = (X - self.arrays["x_mean"]) / self.arrays["x_scale"]
        return X

    # ---- prediction
    @property
    def n_members(self) -> int:
        if self.header["estimator"] == "cnn":
            return int(self.header["cnn"]["members"])
        return len(self.arrays.get("members_intercept", ()))

    def _linear_inputs(self, X) -> np.ndarray:
        if self.inputs["kind"] == "density":
            from .models import density_features

            X = density_features(X)
        return self._standardised(X)

    def _networks(self):
        if self._nets is None:
            import torch

            from .models import build_cnn

            c = self.header["cnn"]
            self._nets = []
            for j in range(int(c["members"])):
                pre = f"m{j}."
                net = build_cnn(
                    int(c["in_channels"]), int(c["bins"]), tuple(c["channels"]), int(c["hidden"]), c["pool"]
                )
                state = {
                    k[len(pre) + 4 :]: torch.from_numpy(np.array(v))
                    for k, v in self.arrays.items()
                    if k.startswith(pre + "net.")
                }
                try:
                    net.load_state_dict(state)
                except RuntimeError as exc:
                    raise InputFileError(self.path, f"network {j} does not match its architecture ({exc})") from None
                self._nets.append(
                    (
                        net,
                        self.arrays[pre + "x_scale"],
                        float(self.arrays[pre + "y_mean"]),
                        float(self.arrays[pre + "y_std"]),
                    )
                )
        return self._nets

    def predict_inputs(self, X) -> tuple[np.ndarray, np.ndarray]:
        """(prediction, ensemble spread) in eV/atom for model inputs ``X`` (see ``features``)."""
        if self.header["estimator"] == "cnn":
            from .models import cnn_predict

            X = np.asarray(X, dtype=np.float32)
            if not len(X):
                return np.zeros(0), np.zeros(0)
            members = np.array([cnn_predict(net, X, xs, ym, ys) for net, xs, ym, ys in self._networks()])
            spread = members.std(axis=0, ddof=1) if len(members) > 1 else np.zeros(len(X))
            return members.mean(axis=0), spread
        Z = self._linear_inputs(X)
        point = Z @ self.arrays["coef"] + float(self.arrays["intercept"])
        if len(self.arrays.get("members_intercept", ())) > 1:
            members = Z @ self.arrays["members_coef"].T + self.arrays["members_intercept"]
            spread = members.std(axis=1, ddof=1)
        else:
            spread = np.zeros(len(Z))
        return point, spread

    def predict(self, frames) -> np.ndarray:
        """Energy per atom (eV/atom) of each frame (with Δ-learning: the engine's plus the correction)."""
        fs = self.check_frames(frames)
        point = self.predict_inputs(self.features(fs))[0]
        return point + self.engine_results(fs)[0] if self.delta else point

    def predict_with_uncertainty(self, frames) -> tuple[np.ndarray, np.ndarray]:
        """(energy per atom, calibrated standard deviation), both eV/atom; σ grows with the frame's distance from
        the training descriptors (``Calibration``)."""
        out = self.apply(frames)
        return out["energy_per_atom"], out["sigma"]

    def apply(self, frames) -> dict:
        """Prediction, calibrated σ, and the applicability domain of each frame."""
        fs = as_frameset(frames)
        X = self.features(fs)
        point, spread = self.predict_inputs(X)
        out = {"energy_per_atom": point, "n_atoms": fs.n_atoms, "density": fs.density}
        if self.delta:  # the estimator's output is the correction to the engine
            out["engine_energy_per_atom"] = self.engine_results(fs)[0]
            out["correction_per_atom"] = point
            out["energy_per_atom"] = point + out["engine_energy_per_atom"]
        ad = self.domain
        if ad is not None:
            out.update(ad.check(self.domain_features(X), out["density"], out["n_atoms"]))
        else:
            out.update(
                in_domain=np.ones(len(fs), bool),
                reasons=[""] * len(fs),
                descriptor_distance=np.zeros(len(fs)),
                components=np.zeros((len(fs), 0)),
            )
        out["sigma"] = self.calibration.sigma(spread, out["descriptor_distance"])
        return out

    # ---- pairs back to atoms (persistence-image models; topoamorph.potential)
    def energy_and_forces(self, atoms) -> tuple[float, np.ndarray]:
        """(E eV, forces (n, 3) eV/Å) of one structure: analytic derivatives of the prediction through the
        diagram (float64 throughout; see ``topoamorph.potential``)."""
        from .potential import energy_and_forces

        energy, forces, _ = energy_and_forces(self, atoms)
        if self.delta:  # the engine's energy and forces plus the model's correction
            e, f = self.engine_results(FrameSet([atoms]))
            energy, forces = energy + float(e[0]) * len(atoms), forces + f[0]
        return energy, forces

    def explain(self, atoms) -> dict:
        """Per-atom contributions (eV) of one structure and the pairs behind them (``potential.explain``); with
        Δ-learning, of the correction to the engine's energy."""
        from .potential import explain

        return explain(self, atoms)

    # ---- files
    def save(self, path) -> None:
        write_model(path, self.header, self.arrays)


def load_model(path) -> TrainedModel:
    """The model of a model file (``results/<campaign>/models/<name>.npz`` or ``cnn.pt``)."""
    header, arrays = read_model(path)
    return TrainedModel(header, arrays, str(path)).check_complete()
