"""Live runs: pause after a step budget, resume, stop, share compute slots, run trainers in order."""
import threading
import time

import pytest

from gla_core import session
from gla_core.session import LiveRun, Phase, ResultStore, TrainingSlots
from gla_core.spec import default_spec, depth_start_order
from gla_core.theory import solve
from gla_core.train import TrainConfig, Trainer

SPEC = default_spec()
ANALYTIC = solve(SPEC)
WAIT = 60  # seconds; generous for a busy CI machine, a passing test takes a fraction


def tiny_trainer(steps: int = 40, **changes) -> Trainer:
    config = TrainConfig(steps=steps, batch=8, lr=0.005, test_size=64, eval_every=5, **changes)
    return Trainer(SPEC, config, analytic=ANALYTIC)


def test_runs_to_the_end_and_bumps_version_once():
    run = LiveRun([tiny_trainer()], TrainingSlots(1), max_active_seconds=WAIT).start()
    assert run.join(WAIT)
    assert run.phase == Phase.ENDED and not run.alive
    assert run.version == 1
    assert run.current.snapshot().status == "finished"
    assert run.current.snapshot().step == 40


def test_step_budget_pauses_then_grant_and_resume_continue_the_same_model():
    slots = TrainingSlots(1)
    run = LiveRun([tiny_trainer()], slots, max_active_seconds=WAIT, step_budget=10).start()
    assert run.wait_until_not_running(WAIT)
    assert run.phase == Phase.PAUSED and run.current.snapshot().step == 10
    assert slots.try_take("another run"), "a paused run must give its slot back"
    slots.leave("another run")
    run.grant(5)
    assert run.wait_until_not_running(WAIT)
    assert run.phase == Phase.PAUSED and run.current.snapshot().step == 15
    assert run.version == 2
    run.resume()
    assert run.join(WAIT)
    snapshot = run.current.snapshot()
    assert snapshot.status == "finished" and snapshot.step == 40
    assert [row["step"] for row in run.current.history_rows()] == list(range(5, 45, 5))


def test_stop_while_paused_ends_the_run():
    run = LiveRun([tiny_trainer()], TrainingSlots(1), max_active_seconds=WAIT, step_budget=5).start()
    assert run.wait_until_not_running(WAIT)
    run.stop()
    assert run.join(WAIT)
    assert run.current.snapshot().status == "stopped"
    assert run.current.snapshot().step <= 6


def test_waits_for_a_free_slot_and_stop_while_waiting():
    slots = TrainingSlots(1)
    slots.try_take("another run")  # someone else trains
    run = LiveRun([tiny_trainer()], slots, max_active_seconds=WAIT).start()
    run.join(0.5)
    assert run.phase == Phase.WAITING
    run.stop()
    assert run.join(WAIT)
    slots.leave("another run")


def test_a_slot_freed_by_another_run_is_taken():
    slots = TrainingSlots(1)
    slots.try_take("another run")
    run = LiveRun([tiny_trainer()], slots, max_active_seconds=WAIT).start()
    run.join(0.3)
    assert run.phase == Phase.WAITING
    slots.leave("another run")
    assert run.join(WAIT) and run.current.snapshot().status == "finished"
    assert slots.try_take("a third run"), "the slot is given back at the end"


def test_a_slot_given_back_wakes_the_owner_it_goes_to_and_no_other():
    slots, woken = TrainingSlots(1), []
    assert slots.try_take("a")
    for owner in "bc":
        assert not slots.try_take(owner, wake=lambda owner=owner: woken.append(owner))
    slots.leave("a")
    assert woken == ["b"]                             # c is not next: it is not woken
    assert slots.try_take("b") and not slots.try_take("c")
    slots.leave("b")
    assert woken == ["b", "c"]


def test_a_waiting_run_takes_a_freed_slot_without_waiting_for_its_next_look(monkeypatch):
    monkeypatch.setattr(session, "SLOT_POLL_SECONDS", 10 * WAIT)    # it would look again only after the test
    slots = TrainingSlots(1)
    slots.try_take("another run")
    run = LiveRun([tiny_trainer()], slots, max_active_seconds=WAIT).start()
    deadline = time.monotonic() + WAIT
    while slots.waiting() == 0 and time.monotonic() < deadline:     # in line, waiting on its own
        run.join(0.01)
    run.join(0.2)
    slots.leave("another run")
    assert run.join(WAIT) and run.current.snapshot().status == "finished"


