# Two commands matter: `make report` and `make test`. Both set up .venv on first use and then only check it.
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PROFILE ?= default
CORES   ?= 2
SMK     := $(VENV)/bin/snakemake --cores $(CORES) --config profile=$(PROFILE)

.PHONY: report test bench data dag clean setup sysdeps

report: $(STAMP)
	$(SMK) --rerun-incomplete

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m pipeline bench $(BENCH_ARGS)

data: $(STAMP)
	$(PY) -m pipeline fetch-data

dag: $(STAMP)
	$(SMK) -n

setup: $(STAMP)

sysdeps:
	@scripts/install-system-deps.sh

# Torch first, so that nothing installed after it pulls a different build.
$(STAMP): pyproject.toml scripts/install-system-deps.sh
	@scripts/install-system-deps.sh
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

clean:
	rm -rf results reports .snakemake
