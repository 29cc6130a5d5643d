"""Every path of a campaign, built in one place (used by the workflow and the library alike).

Called without arguments, a method returns the Snakemake pattern with ``{wildcards}``.
"""

from __future__ import annotations

from dataclasses import dataclass


def fmt_density(density) -> str:
    """Density as it appears in paths: two decimals, g/cm³ (1.5 -> '1.50')."""
    return f"{float(density):.2f}" if not isinstance(density, str) else density


@dataclass(frozen=True)
class CampaignPaths:
    campaign: str
    root: str = "results"

    @property
    def base(self) -> str:
        return f"{self.root}/{self.campaign}"

    def structures(self, density="{density}", run="{run}") -> str:
        return f"{self.base}/structures/rho{fmt_density(density)}/run{run}.extxyz"

    def diagrams(self, batch="{batch}") -> str:
        return f"{self.base}/diagrams/batch{batch}.h5"

    def dataset(self) -> str:
        return f"{self.base}/dataset/descriptors.h5"

    def split(self) -> str:
        return f"{self.base}/dataset/split.json"

    def metrics(self, model="{model}") -> str:
        return f"{self.base}/metrics/{model}.json"

    def predictions(self, model="{model}") -> str:
        return f"{self.base}/predictions/{model}.csv"

    def model(self, name="{model}", ext="{ext}") -> str:
        return f"{self.base}/models/{name}.{ext}"

    def report(self, name="{name}") -> str:
        return f"{self.base}/report/{name}"

    def log(self, rule: str, name: str = "") -> str:
        tail = f"{name}.log" if name else "log"
        return f"{self.base}/logs/{rule}/{tail}"
