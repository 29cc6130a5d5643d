"""Atomic writes and small shared I/O helpers.

Every output is written to a temporary file beside its destination and renamed into place,
so a killed job never leaves a partial file that looks complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path, suffix: str | None = None):
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = suffix if suffix is not None else "".join(path.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are shared like any other file
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def check_outputs(outputs: dict, inputs) -> None:
    """Refuse, before any work, outputs (``{option: path}``, None for an absent one) that would overwrite an input
    or each other, or that cannot be written (their directory missing, not a directory, or read-only); one
    ``InputFileError`` naming the output and the reason."""
    from .errors import InputFileError

    given = {k: str(v) for k, v in outputs.items() if v}
    seen: dict[str, str] = {}
    for option, path in given.items():
        real = os.path.realpath(path)
        clash = next((str(i) for i in inputs if os.path.realpath(str(i)) == real), None)
        if clash is not None:
            raise InputFileError(path, f"{option} is the input {clash}: it would be overwritten; choose another path")
        if real in seen:
            raise InputFileError(path, f"{option} and {seen[real]} are the same file; choose two paths")
        seen[real] = option
        if os.path.isdir(path):
            raise InputFileError(path, f"{option} is a directory, not a file")
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise InputFileError(path, f"{option}: the directory {folder} does not exist")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise InputFileError(path, f"{option}: the directory {folder} is not writable")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=json_default) + "\n")


def read_json(path):
    from .errors import InputFileError

    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputFileError(path, "file not found") from None
    except json.JSONDecodeError as exc:
        raise InputFileError(path, f"not valid JSON ({exc})") from None


def json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def decode_strings(values):
    """An HDF5 string column as a numpy object array of ``str``."""
    import numpy as np

    return np.array([v.decode() if isinstance(v, bytes) else v for v in values], dtype=object)


def check_hdf5_format(h, path, fmt: str, what: str) -> None:
    """Raise InputFileError naming ``path`` unless the open HDF5 file ``h`` says it is ``fmt``."""
    from .errors import InputFileError

    if h.attrs.get("format") != fmt:
        raise InputFileError(path, f"not a topoamorph {what} file (format {h.attrs.get('format')!r})")


@contextlib.contextmanager
def read_hdf5(path, fmt: str, what: str):
    """An HDF5 file of format ``fmt`` opened for reading; a missing, truncated, corrupt or foreign file is
    an InputFileError naming it (``what``: the kind of file, for the message)."""
    import h5py

    from .errors import InputFileError

    try:
        with h5py.File(path, "r") as h:
            check_hdf5_format(h, path, fmt, what)
            yield h
    except InputFileError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise InputFileError(path, f"unreadable {what} file ({type(exc).__name__}: {exc})") from None
