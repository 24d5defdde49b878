# make demo: the batch pipeline on this machine. make test: the whole suite from a clean clone.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# Prerequisites build side by side (the Flink and checkov environments, the Flink zip and the broker's jars are
# independent once .venv exists). No --output-sync: it would hold pytest's progress until the whole run ends.
MAKEFLAGS += --jobs=3

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.9.30
DATA ?= data## where make demo writes and the benchmarks read (transactions, features, model, local run)
SCALE ?= demo## make demo's data size: demo (1,000 cards, 540,000 transactions) or seed (the AWS sample's, 10x)
STAMP := $(VENV)/.installed
FLINK_VENV := .venv-flink
FLINK_STAMP := $(FLINK_VENV)/.installed
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

CDK_STAMP := node_modules/.installed
CDK := npx --no-install cdk --no-notices
# jsii (the CDK's bridge to Node) warns on Node 20, end-of-life since 2026-10: quiet here, README says why.
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: help install kafka-broker test test-fast demo benchmark benchmark-handlers benchmark-streaming benchmark-holdout benchmark-flood figures flink-package lambda-assets lock clean synth bootstrap deploy destroy

help: ## list the targets and the variables they take
	@echo "targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-20s %s\n", $$1, $$2}'
	@echo "variables (make demo DATA=/tmp/run SCALE=seed):"
	@grep -E '^[A-Z]+ \?= [^#]*## ' $(MAKEFILE_LIST) | sed -E 's/^([A-Z]+) \?= ([^#]*)## (.*)/\1|\2|\3/' \
		| awk -F'|' '{printf "  %-25s %s\n", $$1 "=" $$2, $$3}'

# --compile-bytecode: every module compiled once at install, not at each start of every process (with
# PYTHONDONTWRITEBYTECODE set, as on many CI machines, nothing is ever cached otherwise): xgboost's import
# chain alone (scikit-learn, scipy, pandas) takes about twice as long from source (docs/lambda.md).
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

# Apache Flink 1.20 pins old numpy/pyarrow/beam: it gets its own environment (docs/streaming.md: "Streaming aggregation").
$(FLINK_STAMP): flink_sql/requirements.lock $(STAMP)
	$(PYTHON) -m venv $(FLINK_VENV)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(FLINK_VENV)/bin/python -r flink_sql/requirements.lock
	touch $@

# The local pipeline's Kafka broker (KRaft, one node): jars from Maven Central, checksums strict, cached in
# ~/.m2; fraudstream/local/broker.py starts it from this classpath.
KAFKA_CLASSPATH := build/kafka/classpath.txt
$(KAFKA_CLASSPATH): fraudstream/local/kafka/pom.xml
	@mkdir -p $(dir $@)
	mvn -B -q -C -f fraudstream/local/kafka/pom.xml org.apache.maven.plugins:maven-dependency-plugin:3.8.1:build-classpath \
		-Dmdep.includeScope=runtime -Dmdep.outputFile=$(abspath $@)

