# speedbatch: `make up` runs the whole service on a local AWS emulator; `make test` is what CI runs.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

SAM_VENV := $(CURDIR)/.local/venvs/sam/bin
# The local stack: dummy credentials, the emulator's endpoint, no telemetry.
LOCAL_AWS := PATH="$(SAM_VENV):$$PATH" AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_REGION=us-east-1 \
	AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test SAM_CLI_TELEMETRY=0
SAM := $(LOCAL_AWS) $(SAM_VENV)/sam
CHECKOV := $(CURDIR)/.local/venvs/checkov/bin/checkov
PY := $(LOCAL_AWS) $(SAM_VENV)/python

.PHONY: fake-crux help up down check test bench lighthouse-compare chaos chaos-stack tools ministack build deploy validate key limits clean

help:
	@echo "make up      build the functions, start ministack, deploy template.yaml, print API_URL and API_KEY"
	@echo "make check  formatting, clippy, and every test that needs no emulator (about a minute warm)"
	@echo "make test    make check, then template checks, integration, end-to-end and browser tests (what CI runs)"
	@echo "make bench   every benchmark on the deployed local stack; rewrites BENCHMARKS.md (about 25 minutes)"
	@echo "make chaos   faults, load, hostile input and security checks; rewrites RELIABILITY.md (about 20 minutes)"
	@echo "make lighthouse-compare   Lighthouse 12.8.2 against the browser and http engines on local pages;"
	@echo "           its section of BENCHMARKS.md (about 50 minutes) [LIGHTHOUSE_COMPARE='--runs 1 --pages 8']"
	@echo "make down    stop the ministack that make up started"
	@echo "make fake-crux   serve the local stack's fake Chrome UX Report (field data) until Ctrl-C"
	@echo "make key TENANT=name   create an API key for a tenant on the local stack"
	@echo "           [MAX_ACTIVE_JOBS=n] [MAX_URLS_PER_DAY=n] [MAX_IN_FLIGHT=n] [QUOTA_WEIGHT=n] also set the tenant's own limits"
	@echo "make limits TENANT=name MAX_ACTIVE_JOBS=n|default ...   change a tenant's own limits"

up: tools ministack build deploy

tools:
	@scripts/tools.sh

ministack:
	@scripts/ministack.sh start

# Host-architecture build for the emulator, which runs the bootstraps as local processes.
build: tools
	@scripts/chromium.sh layer
	@echo "==> building the functions (release, x86_64)"
	@time $(SAM) build --config-env local

deploy: build ministack
	@echo "==> deploying template.yaml to ministack"
	@$(PY) scripts/local_stack.py prepare
	@$(SAM) deploy --config-env local --no-progressbar
	@$(PY) scripts/local_stack.py finish

# A second stack on the same emulator for the chaos suite: strict address policy (but for the
# suite's own site on 127.0.0.2) and short timeouts, from the same build. About 10 s.
chaos-stack: build ministack
	@echo "==> deploying template.yaml to ministack as speedbatch-chaos (the chaos suite's stack)"
	@$(PY) scripts/local_stack.py prepare
	@$(SAM) deploy --config-env chaos --no-progressbar >/dev/null
	@STACK_NAME=speedbatch-chaos STACK_ENV_FILE=.local/chaos.env $(PY) scripts/local_stack.py finish

down:
	@scripts/ministack.sh stop

# Field data on the local stack comes from a fake Chrome UX Report at its CRUX_ENDPOINT; the
# e2e tests and the bench serve it themselves, this serves it for a session of your own.
fake-crux:
	@cargo run --quiet -p speedbatch-testkit --bin fake-crux

# The limits are passed through the environment (MAX_ACTIVE_JOBS, MAX_URLS_PER_DAY,
# MAX_IN_FLIGHT, QUOTA_WEIGHT): make exports command-line variables to its recipes.
key: ministack
	@test -n "$(TENANT)" || { echo "usage: make key TENANT=name [MAX_ACTIVE_JOBS=n] [MAX_URLS_PER_DAY=n] [MAX_IN_FLIGHT=n] [QUOTA_WEIGHT=n]" >&2; exit 2; }
	@$(PY) scripts/local_stack.py key "$(TENANT)"

