# Hangar: every command the README mentions lives here. `make run` and `make test` install what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Prefer Python 3.13 (the Lambda runtime) when the machine has it; any 3.11+ works.
PYTHON_BOOT ?= $(shell for p in $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.13*/bin/python3.13 2>/dev/null) \
	$$(command -v python3.13) $$(command -v python3); do \
	"$$p" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null && echo "$$p" && break; done)
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .tools
SAM := $(TOOLS)/sam/bin/sam
CFN_LINT := $(TOOLS)/sam/bin/cfn-lint
CHECKOV := $(TOOLS)/checkov/bin/checkov
# sam build looks for python3.13 on PATH; the venv's interpreter is that one.
SAM_ENV := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0
PORT ?= 3000

.PHONY: help install run test lint typecheck validate cfn-lint checkov template-checks build pytest fuzz bench openapi clean
.PHONY: sam-local sam-local-packages sam-local-x86-build test-sam-local

help:
	@echo "make run       - serve the API locally on http://127.0.0.1:$(PORT) (installs what it needs)"
	@echo "make test      - install, then lint, typecheck, check (sam validate, cfn-lint, checkov) and build the template, run every test"
	@echo "make lint      - ruff"
	@echo "make fuzz      - schemathesis over docs/openapi.json against local/ (part of make test)"
	@echo "make template-checks - sam validate --lint, cfn-lint and checkov on template.yaml"
	@echo "make build     - sam build (no container), then bytecode for python3.13"
	@echo "make bench     - performance figures (DynamoDB calls, sweeper reads, cold start, gateway)"
	@echo "make sam-local - make run's backend and API, with sam local start-api on http://127.0.0.1:$(SAM_PORT) (needs Docker)"
	@echo "make test-sam-local - the stack under sam local in Docker (root: installs docker.io, starts dockerd)"

$(VENV)/.installed: requirements-dev.txt layers/hangar/requirements.txt pyproject.toml agent/pyproject.toml
	@test -n "$(PYTHON_BOOT)" || { echo "No Python 3.11+ found"; exit 1; }
	"$(PYTHON_BOOT)" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet -e . -e ./agent
	touch $@

$(TOOLS)/sam/.installed: requirements-tools.txt | $(VENV)/.installed
	"$(PYTHON_BOOT)" -m venv $(TOOLS)/sam
	$(TOOLS)/sam/bin/pip install --quiet --upgrade pip
	$(TOOLS)/sam/bin/pip install --quiet -r requirements-tools.txt
	touch $@

# checkov pins libraries (boto3, networking) that clash with aws-sam-cli's: its own venv.
$(TOOLS)/checkov/.installed: requirements-checkov.txt
	@test -n "$(PYTHON_BOOT)" || { echo "No Python 3.11+ found"; exit 1; }
	"$(PYTHON_BOOT)" -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/pip install --quiet --upgrade pip
	$(TOOLS)/checkov/bin/pip install --quiet -r requirements-checkov.txt
	touch $@

install: $(VENV)/.installed $(TOOLS)/sam/.installed $(TOOLS)/checkov/.installed

run: $(VENV)/.installed
	$(PY) -m local serve --port $(PORT)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

validate: $(TOOLS)/sam/.installed
	$(SAM_ENV) $(SAM) validate --lint --template template.yaml

# Errors and warnings fail; a rule ignored for a resource says why in the template (Metadata: cfn-lint).
cfn-lint: $(TOOLS)/sam/.installed
	$(CFN_LINT) --format parseable template.yaml

# Every skipped check is justified on its resource (Metadata: checkov: skip). --skip-download: no network.
checkov: $(TOOLS)/checkov/.installed
	$(CHECKOV) --file template.yaml --framework cloudformation --compact --quiet --skip-download

template-checks: validate cfn-lint checkov

# sam build (no container), then bytecode for python3.13: sam build ships none, and Lambda's code
# directories are read-only, so every cold start would compile the layer (tools/bytecode.py).
# make test-sam-local builds its x86_64 copy of the template through the same recipe.
SAM_TEMPLATE ?= template.yaml
SAM_BUILD_DIR ?= .aws-sam/build
SAM_CACHE_DIR ?= .aws-sam/cache
build: $(TOOLS)/sam/.installed
	$(SAM_ENV) $(SAM) build --template $(SAM_TEMPLATE) --build-dir $(SAM_BUILD_DIR) --cache-dir $(SAM_CACHE_DIR) --parallel --cached
	$(SAM_ENV) python3.13 -m tools.bytecode $(SAM_BUILD_DIR)

