"""Homology at cluster scale, projected from a campaign measured on this machine (issue #17).

A homology job is one batch of frames spread over N MPI ranks (``topoamorph homology`` under mpiexec/srun;
``src/topoamorph/distribute.py``): a serial part (interpreter and library start, rank 0 indexing the batch's
files, gathering every diagram on rank 0 and writing the batch file) and a parallel part (each rank reads and
computes the frames it is handed, dynamically, in input order for same-size frames). This script measures

* the cost of single frames: a sample of frames of every density and stage of the campaign, read and computed
  one at a time on one core (their spread is what leaves ranks idle at a batch's end);
* the serial part of the campaign's homology jobs: job wall time (Snakemake's benchmark table) minus the
  busiest rank's time in the parallel loop (the job's log line ``per-rank busy times``), fitted as
  ``s0 + s1 * batch_size`` over the jobs;

and replays the dispatcher (greedy: a free rank takes the next frame; rank 0 computes too) with costs drawn
from the sample, for 1 to 128 ranks and several batch sizes. Printed: wall time per job, parallel efficiency
(T1 / (N * TN)), number of jobs and core-hours for the whole campaign. Assumptions stated in the output: rank
start-up does not grow with N (srun starts ranks in parallel), gathering is bandwidth-bound on rank 0 (in
the fitted s1), frames are independent (no communication during the loop).

Usage: .venv/bin/python benchmarks/mpi_projection.py results/paper-cheap [--sample 4] [--frames 16830]
"""

from __future__ import annotations

import argparse
import heapq
import re
import sys
import time
from pathlib import Path

import numpy as np

from topoamorph import homology
from topoamorph.costs import read_benchmarks
from topoamorph.formats.frames import index_frames, read_atoms

BUSY = re.compile(r"wrote (\S+): (\d+) frames, ([\d.]+) s, per-rank busy times \[([^\]]*)\]")


def makespan(costs: np.ndarray, ranks: int) -> float:
    """Seconds until the last of ``costs`` (in dispatch order) finishes when each of ``ranks`` takes the next
    frame as soon as it is free (``distribute``'s dynamic dispatch; its prefetch hides the request latency)."""
    free = [0.0] * ranks
    heapq.heapify(free)
    end = 0.0
    for c in costs:
        t = heapq.heappop(free) + float(c)
        end = max(end, t)
        heapq.heappush(free, t)
    return end


def frame_costs(campaign: Path, per_file: int, rng: np.random.Generator) -> np.ndarray:
    """Seconds to read and compute single frames: ``per_file`` frames drawn from every structure file."""
    files = sorted((campaign / "structures").glob("rho*/run*.extxyz"))
    if not files:
        sys.exit(f"mpi_projection: no structures under {campaign}/structures: run the campaign first")
    out = []
    for path in files:
        idx = index_frames(str(path))
        for i in rng.choice(len(idx), size=min(per_file, len(idx)), replace=False):
            t0 = time.perf_counter()
            atoms = read_atoms(str(path), int(i), int(i) + 1, index=idx)[0]
            homology.compute(atoms)
            out.append(time.perf_counter() - t0)
    return np.array(out)


def serial_parts(campaign: Path) -> list[tuple[int, float, float, int]]:
    """(batch size, job wall s, serial s, ranks) of every homology job of the campaign with a log and a
    benchmark table."""
    walls = {j["name"]: j["wall_s"] for j in read_benchmarks(campaign) if j["rule"] == "homology"}
    rows = []
    for log in sorted((campaign / "logs" / "homology").glob("*.log")):
        m = BUSY.search(log.read_text(errors="replace"))
        if not m or log.stem not in walls or walls[log.stem] is None:
            continue
        busy = [float(x) for x in m.group(4).split(",") if x.strip()]
        rows.append((int(m.group(2)), float(walls[log.stem]), float(walls[log.stem]) - max(busy), len(busy)))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("campaign", type=Path, help="a campaign directory, e.g. results/paper-cheap")
    ap.add_argument("--sample", type=int, default=4, help="frames timed per structure file")
    ap.add_argument("--frames", type=int, default=16830, help="frames of the projected campaign")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    rng = np.random.default_rng(a.seed)

    jobs = serial_parts(a.campaign)
    if not jobs:
        sys.exit(f"mpi_projection: no homology job with both a log line and a benchmark table under {a.campaign}")
    B = np.array([j[0] for j in jobs], float)
    S = np.array([j[2] for j in jobs], float)
    if len(set(B)) > 1:
        s1, s0 = np.polyfit(B, S, 1)
        s1 = max(s1, 0.0)
        s0 = float(np.mean(S - s1 * B))
    else:
        s0, s1 = float(S.mean()), 0.0
    print(
        f"homology jobs measured: {len(jobs)} ({int(B.min())}-{int(B.max())} frames, {jobs[0][3]} ranks); "
        f"job wall {np.mean([j[1] for j in jobs]):.1f} s mean; serial part {S.mean():.1f} s mean "
        f"(fit: {s0:.2f} s + {1e3 * s1:.2f} ms/frame)"
    )

    costs = frame_costs(a.campaign, a.sample, rng)
    print(
        f"single frames read and computed on one core: {len(costs)}, mean {1e3 * costs.mean():.1f} ms, "
        f"p50 {1e3 * np.median(costs):.1f} ms, p95 {1e3 * np.percentile(costs, 95):.1f} ms, "
        f"max {1e3 * costs.max():.1f} ms (coefficient of variation {costs.std() / costs.mean():.2f})"
    )

    print(
        "\nprojected homology jobs (wall per job; efficiency T1/(N*TN); whole campaign of "
        f"{a.frames} frames: jobs and core-hours)"
    )
    print(f"{'batch':>6} {'ranks':>5} {'wall/job s':>10} {'efficiency':>10} {'jobs':>5} {'core-h':>7}")
    for batch in (255, 1020, 2040, 4080):
        draw = rng.choice(costs, size=(5, batch))
        t1 = s0 + s1 * batch + draw.sum(axis=1).mean()
        n_jobs = -(-a.frames // batch)
        for ranks in (1, 2, 4, 8, 16, 64, 128):
            tn = s0 + s1 * batch + np.mean([makespan(d, ranks) for d in draw])
            eff = t1 / (ranks * tn)
            print(f"{batch:>6} {ranks:>5} {tn:>10.1f} {eff:>10.2f} {n_jobs:>5} {n_jobs * ranks * tn / 3600:>7.2f}")
    print(
        "\nThe campaign's homology takes one job's wall time when every job runs at once; core-hours count "
        "every rank for the whole job, idle or not. Assumed: rank start-up does not grow with N; no communication "
        "in the loop."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
