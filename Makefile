# Hangar: every command the README mentions lives here. `make run` and `make test` install what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Prefer Python 3.13 (the Lambda runtime) when the machine has it; any 3.11+ works.
PYTHON_BOOT ?= $(shell for p in $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.13*/bin/python3.13 2>/dev/null) \
	$$(command -v python3.13) $$(command -v python3); do \
	"$$p" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null && echo "$$p" && break; done)
# make build (and so make test) needs Python 3.13 itself: sam build installs the layer with the functions'
# runtime's interpreter (python3.13) and the build's bytecode is compiled for it. A venv of its own, and a
# bin directory holding only its python3.13 for sam build's PATH.
PYTHON_LAMBDA ?= $(shell for p in $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.13*/bin/python3.13 2>/dev/null) \
	$$(command -v python3.13); do \
	"$$p" -c 'import sys, ensurepip; assert sys.version_info[:2] == (3, 13)' 2>/dev/null && echo "$$p" && break; done)
LAMBDA_PYTHON_MISSING := make build and make test need Python 3.13, the functions' Lambda runtime (python3.13): \
	sam build installs the layer with it and compiles the build for it. Install it (pyenv install 3.13, or a \
	python3.13 with its venv module on PATH; PYTHON_LAMBDA=/path/to/python3.13 names one) and run make again. \
	make run needs only Python 3.11+.
LAMBDA_PYTHON_BIN := .tools/python3.13/bin
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .tools
SAM := $(TOOLS)/sam/bin/sam
CFN_LINT := $(TOOLS)/sam/bin/cfn-lint
CHECKOV := $(TOOLS)/checkov/bin/checkov
# sam build looks for python3.13 on PATH: $(LAMBDA_PYTHON_BIN) has that one only.
SAM_ENV := PATH="$(CURDIR)/$(LAMBDA_PYTHON_BIN):$(CURDIR)/$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0
PORT ?= 3000
# apt-get behind one lock: make test runs its installs side by side, and two apt-gets at once fail on dpkg's lock.
APT_GET := flock /tmp/hangar-apt.lock apt-get
# DynamoDB Local (AWS's jar, shipped in this npm package) for the e2e suite's second run and `make dynamodb-local`.
DYNAMODB_LOCAL_PACKAGE := amplify-dynamodb-simulator@2.9.30
DYNAMODB_LOCAL := $(TOOLS)/dynamodb-local
DYNAMODB_LOCAL_PORT ?= 8100
# $(call timed,<what>,<command>): run the command, print "<what> took N s", exit with the command's status.
timed = @start=$$(date +%s); $(2); status=$$?; echo "$(1) took $$(( $$(date +%s) - start )) s"; exit $$status

.PHONY: help lambda-python install install-run install-dynamodb-local run dynamodb-local test lint typecheck validate cfn-lint \
	checkov template-checks build pytest e2e-dynamodb-local fuzz oidc-install oidc-e2e bench openapi clean agent-wheel systemd-analyze \
	install-browser browser-test screenshots console-upload
.PHONY: sam-local sam-local-packages sam-local-x86-build test-sam-local

