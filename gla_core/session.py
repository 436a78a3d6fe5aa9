"""Live training for an interactive front end: pause, step, resume and stop runs, and share compute.

    live = LiveRun([trainer], slots, max_active_seconds=120).start()        # train to the end
    live = LiveRun([trainer], slots, max_active_seconds=120, step_budget=25).start()  # 25 steps, then pause
    live.grant(25)      # 25 more steps          live.resume()   # no more pauses
    live.stop()         # ends for good          live.phase      # waiting | running | paused | ended

A LiveRun trains its trainers in order, each in its own `gla_core.train.TrainingRun` thread (two at
once with `lanes=2` while the server has a core nobody else asks for). It is each trainer's
`before_step` hook, called before every step: holding a trainer there pauses it between two steps,
with the model and optimiser intact. A run computes only while it
holds one of the process-wide `TrainingSlots`; runs wait for one in line, first come first served,
and a paused run gives its slot back, so it never blocks other users.

The trainer's own clock keeps going while a run is paused, so a live run gets its time limit here,
counted over the seconds it actually computes (`max_active_seconds`): waiting for a slot and pauses
use none of it.

No UI code: a front end reads `phase`, `version` (bumped whenever the run stops computing, to
refresh a page exactly once) and each trainer's `snapshot()`.
"""
from __future__ import annotations

import functools
import itertools
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from typing import Callable, Sequence

from .train import Trainer, TrainingRun


class Phase(StrEnum):
    """Where a LiveRun stands. Each is also its plain string ("waiting", ...), as it reads in JSON."""

    WAITING = "waiting"     # for a training slot (or to start)
    RUNNING = "running"     # holding a slot and training
    PAUSED = "paused"       # between Steps: alive, holding no slot
    ENDED = "ended"         # every trainer finished, stopped or failed


COMPUTING = (Phase.WAITING, Phase.RUNNING)     # a page refreshes while its run is in one of these

SLOT_POLL_SECONDS = 0.2
_run_ids = itertools.count(1)


class TrainingSlots:
    """At most `capacity` runs compute at once; the others wait in line, first come first served, except
    that one browser holds at most one slot while someone else waits.

    Owners are any hashable objects (LiveRuns), each of a `group` (its browser: tabs of one browser share a
    group; None: a group of its own). try_take() joins the line and takes a slot when one is free and the
    owner is the first in line whose group holds no slot (or simply first, when every owner waiting is of a
    group that already computes); leave() gives the slot back or leaves the line, and calls the `wake` of
    the owner that may now take it (given to try_take). Thread-safe.
    """

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"capacity: must be at least 1, got {capacity}")
        self.capacity = capacity
        self._lock = threading.Lock()
        self._holders: dict = {}         # owner -> group
        self._line: list = []            # (owner, group) waiting, in the order they came
        self._wakes: dict = {}           # owner waiting -> what tells it a slot is free (try_take's wake)

    def try_take(self, owner, group=None, wake: Callable[[], None] | None = None) -> bool:
        """Take a slot, or join the line (and keep `wake`, called without this lock held when the slot may be
        the owner's: so a slot given back is taken at once rather than at the owner's next look)."""
        with self._lock:
            if owner in self._holders:
                return True
            if owner not in (waiting for waiting, _ in self._line):
                self._line.append((owner, group))
                if wake is not None:
                    self._wakes[owner] = wake
            if len(self._holders) < self.capacity and self._next_locked() == owner:
                self._line = [(waiting, g) for waiting, g in self._line if waiting != owner]
                self._wakes.pop(owner, None)
                self._holders[owner] = group
                return True
            return False

    def try_take_spare(self, owner, group=None) -> bool:
        """Take a slot only while one is free and nobody waits in line; never joins the line (a run's second
        model, on cores nobody else asks for)."""
        with self._lock:
            if owner in self._holders:
                return True
            if len(self._holders) < self.capacity and not self._line:
                self._holders[owner] = group
                return True
            return False

    def _next_locked(self):
        computing = {group for group in self._holders.values() if group is not None}
        for owner, group in self._line:
            if group is None or group not in computing:
                return owner
        return self._line[0][0] if self._line else None

    def leave(self, owner) -> None:
        with self._lock:
            self._holders.pop(owner, None)
            self._line = [(waiting, group) for waiting, group in self._line if waiting != owner]
            self._wakes.pop(owner, None)
            following = self._next_locked() if len(self._holders) < self.capacity else None
            wake = self._wakes.get(following)
        if wake is not None:
            wake()

    def waiting(self) -> int:
        with self._lock:
            return len(self._line)

    def ahead_of(self, owner) -> int:
        """How many runs wait in line before `owner` (0 when it is first, or not in line)."""
        with self._lock:
            owners = [waiting for waiting, _ in self._line]
            return owners.index(owner) if owner in owners else 0

    def free(self) -> bool:
        """A slot is free now."""
        with self._lock:
            return len(self._holders) < self.capacity

    def holders(self) -> list:
        with self._lock:
            return list(self._holders)


