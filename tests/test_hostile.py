"""Hostile inputs (issue 15): nothing from a config is executed, nothing silently wrong, each problem named in
one line before a job is queued."""

import gzip
import re
import shlex
import shutil

import numpy as np
import pytest
import yaml

from topoamorph import config
from topoamorph.errors import ConfigError, InputFileError

from conftest import ROOT, snakemake

DEFAULTS = ROOT / "config" / "config.yaml"
GAP = ROOT / "tests" / "data" / "gap20" / "gap20_LD_iter1.extxyz"


def load(tmp_path, text: str):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    return config.load(f, defaults=DEFAULTS)


@pytest.mark.parametrize(
    "text, key",
    [
        ("structures: {densities: [2.0, 2.001]}", "structures.densities.1"),  # both would be rho2.00
        ("structures: {densities: [.nan]}", "structures.densities.0"),
        ("descriptors: {range: [0, .inf]}", "descriptors.range.1"),
        ("train: {split: {test_fraction: .nan}}", "train.split.test_fraction"),
        ("campaign: '..'", "campaign"),
        ('campaign: "x\\n"', "campaign"),
        ("campaign: -rf", "campaign"),
        ("structures: {natoms: 1000000000}", "structures.natoms"),
        ("structures: {densities: [2000.0]}", "structures.densities.0"),  # kg/m³ typed for g/cm³
        ("descriptors: {bins: 100000}", "descriptors.bins"),
        ("report: {dpi: 100000}", "report.dpi"),
        ("seed: 1099511627776", "seed"),
        ("source: {kind: import, file: a.xyz, energy_key: 'energy$(touch /tmp/x)'}", "source.energy_key"),
        ('source: {kind: import, file: a.xyz, energy_key: "energy\\n"}', "source.energy_key"),  # $ before a newline
        ("structures: {natoms: 64.0}", "structures.natoms"),
        ("evaluate: [{file: x.extxyz, name: " + "a" * 64 + "}]", "evaluate.0.name"),  # Snakemake: periodic wildcard
        ("evaluate: [{file: x.extxyz, name: " + "b" * 60 + "}]", "evaluate.0.name"),
        ("source: {kind: import, file: 'data{1}.extxyz'}", "source.file"),  # Snakemake: a wildcard
        ("evaluate: ['big{x}.extxyz']", "evaluate.0"),  # an integer, not a float that equals one
        ("homology: {batch_size: 270.0}", "homology.batch_size"),
        ("structures: {runs: 1000000}", "structures.runs"),  # Snakemake would plan for hours
    ],
)
def test_bad_values_are_refused_naming_the_key(tmp_path, text, key):
    with pytest.raises(ConfigError, match=rf"config key '{re.escape(key)}'"):
        load(tmp_path, text)


def test_honest_energy_keys_pass_and_yaml_errors_give_line_and_column(tmp_path):
    cfg = load(tmp_path, "source: {kind: import, file: a.xyz, energy_key: 'DFT energy(eV)'}")
    assert cfg["source"]["energy_key"] == "DFT energy(eV)"
    with pytest.raises(InputFileError, match=r"c\.yaml: not valid YAML: line 2, column 12: mapping values are not"):
        load(tmp_path, "seed: 1\ncampaign: x: y\n")