help:
	@echo "make run        - serve the API locally on http://127.0.0.1:$(PORT) (installs only what serving needs)"
	@echo "make test       - install, then lint, typecheck, check and build the template, run every test"
	@echo "                  (the e2e suite twice: on the embedded moto, then on AWS's DynamoDB Local)"
	@echo "make install    - everything make test needs (.venv, .tools)"
	@echo "make install-run - only what make run needs (.venv)"
	@echo "make install-dynamodb-local - DynamoDB Local's jar (npm) and a Java runtime if missing"
	@echo "make lint       - ruff"
	@echo "make typecheck  - mypy"
	@echo "make validate   - sam validate --lint"
	@echo "make cfn-lint   - cfn-lint on template.yaml"
	@echo "make checkov    - checkov on template.yaml"
	@echo "make template-checks - validate, cfn-lint and checkov"
	@echo "make build      - sam build (no container; needs Python 3.13) with the agent wheel the install script carries, then bytecode"
	@echo "make lambda-python - check that Python 3.13 (make build, make test) is there"
	@echo "make agent-wheel - build only that wheel (layers/hangar/hangar/fleet/agent_wheel/)"
	@echo "make systemd-analyze - install systemd-analyze (the agent unit's tests use it) if missing"
	@echo "make pytest     - every test but the fuzzer, on the embedded moto (part of make test)"
	@echo "make e2e-dynamodb-local - the e2e suite on DynamoDB Local (part of make test)"
	@echo "make fuzz       - schemathesis over docs/openapi.json against local/ (part of make test)"
	@echo "make oidc-e2e   - sign-in against a real OIDC issuer (npm oidc-provider) through local/ (part of make test)"
	@echo "make oidc-install - oidc-provider (npm) into tests/oidc/node_modules"
	@echo "make browser-test - the console in headless Chromium against local/ (part of make test)"
	@echo "make screenshots - the same, writing the README's console screenshots (docs/console/)"
	@echo "make install-browser - Debian's chromium and the pinned Playwright (the browser tests' needs)"
	@echo "make console-upload STACK=<name> - upload console/ to a deployed stack's console bucket"
	@echo "make dynamodb-local - run DynamoDB Local on port $(DYNAMODB_LOCAL_PORT), data kept in $(DYNAMODB_LOCAL)/data"
	@echo "make openapi    - regenerate docs/openapi.json from the handlers"
	@echo "make bench      - performance figures (DynamoDB calls, sweeper, cold start, gateway, cost, logs, events, fleet, job pickup)"
	@echo "make sam-local  - make run's backend and API, with sam local start-api on http://127.0.0.1:$(SAM_PORT) (needs Docker)"
	@echo "make test-sam-local - the stack under sam local in Docker (root: installs docker.io, starts dockerd; CI runs it)"
	@echo "make clean      - remove .venv, .tools and build output"

# uv, pinned in requirements-uv.txt, makes every venv and installs into it (pip's work about ten times
# faster: docs/decisions.md, "Test time"). UV_NATIVE_TLS: the system's certificates, as pip uses; never a
# downloaded Python; bytecode compiled at install, as pip does.
UV_INSTALLED := $(TOOLS)/uv/.installed
UV := $(TOOLS)/uv/bin/uv
export UV_NATIVE_TLS := 1
export UV_LINK_MODE := copy
export UV_COMPILE_BYTECODE := 1
export UV_PYTHON_DOWNLOADS := never
export UV_NO_PROGRESS := 1
# $(call uv_install,<venv>,<pip install arguments>)
uv_install = $(UV) pip install --quiet --python $(1)/bin/python $(2)
$(UV_INSTALLED): requirements-uv.txt
	@test -n "$(PYTHON_BOOT)" || { echo "No Python 3.11+ found"; exit 1; }
	"$(PYTHON_BOOT)" -m venv $(TOOLS)/uv
	$(TOOLS)/uv/bin/pip install --quiet -r requirements-uv.txt
	touch $@

# What serving needs (make run); the test toolchain comes on top (make test).
$(VENV)/.run-installed: requirements-run.txt layers/hangar/requirements.txt layers/jwt/requirements.txt pyproject.toml agent/pyproject.toml $(UV_INSTALLED)
	@test -n "$(PYTHON_BOOT)" || { echo "No Python 3.11+ found"; exit 1; }
	@echo "==> Creating $(VENV) with $(PYTHON_BOOT) (first run only)"
	$(UV) venv --quiet --seed --allow-existing --python "$(PYTHON_BOOT)" $(VENV)
	@echo "==> Installing what make run needs (requirements-run.txt), the hangar layer package and the agent (editable)"
	$(call uv_install,$(VENV),-r requirements-run.txt -e . -e ./agent)
	touch $@

$(VENV)/.installed: requirements-dev.txt $(VENV)/.run-installed
	@echo "==> Installing the test toolchain (requirements-dev.txt)"
	$(call uv_install,$(VENV),-r requirements-dev.txt)
	touch $@

install-run: $(VENV)/.run-installed

# DynamoDB Local's jar from the pinned npm package (npm pack: the package alone, none of its Node
# dependencies, which only wrap the jar); a Java runtime from Debian when the machine has none.
$(DYNAMODB_LOCAL)/.installed:
	@command -v java >/dev/null || { echo "==> Installing a Java runtime (default-jre-headless)"; \
		$(APT_GET) update -qq && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq default-jre-headless; }
	@echo "==> Fetching DynamoDB Local ($(DYNAMODB_LOCAL_PACKAGE))"
	rm -rf $(DYNAMODB_LOCAL) && mkdir -p $(DYNAMODB_LOCAL)
	cd $(DYNAMODB_LOCAL) && npm pack --silent $(DYNAMODB_LOCAL_PACKAGE) >/dev/null && tar xzf amplify-dynamodb-simulator-*.tgz \
		&& rm amplify-dynamodb-simulator-*.tgz
	test -f $(DYNAMODB_LOCAL)/package/emulator/DynamoDBLocal.jar
	touch $@

