"""The prompt spec: what a multitask in-context regression prompt looks like.

One dataclass, `PromptSpec`, describes the data model of docs/theory.md §5: dimension d, tasks in prompt
order (each with n_k examples and a correlation with the query task, a number or one per
coordinate), label noise, delimiter kind, an optional full task correlation matrix and an optional
feature covariance condition number.

Every entry point (Python API, command line, web app) builds a spec through `PromptSpec.from_dict`,
so they share one validation whose messages name the field and its allowed range.
"""
from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Allowed ranges (docs/theory.md §5; sizes keep one prompt cheap enough to train live).
D_RANGE = (1, 64)
TASKS_RANGE = (1, 8)
N_RANGE = (1, 256)
MAX_TOKENS = 2048
NOISE_MAX = 100.0
CONDITION_MAX = 1e6
DELIMITERS = ("task", "shared", "none")
# Tolerances for checking a user-given correlation matrix.
SYMMETRY_TOL = 1e-8
DIAGONAL_TOL = 1e-8
PSD_TOL = 1e-8

PRESET_DIR = Path(__file__).resolve().parent.parent / "assets" / "presets"


class SpecError(ValueError):
    """Invalid input. `field` names the offending field, e.g. 'tasks[1].corr'."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


# ---------------------------------------------------------------- small typed readers
SHOW_MAX_CHARS = 40   # an echoed bad value or key is cut to this, so a message stays one short line


def _show(value: Any) -> str:
    """A bad value as the message echoes it: its repr, on one line and cut short (a huge integer by its size)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    text = repr(value)
    return text if len(text) <= SHOW_MAX_CHARS else text[: SHOW_MAX_CHARS - 3] + "..."


def _key_name(key: Any) -> str:
    """A JSON key as a field name: itself when it is short printable text, else its shortened repr."""
    if isinstance(key, str) and key and key.isprintable() and len(key) <= SHOW_MAX_CHARS:
        return key
    return _show(key)


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(field, f"must be a number, got {type(value).__name__}")
    try:
        value = float(value)
    except OverflowError:   # an integer too large for a float
        raise SpecError(field, f"must be a finite number, got {_show(value)}") from None
    if not math.isfinite(value):
        raise SpecError(field, f"must be a finite number, got {value}")
    return value


