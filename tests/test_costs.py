"""costs: the jobs' Snakemake benchmark tables read, summed per job kind, and the campaign's output sizes."""

from pathlib import Path

import pytest

from topoamorph import cli, costs
from topoamorph.errors import InputFileError
from topoamorph.paths import CampaignPaths

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def bench(campaign, rule, name, *rows):
    path = campaign / "benchmarks" / rule / f"{name}.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join("\t".join(map(str, r)) + "\n" for r in rows))
    return path


@pytest.fixture
def campaign(tmp_path):
    c = tmp_path / "results" / "demo"
    bench(c, "melt_quench", "rho2.50_run1", (100.5, "0:01:40", 512.0, 900, 500.25, 505, 1.5, 20.0, 95.0, 98.0))
    bench(c, "melt_quench", "rho2.50_run2", (50.5, "0:00:50", 600.0, 900, 590.0, 595, 0.5, 10.0, 90.0, 45.5))
    bench(c, "homology", "batch0000", (30.0, "0:00:30", 2048.0, 3000, 2000.0, 2010, 100.0, 5.0, 380.0, 110.0))
    bench(c, "homology", "batch0001", (25.0, "0:00:25", 1024.0, 3000, 1000.0, 1010, 100.0, 5.0, 370.0, 90.0))
    # a job too short to be sampled: NA, and "-" as some Snakemake versions write it
    bench(c, "report", "job", (0.75, "0:00:00", "NA", "NA", "NA", "NA", "NA", "NA", "NA", "NA"))
    bench(c, "merge", "job", (0.25, "0:00:00", "-", "-", "-", "-", "-", "-", "-", "-"))
    for sub, sizes in {"structures": [1000, 24], "models": [300], "report": [5]}.items():
        (c / sub).mkdir()
        for i, n in enumerate(sizes):
            (c / sub / f"f{i}.bin").write_bytes(b"x" * n)
    (c / "structures" / "deep").mkdir()
    (c / "structures" / "deep" / "g.bin").write_bytes(b"y" * 76)
    return c


def test_reads_the_tables_where_paths_puts_them(tmp_path):
    paths = CampaignPaths("demo", root=str(tmp_path / "results"))
    for rule, name in (("homology", "batch0003"), ("report", "")):
        table = Path(paths.benchmark(rule, name))
        table.parent.mkdir(parents=True, exist_ok=True)
        table.write_text(HEADER + "2.0\t0:00:02\t10\t20\t9\t9\t0\t1\t80\t1.5\n")
    jobs = costs.read_benchmarks(paths.base)
    assert [(j["rule"], j["name"], j["wall_s"]) for j in jobs] == [
        ("homology", "batch0003", 2.0),
        ("report", "job", 2.0),
    ]


def test_read_benchmarks(campaign):
    jobs = costs.read_benchmarks(campaign)
    assert [(j["rule"], j["name"]) for j in jobs] == [
        ("homology", "batch0000"),
        ("homology", "batch0001"),
        ("melt_quench", "rho2.50_run1"),
        ("melt_quench", "rho2.50_run2"),
        ("merge", "job"),
        ("report", "job"),
    ]
    first = jobs[2]
    assert first == {
        "rule": "melt_quench",
        "name": "rho2.50_run1",
        "repeats": 1,
        "wall_s": 100.5,
        "cpu_s": 98.0,
        "io_in_mb": 1.5,
        "io_out_mb": 20.0,
        "max_rss_mb": 512.0,
        "max_uss_mb": 500.25,
        "mean_load": 95.0,
    }
    for short in jobs[4:]:
        assert short["wall_s"] in (0.25, 0.75)
        assert all(
            short[k] is None for k in ("cpu_s", "max_rss_mb", "max_uss_mb", "io_in_mb", "io_out_mb", "mean_load")
        )


def test_repeats_sum_times_and_take_the_peak_memory(tmp_path):
    path = bench(
        tmp_path,
        "train",
        "ridge",
        (10.0, "0:00:10", 100.0, 0, 90.0, 0, 1.0, 2.0, 50.0, 9.0),
        (12.0, "0:00:12", 150.0, 0, 80.0, 0, 1.0, 2.0, "NA", "NA"),
    )
    job = costs.read_benchmark(path)
    assert (job["repeats"], job["wall_s"], job["cpu_s"], job["max_rss_mb"], job["max_uss_mb"]) == (
        2,
        22.0,
        9.0,
        150.0,
        90.0,
    )
    assert (job["io_in_mb"], job["io_out_mb"], job["mean_load"]) == (2.0, 4.0, 50.0)