install-dynamodb-local: $(DYNAMODB_LOCAL)/.installed

$(TOOLS)/sam/.installed: requirements-tools.txt $(UV_INSTALLED)
	$(UV) venv --quiet --allow-existing --python "$(PYTHON_BOOT)" $(TOOLS)/sam
	$(call uv_install,$(TOOLS)/sam,-r requirements-tools.txt)
	touch $@

# checkov pins libraries (boto3, networking) that clash with aws-sam-cli's: its own venv.
$(TOOLS)/checkov/.installed: requirements-checkov.txt $(UV_INSTALLED)
	@test -n "$(PYTHON_BOOT)" || { echo "No Python 3.11+ found"; exit 1; }
	$(UV) venv --quiet --allow-existing --python "$(PYTHON_BOOT)" $(TOOLS)/checkov
	$(call uv_install,$(TOOLS)/checkov,-r requirements-checkov.txt)
	touch $@

# Fails at once, with what to do, where Python 3.13 is missing (make test checks it first).
lambda-python:
	@test -n "$(PYTHON_LAMBDA)" || { echo "$(LAMBDA_PYTHON_MISSING)" >&2; exit 1; }

$(LAMBDA_PYTHON_BIN)/python3.13: | lambda-python
	rm -rf $(TOOLS)/python3.13 && "$(PYTHON_LAMBDA)" -m venv $(TOOLS)/python3.13/venv
	mkdir -p $(LAMBDA_PYTHON_BIN) && printf '#!/bin/sh\nexec "%s" "$$@"\n' "$(CURDIR)/$(TOOLS)/python3.13/venv/bin/python3.13" > $@
	chmod +x $@

install: $(VENV)/.installed $(TOOLS)/sam/.installed $(TOOLS)/checkov/.installed $(DYNAMODB_LOCAL)/.installed install-browser

# The console's browser tests: Debian's chromium (Playwright's own browser download is never used, nor
# possible here) and the Playwright pinned in requirements-browser.txt, which drives it.
CHROMIUM := /usr/bin/chromium
$(VENV)/.browser-installed: requirements-browser.txt | $(VENV)/.installed
	$(call uv_install,$(VENV),-r requirements-browser.txt)
	touch $@

install-browser: $(VENV)/.browser-installed
	@test -x $(CHROMIUM) || { echo "==> Installing Debian's chromium"; $(APT_GET) update -qq && \
		DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; }

run: $(VENV)/.run-installed agent-wheel
	$(PY) -m local serve --port $(PORT)

# DynamoDB Local with its data on disk: `HANGAR_DYNAMODB_ENDPOINT=http://127.0.0.1:8100 make run` keeps it.
dynamodb-local: $(DYNAMODB_LOCAL)/.installed
	mkdir -p $(DYNAMODB_LOCAL)/data
	cd $(DYNAMODB_LOCAL)/package/emulator && java -Djava.library.path=DynamoDBLocal_lib -jar DynamoDBLocal.jar \
		-sharedDb -dbPath $(CURDIR)/$(DYNAMODB_LOCAL)/data -port $(DYNAMODB_LOCAL_PORT)

