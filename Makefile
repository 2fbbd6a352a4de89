# The index of what can be run. `make help` lists the targets.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# Parallel lanes of `make test` (pytest-xdist), each with its own test database and Redis databases.
TEST_LANES ?= 3

.DEFAULT_GOAL := help
.PHONY: help dev test deploy-check build release run tools helm-install k8s-deploy monitor bench services services-stop lint format typecheck requirements clean

help:  ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

$(INSTALLED): requirements/test.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements/test.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation --editable .
	touch $@

dev: $(INSTALLED)  ## Run the whole platform in one process at http://127.0.0.1:8000
	mkdir -p var
	DJANGO_SETTINGS_MODULE=config.settings.local $(BIN)/python manage.py run_standalone

test: $(INSTALLED) services lint typecheck  ## Start the real services, lint, then run every test (but the deployment checks)
	$(BIN)/pytest --ignore=tests/deploy -m "not serial" --numprocesses $(TEST_LANES) --dist worksteal --durations=25
	$(BIN)/pytest --ignore=tests/deploy -m serial --durations=5

deploy-check: $(INSTALLED) services  ## The deployment checks: images, compose, chart, with their built tools
	$(BIN)/pytest tests/deploy

build: $(INSTALLED)  ## Build and tag the dts image
	DTS_BUILD_PYTHON=$(BIN)/python platform/docker/build.sh

release: $(INSTALLED)  ## VERSION=1.2.3 [REGISTRY=docker.io/dtsproject]: build, tag and push the image and the Helm chart
	DTS_BUILD_PYTHON=$(BIN)/python VERSION="$(VERSION)" REGISTRY="$(REGISTRY)" platform/release.sh

run: build services  ## Run the whole platform from its image with docker compose (compose/); make clean removes it
	platform/docker/stack.sh up

tools:  ## Build the deployment tools (helm and its plugin, kubeconform and schemas, controller-gen and CRD schemas, docker compose) into the cache
	platform/tools/install.sh

# The Helm chart (helm/dts/README.md) into the current kubectl context: VALUES is your values file
# (helm/dts/ci/minimal-values.yaml shows what it must set), NAMESPACE and RELEASE default to dts.
NAMESPACE ?= dts
RELEASE ?= dts
VALUES ?=
helm-install:  ## Install or upgrade the chart (VALUES=my-values.yaml, NAMESPACE, RELEASE); the migrations run first
	@test -n "$(VALUES)" || { echo "make helm-install VALUES=<your values file>"; exit 2; }
	"$$(platform/tools/helm.sh)" upgrade --install $(RELEASE) helm/dts --namespace $(NAMESPACE) --create-namespace --values $(VALUES)

k8s-deploy:  ## helm-install, then wait until every Deployment has rolled out (rolled back on failure)
	@test -n "$(VALUES)" || { echo "make k8s-deploy VALUES=<your values file>"; exit 2; }
	"$$(platform/tools/helm.sh)" upgrade --install $(RELEASE) helm/dts --namespace $(NAMESPACE) --create-namespace --values $(VALUES) --wait --timeout 15m --atomic

# make monitor: the local Prometheus of `make services` (and compose's Grafana when it runs);
# KUBE=1: the cluster's, port-forwarded by platform/k8s/monitor.sh.
KUBE ?=
monitor:  ## URLs of the local Prometheus (and compose's Grafana); KUBE=1: port-forward the cluster's Prometheus and Grafana here
ifeq ($(KUBE),1)
	platform/k8s/monitor.sh
else
	platform/local/monitor.sh
endif

bench: $(INSTALLED) services  ## Run the benchmarks against their peers; results in bench/results/
	$(BIN)/pip install --quiet -r requirements/bench.txt
	$(BIN)/python -m bench.scheduler
	$(BIN)/python -m bench.execution
	$(BIN)/python -m bench.events
	$(BIN)/python -m bench.api
	$(BIN)/python -m bench.live
	$(BIN)/python -m bench.metrics
	$(BIN)/python -m bench.logs
	$(BIN)/python -m bench.workflows

services:  ## Install (if missing) and start PostgreSQL, Redis, Kafka, Elasticsearch, Prometheus
	platform/local/services.sh start

services-stop:  ## Stop the services that `make services` started
	platform/local/services.sh stop

lint: $(INSTALLED)  ## ruff lint and format check; the import layers (docs/architecture.md)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: $(INSTALLED)  ## mypy with the Django plugin
	$(BIN)/mypy apps bench cli config dispatch standalone workers

format: $(INSTALLED)  ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

requirements: $(INSTALLED)  ## Re-pin requirements/*.txt from requirements/*.in
	cd requirements && ../$(BIN)/pip-compile --quiet --strip-extras --allow-unsafe --no-emit-find-links -o base.txt base.in
	cd requirements && ../$(BIN)/pip-compile --quiet --strip-extras --allow-unsafe --no-emit-find-links -o test.txt test.in
	cd requirements && ../$(BIN)/pip-compile --quiet --strip-extras --allow-unsafe --no-emit-find-links -o bench.txt bench.in

clean:  ## Remove the compose stack, stop the services and the engine, remove the virtualenv and local state
	platform/docker/stack.sh down
	platform/docker/dockerd.sh stop
	platform/local/services.sh stop
	rm -rf $(VENV) var .services .mypy_cache .ruff_cache .pytest_cache
