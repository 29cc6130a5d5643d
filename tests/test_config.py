import pytest
import yaml

from topoamorph import config
from topoamorph.errors import ConfigError, InputFileError

from conftest import ROOT

DEFAULTS = ROOT / "config" / "config.yaml"


def load_with(tmp_path, overrides):
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump(overrides))
    return config.load(f, defaults=DEFAULTS)


def test_default_campaign_is_valid_and_meets_the_foundation_contract(default_config):
    c = default_config
    assert c["campaign"] == "demo" and c["source"]["kind"] == "generate"
    s = c["structures"]
    assert s["element"] == "C" and s["natoms"] == 64 and s["runs"] >= 2
    assert len(s["densities"]) >= 4 and min(s["densities"]) <= 1.5 and max(s["densities"]) >= 3.5
    temps = [(g["t_start_K"], g["t_end_K"]) for g in s["protocol"]["segments"]]
    assert temps[0][1] == max(t for seg in temps for t in seg) and temps[-1][1] == 300


def test_a_block_naming_another_engine_or_thermostat_replaces_the_default(tmp_path):
    c = load_with(
        tmp_path,
        {
            "structures": {
                "engine": {"name": "gpaw", "ecut_eV": 350},
                "protocol": {"thermostat": {"name": "nose_hoover_chain"}},
            }
        },
    )
    assert c["structures"]["engine"] == {"name": "gpaw", "ecut_eV": 350}  # no 'potential' from the lammps default
    assert c["structures"]["protocol"]["thermostat"] == {"name": "nose_hoover_chain"}
    same = load_with(tmp_path, {"structures": {"engine": {"name": "lammps"}}})
    assert same["structures"]["engine"]["potential"] == "rebo"  # same name: options still merge


def test_absent_keys_take_defaults_and_nested_keys_merge(tmp_path):
    c = load_with(tmp_path, {"campaign": "x", "train": {"cnn": {"epochs": 3}}})
    assert c["campaign"] == "x" and c["train"]["cnn"]["epochs"] == 3
    assert c["train"]["cnn"]["batch_size"] == yaml.safe_load(DEFAULTS.read_text())["train"]["cnn"]["batch_size"]


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"structures": {"bogus": 1}}, "structures.bogus"),
        ({"nonsense": 1}, "nonsense"),
        ({"structures": {"natoms": "many"}}, "structures.natoms"),
        ({"structures": {"densities": []}}, "structures.densities"),
        ({"structures": {"densities": [2.0, -1.0]}}, "structures.densities.1"),
        ({"structures": {"engine": {"name": "nwchem"}}}, "structures.engine.name"),
        ({"structures": {"engine": {"name": "lammps", "potential": "eam"}}}, "structures.engine.potential"),
        ({"structures": {"engine": {"name": "lammps", "kpoints": 3}}}, "structures.engine.kpoints"),
        ({"structures": {"protocol": {"thermostat": {"name": "berendsen"}}}}, "structures.protocol.thermostat.name"),
        ({"homology": {"maxdim": 3}}, "homology.maxdim"),
        ({"homology": {"backend": "cech"}}, "homology.backend"),
        ({"train": {"split": {"test_fraction": 1.5}}}, "train.split.test_fraction"),
        ({"train": {"cnn": {"epochs": 0}}}, "train.cnn.epochs"),
        ({"descriptors": {"range": [5.0, 1.0]}}, "descriptors.range"),
        ({"homology": {"maxdim": 1}}, "descriptors.dims.2"),
        ({"campaign": "has space"}, "campaign"),
        ({"structures": {"engine": {"name": "gpaw", "potential": "rebo"}, "natoms": 8}}, "structures.engine.potential"),
        ({"structures": {"engine": {"name": "gpaw", "mode": "paw"}}}, "structures.engine.mode"),
        ({"structures": {"engine": {"name": "gpaw", "kpts": [1, 1]}}}, "structures.engine.kpts"),
        ({"structures": {"engine": {"name": "cp2k", "mpi_ranks": 0}}}, "structures.engine.mpi_ranks"),
        ({"relabel": {"engine": {"name": "vasp", "encut_eV": -1}}}, "relabel.engine.encut_eV"),
        ({"relabel": {"forces": True}}, "relabel.engine"),
        (
            {"structures": {"protocol": {"thermostat": {"name": "nose_hoover_chain", "chain_length": 0}}}},
            "structures.protocol.thermostat.chain_length",
        ),
        ({"structures": {"protocol": {"checkpoint_every_steps": 0}}}, "structures.protocol.checkpoint_every_steps"),
        ({"train": {"split": {"by": "density"}}}, "train.split.test_densities"),
        ({"train": {"split": {"by": "density", "test_densities": [3.5, 3.6]}}}, "train.split.test_densities.1"),
        (
            {"train": {"split": {"by": "density", "test_densities": [1.5, 2.0, 2.5, 3.0, 3.5]}}},
            "train.split.test_densities",
        ),
        ({"active": {"initial": 10}}, "active.label"),
        ({"active": {"label": {"engine": {"name": "mlip"}}, "per_round": 0}}, "active.per_round"),
        ({"active": {"label": {"engine": {"name": "mlip"}}, "select": "all"}}, "active.select"),
        ({"active": {"label": {"engine": {"name": "mlip"}}, "compare": ["worst"]}}, "active.compare.0"),
        ({"active": {"label": {"engine": {"name": "mlip"}}}, "train": {"split": {"validation_fraction": 0}}}, "active"),
        ({"train": {"delta": {"engine": {"name": "mlip", "threads": 0}}}}, "train.delta.engine.threads"),
        ({"train": {"delta": {}}}, "train.delta.engine"),
    ],
)
def test_bad_config_names_the_key(tmp_path, overrides, key):
    with pytest.raises(ConfigError) as exc:
        load_with(tmp_path, overrides)
    assert exc.value.key == key, str(exc.value)
    assert f"'{key}'" in str(exc.value)


