# make run   — set up, stand the reference up on the local platform, run the gate, write a report
# make test  — set up, run the whole test suite (what CI runs)
# make bench — set up, run the short benchmark campaign (tox -e bench), write reports/
# make controls — set up, run every negative control against the whole suites it names (tox -e controls)
VENV   ?= .venv
PYTHON ?= python3
STAMP  := $(VENV)/.installed

.PHONY: run test bench controls lint bootstrap system clean

run: bootstrap
	$(VENV)/bin/redis-harness run --jobs 2

test: bootstrap
	$(VENV)/bin/tox -e py

bench: bootstrap
	$(VENV)/bin/tox -e bench

controls: bootstrap
	$(VENV)/bin/tox -e controls

lint: bootstrap
	$(VENV)/bin/ruff check harness tests scenarios benchmarks conftest.py

bootstrap: system $(STAMP)

system:
	@bash .ci/install-system-packages

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q uv
	$(VENV)/bin/uv pip install -q --python $(VENV)/bin/python -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) .tox
