"""Homology throughput, side by side in one run: topoamorph's periodic alpha (with CGAL's Delaunay, and with
SciPy's Qhull when the CGAL extension is built: the same diagrams, asserted; the torus diagrams, with the crystal's
diagram timed beside them), HomCloud's (when installed)
and Vietoris-Rips with ripser (topoamorph's rips backend: replicated so the threshold stays below L/3).

Prints a table (structures per second per core, median over frames and repeats; diagrams compared with
HomCloud's) and the MPI parallel efficiency of `topoamorph homology` from 1 to 2 ranks on a batch of
512-atom cells. Usage:
.venv/bin/python benchmarks/homology_speed.py [--repeats 3] [--batch 512] [--mpi-repeats 5] [--mpi-only]
Timings on shared machines are noisy: read the ratios, measured side by side, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from ase.io import write

sys.path.insert(0, str(Path(__file__).parent))
from cells import amorphous_carbon  # noqa: E402

from topoamorph import alpha_fast, homology  # noqa: E402


def homcloud_fn():
    try:
        import homcloud.interface  # noqa: F401
        from make_homcloud_reference import homcloud_diagrams
    except ImportError:
        return None
    return homcloud_diagrams


def max_difference(ours, ref) -> float:
    worst = 0.0
    for d in ours:
        a, b = ours[d], ref[d]
        fa, fb = np.sort(a[np.isfinite(a[:, 1])], axis=0), np.sort(b[np.isfinite(b[:, 1])], axis=0)
        if fa.shape != fb.shape:
            return float("inf")
        worst = max(worst, float(np.abs(fa - fb).max()) if len(fa) else 0.0)
    return worst


def same_diagrams(a, b) -> bool:
    """Bit-for-bit equal diagrams (the two Delaunay backends must agree exactly)."""
    return a.keys() == b.keys() and all(np.array_equal(a[d], b[d]) for d in a)


def throughput(sizes, repeats, rips_threshold, rips=True):
    hc = homcloud_fn()
    # the torus diagrams are HomCloud's (compared on every frame); the crystal's diagram (the descriptors' default)
    # is timed beside them
    methods = {
        "topoamorph alpha": lambda a: homology.compute(a, diagram="torus").diagrams,
        "topoamorph alpha, crystal": lambda a: homology.compute(a, diagram="crystal").diagrams,
    }
    if alpha_fast.default_delaunay() == "cgal":  # the same diagrams with SciPy's Qhull, for the Delaunay's share
        methods["topoamorph alpha, Qhull"] = lambda a: homology.compute(a, delaunay="qhull", diagram="torus").diagrams
    if hc:
        methods["HomCloud 5.4 alpha"] = hc
    if rips:
        methods[f"ripser Rips {rips_threshold} Å (replicated)"] = lambda a: (
            homology.compute(a, backend="rips", threshold=rips_threshold).diagrams
        )
    rows = []
    for n in sizes:
        frames = amorphous_carbon(n, (2.0, 2.6, 3.2), 2)
        times = {m: [] for m in methods}
        worst = 0.0
        for rep in range(repeats):
            for atoms in frames:  # interleaved: every method sees the same machine state
                out = {}
                for m, fn in methods.items():
                    if rep and m.startswith("ripser"):
                        continue  # slow (replicated cells): timed on the first repeat only
                    t = time.perf_counter()
                    out[m] = fn(atoms)
                    times[m].append(time.perf_counter() - t)
                if hc:
                    worst = max(worst, max_difference(out["topoamorph alpha"], out["HomCloud 5.4 alpha"]))
                if "topoamorph alpha, Qhull" in out:
                    assert same_diagrams(out["topoamorph alpha"], out["topoamorph alpha, Qhull"]), (
                        "the Delaunay backends disagree"
                    )
        med = {m: float(np.median(v)) for m, v in times.items()}
        rows.append((n, med, worst if hc else None))
    return list(methods), rows


SCALING_CHILD = """
import json, os, sys, threading, time
import numpy as np
sys.path.insert(0, {bench!r})
from cells import jittered_grid
atoms = jittered_grid({n}, 2.5)
if {method!r} == "homcloud":
    from make_homcloud_reference import homcloud_diagrams as fn
else:
    from topoamorph import homology
    fn = lambda a: homology.compute(a, delaunay={delaunay!r}, diagram="torus").diagrams
