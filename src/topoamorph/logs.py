"""Logging for workflow scripts: everything goes to the rule's ``log:`` file, errors included."""

from __future__ import annotations

import logging
import sys
import traceback


def run_logged(log_path: str, func, **kwargs):
    """Run ``func(**kwargs)`` with logging (and stray stdout/stderr) sent to ``log_path``; re-raise failures.
    Workflow scripts pass a stage function its rule's named inputs, outputs and params this way."""
    fh = open(log_path, "a", buffering=1)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[logging.StreamHandler(fh)],
        force=True,
    )
    old = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = fh
    try:
        return func(**kwargs)
    except BaseException as exc:
        logging.getLogger("topoamorph").error("failed: %s: %s", type(exc).__name__, exc)
        traceback.print_exc(file=fh)
        raise
    finally:
        sys.stdout, sys.stderr = old
        fh.flush()
