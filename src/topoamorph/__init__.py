"""topoamorph: persistent-homology energy models for amorphous materials, as a Snakemake campaign.

``topoamorph.load_model(path)`` loads a trained model (``topoamorph.trained``); ``topoamorph.calculator``
holds its ASE calculator.
"""

__version__ = "0.1.0"


def load_model(path):
    """The trained model of a model file: ``predict(frames)``, ``predict_with_uncertainty(frames)``."""
    from .trained import load_model as _load

    return _load(path)
