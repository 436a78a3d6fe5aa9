"""A page's training runs: starting one in the background (and posting it to the class board), the
button row, the live panel that follows it, and the words for where it stands; and the Depth page's
request for L-step targets the background worker computes."""
from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from gla_core.limits import host_limits
from gla_core.session import LiveRun, Phase
from gla_core.spec import PromptSpec
from gla_core.train import ENDED_BADLY, Snapshot, Status, TrainConfig, Trainer
from lab_ui import board, keys
from lab_ui.controls import on_phone
from lab_ui.resources import (analytic_for, browser_id, depth_targets, depth_targets_pending, keep_result,
                              session_runs, training_slots, training_workers)

STEP_SIZE = 2 * TrainConfig().eval_every  # steps one press of Step trains: it ends on an evaluation
POLL_SECONDS = 1.0          # how often a page refreshes while its run computes (a refresh costs the trainer CPU)
# A run about to end is waited for rather than polled: while it is expected to end within NEAR_END_SECONDS (or has
# made no step yet, as just after Train), the live panel, once drawn, waits up to that long for the run to pause or
# end (a wait takes no CPU from the trainer) and then redraws at once. A default Playground run ends 0.6-0.8 s after
# Train: at one refresh a second its comparison showed 1.3 s after the click; refreshed four times a second, the
# refreshes took the trainer's time (its 100 steps took 1.0 s instead of 0.7) and the comparison still showed at
# 1.2-1.8 s. A click during the wait is answered when the wait ends.
NEAR_END_SECONDS = 1.0


def live_run_mark() -> str:
    """The value of LIVE_RUN_PARAM: this browser's id, shortened (one-way, like browser_id itself), so a
    copied link that carries it tells another browser nothing; "1" where no browser id is known."""
    return (browser_id() or "1")[:8]


def flag_live_runs() -> None:
    """Keep LIVE_RUN_PARAM in the URL while this session has a run alive, and say so when a page opens
    with it but no run: the server restarted (or the session expired) and the run was lost. Streamlit
    keeps a tab's URL when it reconnects to a restarted server, but not its session; the browser keeps
    its cookie, so only the browser that trained is told (a copied link's flag is dropped quietly).
    Called by the frame (app.py) on every page run."""
    if session_runs().any_alive():
        st.query_params[keys.LIVE_RUN_PARAM] = live_run_mark()
        st.session_state[keys.LIVE_RUN_FLAGGED] = True
    elif keys.LIVE_RUN_PARAM in st.query_params:
        if (not st.session_state.get(keys.LIVE_RUN_FLAGGED)
                and st.query_params.get(keys.LIVE_RUN_PARAM) == live_run_mark()):
            st.warning("**Your training run was interrupted**: the server restarted or your session expired, and "
                       "a run lives only in the server's memory. Press **Train** to start it again.",
                       icon=":material/restart_alt:")
        del st.query_params[keys.LIVE_RUN_PARAM]


def start_run(purpose: str, jobs: list[tuple[PromptSpec, TrainConfig]], tag: Any = None,
              step_budget: int | None = None, post_to_board: bool = True,
              start_order: list[int] | None = None) -> LiveRun:
    """Start a background run that trains one model per (spec, config) job, in order or in `start_order` (the
    jobs' indices; two at a time when a slot is free), in place of this session's run for `purpose`. Each model
    that completes its steps goes to the result_store, for every session to reuse (see resources.keep_result),
    and, when this session has joined a class and post_to_board is set, to the class board."""
    membership = board.joined_class() if post_to_board else None   # read here: session state is this thread's

    def finished(trainer: Trainer) -> None:
        if keep_result(trainer):
            board.post_finished(membership, trainer.result())

    trainers = [Trainer(spec, config, analytic=analytic_for(spec.to_json())) for spec, config in jobs]
    # Several models train two at a time while the server has a slot nobody else waits for (LiveRun's lanes)
    run = LiveRun(trainers, training_slots(), host_limits().max_seconds, step_budget=step_budget,
                  on_trainer_finished=finished, group=browser_id(), lanes=1 if step_budget is not None else 2,
                  start_order=start_order, workers=training_workers())
    session_runs().replace(purpose, run, tag)
    return run.start()


@dataclass(frozen=True)
class RunButton:
    """One button of a page's run controls (RunControls.buttons)."""

    label: str
    on_click: Callable
    args: tuple = ()
    disabled: bool = False
    help: str | None = None
    primary: bool = False


