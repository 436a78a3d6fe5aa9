"""Peak resident memory of one default training run, measured in a fresh process.

The baseline is the same process just before training (Python, torch and gla_core imported, the
analytic solution computed), so the difference is what training itself costs. The peak is the
kernel's high-water mark of this process's memory (VmHWM), reset just before training where Linux
allows (/proc/self/clear_refs); resource.getrusage's ru_maxrss is no use here: after fork and exec
it still carries the parent's high-water mark (the benchmark process, a gigabyte after the pages).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs in the child process; prints one JSON line.
CHILD = """
import json, torch
from gla_core.spec import default_spec
from gla_core.theory import solve
from gla_core.train import TrainConfig, Trainer

def status_mb(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":")) / 1024

torch.set_num_threads({threads})
spec = default_spec()
analytic = solve(spec)
before = status_mb("VmRSS")
try:
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")          # reset the high-water mark to the current size
    reset = True
except OSError:
    reset = False
final = Trainer(spec, TrainConfig(device={device!r}), analytic=analytic).run()
print(json.dumps({{"before_mb": before, "peak_mb": status_mb("VmHWM"), "peak_reset": reset, "status": final.status}}))
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
