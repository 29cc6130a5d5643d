"""Trained-model files: one self-contained file per model (format ``topoamorph-model/2``).

A model file holds a JSON header (what the model is, everything needed to turn frames into its inputs:
homology settings, vectoriser parameters, structure-feature settings, species, units; its training
ranges, calibration, applicability domain and metrics) and named numeric arrays (coefficients, ensemble
members, network weights, the domain's reference points). Two containers, chosen by the file suffix:

- ``.npz`` (NumPy, read with ``allow_pickle=False``): ridge and the baselines;
- ``.pt`` (PyTorch, read with ``weights_only=True``): the CNN; arrays are stored as tensors.

Neither container can execute code when read. ``read_model`` checks the format name and version and
names the file in every error (missing, truncated, foreign, newer format).
"""

from __future__ import annotations

import json

import numpy as np

from .. import __version__
from ..errors import InputFileError
from ..io import atomic_path, json_default

FORMAT = "topoamorph-model"
VERSION = 2  # 2: inputs.homology.diagram (crystal diagrams); version-1 models were trained on torus diagrams
_HEADER = "__header__"


def write_model(path, header: dict, arrays: dict) -> None:
    """Write ``header`` (JSON-serialisable) and ``arrays`` ({name: numpy array}) atomically."""
    head = json.dumps(
        dict(header, format=FORMAT, format_version=VERSION, topoamorph_version=__version__),
        sort_keys=True,
        default=json_default,
        allow_nan=False,
    )
    if str(path).endswith(".pt"):
        import torch

        with atomic_path(path) as tmp:
            # np.ascontiguousarray would turn a scalar into shape (1,): keep each array's shape
            torch.save(
                {
                    _HEADER: head,
                    "arrays": {
                        k: torch.from_numpy(np.ascontiguousarray(v).reshape(np.shape(v))) for k, v in arrays.items()
                    },
                },
                tmp,
            )
        return
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **{_HEADER: np.array(head)}, **arrays)


def _is_torch(path: str) -> bool:
    """Whether a model file is PyTorch's container (a zip holding ``data.pkl``) rather than NumPy's ``.npz``, by
    its content, whatever its suffix (a ``.npz`` renamed ``.pt`` or ``.PT`` is still read)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/data.pkl") or n == "data.pkl" for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return str(path).lower().endswith(".pt")  # not a zip: the reader of its suffix names the damage


def read_model(path) -> tuple[dict, dict]:
    """(header, {name: numpy array}) of a model file."""
    path = str(path)
    try:
        if _is_torch(path):
            import torch

            blob = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(blob, dict) or _HEADER not in blob:
                raise InputFileError(path, "not a topoamorph model file (no header)")
            head = blob[_HEADER]
            arrays = {k: v.numpy() for k, v in blob["arrays"].items()}
        else:
            with np.load(path, allow_pickle=False) as z:
                if _HEADER not in z.files:
                    raise InputFileError(path, "not a topoamorph model file (no header)")
                head = str(z[_HEADER])
                arrays = {k: z[k] for k in z.files if k != _HEADER}
    except InputFileError:
        raise
    except FileNotFoundError:
        raise InputFileError(path, "model file not found") from None
    except Exception as exc:  # noqa: BLE001 (zip, pickle-free torch and OS errors alike mean a damaged file)
        raise InputFileError(
            path,
            f"unreadable model file, truncated or corrupt ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})",
        ) from None
    try:
        header = json.loads(head)
    except json.JSONDecodeError:
        raise InputFileError(path, "model header is not valid JSON (corrupt file)") from None
    if not isinstance(header, dict):
        raise InputFileError(path, f"model header is a JSON {type(header).__name__}, not an object (corrupt file)")
    if header.get("format") != FORMAT:
        raise InputFileError(path, f"not a topoamorph model file (format {header.get('format')!r})")
    if header.get("format_version") == 1:
        raise InputFileError(
            path,
            "model format version 1: trained on each cell's torus diagrams, whose energy per "
            f"atom changes from a cell to its supercell; this topoamorph {__version__} uses the "
            "crystal's diagrams (homology.diagram): retrain the model",
        )
    if header.get("format_version") != VERSION:
        raise InputFileError(
            path,
            f"model format version {header.get('format_version')} written by topoamorph "
            f"{header.get('topoamorph_version')}; this topoamorph {__version__} reads version "
            f"{VERSION}: retrain the model or use the topoamorph that wrote it",
        )
    return header, arrays