class RunControls:
    """What a training page knows of its run, and its button row: this session's run for `purpose`,
    whether it was started with the settings now on screen (`tag`), and whether it computes.

        controls = lab_ui.RunControls("depth", tag)
        controls.buttons([RunButton("Train", train, primary=True)], phone="On a phone ...")
    """

    def __init__(self, purpose: str, tag: Any):
        self.purpose, self.tag = purpose, tag
        runs = session_runs()
        self.run = runs.get(purpose)
        self.same_settings = self.run is not None and runs.tag(purpose) == tag

    @property
    def computing(self) -> bool:
        """The run of these settings is waiting for a slot or training."""
        return self.same_settings and self.run.computing

    def start(self, jobs: list[tuple[PromptSpec, TrainConfig]], **options) -> LiveRun:
        return start_run(self.purpose, jobs, self.tag, **options)

    def stop(self) -> None:
        self.run.stop()

    def buttons(self, buttons: list[RunButton], phone: str, widths: list[float] | None = None,
                stop_at: int | None = None, stop_shown_run: bool = False) -> None:
        """The page's buttons in one row, with a Stop at position `stop_at` (default: last); on a phone,
        which trains nothing, the `phone` notice instead. widths: the columns' relative widths.
        stop_shown_run: Stop also stops a run of other settings (a page that keeps showing it)."""
        if on_phone():
            st.warning(phone, icon=":material/smartphone:")
            return
        row = list(buttons)
        stoppable = self.run is not None and self.run.alive and (self.same_settings or stop_shown_run)
        stop = RunButton("Stop", self.stop, disabled=not stoppable)
        row.insert(len(row) if stop_at is None else stop_at, stop)
        for column, button in zip(st.columns(widths or [1] * len(row)), row):
            column.button(button.label, on_click=button.on_click, args=button.args, disabled=button.disabled,
                          help=button.help, type="primary" if button.primary else "secondary", width="stretch")


# A page's panel: draw(run, header), header a container for what the page says about the run (its status line)
PanelDraw = Callable[[LiveRun | None, DeltaGenerator], None]


def live_panel(run: LiveRun | None, draw: PanelDraw) -> None:
    """Draw `draw(run, header)` in a fragment that refreshes every POLL_SECONDS while the run trains (near its end it
    waits for the end instead: NEAR_END_SECONDS), and reruns the whole page exactly once when it pauses or ends (so
    buttons and exports catch up).

    `header` is a container at the top of the panel, there with or without a run, for the status line and notes on
    the run shown: so the charts below keep their places in the page when a run starts. (The browser draws a chart
    that moved again: with the Playground's progress line put in front of its charts, the line showed 0.5-0.8 s
    after Train instead of 0.2-0.3 s.)

    A run waiting behind others changes nothing on the page but its place: the page is drawn once, and only
    the place (status_line) refreshes, in a fragment of its own, until the run starts and the page reruns.
    Thirty waiting tabs each redrawing their charts every second took the server's time from the runs. (A run
    first in line keeps the whole panel refreshing: one just started takes a free slot within milliseconds,
    and its first steps show at the next refresh.)"""
    if run is not None and run.phase == Phase.WAITING and run.runs_ahead() > 0:
        _waiting_panel(run, draw)
        return
    computing = run is not None and run.computing

    @st.fragment(run_every=POLL_SECONDS if computing else None)
    def panel() -> None:
        draw(run, st.container())
        if computing and ends_soon(run):
            run.wait_until_not_running(NEAR_END_SECONDS)
        if computing and not run.computing:
            _rerun_once(("refreshed", run.id, run.version))

    panel()


def ends_soon(run: LiveRun) -> bool:
    """Training (or taking a free slot now), and expected to pause or end within NEAR_END_SECONDS, or without a
    step yet to tell."""
    if run.phase != Phase.RUNNING and not run.about_to_start():
        return False
    left = run.seconds_left()
    return bool(np.isnan(left) or left <= NEAR_END_SECONDS)


# The run whose place in line _waiting_panel shows itself, while the page's draw runs (status_line skips it there)
_place_shown: ContextVar[LiveRun | None] = ContextVar("place_shown", default=None)


def _waiting_panel(run: LiveRun, draw: PanelDraw) -> None:
    @st.fragment(run_every=POLL_SECONDS)
    def place() -> None:
        if run.phase == Phase.WAITING:
            status_line(run)
        else:   # started (or stopped while waiting)
            _rerun_once(("started", run.id, run.version, run.trainers.index(run.current)))

    place()
    shown = _place_shown.set(run)
    try:
        draw(run, st.container())
    finally:
        _place_shown.reset(shown)


