# Two commands do all the set-up on a fresh machine:  `make run`  and  `make test`.
# TORCH pins the local CPU wheel so pip never pulls a multi-GB CUDA build; a GPU user can
# run `make TORCH= install` to keep the torch they already have in the venv.
VENV  ?= .venv
PY    := $(VENV)/bin/python
TORCH ?= torch==2.13.0
SPACE ?= quickstart
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export RAY_USAGE_STATS_ENABLED ?= 0

.PHONY: install run test clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(if $(TORCH),$(PY) -m pip install -q "$(TORCH)")
	$(PY) -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) -m cofi_sweep.run --space $(SPACE)

test: install
	$(PY) -m pytest -q --durations=15

clean:
	rm -rf $(VENV) .pytest_cache
