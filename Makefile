# Two commands do all set-up on a fresh machine with Python 3.10+:
#   make lab    creates .venv if missing, installs, registers the course kernel, starts JupyterLab
#   make test   creates .venv if missing, then runs the whole suite (unit tests + nbval on every notebook)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
KERNEL := pets-course
PYTEST := $(BIN)/python -m pytest

.PHONY: install lab lint test unit full nbval notebooks browser doctor bench clean

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Pets course (PyTorch)" >/dev/null
	$(BIN)/python -m helpers doctor
	@touch $(STAMP)

install: $(STAMP)

# JupyterLab refuses to start as root unless told to (containers often run as root).
lab: install
	$(BIN)/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

# The whole suite in one pytest run: unit tests, every notebook re-executed and compared by nbval (strict mode),
# every notebook run in the full profile on stand-ins, and the browser test (skipped with a notice when Chromium
# is not installed).
# Stored outputs come from the tiny profile on the CPU (`make notebooks`), and the comparison runs there too, with
# one torch thread per worker. Nothing holds the CPU to particular kernels: outputs whose last digits depend on the
# order of float sums (losses, training tables, timings) are printed at the precision the lesson needs, or live in
# cells nbval ignores that assert the claim with a tolerance (CONTRIBUTING.md). tests/test_other_kernels.py proves
# it inside this run: it re-executes the notebooks most sensitive to rounding with other kernels and two threads.
TINY_ENV := COURSE_PROFILE=tiny COURSE_DEVICE=cpu OMP_NUM_THREADS=1
# Extra pytest options for any target, e.g. make test PYTEST_ARGS="--junitxml=artifacts/report.xml" (times per cell).
# The suite runs on every core (pytest-xdist, TEST_WORKERS=auto; TEST_WORKERS=0 for one process): one torch thread per
# worker; each file runs in one worker (all the cells of a notebook in order, in one kernel), and tests/conftest.py
# hands out the longest work first.
PYTEST_ARGS ?=
TEST_WORKERS ?= auto
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg
# The linter (ruff, configured in pyproject.toml) over the course's Python: helpers/, bench/, tests/.
lint: install
	$(BIN)/ruff check helpers bench tests

test: install lint
	$(TINY_ENV) $(PYTEST) tests notebooks $(NBVAL) -p no:cacheprovider -rs --timeout 900 \
		-n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder $(PYTEST_ARGS)

# The quick loop while changing helpers: no browser, no model training, no full-profile notebooks.
unit: install
	$(TINY_ENV) $(PYTEST) tests -m "not browser and not slow and not full_profile" -p no:cacheprovider

# Every notebook in the full profile on stand-ins (downloads from 127.0.0.1, random "ImageNet" weights, training
# capped by COURSE_MAX_BATCHES, batches of COURSE_BATCH_SIZE), with the download and weight-loading tests: part of
# `make test`, here on its own, its notebooks spread over every core, one at a time to whichever worker is free,
# slowest first (tests/conftest.py).
full: install
	$(PYTEST) tests/test_full_profile.py -p no:cacheprovider -rs --timeout 900 -n $(TEST_WORKERS) --dist load --maxschedchunk 1

# The test of one notebook: make nbval NB=notebooks/03_cross_entropy.ipynb (torch's own thread count, as a learner
# runs it; the stored outputs hold with any number of threads).
NB ?= notebooks
nbval: install
	COURSE_PROFILE=tiny COURSE_DEVICE=cpu $(PYTEST) $(NB) $(NBVAL) -p no:cacheprovider

# Re-run every notebook from a fresh kernel in the tiny profile and store its outputs (prints the time per notebook).
notebooks: install
	COURSE_PROFILE=tiny $(BIN)/python bench/notebook_times.py --execute $(NB)

browser: install
	$(PYTEST) tests -m browser -rs

# The CPU benchmarks behind the README's figures (each prints its table; models.py takes about 10 minutes).
bench: install
	$(BIN)/python bench/augment.py
	$(BIN)/python bench/quality.py
	$(BIN)/python bench/learner.py
	$(BIN)/python bench/models.py --threads 1 --warmup 1 --steps 3 --rounds 5

doctor: install
	$(BIN)/python -m helpers doctor

clean:
	rm -rf $(VENV) .pytest_cache
