# lspguard developer entry points. `make test` is exactly what CI runs (see .ci/run).
#
#   make demo    scripted editor session through lspguard against real gopls
#   make test    the whole test suite (real gopls included)
#   make lint    ruff + mypy --strict
#   make bench   quick relay benchmark
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

.PHONY: help setup gopls demo test lint bench clean

help:
	@sed -n '3,7p' Makefile | sed 's/^# *//'

setup: $(STAMP) gopls

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "make: need python3.11 or python3 on PATH" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[test,dev]'
	@touch $@

# The same lookup the shim and the tests use (PATH, $GOBIN, $GOPATH/bin, ~/go/bin; shims skipped).
gopls: $(STAMP)
	@if gopls_path=$$($(BIN)/python -c 'from lspguard.shim import find_real_gopls; print(find_real_gopls(""))' 2>/dev/null); then \
		echo "gopls: $$gopls_path"; \
	else \
		command -v go >/dev/null || { echo "make: gopls not found and no Go toolchain to install it" >&2; exit 1; }; \
		echo "gopls not found: go install golang.org/x/tools/gopls@$(GOPLS_VERSION)"; \
		go install golang.org/x/tools/gopls@$(GOPLS_VERSION); \
	fi

demo: setup
	$(BIN)/lspguard demo

test: setup
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy --strict lspguard

bench: setup
	$(BIN)/python bench/bench.py --quick

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist *.egg-info
