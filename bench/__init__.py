"""GLA Lab benchmarks: how fast the app's promises are kept, measured on this machine.

    python -m bench                  # every benchmark; tables on stdout, JSON under artifacts/bench/
    python -m bench --quick          # fewer seeds, lengths and repeats (a few minutes)
    python -m bench --device cuda    # training and step cost on a CUDA device (bench/gpu_check.sh)
    python -m bench --report         # also rewrite docs/benchmarks.md and its step-cost plot

Machines here are shared and noisy, so every number is a median of several runs, and each table
carries a ratio against a baseline measured in the same process (the reference loop, the settings
training started from, the process before training), which holds up far better than a bare time.
"""
import os

# The Dockerfile serves the app with one BLAS thread per process (OPENBLAS/MKL_NUM_THREADS=1): measure
# under the same setting (with two BLAS threads on a busy 2-core machine, one solve() of the
# per_coordinate preset swings from 9 ms to 180 ms). NumPy reads these when it loads, so before any import.
for _variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
