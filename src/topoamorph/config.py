"""Campaign configuration: defaults, merging, validation with messages that name the key."""

from __future__ import annotations

import math
import re
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from . import settings
from .errors import ConfigError, InputFileError
from .settings import deep_merge  # noqa: F401 (the merge of config files, defined with the defaults)


def schema() -> dict:
    text = resources.files("topoamorph").joinpath("schemas/config.schema.yaml").read_text()
    return _anchored(yaml.safe_load(text))


def _anchored(node):
    """The schema with every pattern's final ``$`` made ``\\Z``: jsonschema searches with Python's ``re``, whose
    ``$`` also matches before a final newline (``energy_key: "energy\\n"`` would pass, then match no frame)."""
    if isinstance(node, dict):
        return {
            k: (v[:-1] + r"\Z" if k == "pattern" and isinstance(v, str) and v.endswith("$") else _anchored(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_anchored(v) for v in node]
    return node


def _refuse_repeated_keys(loader, node, deep):
    """A mapping node's keys, each at most once (PyYAML keeps the last of a repeated key silently)."""
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, (str, int, float, bool)) and key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"key {key!r} appears twice in one mapping (line {seen[key] + 1} and here)",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML 1.1 safe loading that refuses a key given twice in one mapping."""

    def construct_mapping(self, node, deep=False):
        _refuse_repeated_keys(self, node, deep)
        return yaml.SafeLoader.construct_mapping(self, node, deep)


class _StringLoader(yaml.BaseLoader):
    """Every scalar a string, as written (no YAML 1.1 typing: ``012345`` stays ``"012345"``, ``no`` stays
    ``"no"``), and no key given twice."""

    def construct_mapping(self, node, deep=False):
        _refuse_repeated_keys(self, node, deep)
        return yaml.BaseLoader.construct_mapping(self, node, deep)


def load_yaml(path, strings: bool = False) -> dict:
    """A YAML file of key: value lines as a mapping; a syntax error, a key given twice, a binary file or a
    non-mapping is one line naming the file (and the line and column). ``strings``: every scalar as written."""
    path = Path(path)
    try:
        data = yaml.load(path.read_text(), Loader=_StringLoader if strings else _UniqueKeyLoader)  # noqa: S506
    except FileNotFoundError:
        raise InputFileError(path, "config file not found") from None
    except IsADirectoryError:
        raise InputFileError(path, "is a directory, not a YAML file") from None
    except UnicodeDecodeError:
        raise InputFileError(path, "not a text file (binary content)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        what = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise InputFileError(path, f"not valid YAML: {where}{what}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputFileError(path, "must be a mapping of keys to values (a YAML file of key: value lines)")
    return data


def _key_of(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "additionalProperties":
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - allowed)
        if extra:
            parts.append(extra[0])
    elif error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        parts.append(missing)
    return ".".join(parts) or "<top level>"


def _message_of(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        return f"unknown key (allowed here: {', '.join(allowed)})"
    if error.validator == "required":
        return "missing (required)"
    if error.validator == "enum":
        return f"{error.instance!r} is not one of {error.validator_value}"
    if error.validator == "type":
        return f"{error.instance!r} has the wrong type (expected {error.validator_value})"
    return error.message


def _best_error(errors):
    # prefer the deepest error (most specific key); conditional (if/then) errors surface their inner errors
    flat = []
    for e in errors:
        flat.extend(e.context or [e]) if e.validator in ("allOf", "oneOf", "anyOf") else flat.append(e)
    return max(flat, key=lambda e: (len(e.absolute_path), e.validator == "additionalProperties"))


# "integer" means an int: jsonschema's default also takes 64.0, which then fails inside a job (range(64.0))
_Validator = jsonschema.validators.extend(
    jsonschema.Draft7Validator,
    type_checker=jsonschema.Draft7Validator.TYPE_CHECKER.redefine(
        "integer", lambda checker, x: isinstance(x, int) and not isinstance(x, bool)
    ),
)


def validate(cfg: dict) -> dict:
    """Validate a merged config; raise ConfigError naming the first offending key."""
    _check_finite(cfg)
    validator = _Validator(schema())
    errors = list(validator.iter_errors(cfg))
    if errors:
        err = _best_error(errors)
        raise ConfigError(_key_of(err), _message_of(err))
    _semantic_checks(cfg)
    return cfg


def _check_import_source(source: dict) -> None:
    """An import source names either one file or a train and a test file (the files are checked by the
    validate_import job)."""
    has_pair = bool(source.get("train")) or bool(source.get("test"))
    if source.get("file") and has_pair:
        raise ConfigError("source.file", "give either source.file or source.train and source.test, not both")
    if not source.get("file"):
        for role in ("train", "test"):
            if not source.get(role):
                raise ConfigError(
                    f"source.{role}", "missing: an import needs source.train and source.test, or one source.file"
                )
    if source.get("file") is None and source.get("test_fraction") is not None:
        raise ConfigError("source.test_fraction", "only used with one source.file (train/test files are the split)")
    for role in ("file", "train", "test"):
        _check_path_text(source.get(role), f"source.{role}")


def _check_path_text(path, key: str) -> None:
    """A data path must not hold '{' or '}': Snakemake reads them as wildcards in the jobs' file names."""
    if path and any(c in str(path) for c in "{}"):
        raise ConfigError(
            key,
            f"{path!r}: '{{' and '}}' cannot be in a data file's path (Snakemake would read a "
            "wildcard); rename the file or link it under another name",
        )


def _check_evaluate(cfg: dict) -> None:
    """Evaluation files need distinct names (their outputs go to results/{campaign}/evaluation/{name}/)."""
    from .settings import EvaluationFile

    seen = {}
    for i, item in enumerate(cfg.get("evaluate") or ()):
        ev = EvaluationFile.from_config(item, cfg["source"]["energy_key"])
        _check_path_text(ev.file, f"evaluate.{i}" if isinstance(item, str) else f"evaluate.{i}.file")
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,47}", ev.name):
            raise ConfigError(
                f"evaluate.{i}.name",
                f"{ev.name!r} (from the file name) cannot name a directory of "
                "results: give a name of at most 48 letters, digits, '_', '.', '-'",
            )
        if re.search(r"(.+?)\1{19,}", ev.name):  # Snakemake's PeriodicWildcardError: a part repeated 20 times
            raise ConfigError(
                f"evaluate.{i}.name",
                f"{ev.name!r} repeats one part 20 times or more, which Snakemake "
                "takes for an infinite recursion of file names: give a shorter or varied name",
            )
        if ev.name in seen:
            raise ConfigError(
                f"evaluate.{i}", f"name {ev.name!r} is also evaluate.{seen[ev.name]}'s: give each file a distinct name"
            )
        seen[ev.name] = i


