"""Every path of a campaign, built in one place (used by the workflow and the library alike).

Called without arguments, a method returns the Snakemake pattern with ``{wildcards}``.
"""

from __future__ import annotations

from dataclasses import dataclass


def fmt_density(density) -> str:
    """Density as it appears in paths: two decimals, g/cm³ (1.5 -> '1.50')."""
    return f"{float(density):.2f}" if not isinstance(density, str) else density


def split_selection(spec: str) -> tuple[str, str]:
    """``path@start:stop`` -> (``path``, ``start:stop``); ``path`` -> (``path``, ''). A path may itself hold
    ``@`` (``runs@node1/frames.extxyz``): the text after the last ``@`` is a selection where it has the
    selection's ``:`` and no path separator, or where the whole text is not an existing file but the part
    before the ``@`` is (then a malformed selection, for the reader to refuse)."""
    from pathlib import Path

    path, _, sel = str(spec).rpartition("@")
    looks_like_selection = ":" in sel and "/" not in sel
    if path and (looks_like_selection or (Path(path).exists() and not Path(spec).exists())):
        return path, sel
    return str(spec), ""


@dataclass(frozen=True)
class CampaignPaths:
    campaign: str
    root: str = "results"

    @property
    def base(self) -> str:
        return f"{self.root}/{self.campaign}"

    def structures(self, density="{density}", run="{run}") -> str:
        return f"{self.base}/structures/rho{fmt_density(density)}/run{run}.extxyz"

    def trace(self, density="{density}", run="{run}") -> str:
        """Temperature and energy of one run every ``trace_every_steps`` (CSV)."""
        return f"{self.base}/structures/rho{fmt_density(density)}/run{run}.trace.csv"

    def labels(self, density="{density}", run="{run}") -> str:
        """The run's frames with energies and forces from the relabel engine (extxyz)."""
        return f"{self.base}/labels/rho{fmt_density(density)}/run{run}.extxyz"

    def checkpoint(self, stage: str, density="{density}", run="{run}") -> str:
        """Resumable state of a long job (not a Snakemake output: it survives a failed or killed job)."""
        return f"{self.base}/checkpoints/{stage}/rho{fmt_density(density)}/run{run}.ckpt.npz"

    def workdir(self, stage: str, density="{density}", run="{run}") -> str:
        """Scratch directory of file-based engines (CP2K, VASP, Quantum ESPRESSO) for one run."""
        return f"{self.base}/work/{stage}/rho{fmt_density(density)}/run{run}"

    def manifest(self) -> str:
        """What the validate_import job found in the imported files (JSON)."""
        return f"{self.base}/import/manifest.json"

    def diagrams(self, batch="{batch}") -> str:
        return f"{self.base}/diagrams/batch{batch}.h5"

    def dataset(self) -> str:
        return f"{self.base}/dataset/descriptors.h5"

    def features(self) -> str:
        """SOAP and RDF features of every dataset row (the structure baselines)."""
        return f"{self.base}/dataset/structure_features.h5"

    def delta_energies(self) -> str:
        """The Δ-learning engine's energy of every dataset row (train.delta)."""
        return f"{self.base}/dataset/delta_energies.h5"

    def split(self) -> str:
        return f"{self.base}/dataset/split.json"

    # the active-labelling loop (active:)
    def active_set(self, name="{name}", what="{what}") -> str:
        """Frames every strategy shares, to label (``what``: frames) and labelled (labels): ``heldout`` (the
        validation and test parts) and ``initial`` (round 0's random pool frames)."""
        return f"{self.base}/active/{name}.{what}.extxyz"

    def active_frames(self, strategy="{strategy}", round="{round}") -> str:
        """The frames labelled for round ``round`` (>= 1) of a strategy: the previous round's picks, or for
        ``all`` the whole pool but the initial frames."""
        return f"{self.base}/active/{strategy}/round{round}.frames.extxyz"

    def active_labels(self, strategy="{strategy}", round="{round}") -> str:
        return f"{self.base}/active/{strategy}/round{round}.labels.extxyz"

    def active_picks(self, strategy="{strategy}", round="{round}") -> str:
        """What round ``round``'s model picks to label next."""
        return f"{self.base}/active/{strategy}/round{round}.picks.extxyz"

    def active_round(self, strategy="{strategy}", round="{round}") -> str:
        return f"{self.base}/active/{strategy}/round{round}.json"

    def active_model(self, strategy="{strategy}", round="{round}") -> str:
        return f"{self.base}/active/{strategy}/round{round}.model.npz"

    def active_curve(self) -> str:
        return f"{self.base}/active/curve.json"

    def active_checkpoint(self, name: str) -> str:
        """Resumable state of one active-labelling job (``name``: heldout, initial, or strategy_round{r})."""
        return f"{self.base}/checkpoints/active/{name}.ckpt.npz"

    def active_workdir(self, name: str) -> str:
        return f"{self.base}/work/active/{name}"

    def metrics(self, model="{model}") -> str:
        """A model's metrics: training, calibration and a section per evaluation file."""
        return f"{self.base}/metrics/{model}.json"

    def fit_metrics(self, model="{model}") -> str:
        """A model's metrics as its training job wrote them (merged with the evaluations into ``metrics``)."""
        return f"{self.base}/metrics/fit/{model}.json"

    def evaluation(self, name="{name}", file="{file}") -> str:
        """Outputs of one evaluation file: ``manifest.json``, ``metrics.json``, ``{model}.csv``."""
        return f"{self.base}/evaluation/{name}/{file}"

    def predictions(self, model="{model}") -> str:
        return f"{self.base}/predictions/{model}.csv"

    def model(self, name="{model}", ext="{ext}") -> str:
        return f"{self.base}/models/{name}.{ext}"

    def report(self, name="{name}") -> str:
        return f"{self.base}/report/{name}"

    def log(self, rule: str, name: str = "") -> str:
        tail = f"{name}.log" if name else "log"
        return f"{self.base}/logs/{rule}/{tail}"

    def benchmark(self, rule: str, name: str = "") -> str:
        """Wall time, CPU time and peak memory of one job (Snakemake's ``benchmark:`` table, TSV)."""
        tail = f"{name}.tsv" if name else "job.tsv"
        return f"{self.base}/benchmarks/{rule}/{tail}"
