"""The layout the architecture promises (docs/architecture.md): no import cycle in src/topoamorph, no module
importing a higher layer, stage functions with keyword-only arguments named like their rule's keys."""

import ast
import collections
import inspect
import re

import pytest

from conftest import ROOT

SRC = ROOT / "src" / "topoamorph"
# lowest first (docs/architecture.md)
LAYERS = [
    {"errors", "units", "io", "settings", "config", "paths", "provenance", "mpi", "persistence", "logs"},
    {"formats"},
    {
        "engines",
        "thermostats",
        "generate",
        "homology",
        "alpha_fast",
        "crystal",
        "descriptors",
        "baselines",
        "models",
        "structure",
        "report",
        "importer",
        "plan",
        "distribute",
        "submit",
        "uncertainty",
        "trained",
        "calculator",
        "inverse",
        "potential",
        "costs",
        "active",
    },
    {"stages"},
    {"cli"},
]


def module_graph() -> dict[str, set[str]]:
    mods = {}
    for f in SRC.rglob("*.py"):
        parts = ("topoamorph",) + f.relative_to(SRC).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    graph = collections.defaultdict(set)
    for name, f in mods.items():
        package = name if f.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(f.read_text())):  # imports inside functions count too
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - max(0, node.level - 1)] if node.level else []
                target = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module
                found = [t for t in [target] + [f"{target}.{a.name}" for a in node.names] if t in mods]
            elif isinstance(node, ast.Import):
                found = [a.name for a in node.names if a.name in mods]
            else:
                continue
            graph[name].update(t for t in found if t not in (name, "topoamorph"))
    return graph


def layer_of(module: str) -> int:
    if module == "topoamorph":  # the package's facade (load_model): above everything it re-exports
        return len(LAYERS) - 1
    top = module.split(".")[1]
    return next(i for i, names in enumerate(LAYERS) if top in names)


def test_no_import_cycle_and_no_upward_import():
    graph = module_graph()
    assert all(layer_of(m) >= 0 for m in graph)  # every module has its layer
    upward = sorted((a, b) for a in graph for b in graph[a] if layer_of(b) > layer_of(a))
    assert not upward, f"modules importing a higher layer: {upward}"
    state, cycles = {}, []

    def visit(u, path):
        state[u] = "open"
        for v in graph[u]:
            if state.get(v) == "open":
                cycles.append(path[path.index(v) :] + [v])
            elif v not in state:
                visit(v, path + [v])
        state[u] = "done"

    for m in list(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, f"import cycles: {cycles}"


def rule_keys() -> dict[str, set[str]]:
    """{rule: its input/output/params keys} for the rules run by a script."""
    out = {}
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        for block in re.split(r"\n(?=rule )", smk.read_text()):
            m = re.match(r"rule (\w+):", block)
            if not m or "script:" not in block:
                continue
            keys = set()
            for section in re.findall(r"\n    (?:input|output|params):\n((?:        .*\n|\s*\n)+)", block + "\n"):
                keys.update(re.findall(r"^        (\w+)=", section, flags=re.M))
            out[m.group(1)] = keys
    return out


@pytest.mark.parametrize("rule", sorted(rule_keys()))
def test_stage_functions_take_their_rule_keys_by_keyword(rule):
    import importlib

    smk = next(f for f in (ROOT / "workflow" / "rules").glob("*.smk") if f"rule {rule}:" in f.read_text())
    func = getattr(importlib.import_module(f"topoamorph.stages.{smk.stem}"), rule)
    params = inspect.signature(func).parameters
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values()), rule
    assert rule_keys()[rule] <= set(params), f"{rule}: rule keys {rule_keys()[rule] - set(params)} not in the stage"
    script = (ROOT / "workflow" / "scripts" / f"{rule}.py").read_text()
    assert f"from topoamorph.stages.{smk.stem} import {rule}" in script
    for key in rule_keys()[rule]:  # passed by name, from the rule's item of the same name
        assert re.search(rf"\b{key}=[^,]*?sm\.(input|output|params)\.(get\(\"{key}\"\)|{key}\b)", script), (
            f"{rule}: the script does not pass {key} by name"
        )


def test_defaults_are_one_file():
    from topoamorph import settings

    assert (ROOT / "config" / "config.yaml").resolve() == (SRC / "schemas" / "defaults.yaml").resolve()
    assert settings.defaults() == __import__("yaml").safe_load((ROOT / "config" / "config.yaml").read_text())
