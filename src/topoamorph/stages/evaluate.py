"""Trained models applied to frames: ``topoamorph predict`` and the stages of rules/evaluate.smk
(validate_evaluation, evaluate, merge_metrics).

Homology runs once per frame and homology setting, shared by every model applied; under ``mpiexec -n N``
(or ``srun``) the frames' diagrams are spread over the ranks as in the homology stage, and rank 0 predicts.
"""

from __future__ import annotations

import collections
import logging
import os

import numpy as np

from .. import distribute, importer, models, provenance
from ..errors import InputFileError, TopoamorphError
from ..formats.diagrams import read_diagrams
from ..formats.frames import parse_spec
from ..formats.predictions import write_applied
from ..io import check_outputs, read_json, write_json
from ..mpi import comm_world, launcher_size
from ..settings import HomologySettings
from ..trained import FrameSet, TrainedModel, load_model
from ..uncertainty import coverage

log = logging.getLogger(__name__)


def _homology_settings(trained: list[TrainedModel]) -> list[dict]:
    out = []
    for m in trained:
        h = m.inputs.get("homology") if m.inputs["kind"] == "persistence" else None
        if h is not None and h not in out:
            out.append(h)
    return out


def _checked_frames(trained: list[TrainedModel], specs: list[str], energy_key: str | None) -> FrameSet:
    """The frames, checked (``FrameSet.read``) and made of every model's species, before any homology; with an
    ``energy_key`` the user named, at least one frame must have an energy under it."""
    fs = FrameSet.read(specs, energy_key or "energy")
    for m in trained:
        fs.check(m.species, m.path)
    if energy_key and not np.isfinite(fs.reference(energy_key)).any():
        raise InputFileError(specs[0], f"no frame has an energy under --energy-key {energy_key!r}")
    return fs


def frames_for(
    trained: list[TrainedModel], specs: list[str], scratch_dir: str, energy_key: str | None = None
) -> FrameSet | None:
    """The frames of ``specs``, checked before any homology (``_checked_frames``), with the diagrams every model
    needs; under MPI the diagrams are computed on all ranks (``distribute.run``) and the frames returned on rank 0
    only (None elsewhere)."""
    settings = _homology_settings(trained)
    if launcher_size() < 2:
        return _checked_frames(trained, specs, energy_key)
    _, comm = comm_world()
    fs, problem = None, None
    if comm.rank == 0:
        try:
            fs = _checked_frames(trained, specs, energy_key)
        except TopoamorphError as exc:
            problem = str(exc)
    problem = comm.bcast(problem, root=0)
    if problem:
        raise TopoamorphError(problem)
    results = {}
    for k, h in enumerate(settings):
        hs = HomologySettings.from_compute_options(h)
        out = os.path.join(scratch_dir, f".predict-diagrams-{os.getpid() if comm.rank == 0 else 0}-{k}.h5")
        out = comm.bcast(out, root=0)
        status = distribute.run(list(specs), out, hs, require_energy=False)
        status = comm.bcast(status, root=0)
        if status != 0:
            raise InputFileError(specs[0], "homology failed on a rank (see the messages above)")
        if comm.rank == 0:
            results[k] = read_diagrams(out)["results"]
            os.unlink(out)
    if comm.rank != 0:
        return None
    for k, h in enumerate(settings):
        fs.set_persistence(h, results[k])
    return fs


