"""Training in worker processes, so that a server's page scripts and its training runs do not share one
interpreter lock.

A server that trains in threads runs its pages and its models under the same interpreter lock: in a class of 30
the page scripts held it 52% of the time and the training threads 39%, and the server kept only 1.1-1.4 of its
2 cores busy. Here a model computes in a worker process, one of a pool, while the server keeps the Trainer its
readers know (pages, the result store, the class board): the worker sends each snapshot change, history row and
frame its own copy of the trainer makes, and the server's thread for that trainer makes the same calls on the
server's Trainer. The server's Trainer keeps its untrained model: readers read snapshots, history and frames.

    workers = TrainingWorkers(keep=2).prestart()   # once per server process (lab_ui.resources)
    workers.run(trainer)     # in the trainer's thread (train.TrainingRun): returns when the run has ended

One run, over the worker's pipe (pickled tuples):
1. The server's thread takes step 1's turn itself (`trainer.before_step()`: a run waiting for a training slot holds
   no worker), then takes a worker and sends ("train", spec, config, analytic).
2. Each later step's turn: the worker sends ("turn",); the server's thread calls `trainer.before_step()` (which may
   wait: a pause, a slot given to somebody else) and answers (stop, granted): whether the trainer was asked to stop,
   and how many more steps are granted before a pause (None: no limit). The worker asks for up to TURNS_AHEAD turns
   before it needs them, never past the steps granted, so that their answers come while it computes. A Step's pause
   still comes exactly after its last step (the turn after it is asked for only once that step is done, and its
   snapshot sent); a stop, the time limit, or a spare slot given back comes at most TURNS_AHEAD steps later.
3. As it trains the worker sends ("publish", changes), ("record", row) and ("frame", step, evaluation).
4. At the end: ("ended",), or ("failed", reason) for an exception; a worker that dies ends its run as an error.

Workers are forked from a fork server that has imported torch and this package (a new worker starts in about
20 ms and shares those pages), started on first use; `keep` idle workers wait for the next run, more start when
more models compute at once (a paused model keeps its worker: its model and optimiser live there).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import asdict
from multiprocessing.connection import Connection
from pathlib import Path

import torch
# What the first optimiser imports (about 1 s): imported in the fork server, its 120 MB are shared by every worker.
import torch._dynamo  # noqa: F401

from .spec import PromptSpec
from .train import Status, TrainConfig, Trainer

PACKAGE_ROOT = Path(__file__).resolve().parent.parent   # where `python -m gla_core.workers` finds the package


# Turns a worker asks for before it needs them (at most; never past a pause): the server's thread answers each while
# the worker computes. In a class of 30 the server, busy with the pages, took 7-9 ms on average to answer a turn,
# about a step (asked for one step ahead, a default run still waited 0.73 s of its 1.9 s for answers).
TURNS_AHEAD = 4
# Workers run at a lower CPU priority than the server, so that the pages, the health check and the answers to the
# workers' turns get a core first when a class keeps every core busy; training takes what they leave.
WORKER_NICENESS = 10


class _WorkerTrainer(Trainer):
    """The worker's copy of a server's Trainer: it computes, and sends what it publishes, records and frames,
    and asks for its steps' turns, up to TURNS_AHEAD before it needs them (the first was taken by the server)."""

    def __init__(self, connection: Connection, spec: PromptSpec, config: TrainConfig, analytic: dict,
                 first_granted: int | None):
        super().__init__(spec, config, analytic=analytic)
        self._connection = connection
        self._turn = 0                  # the step whose turn was taken last
        self._asked = 1                 # the last step whose turn was asked for (the server took the first itself)
        self._answered = 1              # the last step whose turn's answer was read
        self._horizon = self._granted_through(1, first_granted)
        self.before_step = self._take_turn

    def _granted_through(self, step: int, granted: int | None) -> float:
        """The last step that may run without a pause, from `step`'s answer: `granted` more steps (None: no limit)."""
        return float("inf") if granted is None else step + granted

    def _ask_ahead(self) -> None:
        """Ask for the turns up to TURNS_AHEAD steps on, never past a pause or the last step."""
        while self._asked < min(self._turn + TURNS_AHEAD, self._horizon, self.config.steps):
            self._connection.send(("turn",))
            self._asked += 1

    def read_answers_left(self) -> None:
        """Read the answers to turns asked for and never taken (a run that ended early, stopped or diverged, leaves
        some), so that the next message the worker reads is the next run."""
        while self._answered < self._asked:
            self._read_answer()

    def _read_answer(self) -> None:
        """The next turn's answer (turns are answered in order): whether to stop, and how many more steps are
        granted before a pause."""
        stop, granted = self._connection.recv()
        self._answered += 1
        self._horizon = self._granted_through(self._answered, granted)
        if stop:
            self.stop_requested.set()

    def _take_turn(self) -> None:
        self._turn += 1
        if self._turn == 1:     # taken by the server before it sent the run
            self._ask_ahead()
            return
        if self._asked < self._turn:
            self._connection.send(("turn",))
            self._asked = self._turn
        while self._answered < self._turn:
            self._read_answer()
        if not self.stop_requested.is_set():
            self._ask_ahead()

    def _publish(self, **changes) -> None:
        super()._publish(**changes)
        self._connection.send(("publish", changes))

    def _record(self, row: dict) -> None:
        super()._record(row)
        self._connection.send(("record", row))

    def _record_frame(self, step: int, evaluation: dict) -> None:
        super()._record_frame(step, evaluation)
        self._connection.send(("frame", step, evaluation))


