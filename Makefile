# camal-rl: two commands set everything up on a fresh machine.
#   make demo   installs what the demo needs, then runs the main job on a small default
#   make test   installs what is missing (extras dev, vizdoom, ray, atari), then runs ruff, mypy and the
#               fast tests (pytest without those marked slow)
#   make test-all   the same with the slow tests too (.ci/run runs `make test`, then the slow ones)
#   make test-learning   the hour-long learning check alone
# On a machine without a GPU, add TORCH_INDEX=cpu (e.g. `make demo TORCH_INDEX=cpu`): torch then
# comes from PyTorch's CPU-only index, a few hundred MB instead of several GB of CUDA wheels.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch 2.13 satisfies setup.cfg's range; installing it explicitly first avoids pulling a newer,
# multi-GB build through the range. Override with `make TORCH=torch==2.X.Y ...`.
TORCH ?= torch==2.13.0
# Index torch is installed from: empty for pip's default, `cpu` for PyTorch's CPU-only wheels,
# or any index URL.
TORCH_INDEX ?=
TORCH_INDEX_URL := $(if $(filter cpu,$(TORCH_INDEX)),https://download.pytorch.org/whl/cpu,$(TORCH_INDEX))
# Extras of each install: the demo needs none; tests, ViZDoom, Ray sweeps and Atari need theirs.
DEMO_EXTRAS ?=
EXTRAS ?= dev,vizdoom,ray,atari
# OCAtari declares numpy<2 but its RAM mode runs on numpy 2: installed without its dependencies,
# which the atari extra brings.
OCATARI ?= ocatari==2.2.1
STAMP := $(VENV)/.camal-rl-installed
DEMO_STAMP := $(VENV)/.camal-rl-installed-demo
TYPECHECK_DIR ?= build/typecheck

comma := ,
# $(call install_venv,EXTRAS): the venv, torch (unless it imports), then camal-rl with EXTRAS (and
# OCAtari, without its dependencies, when EXTRAS has atari).
define install_venv
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null \
		|| $(BIN)/python -m pip install --quiet $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL)) "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".$(if $(1),[$(1)])"
	$(if $(filter atari,$(subst $(comma), ,$(1))),$(BIN)/python -m pip install --quiet --no-deps "$(OCATARI)")
	touch $@
endef

.PHONY: install install-demo demo test test-all test-learning lint typecheck pytest pytest-all pytest-slow bench clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(call install_venv,$(EXTRAS))

install-demo: $(DEMO_STAMP)

$(DEMO_STAMP): setup.cfg pyproject.toml
	$(call install_venv,$(DEMO_EXTRAS))

demo: install-demo
	$(BIN)/camal-rl demo --out demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# envs/ and agents/ install as camal_rl.envs / camal_rl.agents (setup.cfg's package_dir);
# mypy cannot follow setuptools' editable import hook, so it checks a hard-linked staging tree
# with the installed layout and reports paths as they are in this repository.
typecheck: install
	rm -rf $(TYPECHECK_DIR) && mkdir -p $(TYPECHECK_DIR)
	cp -rl camal_rl $(TYPECHECK_DIR)/camal_rl
	cp -rl envs $(TYPECHECK_DIR)/camal_rl/envs
	cp -rl agents $(TYPECHECK_DIR)/camal_rl/agents
	cp -rl experiments $(TYPECHECK_DIR)/experiments
	cd $(TYPECHECK_DIR) && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml -p camal_rl -p experiments \
		| sed -e 's#^camal_rl/envs/#envs/#' -e 's#^camal_rl/agents/#agents/#'

# pyproject.toml's addopts leave out the tests marked slow; -m "" takes them back in.
pytest: install
	$(BIN)/pytest -q

pytest-all: install
	$(BIN)/pytest -q -m "not learning"

pytest-slow: install
	$(BIN)/pytest -q -m slow

test-learning: install
	$(BIN)/pytest -q -m learning

test: lint typecheck pytest

test-all: lint typecheck pytest-all

bench: install
	$(BIN)/python experiments/bench_envs.py
	$(BIN)/python experiments/bench_saliency.py
	$(BIN)/python experiments/bench_metrics.py
	$(BIN)/python experiments/bench_agents.py

clean:
	rm -rf build .mypy_cache .ruff_cache .pytest_cache demo
