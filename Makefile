# Convenience targets; each is the README's command of the same purpose.
PY := .venv/bin/python

.PHONY: setup demo lint test test-slow bench figures

setup:
	python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]'

demo: setup
	$(PY) -m experiments.train --config experiments/configs/digits_gan.py --workdir runs/digits_gan

lint: setup
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

test: setup
	$(PY) -m pytest

test-slow: setup
	$(PY) -m pytest -m slow

bench: setup
	.venv/bin/pip install -q -e '.[bench]' && $(PY) -m benchmarks.run --quick --json benchmarks/results/cpu_quick.json

figures: setup
	$(PY) -m experiments.figures --preset cpu --workdir runs/study --jobs 2
