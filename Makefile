# faceinpaint: every entry point. `make help` lists the user targets (those with a `## ` comment);
# gpu-check, gpu-wheels and gpu-data prepare and run the project's GPU check (docs/gpu-check.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.faceinpaint-installed
PYTEST_ARGS ?=
OUT ?= outputs

.DEFAULT_GOAL := help
.PHONY: help setup demo demo-train eval bench gpu-check gpu-wheels gpu-data test test-all lint format preview clean-cache

VAEGAN ?=
DCGAN ?=
EVAL_PROTOCOLS ?= thesis vaegan-paper free-form
EVAL_ARGS ?=
BENCH_ARGS ?=
DRY_RUN ?= 0
GPU_PYTHON ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,python3)
CELEBA_HALF ?= ../shared/data/celeba-half
# What the GPU machine lacks (its image has torch, lightning, torchmetrics, opencv, scikit-image):
GPU_WHEELS ?= kornia==0.9.0 kornia_rs==0.2.0 jsonargparse==4.53.0 docstring_parser==0.18.0 \
  typeshed_client==2.15.0 dlib-bin==20.0.1.post1 PyPatchMatch==2.2.0

# The variables a `## ` comment may name, shown with their values.
HELP_VARIABLES := VENV OUT PYTHON EVAL_PROTOCOLS CELEBA_HALF

help:  ## list the user targets (VENV=$(VENV), OUT=$(OUT))
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -e 's/:.*## /\t/' \
	  $(foreach v,$(HELP_VARIABLES),-e 's|$$($(v))|$($(v))|g') -e 's|\$$\$$|$$|g' | expand -t 14

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e ".[dev]"
	@$(BIN)/python -c "import torch, torchvision.ops, lightning, dlib, kornia" || { \
	  echo "setup: torch/torchvision do not import together in $(VENV); a local CPU torch wheel may have been picked." \
	       "Remove $(VENV) and run 'make setup' again, or install a matching torch/torchvision pair (torch 2.N goes with torchvision 0.(N+15), e.g. 2.14 with 0.29)."; exit 1; }
	@touch $(STAMP)

setup: $(STAMP)  ## create $(VENV) (or reuse VENV=...) and install the package with dev tools

demo: setup  ## the main job: the shipped VAE-GAN, encoder-started DCGAN search and Context Encoder against the classical fills on the embedded faces (thesis masks), a few minutes on 2 cores: $(OUT)/demo/
	@echo "demo: loading torch and the shipped models (faceinpaint/assets/), then 64 faces x 3 masks; a few minutes on 2 CPU cores"
	$(BIN)/faceinpaint demo --out $(OUT)/demo

demo-train: setup  ## retrain the demo's models from scratch (about 4 h on one CPU core) into faceinpaint/assets/, then run the demo: $(OUT)/demo-train/
	$(BIN)/faceinpaint demo --train true --out $(OUT)/demo-train

eval: setup  ## benchmark tables in $(OUT)/eval/: VAEGAN=ckpt and/or DCGAN=ckpt run the protocols $(EVAL_PROTOCOLS) on celeba-half val; with neither, the demo (shipped models, embedded faces, thesis masks)
ifeq ($(strip $(VAEGAN)$(DCGAN)),)
	$(BIN)/faceinpaint demo --out $(OUT)/eval
else
	@set -e; for protocol in $(EVAL_PROTOCOLS); do \
	  $(BIN)/faceinpaint eval --config configs/eval/$$protocol.yaml \
	    $(if $(VAEGAN),--vaegan $(VAEGAN)) $(if $(DCGAN),--dcgan $(DCGAN)) \
	    --skip_mismatched true --out $(OUT)/eval $(EVAL_ARGS); \
	done
endif

bench: setup  ## throughput table on CPU (and CUDA when present), printed as it goes: $(OUT)/bench/bench.{jsonl,md}; BENCH_ARGS='--full true' for the long CPU run
	$(BIN)/faceinpaint bench --out $(OUT)/bench $(BENCH_ARGS)

# The project's GPU check (docs/gpu-check.md) -> $(OUT)/gpu-check; DRY_RUN=1: its CPU rehearsal.
gpu-check:
	DRY_RUN=$(DRY_RUN) PYTHON=$(GPU_PYTHON) OUT=$(OUT)/gpu-check bash scripts/gpu_check.sh

# Python 3.12 manylinux wheels of what the GPU machine lacks, into .whl/ (carried to the lent GPU machine).
gpu-wheels: setup
	rm -rf .whl && mkdir -p .whl
	$(BIN)/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
	  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
	  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
	  -d .whl $(GPU_WHEELS)
	@ls .whl && du -sh .whl

# Copy celeba-half (CELEBA_HALF=...) into .data/ (ignored; carried to the GPU machine) with this revision.
gpu-data:
	mkdir -p .data && rm -rf .data/celeba-half && cp -r $(CELEBA_HALF) .data/celeba-half
	git rev-parse --short HEAD > .data/REVISION
	@du -sh .data

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
