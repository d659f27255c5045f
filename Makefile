# Two commands for everything:  make run  (the series)   make test  (the test suite)
# Both create .venv if missing and install the project into it first; inside an activated conda
# environment other than base (README: "With conda") they use that environment instead of making a
# second copy of PyTorch in .venv. VENV=.venv forces the venv.
PYTHON ?= python3
CONDA_ENV := $(filter-out base,$(CONDA_DEFAULT_ENV))
VENV ?= $(if $(and $(CONDA_ENV),$(CONDA_PREFIX)),$(CONDA_PREFIX),.venv)
PY := $(VENV)/bin/python
# Extra pip arguments for torch, e.g. TORCH="torch==2.14.1 torchvision==0.29.1" (see .ci/run).
TORCH ?=
# A dropped connection (workshop wifi) resumes a large wheel instead of failing the install
# (pip >= 25.1, which the first install step upgrades to); RETRIES=5 for pip's own default.
RETRIES ?= 20
PIP_INSTALL = $(PY) -m pip install --retries $(RETRIES) --resume-retries $(RETRIES)
PROFILE ?=
DATASET ?=
# The maintainer's tools live in tools/, outside the package (python -m tools --help).
# make kit: the workshop kit (python -m tools kit --help); KIT_ARGS for more options.
KIT ?= kit
PLATFORMS ?= win_amd64,macosx_arm64,linux_x86_64
KIT_PYTHON ?= 3.11
KIT_ARGS ?=
# make sync TIMES=build/timings.json: first take in the run times make run measured (notebooks/run_times.json).
TIMES ?=
# make study STUDY=08 ARGS='--seeds 3': a headless study (python -m tools study --help lists them).
STUDY ?=
ARGS ?=
# The studies' names, read from the one list of them (STUDIES in tools/studies/__init__.py, which imports nothing).
STUDIES = $(shell $(PYTHON) -c "from tools.studies import STUDIES; print(*STUDIES)" 2>/dev/null)
empty :=
space := $(empty) $(empty)
STUDY_NAMES = $(or $(STUDIES),the names python -m tools study --help lists)
STUDY_CHOICES = $(or $(subst $(space),|,$(STUDIES)),NAME (python -m tools study --help lists them))

.PHONY: run test install bench sync kit study clean help
help:
	@echo "make run      set up .venv, then execute every notebook headless into build/ (HTML too)"
	@echo "make test     set up .venv, then the import layers, unit tests, every notebook under pytest --nbmake (smoke)"
	@echo "make bench    the training/evaluation benchmark against the article's loop"
	@echo "make sync     write every notebook's header (breadcrumb, run times), then re-pair notebooks/*.py and *.ipynb"
	@echo "make kit      a workshop kit in kit/: wheels per platform, data, trained runs, filled notebooks"
	@echo "make study    a headless study: STUDY=$(STUDY_CHOICES) ARGS='--help'"
	@echo "Options: PROFILE=full|workshop|smoke|auto  DATASET=cifar10|photos10|shapes10|auto  PYTHON=python3.11"
	@echo "         make kit KIT=folder PLATFORMS=$(PLATFORMS) KIT_PYTHON=$(KIT_PYTHON) KIT_ARGS='--skip-runs'"

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install --retries $(RETRIES) --upgrade pip
	$(if $(strip $(TORCH)),$(PIP_INSTALL) $(TORCH))
	$(PIP_INSTALL) -e ".[dev]"
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) -m convae_utils series $(if $(PROFILE),--profile $(PROFILE)) $(if $(DATASET),--dataset $(DATASET))

test: install
	$(VENV)/bin/lint-imports
	$(PY) -m pytest tests
	$(PY) -m pytest --nbmake notebooks

bench: install
	$(PY) -m tools bench

# PROFILE and DATASET here are the laptops' (kit: workshop and photos10 unless given).
kit: install
	$(PY) -m tools kit $(KIT) --platform $(PLATFORMS) --python $(KIT_PYTHON) $(if $(PROFILE),--profile $(PROFILE)) $(if $(DATASET),--dataset $(DATASET)) $(KIT_ARGS)

sync: install
	$(VENV)/bin/jupytext --sync notebooks/[0-9][0-9]_*.py   # first: an edit saved in an .ipynb reaches its .py
	$(PY) -m tools sync notebooks $(if $(TIMES),--times $(TIMES))
	$(VENV)/bin/jupytext --sync notebooks/[0-9][0-9]_*.py

study: install
	$(if $(strip $(STUDY)),,$(error name the study: make study STUDY=08 (one of $(STUDY_NAMES))))
	$(PY) -m tools study $(STUDY) $(ARGS)

clean:
	rm -rf build .pytest_cache
