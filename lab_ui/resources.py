"""What a server process keeps for every session, and what each session keeps for itself: the training
slots and their line, the worker processes models train in, the store of finished runs, each session's live
runs, cached theory, and the background worker for L-step targets.

Streamlit re-executes pages, not imported modules: the process-wide settings below are made once.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import importlib
import json
import sys
import uuid
from dataclasses import asdict
from typing import Any

import streamlit as st
import torch

from gla_core import causal_wpgd, theory
from gla_core.gla import MAX_LAYERS as MAX_DEPTH
from gla_core.limits import host_limits
from gla_core.session import LiveRun, ResultStore, TrainingSlots
from gla_core.spec import PromptSpec
from gla_core.train import Status, TrainConfig, Trainer, untrained_frame
from gla_core.workers import TrainingWorkers

# torch's thread pool is process-wide, so it is set here, once. One thread per run: the models are
# tiny (tens of tokens, width ~10), so extra threads only add synchronisation, and on a busy shared
# machine they make training several times slower; the cores serve concurrent runs instead.
torch.set_num_threads(1)
# The first torch.optim optimiser imports torch._dynamo (about 1 s, under the import lock): done here,
# at start-up, rather than inside the first training run while every other run waits on the lock.
import torch._dynamo  # noqa: E402,F401
# Plotly reads pandas from sys.modules without taking the import lock: a page drawing a chart while another
# session's page is still importing pandas for the first time got the half-made module ("partially
# initialized module 'pandas' has no attribute 'Series'"). Imported here, whole, before any page runs.
importlib.import_module("pandas")
# The interpreter lock passes between threads every 1 ms rather than 5: the threads that answer a health check or a
# training worker's turn wait for it behind a class's page scripts. A class of 30 (its models training in worker
# processes): health p95 0.99 and 1.49 s at 5 ms, 0.70 and 0.14 s at 1 ms, everyone's comparison as soon.
sys.setswitchinterval(0.001)

PROCESS_TOKEN = uuid.uuid4().hex[:12]   # tells this server process's runs from an earlier one's
RESULT_CAPACITY = 256       # finished runs kept for every session to reuse


@st.cache_resource
def training_slots() -> TrainingSlots:
    """The cap on trainings computing at once in this server process, and its line, shared by every session."""
    return TrainingSlots(host_limits().max_concurrent_runs)


@st.cache_resource
def training_workers() -> TrainingWorkers:
    """The worker processes models train in (gla_core.workers), one per training slot kept ready: started in the
    background when the server draws its first page (app.py), so that the first Train does not wait for them."""
    return TrainingWorkers(keep=host_limits().max_concurrent_runs).prestart()


@st.cache_resource
def result_store() -> ResultStore:
    """Finished results every session can reuse (e.g. the overlays of a sweep)."""
    return ResultStore(RESULT_CAPACITY)


class SessionRuns:
    """One browser session's live runs by purpose ('playground', 'depth', ...), each with a tag: the
    settings it was started with, so a page can tell whether its controls still describe it."""

    def __init__(self):
        self._runs: dict[str, tuple[LiveRun, Any]] = {}

    def get(self, purpose: str) -> LiveRun | None:
        return self._runs.get(purpose, (None, None))[0]

    def tag(self, purpose: str) -> Any:
        return self._runs.get(purpose, (None, None))[1]

    def replace(self, purpose: str, run: LiveRun | None = None, tag: Any = None) -> None:
        """Stop the purpose's run, if any, and keep `run` in its place."""
        old = self._runs.pop(purpose, None)
        if old is not None:
            old[0].stop()
        if run is not None:
            self._runs[purpose] = (run, tag)

    def any_alive(self) -> bool:
        return any(run.alive for run, _ in self._runs.values())

    def stop_all(self) -> None:
        for run, _ in self._runs.values():
            run.stop()
        self._runs.clear()


@st.cache_resource(scope="session", on_release=SessionRuns.stop_all, show_spinner=False)
def session_runs() -> SessionRuns:
    """This session's runs; released (and every run stopped) when the session ends."""
    return SessionRuns()