def _summary(out: dict, ref: np.ndarray) -> dict:
    """Errors (meV/atom), per density, calibration coverage and domain counts of a model applied to frames
    (``out``: ``TrainedModel.apply``; ``ref``: reference energies per atom, NaN where unknown)."""
    density = out["density"]
    reasons = dict(sorted(collections.Counter(r for rs in out["reasons"] for r in rs.split(";") if r).items()))
    s = {
        "n_frames": int(len(ref)),
        "n_out_of_domain": int(np.sum(~out["in_domain"])),
        "out_of_domain_reasons": reasons,
        "n_with_reference": int(np.sum(np.isfinite(ref))),
        "n_atoms": sorted({int(n) for n in out["n_atoms"]}),
        "density_g_cm3": [float(np.min(density)), float(np.max(density))] if len(density) else None,
    }
    has = np.isfinite(ref)
    if has.any():
        pred = out["energy_per_atom"]
        s["all"] = models.errors(ref[has], pred[has])
        inside = has & out["in_domain"]
        s["in_domain"] = models.errors(ref[inside], pred[inside])
        s["per_density"] = models.per_density(ref[has], pred[has], np.asarray(density)[has])
        s["calibration"] = coverage(pred[has] - ref[has], out["sigma"][has])
    return s


def predict(
    *, model: str, frames: list[str], output: str, energy_key: str | None = None, forces: str | None = None
) -> int:
    """``topoamorph predict``: one model on the frames of ``frames`` (``path`` or ``path@start:stop``);
    ``forces``: also an extxyz file of the frames with the model's energy and analytic forces (models on
    persistence images; computed by rank 0)."""
    check_outputs({"--output": output, "--forces": forces}, [model] + [parse_spec(s)[0] for s in frames])
    tm = load_model(model)
    if forces:
        from ..potential import vectorizer

        vectorizer(tm)  # refuse before any homology: a baseline or histogram model has no forces
    fs = frames_for([tm], frames, os.path.dirname(os.path.abspath(output)), energy_key)
    if fs is None:
        return 0
    energy_key = energy_key or "energy"
    out = tm.apply(fs)
    ref = fs.reference(energy_key)
    write_applied(output, out, fs.sources, fs.indices, ref, dict(provenance.record(), model=tm.path))
    if forces:
        _write_forces(tm, fs, out, forces)
    s = _summary(out, ref)
    n_out = s["n_out_of_domain"]
    log.info(
        "%s: %d frames predicted by %s; %d out of the training domain%s",
        output,
        len(fs),
        tm.path,
        n_out,
        f" ({', '.join(f'{k}: {v}' for k, v in s['out_of_domain_reasons'].items())})" if n_out else "",
    )
    if n_out:
        log.warning(
            "%d of %d frames lie outside the model's training domain: their predictions and sigma are extrapolations",
            n_out,
            len(fs),
        )
    if "all" in s:
        e = s["all"]
        log.info(
            "against the reference energies (%s) of %d frames: MAE %.2f, RMSE %.2f meV/atom",
            energy_key,
            e["n"],
            e["mae_mev_per_atom"],
            e["rmse_mev_per_atom"],
        )
    return 0


def _write_forces(tm: TrainedModel, fs: FrameSet, out: dict, path: str) -> None:
    from ..formats.frames import write_frames

    frames = []
    for k, atoms in enumerate(fs.atoms):
        energy, f = tm.energy_and_forces(atoms)
        a = atoms.copy()
        a.calc = None
        # the model's results under keys that never read as a reference (energy, forces): predicting on this file
        # must not score the model against itself
        a.info = {
            "source": fs.sources[k],
            "frame": fs.indices[k],
            "model": tm.path,
            "model_energy": energy,
            "model_energy_sigma": float(out["sigma"][k]) * len(a),
            "in_domain": bool(out["in_domain"][k]),
        }
        for key in [name for name in a.arrays if name not in ("numbers", "positions")]:
            a.arrays.pop(key)
        a.arrays["model_forces"] = np.asarray(f, dtype=float)
        frames.append(a)
    write_frames(path, frames)
    log.info("%s: energies and analytic forces of %d frames", path, len(frames))


