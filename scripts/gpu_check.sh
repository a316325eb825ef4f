#!/usr/bin/env bash
# The short device check, on a machine with a CUDA GPU (CI never needs one):
#   1. the numerical tests on CUDA in fp32 (activations equal transformers' hidden states to 1e-5,
#      steering equal to a hand-written hook, cached == uncached generation);
#   2. the same tests in bf16 against a bf16 transformers reference;
#   3. benchmarks/collect.py on CUDA in bf16 (collect_activations vs a bare transformers forward).
# Run after the README's install (pip install -e ".[test]"); extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
$PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.cuda.get_device_name(0))"
TESTS="tests/probes/data/test_activations.py tests/steering/test_apply.py"
echo "== tests on CUDA, float32"
$PY -m pytest -q -p no:cacheprovider --device cuda $TESTS "$@"
echo "== tests on CUDA, bfloat16"
$PY -m pytest -q -p no:cacheprovider --device cuda --dtype bfloat16 -k "matches_transformers or hand_written or cached_equals" $TESTS "$@"
echo "== collection benchmark on CUDA, bfloat16"
$PY benchmarks/collect.py --device cuda --dtype bfloat16 --repeats 5 --skip-rss