limits: ministack
	@test -n "$(TENANT)" || { echo "usage: make limits TENANT=name MAX_ACTIVE_JOBS=n|default MAX_URLS_PER_DAY=n|default MAX_IN_FLIGHT=n|default QUOTA_WEIGHT=n|default" >&2; exit 2; }
	@$(PY) scripts/local_stack.py limits "$(TENANT)"

# Both SAM checks, the IAM grants against the code, checkov, and proof that the SAM checks
# still catch errors: the broken fixture must fail.
validate: tools
	@echo "==> validating template.yaml"
	@$(SAM) validate
	@$(SAM) validate --lint
	@$(SAM_VENV)/cfn-lint template.yaml
	@echo "==> IAM grants against the AWS calls each function's code makes (scripts/check_iam.py)"
	@cargo fetch --quiet
	@$(SAM_VENV)/python scripts/check_iam.py
	@echo "==> checkov (each skipped check is justified beside its resource in template.yaml)"
	@$(CHECKOV) --file template.yaml --framework cloudformation --quiet --compact --skip-download
	@if $(SAM_VENV)/cfn-lint tests/fixtures/broken-template.yaml >/dev/null 2>&1; then \
		echo "cfn-lint passed tests/fixtures/broken-template.yaml: the linter no longer checks SAM templates" >&2; exit 1; fi
	@if $(SAM) validate --lint --template tests/fixtures/broken-template.yaml >/dev/null 2>&1; then \
		echo "sam validate --lint passed the broken template" >&2; exit 1; fi
	@echo "==> template checks pass, and the broken fixture is still caught"

# The inner loop: no emulator, no SAM. Tests that need the emulator are behind the `emulator`
# feature (their targets' required-features), so a plain `cargo test` leaves them out.
check:
	@echo "==> cargo fmt --check"
	@cargo fmt --all --check
	@echo "==> cargo clippy (warnings are errors)"
	@cargo clippy --quiet --workspace --all-targets --all-features -- -D warnings
	@scripts/chromium.sh debian
	@echo "==> unit, domain, memory-store, handler and engine tests (no emulator; the browser engine's in Chromium)"
	@scripts/test-summary.sh

test: check validate up chaos-stack
	@echo "==> integration, end-to-end and CLI tests, and the chaos suite's quick parts (emulator)"
	@scripts/test-summary.sh --all-features --test integration --test e2e --test redrive --test stack --test quick
	@echo "==> the dashboard in Chromium (playwright-core)"
	@scripts/browser-test.sh

# Release build: the http engine's CPU per page is a figure. The arm64 artifacts are built by
# the bench itself (cargo lambda).
bench: up
	@echo "==> building speedbatch-bench (release)"
	@cargo build --release --quiet -p speedbatch-bench
	@$(LOCAL_AWS) target/release/speedbatch-bench all --runs 3 --out BENCHMARKS.md

# Lighthouse (pinned by bench/lighthouse/package-lock.json, installed there on first use) and
# the engines on the same local pages, one analysis at a time; rewrites only its own section of
# BENCHMARKS.md and keeps every run in bench/lighthouse/last-run.jsonl. No emulator. A release
# bench: its static server shares the machine with the browsers being timed.
LIGHTHOUSE_COMPARE ?= --runs 3
lighthouse-compare:
	@if [ ! bench/lighthouse/node_modules/.package-lock.json -nt bench/lighthouse/package-lock.json ]; then \
		echo "==> npm ci (bench/lighthouse: lighthouse 12.8.2)"; \
		npm ci --prefix bench/lighthouse --no-audit --no-fund --loglevel=error; fi
	@echo "==> building speedbatch-bench (release)"
	@cargo build --release --quiet -p speedbatch-bench
	@target/release/speedbatch-bench lighthouse-compare $(LIGHTHOUSE_COMPARE) --out BENCHMARKS.md

clean: down
	rm -rf .aws-sam .local

# The whole reliability suite (the quick parts of it run in `make test` too). Debug builds:
# the suite measures behaviour, not speed.
chaos: up chaos-stack
	@echo "==> building speedbatch-chaos and the CLI (debug)"
	@cargo build --quiet -p speedbatch-chaos -p speedbatch-cli
	@$(LOCAL_AWS) target/debug/speedbatch-chaos all --out RELIABILITY.md