def explain(*, model: str, frames: list[str], output: str, pairs: str | None = None) -> int:
    """``topoamorph explain``: per-atom contributions of a model's prediction, written into the frames as
    per-atom arrays (``contribution``, eV, and ``contribution_h0/h1/h2``) with the prediction, baseline and
    residual in the info; ``pairs``: a CSV of the persistence pairs behind them (``formats.predictions``)."""
    from ..formats.frames import write_frames
    from ..formats.predictions import write_pairs
    from ..potential import vectorizer

    check_outputs({"--output": output, "--pairs": pairs}, [model] + [parse_spec(s)[0] for s in frames])
    tm = load_model(model)
    vectorizer(tm)  # refuse a model without explanations before reading any frame
    fs = _checked_frames([tm], frames, None)
    out, rows = [], []
    for k, atoms in enumerate(fs.atoms):
        try:
            ex = tm.explain(atoms)
        except TopoamorphError as exc:  # named by its file and frame, not as a bare structure
            raise InputFileError(fs.sources[k], str(exc).removeprefix("<atoms>, frame 0: "), fs.indices[k]) from None
        a = atoms.copy()
        a.calc = None
        a.arrays["contribution"] = ex["contribution"]
        for dim, v in ex["by_dim"].items():
            a.arrays[f"contribution_h{dim}"] = v
        a.info.update(
            source=fs.sources[k],
            frame=fs.indices[k],
            model=tm.path,
            predicted_energy=ex["energy"],
            baseline_energy=ex["baseline"],
            attribution_residual=ex["residual"],
            attribution=("exact (linear model)" if ex["complete"] else "gradient x input (first order)"),
        )
        if tm.delta:  # Δ-learning: the contributions explain the correction; the engine gives the rest
            engine_energy = float(tm.engine_results(FrameSet([atoms]))[0][0]) * len(atoms)
            a.info.update(
                explained="correction to the engine",
                delta_engine=tm.delta["described"],
                engine_energy=engine_energy,
                predicted_total_energy=engine_energy + ex["energy"],
            )
        out.append(a)
        rows += [
            dict(r, source=fs.sources[k], frame=fs.indices[k], contribution_ev=r["contribution_eV"])
            for r in ex["pairs"]
        ]
        log.info(
            "%s frame %d: E %.6f eV = baseline %.6f + contributions %.6f + residual %.2e",
            fs.sources[k],
            fs.indices[k],
            ex["energy"],
            ex["baseline"],
            float(ex["contribution"].sum()),
            ex["residual"],
        )
    # both files are complete before either is renamed into place: a killed run never leaves a new explained
    # file beside an older run's pairs
    from contextlib import ExitStack

    from ..io import atomic_path

    with ExitStack() as stack:
        tmp_pairs = stack.enter_context(atomic_path(pairs)) if pairs else None
        tmp_out = stack.enter_context(atomic_path(output))
        write_frames(tmp_out, out)
        if pairs:
            write_pairs(tmp_pairs, rows, dict(provenance.record(), model=tm.path))
    log.info("wrote %s (%d frames)%s", output, len(out), f" and {pairs}" if pairs else "")
    return 0


def validate_evaluation(*, frames: str, selection: str, manifest: str, energy_key: str, species: list) -> dict:
    """Check every frame of an evaluation file (``frames`` + ``selection``, e.g. '' or '@0:100') as imported
    frames are checked (energies optional)."""
    path, start, stop = parse_spec(frames + selection) if selection else (frames, 0, None)
    m = importer.validate_file(path, energy_key, species, require_energy=False, start=start, stop=stop)
    write_json(manifest, m)
    return m


def evaluate(
    *,
    frames: str,
    selection: str,
    manifest: str,
    model_files: list[str],
    names: list[str],
    predictions: list[str],
    metrics: str,
    energy_key: str,
) -> dict:
    """Every model of ``model_files`` (named ``names``) on one evaluation file (``frames`` + ``selection``): a
    predictions file per model and one metrics file (a section per model)."""
    trained = [load_model(f) for f in model_files]
    with importer.unchanged_while_read(manifest, [frames]):  # validated before; refused if changed since
        fs = frames_for(trained, [frames + selection], os.path.dirname(os.path.abspath(metrics)))
    if fs is None:
        return {}
    frames = frames + selection
    ref = fs.reference(energy_key)
    out = {"file": frames, "energy_key": energy_key, "error_units": "meV/atom", "models": {}}
    for name, tm, pred_out in zip(names, trained, predictions):
        res = tm.apply(fs)
        write_applied(pred_out, res, fs.sources, fs.indices, ref, dict(provenance.record(), model=tm.path))
        out["models"][name] = _summary(res, ref)
        e = out["models"][name].get("all")
        log.info(
            "%s on %s: %s; %d of %d frames out of domain",
            name,
            frames,
            f"MAE {e['mae_mev_per_atom']:.2f} meV/atom" if e else "no reference energies",
            out["models"][name]["n_out_of_domain"],
            len(fs),
        )
    out["provenance"] = provenance.record()
    write_json(metrics, out)
    return out


