# drills: `make drill SCENARIO=db-failover` and `make test` set up everything they need.
SHELL := /bin/sh
VENV ?= .venv
SCENARIO ?= db-failover
BIN := $(VENV)/bin
ARGS ?=
# Container drills here use images built from this host's PostgreSQL (no registry needed);
# set DRILLS_POSTGRES_IMAGE=postgres:16 to use the official image instead.
export DRILLS_POSTGRES_IMAGE ?= drills/postgres:local
export DRILLS_HELPER_IMAGE ?= drills/netutils:local
CONTAINER_SCENARIO := grep -qE 'kind: docker-|^ +(container|labels|compose):'

.PHONY: help setup postgres docker runner-image test-packages drill validate test test-unit lint bench report clean

help:
	@echo "make drill SCENARIO=db-failover   run a drill (sets up the venv and PostgreSQL)"
	@echo "make drill SCENARIO=db-failover-docker   the same drill with sites A and B in containers"
	@echo "make drill SCENARIO=patroni-failover   Patroni elects a new leader (installs patroni, etcd-server, haproxy)"
	@echo "make drill SCENARIO=operator-error   DROP TABLE, then a point-in-time restore (installs pgbackrest)"
	@echo "make docker                       a Docker engine (installed and started if need be) and local images"
	@echo "make runner-image                 drills/runner:local, the runner image (Dockerfile's layout) from this host"
	@echo "make test                         unit and integration tests, lint and types"
	@echo "make test-unit                    fast tests only (no servers)"
	@echo "make validate                     validate every scenario"
	@echo "make lint                         ruff and mypy"
	@echo "make bench                        measurement fidelity, probe capacity, results store, Patroni -> docs/benchmarks.md"
	@echo "make report QUARTER=2026-Q4       quarterly report -> reports/2026-Q4/"

setup:
	@tools/ensure-venv $(VENV)

postgres:
	@tools/ensure-postgres

docker: setup
	@tools/ensure-docker $(BIN)/python

runner-image: docker
	$(BIN)/python -m drills.containers.runner_image

drill: setup postgres
	@if $(CONTAINER_SCENARIO) scenarios/$(SCENARIO).yaml; then tools/ensure-docker $(BIN)/python; fi
	@if grep -q 'kind: dual-active' scenarios/$(SCENARIO).yaml; then tools/ensure-packages --required haproxy=haproxy; fi
	@if grep -q 'kind: patroni' scenarios/$(SCENARIO).yaml; then tools/ensure-packages --required patroni=patroni etcd=etcd-server haproxy=haproxy; fi
	@if grep -qE '^  backup:' scenarios/$(SCENARIO).yaml; then tools/ensure-packages --required pgbackrest=pgbackrest; fi
	$(BIN)/drills run scenarios/$(SCENARIO).yaml $(ARGS)

validate: setup
	$(BIN)/drills validate scenarios/*.yaml

lint: setup
	$(BIN)/ruff check drills probes tests bench
	$(BIN)/mypy

test-unit: setup
	$(BIN)/pytest tests/unit -q

test-packages:
	@tools/ensure-test-packages

test: setup postgres docker test-packages lint
	$(BIN)/drills validate scenarios/*.yaml
	$(BIN)/pytest -q

report: setup
	$(BIN)/drills report $(if $(QUARTER),--quarter $(QUARTER))

bench: setup postgres
	$(BIN)/python -m bench.fidelity
	$(BIN)/python -m bench.capacity
	$(BIN)/python -m bench.tcp_capacity
	$(BIN)/python -m bench.store
	@tools/ensure-packages --required patroni=patroni etcd=etcd-server haproxy=haproxy
	$(BIN)/python -m bench.http_capacity
	$(BIN)/python -m bench.patroni

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