# The agent wheel the install script carries (layers/hangar/hangar/install_script.py): built into the layer's
# package, so `make build` ships it in the stack and `make run` serves the checkout's agent the same way.
AGENT_WHEEL_DIR := layers/hangar/hangar/fleet/agent_wheel
$(AGENT_WHEEL_DIR)/.built: agent/pyproject.toml agent/README.md $(wildcard agent/hangar_agent/*.py agent/hangar_agent/*.service) | $(VENV)/.run-installed
	rm -rf agent/build $(AGENT_WHEEL_DIR)
	$(PY) -m pip wheel --quiet --no-deps --wheel-dir $(AGENT_WHEEL_DIR) ./agent
	rm -rf agent/build
	touch $@

agent-wheel: $(AGENT_WHEEL_DIR)/.built

# The agent's tests check its systemd unit with systemd-analyze, which runs without systemd as PID 1.
systemd-analyze:
	@command -v systemd-analyze >/dev/null || { $(APT_GET) update -qq && \
		DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq --no-install-recommends systemd >/dev/null; }

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

validate: $(TOOLS)/sam/.installed
	$(SAM_ENV) $(SAM) validate --lint --template template.yaml

# Errors and warnings fail; a rule ignored for a resource says why in the template (Metadata: cfn-lint).
cfn-lint: $(TOOLS)/sam/.installed
	$(CFN_LINT) --format parseable template.yaml

# Stack-wide skips and their reasons: .checkov.yaml; a skip for one resource: its Metadata (checkov: skip).
checkov: $(TOOLS)/checkov/.installed
	$(CHECKOV) --config-file .checkov.yaml --file template.yaml

template-checks: validate cfn-lint checkov

# sam build (no container), then bytecode for python3.13: sam build ships none, and Lambda's code
# directories are read-only, so every cold start would compile the layer (tools/bytecode.py).
# make test-sam-local builds its x86_64 copy of the template through the same recipe.
SAM_TEMPLATE ?= template.yaml
SAM_BUILD_DIR ?= .aws-sam/build
SAM_CACHE_DIR ?= .aws-sam/cache
build: $(LAMBDA_PYTHON_BIN)/python3.13 $(TOOLS)/sam/.installed agent-wheel
	$(SAM_ENV) $(SAM) build --template $(SAM_TEMPLATE) --build-dir $(SAM_BUILD_DIR) --cache-dir $(SAM_CACHE_DIR) --parallel --cached
	$(SAM_ENV) python3.13 -m tools.bytecode $(SAM_BUILD_DIR)

FUZZ_TEST := tests/e2e/test_fuzz_schemathesis.py

# 3 workers on 2 cores: e2e tests spend time waiting on agents and subprocesses (docs/decisions.md, "Test time").
pytest: $(VENV)/.installed $(DYNAMODB_LOCAL)/.installed agent-wheel systemd-analyze
	$(call timed,pytest stage,$(PY) -m pytest -n 3 --dist loadfile --no-loadscope-reorder -q --durations=12 \
		--ignore $(FUZZ_TEST) --ignore $(OIDC_TEST) --ignore tests/browser)

# The e2e suite again, on AWS's DynamoDB Local (one per xdist worker, tables per server): it sees what
# moto forgives (transactions, indexes, validation). Prints what this stage costs.
e2e-dynamodb-local: $(VENV)/.installed $(DYNAMODB_LOCAL)/.installed agent-wheel systemd-analyze
	$(call timed,e2e on DynamoDB Local,HANGAR_E2E_DYNAMODB=local $(PY) -m pytest tests/e2e -n 2 --dist loadfile \
		--no-loadscope-reorder -q --durations=8 --ignore $(FUZZ_TEST) --ignore $(OIDC_TEST) -p no:cacheprovider)

# Schemathesis over every documented operation against local/ (full access, then read-only): its own
# step so that its summary prints (requests, statuses per operation, seconds). Bounded: HANGAR_FUZZ_EXAMPLES.
fuzz: $(VENV)/.installed
	$(PY) -m pytest $(FUZZ_TEST) -q -s -p no:cacheprovider

# A real OpenID Connect issuer for the JWKS end-to-end tests: oidc-provider, pinned with its dependencies
# in tests/oidc/package-lock.json, installed into tests/oidc/node_modules (git-ignored). Node.js 20+.
OIDC_DIR := tests/oidc
OIDC_TEST := tests/e2e/test_oidc_e2e.py

$(OIDC_DIR)/node_modules/.installed: $(OIDC_DIR)/package.json $(OIDC_DIR)/package-lock.json
	@command -v npm >/dev/null || { $(APT_GET) update -qq && $(APT_GET) install -y -qq nodejs npm; }
	cd $(OIDC_DIR) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

oidc-install: $(OIDC_DIR)/node_modules/.installed

# Its own step so its cost prints (seconds, tokens issued, requests): one issuer, one local/ server.
oidc-e2e: $(VENV)/.installed $(OIDC_DIR)/node_modules/.installed
	$(PY) -m pytest $(OIDC_TEST) -q -s -p no:cacheprovider


# The console in one headless Chromium against one local/ (tests/browser); prints what this stage costs.
browser-test: install-browser agent-wheel
	$(call timed,browser tests,$(PY) -m pytest tests/browser -q -p no:cacheprovider)

# The browser tests write their screenshots to .tools/screenshots/; this run refreshes the tracked ones.
screenshots:
	HANGAR_SCREENSHOTS_DIR=$(CURDIR)/docs/console $(MAKE) browser-test

# After `sam deploy` (needs the AWS CLI): console/ into the stack's console bucket, config.json naming the
# stack's API; Cache-Control no-cache, so CloudFront and browsers revalidate and a new upload shows at once.
STACK_OUTPUT = aws cloudformation describe-stacks --stack-name $(STACK) --output text \
	--query "Stacks[0].Outputs[?OutputKey=='$(1)'].OutputValue"
console-upload:
	@test -n "$(STACK)" || { echo "usage: make console-upload STACK=<stack name>  (AWS CLI, credentials, region)"; exit 1; }
	@bucket=$$($(call STACK_OUTPUT,ConsoleBucketName)) && api=$$($(call STACK_OUTPUT,ApiUrl)) && \
		test -n "$$bucket" -a "$$bucket" != None && \
		aws s3 sync console/ "s3://$$bucket/" --delete --exclude config.json --cache-control no-cache && \
		printf '{\n  "apiUrl": "%s"\n}\n' "$$api" | aws s3 cp - "s3://$$bucket/config.json" \
			--content-type application/json --cache-control no-cache && \
		echo "Console: $$($(call STACK_OUTPUT,ConsoleUrl)) (API $$api)"

# Installs four at a time (separate venvs, npm, apt), then the static checks and the build two at a time (each
# mostly one core), then the fuzzer beside the OIDC and browser stages (the fuzzer keeps about one core busy),
# then the two stages that use both cores, one after the other. --output-sync keeps each target's output together.
TEST_INSTALLS := install systemd-analyze oidc-install agent-wheel $(LAMBDA_PYTHON_BIN)/python3.13
STATIC_CHECKS := lint typecheck template-checks build
SIDE_BY_SIDE_STAGES := fuzz oidc-e2e browser-test
test: lambda-python
	$(call timed,make test's installs,$(MAKE) --no-print-directory -j4 --output-sync=target $(TEST_INSTALLS))
	$(call timed,static checks and build,$(MAKE) --no-print-directory -j2 --output-sync=target $(STATIC_CHECKS))
	$(call timed,fuzz beside oidc-e2e and browser-test,$(MAKE) --no-print-directory -j3 --output-sync=target $(SIDE_BY_SIDE_STAGES))
	@$(MAKE) --no-print-directory pytest e2e-dynamodb-local

# BENCH_ARGS: e.g. --sections pickup,cost (python -m bench --help). The pickup section runs the agent from .venv.
BENCH_ARGS ?=
bench: $(VENV)/.installed agent-wheel
	$(call timed,make bench,$(PY) -m bench $(BENCH_ARGS))

openapi: $(VENV)/.installed
	$(PY) -m local openapi

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
	@dpkg -s $(SAM_LOCAL_PACKAGES) >/dev/null 2>&1 || { $(APT_GET) update -qq && \
		DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq --no-install-recommends $(SAM_LOCAL_PACKAGES); }

# tests/sam_local: sam local invoke and start-api in Docker against the embedded backend (the x86_64 copy of
# the template for speed, the arm64 build for one invoke). Prints its duration; CI runs it after make test.
test-sam-local: $(VENV)/.installed $(TOOLS)/sam/.installed sam-local-packages
	@started=$$(date +%s); \
	$(MAKE) --no-print-directory build && $(MAKE) --no-print-directory sam-local-x86-build && \
	HANGAR_SAM_LOCAL=1 $(SAM_ENV) $(PY) -m pytest tests/sam_local -q -s -p no:cacheprovider; \
	status=$$?; echo "make test-sam-local took $$(( $$(date +%s) - started )) s (exit $$status)"; exit $$status

clean:
	rm -rf $(VENV) $(TOOLS) .aws-sam .pytest_cache .mypy_cache .ruff_cache $(AGENT_WHEEL_DIR) $(OIDC_DIR)/node_modules
