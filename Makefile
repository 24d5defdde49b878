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

.PHONY: help install test test-fast demo benchmark benchmark-handlers lambda-assets lock clean

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

benchmark-handlers: $(STAMP) ## API calls per batch and handler throughput (uses $(DATA)/model.tar.gz if present)
	$(BIN)/python benchmarks/handlers.py --model $(DATA)/model.tar.gz

lambda-assets: $(STAMP) ## build both Lambda code assets into build/lambda/
	$(BIN)/python -m fraudstream.lambda_assets build/lambda

lock: $(STAMP) ## re-pin requirements.lock after editing pyproject.toml
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean: ## remove the virtual environment and generated data
	rm -rf $(VENV) $(DATA) build .pytest_cache
