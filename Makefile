# topoamorph: set-up and entry points. Everything runs from a pip virtual environment in .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
CORES ?= all
CONFIG ?= config/config.yaml
export OMP_NUM_THREADS ?= 1
# Snakemake on this machine. snakemake-executor-plugin-slurm runs `scontrol show config` (10 s timeout) when
# Snakemake imports it, at every start: ~9 s where a SLURM client has no controller. Local runs outside an
# allocation need no SLURM: an empty SLURM_CONF makes scontrol fail at once (a missing file retries for 60 s).
# Inside an allocation (SLURM_JOB_ID) engines launch with srun and keep the real config; `topoamorph submit`
# is not affected. docs/workflow.md#slow-start-where-a-slurm-client-has-no-controller
SNAKEMAKE_LOCAL := $(if $(SLURM_JOB_ID),,SLURM_CONF=/dev/null )$(BIN)/snakemake
# The config is checked before Snakemake reads it: Snakemake's own loader reports a YAML syntax error as
# "Config file is not valid JSON or YAML" without the line; this names the file, line and column (or the key).
CHECK_CONFIG := $(BIN)/topoamorph validate-config $(CONFIG)

.PHONY: venv homcloud gpaw campaign lint test test-fast bench-homology dag rulegraph report dry-run clean

# HomCloud's declared dependencies pull pyvista/vtk (~570 MB) that its PD interface never imports.
HOMCLOUD_PKGS := homcloud==5.4.0 msgpack cached-property imageio plotly

venv: $(VENV)/.installed

# CGAL's headers (Debian's libcgal-dev, with GMP/MPFR/Boost) for the homology's Delaunay extension, built by
# `pip install` (setup.py). Without them the install only warns and the homology uses Qhull (slower, same
# diagrams); `make test` then fails its CGAL test (TOPOAMORPH_REQUIRE_CGAL=1) rather than skip it.
CGAL_APT := libcgal-dev

# Reinstalls when pyproject.toml, setup.py or the extension's source change; idempotent otherwise.
$(VENV)/.installed: pyproject.toml setup.py src/topoamorph/native/_delaunay.cpp
	test -f /usr/include/CGAL/Delaunay_triangulation_3.h || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(CGAL_APT); } || \
		echo "CGAL not installed: the homology will use Qhull"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[test,mlip]"
	$(BIN)/python -c "from topoamorph.alpha_fast import default_delaunay as d; print('homology Delaunay:', d())"
	touch $@

campaign: venv
	$(CHECK_CONFIG)
	$(SNAKEMAKE_LOCAL) --profile profiles/local --cores $(CORES) --configfile $(CONFIG)

# Optional: HomCloud for the live cross-check and the benchmark. A failed install only skips those tests.
homcloud: venv
	$(BIN)/python -c "import homcloud.interface" 2>/dev/null || \
		$(BIN)/python -m pip install --quiet --no-deps $(HOMCLOUD_PKGS) || \
		echo "HomCloud not installed: its live cross-check will be skipped"

# GPAW, the default real-DFT engine: Debian's OpenMPI/ScaLAPACK/libxc/FFTW, then GPAW compiled against them
# (about 2 min). Idempotent: skipped when GPAW already initialises MPI in this venv.
GPAW_APT := libxc-dev libopenblas-dev openmpi-bin libopenmpi-dev libscalapack-openmpi-dev libfftw3-dev
GPAW_PKGS := gpaw==26.7.0 gpaw-data==1.2.1
gpaw: venv
	@$(BIN)/python -c "from gpaw.mpi import world; assert world.size >= 1" 2>/dev/null || { \
		dpkg -s $(GPAW_APT) >/dev/null 2>&1 || { apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(GPAW_APT); } && \
		env PATH=/usr/bin:/bin GPAW_CONFIG=$(CURDIR)/tools/gpaw-siteconfig.py \
			$(BIN)/python -m pip install --quiet --no-cache-dir --force-reinstall --no-deps $(GPAW_PKGS) && \
		$(BIN)/python -c "from gpaw.mpi import world; print('GPAW ready:', world.size, 'rank')"; }

# Lint first (seconds): ruff's rules and formatter (chosen in pyproject.toml) and Snakemake's own workflow linter.
LINT_CONFIGS := config/config.yaml config/active.yaml
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@for c in $(LINT_CONFIGS); do echo "snakemake --lint --configfile $$c"; \
		SLURM_CONF=/dev/null $(BIN)/snakemake --lint --configfile $$c || exit 1; done

# The suite requires GPAW and the CGAL extension (TOPOAMORPH_REQUIRE_GPAW=1, TOPOAMORPH_REQUIRE_CGAL=1): their
# tests fail rather than skip when they are missing.
test: venv lint homcloud gpaw
	TOPOAMORPH_REQUIRE_GPAW=1 TOPOAMORPH_REQUIRE_CGAL=1 TOPOAMORPH_REQUIRE_MLIP=1 $(BIN)/python -m pytest

bench-homology: venv homcloud
	$(BIN)/python benchmarks/homology_speed.py

# Unit and property tests only (under 90 s on 2 cores); the tiers: docs/testing.md.
FAST_TESTS := not (mpi or workflow or slurm or gpaw or homcloud or mlip or slow)
test-fast: venv lint
	$(BIN)/python -m pytest -m "$(FAST_TESTS)"

dry-run: venv
	$(CHECK_CONFIG)
	$(SNAKEMAKE_LOCAL) -n --configfile $(CONFIG)

dag: venv
	$(CHECK_CONFIG)
	command -v dot >/dev/null || (apt-get update -qq && apt-get install -y -qq graphviz)
	mkdir -p results
	$(SNAKEMAKE_LOCAL) --dag --configfile $(CONFIG) | dot -Tsvg > results/dag.svg
	@echo "wrote results/dag.svg"

rulegraph: venv
	$(CHECK_CONFIG)
	command -v dot >/dev/null || (apt-get update -qq && apt-get install -y -qq graphviz)
	mkdir -p results
	$(SNAKEMAKE_LOCAL) --rulegraph --configfile $(CONFIG) | dot -Tsvg > results/rulegraph.svg
	@echo "wrote results/rulegraph.svg"

report: venv
	$(CHECK_CONFIG)
	$(SNAKEMAKE_LOCAL) --report results/report.html --configfile $(CONFIG)

clean:
	rm -rf results .snakemake