def test_slots_serve_runs_in_the_order_they_came():
    slots = TrainingSlots(2)
    assert slots.try_take("a") and slots.try_take("b")
    assert not any(slots.try_take(owner) for owner in "cde")
    assert [slots.ahead_of(owner) for owner in "cde"] == [0, 1, 2] and slots.waiting() == 3
    slots.leave("a")
    assert not slots.try_take("d"), "d may not jump the line"
    assert slots.try_take("c") and slots.try_take("c"), "a holder asking again keeps its slot"
    slots.leave("d")                                  # d gives up waiting
    assert slots.ahead_of("e") == 0 and not slots.try_take("e")
    slots.leave("b")
    assert slots.try_take("e") and slots.waiting() == 0
    with pytest.raises(ValueError, match="capacity"):
        TrainingSlots(0)


def test_live_runs_train_in_the_order_they_came_and_a_stopped_one_leaves_the_line():
    slots = TrainingSlots(1)
    slots.try_take("another run")
    finished = []
    runs = []
    for index in range(3):
        runs.append(LiveRun([tiny_trainer()], slots, max_active_seconds=WAIT,
                            on_trainer_finished=lambda trainer, index=index: finished.append(index)).start())
        deadline = time.monotonic() + WAIT
        while slots.waiting() < index + 1 and time.monotonic() < deadline:   # in line before the next comes
            runs[-1].join(0.01)
    assert [run.runs_ahead() for run in runs] == [0, 1, 2]
    runs[1].stop()
    assert runs[2].runs_ahead() == 1 and slots.waiting() == 2
    slots.leave("another run")
    assert all(run.join(WAIT) for run in runs)
    assert finished == [1, 0, 2]                      # the stopped run ends at once; then first come, first served
    assert [run.current.snapshot().status for run in runs] == ["finished", "stopped", "finished"]


def test_trainers_run_in_order_and_each_is_reported():
    finished = []
    trainers = [tiny_trainer(layers=layers) for layers in (1, 2)]
    run = LiveRun(trainers, TrainingSlots(1), max_active_seconds=WAIT,
                  on_trainer_finished=lambda trainer: finished.append(trainer.config.layers)).start()
    assert run.join(WAIT)
    assert finished == [1, 2]
    assert all(trainer.snapshot().status == "finished" for trainer in trainers)


def test_trainers_start_in_the_start_order_given_and_a_wrong_order_is_refused():
    finished = []
    trainers = [tiny_trainer(layers=layers) for layers in (1, 2, 3, 4)]
    run = LiveRun(trainers, TrainingSlots(1), max_active_seconds=WAIT, start_order=[0, 1, 3, 2],
                  on_trainer_finished=lambda trainer: finished.append(trainer.config.layers)).start()
    assert run.join(WAIT)
    assert finished == [1, 2, 4, 3]                  # one slot: each ends before the next starts
    assert run.trainers == trainers                  # the trainers keep the caller's order
    for wrong in ([0, 1, 2], [0, 1, 2, 2], [1, 2, 3, 4]):
        with pytest.raises(ValueError, match="start_order"):
            LiveRun(trainers, TrainingSlots(1), max_active_seconds=WAIT, start_order=wrong)


def test_the_depth_page_starts_the_two_shallowest_first_then_the_deepest():
    assert depth_start_order([1, 2, 3, 4]) == [0, 1, 3, 2]
    assert depth_start_order([2, 3, 4]) == [0, 1, 2]
    assert depth_start_order([3]) == [0]


def test_stop_skips_the_trainers_not_started():
    trainers = [tiny_trainer(steps=100_000), tiny_trainer()]
    run = LiveRun(trainers, TrainingSlots(1), max_active_seconds=WAIT).start()
    while trainers[0].snapshot().step < 3:
        run.join(0.01)
    run.stop()
    assert run.join(WAIT)
    assert trainers[0].snapshot().status == "stopped"
    assert trainers[1].snapshot().status == "idle"


