"""Training in worker processes (gla_core.workers): the same numbers as training in this thread, pauses, stops and
slots as a live run has them, and a worker's failure or death said plainly on its run."""
import os
import signal
import time

import pytest
import torch

from gla_core.session import LiveRun, Phase, TrainingSlots
from gla_core.spec import default_spec
from gla_core.theory import solve
from gla_core.train import Status, TrainConfig, Trainer
from gla_core.workers import TrainingWorkers

SPEC = default_spec()
ANALYTIC = solve(SPEC)
WAIT = 60   # seconds; generous for a busy CI machine, a passing test takes a fraction


def small_trainer(steps: int = 30, **changes) -> Trainer:
    config = TrainConfig(steps=steps, batch=16, test_size=128, eval_every=5, **changes)
    return Trainer(SPEC, config, analytic=ANALYTIC)


@pytest.fixture(scope="module")
def workers():
    """A pool, and torch on one thread here as in the server and its workers (lab_ui.resources): reductions
    split over several threads add in another order, and the same numbers must come out to the last bit."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    pool = TrainingWorkers(keep=2).prestart()
    wait_for(lambda: pool.counts()[0] == 2)     # ready, as a server's workers are once it has drawn a page
    yield pool
    pool.close()
    torch.set_num_threads(threads)


def wait_for(condition, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def without_seconds(rows: list[dict]) -> list[dict]:
    return [{key: value for key, value in row.items() if key != "seconds"} for row in rows]


def assert_same_run(in_worker: Trainer, in_thread: Trainer) -> None:
    worker, thread = in_worker.snapshot(), in_thread.snapshot()
    for field in ("step", "status", "reason", "test_risk", "test_risk_se", "test_mse", "train_loss", "cosine",
                  "induced_weights", "gates", "early_stop_step"):
        assert getattr(worker, field) == getattr(thread, field), field
    assert without_seconds(in_worker.history_rows()) == without_seconds(in_thread.history_rows())
    worker_frames, thread_frames = in_worker.trajectory(), in_thread.trajectory()
    assert [frame["step"] for frame in worker_frames] == [frame["step"] for frame in thread_frames]
    for worker_frame, thread_frame in zip(worker_frames, thread_frames):
        assert worker_frame == thread_frame


@pytest.mark.parametrize("gating, layers", [("scalar", 1), ("vector", 2), ("none", 1)])
def test_a_run_in_a_worker_gives_exactly_the_numbers_of_a_run_in_this_thread(workers, gating, layers):
    in_worker, in_thread = (small_trainer(gating=gating, layers=layers, seed=7) for _ in range(2))
    workers.run(in_worker)
    in_thread.run()
    assert in_worker.snapshot().status == Status.FINISHED
    assert_same_run(in_worker, in_thread)


def test_a_paused_run_keeps_its_model_in_its_worker_and_ends_as_an_unpaused_run(workers):
    """A Step's pause comes exactly after its last step, though the worker asks for turns ahead."""
    live = LiveRun([small_trainer(seed=3)], TrainingSlots(1), max_active_seconds=WAIT, step_budget=10,
                   workers=workers).start()
    assert live.wait_until_not_running(WAIT)
    assert live.phase == Phase.PAUSED and live.current.snapshot().step == 10
    live.grant(5)
    assert live.wait_until_not_running(WAIT)
    assert live.phase == Phase.PAUSED and live.current.snapshot().step == 15
    live.grant(1)       # granted nothing beyond itself: no turn asked ahead
    assert live.wait_until_not_running(WAIT)
    assert live.phase == Phase.PAUSED and live.current.snapshot().step == 16
    live.resume()
    assert live.join(WAIT)
    unpaused = small_trainer(seed=3)
    unpaused.run()
    assert_same_run(live.current, unpaused)


def test_a_stop_reaches_the_worker_within_a_step_and_the_worker_trains_the_next_run(workers):
    live = LiveRun([small_trainer(steps=5000)], TrainingSlots(1), max_active_seconds=WAIT, workers=workers).start()
    wait_for(lambda: live.current.snapshot().step >= 3)
    live.stop()
    assert live.join(WAIT)
    snapshot = live.current.snapshot()
    assert snapshot.status == Status.STOPPED and snapshot.step < 5000
    assert snapshot.reason == f"stopped at step {snapshot.step}"
    assert workers.counts()[1] == 0, "the stopped run's worker is given back"
    following = small_trainer()
    workers.run(following)
    assert following.snapshot().status == Status.FINISHED


def test_a_run_waiting_for_a_slot_holds_no_worker(workers):
    slots = TrainingSlots(1)
    first = LiveRun([small_trainer(steps=5000)], slots, max_active_seconds=WAIT, workers=workers).start()
    wait_for(lambda: first.current.snapshot().step >= 1)
    second = LiveRun([small_trainer()], slots, max_active_seconds=WAIT, workers=workers).start()
    time.sleep(0.3)
    assert second.phase == Phase.WAITING
    assert workers.counts()[1] == 1, "only the run computing holds a worker"
    first.stop()
    assert second.join(WAIT) and second.current.snapshot().status == Status.FINISHED