# The CDK CLI, pinned in package.json / package-lock.json.
$(CDK_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# checkov (Bridgecrew's IaC scanner): tests/infrastructure/test_checks.py runs it on the synthesized template; its own
# environment, as its dependency tree is large and not the product's.
$(CHECKOV_STAMP): tools/checkov.lock $(STAMP)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(BIN)/uv pip install --quiet --python $(CHECKOV_VENV)/bin/python -r tools/checkov.lock
	touch $@

install: $(STAMP) $(FLINK_STAMP) ## build both virtual environments (.venv, .venv-flink) from their lock files

# What the local pipeline runs: the Flink application zip and the Kafka broker's jars (both through Maven).
LOCAL_PIECES := build/flink-app.zip $(KAFKA_CLASSPATH)

kafka-broker: $(KAFKA_CLASSPATH) ## fetch Apache Kafka (KRaft broker for the local pipeline) through Maven

WORKERS ?= 2## make test's pytest processes (pytest-xdist; 1: one after another)
test: $(STAMP) $(FLINK_STAMP) $(CHECKOV_STAMP) $(LOCAL_PIECES) ## run every test (unit, Spark parity, real Flink and Kafka, integration)
	$(BIN)/pytest -n $(WORKERS) --dist loadgroup --durations=25

test-fast: $(STAMP) ## the unit tests: no server (Kafka, Flink), no Spark, property tests on a tenth of their examples
	$(BIN)/pytest -n $(WORKERS) --dist loadgroup --hypothesis-profile=fast -m "not kafka and not flink and not spark and not slow"

demo: $(STAMP) $(FLINK_STAMP) $(LOCAL_PIECES) ## the whole pipeline here: data, features, model, then the AWS sample's scenario through Kafka, Flink and both handlers
	$(BIN)/fraudstream generate --scale $(SCALE) --out $(DATA)/transactions.parquet
	$(BIN)/fraudstream features $(DATA)/transactions.parquet --out $(DATA)
	$(BIN)/fraudstream train $(DATA)/features.parquet --out $(DATA)
	$(BIN)/fraudstream scenario --transactions $(DATA)/transactions.parquet --out $(DATA)/seed_scenario.jsonl
	$(BIN)/fraudstream replay $(DATA)/seed_scenario.jsonl --model $(DATA)/model.tar.gz \
		--history $(DATA)/transactions.parquet --history-to-today --workdir $(DATA)/local --check-seed-outcome
	$(BIN)/fraudstream consistency --local $(DATA)/local --png $(DATA)/local/consistency.png

benchmark: $(STAMP) ## time generate, features and train at the AWS sample's scale (10,000 cards, 5.4 million transactions)
	$(BIN)/python benchmarks/batch_pipeline.py

benchmark-handlers: $(STAMP) ## API calls per batch, handler throughput, cold start, asset size, memory (the model in DATA if there)
	$(BIN)/python benchmarks/handlers.py --model $(DATA)/model.tar.gz

benchmark-streaming: $(STAMP) $(FLINK_STAMP) $(LOCAL_PIECES) ## local pipeline throughput and latency (needs make demo's model in DATA)
	$(BIN)/python benchmarks/streaming.py --model $(DATA)/model.tar.gz

benchmark-holdout: $(STAMP) $(FLINK_STAMP) $(LOCAL_PIECES) ## the hold-out period through the local pipeline: online vs offline metrics, consistency (needs make demo's data)
	$(BIN)/python benchmarks/online_holdout.py --data $(DATA)

benchmark-flood: $(STAMP) $(FLINK_STAMP) $(LOCAL_PIECES) ## the hold-out period replayed as fast as it goes, with only the first night's 1-week records
	$(BIN)/python benchmarks/online_holdout.py --data $(DATA) --flood

ONLY ?= ## with make figures: the sections to measure again (demo batch handlers streaming holdout flood; default all)
figures: $(STAMP) $(FLINK_STAMP) $(LOCAL_PIECES) ## measure every figure the docs cite into docs/figures.md (about 15 min; ONLY=handlers for one)
	$(BIN)/python benchmarks/figures.py --data $(DATA) $(if $(ONLY),--only $(ONLY))

flink-package: build/flink-app.zip ## build/flink-app.zip for Managed Service for Apache Flink (its jar built by Maven, flink_sql/pom.xml)

build/flink-app.zip: $(STAMP) flink_sql/pom.xml $(wildcard flink_sql/*.py flink_sql/*.sql flink_sql/*.json) fraudstream/packaging/flink_app.py fraudstream/contract.py fraudstream/flink_properties.py
	$(BIN)/python -m fraudstream.packaging.flink_app build --out $@

CONTEXT ?= ## with make synth/deploy/destroy: context keys as key=value words, e.g. CONTEXT="reserveConcurrency=false alarmEmail=me@example.com"
CDK_CONTEXT = $(foreach pair,$(CONTEXT),-c $(pair))

synth: $(STAMP) $(CDK_STAMP) build/flink-app.zip ## write the CloudFormation template to cdk.out/ (offline; needs make demo's model)
	$(CDK) synth --quiet $(CDK_CONTEXT)

# Credentials, region and network first: one line instead of a failure after synthesis; then the account's Lambda
# concurrency against what the synthesized template reserves (fraudstream/operate/preflight.py), and the deploy
# of that same assembly.
PREFLIGHT := $(BIN)/python -m fraudstream.operate.preflight
CHECK_AWS := $(PREFLIGHT) environment

bootstrap: $(STAMP) $(CDK_STAMP) ## cdk bootstrap the account and region of your credentials (once per account and region)
	@env=$$($(CHECK_AWS)) && echo "bootstrapping $$env" && $(CDK) bootstrap "$$env"

deploy: $(STAMP) $(CDK_STAMP) build/flink-app.zip ## deploy the stack to the account and region of your credentials (make bootstrap first)
	@env=$$($(CHECK_AWS)) && echo "deploying to $$env"
	$(CDK) synth --quiet $(CDK_CONTEXT)
	$(PREFLIGHT) concurrency cdk.out
	$(CDK) deploy --app cdk.out --require-approval broadening

destroy: $(STAMP) $(CDK_STAMP) ## delete the stack and everything it created
	$(CDK) destroy --force $(CDK_CONTEXT) || $(BIN)/fraudstream cleanup

lambda-assets: $(STAMP) ## build both Lambda code assets into build/lambda/
	$(BIN)/python -m fraudstream.packaging.lambda_assets build/lambda

lock: $(STAMP) ## re-pin requirements.lock (pyproject.toml), flink_sql/requirements.lock and tools/checkov.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra infra --python-version 3.11 -o requirements.lock
	$(BIN)/uv pip compile flink_sql/requirements.in --python-version 3.11 -o flink_sql/requirements.lock
	$(BIN)/uv pip compile tools/checkov.in --python-version 3.11 -o tools/checkov.lock

clean: ## remove the virtual environment and generated data
	rm -rf $(VENV) $(FLINK_VENV) $(CHECKOV_VENV) $(DATA) build .pytest_cache cdk.out node_modules
