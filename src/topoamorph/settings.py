"""Typed, frozen sections of a validated campaign config, and the one file of defaults.

``defaults()`` is the package's ``schemas/defaults.yaml`` (``config/config.yaml`` in the repository is a
link to it): every campaign default is written there once. Library code receives the frozen sections
below (or, for estimators, the scikit-learn object a block describes: ``descriptors.make_vectorizer``,
``models.RidgeModel(**block)``), built from the validated config; the CLI builds the same objects from
its options, taking what an option leaves unset from ``defaults()``. A few defaults cannot be constants
and are derived here, once: a protocol's initial temperature (its first segment's start), an imported
file's test fraction and split seed (``train.split.test_fraction``, the campaign seed).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from dataclasses import dataclass
from importlib import resources

import numpy as np
import yaml

from .errors import ConfigError

DEFAULTS_RESOURCE = "schemas/defaults.yaml"


@functools.lru_cache(maxsize=1)
def _defaults() -> dict:
    return yaml.safe_load(resources.files("topoamorph").joinpath(DEFAULTS_RESOURCE).read_text())


def defaults() -> dict:
    """The default campaign config (a fresh copy: callers may change it)."""
    return copy.deepcopy(_defaults())


def default(*keys):
    """One default value (a fresh copy), e.g. ``default("homology", "rips_threshold")``."""
    value = _defaults()
    for k in keys:
        value = value[k]
    return copy.deepcopy(value)


def deep_merge(base: dict, override: dict) -> dict:
    """Return ``base`` updated by ``override``: mappings merge recursively, anything else replaces.

    A block with a ``name`` (an engine, a thermostat) that names something else than the base's
    replaces it whole: options of the default engine never leak into another engine's block.
    """
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        renamed = (
            isinstance(value, dict)
            and isinstance(out.get(key), dict)
            and "name" in value
            and value["name"] != out[key].get("name")
        )
        if isinstance(value, dict) and isinstance(out.get(key), dict) and not renamed:
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _build(cls, block: dict | None, key: str, base: dict | None = None):
    """``cls`` from ``base`` (default: the section's defaults) merged with ``block`` as config files merge
    (``deep_merge``); unknown keys name the config key."""
    values = deep_merge(base if base is not None else default(key), block or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}", f"unknown key (allowed here: {', '.join(sorted(names))})")
    required = {
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    missing = sorted(required - set(values))
    if missing:
        raise ConfigError(f"{key}.{missing[0]}", "missing (required)")
    return cls(**values)


@dataclass(frozen=True)
class HomologySettings:
    backend: str
    maxdim: int
    rips_threshold: float
    batch_size: int
    mpi_ranks: int
    precision: str
    keep_simplices: bool = False  # overwritten by homology.keep_simplices of the defaults file
    diagram: str = "crystal"  # overwritten by homology.diagram of the defaults file

    def __post_init__(self):
        if self.keep_simplices and self.backend != "alpha":
            raise ConfigError(
                "homology.keep_simplices",
                f"the birth and death simplices exist for the alpha "
                f"filtration only, not for homology.backend: {self.backend}",
            )

    @classmethod
    def from_config(cls, block: dict | None = None) -> HomologySettings:
        return _build(cls, block, "homology")

    def compute_options(self) -> dict:
        """Keyword arguments of ``homology.compute``: what a diagram depends on, and only what the backend uses
        (precision for alpha, threshold for Rips), so that a change to the other backend's setting changes
        nothing."""
        opts = {"backend": self.backend, "maxdim": self.maxdim}
        if self.backend == "rips":
            return dict(opts, threshold=self.rips_threshold)
        return dict(opts, precision=self.precision, diagram=self.diagram)

    @classmethod
    def from_compute_options(cls, options: dict) -> HomologySettings:
        """The settings behind ``compute_options()`` (keys left out take the defaults)."""
        block = {k: v for k, v in options.items() if k != "threshold"}
        if "threshold" in options:
            block["rips_threshold"] = options["threshold"]
        return cls.from_config(block)


@dataclass(frozen=True)
class SplitSettings:
    """The shared split: ``by`` frame (random), run (whole trajectories) or source (imported train/test
    files: ``test_source`` is the test file)."""

    test_fraction: float
    by: str
    validation_fraction: float
    test_source: str | None = None
    duplicates: str = "warn"  # overwritten by train.split.duplicates of the defaults file
    test_densities: tuple | None = None  # by density: the densities held out as the test part

    #: g/cm³: a frame's density is one of ``test_densities`` within this
    DENSITY_MATCH = 1e-3

    def matches(self, density) -> np.ndarray:
        """(len(density), len(test_densities)) mask: which of the ``density`` values (g/cm³) is which test density."""
        d = np.asarray(density, float).reshape(-1, 1)
        return np.abs(d - np.asarray(self.test_densities or (), float).reshape(1, -1)) <= self.DENSITY_MATCH

    def held_out(self, density) -> np.ndarray:
        """Mask of the ``density`` values that a density split holds out as its test part."""
        return self.matches(density).any(axis=1)

    def __post_init__(self):
        if self.by == "density" and not self.test_densities:
            raise ConfigError(
                "train.split.test_densities",
                "split by density needs the densities to hold out, e.g. test_densities: [3.5]",
            )
        if self.test_densities is not None:
            object.__setattr__(self, "test_densities", tuple(float(d) for d in self.test_densities))

    @classmethod
    def from_config(cls, block: dict | None = None) -> SplitSettings:
        return _build(
            cls, block, "train.split", base={**default("train", "split"), "test_source": None, "test_densities": None}
        )


@dataclass(frozen=True)
class ReportSettings:
    example_frames: int
    dpi: int
    structure_frames_per_file: int

    @classmethod
    def from_config(cls, block: dict | None = None) -> ReportSettings:
        return _build(cls, block, "report")


@dataclass(frozen=True)
class ProtocolSettings:
    timestep_fs: float
    thermostat: dict
    segments: tuple
    log_every_steps: int
    trace_every_steps: int
    checkpoint_every_steps: int
    checkpoint_every_s: float
    initial_temperature_K: float

    @classmethod
    def from_config(cls, block: dict | None = None) -> ProtocolSettings:
        base = {**default("structures", "protocol"), "initial_temperature_K": None}
        s = _build(cls, block, "structures.protocol", base=base)
        t0 = s.initial_temperature_K if s.initial_temperature_K is not None else s.segments[0]["t_start_K"]
        return dataclasses.replace(s, segments=tuple(s.segments), initial_temperature_K=float(t0))


@dataclass(frozen=True)
class StructuresSettings:
    element: str
    natoms: int
    lattice: str
    rattle_angstrom: float
    densities: tuple
    runs: int
    engine: dict
    max_job_minutes: int
    protocol: ProtocolSettings

    @classmethod
    def from_config(cls, block: dict | None = None) -> StructuresSettings:
        s = _build(cls, block, "structures")
        return dataclasses.replace(s, densities=tuple(s.densities), protocol=ProtocolSettings.from_config(s.protocol))


@dataclass(frozen=True)
class SourceSettings:
    """Where frames come from: ``generate`` (melt-quench MD) or ``import`` (``train`` + ``test`` files, or
    one ``file`` split with ``test_fraction`` and ``seed``)."""

    kind: str
    energy_key: str
    train: str | None = None
    test: str | None = None
    file: str | None = None
    test_fraction: float | None = None
    seed: int | None = None

    @classmethod
    def from_config(cls, block: dict | None = None) -> SourceSettings:
        return _build(cls, block, "source")

    def files(self) -> dict[str, str]:
        """{role: path}: {'train': A, 'test': B} or {'all': F}; none for generated campaigns."""
        if self.kind != "import":
            return {}
        if self.file:
            return {"all": str(self.file)}
        return {"train": str(self.train), "test": str(self.test)}


@dataclass(frozen=True)
class RelabelSettings:
    engine: dict
    forces: bool = True  # the one default of relabel.forces (the relabel block is absent by default)

    @classmethod
    def from_config(cls, block: dict) -> RelabelSettings:
        return _build(cls, block, "relabel", base={})


@dataclass(frozen=True)
class ActiveSettings:
    """``active``: the active-labelling loop (``topoamorph.active``); absent by default, so its defaults are
    written here, once."""

    label: dict
    initial: int = 20
    per_round: int = 20
    rounds: int = 4
    select: str = "sigma"
    compare: tuple = ("random",)

    @classmethod
    def from_config(cls, block: dict) -> ActiveSettings:
        out = _build(cls, block, "active", base={})
        return dataclasses.replace(out, compare=tuple(out.compare))

    @property
    def strategies(self) -> tuple:
        """The loop's strategy first, then the comparison arms (no duplicate)."""
        return tuple(dict.fromkeys((self.select, *self.compare)))

    def rounds_of(self, strategy: str) -> list[int]:
        """Round indices of a strategy: 0..rounds, or round 0 alone for ``all`` (the whole pool at once)."""
        return [0] if strategy == "all" else list(range(int(self.rounds) + 1))


@dataclass(frozen=True)
class EvaluationFile:
    """One file of ``evaluate``: every trained model predicts its frames (energies optional)."""

    name: str
    file: str
    energy_key: str

    @classmethod
    def from_config(cls, item, energy_key: str) -> EvaluationFile:
        """``item``: a path, or {file, name, energy_key} (name: the file's stem; energy_key: the source's)."""
        from pathlib import PurePath

        from .paths import split_selection

        item = {"file": item} if isinstance(item, str) else dict(item)
        path = split_selection(str(item["file"]))[0]
        return cls(
            name=str(item.get("name") or PurePath(path).name.split(".")[0]),
            file=str(item["file"]),
            energy_key=str(item.get("energy_key") or energy_key),
        )


@dataclass(frozen=True)
class Campaign:
    """The whole validated config as typed sections (the estimator blocks stay mappings: their classes
    take them as keyword arguments)."""

    name: str
    seed: int
    source: SourceSettings
    structures: StructuresSettings
    relabel: RelabelSettings | None
    homology: HomologySettings
    descriptors: dict
    train: dict
    report: ReportSettings
    evaluate: tuple = ()
    active: ActiveSettings | None = None

    @classmethod
    def from_config(cls, cfg: dict) -> Campaign:
        return cls(
            name=cfg["campaign"],
            seed=int(cfg["seed"]),
            source=SourceSettings.from_config(cfg["source"]),
            structures=StructuresSettings.from_config(cfg["structures"]),
            relabel=RelabelSettings.from_config(cfg["relabel"]) if cfg.get("relabel") else None,
            homology=HomologySettings.from_config(cfg["homology"]),
            descriptors=dict(cfg["descriptors"]),
            train=dict(cfg["train"]),
            report=ReportSettings.from_config(cfg["report"]),
            evaluate=tuple(cfg.get("evaluate") or ()),
            active=ActiveSettings.from_config(cfg["active"]) if cfg.get("active") else None,
        )

    @property
    def imported(self) -> bool:
        return self.source.kind == "import"

    @property
    def delta_engine(self) -> dict | None:
        """The engine block of ``train.delta`` (Δ-learning), None when models learn the reference energies."""
        delta = self.train.get("delta")
        return dict(delta["engine"]) if delta else None

    def evaluations(self) -> list[EvaluationFile]:
        """The files of ``evaluate``, each with its name and energy key."""
        return [EvaluationFile.from_config(item, self.source.energy_key) for item in self.evaluate]

    def split(self) -> SplitSettings:
        """The split every model shares: the config's, or for imported data the files' own (train/test) or
        a seeded random one of one file."""
        split = self.train["split"]
        if not self.imported:
            return SplitSettings.from_config(split)
        if self.source.file:
            tf = self.source.test_fraction if self.source.test_fraction is not None else split["test_fraction"]
            return SplitSettings.from_config(
                {
                    "by": "frame",
                    "test_fraction": tf,
                    "duplicates": split["duplicates"],
                    "validation_fraction": split["validation_fraction"],
                }
            )
        return SplitSettings.from_config(
            {
                "by": "source",
                "test_fraction": split["test_fraction"],
                "test_source": self.source.test,
                "duplicates": split["duplicates"],
                "validation_fraction": split["validation_fraction"],
            }
        )

    def split_seed(self) -> int:
        if self.imported and self.source.seed is not None:
            return int(self.source.seed)
        return self.seed
