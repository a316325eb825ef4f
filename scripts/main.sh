#!/usr/bin/env bash
# The README's main command: install the kit, then train (or load) the model organism, run the
# select-vs-create battery on every variant, and write report + figures to ./elicit-out.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -e .
HF_HUB_OFFLINE=1 elicit run --out elicit-out "$@"