def _worker_main(connection: Connection) -> None:
    """A worker: trains the runs it is sent, one at a time, until its pipe closes (the server ended or let it go)."""
    torch.set_num_threads(1)    # as the server's own setting (lab_ui.resources): its cores serve several runs
    while True:
        try:
            message = connection.recv()
        except EOFError:
            return
        _, spec, config, analytic, first_granted = message
        trainer = None
        try:
            trainer = _WorkerTrainer(connection, PromptSpec.from_dict(spec), TrainConfig(**config), analytic,
                                     first_granted)
            trainer.run()
            ending = ("ended",)
        except (EOFError, BrokenPipeError):
            return      # the server went away mid-run
        except Exception as error:   # the server's page shows the reason
            ending = ("failed", f"{type(error).__name__}: {error}")
        try:
            if trainer is not None:
                trainer.read_answers_left()
            connection.send(ending)
        except (EOFError, BrokenPipeError):
            return


def _fork_server_main(control: socket.socket) -> None:
    """The fork server (`python -m gla_core.workers FD`): imported torch and this package once, it forks a worker
    for each byte the server sends on `control`, and sends back that worker's end of a new socket pair (and the
    worker's pid). It holds no threads, so forking it is safe. Ends when the server closes `control`."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)     # ended workers are reaped by the kernel: no zombies
    # Ctrl-C in the server's terminal reaches the whole process group: the server ends, and with it (its pipes
    # closed) the fork server and the workers, without a traceback of their own each
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(WORKER_NICENESS)                          # inherited by every worker
    while control.recv(1):
        worker_end, server_end = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            control.close()
            server_end.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            try:
                _worker_main(Connection(worker_end.detach()))
            finally:
                os._exit(0)
        worker_end.close()
        socket.send_fds(control, [pid.to_bytes(8, "little")], [server_end.fileno()])
        server_end.close()


class _ForkServer:
    """The server's handle on its fork server: started on first use, started again if it has died."""

    def __init__(self):
        self._lock = threading.Lock()
        self._control: socket.socket | None = None
        self.process: subprocess.Popen | None = None
        self.ready = False      # it has forked a worker: it has imported torch, and forks in milliseconds

    def fork(self) -> tuple[Connection, int]:
        """A new worker: the server's end of its pipe, and its pid."""
        with self._lock:
            for _ in range(2):
                if self.process is None or self.process.poll() is not None:
                    self._start()
                try:
                    self._control.sendall(b"w")
                    data, fds, _, _ = socket.recv_fds(self._control, 8, 1)
                    if fds:
                        self.ready = True
                        return Connection(fds[0]), int.from_bytes(data, "little")
                except OSError:
                    pass
                self.process.kill()     # not answering: the next attempt starts a new one
                self.process.wait()
            raise RuntimeError("the training fork server did not start a worker")

    def close(self) -> None:
        """The fork server ends when its control socket closes (a later fork() starts a new one)."""
        with self._lock:
            if self._control is not None:
                self._control.close()
            if self.process is not None:
                self.process.wait(timeout=10)
            self._control = self.process = None

    def _start(self) -> None:
        if self._control is not None:
            self._control.close()
        self._control, child_end = socket.socketpair()
        self.process = subprocess.Popen([sys.executable, "-m", "gla_core.workers", str(child_end.fileno())],
                                        pass_fds=[child_end.fileno()], cwd=PACKAGE_ROOT, stdin=subprocess.DEVNULL)
        child_end.close()


