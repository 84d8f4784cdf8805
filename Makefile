# Two commands matter: `make demo` and `make test`. Everything else is a step of theirs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/heldout
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
TEST_CACHE_URL ?= redis://127.0.0.1:6379/14

.PHONY: demo demo-stations test install system runtime-image docs lint bench clean

$(VENV)/.installed: pyproject.toml client/pyproject.toml station/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ./station -e ".[dev]" -e ./client
	touch $@

install: $(VENV)/.installed

system:
	scripts/system_deps.sh
	scripts/start_docker.sh

# The image, and its archive that participants download for local tests (once per recipe).
runtime-image: install system
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} $(PY) manage.py runtime_image

# The documentation site, into site/ (served at /docs/): strict, so a broken link or
# reference fails. Its reference pages are generated from the code (docs/gen/), with
# development settings that need no database.
docs: install
	NO_MKDOCS_2_WARNING=1 DJANGO_DEBUG=1 DJANGO_SETTINGS_MODULE=heldout.settings \
		$(VENV)/bin/mkdocs build --strict --quiet

demo: install system runtime-image docs
	DJANGO_DEBUG=1 $(PY) -m demo.run

# `make demo` plus the readmission challenge scored at two local data stations.
demo-stations: install system runtime-image docs
	DJANGO_DEBUG=1 $(PY) -m demo.run --stations

test: install system runtime-image
	HELDOUT_WITH_BROWSER=1 scripts/system_deps.sh
	scripts/start_services.sh
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) HELDOUT_CACHE_URL=$(TEST_CACHE_URL) \
		$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .

bench: install system runtime-image
	scripts/start_services.sh
	DATABASE_URL=postgres://postgres@127.0.0.1:5432/heldout_bench REDIS_URL=redis://127.0.0.1:6379/3 \
		HELDOUT_CACHE_URL=redis://127.0.0.1:6379/2 $(PY) bench/run_all.py

clean:
	rm -rf var test-artifacts site
