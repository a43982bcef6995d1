# Two commands do all set-up on a fresh machine with Python 3.10+:
#   make lab    creates .venv if missing, installs, registers the course kernel, starts JupyterLab
#   make test   creates .venv if missing, then runs the whole suite (unit tests + nbval on every notebook)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
KERNEL := pets-course
PYTEST := $(BIN)/python -m pytest

.PHONY: install lab test unit full nbval notebooks browser doctor bench clean

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
# Stored outputs come from the tiny profile on the CPU with one torch thread, so the comparison runs there too:
# with one thread, and the same CPU kernels, float sums come out in the same order and printed losses repeat.
# The same kernels: PyTorch and oneDNN pick AVX-512 code where a CPU has it, whose sums round differently from the
# AVX2 code (seen here: notebook 06's fp16 gradient error 3.3e-04 against the stored 3.0e-04, and 08's BatchNorm
# minimum -6.054 against -6.052). TINY_ENV holds every x86-64 machine to AVX2, which any x86-64 CPU of the last
# decade has; elsewhere (ARM) the two settings do nothing.
CPU_KERNELS := ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2
TINY_ENV    := COURSE_PROFILE=tiny COURSE_DEVICE=cpu OMP_NUM_THREADS=1 $(CPU_KERNELS)
# Extra pytest options for any target, e.g. make test PYTEST_ARGS="--junitxml=artifacts/report.xml" (times per cell).
# The suite runs on every core (pytest-xdist, TEST_WORKERS=auto; TEST_WORKERS=0 for one process): one torch thread per
# worker; each file runs in one worker (all the cells of a notebook in order, in one kernel), and conftest.py hands
# out the longest work first.
PYTEST_ARGS ?=
TEST_WORKERS ?= auto
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg
test: install
	$(TINY_ENV) $(PYTEST) tests notebooks $(NBVAL) -p no:cacheprovider -rs --timeout 900 \
		-n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder $(PYTEST_ARGS)

# The quick loop while changing helpers: no browser, no model training, no full-profile notebooks.
unit: install
	$(PYTEST) tests -m "not browser and not slow and not full_profile"

# Every notebook in the full profile on stand-ins (downloads from 127.0.0.1, random "ImageNet" weights, training
# capped by COURSE_MAX_BATCHES, batches of COURSE_BATCH_SIZE), with the download and weight-loading tests: part of
# `make test`, here on its own, its notebooks spread over every core, one at a time to whichever worker is free,
# slowest first (conftest.py).
full: install
	$(PYTEST) tests/test_full_profile.py -p no:cacheprovider -rs --timeout 900 -n $(TEST_WORKERS) --dist load --maxschedchunk 1

# The test of one notebook: make nbval NB=notebooks/03_cross_entropy.ipynb
NB ?= notebooks
nbval: install
	$(TINY_ENV) $(PYTEST) $(NB) $(NBVAL) -p no:cacheprovider

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
