"""Repo-wide pytest hooks: skip tests whose hardware is missing (markers are listed in pytest.ini).

- `gpu` tests skip when torch sees no CUDA device (bench/gpu_check.sh runs them on a GPU host).
- `browser` tests skip when Chromium is missing, except under CI (CI=true), where a missing browser
  must fail loudly rather than pass by skipping. They share the `browser` fixture: one Chromium per
  test module.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("GLA_CHROMIUM", "/usr/bin/chromium"))


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def _has_chromium() -> bool:
    return CHROMIUM.exists() or shutil.which("chromium") is not None


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if gpu_items and not _has_cuda():
        skip = pytest.mark.skip(reason="needs a CUDA device (run bench/gpu_check.sh on a GPU host)")
        for item in gpu_items:
            item.add_marker(skip)
    browser_items = [item for item in items if item.get_closest_marker("browser")]
    if browser_items and not _has_chromium() and os.environ.get("CI", "").lower() not in ("1", "true"):
        skip = pytest.mark.skip(reason=f"needs Chromium at {CHROMIUM} (apt-get install chromium)")
        for item in browser_items:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium through Playwright (which cannot download browsers here), one per test module."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from tests.load import harness

    with sync_api.sync_playwright() as playwright:
        chromium = harness.launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def host_env(monkeypatch):
    """host_env(GLA_MAX_SECONDS="2", ...): this test's host limits (gla_core.limits), read afresh now and
    forgotten after it."""
    from gla_core.limits import host_limits

    def set_limits(**variables: str) -> None:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        host_limits.cache_clear()

    yield set_limits
    host_limits.cache_clear()   # before monkeypatch puts the environment back: the next read sees it


def pytest_sessionfinish(session, exitstatus):
    """Stop every training still running in this process before the interpreter exits. AppTest sessions
    leave their runs alive (a page's run outlives its script run); a daemon thread still inside torch when
    Python tears down makes the process abort ("terminate called without an active exception"), which
    would turn a passing suite's exit status into 134."""
    import gc
    import sys
    import threading

    import time

    train, session_module = sys.modules.get("gla_core.train"), sys.modules.get("gla_core.session")
    if train is None:
        return
    kinds = (train.TrainingRun, *((session_module.LiveRun,) if session_module else ()))
    def is_run(thing) -> bool:
        try:
            return isinstance(thing, kinds)
        except ReferenceError:   # a weak proxy whose object is gone: not a run
            return False

    alive = [thing for thing in gc.get_objects() if is_run(thing)]
    live = [thing for thing in alive if not isinstance(thing, train.TrainingRun)]
    runs = [thing for thing in alive if isinstance(thing, train.TrainingRun)]
    for run in [*live, *runs]:
        run.stop()              # a LiveRun's stop also wakes a trainer waiting for a slot or paused
    deadline = time.monotonic() + 30
    for run in runs:
        if run.thread is not threading.current_thread() and run.thread.is_alive():
            run.thread.join(timeout=max(0.0, deadline - time.monotonic()))