@st.cache_data(max_entries=512, show_spinner=False)
def analytic_for(spec_json: str) -> dict:
    """theory.solve for a spec, cached by its JSON (identical specs are common across a class)."""
    return theory.solve(PromptSpec.from_json(spec_json))


@st.cache_data(max_entries=256, show_spinner=False)
def landscape_for(spec_json: str) -> dict:
    """The WPGD landscape of a two- or three-task spec (theory.landscape_two_tasks / _three_tasks)."""
    spec = PromptSpec.from_json(spec_json)
    return (theory.landscape_two_tasks if spec.num_tasks == 2 else theory.landscape_three_tasks)(spec)


@st.cache_data(max_entries=256, show_spinner=False)
def untrained_for(spec_json: str, config_json: str) -> dict:
    """The model a run starts from, as a trajectory frame (gla_core.train.untrained_frame), cached."""
    spec = PromptSpec.from_json(spec_json)
    return untrained_frame(spec, TrainConfig(**json.loads(config_json)), analytic=analytic_for(spec_json))


def untrained(spec: PromptSpec, config: TrainConfig) -> dict:
    return untrained_for(spec.to_json(), json.dumps(asdict(config), sort_keys=True))


@st.cache_resource
def _target_jobs() -> tuple[concurrent.futures.ThreadPoolExecutor, dict]:
    """One background worker for L-step targets not precomputed (seconds to minutes each), and its jobs."""
    return concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="causal-wpgd"), {}


def depth_targets(spec: PromptSpec, gating: str, compute: bool = False) -> list[dict] | None:
    """The best L-step causal WPGD for L = 1..4 (gla_core.causal_wpgd): at once for a preset (precomputed);
    for other settings only once `compute` has asked for it and the background worker has finished
    (None until then), so no page waits on it."""
    if causal_wpgd.precomputed(spec, MAX_DEPTH, gating):
        return causal_wpgd.causal_wpgd_targets(spec, MAX_DEPTH, gating)
    worker, jobs = _target_jobs()
    key = (spec.to_json(), gating)
    if key not in jobs and compute:
        jobs[key] = worker.submit(causal_wpgd.causal_wpgd_targets, spec, MAX_DEPTH, gating)
    job = jobs.get(key)
    return job.result() if job is not None and job.done() and job.exception() is None else None


def depth_targets_pending(spec: PromptSpec, gating: str) -> bool:
    job = _target_jobs()[1].get((spec.to_json(), gating))
    return job is not None and not job.done()


XSRF_COOKIE = "_streamlit_xsrf"


def browser_id() -> str | None:
    """Which browser this session is in, from the secret token in Streamlit's XSRF cookie (hashed here,
    never kept): tabs of one browser share it, and it outlives a server restart. One browser's tabs
    share one place at the head of the training line (TrainingSlots)."""
    cookie = (st.context.cookies or {}).get(XSRF_COOKIE)
    return hashlib.sha256(xsrf_secret(cookie).encode()).hexdigest()[:16] if cookie else None


def xsrf_secret(cookie: str) -> str:
    """The token inside an XSRF cookie. Its version-2 form, "2|mask|masked token|time" in hex, is masked
    afresh for every page the server sends (so the cookie's text changes from tab to tab); the token
    under the mask is the browser's own. Another form is returned as it is."""
    parts = cookie.strip("\"'").split("|")
    try:
        if len(parts) == 4 and parts[0] == "2":
            mask, masked = bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
            return bytes(byte ^ mask[i % len(mask)] for i, byte in enumerate(masked)).hex()
    except ValueError:   # not hex: not a cookie the server wrote; still one browser's text
        pass
    return cookie


def result_key(spec: PromptSpec, config: TrainConfig) -> str:
    """What makes two runs the same run (the time limit aside), as a result_store key."""
    settings = {name: value for name, value in asdict(config).items() if name != "max_seconds"}
    return json.dumps([spec.to_dict(), settings], sort_keys=True)


def keep_result(trainer: Trainer) -> bool:
    """Keep a run that completed in the result store (True); a diverged, stopped or failed run is never
    offered to other sessions as a trained result (False)."""
    if trainer.snapshot().status != Status.FINISHED:
        return False
    result_store().put(result_key(trainer.spec, trainer.config), trainer.run_result())
    return True