def test_segments_must_chain_and_fit_their_frames(tmp_path):
    segs = yaml.safe_load(DEFAULTS.read_text())["structures"]["protocol"]["segments"]
    broken = [dict(s) for s in segs]
    broken[2]["t_start_K"] = 1234
    with pytest.raises(ConfigError, match="segments.2.t_start_K"):
        load_with(tmp_path, {"structures": {"protocol": {"segments": broken}}})
    crowded = [dict(s) for s in segs]
    crowded[1]["frames"] = 10**6
    with pytest.raises(ConfigError, match="segments.1.frames"):
        load_with(tmp_path, {"structures": {"protocol": {"segments": crowded}}})


def test_missing_or_malformed_config_file_is_named(tmp_path):
    with pytest.raises(InputFileError, match="nope.yaml"):
        config.load(tmp_path / "nope.yaml", defaults=DEFAULTS)
    bad = tmp_path / "bad.yaml"
    bad.write_text("campaign: [unclosed\n")
    with pytest.raises(InputFileError, match="bad.yaml"):
        config.load(bad, defaults=DEFAULTS)


def test_canonical_config_ignores_key_order():
    a = {"b": 1, "a": {"y": [3, {"q": 1, "p": 2}], "x": 2}}
    b = {"a": {"x": 2, "y": [3, {"p": 2, "q": 1}]}, "b": 1}
    assert repr(config.canonical(a)) == repr(config.canonical(b))
    assert config.canonical(a)["a"]["y"][0] == 3


def test_evaluate_files_need_distinct_names_that_can_name_a_directory(tmp_path):
    from topoamorph import config
    from topoamorph.errors import ConfigError
    from topoamorph.settings import Campaign

    def load(evaluate):
        f = tmp_path / "c.yaml"
        f.write_text(yaml.safe_dump({"evaluate": evaluate}))
        return config.load(f, defaults=ROOT / "config" / "config.yaml")

    cfg = load(["data/big.extxyz", {"file": "other/big.extxyz@0:10", "name": "big2", "energy_key": "free_energy"}])
    evs = Campaign.from_config(cfg).evaluations()
    assert [(e.name, e.energy_key) for e in evs] == [("big", "energy"), ("big2", "free_energy")]
    with pytest.raises(ConfigError, match=r"evaluate.1.*name 'big' is also evaluate.0's"):
        load(["a/big.extxyz", "b/big.extxyz"])
    with pytest.raises(ConfigError, match="evaluate.0.name"):
        load(["a/ big.extxyz"])
    with pytest.raises(ConfigError, match="evaluate.0"):
        load([{"file": "x.extxyz", "name": ".."}])
