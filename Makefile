# lspguard developer entry points. `make test` is exactly what CI runs (see .ci/run).
#
#   make demo    scripted editor session through lspguard against real gopls
#   make test    the whole test suite: Python (real gopls included) and the VS Code extension
#   make lint    ruff + mypy --strict (package and tests); tsc + eslint for the extension
#   make vsix    package the VS Code extension (vscode-extension/lspguard-*.vsix)
#   make bench   relay benchmark (3 reps); bench-quick, bench-recovery, bench-startup
#
# Setup is shared and idempotent: .venv is created on first use and `pip install -e .[test,dev]`
# reruns only when pyproject.toml changes (stamp file); gopls is installed with `go install`
# only if no real gopls (not an lspguard shim) is found.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.lspguard-installed
GOPLS_VERSION := v0.21.1

# Where `go install` puts binaries: first on PATH, so tests and the demo find the real gopls
# even when the editor's PATH (or this shell's) lacks it.
GO_BIN_DIR := $(shell go env GOBIN 2>/dev/null | grep . || echo "$$(go env GOPATH 2>/dev/null || echo $$HOME/go)/bin")
export PATH := $(GO_BIN_DIR):$(PATH)

EXT := vscode-extension
EXT_STAMP := $(EXT)/node_modules/.package-lock.json
E2E := $(EXT)/e2e
E2E_STAMP := $(E2E)/node_modules/.package-lock.json

.PHONY: help setup gopls scale-fixtures demo test test-python test-unit test-extension lint vsix \
	bench bench-quick \
	bench-recovery bench-startup clean test-vscode code-server

help:
	@sed -n '3,8p' Makefile | sed 's/^# *//'

setup: $(STAMP) gopls

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "make: need python3.11 or python3 on PATH" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

# editable_mode=compat: a plain path entry in a .pth, not setuptools' import-hook finder, whose
# own imports (pathlib, re, urllib, ...) cost every Python start in this venv ~30 ms here: every
# `gopls version` through the shim, and the editor's wait for initialize (bench/startup_bench.py).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[test,dev]' \
		--config-settings editable_mode=compat
	@touch $@

# The same lookup the shim and the tests use (PATH, $GOBIN, $GOPATH/bin, ~/go/bin; shims skipped).
gopls: $(STAMP)
	@if gopls_path=$$($(BIN)/python -c 'from lspguard.gopls.find import find_real_gopls; print(find_real_gopls(""))' 2>/dev/null); then \
		echo "gopls: $$gopls_path"; \
	else \
		command -v go >/dev/null || { echo "make: gopls not found and no Go toolchain to install it" >&2; exit 1; }; \
		echo "gopls not found: go install golang.org/x/tools/gopls@$(GOPLS_VERSION)"; \
		go install golang.org/x/tools/gopls@$(GOPLS_VERSION); \
	fi

$(EXT_STAMP): $(EXT)/package-lock.json
	cd $(EXT) && npm ci --no-audit --no-fund

demo: setup
	$(BIN)/lspguard demo

test: test-python test-extension

# The real-size workspaces tests/system/test_scale.py judges lspguard on (against bare gopls), built once
# from the Go module proxy into ~/.cache/lspguard-scale (minutes the first time, then nothing).
scale-fixtures: setup
	$(BIN)/python -m tests.scale.workspace --ensure

test-python: setup scale-fixtures
	$(BIN)/pytest

# The in-process tests alone (tests/unit/<package>/: injected clocks, no subprocess; seconds).
test-unit: setup
	$(BIN)/pytest tests/unit

# The extension's integration tests drive a real `lspguard run` guarding real gopls; in this
# target a missing proxy, gopls or control socket is a failure, not a skip.
test-extension: setup $(EXT_STAMP)
	cd $(EXT) && npm run build && \
		LSPGUARD_REQUIRE_INTEGRATION=1 LSPGUARD_EXPECT_CONTROL=1 \
		LSPGUARD_GOPLS="$$(../$(BIN)/python -c 'from lspguard.gopls.find import find_real_gopls; print(find_real_gopls(""))')" \
		npm test

lint: $(STAMP) $(EXT_STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy --strict lspguard
	$(BIN)/mypy --strict tests
	cd $(EXT) && npm run lint

vsix: $(EXT_STAMP)
	cd $(EXT) && npm run build && npm run package

# The extension in a real VS Code: code-server driven by headless Chromium (puppeteer-core),
# against this checkout's .vsix, lspguard and real gopls; screenshots in
# $(EXT)/test-artifacts/vscode-*.png. code-server and the Node 24 it needs are installed once
# into ~/.cache/lspguard-vscode-e2e (LSPGUARD_E2E_CACHE), keyed by their versions.
$(E2E_STAMP): $(E2E)/package-lock.json
	cd $(E2E) && npm ci --no-audit --no-fund

code-server:
	$(E2E)/install-code-server.sh >/dev/null

test-vscode: setup vsix $(E2E_STAMP)
	code_server="$$($(E2E)/install-code-server.sh)" && \
		node $(E2E)/run.mjs --code-server "$$code_server" --lspguard $(BIN)/lspguard \
		--gopls "$$($(BIN)/python -c 'from lspguard.gopls.find import find_real_gopls; print(find_real_gopls(""))')"

bench: setup
	$(BIN)/python bench/bench.py --reps 3

bench-quick: setup
	$(BIN)/python bench/bench.py --quick

bench-recovery: setup
	$(BIN)/python bench/recovery_bench.py --reps 3

bench-startup: setup
	$(BIN)/python bench/startup_bench.py --reps 5

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist *.egg-info