def test_summarise(campaign):
    rows = costs.summarise(costs.read_benchmarks(campaign))
    assert [r["rule"] for r in rows] == ["melt_quench", "homology", "report", "merge", "all"]
    mq, hom, rep, merge, everything = rows
    assert mq == {
        "rule": "melt_quench",
        "jobs": 2,
        "wall_total_s": 151.0,
        "wall_mean_s": 75.5,
        "wall_max_s": 100.5,
        "cpu_total_s": 143.5,
        "peak_rss_mb": 600.0,
        "unsampled": 0,
    }
    assert hom == {
        "rule": "homology",
        "jobs": 2,
        "wall_total_s": 55.0,
        "wall_mean_s": 27.5,
        "wall_max_s": 30.0,
        "cpu_total_s": 200.0,
        "peak_rss_mb": 2048.0,
        "unsampled": 0,
    }
    assert rep == {
        "rule": "report",
        "jobs": 1,
        "wall_total_s": 0.75,
        "wall_mean_s": 0.75,
        "wall_max_s": 0.75,
        "cpu_total_s": None,
        "peak_rss_mb": None,
        "unsampled": 1,
    }
    assert merge["unsampled"] == 1 and merge["wall_total_s"] == 0.25
    assert everything == {
        "rule": "all",
        "jobs": 6,
        "wall_total_s": 207.0,
        "wall_mean_s": 34.5,
        "wall_max_s": 100.5,
        "cpu_total_s": 343.5,
        "peak_rss_mb": 2048.0,
        "unsampled": 2,
    }


def test_output_sizes(campaign):
    (campaign / "loose.txt").write_bytes(b"z" * 7)
    rows = costs.output_sizes(campaign)
    by = {r["directory"]: (r["files"], r["bytes"]) for r in rows}
    assert [r["directory"] for r in rows][:3] == ["structures", "benchmarks", "models"]
    assert by["structures"] == (3, 1100)
    assert by["models"] == (1, 300)
    assert by["report"] == (1, 5)
    assert by["."] == (1, 7)
    assert by["benchmarks"][0] == 6
    assert rows[-1]["directory"] == "all"
    assert by["all"] == (
        sum(f for d, (f, _) in by.items() if d != "all"),
        sum(b for d, (_, b) in by.items() if d != "all"),
    )
    assert rows[0]["mib"] == 1100 / 2**20


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "empty"),
        ("time\tmemory\n1\t2\n", "not a Snakemake benchmark header"),
        (HEADER, "no data row"),
        (HEADER + "1.0\t0:00:01\t5\n", "line 2: 3 tab-separated fields, the header has 10"),
        (HEADER + "1.0\t0:00:01\tlots\t0\t0\t0\t0\t0\t0\t0\n", "line 2, column max_rss: 'lots' is not a number"),
    ],
)
def test_a_malformed_table_names_the_file_and_why(campaign, text, reason):
    bad = campaign / "benchmarks" / "homology" / "batch0002.tsv"
    bad.write_text(text)
    with pytest.raises(InputFileError, match=reason) as exc:
        costs.read_benchmarks(campaign)
    assert exc.value.path == str(bad)
    assert str(exc.value).startswith(str(bad))


def test_no_benchmarks_names_the_directory(tmp_path):
    (tmp_path / "c").mkdir()
    with pytest.raises(InputFileError, match="no such directory") as exc:
        costs.read_benchmarks(tmp_path / "c")
    assert exc.value.path == str(tmp_path / "c" / "benchmarks")
    (tmp_path / "c" / "benchmarks" / "homology").mkdir(parents=True)
    with pytest.raises(InputFileError, match="no benchmark tables"):
        costs.read_benchmarks(tmp_path / "c")
    with pytest.raises(InputFileError, match="no such campaign directory"):
        costs.read_benchmarks(tmp_path / "absent")


def test_format_table_plain_and_markdown():
    rows = [{"rule": "homology", "jobs": 2, "wall": 55.0}, {"rule": "report", "jobs": 1, "wall": None}]
    cols = [("rule", "kind"), ("jobs", "jobs"), ("wall", "wall s")]
    assert costs.format_table(rows, cols).splitlines() == [
        "kind      jobs  wall s",
        "--------  ----  ------",
        "homology     2   55.00",
        "report       1      NA",
    ]
    assert costs.format_table(rows, cols, markdown=True).splitlines() == [
        "| kind     | jobs | wall s |",
        "|----------|-----:|-------:|",
        "| homology |    2 |  55.00 |",
        "| report   |    1 |     NA |",
    ]


def test_cli_costs(campaign, capsys):
    assert cli.main(["costs", str(campaign)]) == 0
    out = capsys.readouterr().out
    assert "cpu_time" in out and "lower bound" in out  # the sampling caveat is printed with the numbers
    lines = out.splitlines()
    assert any(line.split()[:3] == ["melt_quench", "2", "151.00"] for line in lines)
    assert any(line.split()[:4] == ["all", "6", "207.00", "34.50"] for line in lines)
    assert any(line.split()[:3] == ["structures", "3", "1100"] for line in lines)
    assert "rho2.50_run1" not in out

    assert cli.main(["costs", str(campaign), "--markdown", "--jobs"]) == 0
    out = capsys.readouterr().out
    assert "| melt_quench |    2 |       151.00 |" in out
    assert any(line.startswith("| melt_quench | rho2.50_run1 ") for line in out.splitlines())


def test_cli_costs_without_benchmarks_is_one_line_and_fails(tmp_path, capsys):
    (tmp_path / "c").mkdir()
    assert cli.main(["costs", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("topoamorph: error: ") and str(tmp_path / "c" / "benchmarks") in err
