#!/usr/bin/env bash
# On a machine with a CUDA GPU: run the test suite on CUDA and the collection benchmark.
# (CI never needs a GPU; this is the short device check.)
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))"
HF_HUB_OFFLINE=1 python -m pytest -q -x --device cuda tests/probes/test_activations.py tests/steering/test_apply.py "$@"
HF_HUB_OFFLINE=1 python benchmarks/collect.py --prompts 256 --repeats 3
