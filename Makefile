# drills: `make drill SCENARIO=db-failover` and `make test` set up everything they need.
SHELL := /bin/sh
VENV ?= .venv
SCENARIO ?= db-failover
BIN := $(VENV)/bin
ARGS ?=

.PHONY: help setup postgres test-packages drill validate test test-unit lint bench report clean

help:
	@echo "make drill SCENARIO=db-failover   run a drill (sets up the venv and PostgreSQL)"
	@echo "make test                         unit and integration tests, lint and types"
	@echo "make test-unit                    fast tests only (no servers)"
	@echo "make validate                     validate every scenario"
	@echo "make lint                         ruff and mypy"
	@echo "make bench                        measurement-fidelity benchmark -> docs/benchmarks.md"
	@echo "make report QUARTER=2026-Q4       quarterly report -> reports/2026-Q4/"

setup:
	@tools/ensure-venv $(VENV)

postgres:
	@tools/ensure-postgres

drill: setup postgres
	$(BIN)/drills run scenarios/$(SCENARIO).yaml $(ARGS)

validate: setup
	$(BIN)/drills validate scenarios/*.yaml

lint: setup
	$(BIN)/ruff check drills probes tests bench
	$(BIN)/mypy

test-unit: setup
	$(BIN)/pytest -m "not postgres and not prometheus and not browser" -q

test-packages:
	@tools/ensure-test-packages

test: setup postgres test-packages lint
	$(BIN)/drills validate scenarios/*.yaml
	$(BIN)/pytest -q

report: setup
	$(BIN)/drills report $(if $(QUARTER),--quarter $(QUARTER))

bench: setup postgres
	$(BIN)/python -m bench.fidelity

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
