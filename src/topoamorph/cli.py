"""Command line: ``topoamorph homology|melt-quench|relabel|predict|explain|select|validate-config|plan|submit|
costs``."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from .errors import TopoamorphError
from .mpi import launcher_rank


def _homology(args) -> int:
    from .settings import HomologySettings
    from .stages.homology import homology

    given = {
        "backend": args.backend,
        "maxdim": args.maxdim,
        "precision": args.precision,
        "diagram": args.diagram,
        "rips_threshold": args.threshold,
        "keep_simplices": True if args.keep_simplices else None,
    }
    settings = HomologySettings.from_config({k: v for k, v in given.items() if v is not None})
    return homology(
        frames=args.frames, diagrams=args.output, settings=settings, energy_key=args.energy_key, manifest=args.manifest
    )


def _predict(args) -> int:
    from .stages.evaluate import predict

    return predict(
        model=args.model, frames=args.frames, output=args.output, energy_key=args.energy_key, forces=args.forces
    )


def _select(args) -> int:
    from .stages.evaluate import select

    return select(model=args.model, frames=args.frames, n=args.n, output=args.output, table=args.table)


def _explain(args) -> int:
    from .stages.evaluate import explain

    return explain(model=args.model, frames=args.frames, output=args.output, pairs=args.pairs)


def _json_arg(text: str, what: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        from .errors import ConfigError

        raise ConfigError(what, f"not valid JSON ({exc})") from None
    return value


def _melt_quench(args) -> int:
    from .stages.generate import melt_quench

    melt_quench(
        frames=args.output,
        trace=args.trace,
        structures=_json_arg(args.structures, "--structures"),
        seed=args.seed,
        density=args.density,
        run=args.run,
        checkpoint=args.checkpoint,
        workdir=args.workdir,
    )
    return 0


def _relabel(args) -> int:
    from .settings import default
    from .stages.generate import relabel

    relabel(
        frames=args.frames,
        labels=args.output,
        engine=_json_arg(args.engine, "--engine"),
        element=args.element or default("structures", "element"),
        forces=not args.no_forces,
        checkpoint=args.checkpoint,
        workdir=args.workdir,
    )
    return 0


def _validate(args) -> int:
    from . import config

    cfg = config.load(args.configfile, defaults=args.defaults)
    print(
        json.dumps(cfg, indent=2)
        if args.print
        else f"{args.configfile or args.defaults or 'the campaign defaults'}: valid"
    )
    return 0


def _plan(args) -> int:
    from . import config, plan

    cfg = config.load(args.configfile, defaults=args.defaults)
    sched = plan.schedule(cfg["structures"]["protocol"])
    runs = plan.runs(cfg)
    print(
        f"campaign {cfg['campaign']}: {len(runs)} melt-quench runs x {sched.frames} frames = "
        f"{len(runs) * sched.frames} frames; {sched.total_steps} MD steps per run; "
        f"{len(plan.batches(cfg))} homology batches"
    )
    for seg in sched.segments:
        print(
            f"  {seg.name:>12}: {seg.t_start_K:.0f} -> {seg.t_end_K:.0f} K, {seg.steps} steps, "
            f"{len(seg.sample_steps)} frames"
        )
    return 0


def _submit(args) -> int:
    from . import submit

    return submit.submit(
        args.profile, args.snakemake_args, site_file=args.site, workdir=args.directory, dry_run=args.dry_run
    )


def _costs(args) -> int:
    from . import costs

    print(costs.report(args.campaign_dir, markdown=args.markdown, jobs=args.jobs))
    return 0


def _model_and_frames(parser) -> None:
    """The positional arguments of the commands that apply a model file to frames."""
    parser.add_argument("model", help="model file, e.g. results/demo/models/ridge.npz or cnn.pt")
    parser.add_argument("frames", nargs="+", help="extxyz files, optionally path@start:stop")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="topoamorph", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    h = sub.add_parser("homology", help="persistence diagrams of frames (run under mpiexec -n N or srun)")
    h.add_argument("frames", nargs="+", help="extxyz files, optionally path@start:stop")
    h.add_argument("--output", required=True, help="output HDF5 file (written atomically)")
    h.add_argument("--backend", choices=["alpha", "rips"], help="default: homology.backend of the campaign defaults")
    h.add_argument(
        "--threshold", type=float, help="Rips threshold in Å (rips backend; default homology.rips_threshold)"
    )
    h.add_argument("--maxdim", type=int, choices=[0, 1, 2], help="default: homology.maxdim")
    h.add_argument("--precision", choices=["fast", "safe", "exact"], help="default: homology.precision")
    h.add_argument(
        "--diagram",
        choices=["crystal", "torus"],
        help="alpha backend: the infinite crystal's diagram per "
        "cell (same per atom in any supercell) or the cell's own torus diagram, HomCloud's; default: "
        "homology.diagram",
    )
    h.add_argument(
        "--keep-simplices",
        action="store_true",
        help="also store every finite pair's birth and death "
        "simplices (alpha backend; default: homology.keep_simplices)",
    )
    h.add_argument(
        "--energy-key",
        help="take the total energy (eV) from this info key or calculator result "
        "(imported data; default: the frames' potential energy)",
    )
    h.add_argument(
        "--manifest",
        help="import manifest (JSON): refuse input files whose size or SHA-256 changed since they were validated",
    )
    h.set_defaults(func=_homology)

    m = sub.add_parser("melt-quench", help="one melt-quench MD run, resumable (a DFT engine may run under MPI)")
    m.add_argument("--structures", required=True, help="the structures config block as JSON")
    m.add_argument("--density", type=float, required=True, help="g/cm³")
    m.add_argument("--run", type=int, required=True)
    m.add_argument("--seed", type=int, required=True)
    m.add_argument("--output", required=True, help="frames (extxyz, written atomically at the end)")
    m.add_argument("--trace", required=True, help="temperature/energy trace (CSV)")
    m.add_argument("--checkpoint", help="checkpoint file: resumed from if present, removed at the end")
    m.add_argument("--workdir", help="scratch directory of file-based engines")
    m.set_defaults(func=_melt_quench)

    r = sub.add_parser("relabel", help="single-point energies (and forces) of frames with another engine")
    r.add_argument("frames", help="extxyz file (optionally path@start:stop)")
    r.add_argument("--engine", required=True, help='engine block as JSON, e.g. \'{"name": "gpaw"}\'')
    r.add_argument("--element", help="chemical element (default: structures.element of the campaign defaults)")
    r.add_argument("--output", required=True)
    r.add_argument("--no-forces", action="store_true")
    r.add_argument("--checkpoint")
    r.add_argument("--workdir")
    r.set_defaults(func=_relabel)

    pr = sub.add_parser(
        "predict",
        help="apply a trained model to frames: energy, sigma, applicability domain "
        "(run under mpiexec -n N to spread the homology over N ranks)",
    )
    _model_and_frames(pr)
    pr.add_argument("--output", required=True, help="predictions (CSV, written atomically)")
    pr.add_argument(
        "--energy-key",
        help="reference energies to compare with, an info key or calculator result "
        "(default: energy); frames without one are predicted only",
    )
    pr.add_argument(
        "--forces",
        metavar="EXTXYZ",
        help="also write the frames with the model's energy and analytic "
        "forces (models on persistence images: ridge, cnn)",
    )
    pr.set_defaults(func=_predict)

    ex = sub.add_parser(
        "explain",
        help="per-atom contributions of a model's energy, from its persistence pairs' "
        "birth and death simplices (models on persistence images)",
    )
    _model_and_frames(ex)
    ex.add_argument(
        "--output", required=True, help="extxyz with per-atom arrays contribution, contribution_h0..h2 (eV)"
    )
    ex.add_argument("--pairs", help="CSV of the pairs: dimension, birth, death, contribution, simplices' atoms")
    ex.set_defaults(func=_explain)

    se = sub.add_parser(
        "select",
        help="the frames a model is least sure of (sigma, without near-copies): what to "
        "label next (run under mpiexec -n N for the homology)",
    )
    _model_and_frames(se)
    se.add_argument("--n", type=int, required=True, help="how many frames to pick")
    se.add_argument(
        "--output",
        required=True,
        help="extxyz of the picked frames, most uncertain first, with "
        "sigma_ev_per_atom, selected_from, selected_frame in their info",
    )
    se.add_argument("--table", help="also a CSV of every pool frame's sigma and selection rank")
    se.set_defaults(func=_select)

    for name, func, helptext in (
        ("validate-config", _validate, "validate a campaign config"),
        ("plan", _plan, "print the campaign's runs, frames and batches"),
    ):
        v = sub.add_parser(name, help=helptext)
        v.add_argument("configfile", nargs="?", help="campaign config (keys absent take the defaults)")
        v.add_argument("--defaults", help="defaults file (default: the package's, which config/config.yaml links to)")
        if name == "validate-config":
            v.add_argument("--print", action="store_true", help="print the merged config")
        v.set_defaults(func=func)

    s = sub.add_parser(
        "submit",
        help="run the campaign with a Snakemake profile plus this site's values "
        "(account, partition, QoS, constraint from TOPOAMORPH_SLURM_* or a site file)",
    )
    s.add_argument("profile", help="profile directory, e.g. profiles/slurm")
    s.add_argument("--site", help="site file (YAML: account, partition, gpu_partition, qos, constraint)")
    s.add_argument("-n", "--dry-run", action="store_true", help="show the jobs, submit nothing")
    s.add_argument("--directory", default=".", help="campaign working directory (default: here)")
    s.epilog = "Arguments after -- go to snakemake, e.g. topoamorph submit profiles/slurm -- --configfile c.yaml"
    s.set_defaults(func=_submit)

    c = sub.add_parser(
        "costs",
        help="wall time, CPU time and peak memory per job kind (the jobs' Snakemake "
        "benchmark tables) and bytes per output directory of a campaign",
    )
    c.add_argument("campaign_dir", metavar="CAMPAIGN_DIR", help="campaign results directory, e.g. results/paper-cheap")
    c.add_argument("--markdown", action="store_true", help="Markdown tables (to paste in docs)")
    c.add_argument("--jobs", action="store_true", help="also list every job")
    c.epilog = (
        "cpu_time is sampled by Snakemake and under-counts jobs (or child processes) that end between "
        "samples: read it as a lower bound, next to the wall time"
    )
    c.set_defaults(func=_costs)

    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough = []
    if "--" in argv:  # everything after -- goes to snakemake (topoamorph submit PROFILE -- ARGS)
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1 :]
    args = p.parse_args(argv)
    args.snakemake_args = passthrough
    # under MPI only rank 0 reports progress; the others report warnings and errors
    logging.basicConfig(
        level=logging.INFO if launcher_rank() == 0 else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except TopoamorphError as exc:
        print(f"topoamorph: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
