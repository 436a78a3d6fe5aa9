"""Peak resident memory of one default training run, measured in a fresh process.

The baseline is the same process just before training (Python, torch and gla_core imported, the
analytic solution computed), so the difference is what training itself costs.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs in the child process; prints one JSON line. ru_maxrss is in kilobytes on Linux.
CHILD = """
import json, resource, sys, torch
from gla_core.spec import default_spec
from gla_core.theory import solve
from gla_core.train import TrainConfig, Trainer
torch.set_num_threads({threads})
spec = default_spec()
analytic = solve(spec)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
final = Trainer(spec, TrainConfig(device={device!r}), analytic=analytic).run()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"before_mb": before / 1024, "peak_mb": after / 1024, "status": final.status}}))
"""


def run(device: str, threads: int) -> dict:
    completed = subprocess.run([sys.executable, "-c", CHILD.format(device=device, threads=threads)], cwd=ROOT,
                               capture_output=True, text=True, check=True)
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["training_mb"] = result["peak_mb"] - result["before_mb"]
    result["peak_over_baseline"] = result["peak_mb"] / result["before_mb"]
    print(f"  peak RSS {result['peak_mb']:.0f} MB; before training {result['before_mb']:.0f} MB "
          f"(training adds {result['training_mb']:.0f} MB, x{result['peak_over_baseline']:.2f})", flush=True)
    return result
