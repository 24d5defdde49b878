# make demo: the batch pipeline on this machine. make test: the whole suite from a clean clone.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.9.30
DATA ?= data
SCALE ?= demo
STAMP := $(VENV)/.installed

.PHONY: help install test test-fast demo benchmark lock clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

install: $(STAMP) ## build the virtual environment (.venv) from requirements.lock

test: $(STAMP) ## run every test (unit, Spark parity, integration)
	$(BIN)/pytest

test-fast: $(STAMP) ## unit tests without Spark and the end-to-end run
	$(BIN)/pytest -m "not spark and not slow"

demo: $(STAMP) ## generate data, compute features, train and evaluate (SCALE=demo|seed, DATA=dir)
	$(BIN)/fraudstream generate --scale $(SCALE) --out $(DATA)/transactions.parquet
	$(BIN)/fraudstream features $(DATA)/transactions.parquet --out $(DATA)
	$(BIN)/fraudstream train $(DATA)/features.parquet --out $(DATA)

benchmark: $(STAMP) ## time generate, features and train at seed scale
	$(BIN)/python benchmarks/batch_pipeline.py

lock: $(STAMP) ## re-pin requirements.lock after editing pyproject.toml
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean: ## remove the virtual environment and generated data
	rm -rf $(VENV) $(DATA) .pytest_cache
