"""The campaign plan: runs, the melt-quench schedule, sampling times and homology batches.

Everything here follows from the config alone (no file is read), so the workflow knows every job
before any MD has run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import engines
from .errors import InputFileError
from .formats.frames import count_frames, parse_spec
from .paths import CampaignPaths, fmt_density
from .provenance import config_hash
from .settings import SourceSettings


@dataclass(frozen=True)
class Segment:
    name: str
    t_start_K: float
    t_end_K: float
    steps: int
    sample_steps: tuple[int, ...]  # 1-based step counts within the segment at which frames are taken

    def temperature_at(self, step: int) -> float:
        """Target temperature after ``step`` (1-based) steps of this segment: linear ramp."""
        return self.t_start_K + (self.t_end_K - self.t_start_K) * step / self.steps


@dataclass(frozen=True)
class Schedule:
    timestep_fs: float
    segments: tuple[Segment, ...]

    @property
    def total_steps(self) -> int:
        return sum(s.steps for s in self.segments)

    @property
    def frames(self) -> int:
        return sum(len(s.sample_steps) for s in self.segments)

    def frame_table(self):
        """(segment name, global step, time in ps, target temperature K) for each sampled frame."""
        rows, offset = [], 0
        for seg in self.segments:
            for k in seg.sample_steps:
                step = offset + k
                rows.append((seg.name, step, step * self.timestep_fs / 1000.0, seg.temperature_at(k)))
            offset += seg.steps
        return rows


def sample_steps(steps: int, frames: int) -> tuple[int, ...]:
    """``frames`` evenly spaced steps in 1..steps, the last at the segment's end."""
    return tuple(int(round((i + 1) * steps / frames)) for i in range(frames))


def schedule(protocol: dict) -> Schedule:
    dt = float(protocol["timestep_fs"])
    segs = []
    for seg in protocol["segments"]:
        steps = int(round(seg["duration_ps"] * 1000.0 / dt))
        segs.append(
            Segment(
                name=seg["name"],
                t_start_K=float(seg["t_start_K"]),
                t_end_K=float(seg["t_end_K"]),
                steps=steps,
                sample_steps=sample_steps(steps, int(seg["frames"])),
            )
        )
    return Schedule(dt, tuple(segs))


def run_seed(campaign_seed: int, density: float, run: int) -> int:
    """A seed per run, derived from the campaign seed (stable when densities are added or reordered)."""
    ss = np.random.SeedSequence([int(campaign_seed), int(round(float(density) * 1000)), int(run)])
    return int(ss.generate_state(1, dtype=np.uint32)[0])


@dataclass(frozen=True)
class Run:
    density: float
    run: int
    seed: int
    path: str  # the melt-quench frames
    frames_path: str  # what homology reads: the relabelled frames when relabel is configured, else ``path``

    @property
    def density_label(self) -> str:
        return fmt_density(self.density)


def runs(cfg: dict) -> list[Run]:
    """The melt-quench runs (none when the campaign imports its frames)."""
    if cfg["source"]["kind"] == "import":
        return []
    paths = CampaignPaths(cfg["campaign"])
    s = cfg["structures"]
    out = []
    relabel = bool(cfg.get("relabel"))
    for density in s["densities"]:
        for r in range(1, s["runs"] + 1):
            md = paths.structures(density, r)
            out.append(
                Run(
                    float(density),
                    r,
                    run_seed(cfg["seed"], density, r),
                    md,
                    paths.labels(density, r) if relabel else md,
                )
            )
    return out


def find_run(cfg: dict, density: str, run: str) -> Run:
    for r in runs(cfg):
        if r.density_label == fmt_density(density) and str(r.run) == str(run):
            return r
    raise KeyError(f"no run rho{density}/run{run} in campaign {cfg['campaign']}")


@dataclass(frozen=True)
class Chunk:
    """Frames ``start:stop`` of one file (ASE's ``file@start:stop`` selection)."""

    path: str
    start: int
    stop: int

    def spec(self) -> str:
        return f"{self.path}@{self.start}:{self.stop}"


def frame_files(cfg: dict) -> list[tuple[str, int]]:
    """(file, number of frames) that homology reads, in order: the runs' frames, or the imported files
    (counted by scanning their atom-count lines; a missing or malformed file is an error naming it)."""
    if cfg["source"]["kind"] == "import":
        return [(path, count_frames(path)) for path in SourceSettings.from_config(cfg["source"]).files().values()]
    nframes = schedule(cfg["structures"]["protocol"]).frames
    return [(r.frames_path, nframes) for r in runs(cfg)]


