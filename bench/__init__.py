"""GLA Lab benchmarks: how fast the app's promises are kept, measured on this machine.

    python -m bench                  # every benchmark; tables on stdout, JSON under artifacts/bench/
    python -m bench --quick          # fewer seeds, lengths and repeats (a few minutes)
    python -m bench --device cuda    # training and step cost on a CUDA device (bench/gpu_check.sh)
    python -m bench --report         # also rewrite docs/benchmarks.md and its step-cost plot

Machines here are shared and noisy, so every number is a median of several runs, and each table
carries a ratio against a baseline measured in the same process (the reference loop, the settings
training started from, the process before training), which holds up far better than a bare time.
"""
