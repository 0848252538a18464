# camal-rl: two commands set everything up on a fresh machine.
#   make demo   installs what is missing, then runs the main job on a small default
#   make test   installs what is missing, then runs ruff, mypy and pytest
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch 2.13 satisfies setup.cfg's range; installing it explicitly first avoids pulling a newer,
# multi-GB build through the range. Override with `make TORCH=torch==2.X.Y ...`.
TORCH ?= torch==2.13.0
EXTRAS ?= dev,vizdoom,ray
STAMP := $(VENV)/.camal-rl-installed
TYPECHECK_DIR ?= build/typecheck

.PHONY: install demo test lint typecheck pytest bench clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

demo: install
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

pytest: install
	$(BIN)/pytest -q

test: lint typecheck pytest

bench: install
	$(BIN)/python experiments/bench_envs.py
	$(BIN)/python experiments/bench_saliency.py
	$(BIN)/python experiments/bench_metrics.py
	$(BIN)/python experiments/bench_agents.py

clean:
	rm -rf build .mypy_cache .ruff_cache .pytest_cache demo
