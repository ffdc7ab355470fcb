# The two commands of the README: `make figures` and `make test`.
# Both build the same virtual environment on first use (python3 and make are all they need), from
# requirements.lock: every package at the version the committed figures were drawn with (`make lock` regenerates it).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP_FLAGS ?= -q
# Extra flags for `make lab`, e.g. `make lab LAB_FLAGS=--allow-root` in a container running as root,
# or `LAB_FLAGS="--no-browser --port 8899"`.
LAB_FLAGS ?=
# The student's folder that `make lab` fills and opens (git-ignored); another one: `make lab WORKSPACE=$$HOME/mqar` (make syntax: $$ is one $).
WORKSPACE ?= workspace
# The named Jupyter kernel of this environment (installed into .venv by `make kernel`; any JupyterLab that
# looks at .venv/share/jupyter, or a user's own one after `make kernel KERNEL_PREFIX=--user`, lists it).
KERNEL_NAME    := mqar_theory
KERNEL_DISPLAY := Python (mqar_theory)
KERNEL_PREFIX  ?= --sys-prefix
# The project's Jupyter server config (a pre-save hook that strips outputs of notebooks under notebooks/),
# found through JUPYTER_CONFIG_PATH by `make lab`.
JUPYTER_CONFIG := $(CURDIR)/.jupyter
# `make lock`: pip-tools in its own small venv (not in the lock), compiling pyproject's extras + constraints.txt.
LOCK_VENV ?= build/lock-venv
LOCK_FLAGS ?=

.PHONY: all figures test lint lab kernel clean-notebooks clean lock venv workspace git-filter

all: test

# The locked packages first (torch==2.13.0 is the CPU build: constraints.txt), then the project itself without
# dependencies; pip's stderr (a hundred harmless "is ignored" lines about local indexes) is shown only on failure.
$(STAMP): pyproject.toml constraints.txt requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_FLAGS) -c constraints.txt -r requirements.lock 2>$(VENV)/pip.log || { grep -v "is ignored: it is neither" $(VENV)/pip.log; exit 1; }
	$(BIN)/pip install $(PIP_FLAGS) --no-deps -e . 2>$(VENV)/pip.log || { grep -v "is ignored: it is neither" $(VENV)/pip.log; exit 1; }
	$(BIN)/python -c "import torch, mqar_theory, papermill, seaborn, sympy; print('torch', torch.__version__)"
	touch $(STAMP)

venv: $(STAMP) git-filter

## git's clean filter "notebook" (.gitattributes applies it to *.ipynb), registered in this clone: a notebook saved
## with outputs by any Jupyter is compared and stored in its committed form, so `git status` stays clean. Outside a
## git checkout (a tarball) there is nothing to register.
git-filter:
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
	  git config filter.notebook.clean "$(BIN)/python -m mqar_theory.cli notebook-filter"; fi

## Execute every notebook with papermill (CPU profile); figures go to figures/, executed copies to build/notebooks/,
## static HTML renderings to build/html/.
figures: $(STAMP) git-filter
	$(BIN)/python -m mqar_theory.cli notebooks

## ruff, the notebook structure check, and the test suite (notebooks in smoke mode).
test: $(STAMP) git-filter lint
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check mqar_theory tests benchmarks notebooks .jupyter

## The named kernel "mqar_theory" (this .venv's python) for JupyterLab.
kernel: $(STAMP)
	$(BIN)/python -m ipykernel install $(KERNEL_PREFIX) --name $(KERNEL_NAME) --display-name "$(KERNEL_DISPLAY)"

## The student's own copy: every notebook not yet in workspace/ (git-ignored) is copied there; copies already there
## are kept. Fresh copies: `.venv/bin/mqar-theory workspace --reset [NAME]` (old ones go to workspace/.previous/).
workspace: $(STAMP)
	$(BIN)/python -m mqar_theory.cli workspace --dir "$(WORKSPACE)"

## JupyterLab on workspace/ with the project's kernel; as root: make lab LAB_FLAGS=--allow-root.
## Answers and outputs are saved there as they are (hand in the .ipynb, or `mqar-theory workspace --html`); the
## tracked notebooks/ are what make figures and make test run, and stay clean.
lab: kernel git-filter workspace
	JUPYTER_CONFIG_PATH="$(JUPYTER_CONFIG)$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" $(BIN)/jupyter lab --notebook-dir="$(WORKSPACE)" $(LAB_FLAGS)

## Regenerate requirements.lock from pyproject.toml (extras notebooks, dev) and constraints.txt with pip-compile.
## torch's local label (+cpu) is dropped: `torch==2.13.0` picks the CPU build here (constraints.txt), and
## elsewhere pip's own choice. Commit the new lock with the figures it draws (`make figures`).
## Existing pins are kept unless asked: `make lock LOCK_FLAGS=--upgrade` (or --upgrade-package NAME).
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || $(PYTHON) -m venv $(LOCK_VENV)
	test -x $(LOCK_VENV)/bin/pip-compile || $(LOCK_VENV)/bin/pip install $(PIP_FLAGS) pip-tools 2>$(LOCK_VENV)/pip.log \
		|| { grep -v "is ignored: it is neither" $(LOCK_VENV)/pip.log; exit 1; }
	$(LOCK_VENV)/bin/pip-compile --quiet --extra notebooks --extra dev --constraint constraints.txt --allow-unsafe \
		--strip-extras --no-emit-index-url --no-emit-find-links $(LOCK_FLAGS) --output-file requirements.lock \
		pyproject.toml 2>$(LOCK_VENV)/compile.log || { grep -v "is ignored: it is neither" $(LOCK_VENV)/compile.log; exit 1; }
	sed -i -E 's/^(torch==[^+ ]+)\+[A-Za-z0-9.]+/\1/' requirements.lock
	grep -q '^torch==2.13.0$$' requirements.lock

## Strip outputs and execution counts from notebooks (keeps tags); run before committing.
clean-notebooks: $(STAMP)
	$(BIN)/python -m mqar_theory.cli strip-notebooks

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache
