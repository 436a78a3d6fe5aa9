#!/usr/bin/env bash
# On a CUDA host, in one go: the device-dependent tests, then the training benchmark on CUDA.
#   bash bench/gpu_check.sh [extra arguments for the benchmark]
# Tests:     pytest -m gpu (tests marked @pytest.mark.gpu; skipped on hosts without CUDA).
# Benchmark: python -m bench --device cuda  (bench/__main__.py; results under artifacts/bench/).
# Fails with a clear message when torch sees no CUDA device.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap dev
py=.venv/bin/python

if ! "$py" - <<'PY'
import sys
import torch
if not torch.cuda.is_available():
    if torch.version.cuda is None:
        why = ("this torch is a CPU-only build; on a GPU host replace it with the CUDA wheel: "
               ".venv/bin/pip install --force-reinstall --index-url https://pypi.org/simple "
               f"torch=={torch.__version__.split('+')[0]}")
    else:
        why = f"torch is built for CUDA {torch.version.cuda} but finds no device (driver? --gpus all?)"
    print(f"gpu_check: FAILED, no CUDA device visible to torch {torch.__version__}: {why}", file=sys.stderr)
    sys.exit(1)
print(f"gpu_check: torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"{torch.cuda.device_count()} device(s): {torch.cuda.get_device_name(0)}")
PY
then
    exit 1
fi

echo "== device tests (pytest -m gpu)"
set +e
"$py" -m pytest -m gpu -ra
status=$?
set -e
# Exit 5 means no gpu-marked tests were collected: say so, but still run the benchmark.
if [[ $status -eq 5 ]]; then
    echo "gpu_check: no tests are marked gpu" >&2
elif [[ $status -ne 0 ]]; then
    exit "$status"
fi

echo "== training benchmark on CUDA (python -m bench --device cuda)"
"$py" -m bench --device cuda "$@"
