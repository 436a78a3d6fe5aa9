"""Live runs: pause after a step budget, resume, stop, share compute slots, run trainers in order."""
import threading

import pytest

from gla_core.session import LiveRun, ResultStore
from gla_core.spec import default_spec
from gla_core.theory import solve
from gla_core.train import TrainConfig, Trainer

SPEC = default_spec()
ANALYTIC = solve(SPEC)
WAIT = 60  # seconds; generous for a busy CI machine, a passing test takes a fraction


def tiny_trainer(steps: int = 40, **changes) -> Trainer:
    config = TrainConfig(steps=steps, batch=8, lr=0.005, test_size=64, eval_every=5, **changes)
    return Trainer(SPEC, config, analytic=ANALYTIC)


def test_runs_to_the_end_and_bumps_version_once():
    run = LiveRun([tiny_trainer()], threading.Semaphore(1), max_active_seconds=WAIT).start()
    assert run.join(WAIT)
    assert run.phase == "ended" and not run.alive
    assert run.version == 1
    assert run.current.snapshot().status == "finished"
    assert run.current.snapshot().step == 40


def test_step_budget_pauses_then_grant_and_resume_continue_the_same_model():
    slots = threading.Semaphore(1)
    run = LiveRun([tiny_trainer()], slots, max_active_seconds=WAIT, step_budget=10).start()
    assert run.wait_until_not_running(WAIT)
    assert run.phase == "paused" and run.current.snapshot().step == 10
    assert slots.acquire(blocking=False), "a paused run must give its slot back"
    slots.release()
    run.grant(5)
    assert run.wait_until_not_running(WAIT)
    assert run.phase == "paused" and run.current.snapshot().step == 15
    assert run.version == 2
    run.resume()
    assert run.join(WAIT)
    snapshot = run.current.snapshot()
    assert snapshot.status == "finished" and snapshot.step == 40
    assert [row["step"] for row in run.current.history_rows()] == list(range(5, 45, 5))


def test_stop_while_paused_ends_the_run():
    run = LiveRun([tiny_trainer()], threading.Semaphore(1), max_active_seconds=WAIT, step_budget=5).start()
    assert run.wait_until_not_running(WAIT)
    run.stop()
    assert run.join(WAIT)
    assert run.current.snapshot().status == "stopped"
    assert run.current.snapshot().step <= 6


def test_waits_for_a_free_slot_and_stop_while_waiting():
    slots = threading.Semaphore(1)
    slots.acquire()  # someone else trains
    run = LiveRun([tiny_trainer()], slots, max_active_seconds=WAIT).start()
    run.join(0.5)
    assert run.phase == "waiting"
    run.stop()
    assert run.join(WAIT)
    slots.release()


def test_a_slot_freed_by_another_run_is_taken():
    slots = threading.Semaphore(1)
    slots.acquire()
    run = LiveRun([tiny_trainer()], slots, max_active_seconds=WAIT).start()
    run.join(0.3)
    assert run.phase == "waiting"
    slots.release()
    assert run.join(WAIT) and run.current.snapshot().status == "finished"
    assert slots.acquire(blocking=False), "the slot is given back at the end"


def test_trainers_run_in_order_and_each_is_reported():
    finished = []
    trainers = [tiny_trainer(layers=layers) for layers in (1, 2)]
    run = LiveRun(trainers, threading.Semaphore(1), max_active_seconds=WAIT,
                  on_trainer_finished=lambda trainer: finished.append(trainer.config.layers)).start()
    assert run.join(WAIT)
    assert finished == [1, 2]
    assert all(trainer.snapshot().status == "finished" for trainer in trainers)


def test_stop_skips_the_trainers_not_started():
    trainers = [tiny_trainer(steps=100_000), tiny_trainer()]
    run = LiveRun(trainers, threading.Semaphore(1), max_active_seconds=WAIT).start()
    while trainers[0].snapshot().step < 3:
        run.join(0.01)
    run.stop()
    assert run.join(WAIT)
    assert trainers[0].snapshot().status == "stopped"
    assert trainers[1].snapshot().status == "idle"


def test_computing_time_limit_ignores_pauses():
    run = LiveRun([tiny_trainer(steps=100_000)], threading.Semaphore(1), max_active_seconds=0.3).start()
    assert run.join(WAIT)
    assert run.reason.startswith("time limit")
    assert run.active_seconds() == pytest.approx(0.3, abs=0.5)


def test_result_store_drops_the_least_recently_used():
    store = ResultStore(capacity=2)
    store.put("a", {"risk": 1})
    store.put("b", {"risk": 2})
    assert store.get("a") == {"risk": 1}   # a is now the most recent
    store.put("c", {"risk": 3})
    assert store.get("b") is None and store.get("a") is not None and store.get("c") is not None