def _check_finite(obj, key: str = "") -> None:
    """NaN and infinity (YAML .nan, .inf) pass a JSON schema, and NaN fails every comparison after it."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            _check_finite(v, f"{key}.{k}" if key else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _check_finite(v, f"{key}.{i}")
    elif isinstance(obj, float) and not math.isfinite(obj):
        raise ConfigError(key, f"{obj} is not a finite number")


def _check_densities(cfg: dict) -> None:
    """Two densities that print alike in paths (two decimals) would share one trajectory file."""
    from .paths import fmt_density

    seen = {}
    for i, d in enumerate(cfg["structures"]["densities"]):
        tag = fmt_density(d)
        if tag in seen:
            raise ConfigError(
                f"structures.densities.{i}",
                f"{d} and {cfg['structures']['densities'][seen[tag]]} "
                f"both map to rho{tag}: densities must differ in the first two decimals",
            )
        seen[tag] = i


# Snakemake plans one job per melt-quench run, and its planning grows faster than linearly: 1,000 runs took
# 26 s for a dry-run on 2 cores (5,000: minutes). More frames per run come from the protocol instead.
MAX_RUNS = 5000


def _check_runs(cfg: dict) -> None:
    s = cfg["structures"]
    total = s["runs"] * len(s["densities"])
    if cfg["source"]["kind"] != "import" and total > MAX_RUNS:
        raise ConfigError(
            "structures.runs",
            f"{s['runs']} runs x {len(s['densities'])} densities = {total} "
            f"melt-quench jobs, above {MAX_RUNS}: Snakemake would plan for minutes or hours; "
            "take more frames per run (structures.protocol) or split the campaign",
        )


def _semantic_checks(cfg: dict) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}", str(cfg["campaign"])):
        raise ConfigError(
            "campaign",
            f"{cfg['campaign']!r} cannot name a results directory (letters, digits, "
            "'_', '.', '-', not starting with '.' or '-')",
        )
    if cfg["source"]["kind"] == "import":
        _check_import_source(cfg["source"])
    _check_densities(cfg)
    _check_runs(cfg)
    _check_evaluate(cfg)
    s = cfg["structures"]
    segs = s["protocol"]["segments"]
    names = [seg["name"] for seg in segs]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConfigError("structures.protocol.segments", f"segment names must be unique (repeated: {sorted(dup)})")
    dt_ps = s["protocol"]["timestep_fs"] / 1000.0
    for i, seg in enumerate(segs):
        steps = round(seg["duration_ps"] / dt_ps)
        if steps < 1:
            raise ConfigError(f"structures.protocol.segments.{i}.duration_ps", "shorter than one time step")
        if seg["frames"] > steps:
            raise ConfigError(
                f"structures.protocol.segments.{i}.frames",
                f"{seg['frames']} frames requested but the segment has only {steps} steps",
            )
    if sum(seg["frames"] for seg in segs) == 0:
        raise ConfigError("structures.protocol.segments", "no segment samples any frame (all frames are 0)")
    for i, seg in enumerate(segs[1:], start=1):
        prev = segs[i - 1]
        if abs(seg["t_start_K"] - prev["t_end_K"]) > 1e-9:
            raise ConfigError(
                f"structures.protocol.segments.{i}.t_start_K",
                f"{seg['t_start_K']} K does not continue the previous segment's end ({prev['t_end_K']} K)",
            )
    settings.HomologySettings.from_config(cfg["homology"])  # refuses keep_simplices with the rips backend
    split = settings.SplitSettings.from_config(cfg["train"]["split"])  # refuses a density split without densities
    if split.by == "density" and cfg["source"]["kind"] == "generate":
        grid = cfg["structures"]["densities"]
        for i, (d, found) in enumerate(zip(split.test_densities, split.matches(grid).any(axis=0))):
            if not found:
                raise ConfigError(
                    f"train.split.test_densities.{i}",
                    f"{d} g/cm³ is not one of structures.densities {grid}: no frame would be tested",
                )
        if split.held_out(grid).all():
            raise ConfigError(
                "train.split.test_densities",
                "every density of structures.densities is held out: nothing left to train on",
            )
    if cfg.get("active"):
        settings.ActiveSettings.from_config(cfg["active"])
        if not split.validation_fraction > 0:
            raise ConfigError(
                "active",
                "the active loop calibrates sigma on the validation part: set train.split.validation_fraction above 0",
            )
    maxdim = cfg["homology"]["maxdim"]
    for i, d in enumerate(cfg["descriptors"]["dims"]):
        if d > maxdim:
            raise ConfigError(f"descriptors.dims.{i}", f"dimension {d} exceeds homology.maxdim = {maxdim}")
    lo, hi = cfg["descriptors"]["range"]
    if not lo < hi:
        raise ConfigError("descriptors.range", f"low ({lo}) must be below high ({hi})")
    pr = cfg["descriptors"].get("persistence_range")
    if pr is not None and not pr[0] < pr[1]:
        raise ConfigError("descriptors.persistence_range", f"low ({pr[0]}) must be below high ({pr[1]})")
    r = {**settings.default("train", "ridge"), **cfg["train"]["ridge"]}
    if r["alpha_min"] > r["alpha_max"]:
        raise ConfigError("train.ridge.alpha_min", "must not exceed train.ridge.alpha_max")


def load(configfile=None, defaults=None, overrides: dict | None = None) -> dict:
    """The campaign defaults (the file ``defaults``, by default the package's, which ``config/config.yaml``
    links to), then ``configfile``, then ``overrides``; validated."""
    cfg = load_yaml(defaults) if defaults else settings.defaults()
    if configfile:
        cfg = deep_merge(cfg, load_yaml(configfile))
    if overrides:
        cfg = deep_merge(cfg, overrides)
    return validate(cfg)


def canonical(obj):
    """The same config with mapping keys sorted recursively (list order kept).

    Snakemake compares rule params by their text: without this, merely re-ordering keys in a YAML
    file would look like a change and rerun every job depending on them.
    """
    if isinstance(obj, dict):
        return {k: canonical(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list):
        return [canonical(v) for v in obj]
    return obj
