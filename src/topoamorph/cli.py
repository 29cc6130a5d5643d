"""Command line: ``topoamorph homology|validate-config|plan``."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from .errors import TopoamorphError


def _homology(args) -> int:
    from . import distribute

    return distribute.run(args.frames, args.output, backend=args.backend, maxdim=args.maxdim,
                          precision=args.precision, threshold=args.threshold)


def _validate(args) -> int:
    from . import config

    cfg = config.load(args.configfile, defaults=args.defaults)
    print(json.dumps(cfg, indent=2) if args.print else f"{args.configfile or args.defaults}: valid")
    return 0


def _plan(args) -> int:
    from . import config, plan

    cfg = config.load(args.configfile, defaults=args.defaults)
    sched = plan.schedule(cfg["structures"]["protocol"])
    runs = plan.runs(cfg)
    print(f"campaign {cfg['campaign']}: {len(runs)} melt-quench runs x {sched.frames} frames = "
          f"{len(runs) * sched.frames} frames; {sched.total_steps} MD steps per run; "
          f"{len(plan.batches(cfg))} homology batches")
    for seg in sched.segments:
        print(f"  {seg.name:>12}: {seg.t_start_K:.0f} -> {seg.t_end_K:.0f} K, {seg.steps} steps, "
              f"{len(seg.sample_steps)} frames")
    return 0


def _submit(args) -> int:
    from . import submit

    return submit.submit(args.profile, args.snakemake_args, site_file=args.site, workdir=args.directory,
                         dry_run=args.dry_run)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="topoamorph", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    h = sub.add_parser("homology", help="persistence diagrams of frames (run under mpiexec -n N or srun)")
    h.add_argument("frames", nargs="+", help="extxyz files, optionally path@start:stop")
    h.add_argument("--output", required=True, help="output HDF5 file (written atomically)")
    h.add_argument("--backend", default="alpha", choices=["alpha", "rips"])
    h.add_argument("--threshold", type=float, default=5.0, help="Rips threshold in Å (rips backend)")
    h.add_argument("--maxdim", type=int, default=2, choices=[0, 1, 2])
    h.add_argument("--precision", default="safe", choices=["fast", "safe", "exact"])
    h.set_defaults(func=_homology)

    for name, func, helptext in (("validate-config", _validate, "validate a campaign config"),
                                 ("plan", _plan, "print the campaign's runs, frames and batches")):
        v = sub.add_parser(name, help=helptext)
        v.add_argument("configfile", nargs="?", help="campaign config (keys absent take the defaults)")
        v.add_argument("--defaults", default="config/config.yaml")
        if name == "validate-config":
            v.add_argument("--print", action="store_true", help="print the merged config")
        v.set_defaults(func=func)

    s = sub.add_parser("submit", help="run the campaign with a Snakemake profile plus this site's values "
                       "(account, partition, QoS, constraint from TOPOAMORPH_SLURM_* or a site file)")
    s.add_argument("profile", help="profile directory, e.g. profiles/slurm")
    s.add_argument("--site", help="site file (YAML: account, partition, gpu_partition, qos, constraint)")
    s.add_argument("-n", "--dry-run", action="store_true", help="show the jobs, submit nothing")
    s.add_argument("--directory", default=".", help="campaign working directory (default: here)")
    s.epilog = "Arguments after -- go to snakemake, e.g. topoamorph submit profiles/slurm -- --configfile c.yaml"
    s.set_defaults(func=_submit)

    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough = []
    if "--" in argv:  # everything after -- goes to snakemake (topoamorph submit PROFILE -- ARGS)
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1:]
    args = p.parse_args(argv)
    args.snakemake_args = passthrough
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except TopoamorphError as exc:
        print(f"topoamorph: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