def test_computing_time_limit_ignores_pauses():
    """A run paused for longer than its whole time limit still gets all of it once resumed."""
    limit, pause = 0.5, 1.0
    trainer = tiny_trainer(steps=100_000)
    run = LiveRun([trainer], TrainingSlots(1), max_active_seconds=limit, step_budget=5).start()
    deadline = time.monotonic() + WAIT
    while run.phase != Phase.PAUSED and time.monotonic() < deadline:
        run.join(0.01)
    assert run.phase == Phase.PAUSED and trainer.snapshot().step == 5
    time.sleep(pause)
    assert run.active_seconds() < limit                 # the pause used none of the limit
    run.resume()
    assert run.join(WAIT)
    assert run.reason.startswith("time limit") and trainer.snapshot().step > 5
    assert limit <= run.active_seconds() < limit + 0.3  # computing time, the last step's overshoot at most


def test_result_store_drops_the_least_recently_used():
    store = ResultStore(capacity=2)
    store.put("a", {"risk": 1})
    store.put("b", {"risk": 2})
    assert store.get("a") == {"risk": 1}   # a is now the most recent
    store.put("c", {"risk": 3})
    assert store.get("b") is None and store.get("a") is not None and store.get("c") is not None


def test_one_browser_may_take_a_second_slot_only_when_nobody_else_waits():
    slots = TrainingSlots(2)
    assert slots.try_take("tab 1", group="browser A")
    assert slots.try_take("tab 2", group="browser A"), "a free slot and nobody else waiting: it may take it"


def test_the_line_skips_a_browser_that_computes_in_favour_of_one_that_does_not():
    slots = TrainingSlots(2)
    assert slots.try_take("a1", group="A") and slots.try_take("c1", group="C")
    assert not slots.try_take("a2", group="A") and not slots.try_take("b1", group="B")   # both wait, a2 first
    slots.leave("c1")
    assert not slots.try_take("a2", group="A"), "a2 is first in line, but its browser holds a slot"
    assert slots.try_take("b1", group="B")
    slots.leave("a1")
    assert slots.try_take("a2", group="A")


def test_each_model_gets_its_own_time_limit_and_a_waiting_run_an_estimate():
    slots = TrainingSlots(1)
    run = LiveRun([tiny_trainer(steps=100_000), tiny_trainer(steps=100_000)], slots, max_active_seconds=0.5).start()
    waiting = LiveRun([tiny_trainer()], slots, max_active_seconds=WAIT).start()
    deadline = time.monotonic() + WAIT
    while run.current.snapshot().step < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    estimate = waiting.wait_estimate()
    assert 0 < estimate <= 2 * 0.5 + 0.5, estimate      # what is left of two models capped at 0.5 s each
    assert run.join(WAIT) and waiting.join(WAIT)
    assert [trainer.snapshot().step > 0 for trainer in run.trainers] == [True, True], "the second model ran too"
    assert sorted(run.limit_reasons) == [0, 1] and run.limit_reasons[1].startswith("time limit")



def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_a_second_lane_trains_the_next_model_on_a_free_slot_with_the_same_results():
    alone = LiveRun([tiny_trainer(seed=seed) for seed in (0, 1, 2)], TrainingSlots(2), max_active_seconds=WAIT)
    assert alone.start().join(WAIT)
    slots = TrainingSlots(2)
    trainers = [tiny_trainer(seed=seed, steps=steps) for seed, steps in ((0, 40), (1, 40), (2, 40))]
    slow = tiny_trainer(steps=100_000)
    run = LiveRun([slow, *trainers], slots, max_active_seconds=WAIT, lanes=2).start()
    wait_for(lambda: trainers[0].snapshot().step > 0, "the second model trains beside the first")
    assert slow.snapshot().status == "running" and set(run.training()) == {slow, trainers[0]}
    assert not slots.try_take("another run"), "both slots are the run's"
    slots.leave("another run")
    wait_for(lambda: trainers[2].snapshot().status == "finished", "the other models train beside the first")
    assert run.alive and slow.snapshot().status == "running"
    run.stop()
    assert run.join(WAIT)
    assert [trainer.snapshot().test_risk for trainer in trainers] == [
        trainer.snapshot().test_risk for trainer in alone.trainers], "the same models, whichever lane trained them"