def _integer(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(field, f"must be a whole number from {low} to {high}, got {_show(value)}")
    if not low <= value <= high:
        raise SpecError(field, f"must be from {low} to {high}, got {_show(value)}")
    return value


def _correlation(value: Any, field: str) -> float:
    value = _number(value, field)
    if abs(value) > 1.0:
        raise SpecError(field, f"must be between -1 and 1, got {value:g}")
    return value


def _check_keys(data: Any, field: str, allowed: set[str], required: set[str]) -> None:
    if not isinstance(data, dict):
        raise SpecError(field, f"must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - allowed, key=_key_name)
    if unknown:
        name = _key_name(unknown[0])
        where = f"{field}.{name}" if field != "spec" else name
        raise SpecError(where, f"unknown field (allowed: {', '.join(sorted(allowed))})")
    missing = sorted(required - set(data))
    if missing:
        where = f"{field}.{missing[0]}" if field != "spec" else missing[0]
        raise SpecError(where, "is required")


# ---------------------------------------------------------------- the spec
@dataclass(frozen=True)
class TaskSpec:
    """One task of the prompt: n examples; corr = correlation with the query task,
    a float, or a tuple of d floats (one per coordinate)."""

    n: int
    corr: float | tuple[float, ...]


@dataclass(frozen=True)
class PromptSpec:
    """A validated multitask prompt spec. Build it with `from_dict`; the constructor does not check."""

    d: int
    tasks: tuple[TaskSpec, ...]
    noise: float = 0.1
    delimiter: str = "task"
    task_corr: tuple[tuple[float, ...], ...] | None = None
    feature_condition: float = 1.0

    # ------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, data: Any) -> "PromptSpec":
        _check_keys(data, "spec", {"d", "noise", "delimiter", "tasks", "task_corr", "feature_condition"},
                    {"d", "tasks"})
        d = _integer(data["d"], "d", *D_RANGE)

        noise = _number(data.get("noise", 0.1), "noise")
        if not 0.0 <= noise <= NOISE_MAX:
            raise SpecError("noise", f"must be from 0 to {NOISE_MAX:g}, got {noise:g}")

        delimiter = data.get("delimiter", "task")
        if delimiter not in DELIMITERS:
            raise SpecError("delimiter", f"must be one of {', '.join(DELIMITERS)}, got {_show(delimiter)}")

        condition = _number(data.get("feature_condition", 1.0), "feature_condition")
        if not 1.0 <= condition <= CONDITION_MAX:
            raise SpecError("feature_condition", f"must be from 1 to {CONDITION_MAX:g}, got {condition:g}")
        if d == 1 and condition != 1.0:
            raise SpecError("feature_condition", "must be 1 when d = 1 (one feature has no condition number)")

        raw_tasks = data["tasks"]
        if not isinstance(raw_tasks, list):
            raise SpecError("tasks", f"must be a list of task objects, got {type(raw_tasks).__name__}")
        if not TASKS_RANGE[0] <= len(raw_tasks) <= TASKS_RANGE[1]:
            raise SpecError("tasks", f"must hold from {TASKS_RANGE[0]} to {TASKS_RANGE[1]} tasks, got {len(raw_tasks)}")
        num_tasks = len(raw_tasks)

        task_corr = cls._read_task_corr(data.get("task_corr"), num_tasks)

        tasks = []
        for k, raw in enumerate(raw_tasks):
            field = f"tasks[{k}]"
            _check_keys(raw, field, {"n", "corr"}, {"n"} if task_corr is not None else {"n", "corr"})
            n = _integer(raw["n"], f"{field}.n", *N_RANGE)
            corr = raw.get("corr")
            if isinstance(corr, list):
                if task_corr is not None:
                    raise SpecError(f"{field}.corr", "must be a single number when task_corr is given")
                if len(corr) != d:
                    raise SpecError(f"{field}.corr", f"a per-coordinate list must have d = {d} numbers, got {len(corr)}")
                corr = tuple(_correlation(c, f"{field}.corr[{c_index}]") for c_index, c in enumerate(corr))
            elif corr is None and task_corr is not None:   # absent or null: the matrix's value
                corr = task_corr[k][num_tasks]
            else:
                corr = _correlation(corr, f"{field}.corr")
                if task_corr is not None and abs(corr - task_corr[k][num_tasks]) > SYMMETRY_TOL:
                    raise SpecError(f"{field}.corr", f"is {corr:g} but task_corr says {task_corr[k][num_tasks]:g}; "
                                    "give one or make them agree")
            tasks.append(TaskSpec(n=n, corr=corr))

        spec = cls(d=d, tasks=tuple(tasks), noise=noise, delimiter=delimiter,
                   task_corr=task_corr, feature_condition=condition)
        if spec.num_tokens > MAX_TOKENS:
            raise SpecError("tasks", f"the prompt has {spec.num_tokens} tokens; at most {MAX_TOKENS} are allowed")
        return spec

    @staticmethod
    def _read_task_corr(raw: Any, num_tasks: int) -> tuple[tuple[float, ...], ...] | None:
        if raw is None:
            return None
        size = num_tasks + 1
        if not isinstance(raw, list) or len(raw) != size or not all(isinstance(row, list) and len(row) == size for row in raw):
            raise SpecError("task_corr", f"must be a {size}x{size} matrix (K+1 rows of K+1 numbers, query last)")
        matrix = np.array([[_correlation(v, f"task_corr[{i}][{j}]") for j, v in enumerate(row)]
                           for i, row in enumerate(raw)])
        asymmetry = np.abs(matrix - matrix.T).max()
        if asymmetry > SYMMETRY_TOL:
            raise SpecError("task_corr", f"must be symmetric (largest |C_ij - C_ji| is {asymmetry:.3g})")
        off_diagonal = np.abs(np.diag(matrix) - 1.0).max()
        if off_diagonal > DIAGONAL_TOL:
            raise SpecError("task_corr", "must have ones on the diagonal")
        smallest = np.linalg.eigvalsh(matrix).min()
        if smallest < -PSD_TOL:
            raise SpecError("task_corr", f"must be positive semi-definite (smallest eigenvalue is {smallest:.3g})")
        return tuple(tuple(float(v) for v in row) for row in matrix)

    @classmethod
    def from_json(cls, text: str) -> "PromptSpec":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise SpecError("spec", f"is not valid JSON ({error.msg} at line {error.lineno})") from None
        except RecursionError:
            raise SpecError("spec", "is not valid JSON (nested too deeply)") from None
        except ValueError:   # e.g. an integer over Python's 4300-digit limit
            raise SpecError("spec", "is not valid JSON (a number is too long)") from None
        return cls.from_dict(data)

    def to_dict(self) -> dict:
        return {
            "d": self.d,
            "noise": self.noise,
            "delimiter": self.delimiter,
            "tasks": [{"n": t.n, "corr": list(t.corr) if isinstance(t.corr, tuple) else t.corr} for t in self.tasks],
            "task_corr": [list(row) for row in self.task_corr] if self.task_corr is not None else None,
            "feature_condition": self.feature_condition,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    # ------------------------------------------------------------ derived sizes
    @property
    def num_tasks(self) -> int:
        return len(self.tasks)

    @property
    def n_k(self) -> np.ndarray:
        """(K,) examples per task."""
        return np.array([t.n for t in self.tasks])

    @property
    def num_examples(self) -> int:
        return int(self.n_k.sum())

    @property
    def num_delimiters(self) -> int:
        return 0 if self.delimiter == "none" else self.num_tasks

    @property
    def delimiter_width(self) -> int:
        """Extra token coordinates for delimiter features: K one-hot (task), 1 flag (shared) or 0."""
        return {"task": self.num_tasks, "shared": 1, "none": 0}[self.delimiter]

    @property
    def token_width(self) -> int:
        """D = d (x) + 1 (label slot) + delimiter features."""
        return self.d + 1 + self.delimiter_width

    @property
    def label_index(self) -> int:
        return self.d

    @property
    def num_tokens(self) -> int:
        """T = examples + delimiters + the query."""
        return self.num_examples + self.num_delimiters + 1

    @property
    def per_coordinate(self) -> bool:
        return any(isinstance(t.corr, tuple) for t in self.tasks)

    @property
    def example_task(self) -> np.ndarray:
        """(n,) task index of each in-context example, in prompt order."""
        return np.repeat(np.arange(self.num_tasks), self.n_k)

    # ------------------------------------------------------------ the statistics the theory uses
    def corr_per_coordinate(self) -> np.ndarray:
        """(K, d) correlation of task k with the query task on coordinate c."""
        return np.array([np.broadcast_to(np.asarray(t.corr, dtype=float), (self.d,)) for t in self.tasks])

    def coordinate_corr(self) -> np.ndarray:
        """(d, K+1, K+1): correlation matrix of (beta_1[c], ..., beta_K[c], beta[c]) for each coordinate c.

        With task_corr it is that matrix on every coordinate; otherwise task k is
        beta_k = r_k beta + sqrt(1 - r_k^2) xi_k, so C_jk = r_j r_k off the diagonal and C_kq = r_k.
        """
        size = self.num_tasks + 1
        if self.task_corr is not None:
            return np.broadcast_to(np.array(self.task_corr), (self.d, size, size)).copy()
        r = np.concatenate([self.corr_per_coordinate(), np.ones((1, self.d))], axis=0).T  # (d, K+1)
        matrix = r[:, :, None] * r[:, None, :]
        index = np.arange(size)
        matrix[:, index, index] = 1.0
        return matrix

    def feature_variances(self) -> np.ndarray:
        """(d,) diagonal of Sigma: geometric from largest to smallest with ratio feature_condition, mean 1."""
        if self.d == 1:
            return np.ones(1)
        decay = self.feature_condition ** (-np.arange(self.d) / (self.d - 1))
        return decay * (self.d / decay.sum())


# ---------------------------------------------------------------- presets
def list_presets() -> list[str]:
    return sorted(path.stem for path in PRESET_DIR.glob("*.json"))


def load_preset(name: str) -> dict:
    """The preset's raw JSON: {"title", "description", "spec", "model", "train"}. Looked up by name among
    the preset files, never as a path."""
    if name not in list_presets():
        raise SpecError("preset", f"unknown preset {_show(name)} (choose from: {', '.join(list_presets())})")
    return json.loads((PRESET_DIR / f"{name}.json").read_text())


def preset_spec(name: str) -> PromptSpec:
    return PromptSpec.from_dict(load_preset(name)["spec"])


def default_spec() -> PromptSpec:
    return preset_spec("default")


def format_corr(corr) -> str:
    """A correlation as text: 0.5, or a per-coordinate list as 0.9, 0.9, 0."""
    return ", ".join(f"{c:g}" for c in corr) if isinstance(corr, list) else f"{corr:g}"


SWEEPS = {"examples": "examples per task", "relevance": "relevance of the first task", "order": "task order"}
SWEEP_SIZES = (1, 2, 4, 8, 16, 32, 64)
MAX_ORDERS = 24     # the task orders a sweep shows (4! = 24: every order of up to four tasks)
# How the Gating page trains the models it overlays on a sweep (TrainConfig fields; the rest are the trainer's
# defaults). The overlay draws each model's final risk alone, with no replay, so its run evaluates at its middle
# and end only, and 70 steps leave each of the ten models within 2% of its target (docs/benchmarks.md, the overlay).
OVERLAY_TRAINING = {"steps": 70, "eval_every": 35}
# How the Depth page trains its four models beyond the settings on screen: a live evaluation every 10 steps rather
# than 5. A 4-layer model's evaluation costs about two of its training steps, and evaluations never change what a
# run learns (they read a held-out set of their own), so the models end exactly where they did, sooner; the
# replay of the deepest model's layers has 11 frames instead of 21.
DEPTH_TRAINING = {"eval_every": 10}


def depth_start_order(depths: list[int]) -> list[int]:
    """The order the Depth page starts its models in, as indices into `depths` (ascending layer counts): the two
    shallowest first, so their results show at once, then the others deepest first. Two at a time (LiveRun's
    lanes), the deepest then trains beside the rest and both lanes end together: 1, 2, 4, 3 ends 13-16% sooner
    than 1, 2, 3, 4, as soon as 4, 3, 2, 1 (docs/benchmarks.md)."""
    order = sorted(range(len(depths)), key=depths.__getitem__)
    return order[:2] + order[2:][::-1]


def sweep_specs(base: dict, kind: str) -> tuple[list, list[dict], str]:
    """One setting of a spec dict swept (SWEEPS): the x values (labels for "examples" and "order"), the
    spec dicts in the same order (not yet validated), and the x axis's title.

    examples: every task's n through SWEEP_SIZES; relevance: the first task's corr from -1 to 1 in steps
    of 0.1; order: the tasks permuted (the first MAX_ORDERS orders), labelled by their relevances.
    """
    def with_tasks(tasks: list[dict]) -> dict:
        return {**base, "tasks": tasks}

    tasks = base["tasks"]
    if kind == "examples":
        return ([str(n) for n in SWEEP_SIZES], [with_tasks([{**task, "n": n} for task in tasks]) for n in SWEEP_SIZES],
                "examples per task")
    if kind == "relevance":
        values = [float(r) for r in np.round(np.linspace(-1.0, 1.0, 21), 2)]
        return (values, [with_tasks([{**tasks[0], "corr": r}, *tasks[1:]]) for r in values],
                "relevance of the first task (its correlation with the query task)")
    if kind == "order":
        orders = list(itertools.permutations(range(len(tasks))))[:MAX_ORDERS]
        return ([" → ".join(format_corr(tasks[k]["corr"]) for k in order) for order in orders],
                [with_tasks([tasks[k] for k in order]) for order in orders],
                "task order (relevances in prompt order, the query after the last)")
    raise SpecError("sweep", f"must be one of {', '.join(SWEEPS)}, got {_show(kind)}")
