"""A class on one server, simulated: students (tests/load/protocol.py) open the Playground at once and
press Train; the server's health, CPU and memory are sampled until every run has ended.

Used by tests/test_load.py, and on its own to measure a replica's capacity (docs/deploy.md):

    .venv/bin/python -m tests.load.classroom --students 10 20 30 40 --slots 2 --rounds 1

Each (students, slots) pair gets a fresh server with GLA_MAX_CONCURRENT_RUNS=slots; the figures are
printed as a table and written to artifacts/load/capacity.json.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Callable

from tests.load import harness
from tests.load.harness import TERMINAL
from tests.load.protocol import Student

SMALL_RUN = "steps=100"                # the default preset, 100 steps (each student its own seed)
ROUND_TIMEOUT_S = float(os.environ.get("GLA_LOAD_TIMEOUT", "600"))   # every run of a round ends by then
POLL_S = 2.0
IDLE_TIMEOUT_S = 30.0                  # after the tabs close, the server's CPU must go idle by then
HEALTH_TIMEOUT_S = 5.0                 # the liveness / readiness probes' timeoutSeconds in deploy/k8s.yaml
PROBE_FAILURES = 3                     # consecutive health-check failures after which a liveness probe
                                       # (deploy/k8s.yaml: failureThreshold 3) would restart the pod
SERVER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}   # as the image sets them


def settled_memory(server: harness.AppServer, seconds: float = 8.0) -> float:
    """The server's memory once it has been quiet a few seconds (the last of several samples)."""
    deadline = time.monotonic() + seconds
    memory = server.memory_mb()
    while time.monotonic() < deadline:
        time.sleep(1.0)
        memory = server.memory_mb()
    return memory


async def health_latency(server: harness.AppServer) -> float:
    """Seconds /_stcore/health takes to answer; inf past the deployment's probe timeout (deploy/k8s.yaml)."""
    started = time.monotonic()
    healthy = await asyncio.to_thread(server.healthy, HEALTH_TIMEOUT_S)
    return time.monotonic() - started if healthy else float("inf")


async def run_round(server: harness.AppServer, index: int, sessions: int, run: str = SMALL_RUN,
                    timeout_s: float = ROUND_TIMEOUT_S) -> dict:
    """`sessions` students open the Playground with the URL settings `run` (each its own seed) and press
    Train at once; sampled every POLL_S until every run has ended (or timeout_s), then the tabs close.
    Returns the round's figures (see the keys) and its samples."""
    memory_start, threads_start = server.memory_mb(), server.threads()
    students = [Student(server, query=f"{run}&seed={index * 1000 + k}") for k in range(sessions)]
    opened = time.monotonic()
    await asyncio.gather(*(student.open() for student in students))
    open_s = time.monotonic() - opened
    memory_idle = server.memory_mb()
    cpu_before, clicked = server.cpu_seconds(), time.monotonic()
    await asyncio.gather(*(student.click("Train") for student in students))
    peak, samples, latencies = memory_idle, [], []
    deadline = time.monotonic() + timeout_s
    last_cpu, last_t = cpu_before, clicked
    probe_failures_in_a_row, restarted_by_probe = 0, False
    while not all(student.ended() for student in students) and time.monotonic() < deadline:
        await asyncio.sleep(POLL_S)
        latency = await health_latency(server)
        latencies.append(latency)
        now, cpu = time.monotonic(), server.cpu_seconds()
        memory = server.memory_mb()
        peak = max(peak, memory)
        samples.append({"t": round(now - clicked, 1), "memory_mb": round(memory, 1),
                        "server_cores": round((cpu - last_cpu) / (now - last_t), 2),
                        "health_s": round(latency, 2) if latency != float("inf") else None,
                        "training": sum(student.last_status.startswith("Training") for student in students),
                        "ended": sum(student.ended() for student in students),
                        "machine_load": round(os.getloadavg()[0], 1)})
        last_cpu, last_t = cpu, now
        probe_failures_in_a_row = probe_failures_in_a_row + 1 if latency == float("inf") else 0
        if probe_failures_in_a_row >= PROBE_FAILURES:   # Kubernetes would restart the pod here: stop the round
            restarted_by_probe = True
            break
    busy_s = time.monotonic() - clicked
    server_cpu_s = server.cpu_seconds() - cpu_before
    await asyncio.gather(*(student.close() for student in students))
    idle, idle_after_s, _ = await asyncio.to_thread(server.wait_idle, IDLE_TIMEOUT_S)
    memory_after = await asyncio.to_thread(settled_memory, server)
    finish_s = [student.seen["finished"] - student.clicked_at for student in students if "finished" in student.seen]
    start_s = [student.seen["training"] - student.clicked_at for student in students if "training" in student.seen]
    return {
        "round": index, "sessions": sessions, "run": run,
        "outcomes": {state: sum(state in student.seen for student in students)
                     for state in ("waiting", "training") + TERMINAL},
        "unfinished": [student.last_status for student in students if "finished" not in student.seen],
        "page_exceptions": [student.exceptions for student in students if student.exceptions],
        "open_all_s": round(open_s, 1),
        "finish_p50_s": round(harness.percentile(finish_s, 50), 1) if finish_s else None,
        "finish_p95_s": round(harness.percentile(finish_s, 95), 1) if finish_s else None,
        "finish_max_s": round(max(finish_s), 1) if finish_s else None,
        "start_p50_s": round(harness.percentile(start_s, 50), 1) if start_s else None,
        "most_training_at_once": max((sample["training"] for sample in samples), default=0),
        "fragment_runs": sum(student.fragment_runs for student in students),
        "server_cores_mean": round(server_cpu_s / busy_s, 2),
        "health_p95_s": round(harness.percentile([x for x in latencies if x != float("inf")], 95), 2)
        if any(x != float("inf") for x in latencies) else None,
        "health_failures": sum(x == float("inf") for x in latencies),
        "liveness_probe_would_restart": restarted_by_probe,
        "disconnected": sum("disconnected" in student.seen for student in students),
        "memory_start_mb": round(memory_start, 1), "memory_idle_sessions_mb": round(memory_idle, 1),
        "memory_peak_mb": round(peak, 1), "memory_after_mb": round(memory_after, 1),
        "idle_session_mb": round((memory_idle - memory_start) / sessions, 2),
        "threads_start": threads_start, "threads_after": server.threads(),
        "cpu_idle_after_close": idle, "cpu_idle_after_s": round(idle_after_s, 1),
        "samples": samples,
    }


