# Two commands for a newcomer:  `make demo`  and  `make test`.
# Both install into .venv first when needed (idempotent: skipped when nothing changed).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
export HF_HUB_OFFLINE ?= 1
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: setup demo test test-all lint format photos corpus bench bench-concurrency bench-gpu-dry clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-nodeps.txt constraints.txt pyproject.toml scripts/install_system_deps.sh
	bash scripts/install_system_deps.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet pip==26.3
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: setup
	$(PY) app.py

test: setup
	$(PY) -m pytest -q

test-all: setup
	$(PY) -m pytest -q -m "not gpu"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/mypy

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

photos: setup
	$(PY) -m headshot_lab.testing

corpus: setup
	$(PY) -m headshot_lab.testing.hostile $(or $(OUT),build/hostile-corpus)

bench: setup
	$(PY) benchmarks/cpu_check.py
	$(PY) benchmarks/cpu_audit.py
	$(PY) benchmarks/app_startup.py

bench-concurrency: setup
	$(PY) benchmarks/concurrent_sessions.py

bench-gpu-dry: setup
	$(PY) benchmarks/gpu_generate.py --tiny --families sd15 --configs bf16,few_step_bf16 --steps 2 --repeats 1 \
		--batch-images 3 --train-steps 2 --train-class-images 2 --train-photos 3

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
