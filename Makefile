# Two commands do everything on a fresh machine with Python 3.11:
#   make run    build .venv from uv.lock and run the whole pipeline on Complete Journey
#   make test   build .venv and run every test (slow and service-backed ones included)
# `make test-fast` is the quick local loop (no slow or service-backed tests).

PYTHON ?= python3
UV_VERSION ?= 0.13.9
VENV := .venv
UV := $(VENV)/bin/uv

.PHONY: env run test test-fast lint audit bench

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

env: $(UV)
	$(UV) sync --frozen --quiet

run: env
	$(VENV)/bin/tierwise run

test: env
	$(VENV)/bin/pytest --durations=25

test-fast: env
	$(VENV)/bin/pytest -m "not slow and not integration"

lint: env
	$(VENV)/bin/ruff check .

# Known vulnerabilities of the locked dependencies (pip-audit against the OSV database; needs network).
audit: env
	$(UV) export --frozen --no-hashes --no-emit-project --quiet -o $(VENV)/audit-requirements.txt
	$(UV) tool run pip-audit --strict --no-deps --disable-pip -s osv -r $(VENV)/audit-requirements.txt
