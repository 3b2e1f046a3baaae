# faceinpaint: every entry point. `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.faceinpaint-installed
PYTEST_ARGS ?=
OUT ?= outputs

.DEFAULT_GOAL := help
.PHONY: help setup demo demo-train eval bench test test-all lint format preview clean-cache

VAEGAN ?=
DCGAN ?=
EVAL_PROTOCOLS ?= thesis vaegan-paper free-form
EVAL_ARGS ?=
BENCH_ARGS ?=

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e ".[dev]"
	@$(BIN)/python -c "import torch, torchvision.ops, lightning, dlib, kornia" || { \
	  echo "setup: torch/torchvision do not import together in $(VENV); a local CPU torch wheel may have been picked." \
	       "Remove $(VENV) and run 'make setup' again, or install a matching pair (torch>=2.14 with torchvision 0.29)."; exit 1; }
	@touch $(STAMP)

setup: $(STAMP)  ## create $(VENV) (or reuse VENV=...) and install the package with dev tools

demo: setup  ## the main job: the shipped VAE-GAN and encoder-started DCGAN search against the classical fills on the embedded faces (thesis masks), a few minutes on 2 cores: $(OUT)/demo/
	@echo "demo: loading torch and the shipped models (faceinpaint/assets/), then 64 faces x 3 masks; a few minutes on 2 CPU cores"
	$(BIN)/faceinpaint demo --out $(OUT)/demo

demo-train: setup  ## retrain the demo's three models from scratch (about 1.5 h on one busy CPU core) into faceinpaint/assets/, then run the demo: $(OUT)/demo-train/
	$(BIN)/faceinpaint demo --train true --out $(OUT)/demo-train

eval: setup  ## benchmark tables in $(OUT)/eval: VAEGAN=ckpt DCGAN=ckpt on celeba-half (EVAL_PROTOCOLS); no checkpoint: the demo's shipped models on the embedded faces
ifeq ($(strip $(VAEGAN)$(DCGAN)),)
	$(BIN)/faceinpaint demo --out $(OUT)/eval
else
	@set -e; for protocol in $(EVAL_PROTOCOLS); do \
	  $(BIN)/faceinpaint eval --config configs/eval/$$protocol.yaml \
	    $(if $(VAEGAN),--vaegan $(VAEGAN)) $(if $(DCGAN),--dcgan $(DCGAN)) \
	    --skip_mismatched true --out $(OUT)/eval $(EVAL_ARGS); \
	done
endif

bench: setup  ## throughput table on CPU (and CUDA when present): $(OUT)/bench/bench.{jsonl,md}
	$(BIN)/faceinpaint bench --out $(OUT)/bench $(BENCH_ARGS)

test: setup  ## fast CPU tests (skips celeba-half tests when ../shared/data is absent)
	$(BIN)/python -m pytest -q -m "not slow and not gpu" $(PYTEST_ARGS)

test-all: setup  ## every test, slow ones included
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: setup  ## ruff lint and format check
	$(BIN)/ruff check faceinpaint tests
	$(BIN)/ruff format --check faceinpaint tests

format: setup  ## ruff format and autofix
	$(BIN)/ruff format faceinpaint tests
	$(BIN)/ruff check --fix faceinpaint tests

preview: setup  ## grid of celeba-half faces under every mask (needs ../shared/data/celeba-half)
	$(BIN)/faceinpaint preview --config configs/data/celeba-half-128.yaml --out $(OUT)/preview-celeba-half.png

clean-cache:  ## delete decoded-image caches ($$FACEINPAINT_CACHE or ~/.cache/faceinpaint)
	rm -rf "$${FACEINPAINT_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/faceinpaint}"
