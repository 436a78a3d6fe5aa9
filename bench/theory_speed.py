"""Speed of the analytic side: solve() and the landscape grids, as the app requests them.

Targets (issue 5): solve() under 50 ms for the default preset and under 1 s for the largest prompt
allowed (8 tasks, 2048 tokens). Each time is a ratio against its target (below 1 meets it).
"""
from __future__ import annotations

from typing import Callable

from gla_core.spec import PromptSpec, default_spec, preset_spec
from gla_core.theory import landscape_three_tasks, landscape_two_tasks, solve

from .timing import median_seconds

TARGET_SECONDS = {"small": 0.05, "largest": 1.0, "landscape": 1.0}


def largest_spec(per_coordinate: bool) -> PromptSpec:
    """8 tasks with 2048 tokens in all (7 x 255 + 254 examples, 8 delimiters, the query), d = 8.
    Per coordinate: odd coordinates grow in relevance toward the query, even ones shrink."""
    tasks = []
    for k, n in enumerate([255] * 7 + [254]):
        growing = round(0.1 + 0.1 * k, 2)
        corr = [growing if c % 2 else round(0.9 - 0.1 * k, 2) for c in range(8)] if per_coordinate else growing
        tasks.append({"n": n, "corr": corr})
    return PromptSpec.from_dict({"d": 8, "noise": 0.1, "delimiter": "task", "tasks": tasks})


def cases() -> list[tuple[str, str, Callable[[], object]]]:
    """(name, target kind, call) for each measured computation."""
    default, two_tasks, per_coordinate = default_spec(), preset_spec("depth"), preset_spec("per_coordinate")
    largest, largest_vector = largest_spec(False), largest_spec(True)
    return [
        ("solve, default preset", "small", lambda: solve(default)),
        ("solve, per_coordinate preset", "small", lambda: solve(per_coordinate)),
        ("solve, 8 tasks / 2048 tokens", "largest", lambda: solve(largest)),
        ("solve, 8 tasks / 2048 tokens, per-coordinate", "largest", lambda: solve(largest_vector)),
        ("landscape, 2 tasks (depth preset)", "landscape", lambda: landscape_two_tasks(two_tasks)),
        ("landscape, 3 tasks (default preset)", "landscape", lambda: landscape_three_tasks(default)),
    ]


def run(quick: bool) -> dict:
    rows = []
    for name, kind, call in cases():
        seconds = median_seconds(call, repeats=3 if quick else 9)
        row = {"case": name, "ms": 1e3 * seconds, "target_ms": 1e3 * TARGET_SECONDS[kind],
               "of_target": seconds / TARGET_SECONDS[kind]}
        rows.append(row)
        print(f"  {name:46s} {row['ms']:8.1f} ms  ({row['of_target']:.2f} of the {row['target_ms']:.0f} ms target)",
              flush=True)
    return {"rows": rows}
