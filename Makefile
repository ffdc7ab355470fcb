# The two commands of the README: `make figures` and `make test`.
# Both build the same virtual environment on first use (python3 and make are all they need).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP_FLAGS ?= -q
# Extra flags for `make lab`, e.g. `make lab LAB_FLAGS=--allow-root` in a container running as root,
# or `LAB_FLAGS="--no-browser --port 8899"`.
LAB_FLAGS ?=
# The named Jupyter kernel of this environment (installed into .venv by `make kernel`; any JupyterLab that
# looks at .venv/share/jupyter, or a user's own one after `make kernel KERNEL_PREFIX=--user`, lists it).
KERNEL_NAME    := mqar_theory
KERNEL_DISPLAY := Python (mqar_theory)
KERNEL_PREFIX  ?= --sys-prefix

.PHONY: all figures test lint lab kernel clean-notebooks clean

all: test

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_FLAGS) -c constraints.txt -e '.[notebooks,dev]' 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
	$(BIN)/python -c "import torch, mqar_theory, papermill, seaborn, sympy; print('torch', torch.__version__)"
	touch $(STAMP)

venv: $(STAMP)

## Execute every notebook with papermill (CPU profile); figures go to figures/, executed copies to build/.
figures: $(STAMP)
	$(BIN)/python -m mqar_theory.cli notebooks

## ruff, the notebook structure check, and the test suite (notebooks in smoke mode).
test: $(STAMP) lint
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check mqar_theory tests benchmarks notebooks

## The named kernel "mqar_theory" (this .venv's python) for JupyterLab.
kernel: $(STAMP)
	$(BIN)/python -m ipykernel install $(KERNEL_PREFIX) --name $(KERNEL_NAME) --display-name "$(KERNEL_DISPLAY)"

## JupyterLab on notebooks/ with the project's kernel; as root: make lab LAB_FLAGS=--allow-root
lab: kernel
	$(BIN)/jupyter lab --notebook-dir=notebooks $(LAB_FLAGS)

## Strip outputs and execution counts from notebooks (keeps tags); run before committing.
clean-notebooks: $(STAMP)
	$(BIN)/python -m mqar_theory.cli strip-notebooks

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache
