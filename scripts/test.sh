#!/usr/bin/env bash
# The README's test command: install the kit with its test extras, lint, check formatting, type-check,
# run every test (notebooks included) on CPU; pytest runs last. Extra arguments go to pytest
# (e.g. -m "not slow" for the fast lane, or --device cuda).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -e ".[test]"
python -m ruff check .
python -m ruff format --check .
python -m mypy
HF_HUB_OFFLINE=1 python -m pytest -q --durations=12 "$@"
