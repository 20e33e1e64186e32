# drills: `make drill SCENARIO=db-failover` and `make test` set up everything they need.
SHELL := /bin/sh
VENV ?= .venv
SCENARIO ?= db-failover
BIN := $(VENV)/bin
ARGS ?=

.PHONY: help setup postgres drill validate test test-unit lint clean

help:
	@echo "make drill SCENARIO=db-failover   run a drill (sets up the venv and PostgreSQL)"
	@echo "make test                         unit and integration tests, lint and types"
	@echo "make test-unit                    fast tests only (no servers)"
	@echo "make validate                     validate every scenario"
	@echo "make lint                         ruff and mypy"

setup:
	@tools/ensure-venv $(VENV)

postgres:
	@tools/ensure-postgres

drill: setup postgres
	$(BIN)/drills run scenarios/$(SCENARIO).yaml $(ARGS)

validate: setup
	$(BIN)/drills validate scenarios/*.yaml

lint: setup
	$(BIN)/ruff check drills probes tests
	$(BIN)/mypy

test-unit: setup
	$(BIN)/pytest -m "not postgres" -q

test: setup postgres lint
	$(BIN)/drills validate scenarios/*.yaml
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
