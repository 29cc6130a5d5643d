"""What a campaign cost: the jobs' Snakemake benchmark tables and the size of what they wrote.

This is the one reader of the benchmark tables. Every workflow rule writes one (its ``benchmark:``
directive) at ``results/{campaign}/benchmarks/{rule}/{name}.tsv`` (``paths.CampaignPaths.benchmark``),
Snakemake's standard TSV: a header ``s  h:m:s  max_rss  max_vms  max_uss  max_pss  io_in  io_out
mean_load  cpu_time`` (tab-separated; ``--benchmark-extended`` appends more columns, ignored here) and one
row per repeat of the job.

Units, as Snakemake writes them and as returned here:

- ``wall_s`` (column ``s``) and ``cpu_s`` (column ``cpu_time``, user + system of the process tree): seconds;
- ``max_rss_mb``, ``max_uss_mb``: peak resident / unique memory, MB (2**20 bytes);
- ``io_in_mb``, ``io_out_mb``: bytes read / written, MB (2**20 bytes);
- ``mean_load``: mean CPU load, percent of one core (100 = one core busy);
- ``output_sizes``: bytes (and MiB = 2**20 bytes).

A value Snakemake could not measure is ``NA`` (``-`` in some versions) and becomes ``None``. Snakemake samples
the job's process tree periodically (every 30 s by default, more often at the start): a job shorter than the
first sample has ``NA`` memory and CPU, and ``cpu_time`` counts only the processes seen at a sample, so it
under-counts jobs (or child processes) that end between samples. Wall time (``s``) is always measured. The
tables below therefore show both; ``cpu_time`` is a lower bound, not corrected here.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from .errors import InputFileError

# benchmark column -> key of a job's dict
COLUMNS = {
    "s": "wall_s",
    "cpu_time": "cpu_s",
    "max_rss": "max_rss_mb",
    "max_uss": "max_uss_mb",
    "io_in": "io_in_mb",
    "io_out": "io_out_mb",
    "mean_load": "mean_load",
}
MISSING = {"NA", "-", ""}

JOB_COLUMNS = [
    ("rule", "rule"),
    ("name", "job"),
    ("wall_s", "wall s"),
    ("cpu_s", "cpu_time s"),
    ("max_rss_mb", "max RSS MB"),
    ("max_uss_mb", "max USS MB"),
    ("io_in_mb", "read MB"),
    ("io_out_mb", "written MB"),
    ("mean_load", "mean load %"),
]
SUMMARY_COLUMNS = [
    ("rule", "job kind"),
    ("jobs", "jobs"),
    ("wall_total_s", "wall total s"),
    ("wall_mean_s", "wall mean s"),
    ("wall_max_s", "wall max s"),
    ("cpu_total_s", "cpu_time total s"),
    ("peak_rss_mb", "peak RSS MB"),
    ("unsampled", "unsampled jobs"),
]
SIZE_COLUMNS = [("directory", "directory"), ("files", "files"), ("bytes", "bytes"), ("mib", "MiB")]
CPU_NOTE = (
    "wall s: elapsed time; cpu_time s: CPU seconds of the processes Snakemake sampled, a lower bound "
    "(jobs or child processes ending between samples are under-counted); NA / unsampled: the job ended "
    "before its first sample"
)


def _number(text: str, path: Path, line: int, column: str) -> float | None:
    text = text.strip()
    if text in MISSING:
        return None
    try:
        value = float(text)
    except ValueError:
        raise InputFileError(path, f"line {line}, column {column}: {text!r} is not a number or NA") from None
    if not math.isfinite(value):
        raise InputFileError(path, f"line {line}, column {column}: {text!r} is not a finite number")
    return value


def _sum(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _max(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def read_benchmark(path) -> dict:
    """One job's benchmark table: a dict of ``rule`` (the directory), ``name`` (the file's stem), ``repeats``
    and the measurements (units in the module docstring; None where not measured). A job benchmarked with
    ``repeat()`` has several rows: times and I/O are summed (what the campaign spent), memory is the peak,
    ``mean_load`` the mean of the known values."""
    path = Path(path)
    try:
        lines = [(i, line) for i, line in enumerate(path.read_text().splitlines(), start=1) if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(path, f"cannot be read as text ({exc})") from None
    if not lines:
        raise InputFileError(path, "empty, expected a Snakemake benchmark table (header line 's\\th:m:s\\t...')")
    header = [h.strip() for h in lines[0][1].split("\t")]
    if header[0] != "s" or "max_rss" not in header:
        raise InputFileError(
            path,
            f"line {lines[0][0]}: not a Snakemake benchmark header "
            f"(expected 's\\th:m:s\\tmax_rss...', found {lines[0][1][:60]!r})",
        )
    if len(lines) == 1:
        raise InputFileError(path, "no data row after the header")
    rows = []
    for i, line in lines[1:]:
        fields = line.split("\t")
        if len(fields) != len(header):
            raise InputFileError(path, f"line {i}: {len(fields)} tab-separated fields, the header has {len(header)}")
        row = dict(zip(header, fields))
        rows.append({key: _number(row[col], path, i, col) if col in row else None for col, key in COLUMNS.items()})
    loads = [r["mean_load"] for r in rows if r["mean_load"] is not None]
    job = {"rule": path.parent.name, "name": path.stem, "repeats": len(rows)}
    for key in ("wall_s", "cpu_s", "io_in_mb", "io_out_mb"):
        job[key] = _sum(r[key] for r in rows)
    for key in ("max_rss_mb", "max_uss_mb"):
        job[key] = _max(r[key] for r in rows)
    job["mean_load"] = sum(loads) / len(loads) if loads else None
    return job


def benchmark_files(campaign_dir) -> list[Path]:
    """The benchmark tables ``benchmarks/*/*.tsv`` of a campaign directory; an error naming the directory when
    there are none."""
    campaign_dir = Path(campaign_dir)
    if not campaign_dir.is_dir():
        raise InputFileError(campaign_dir, "no such campaign directory")
    bench = campaign_dir / "benchmarks"
    files = sorted(bench.glob("*/*.tsv"))
    if not files:
        why = "no such directory" if not bench.is_dir() else "no benchmark tables {rule}/{name}.tsv in it"
        raise InputFileError(bench, f"{why}: run the workflow (its rules write their benchmark: tables) first")
    return files