def test_a_yaml_error_in_a_configfile_is_named_before_snakemake_reads_it(tmp_path):
    """Snakemake's loader says only "Config file is not valid JSON or YAML": `topoamorph submit` and the make
    targets with CONFIG= check the file first and name its line and column (or the config key)."""
    import subprocess

    from topoamorph import submit

    from conftest import venv_tool

    bad = tmp_path / "bad.yaml"
    bad.write_text("campaign: demo\nstructures: {natoms: 64\n")
    typo = tmp_path / "typo.yaml"
    typo.write_text("structures: {natom: 64}\n")
    good = tmp_path / "good.yaml"
    good.write_text("campaign: ok\n")
    assert submit.configfiles(
        ["--configfile", "a.yaml", "b.yaml", "--cores", "2", "--configfiles=c.yaml"], {"configfile": "p.yaml"}
    ) == ["p.yaml", "a.yaml", "b.yaml", "c.yaml"]
    assert submit.check_configs(["--configfile", str(good)]) == [str(good)]
    with pytest.raises(InputFileError, match=r"bad\.yaml: not valid YAML: line 3, column 1"):
        submit.check_configs(["--configfile", str(good), str(bad)])
    with pytest.raises(ConfigError, match=r"structures\.natom"):
        submit.check_configs(["--configfile=typo.yaml"], workdir=tmp_path)
    before = {p: p.read_bytes() for p in (bad, typo, good)}
    p = subprocess.run(
        [
            venv_tool("topoamorph"),
            "submit",
            ROOT / "profiles" / "local",
            "-n",
            "--directory",
            tmp_path,
            "--",
            "--configfile",
            bad,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2 and "bad.yaml: not valid YAML: line 3, column 1" in p.stderr, p.stderr
    assert p.stderr.strip().count("\n") == 0 and "snakemake" not in p.stderr
    p = subprocess.run(
        ["make", "-s", "-C", ROOT, "dry-run", f"CONFIG={bad}"], capture_output=True, text=True, timeout=120
    )
    assert p.returncode != 0 and "bad.yaml: not valid YAML: line 3, column 1" in p.stderr, p.stderr
    assert "Config file is not valid JSON or YAML" not in p.stdout + p.stderr
    assert all(p.read_bytes() == b for p, b in before.items())


def test_compressed_files_are_named_not_misread(tmp_path):
    from topoamorph.formats.frames import count_frames

    gz = tmp_path / "frames.extxyz.gz"
    gz.write_bytes(gzip.compress(GAP.read_bytes()))
    with pytest.raises(InputFileError, match=r"frames\.extxyz\.gz: gzip-compressed: .* decompress it first"):
        count_frames(gz)


def test_overlap_check_is_linear_and_names_the_atoms():
    from ase.build import bulk

    from topoamorph.importer import check_frame

    big = bulk("C", "diamond", cubic=True).repeat((12, 12, 12))  # 13,824 atoms: all distances would be 1.5 GB
    big.info["energy"] = -1.0
    assert check_frame(big, "big.xyz", 0, "energy", {"C"}) == -1.0
    big.positions[7] = big.positions[3] + [0.1, 0.0, 0.0]
    with pytest.raises(InputFileError, match=r"big\.xyz, frame 0: atoms 3 and 7 overlap \(0\.100 Å apart"):
        check_frame(big, "big.xyz", 0, "energy", {"C"})


def test_ridge_records_the_folds_it_used():
    from topoamorph.models import RidgeModel

    rng = np.random.default_rng(0)
    m = RidgeModel(cv_folds=10).fit(rng.random((4, 3)), rng.random(4))
    assert m.cv_folds_used_ == 4


def test_any_number_of_batches_is_planned():
    smk = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    pattern = re.search(r'batch=r"([^"]+)"', smk).group(1)
    ids = [f"{i:04d}" for i in (0, 9999, 10000, 10175, 123456)]
    assert all(re.fullmatch(pattern, i) for i in ids)


def test_duplicate_frames_across_the_split_warn_or_refuse(tmp_path, caplog):
    from topoamorph.formats.dataset import write_dataset
    from topoamorph.io import read_json
    from topoamorph.stages.train import split

    rng = np.random.default_rng(0)
    X = rng.random((40, 1, 4, 4))
    X[30:] = X[:10]  # ten frames imported twice
    y = rng.random(40)
    y[30:] = y[:10]
    meta = {
        "source": np.array(["a.xyz"] * 40, dtype=object),
        "index": np.arange(40),
        "energy": y * 64,
        "density": np.full(40, 2.5),
        "n_atoms": np.full(40, 64),
    }
    ds = tmp_path / "d.h5"
    write_dataset(ds, X, y, meta, {"units": "angstrom^2"})
    settings = {"by": "frame", "test_fraction": 0.3, "validation_fraction": 0.1}
    s = split(dataset=str(ds), split=str(tmp_path / "s.json"), settings=settings, seed=1)
    assert s["duplicates"]["identical_groups"] == 10 and s["duplicates"]["across_parts"]
    assert "test frames leak into training" in caplog.text
    assert read_json(tmp_path / "s.json")["duplicates"] == s["duplicates"]
    with pytest.raises(InputFileError, match=r"d\.h5: .* groups of identical frames .* refuse"):
        split(dataset=str(ds), split=str(tmp_path / "s.json"), settings=dict(settings, duplicates="refuse"), seed=1)


def string_keys(obj, prefix=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from string_keys(v, f"{prefix}.{k}" if prefix else k)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from string_keys(v, f"{prefix}.{i}")
    elif isinstance(obj, str):
        yield prefix


def set_key(cfg, key, value):
    *head, last = key.split(".")
    node = cfg
    for k in head:
        node = node[int(k)] if isinstance(node, list) else node[k]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


@pytest.mark.workflow
def test_no_config_string_reaches_a_shell_command_unquoted(tmp_path):
    """Every string-valued key of an import campaign (the defaults plus the import keys), set to a value with
    shell metacharacters: either the config is refused, or every job's command line (dry-run, -p) carries it
    as one quoted word. Engine `launcher` and `command` strings are shell by design (README)."""
    shutil.copy(GAP, tmp_path / "gap.extxyz")
    base = config.load(
        overrides={
            "source": {"kind": "import", "file": "gap.extxyz"},
            "evaluate": [{"file": "gap.extxyz", "name": "ev"}],
        },
        defaults=DEFAULTS,
    )
    evil = "x $(touch MARK) `touch MARK`; touch MARK"
    shutil.copy(GAP, tmp_path / evil)  # file-valued keys point at a real file of that name
    reached = []
    for key in string_keys(base):
        cfg = yaml.safe_load(yaml.safe_dump(base))
        set_key(cfg, key, evil)
        try:
            config.validate(cfg)
        except ConfigError:
            continue
        f = tmp_path / "evil.yaml"
        f.write_text(yaml.safe_dump(cfg))
        p = snakemake(["-n", "-p", "--configfile", f], tmp_path, check=False)
        for line in (p.stdout + p.stderr).splitlines():
            if "MARK" in line and "topoamorph " in line:
                words = shlex.split(line)
                assert not any("MARK" in w and evil not in w for w in words), (key, line)
                reached.append(key)
    assert not (tmp_path / "MARK").exists()
    assert "source.file" in reached  # the imported file's name reaches the homology command line, quoted


@pytest.mark.workflow
def test_a_file_name_starting_with_a_dash_is_never_an_option(tmp_path):
    shutil.copy(GAP, tmp_path / "-frames.extxyz")
    cfg = tmp_path / "dash.yaml"
    cfg.write_text(yaml.safe_dump({"source": {"kind": "import", "file": "-frames.extxyz"}}))
    p = snakemake(["-n", "-p", "--configfile", cfg], tmp_path)
    line = next(x for x in p.stdout.splitlines() if "topoamorph homology" in x)
    assert "./-frames.extxyz@0:80" in line


@pytest.mark.parametrize(
    "text, message",
    [
        ("account: [proj\n", r"site\.yaml: not valid YAML: line 2, column 1"),
        ("- account\n- partition\n", r"site\.yaml: must be a mapping of keys to values"),
        ("account: {a: 1}\n", r"site\.yaml: site key 'account' must be a single value"),
    ],
)
def test_a_malformed_site_file_is_one_line(tmp_path, text, message):
    from topoamorph import submit

    site = tmp_path / "site.yaml"
    site.write_text(text)
    with pytest.raises(InputFileError, match=message):
        submit.site_values(site, environ={})


def _replace_keeping_mtime(path, mutate):
    """Rewrite a file as a user replacing it mid-campaign might, with its old modification time (so that
    Snakemake's timestamps do not notice): the case only the manifest's SHA-256 catches."""
    import os

    st = path.stat()
    mutate(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _shift_one_energy(path):
    text = path.read_text()
    path.write_text(text.replace("energy=", "energy=1", 1))


def test_imported_files_are_fingerprinted_and_a_change_is_refused(tmp_path, capsys):
    from topoamorph import importer
    from topoamorph.settings import HomologySettings
    from topoamorph.stages.evaluate import evaluate, validate_evaluation
    from topoamorph.stages.homology import homology

    f = tmp_path / "gap.extxyz"
    shutil.copy(GAP, f)
    m = importer.validate({"kind": "import", "file": str(f)}, ["C"])
    entry = m["files"]["all"]
    assert entry["bytes"] == f.stat().st_size and len(entry["sha256"]) == 64
    importer.check_unchanged(m, [str(f), str(tmp_path / "generated.extxyz")])  # unlisted paths are not checked
    _replace_keeping_mtime(f, _shift_one_energy)
    with pytest.raises(InputFileError, match=r"gap\.extxyz: changed since it was validated"):
        importer.check_unchanged(m, [str(f)])
    # the homology job (serial here; rank 0 checks under MPI) refuses before computing anything
    manifest = tmp_path / "manifest.json"
    from topoamorph.io import write_json

    write_json(manifest, m)
    out = tmp_path / "d.h5"
    status = homology(
        frames=[f"{f}@0:2"],
        diagrams=str(out),
        settings=HomologySettings.from_config({}),
        energy_key="energy",
        manifest=str(manifest),
    )
    assert status == 1 and not out.exists()
    assert "changed since it was validated" in capsys.readouterr().err
    # an evaluation file: validated, then replaced before the evaluate job
    ev = tmp_path / "ev.extxyz"
    shutil.copy(GAP, ev)
    validate_evaluation(
        frames=str(ev), selection="@0:4", manifest=str(tmp_path / "ev.json"), energy_key="energy", species=["C"]
    )
    ev.unlink()
    with pytest.raises(InputFileError, match=r"ev\.extxyz: removed since it was validated"):
        evaluate(
            frames=str(ev),
            selection="@0:4",
            manifest=str(tmp_path / "ev.json"),
            model_files=[],
            names=[],
            predictions=[],
            metrics=str(tmp_path / "m.json"),
            energy_key="energy",
        )


@pytest.mark.workflow
def test_an_import_file_replaced_during_the_campaign_stops_it_naming_the_file(tmp_path):
    f = tmp_path / "gap.extxyz"
    shutil.copy(GAP, f)
    cfg = tmp_path / "imp.yaml"
    cfg.write_text(yaml.safe_dump({"campaign": "chg", "source": {"kind": "import", "file": "gap.extxyz"}}))
    snakemake(["results/chg/import/manifest.json", "--cores", "1", "--configfile", cfg], tmp_path)
    _replace_keeping_mtime(f, _shift_one_energy)
    p = snakemake(["--cores", "1", "--configfile", cfg], tmp_path, check=False, timeout=600)
    assert p.returncode != 0
    log = next((tmp_path / "results" / "chg" / "logs" / "homology").glob("*")).read_text()
    assert "gap.extxyz: changed since it was validated" in log
    assert not list((tmp_path / "results" / "chg").glob("diagrams/*.h5"))


@pytest.mark.workflow
def test_a_missing_engine_installation_stops_the_dry_run_in_one_line(tmp_path):
    cfg = tmp_path / "vasp.yaml"
    cfg.write_text(yaml.safe_dump({"structures": {"engine": {"name": "vasp", "command": "no-such-vasp"}}}))
    p = snakemake(["-n", "--configfile", cfg], tmp_path, check=False)
    out = p.stdout + p.stderr
    assert p.returncode != 0 and "engine not installed: config key 'structures.engine': vasp is not usable" in out
    assert "program 'no-such-vasp' (structures.engine.command) not found on PATH" in out
    assert "Traceback" not in out and not (tmp_path / "results").exists()
    cfg.write_text(yaml.safe_dump({"relabel": {"engine": {"name": "espresso", "pseudo_dir": str(tmp_path)}}}))
    p = snakemake(["-n", "--configfile", cfg], tmp_path, check=False)
    assert p.returncode != 0 and "'relabel.engine': espresso" in p.stdout + p.stderr
    assert "pseudopotential C.pbe-rrkjus.UPF not in" in p.stdout + p.stderr
    cfg.write_text(yaml.safe_dump({"relabel": {"engine": {"name": "espresso", "check_install": False}}}))
    snakemake(["-n", "--configfile", cfg], tmp_path)  # installed only where the jobs run: planned


def test_a_key_given_twice_is_refused_with_its_lines(tmp_path):
    f = tmp_path / "twice.yaml"
    f.write_text("campaign: a\nstructures:\n  natoms: 64\n  natoms: 216\n")
    with pytest.raises(
        InputFileError,
        match=r"twice\.yaml: not valid YAML: line 4, column 3: key 'natoms' appears "
        r"twice in one mapping \(line 3 and here\)",
    ):
        config.load(f, defaults=DEFAULTS)


def test_site_values_stay_strings_and_a_named_site_file_must_exist(tmp_path):
    from topoamorph import submit

    site = tmp_path / "site.yaml"
    site.write_text("account: 012345\npartition: no\nqos: 0x10\nconstraint: ~\n")
    assert submit.site_values(site, environ={}) == {"account": "012345", "partition": "no", "qos": "0x10"}
    with pytest.raises(InputFileError, match=r"absent\.yaml: site file not found \(TOPOAMORPH_SITE\)"):
        submit.site_values(None, environ={"TOPOAMORPH_SITE": str(tmp_path / "absent.yaml")})
    site.write_bytes(b"\x00\xff\xfe binary")
    with pytest.raises(InputFileError, match=r"site\.yaml: not a text file"):
        submit.site_values(site, environ={})


def test_a_malformed_profile_is_one_line(tmp_path):
    from topoamorph import submit

    (tmp_path / "config.yaml").write_text("executor: slurm\njobs: [1\n")
    with pytest.raises(InputFileError, match=r"config\.yaml: not valid YAML: line 3, column 1"):
        submit.merged_profile(tmp_path, {})
    (tmp_path / "config.yaml").write_bytes(b"\x00\xff\xfe")
    with pytest.raises(InputFileError, match=r"config\.yaml: not a text file"):
        submit.merged_profile(tmp_path, {})
