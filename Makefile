# jdrum: two commands set everything up on a fresh machine.
#   make demo   install into .venv, then run the demo on the embedded synthetic data
#   make test   install into .venv, then lint (ruff, import layers) and run the test suite
#               (slow tests excluded)
#   make app    install into .venv, then serve the web page on runs/demo (after make demo)
# PYTHON picks the interpreter (3.11 or 3.12), e.g. `make test PYTHON=python3.12 VENV=.venv312`.

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.jdrum-installed
PYTEST_ARGS ?=
# make test runs the tests in TEST_WORKERS processes (pytest-xdist), a test file per process so
# that module fixtures are built once; TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 2

.PHONY: install test test-slow lint format demo app dataset clean

install: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# madmom 0.16.1 imports Cython in its setup.py, so its build prerequisites go in first and it is
# built against the venv's NumPy without isolation; --no-cache-dir keeps a wheel built against
# another NumPy out of the way. tinysoundfont (the `soundfont` extra) goes in without its pyaudio
# requirement, which needs the PortAudio headers to build and only serves live playback.
$(STAMP): setup.cfg pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q cython numpy 'setuptools<81' wheel
	$(PY) -m pip install -q --no-cache-dir --no-build-isolation madmom
	$(PY) -m pip install -q --no-deps 'tinysoundfont>=0.3.7'
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint
	$(PY) -m pytest -m "not slow" -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-slow: install
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

demo: install
	$(PY) -m jdrum.demo --workdir runs/demo

# APP_ARGS: more flags of jdrum.app, e.g. `make app APP_ARGS="--port 8000"`.
APP_ARGS ?=
app: install
	$(PY) -m jdrum.app --run runs/demo $(APP_ARGS)

dataset: install
	$(PY) -m jdrum.build_dataset synthstems/default --data_dir data/tfds

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