async def warm_up(server: harness.AppServer, run: str = SMALL_RUN) -> Student:
    """One session trains once, so imports and caches are in place before a round is measured. It presses Train
    once the server's training workers are there (the fork server imports torch in its first seconds, and until
    then runs train in the server's own threads): a round measures a server that has been up a while, as a class
    meets it, not one in its first seconds."""
    student = await Student(server, query=f"{run}&seed=999999").open()
    await asyncio.to_thread(server.wait_for_workers)
    await student.click("Train")
    deadline = time.monotonic() + ROUND_TIMEOUT_S
    while not student.ended() and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    await student.close()
    return student


def measure(students: int, rounds: int, slots: int | None = None, name: str | None = None,
            on_round: Callable[[list[dict]], None] = lambda results: None) -> tuple[list[dict], str]:
    """`rounds` rounds of `students` on a fresh, warmed-up server with `slots` training slots (None: the
    server's default); on_round(results so far) after each. Returns the rounds' figures and the log."""
    env = SERVER_ENV if slots is None else {**SERVER_ENV, "GLA_MAX_CONCURRENT_RUNS": str(slots)}
    with harness.AppServer(name or f"capacity_{students}x{slots}", env=env) as server:
        warm = asyncio.run(warm_up(server))
        if "finished" not in warm.seen:
            raise RuntimeError(f"the warm-up run did not finish: {warm.seen}, {warm.events[-20:]}")
        server.wait_idle(IDLE_TIMEOUT_S)
        baseline = settled_memory(server)
        results = []
        for index in range(1, rounds + 1):
            results.append({**asyncio.run(run_round(server, index, students)), "slots": slots,
                            "baseline_memory_mb": round(baseline, 1)})
            on_round(results)
        return results, server.log_tail(2_000_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, nargs="+", default=[10, 20, 30, 40])
    parser.add_argument("--slots", type=int, nargs="+", default=[2])
    parser.add_argument("--rounds", type=int, default=1)
    options = parser.parse_args()
    rows = []
    print("students slots  finished  p50_s  p95_s  max_s  health_p95_s  health_misses  peak_MB  after_MB")
    for slots in options.slots:
        for students in options.students:
            for result in measure(students, options.rounds, slots)[0]:
                rows.append({key: value for key, value in result.items() if key != "samples"})
                print(f"{students:8d} {slots:5d}  {result['outcomes']['finished']:8d}  {result['finish_p50_s']!s:>5}  "
                      f"{result['finish_p95_s']!s:>5}  {result['finish_max_s']!s:>5}  {result['health_p95_s']!s:>12}  "
                      f"{result['health_failures']:13d}  {result['memory_peak_mb']:7.0f}  "
                      f"{result['memory_after_mb']:8.0f}", flush=True)
    (harness.ARTIFACTS / "capacity.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