def test_the_spare_slot_goes_to_a_run_that_comes_to_wait_and_the_model_on_it_waits():
    slots = TrainingSlots(2)
    first, second = tiny_trainer(steps=100_000), tiny_trainer(steps=100_000)
    run = LiveRun([first, second], slots, max_active_seconds=WAIT, lanes=2).start()
    wait_for(lambda: second.snapshot().step > 0, "the second model takes the free slot")
    other = LiveRun([tiny_trainer()], slots, max_active_seconds=WAIT).start()
    assert other.join(WAIT) and other.current.snapshot().status == "finished", "the spare slot was given back"
    step = second.snapshot().step
    assert first.snapshot().step > 0 and run.phase == Phase.RUNNING
    run.stop()
    assert run.join(WAIT)
    assert second.snapshot().step <= step + 1, "the second model waited while the other run trained"


def test_when_a_model_ends_the_one_on_the_spare_slot_moves_onto_the_runs_own():
    slots = TrainingSlots(2)
    short, long = tiny_trainer(steps=20), tiny_trainer(steps=100_000)
    run = LiveRun([short, long], slots, max_active_seconds=WAIT, lanes=2).start()
    wait_for(lambda: short.snapshot().status == "finished", "the first model ends")
    assert long.snapshot().status == "running" and run.training() == [long]
    assert slots.try_take("another run"), "one slot is free again"
    assert run in slots.holders(), "the model left computes on the run's own slot, its place in line"
    run.stop()
    assert run.join(WAIT) and run.phase == Phase.ENDED
    slots.leave("another run")
    assert slots.try_take("a", group="x") and slots.try_take("b", group="y"), "every slot given back"


def test_two_lanes_take_no_step_budget():
    with pytest.raises(ValueError, match="lanes"):
        LiveRun([tiny_trainer(), tiny_trainer()], TrainingSlots(2), max_active_seconds=WAIT, step_budget=5, lanes=2)


def test_a_run_ends_soon_before_its_first_step_and_near_its_end_not_in_a_long_stretch():
    from lab_ui.runs import NEAR_END_SECONDS, ends_soon

    started = threading.Event()
    trainer = tiny_trainer(steps=100_000)
    run = LiveRun([trainer], TrainingSlots(1), max_active_seconds=WAIT)
    take_turn = trainer.before_step
    trainer.before_step = lambda: (take_turn(), started.wait(WAIT))   # holds the run, on its slot, before step 1
    run.start()
    deadline = time.monotonic() + WAIT
    while run.phase != Phase.RUNNING and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ends_soon(run), "no step yet: nothing tells how long it has left"
    started.set()
    while run.current.snapshot().step < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert run.seconds_left() > NEAR_END_SECONDS and not ends_soon(run)
    run.stop()
    assert run.join(WAIT) and not ends_soon(run)

    paused = LiveRun([tiny_trainer()], TrainingSlots(1), max_active_seconds=WAIT, step_budget=5).start()
    assert paused.wait_until_not_running(WAIT) and paused.phase == Phase.PAUSED and not ends_soon(paused)
    paused.stop()
    paused.join(WAIT)


def test_a_run_not_yet_started_is_about_to_start_only_with_a_slot_free_and_nobody_ahead():
    from lab_ui.runs import ends_soon

    slots = TrainingSlots(1)
    assert LiveRun([tiny_trainer()], slots, max_active_seconds=WAIT).about_to_start()   # nobody holds the slot
    slots.try_take("another run")
    run = LiveRun([tiny_trainer()], slots, max_active_seconds=WAIT).start()
    deadline = time.monotonic() + WAIT
    while slots.waiting() == 0 and time.monotonic() < deadline:
        run.join(0.01)
    assert run.phase == Phase.WAITING and not run.about_to_start() and not ends_soon(run)   # it truly waits
    run.stop()
    slots.leave("another run")
    assert run.join(WAIT)