class _Worker:
    """One worker process and the server's end of its pipe."""

    def __init__(self, fork_server: _ForkServer):
        self.connection, self.pid = fork_server.fork()

    def alive(self) -> bool:
        """Waiting for a run: an idle worker sends nothing, so a pipe with something to read has closed (the worker
        died)."""
        return not self.connection.closed and not self.connection.poll()

    def close(self) -> None:
        self.connection.close()     # the worker's next read or write fails, and it ends
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class TrainingWorkers:
    """A pool of worker processes that train one model each at a time; thread-safe. `keep` idle workers wait for
    the next run (prestart() starts them in the background); a run that finds none starts one."""

    def __init__(self, keep: int):
        if keep < 0:
            raise ValueError(f"keep: must be 0 or more, got {keep}")
        self.keep = keep
        self._fork_server = _ForkServer()
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()

    def prestart(self) -> "TrainingWorkers":
        """Start the fork server and `keep` workers in a background thread (the first takes seconds: it imports
        torch), so that the first run does not wait for them."""
        threading.Thread(target=self._fill, daemon=True, name="gla-training-workers").start()
        return self

    def _fill(self) -> None:
        while True:
            with self._lock:
                if len(self._idle) + len(self._busy) >= self.keep:
                    return
            try:
                worker = _Worker(self._fork_server)
            except (OSError, RuntimeError):
                return      # a run starts its worker itself, and says why it could not

            with self._lock:
                self._idle.append(worker)

    def counts(self) -> tuple[int, int]:
        """(idle, busy) workers now."""
        with self._lock:
            return len(self._idle), len(self._busy)

    def busy_pids(self) -> list[int]:
        """The processes training now."""
        with self._lock:
            return [worker.pid for worker in self._busy]

    def _take(self) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():
                    self._busy.add(worker)
                    return worker
                worker.close()
        worker = _Worker(self._fork_server)
        with self._lock:
            self._busy.add(worker)
        return worker

    def _give_back(self, worker: _Worker, healthy: bool) -> None:
        with self._lock:
            self._busy.discard(worker)
            kept = healthy and len(self._idle) < self.keep
            if kept:
                self._idle.append(worker)
        if not kept:
            worker.close()

    def close(self) -> None:
        """End the idle workers and the fork server (busy workers end with their runs' pipes)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.close()
        self._fork_server.close()

    def run(self, trainer: Trainer) -> None:
        """Train `trainer` in a worker, as trainer.run() would in this thread: the same numbers (same seeds), the
        same snapshots, history and frames on `trainer`, and the same before_step turns.

        In a server's first seconds, while its fork server still imports torch and no worker waits, the run trains
        in this thread instead: the first Train after a start would otherwise wait for that import (the
        Playground's progress line showed 1.7 s after the click instead of 0.3 s)."""
        with self._lock:
            starting = not self._idle and not self._fork_server.ready
        if starting:
            trainer.run()
            return
        granted = trainer.before_step()     # step 1's turn here: a run waiting for a slot holds no worker
        if trainer.stop_requested.is_set():
            trainer._publish(status=Status.STOPPED, reason="stopped before the first step")
            return
        worker = self._take()
        healthy = False
        try:
            worker.connection.send(("train", trainer.spec.to_dict(), asdict(trainer.config), trainer.analytic,
                                    granted))
            healthy = self._follow(trainer, worker.connection)
        except (EOFError, OSError):     # the worker died (killed, out of memory): its pipe closed
            trainer._publish(status=Status.ERROR, reason="the training process ended unexpectedly; train again")
        finally:
            self._give_back(worker, healthy)

    @staticmethod
    def _follow(trainer: Trainer, connection: Connection) -> bool:
        """Answer the worker's turns and replay what it sends onto `trainer`, until the run ends. True: the worker
        finished the run and can train another."""
        while True:
            message = connection.recv()
            kind = message[0]
            if kind == "turn":
                granted = trainer.before_step()
                connection.send((trainer.stop_requested.is_set(), granted))
            elif kind == "publish":
                trainer._publish(**message[1])
            elif kind == "record":
                trainer._record(message[1])
            elif kind == "frame":
                trainer._record_frame(message[1], message[2])
            elif kind == "ended":
                return True
            else:   # "failed"
                trainer._publish(status=Status.ERROR, reason=message[1])
                return True


if __name__ == "__main__":
    _fork_server_main(socket.socket(fileno=int(sys.argv[1])))
