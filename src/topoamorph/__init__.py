"""topoamorph: persistent-homology energy models for amorphous materials, as a Snakemake campaign."""

__version__ = "0.1.0"