def _rerun_once(seen: tuple) -> None:
    """Rerun the whole page, once for each `seen` (the rerun runs the fragment that asks again)."""
    if st.session_state.get(keys.LAST_REFRESH) != seen:
        st.session_state[keys.LAST_REFRESH] = seen
        st.rerun()


def status_line(run: LiveRun) -> None:
    """Progress bar with step count and time left, or what the run is waiting for (drawn by the live panel
    itself while the run waits in line)."""
    if _place_shown.get() is run:
        return
    trainer = run.current
    snapshot = trainer.snapshot()
    phase = run.phase
    starting = run.about_to_start()   # waiting, but taking a free slot now: no wait to speak of
    training = run.training() if phase == Phase.RUNNING else []
    position = _models_position(run, training or [trainer])
    if phase == Phase.WAITING and not starting:
        capacity, ahead = host_limits().max_concurrent_runs, run.runs_ahead()
        line = f"{ahead} run{'s' if ahead != 1 else ''} ahead of yours" if ahead else "yours is next"
        wait = run.wait_estimate()
        when = f" (about {wait:.0f} s)" if np.isfinite(wait) else ""
        st.info(f"Waiting for a free training slot{position} — {line}{when}; the server trains {capacity} "
                f"model{'s' if capacity != 1 else ''} at a time. It starts by itself.",
                icon=":material/hourglass_top:")
        return
    fraction = snapshot.step / max(snapshot.total_steps, 1)
    seconds = run.active_seconds()
    if phase == Phase.RUNNING or starting:
        left = seconds / snapshot.step * (snapshot.total_steps - snapshot.step) if snapshot.step else float("nan")
        limit_left = run.max_active_seconds - seconds     # the host's time limit stops the model sooner
        # a model that stops at its target (TrainConfig.target_risk) may end well before its last step
        bound = "up to " if any(model.config.target_risk for model in run.trainers) else ""
        when = ("starting" if starting else "estimating time left" if not np.isfinite(left)
                else f"{bound}about {left:.0f} s left" if left <= limit_left
                else f"the time limit stops it in about {max(limit_left, 0):.0f} s")
        steps = " and ".join(str(model.snapshot().step) for model in training) or str(snapshot.step)
        text = f"Training{position}: step{'s' if len(training) > 1 else ''} {steps} of {snapshot.total_steps} · {when}"
    elif phase == Phase.PAUSED:
        text = (f"Paused at step {snapshot.step} of {snapshot.total_steps} — Step for {STEP_SIZE} more, "
                "Train to finish")
    else:
        text = f"{ended_status(run, snapshot)} · {snapshot.step} steps in {seconds:.1f} s of training"
    st.progress(min(fraction, 1.0), text=text)


def _models_position(run: LiveRun, models: list) -> str:
    """' (models 1 and 2 of 4)' for a run of several models, '' for a run of one."""
    if len(run.trainers) == 1:
        return ""
    numbers = [run.trainers.index(model) + 1 for model in models]
    return f" (model{'s' if len(numbers) > 1 else ''} {' and '.join(map(str, numbers))} of {len(run.trainers)})"


def ended_status(run: LiveRun, snapshot: Snapshot) -> str:
    """How a run ended, and for a run that went wrong, why and what to do (the trainer's reason)."""
    if run.reason:
        return run.reason[0].upper() + run.reason[1:]
    label = {Status.ERROR: "Failed"}.get(snapshot.status, snapshot.status.capitalize())
    if snapshot.status in (*ENDED_BADLY, Status.TIME_LIMIT) and snapshot.reason:
        return f"{label}: {snapshot.reason}"
    return label


TARGET_POLL_SECONDS = 2.0   # how often the Depth page looks for L-step targets computing in the background


def depth_target_request(spec: PromptSpec, gating: str) -> None:
    """Where a spec has no precomputed L-step targets: a button that asks the background worker for them,
    then a note while it computes; a fragment checks every TARGET_POLL_SECONDS and reruns the page once
    they are ready. Nothing is drawn for a spec whose targets are known."""
    if depth_targets(spec, gating) is not None:
        return

    def request() -> None:
        if depth_targets(spec, gating) is not None:
            st.rerun()
        elif depth_targets_pending(spec, gating):
            st.caption("Computing the best L-step causal WPGD for these settings in the background (up to a "
                       "minute); it appears here when ready.")
        else:
            st.button("Compute the L-step targets", help="The best risk 1 to 4 steps of causal WPGD reach on these "
                      "settings, found numerically in the background (presets have theirs precomputed).",
                      on_click=depth_targets, args=(spec, gating, True))

    st.fragment(run_every=TARGET_POLL_SECONDS if depth_targets_pending(spec, gating) else None)(request)()