def batches(cfg: dict) -> list[list[Chunk]]:
    """Homology batches of at most ``homology.batch_size`` frames, in file order, spanning files."""
    size = int(cfg["homology"]["batch_size"])
    out: list[list[Chunk]] = [[]]
    filled = 0
    for path, nframes in frame_files(cfg):
        start = 0
        while start < nframes:
            take = min(nframes - start, size - filled)
            out[-1].append(Chunk(path, start, start + take))
            start += take
            filled += take
            if filled == size:
                out.append([])
                filled = 0
    if not out[-1]:
        out.pop()
    return out


def check_frames_spec(spec: str) -> int:
    """Frames selected by ``path`` or ``path@start:stop``: the file is indexed (atom-count lines, no
    coordinates), so a missing, truncated or non-extxyz file, or a selection beyond it, is an error naming it."""
    path, start, stop = parse_spec(spec)
    n = count_frames(path)
    stop = n if stop is None else stop
    if not 0 <= start < stop <= n:
        raise InputFileError(spec, f"selects frames {start}:{stop} but the file holds {n}")
    return stop - start


def batch_ids(cfg: dict) -> list[str]:
    return [f"{i:04d}" for i in range(len(batches(cfg)))]


def md_runtime_minutes(structures: dict) -> int:
    """A planning estimate of one melt-quench job's wall time (min), from the engine's rough cost per
    step: what a SLURM profile asks for on the first attempt (retries multiply it and resume)."""
    steps = schedule(structures["protocol"]).total_steps
    seconds = steps * engines.step_seconds(structures["engine"], int(structures["natoms"]))
    return _minutes(seconds)


def relabel_runtime_minutes(cfg: dict) -> int:
    frames = schedule(cfg["structures"]["protocol"]).frames
    # a single point from scratch costs about 1.5 MD steps (no wavefunctions to start from)
    seconds = 1.5 * frames * engines.step_seconds(cfg["relabel"]["engine"], int(cfg["structures"]["natoms"]))
    return _minutes(seconds)


def delta_runtime_minutes(cfg: dict) -> int:
    """The Δ-learning engine's single points of every frame (train.delta); imported frames are planned at
    structures.natoms atoms (their sizes are not read at planning)."""
    frames = sum(n for _, n in frame_files(cfg))
    seconds = 1.5 * frames * engines.step_seconds(cfg["train"]["delta"]["engine"], int(cfg["structures"]["natoms"]))
    return _minutes(seconds)


def active_label_minutes(cfg: dict) -> int:
    """The longest labelling job of the active loop: the held-out parts, or the `all` arm's whole pool (all the
    frames of the campaign at most), at structures.natoms atoms."""
    frames = sum(n for _, n in frame_files(cfg))
    seconds = 1.5 * frames * engines.step_seconds(cfg["active"]["label"]["engine"], int(cfg["structures"]["natoms"]))
    return _minutes(seconds)


def job_minutes(estimate: int, attempt: int, structures: dict) -> int:
    """What attempt ``attempt`` of a job asks for: more each retry, never above max_job_minutes."""
    return int(min(estimate * attempt, int(structures["max_job_minutes"])))


def _minutes(seconds: float) -> int:
    """1.5x the estimate plus 5 minutes, at least 10 minutes."""
    return int(max(10, math.ceil(1.5 * seconds / 60.0) + 5))


def campaign_record(cfg: dict) -> dict:
    """What identifies a campaign: its name, the hash of the whole validated config, its seed, and the
    engine (with its version) that made or labelled the structures."""
    out = {"campaign": cfg["campaign"], "config_hash": config_hash(cfg), "seed": int(cfg["seed"])}
    if cfg["source"]["kind"] == "import":
        out["engine"] = "import (labels from the imported files)"
    else:
        out["engine"] = cfg["structures"]["engine"]["name"]
        try:
            out["engine_version"] = engines.describe(cfg["structures"]["engine"])
        except Exception as exc:  # noqa: BLE001 - an engine not installed on the submitting node
            out["engine_version"] = f"unknown ({type(exc).__name__})"
    if cfg.get("relabel"):
        out["relabel_engine"] = cfg["relabel"]["engine"]["name"]
    return out
