"""python -m bench [--quick] [--device cpu|cuda] [--threads N] [--only NAMES] [--report]

Runs the benchmarks in order, prints each table as it goes, and writes everything measured to
artifacts/bench/results.json (--report also rewrites docs/benchmarks.md and its plot from it). With
--only, the other sections of an earlier results file are kept, each with its own machine record.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from . import converge, depth_page, memory, pages, step_cost, theory_speed
from .timing import machine_info

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "artifacts" / "bench" / "results.json"
BENCHMARKS = ("converge", "depth_page", "step_cost", "theory", "pages", "memory")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[1])
    parser.add_argument("--quick", action="store_true", help="fewer seeds, lengths and repeats")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="where training and the step-cost benchmark run (default cpu)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: what the app gives each run on 2 cores)")
    parser.add_argument("--only", default=",".join(BENCHMARKS),
                        help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    parser.add_argument("--report", action="store_true", help="also rewrite docs/benchmarks.md and its plot")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        parser.error(f"--only: unknown benchmark {unknown[0]!r} (choose from {', '.join(BENCHMARKS)})")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    if args.threads < 1:
        parser.error("--threads: must be at least 1")

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    earlier = json.loads(RESULTS.read_text()) if RESULTS.is_file() and set(chosen) != set(BENCHMARKS) else {}
    results = {**earlier, "machine": machine_info(device), "quick": args.quick,
               "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    print(f"machine: {json.dumps(results['machine'])}", flush=True)
    sections = {
        "converge": ("time to a converged comparison", lambda: converge.run(args.device, args.quick)),
        "depth_page": ("the Depth page's four models and the overlay's ten, end to end",
                       lambda: depth_page.run(args.quick)),
        "step_cost": ("step cost, each form against the token loop", lambda: step_cost.run(device, args.quick)),
        "theory": ("theory speed", lambda: theory_speed.run(args.quick)),
        "pages": ("page speed (AppTest)", lambda: pages.run(args.quick)),
        "memory": ("memory of one default training run", lambda: memory.run(args.device, args.threads)),
    }
    for name in chosen:
        title, benchmark = sections[name]
        print(f"== {title}", flush=True)
        start = time.perf_counter()
        results[name] = benchmark()
        results[name]["benchmark_seconds"] = time.perf_counter() - start
        results[name]["machine"] = machine_info(device)     # the load average as this section ended

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1))
    print(f"results: {RESULTS.relative_to(ROOT)}", flush=True)
    if args.report:
        from .report import write_report
        for path in write_report(results):
            print(f"report: {path.relative_to(ROOT)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