def read_benchmarks(campaign_dir) -> list[dict]:
    """One dict per job (``read_benchmark``), from every ``benchmarks/*/*.tsv`` under ``campaign_dir``
    (e.g. ``results/paper-cheap``), ordered by rule then name."""
    return [read_benchmark(f) for f in benchmark_files(campaign_dir)]


def _kind_row(rule: str, jobs: Sequence[dict]) -> dict:
    walls = [j["wall_s"] for j in jobs if j["wall_s"] is not None]
    return {
        "rule": rule,
        "jobs": len(jobs),
        "wall_total_s": _sum(walls),
        "wall_mean_s": sum(walls) / len(walls) if walls else None,
        "wall_max_s": _max(walls),
        "cpu_total_s": _sum(j["cpu_s"] for j in jobs),
        "peak_rss_mb": _max(j["max_rss_mb"] for j in jobs),
        "unsampled": sum(j["cpu_s"] is None for j in jobs),
    }


def summarise(jobs: Sequence[dict]) -> list[dict]:
    """Per rule (job kind): ``jobs``, ``wall_total_s`` / ``wall_mean_s`` / ``wall_max_s``, ``cpu_total_s``
    (of the jobs with a cpu_time; a lower bound, see the module docstring), ``peak_rss_mb`` (max over the
    jobs) and ``unsampled`` (jobs without a cpu_time); ordered by total wall time, largest first, then a
    final row ``rule == "all"`` over every job. None where no job of the kind has the value."""
    by_rule: dict[str, list[dict]] = {}
    for job in jobs:
        by_rule.setdefault(job["rule"], []).append(job)
    rows = [_kind_row(rule, js) for rule, js in by_rule.items()]
    rows.sort(key=lambda r: (-(r["wall_total_s"] or 0.0), r["rule"]))
    return rows + [_kind_row("all", list(jobs))]


def output_sizes(campaign_dir) -> list[dict]:
    """Bytes and file count per top-level subdirectory of a campaign directory (structures, diagrams, dataset,
    models, report, logs, benchmarks, ...), largest first; files directly in it are the row ``.``; a final row
    ``all``. Symbolic links are counted as links (not followed)."""
    campaign_dir = Path(campaign_dir)
    if not campaign_dir.is_dir():
        raise InputFileError(campaign_dir, "no such campaign directory")
    rows = []
    loose = {"directory": ".", "files": 0, "bytes": 0}
    for entry in sorted(os.scandir(campaign_dir), key=lambda e: e.name):
        if entry.is_dir(follow_symlinks=False):
            files = size = 0
            for root, _dirs, names in os.walk(entry.path):
                for name in names:
                    files += 1
                    size += os.lstat(os.path.join(root, name)).st_size
            rows.append({"directory": entry.name, "files": files, "bytes": size})
        else:
            loose["files"] += 1
            loose["bytes"] += entry.stat(follow_symlinks=False).st_size
    if loose["files"]:
        rows.append(loose)
    rows.sort(key=lambda r: (-r["bytes"], r["directory"]))
    rows.append({"directory": "all", "files": sum(r["files"] for r in rows), "bytes": sum(r["bytes"] for r in rows)})
    for r in rows:
        r["mib"] = r["bytes"] / 2**20
    return rows


def _cell(value) -> str:
    if value is None:
        return "NA"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def format_table(rows: Sequence[dict], columns: Sequence[tuple[str, str]], markdown: bool = False) -> str:
    """A text table of ``rows`` with ``columns`` = [(key, heading), ...]: aligned plain text, or a Markdown
    (GitHub) table. Floats have two decimals, None is ``NA``; numbers are right-aligned."""
    headings = [h for _, h in columns]
    cells = [[_cell(r.get(k)) for k, _ in columns] for r in rows]
    numeric = [all(isinstance(r.get(k), (int, float)) or r.get(k) is None for r in rows) for k, _ in columns]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(headings)]

    def line(values):
        padded = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return ("| " + " | ".join(padded) + " |") if markdown else "  ".join(padded).rstrip()

    if markdown:
        rule = (
            "|" + "|".join(("-" * (w + 1) + ":") if num else ("-" * (w + 2)) for w, num in zip(widths, numeric)) + "|"
        )
    else:
        rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headings), rule] + [line(c) for c in cells])


def report(campaign_dir, markdown: bool = False, jobs: bool = False) -> str:
    """The text of ``topoamorph costs``: the per-job-kind table, the output sizes and, with ``jobs``, every job."""
    measured = read_benchmarks(campaign_dir)
    parts = [
        f"Jobs by kind, {campaign_dir}:",
        f"({CPU_NOTE})",
        "",
        format_table(summarise(measured), SUMMARY_COLUMNS, markdown),
        "",
        f"Output sizes, {campaign_dir}:",
        "",
        format_table(output_sizes(campaign_dir), SIZE_COLUMNS, markdown),
    ]
    if jobs:
        parts += ["", "Every job:", "", format_table(measured, JOB_COLUMNS, markdown)]
    return "\n".join(parts)
