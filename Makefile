# Two commands matter: `make report` and `make test`. Both set up .venv on first use and then only check it.
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PROFILE ?= default
CORES   ?= 2
# SEEDS=0 (or 0,1) overrides the profile's seeds from the command line: a quicker build whose findings then say
# which comparisons a single seed cannot test.
SMK     := $(VENV)/bin/snakemake --cores $(CORES) --config profile=$(PROFILE)$(if $(SEEDS), seeds=[$(SEEDS)])

.PHONY: report test bench data dag clean setup sysdeps

# The console (README, "What the console shows"): a progress bar with an ETA, one line per finished run, a summary.
# VERBOSE=1 shows Snakemake's own job log instead (also where a profile names the logger);
# UNLOCK=1 first removes the lock a killed build left behind.
CONSOLE = $(if $(VERBOSE),,--logger dflbench)

report: $(STAMP)
	$(if $(UNLOCK),$(SMK) --unlock && )$(if $(VERBOSE),DFLBENCH_CONSOLE=snakemake )$(SMK) --rerun-incomplete $(CONSOLE)

# One pytest worker per core (TEST_WORKERS=0: none). --dist loadfile keeps a module's tests on one worker, and every
# module of the smoke build on the same one (tests/conftest.py), so that each shared fixture is built once.
TEST_WORKERS ?= $(CORES)
test: $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m pipeline bench $(BENCH_ARGS)

data: $(STAMP)
	$(PY) -m pipeline fetch-data

dag: $(STAMP)
	$(SMK) -n

setup: $(STAMP)

sysdeps:
	@scripts/install-system-deps.sh

# Torch first, so that nothing installed after it pulls a different build. uv unpacks the 5.5 GB of torch and its
# CUDA libraries in parallel (24 s against pip's 115 s here); where uv cannot reach an index, pip does the same.
# --compile-bytecode, as pip does by default: where PYTHONDONTWRITEBYTECODE is set (this machine kind's shells) no
# process would ever cache its bytecode, and every job recompiled torch's modules (3.3 s to import it against 1.8).
UV      := $(VENV)/bin/uv
INSTALL  = $(UV) pip install -q --compile-bytecode --python $(PY) $(1) || $(PY) -m pip install -q $(1)
$(STAMP): pyproject.toml scripts/install-system-deps.sh
	@scripts/install-system-deps.sh
	@test -x $(PY) || python3 -m venv $(VENV)
	@test -x $(UV) || $(PY) -m pip install -q uv==0.13.9 || echo "dfl-bench: uv unavailable, installing with pip"
	$(call INSTALL,torch==2.14.1 torchvision==0.29.1)
	$(call INSTALL,-e '.[dev]')
	@touch $(STAMP)

clean:
	rm -rf results reports .snakemake

# Review a rebuild (README: "Review a rebuild"): `make snapshot NAME=before`, rebuild, then
# `.venv/bin/python -m pipeline diff before results`. `make verify` reruns one run per family into
# results/verify/ and checks it reproduces (VERIFY=all for every run, or FAMILY[/VARIANT[/SEED]],...).
.PHONY: snapshot verify
snapshot: $(STAMP)
	@test -n "$(NAME)" || { echo "usage: make snapshot NAME=before [PROFILE=...]" >&2; exit 2; }
	$(PY) -m pipeline snapshot $(NAME) --profile $(PROFILE)

verify: $(STAMP)
	$(PY) -m pipeline verify --profile $(PROFILE) --sample $(or $(VERIFY),per-family)
