# Everyday commands. `make demo` and `make test` set everything up themselves on a fresh
# Debian machine (virtual environment, pip packages, and the apt packages for PDF output).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   := data/sample
QUARTER ?= latest

.PHONY: help setup system-deps demo test docs lab bench clean

help:
	@echo "make demo   - write the sample organisation and run the main job end to end"
	@echo "make test   - run the whole test suite"
	@echo "make lab    - open JupyterLab on notebooks/ with the sample organisation ready"
	@echo "make bench  - run the benchmarks (results in benchmarks/results/)"
	@echo "make docs   - build the documentation site into site/ (warnings are errors)"

setup: system-deps $(STAMP)

# Chromium prints the reports to PDF; poppler-utils checks PDFs in the tests.
system-deps:
	@bash scripts/system-deps.sh

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

$(DATA)/teams.csv: okr_analysis/sample.py | $(STAMP)
	$(BIN)/okr-analysis sample $(DATA)

# The main job, end to end on the sample organisation.
demo: setup $(DATA)/teams.csv
	@echo "== the sample organisation"
	$(BIN)/okr-analysis validate $(DATA)
	@echo "== team scores, $(QUARTER) quarter"
	$(BIN)/okr-analysis score $(DATA) --quarter $(QUARTER) --level team
	@echo "== OKR hygiene"
	$(BIN)/okr-analysis lint $(DATA) --quarter $(QUARTER)
	@echo "== leading indicators: which KPIs predict which outcomes, at what lag"
	$(BIN)/okr-analysis drivers $(DATA)
	@echo "== quarterly review reports (HTML and PDF) for every team"
	$(BIN)/okr-analysis report $(DATA) --quarter $(QUARTER) --out reports

# The layer contract (.importlinter: io → analyses → plots → reports → cli), the documentation site, then
# the tests.
test: setup docs
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest

# The documentation site (mkdocs.yml, docs/), built into site/ with warnings as errors; `make test` builds it
# first, so CI fails on a broken link or reference. The docs extra goes into .venv: it does not slow
# `import papermill, nbconvert` (0.6 s with and without it).
DOCS_STAMP := $(VENV)/.docs-installed
$(DOCS_STAMP): pyproject.toml | $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	@touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site

# JupyterLab lives in its own environment: in the main one its dependencies would slow every
# report worker's start by ~3 s (see ../shared/REPORTING_NOTES.md).
LAB := .venv-lab
$(LAB)/.installed: pyproject.toml
	@test -x $(LAB)/bin/python || $(PYTHON) -m venv $(LAB)
	$(LAB)/bin/python -m pip install --quiet --upgrade pip
	$(LAB)/bin/python -m pip install --quiet -e ".[lab]"
	@touch $(LAB)/.installed

lab: setup $(DATA)/teams.csv $(LAB)/.installed
	$(LAB)/bin/jupyter lab --notebook-dir=notebooks --ServerApp.ip=127.0.0.1 --no-browser \
		$$( [ "$$(id -u)" = 0 ] && echo --allow-root )

bench: setup
	$(BIN)/python benchmarks/bench_leadlag.py
	$(BIN)/python benchmarks/bench_forecast.py
	$(BIN)/python benchmarks/bench_report.py
	$(BIN)/python benchmarks/bench_load.py

clean:
	rm -rf $(VENV) $(LAB) $(DATA) reports/*/ .pytest_cache
