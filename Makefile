# Two commands set everything up: `make run` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A CUDA machine gets the CUDA build from the package index; elsewhere the CPU wheel.
TORCH_SPEC ?= $(if $(shell command -v nvidia-smi 2>/dev/null),torch>=2.4$(comma)<2.15,torch==2.13.0)
comma := ,

.PHONY: run test install install-test lint typecheck bench-api bench-chaos clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[engine]"
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q -e ".[engine,test]"
	bash tests/setup_system.sh
	touch $@

install: $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/framecast serve

lint: $(VENV)/.installed-test
	$(BIN)/ruff format --check framecast tests bench
	$(BIN)/ruff check framecast tests bench

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

test: $(VENV)/.installed-test lint typecheck
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench-api: $(VENV)/.installed
	$(BIN)/python bench/api_load.py

# 40 jobs through random kill -9 of workers, the API and the group, and SIGTERM restarts; exits 1 on any loss.
bench-chaos: $(VENV)/.installed
	$(BIN)/python bench/chaos.py

clean:
	rm -rf $(VENV) data