def test_a_run_stopped_before_its_first_step_never_takes_a_worker(workers):
    trainer = small_trainer()
    trainer.stop_requested.set()
    idle_before = workers.counts()
    workers.run(trainer)
    assert trainer.snapshot().status == Status.STOPPED
    assert trainer.snapshot().reason == "stopped before the first step"
    assert workers.counts() == idle_before


def test_an_error_in_the_worker_is_the_runs_reason_and_the_worker_trains_the_next_run(workers):
    broken = small_trainer()
    broken.analytic = {key: value for key, value in ANALYTIC.items() if key != "zero"}   # the worker reads it
    workers.run(broken)
    assert broken.snapshot().status == Status.ERROR
    assert broken.snapshot().reason == "KeyError: 'zero'"
    following = small_trainer()
    workers.run(following)
    assert following.snapshot().status == Status.FINISHED


def test_a_worker_that_dies_ends_its_run_as_an_error_and_the_next_run_gets_a_new_worker(workers):
    live = LiveRun([small_trainer(steps=5000)], TrainingSlots(1), max_active_seconds=WAIT, workers=workers).start()
    wait_for(lambda: live.current.snapshot().step >= 3)
    [pid] = workers.busy_pids()
    os.kill(pid, signal.SIGKILL)
    assert live.join(WAIT)
    snapshot = live.current.snapshot()
    assert snapshot.status == Status.ERROR
    assert snapshot.reason == "the training process ended unexpectedly; train again"
    following = small_trainer()
    workers.run(following)
    assert following.snapshot().status == Status.FINISHED


def test_models_training_at_once_each_get_a_worker_and_only_keep_stay_after(workers):
    slots = TrainingSlots(3)
    runs = [LiveRun([small_trainer(steps=5000, seed=seed)], slots, max_active_seconds=WAIT, workers=workers).start()
            for seed in range(3)]
    wait_for(lambda: all(run.current.snapshot().step >= 1 for run in runs))
    assert workers.counts()[1] == 3
    assert len(set(workers.busy_pids())) == 3 and os.getpid() not in workers.busy_pids()
    for run in runs:
        run.stop()
    assert all(run.join(WAIT) for run in runs)
    assert workers.counts() == (2, 0), "idle workers beyond `keep` end"


def test_the_depth_page_models_train_two_at_a_time_in_workers_as_in_threads(workers):
    """Two lanes: the spare slot's model computes beside the run's own in a second worker; each model's numbers
    are its own, whichever lane and process trained it."""
    configs = [TrainConfig(layers=layers, steps=20, batch=16, test_size=128, seed=1) for layers in (1, 2)]
    live = LiveRun([Trainer(SPEC, config, analytic=ANALYTIC) for config in configs], TrainingSlots(2),
                   max_active_seconds=WAIT, lanes=2, workers=workers).start()
    assert live.join(WAIT)
    for trainer, config in zip(live.trainers, configs):
        in_thread = Trainer(SPEC, config, analytic=ANALYTIC)
        in_thread.run()
        assert_same_run(trainer, in_thread)


def test_a_run_that_ends_early_with_a_turn_asked_ahead_leaves_its_worker_ready_for_the_next_run(workers):
    """A worker asks for the next step's turn before it computes this one; a run that diverges at this step leaves
    that answer unread. The worker reads it before it says the run ended, so the next run's first message is its
    own (were it not, the next run would read a turn's answer as its settings)."""
    diverging = Trainer(SPEC, TrainConfig(lr=10.0, steps=300, batch=16, test_size=128), analytic=ANALYTIC)
    live = LiveRun([diverging], TrainingSlots(1), max_active_seconds=WAIT, workers=workers).start()
    assert live.join(WAIT)
    assert diverging.snapshot().status == Status.DIVERGED and diverging.snapshot().step < 300
    assert workers.counts()[1] == 0
    following = small_trainer(seed=2)
    workers.run(following)
    in_thread = small_trainer(seed=2)
    in_thread.run()
    assert_same_run(following, in_thread)


def test_a_fork_server_that_died_is_started_again_for_the_next_worker():
    pool = TrainingWorkers(keep=0)      # every run forks a worker of its own
    try:
        connection, _ = pool._fork_server.fork()     # the fork server up and ready, as after a server's start
        connection.close()
        first = small_trainer()
        pool.run(first)
        pool._fork_server.process.kill()
        pool._fork_server.process.wait()
        second = small_trainer()
        pool.run(second)
        assert first.snapshot().status == second.snapshot().status == Status.FINISHED
        assert pool.counts() == (0, 0)
    finally:
        pool.close()


def test_a_run_before_the_fork_server_is_ready_trains_in_this_thread_with_the_same_numbers():
    pool = TrainingWorkers(keep=0)      # nothing started yet: the first run does not wait for torch's import
    try:
        live = LiveRun([small_trainer(seed=4)], TrainingSlots(1), max_active_seconds=WAIT, step_budget=10,
                       workers=pool).start()
        assert live.wait_until_not_running(WAIT)
        assert live.phase == Phase.PAUSED and live.current.snapshot().step == 10   # turns taken once each
        assert pool._fork_server.process is None, "no fork server was started for it"
        live.resume()
        assert live.join(WAIT)
        in_thread = small_trainer(seed=4)
        in_thread.run()
        assert_same_run(live.current, in_thread)
    finally:
        pool.close()
