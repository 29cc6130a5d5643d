# topoamorph: set-up and entry points. Everything runs from a pip virtual environment in .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
CORES ?= all
CONFIG ?= config/config.yaml
export OMP_NUM_THREADS ?= 1

.PHONY: venv homcloud campaign test test-fast bench-homology dag rulegraph report dry-run clean

# HomCloud's declared dependencies pull pyvista/vtk (~570 MB) that its PD interface never imports.
HOMCLOUD_PKGS := homcloud==5.4.0 msgpack cached-property imageio plotly

venv: $(VENV)/.installed

# Reinstalls when pyproject.toml changes; idempotent otherwise.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

campaign: venv
	$(BIN)/snakemake --profile profiles/local --cores $(CORES) --configfile $(CONFIG)

# Optional: HomCloud for the live cross-check and the benchmark. A failed install only skips those tests.
homcloud: venv
	$(BIN)/python -c "import homcloud.interface" 2>/dev/null || \
		$(BIN)/python -m pip install --quiet --no-deps $(HOMCLOUD_PKGS) || \
		echo "HomCloud not installed: its live cross-check will be skipped"

test: venv homcloud
	$(BIN)/python -m pytest

bench-homology: venv homcloud
	$(BIN)/python benchmarks/homology_speed.py

test-fast: venv
	$(BIN)/python -m pytest -m "not slow"

dry-run: venv
	$(BIN)/snakemake -n --configfile $(CONFIG)

dag: venv
	command -v dot >/dev/null || (apt-get update -qq && apt-get install -y -qq graphviz)
	mkdir -p results
	$(BIN)/snakemake --dag --configfile $(CONFIG) | dot -Tsvg > results/dag.svg
	@echo "wrote results/dag.svg"

rulegraph: venv
	command -v dot >/dev/null || (apt-get update -qq && apt-get install -y -qq graphviz)
	mkdir -p results
	$(BIN)/snakemake --rulegraph --configfile $(CONFIG) | dot -Tsvg > results/rulegraph.svg
	@echo "wrote results/rulegraph.svg"

report: venv
	$(BIN)/snakemake --report results/report.html --configfile $(CONFIG)

clean:
	rm -rf results .snakemake
