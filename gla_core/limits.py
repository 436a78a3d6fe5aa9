"""Host limits: how much one GLA Lab server lets its users run, set by environment variables.

A class on a shared server must not be able to starve it, so every entry point (web app, command
line) reads the same `HostLimits` and refuses or caps work beyond it. Each limit comes from one
environment variable; an unset or empty variable means the default. A bad value raises
`LimitError`, whose message names the variable and its allowed range, so a typo in a deployment
fails at start-up with a message the operator can act on.

    GLA_MAX_CONCURRENT_RUNS  trainings running at once in one server process (others wait)
    GLA_MAX_STEPS            optimiser steps in one training run
    GLA_MAX_SECONDS          seconds of computing one training run may take
    GLA_MAX_TOKENS           tokens in one prompt (at most spec.MAX_TOKENS)
    GLA_MAX_BATCH            prompts in one training batch
    GLA_MAX_RUN_MEMORY_MB    memory one training step may hold (train.training_memory_bytes)
    GLA_MAX_BOARD_RUNS_PER_STUDENT  runs one student may have on a class board (gla_core.board)
    GLA_MAX_BOARD_RUNS_PER_CLASS    runs one class board may hold

`HostLimits.from_env()` reads them; `host_limits()` reads them once per process.
"""
from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from typing import Mapping

from .spec import MAX_TOKENS

# The largest training a GLA Lab run can ask for at all: TrainConfig's ranges, and the ceilings of the
# host's GLA_MAX_STEPS and GLA_MAX_BATCH (one owner, so the two cannot disagree).
MAX_STEPS = 100_000
MAX_BATCH = 8192


class LimitError(ValueError):
    """A host limit variable holds a bad value. `variable` names it, e.g. 'GLA_MAX_STEPS'."""

    def __init__(self, variable: str, message: str):
        self.variable = variable
        super().__init__(f"{variable}: {message}")


@dataclass(frozen=True)
class LimitInfo:
    """What one limit is: its variable, default, allowed range and meaning."""

    field: str
    variable: str
    default: int | float
    low: int | float
    high: int | float
    kind: type  # int or float
    meaning: str


# Single source of truth for the variables. HostLimits' defaults, the README table and
# docs/deploy.md repeat them; tests/test_limits.py checks that they agree.
LIMITS: tuple[LimitInfo, ...] = (
    LimitInfo("max_concurrent_runs", "GLA_MAX_CONCURRENT_RUNS", 2, 1, 64, int,
              "trainings running at once in one server process; further runs wait"),
    LimitInfo("max_steps", "GLA_MAX_STEPS", 5000, 1, MAX_STEPS, int,
              "optimiser steps in one training run"),
    LimitInfo("max_seconds", "GLA_MAX_SECONDS", 120.0, 1.0, 86_400.0, float,
              "seconds of computing one training run may take before it is stopped (waiting and pauses do not count)"),
    LimitInfo("max_tokens", "GLA_MAX_TOKENS", 2048, 1, MAX_TOKENS, int,
              f"tokens in one prompt (never above the spec's own cap of {MAX_TOKENS})"),
    LimitInfo("max_batch", "GLA_MAX_BATCH", 256, 1, MAX_BATCH, int,
              "prompts in one training batch"),
    LimitInfo("max_run_memory_mb", "GLA_MAX_RUN_MEMORY_MB", 1024, 64, 1_048_576, int,
              "megabytes one training step may hold for its activations; a larger run is refused, with the batch "
              "that fits"),
    LimitInfo("max_board_runs_per_student", "GLA_MAX_BOARD_RUNS_PER_STUDENT", 20, 1, 10_000, int,
              "runs one student may have on a class board at once; withdrawing one makes room"),
    LimitInfo("max_board_runs_per_class", "GLA_MAX_BOARD_RUNS_PER_CLASS", 500, 1, 100_000, int,
              "runs one class board may hold; the teacher can clear it"),
)


def _fmt(number: int | float) -> str:
    return str(number) if isinstance(number, int) else f"{number:g}"


def _read(info: LimitInfo, raw: str | None) -> int | float:
    if raw is None or raw.strip() == "":
        return info.default
    text = raw.strip()
    if info.kind is int:
        try:
            value = int(text)
        except ValueError:
            raise LimitError(info.variable, f"must be a whole number from {info.low} to {info.high}, "
                                            f"got {raw!r}") from None
    else:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise LimitError(info.variable, f"must be a number of seconds from {_fmt(info.low)} to "
                                            f"{_fmt(info.high)}, got {raw!r}")
    if not info.low <= value <= info.high:
        raise LimitError(info.variable, f"must be from {_fmt(info.low)} to {_fmt(info.high)}, got {raw!r}")
    return value


@dataclass(frozen=True)
class HostLimits:
    """The limits one server enforces. Build with `from_env`; defaults suit a 2-core replica."""

    max_concurrent_runs: int = 2
    max_steps: int = 5000
    max_seconds: float = 120.0
    max_tokens: int = 2048
    max_batch: int = 256
    max_run_memory_mb: int = 1024
    max_board_runs_per_student: int = 20
    max_board_runs_per_class: int = 500

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "HostLimits":
        """Read every GLA_MAX_* variable from `environ` (default: os.environ)."""
        environ = os.environ if environ is None else environ
        return cls(**{info.field: _read(info, environ.get(info.variable)) for info in LIMITS})


def limits_set(environ: Mapping[str, str] | None = None) -> dict[str, int | float]:
    """Only the GLA_MAX_* variables that are set (non-empty), by HostLimits field, each checked: what a
    command line enforces, where unset means no limit rather than a server's default."""
    environ = os.environ if environ is None else environ
    return {info.field: _read(info, environ.get(info.variable)) for info in LIMITS
            if (environ.get(info.variable) or "").strip()}


@functools.cache
def host_limits() -> HostLimits:
    """The process's limits, read from os.environ on first use and kept (environment is fixed at start)."""
    return HostLimits.from_env()