@dataclass(eq=False)
class _Turn:
    """One trainer's part of a LiveRun: the slot it computes on, and its computing time."""

    claim: object | None = None         # the slot owner it computes as: the run itself, its spare, or None
    active_seconds: float = 0.0         # finished stretches of computing
    active_since: float | None = None   # when the current stretch began (it holds a claim)
    started: bool = False
    finished: bool = False

    def seconds(self) -> float:
        running = time.perf_counter() - self.active_since if self.active_since is not None else 0.0
        return self.active_seconds + running


class LiveRun:
    """One or more trainers run in the background, with pause, step, resume and stop.

    Trainers start in order, or in `start_order` (their indices) where the caller knows which order ends sooner on
    two lanes. A run computes while it holds one of the process-wide TrainingSlots, taken in line as the run
    itself. A run of several models with `lanes=2` also trains the next model beside the current one on a spare
    slot: taken only while a slot is free and nobody waits in line (so on a quiet server the Depth page's four
    models share both cores: 1.5-1.6x as fast), and given back at that model's
    next step once somebody does (it then waits, paused between two steps, for the run's own slot). When a
    model ends, the one on the spare slot moves onto the run's slot, and the spare is free again.
    A step budget (pause after that many steps) is for a run of one lane. With `workers`
    (gla_core.workers.TrainingWorkers) each model computes in a worker process, its thread here taking its turns.
    """

    def __init__(self, trainers: Sequence[Trainer], slots: TrainingSlots, max_active_seconds: float,
                 step_budget: int | None = None, on_trainer_finished: Callable[[Trainer], None] | None = None,
                 group=None, lanes: int = 1, start_order: Sequence[int] | None = None, workers=None):
        if not trainers:
            raise ValueError("trainers: give at least one trainer")
        if lanes not in (1, 2) or (lanes == 2 and step_budget is not None):
            raise ValueError(f"lanes: must be 1, or 2 without a step budget, got {lanes}")
        if start_order is not None and sorted(start_order) != list(range(len(trainers))):
            raise ValueError(f"start_order: must order the trainers' indices 0 to {len(trainers) - 1}, "
                             f"got {list(start_order)}")
        self.id = next(_run_ids)
        self.trainers = list(trainers)
        # The trainers' indices in the order they start (the trainers themselves stay in the caller's order)
        self.start_order = list(start_order) if start_order is not None else list(range(len(self.trainers)))
        self.max_active_seconds = max_active_seconds
        self.reason = ""                  # why the run ended early, when the trainers cannot tell
        self.limit_reasons: dict[int, str] = {}   # trainer index -> why the time limit stopped that model
        self.group = group                # the browser this run came from (TrainingSlots' fairness)
        self.version = 0                  # bumped on every pause and at the end
        self.lanes = min(lanes, len(self.trainers))
        self._slots = slots
        self._spare = object()            # the owner of this run's spare slot (its own slot's owner is the run)
        self._on_trainer_finished = on_trainer_finished
        self._condition = threading.Condition()
        self._budget = step_budget        # steps left before the next pause; None: no pause
        self._phase = Phase.WAITING
        self._stopped = False
        self._turns = [_Turn() for _ in self.trainers]
        for index, trainer in enumerate(self.trainers):
            trainer.before_step = functools.partial(self._before_step, index)
        self._threads = [TrainingRun(trainer, on_finish=functools.partial(self._trainer_finished, index),
                                     workers=workers) for index, trainer in enumerate(self.trainers)]

    def start(self) -> "LiveRun":
        with self._condition:
            for index in self.start_order[:self.lanes]:
                self._start_locked(index)
        return self

    # ------------------------------------------------------------ the owner's controls (any thread)
    @property
    def phase(self) -> Phase:
        with self._condition:
            return self._phase

    @property
    def computing(self) -> bool:
        """Waiting for a slot or training: a page showing it refreshes."""
        return self.phase in COMPUTING

    @property
    def alive(self) -> bool:
        """Not yet ended (a paused run is alive: it can resume)."""
        return self.phase != Phase.ENDED

    @property
    def current(self) -> Trainer:
        """The first model started and not finished (the last one once every model has ended)."""
        with self._condition:
            return self.trainers[self._current_index_locked()]

    def training(self) -> list[Trainer]:
        """The models started and not finished, in order (two while a spare slot is in use)."""
        with self._condition:
            return [trainer for trainer, turn in zip(self.trainers, self._turns) if turn.started and not turn.finished]

    def about_to_start(self) -> bool:
        """Waiting, but first in line with a slot free: its trainer takes the slot within moments (a run just
        started, or just resumed, on a server with a core to spare)."""
        return self.phase == Phase.WAITING and self.runs_ahead() == 0 and self._slots.free()

    def runs_ahead(self) -> int:
        """While waiting for a slot: how many runs are in line before this one."""
        return self._slots.ahead_of(self)

    def seconds_left(self) -> float:
        """About how many seconds of computing this run still needs, all its models (the current one's
        pace so far, each model capped by the time limit, shared among the models computing at once);
        nan before its first step."""
        with self._condition:
            index = self._current_index_locked()
            per_step_seconds = self._turns[index].seconds()
            turns = [(trainer, turn.seconds()) for trainer, turn in zip(self.trainers, self._turns)
                     if not turn.finished]
            computing = max(1, sum(turn.claim is not None for turn in self._turns))
        snapshot = self.trainers[index].snapshot()
        if snapshot.step == 0:
            return float("nan")
        per_step = per_step_seconds / snapshot.step
        left = [min(per_step * (trainer.config.steps - trainer.snapshot().step),
                    max(self.max_active_seconds - spent, 0.0)) for trainer, spent in turns]
        return sum(left) / computing

    def wait_estimate(self) -> float:
        """While waiting: about how many seconds until this run starts, from what the runs computing now
        still need, plus, for each run ahead in line, what a computing run needs in all; nan while nothing
        computing has made a step yet."""
        paces = [(run.seconds_left(), run.active_seconds()) for run in self._slots.holders()
                 if isinstance(run, LiveRun) and run is not self]
        paces = [(left, done) for left, done in paces if left == left]     # nan: no step yet
        if not paces:
            return float("nan")
        whole_run = sum(left + done for left, done in paces) / len(paces)
        return (sum(left for left, _ in paces) + self.runs_ahead() * whole_run) / self._slots.capacity

    def active_seconds(self) -> float:
        """Seconds the current trainer has spent computing (pauses and slot waits left out)."""
        with self._condition:
            return self._turns[self._current_index_locked()].seconds()

    def grant(self, steps: int) -> None:
        """Allow `steps` more steps, then pause."""
        with self._condition:
            self._budget = (self._budget or 0) + steps
            self._wake()

    def resume(self) -> None:
        """Train to the end without pausing."""
        with self._condition:
            self._budget = None
            self._wake()

    def _wake(self) -> None:
        # A paused run counts as computing again at once, so its owner starts watching it now.
        if self._phase == Phase.PAUSED:
            self._set_phase(Phase.WAITING)
        self._condition.notify_all()

    def stop(self, reason: str = "") -> None:
        """End the run for good; each trainer stops within one step, trainers not started never start."""
        with self._condition:
            if not self._stopped and reason:
                self.reason = reason
            self._stopped = True
            if not any(turn.claim is self for turn in self._turns):   # out of the line now (a slot held is
                self._slots.leave(self)                                # given back as its trainer ends)
            self._condition.notify_all()
        for trainer in self.trainers:
            trainer.stop_requested.set()

    def join(self, timeout: float) -> bool:
        """Wait until the run has ended (True) or until timeout seconds have passed (False)."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._phase != Phase.ENDED:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._condition.wait(left)
        return True

    def wait_until_not_running(self, timeout: float) -> bool:
        """Wait until the run is paused or ended (True), or until timeout seconds have passed (False)."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._phase in COMPUTING:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._condition.wait(left)
        return True

    # ------------------------------------------------------------ called from the training threads
    def _current_index_locked(self) -> int:
        for index, turn in enumerate(self._turns):
            if turn.started and not turn.finished:
                return index
        return max((index for index, turn in enumerate(self._turns) if turn.started), default=0)

    def _start_locked(self, index: int) -> None:
        self._turns[index].started = True
        self._threads[index].start()

    def _set_phase(self, phase: Phase) -> None:
        if phase == self._phase:
            return
        if phase in (Phase.PAUSED, Phase.ENDED):
            self.version += 1
        self._phase = phase
        self._condition.notify_all()

    def _take(self, turn: _Turn, claim) -> None:
        turn.claim, turn.active_since = claim, time.perf_counter()

    def _release(self, turn: _Turn) -> None:
        """The turn gives its slot back (or leaves the line) and stops its computing clock."""
        if turn.claim is not None:
            self._slots.leave(turn.claim)
        elif not any(other.claim is self for other in self._turns):
            self._slots.leave(self)
        if turn.active_since is not None:
            turn.active_seconds += time.perf_counter() - turn.active_since
        turn.claim, turn.active_since = None, None
        if not any(other.claim is not None for other in self._turns) and self._phase == Phase.RUNNING:
            self._set_phase(Phase.WAITING)

    def _try_claim(self, turn: _Turn) -> bool:
        """Take the run's own slot (in line) if no other model of it holds it, else a spare one if free."""
        if not any(other.claim is self for other in self._turns):
            if self._slots.try_take(self, self.group, wake=self._slot_free):
                self._take(turn, self)
        elif self.lanes > 1 and self._slots.try_take_spare(self._spare, self.group):
            self._take(turn, self._spare)
        return turn.claim is not None

    def _slot_free(self) -> None:
        """TrainingSlots says a slot may be this run's now: wake its waiting trainer. Never blocks (the slots call
        it while the run giving the slot back holds its own lock); if this run's lock is busy, its trainer finds
        the slot at its next look, within SLOT_POLL_SECONDS."""
        if self._condition.acquire(blocking=False):
            try:
                self._condition.notify_all()
            finally:
                self._condition.release()

    def _before_step(self, index: int) -> int | None:
        """Block until this step of trainer `index` may run: not paused, a slot held; then return how many more
        steps are granted before a pause (None: no pause planned). Returns at once after a stop (None), so the
        trainer's loop reaches its own stop check."""
        turn = self._turns[index]
        with self._condition:
            while not self._stopped:
                if turn.seconds() > self.max_active_seconds:
                    # This model stops; the next one (Depth trains several) gets its own time.
                    self.limit_reasons[index] = (f"time limit: stopped after {self.max_active_seconds:g} s "
                                                 "of training")
                    if len(self.trainers) == 1:
                        self.reason = self.limit_reasons[index]
                    self.trainers[index].stop_requested.set()
                    return
                if self._budget == 0:
                    self._release(turn)
                    self._set_phase(Phase.PAUSED)
                    self._condition.wait()
                    continue
                if turn.claim is self._spare and self._slots.waiting():
                    self._release(turn)       # somebody waits: the spare slot is theirs
                if turn.claim is None and not self._try_claim(turn):
                    if not any(other.claim is not None for other in self._turns):
                        self._set_phase(Phase.WAITING)
                    self._condition.wait(SLOT_POLL_SECONDS)
                    continue
                self._set_phase(Phase.RUNNING)
                if self._budget is not None:
                    self._budget -= 1
                return self._budget

    def _trainer_finished(self, index: int, trainer: Trainer) -> None:
        if self._on_trainer_finished is not None:
            self._on_trainer_finished(trainer)
        with self._condition:
            turn = self._turns[index]
            on_spare = next((other for other in self._turns if other.claim is self._spare), None)
            if turn.claim is self and on_spare is not None:   # the model on the spare slot moves onto the run's own
                self._slots.leave(self._spare)
                on_spare.claim, turn.claim = self, None
            self._release(turn)
            turn.finished = True
            following = next((later for later in self.start_order if not self._turns[later].started), None)
            if following is not None and not self._stopped:
                self._start_locked(following)
            # Ended once no model trains (after a stop, the models not started never start)
            if not any(other.started and not other.finished for other in self._turns):
                self._set_phase(Phase.ENDED)


class ResultStore:
    """Finished runs' results shared by all sessions (thread-safe, least recently used dropped first)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._results: OrderedDict[str, dict] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> dict | None:
        with self._lock:
            if key in self._results:
                self._results.move_to_end(key)
            return self._results.get(key)

    def put(self, key: str, result: dict) -> None:
        with self._lock:
            self._results[key] = result
            self._results.move_to_end(key)
            while len(self._results) > self.capacity:
                self._results.popitem(last=False)