FUZZ_TEST := tests/e2e/test_fuzz_schemathesis.py

pytest: $(VENV)/.installed
	$(PY) -m pytest -n 2 --dist loadfile -q --ignore $(FUZZ_TEST)

# Schemathesis over every documented operation against local/ (full access, then read-only): its own
# step so that its summary prints (requests, statuses per operation, seconds). Bounded: HANGAR_FUZZ_EXAMPLES.
fuzz: $(VENV)/.installed
	$(PY) -m pytest $(FUZZ_TEST) -q -s -p no:cacheprovider

test: lint typecheck template-checks build fuzz pytest

bench: $(VENV)/.installed
	$(PY) -m bench

# --- sam local (Docker) --------------------------------------------------------------------------------
SAM_PORT ?= 3001
SAM_LOCAL_STATE := .tools/sam-local
SAM_LOCAL_PACKAGES := docker.io debootstrap qemu-user-static binfmt-support

# The x86_64 copy of the template, built like make build: an x86_64 machine runs it without emulation,
# where the arm64 functions' cold starts under qemu outlast their 10 s timeout.
SAM_LOCAL_X86_TEMPLATE := $(SAM_LOCAL_STATE)/template-x86_64.yaml
SAM_LOCAL_X86_BUILD := $(SAM_LOCAL_STATE)/build-x86_64
sam-local-x86-build: $(VENV)/.installed $(TOOLS)/sam/.installed
	$(PY) -m tools.sam_local x86-template $(SAM_LOCAL_X86_TEMPLATE)
	$(MAKE) --no-print-directory build SAM_TEMPLATE=$(SAM_LOCAL_X86_TEMPLATE) SAM_BUILD_DIR=$(SAM_LOCAL_X86_BUILD) \
		SAM_CACHE_DIR=$(SAM_LOCAL_STATE)/cache-x86_64

ifeq ($(shell uname -m),x86_64)
SAM_LOCAL_BUILD ?= sam-local-x86-build
SAM_LOCAL_TEMPLATE ?= $(SAM_LOCAL_X86_BUILD)/template.yaml
else
SAM_LOCAL_BUILD ?= build
SAM_LOCAL_TEMPLATE ?= $(SAM_BUILD_DIR)/template.yaml
endif

# make run's stack (API on $(PORT)) with its embedded backend where containers reach it (the docker bridge,
# HANGAR_BACKEND_PORT, default 8000), and sam local start-api on $(SAM_PORT) against it, on the build of this
# machine's architecture. Ctrl-C stops all. SAM_LOCAL_ARGS go to sam local start-api (e.g. --skip-pull-image
# with locally built base images).
SAM_LOCAL_ARGS ?=
sam-local: $(SAM_LOCAL_BUILD)
	$(SAM_ENV) $(PY) -m tools.sam_local serve --template $(SAM_LOCAL_TEMPLATE) --port $(SAM_PORT) \
		--api-port $(PORT) -- $(SAM_LOCAL_ARGS)

sam-local-packages:
	@dpkg -s $(SAM_LOCAL_PACKAGES) >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(SAM_LOCAL_PACKAGES); }

# tests/sam_local: sam local invoke and start-api in Docker against the embedded backend (the x86_64 copy of
# the template for speed, the arm64 build for one invoke). Prints its duration; CI runs it after make test.
test-sam-local: $(VENV)/.installed $(TOOLS)/sam/.installed sam-local-packages
	@started=$$(date +%s); \
	$(MAKE) --no-print-directory build && $(MAKE) --no-print-directory sam-local-x86-build && \
	HANGAR_SAM_LOCAL=1 $(SAM_ENV) $(PY) -m pytest tests/sam_local -q -s -p no:cacheprovider; \
	status=$$?; echo "make test-sam-local took $$(( $$(date +%s) - started )) s (exit $$status)"; exit $$status

clean:
	rm -rf $(VENV) $(TOOLS) .aws-sam .pytest_cache .mypy_cache .ruff_cache