fn(jittered_grid(64, 2.5))  # imports and first-call set-up outside the timing
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page
base, top, running = rss(), [0], [True]
def sample():  # the computation's own memory: the imports' high-water mark would hide it from ru_maxrss
    while running[0]:
        top[0] = max(top[0], rss())
        time.sleep(0.002)
th = threading.Thread(target=sample, daemon=True)
th.start()
t = time.perf_counter()
dg = fn(atoms)
wall = time.perf_counter() - t
running[0] = False
th.join()
top[0] = max(top[0], rss())
np.savez({out!r}, **{{str(d): p for d, p in dg.items()}})
print(json.dumps({{"n": len(atoms), "s": wall, "extra_mb": (top[0] - base) / 2**20}}))
"""


def scaling(sizes, repeats: int):
    """Time and memory against size on jittered-grid cells at 2.5 g/cm³, each computation in a fresh process
    (memory: its RSS growth during the computation; HomCloud's alpha filtration runs in-process), the methods
    alternating."""
    methods = (
        ["topoamorph"]
        + (["topoamorph-qhull"] if alpha_fast.default_delaunay() == "cgal" else [])
        + (["homcloud"] if homcloud_fn() else [])
    )
    rows = []
    tmp = tempfile.mkdtemp(prefix="homology_scaling_")
    for n in sizes:
        runs, dgms = {m: [] for m in methods}, {}
        for _ in range(repeats):
            for m in methods:
                out = Path(tmp) / f"{m}.npz"
                code = SCALING_CHILD.format(
                    bench=str(Path(__file__).parent),
                    n=n,
                    method=m,
                    out=str(out),
                    delaunay="qhull" if m == "topoamorph-qhull" else None,
                )
                p = subprocess.run(
                    [sys.executable, "-c", code],
                    capture_output=True,
                    text=True,
                    env=dict(os.environ, OMP_NUM_THREADS="1"),
                )
                if p.returncode:
                    raise RuntimeError(p.stderr[-2000:])
                runs[m].append(json.loads(p.stdout.strip().splitlines()[-1]))
                with np.load(out) as z:
                    dgms[m] = {int(d): z[d] for d in z.files}
        worst = max_difference(dgms["topoamorph"], dgms["homcloud"]) if "homcloud" in dgms else None
        if "topoamorph-qhull" in dgms:
            assert same_diagrams(dgms["topoamorph"], dgms["topoamorph-qhull"]), "the Delaunay backends disagree"
        rows.append(
            (
                n,
                {
                    m: {
                        "s": float(np.median([r["s"] for r in v])),
                        "extra_mb": max(r["extra_mb"] for r in v),
                        "n": v[0]["n"],
                    }
                    for m, v in runs.items()
                },
                worst,
            )
        )
    return methods, rows


def parallel_efficiency(batch: int, workdir: Path, repeats: int = 3):
    """Runs with 1 and 2 ranks alternately, ``repeats`` times each; medians of wall and homology-phase time."""
    frames = amorphous_carbon(512, (2.0, 2.6, 3.2), 4)
    images = [frames[i % len(frames)] for i in range(batch)]
    path = workdir / "batch512.extxyz"
    write(path, images, format="extxyz")
    bindir = Path(sys.executable).parent
    mpiexec = str(bindir / "mpiexec") if (bindir / "mpiexec").exists() else shutil.which("mpiexec")
    runs = {1: [], 2: []}
    for _ in range(repeats):
        for ranks in (1, 2):
            t = time.perf_counter()
            p = subprocess.run(
                [
                    mpiexec,
                    "-n",
                    str(ranks),
                    str(bindir / "topoamorph"),
                    "homology",
                    str(path),
                    "--output",
                    str(workdir / f"out{ranks}.h5"),
                ],
                capture_output=True,
                text=True,
                env=dict(os.environ, OMP_NUM_THREADS="1"),
            )
            wall = time.perf_counter() - t
            if p.returncode:
                raise RuntimeError(p.stderr)
            m = re.search(r"frames, ([\d.]+) s", p.stderr)
            runs[ranks].append((wall, float(m.group(1))))
    same = (workdir / "out1.h5").read_bytes() == (workdir / "out2.h5").read_bytes()
    out = {r: tuple(float(np.median([x[i] for x in v])) for i in range(2)) for r, v in runs.items()}
    pairs = [(a[0] / (2 * b[0]), a[1] / (2 * b[1])) for a, b in zip(runs[1], runs[2])]
    return out, same, pairs


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="*", default=[64, 216, 512], help="Tersoff a-C cells timed (none: skip)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--batch",
        type=int,
        default=512,
        help="512-atom frames for the MPI efficiency run (campaign batches: 270 demo, 1,020 paper)",
    )
    ap.add_argument("--rips-threshold", type=float, default=5.0)
    ap.add_argument("--no-rips", action="store_true", help="leave ripser out of the throughput table (slow)")
    ap.add_argument("--mpi-only", action="store_true", help="only the MPI efficiency run")
    ap.add_argument(
        "--scaling",
        type=int,
        nargs="*",
        default=[64, 512, 2197, 4913, 10648],
        help="atoms of the jittered-grid cells timed for cost growth (none: skip)",
    )
    ap.add_argument("--mpi-repeats", type=int, default=5, help="0: skip the MPI efficiency run")
    args = ap.parse_args()
    if args.mpi_only:
        args.sizes = []
    methods, rows = throughput(args.sizes, args.repeats, args.rips_threshold, rips=not args.no_rips)
    if rows:
        print("\n## Throughput, structures per second per core (median ms per structure), H0-H2\n")
        print("| atoms | " + " | ".join(methods) + " | speed-up vs HomCloud | max diff vs HomCloud (Å²) |")
        print("|---" * (len(methods) + 3) + "|")
    for n, med, worst in rows:
        cells = [f"{1 / med[m]:.1f} ({1000 * med[m]:.0f} ms)" for m in methods]
        hc = med.get("HomCloud 5.4 alpha")
        speed = f"{hc / med['topoamorph alpha']:.1f}×" if hc else "–"
        diff = "–" if worst is None else f"{worst:.1e}"
        print(f"| {n} | " + " | ".join(cells) + f" | {speed} | {diff} |")
    if args.scaling and not args.mpi_only:
        smethods, srows = scaling(args.scaling, args.repeats)
        print(
            "\n## Cost against size: jittered-grid a-C-like cells at 2.5 g/cm³, one fresh process per run "
            f"(median of {args.repeats} alternating runs; memory: the largest RSS growth during the computation, "
            "sampled every 2 ms, over the runs)\n"
        )
        head = " | ".join(f"{m} s | {m} µs/atom | {m} MB" for m in smethods)
        print(f"| atoms | {head} | speed-up vs HomCloud | max diff vs HomCloud (Å²) |")
        print("|---" * (3 + 3 * len(smethods)) + "|")
        for _n, r, worst in srows:
            cells = " | ".join(
                f"{r[m]['s']:.3f} | {1e6 * r[m]['s'] / r[m]['n']:.0f} | {r[m]['extra_mb']:.0f}" for m in smethods
            )
            if "homcloud" in r:
                extra = f" | {r['homcloud']['s'] / r['topoamorph']['s']:.1f}× | {worst:.1e}"
            else:
                extra = " | – | –"
            print(f"| {r['topoamorph']['n']} | {cells}{extra} |")
    if args.mpi_repeats < 1:
        return
    work = Path("results/benchmarks")
    work.mkdir(parents=True, exist_ok=True)
    eff, same, pairs = parallel_efficiency(args.batch, work, args.mpi_repeats)
    (w1, c1), (w2, c2) = eff[1], eff[2]
    print(
        f"\n## MPI, `topoamorph homology` on {args.batch} 512-atom cells (median of {args.mpi_repeats} "
        "alternating runs)\n"
    )
    print("| ranks | wall s (with start-up) | homology phase s |\n|---|---|---|")
    print(f"| 1 | {w1:.2f} | {c1:.2f} |\n| 2 | {w2:.2f} | {c2:.2f} |")
    print(
        f"\nparallel efficiency 1 -> 2 ranks: {w1 / (2 * w2):.2f} (wall), {c1 / (2 * c2):.2f} (homology phase); "
        f"outputs byte-identical: {same}"
    )
    print("per pair of runs (wall, homology phase): " + ", ".join(f"({a:.2f}, {b:.2f})" for a, b in pairs))


if __name__ == "__main__":
    main()