def merge_metrics(*, fit: str, evaluation: list[str], names: list[str], model: str, metrics: str) -> dict:
    """A model's metrics file: its training metrics plus a section per evaluation file (``names``)."""
    m = read_json(fit)
    m["evaluation"] = {}
    for name, path in zip(names, evaluation):
        section = read_json(path)
        m["evaluation"][name] = dict(section["models"][model], file=section["file"])
    write_json(metrics, m)
    return m


def select(*, model: str, frames: list[str], n: int, output: str, table: str | None = None) -> int:
    """``topoamorph select``: the ``n`` frames of ``frames`` the model is least sure of (σ, with a diversity rule:
    ``uncertainty.select_frames`` in the domain's principal components, spacing the training frames' median
    nearest-neighbour distance), written to ``output`` (extxyz, most uncertain first) with their σ and origin;
    ``table``: also a CSV of every frame's σ, rank and whether it was picked."""
    import csv

    from ..formats.frames import write_frames
    from ..io import atomic_path
    from ..provenance import csv_header
    from ..uncertainty import select_frames

    if n < 1:
        raise InputFileError(output, f"--n must be at least 1, not {n}")
    check_outputs({"--output": output, "--table": table}, [model] + [parse_spec(s)[0] for s in frames])
    tm = load_model(model)
    fs = frames_for([tm], frames, os.path.dirname(os.path.abspath(output)))
    if fs is None:
        return 0
    out = tm.apply(fs)
    ad = tm.domain
    spacing = ad.reference_distance_ if ad is not None else 0.0  # 0 without a descriptor: σ alone
    picked = select_frames(out["sigma"], out["components"], n, spacing)
    chosen = []
    for rank, k in enumerate(picked):
        a = fs.atoms[k].copy()
        a.info.update(
            selected_rank=rank,
            selected_from=fs.sources[k],
            selected_frame=fs.indices[k],
            model=tm.path,
            predicted_energy_per_atom_ev=float(out["energy_per_atom"][k]),
            sigma_ev_per_atom=float(out["sigma"][k]),
            in_domain=bool(out["in_domain"][k]),
        )
        chosen.append(a)
    write_frames(output, chosen)
    if table:
        rank_of = {int(k): r for r, k in enumerate(picked)}
        with atomic_path(table) as tmp, open(tmp, "w", newline="") as fh:
            fh.write(csv_header(dict(provenance.record(), model=tm.path)) + "\n")
            w = csv.writer(fh)
            w.writerow(["source", "frame", "sigma_ev_per_atom", "energy_per_atom_ev", "in_domain", "selected_rank"])
            for k in range(len(fs)):
                w.writerow(
                    [
                        fs.sources[k],
                        fs.indices[k],
                        f"{out['sigma'][k]:.9f}",
                        f"{out['energy_per_atom'][k]:.9f}",
                        int(out["in_domain"][k]),
                        rank_of.get(k, ""),
                    ]
                )
    log.info(
        "%s: %d of %d frames picked by %s (sigma %.1f-%.1f meV/atom; pool median %.1f)",
        output,
        len(picked),
        len(fs),
        tm.path,
        1000 * out["sigma"][picked].min(),
        1000 * out["sigma"][picked].max(),
        1000 * np.median(out["sigma"]),
    )
    return 0
