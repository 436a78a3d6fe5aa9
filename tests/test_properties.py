"""Property-based tests (hypothesis) of the spec parser, the solvers and the command line.

- Any valid spec parses, round-trips through JSON and gives finite theory (`theory.solve`) whose risks
  are ordered as the theory says (optimal <= reachable <= linear attention <= zero).
- Any invalid spec - a wrong type, an out-of-range number, NaN or infinity, a huge integer, a matrix
  that is not a correlation matrix, a prompt over the size cap, a missing or unknown field - raises
  exactly one `SpecError` that names the offending field, on one short line; never another exception.
- Arbitrary text and arbitrary JSON given to `PromptSpec.from_json` either parse or raise `SpecError`.
- The command line turns the same invalid specs into exit code 2 and one line naming the field
  (in-process for many cases, and a few real processes).

The number of examples per property is set by the hypothesis profile: "ci" (default) or "thorough"
(HYPOTHESIS_PROFILE=thorough, ten times as many).
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from gla_core import cli
from gla_core.spec import (CONDITION_MAX, D_RANGE, DELIMITERS, MAX_TOKENS, N_RANGE, NOISE_MAX, TASKS_RANGE,
                           PromptSpec, SpecError)
from gla_core.theory import solve

ROOT = Path(__file__).resolve().parent.parent
MESSAGE_MAX_CHARS = 400   # an error message is one readable line, whatever the input held

settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                 HealthCheck.function_scoped_fixture])
settings.register_profile("thorough", max_examples=600, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                 HealthCheck.function_scoped_fixture])
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)
SCALE = 10 if PROFILE == "thorough" else 1


# ================================================================ valid specs
finite_corr = st.one_of(st.sampled_from([-1.0, -0.5, 0.0, 0.5, 1.0, 1, 0, -1]),
                        st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False))


@st.composite
def correlation_matrices(draw, size: int) -> list[list[float]]:
    """A (size x size) correlation matrix: the Gram matrix of unit vectors (PSD, ones on the diagonal)."""
    rank = draw(st.integers(1, size))
    raw = np.array(draw(st.lists(st.lists(st.floats(-3, 3, allow_nan=False), min_size=rank, max_size=rank),
                                 min_size=size, max_size=size)))
    norms = np.linalg.norm(raw, axis=1)
    assume(norms.min() > 1e-3)
    unit = raw / norms[:, None]
    matrix = np.clip(unit @ unit.T, -1.0, 1.0)
    matrix = (matrix + matrix.T) / 2
    np.fill_diagonal(matrix, 1.0)
    return matrix.tolist()


@st.composite
def valid_spec_dicts(draw, max_d: int = D_RANGE[1], max_tokens: int = MAX_TOKENS) -> dict:
    d = draw(st.one_of(st.integers(1, 8), st.integers(*D_RANGE).filter(lambda v: v <= max_d)))
    num_tasks = draw(st.integers(*TASKS_RANGE))
    delimiter = draw(st.sampled_from(DELIMITERS))
    budget = max_tokens - 1 - (0 if delimiter == "none" else num_tasks)
    sizes = []
    for k in range(num_tasks):
        room = budget - (num_tasks - k - 1)          # leave at least one example for each later task
        sizes.append(draw(st.one_of(st.integers(1, min(16, room)), st.integers(1, min(N_RANGE[1], room)))))
        budget -= sizes[-1]
    mode = draw(st.sampled_from(["scalar", "per_coordinate", "mixed", "matrix"]))
    data: dict = {"d": d, "delimiter": delimiter}
    if mode == "matrix":
        matrix = draw(correlation_matrices(num_tasks + 1))
        data["task_corr"] = matrix
        # a task may repeat its correlation with the query (it must then agree with the matrix)
        data["tasks"] = [{"n": n, "corr": matrix[k][num_tasks]} if draw(st.booleans()) else {"n": n}
                         for k, n in enumerate(sizes)]
    else:
        tasks = []
        for n in sizes:
            per_coordinate = mode == "per_coordinate" or (mode == "mixed" and draw(st.booleans()))
            corr = draw(st.lists(finite_corr, min_size=d, max_size=d)) if per_coordinate else draw(finite_corr)
            tasks.append({"n": n, "corr": corr})
        data["tasks"] = tasks
        if draw(st.booleans()):
            data["task_corr"] = None
    if draw(st.booleans()):
        data["noise"] = draw(st.one_of(st.sampled_from([0, 0.0, NOISE_MAX]),
                                       st.floats(0, NOISE_MAX, allow_nan=False)))
    if d > 1 and draw(st.booleans()):
        data["feature_condition"] = draw(st.one_of(st.sampled_from([1, 1.0, CONDITION_MAX]),
                                                   st.floats(1.0, CONDITION_MAX, allow_nan=False)))
    if draw(st.booleans()):   # whole numbers may come as floats (JSON writers do that)
        data["d"] = float(d)
    return data


def numbers_in(value):
    """Every number in nested JSON-ready data."""
    if isinstance(value, dict):
        for item in value.values():
            yield from numbers_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from numbers_in(item)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


@given(valid_spec_dicts())
@example({"d": 1, "noise": 0, "tasks": [{"n": 1, "corr": 0}]})                      # smallest, noiseless, uncorrelated
@example({"d": 64, "delimiter": "none", "tasks": [{"n": 256, "corr": 1.0}] * 7 + [{"n": 255, "corr": -1.0}]})
@example({"d": 3, "noise": 100, "feature_condition": 1e6, "tasks": [{"n": 2, "corr": [1, -1, 0]}]})
def test_valid_specs_parse_round_trip_and_solve_finitely(data):
    spec = PromptSpec.from_dict(data)
    assert spec.num_tokens <= MAX_TOKENS
    assert PromptSpec.from_json(spec.to_json()) == spec
    assert PromptSpec.from_dict(json.loads(json.dumps(data))) == spec

    analytic = solve(spec)
    assert all(math.isfinite(number) for number in numbers_in(analytic)), "solve() gave NaN or infinity"
    risks = {name: analytic[name]["risk"] for name in
             ("zero", "linear_attention", "scalar_gla", "vector_gla", "optimal", "optimal_vector")}
    zero = risks["zero"]
    tolerance = 1e-6 * zero + 1e-12
    assert zero == pytest.approx(float(spec.feature_variances().sum() + spec.noise ** 2))
    for name, value in risks.items():
        assert -tolerance <= value <= zero + tolerance, (name, value, zero)
    # more freedom never costs: optimal <= reachable by gates <= linear attention <= predicting 0
    assert risks["optimal"] <= risks["scalar_gla"] + tolerance
    assert risks["scalar_gla"] <= risks["linear_attention"] + tolerance
    assert risks["vector_gla"] <= risks["scalar_gla"] + tolerance
    assert risks["optimal_vector"] <= risks["optimal"] + tolerance
    n, d = spec.num_examples, spec.d
    assert np.shape(analytic["optimal"]["omega"]) == (n,) and np.shape(analytic["optimal"]["P"]) == (d, d)


# ================================================================ invalid specs
# Each mutation breaks one field of a valid spec and says which field the error must name.
BAD_TYPES = [None, "5", "", [], {}, True, [1, 2], {"x": 1}]
NON_FINITE = [math.nan, math.inf, -math.inf]
HUGE = [10 ** 30, -(10 ** 30), 10 ** 400, 10 ** 5000, 1e308]


def _copy(data: dict) -> dict:
    return json.loads(json.dumps(data, allow_nan=True))


@st.composite
def invalid_spec_cases(draw) -> tuple[object, str]:
    """(invalid input, the field its SpecError must name)."""
    base = draw(valid_spec_dicts(max_d=8, max_tokens=256))
    data = _copy(base)
    num_tasks, d = len(data["tasks"]), int(data["d"])
    has_matrix = data.get("task_corr") is not None
    kind = draw(st.sampled_from(["d", "noise", "delimiter", "condition", "tasks", "task_item", "n", "corr",
                                 "corr_list", "matrix_entry", "matrix_shape", "matrix_psd", "matrix_asym",
                                 "matrix_diag", "too_many_tokens", "missing", "unknown_top", "unknown_task",
                                 "not_an_object", "d1_condition"]))
    k = draw(st.integers(0, num_tasks - 1))
    if kind == "d":
        data["d"] = draw(st.sampled_from(BAD_TYPES + NON_FINITE + HUGE + [0, -1, D_RANGE[1] + 1, 2.5]))
        return data, "d"
    if kind == "noise":
        data["noise"] = draw(st.one_of(st.sampled_from([b for b in BAD_TYPES if b is not None] + NON_FINITE + HUGE),
                                       st.floats(max_value=-1e-9, allow_nan=False, allow_infinity=False),
                                       st.floats(min_value=NOISE_MAX + 1e-6, allow_nan=False, allow_infinity=False)))
        return data, "noise"
    if kind == "delimiter":
        data["delimiter"] = draw(st.one_of(st.sampled_from([1, [], {}, True, "TASK", "", "task "]),
                                           st.text(max_size=200).filter(lambda text: text not in DELIMITERS)))
        return data, "delimiter"
    if kind == "condition":
        data["feature_condition"] = draw(st.one_of(
            st.sampled_from([b for b in BAD_TYPES if b is not None] + NON_FINITE + HUGE + [0, 0.999, -5]),
            st.floats(min_value=CONDITION_MAX * 1.000001, allow_infinity=False)))
        return data, "feature_condition"
    if kind == "d1_condition":
        data = {"d": 1, "feature_condition": draw(st.floats(1.0001, CONDITION_MAX)),
                "tasks": [{"n": task["n"], "corr": 0.5} for task in data["tasks"]], "delimiter": data["delimiter"]}
        return data, "feature_condition"
    if kind == "tasks":
        data["tasks"] = draw(st.sampled_from([None, {}, "tasks", 3, [], [{"n": 1, "corr": 0.1}] * (TASKS_RANGE[1] + 1)]))
        data.pop("task_corr", None)
        return data, "tasks"
    if kind == "task_item":
        data["tasks"][k] = draw(st.sampled_from([None, 3, "n", [], [1, 0.5], True]))
        return data, f"tasks[{k}]"
    if kind == "n":
        data["tasks"][k]["n"] = draw(st.sampled_from(BAD_TYPES + NON_FINITE + HUGE + [0, -3, N_RANGE[1] + 1, 1.5]))
        return data, f"tasks[{k}].n"
    if kind == "corr":
        if has_matrix:   # a scalar that disagrees with the matrix, or a list where the matrix rules
            data["tasks"][k]["corr"] = draw(st.sampled_from([[0.1] * d, "0.5", None, True]))
            if data["tasks"][k]["corr"] is None:   # None means "from the matrix": allowed, so break it differently
                data["tasks"][k]["corr"] = {}
            return data, f"tasks[{k}].corr"
        data["tasks"][k]["corr"] = draw(st.one_of(
            st.sampled_from(["0.5", None, {}, True, [[0.5]] * d, [0.1] * (d + 1)] + NON_FINITE + HUGE),
            st.floats(min_value=1.0000001, allow_infinity=False), st.floats(max_value=-1.0000001, allow_infinity=False)))
        if isinstance(data["tasks"][k]["corr"], list) and data["tasks"][k]["corr"] and isinstance(data["tasks"][k]["corr"][0], list):
            return data, f"tasks[{k}].corr[0]"
        return data, f"tasks[{k}].corr"
    if kind == "corr_list":
        if has_matrix:
            return _copy(base) | {"d": 0}, "d"
        c = draw(st.integers(0, d - 1))
        values = [0.1] * d
        values[c] = draw(st.sampled_from(["x", None, [], 1.5, -2, True] + NON_FINITE + HUGE))
        data["tasks"][k]["corr"] = values
        return data, f"tasks[{k}].corr[{c}]"
    size = num_tasks + 1
    if kind.startswith("matrix"):
        for task in data["tasks"]:
            task.pop("corr", None)
        matrix = draw(correlation_matrices(size))
        if kind == "matrix_entry":
            i, j = draw(st.integers(0, size - 1)), draw(st.integers(0, size - 1))
            matrix[i][j] = draw(st.sampled_from(["0", None, [], 1.5, -7, True] + NON_FINITE + HUGE))
            data["task_corr"] = matrix
            return data, f"task_corr[{i}][{j}]"
        if kind == "matrix_shape":
            data["task_corr"] = draw(st.sampled_from([
                "[[1]]", 1, {}, [], matrix[:-1], [row[:-1] for row in matrix], matrix + [matrix[0]],
                [matrix[0]] + [1.0] * (size - 1)]))
            return data, "task_corr"
        if kind == "matrix_psd":
            # a symmetric matrix with unit diagonal and entries in [-1, 1] that is not PSD
            if size == 2:
                return _copy(base) | {"d": 0}, "d"
            raw = np.array(draw(st.lists(st.lists(st.floats(-1, 1, allow_nan=False), min_size=size, max_size=size),
                                         min_size=size, max_size=size)))
            bad = np.triu(raw, 1) + np.triu(raw, 1).T + np.eye(size)
            assume(np.linalg.eigvalsh(bad).min() < -1e-6)
            data["task_corr"] = bad.tolist()
            return data, "task_corr"
        if kind == "matrix_asym":
            i, j = draw(st.integers(0, size - 1)), draw(st.integers(0, size - 1))
            assume(i != j)
            matrix[i][j] = matrix[j][i] - 0.5 if matrix[j][i] > 0 else matrix[j][i] + 0.5
            data["task_corr"] = matrix
            return data, "task_corr"
        i = draw(st.integers(0, size - 1))
        matrix[i][i] = draw(st.sampled_from([0.0, 0.5, -1.0, 0.99]))
        data["task_corr"] = matrix
        return data, "task_corr"
    if kind == "too_many_tokens":
        data = {"d": 1, "delimiter": "none", "tasks": [{"n": N_RANGE[1], "corr": 0.1}] * TASKS_RANGE[1]}
        return data, "tasks"
    if kind == "missing":
        if draw(st.booleans()):
            name = draw(st.sampled_from(["d", "tasks"]))
            data.pop(name)
            return data, name
        if has_matrix or draw(st.booleans()):
            data["tasks"][k].pop("n")
            return data, f"tasks[{k}].n"
        data["tasks"][k].pop("corr")
        return data, f"tasks[{k}].corr"
    if kind in ("unknown_top", "unknown_task"):
        allowed = {"d", "noise", "delimiter", "tasks", "task_corr", "feature_condition"} if kind == "unknown_top" else {"n", "corr"}
        name = draw(st.one_of(st.sampled_from(["D", "Tasks", "weight", "__class__", "eval", "d ", "x\ny", "x" * 500]),
                              st.text(min_size=1, max_size=30)).filter(lambda text: text not in allowed))
        target = data if kind == "unknown_top" else data["tasks"][k]
        target[name] = draw(st.sampled_from([1, None, "x"]))
        prefix = "" if kind == "unknown_top" else f"tasks[{k}]."
        return data, prefix + name
    # not_an_object
    return draw(st.sampled_from([None, [], [data], "spec", 5, True, 1.5])), "spec"


def check_spec_error(error: SpecError, field: str) -> None:
    message = str(error)
    assert "\n" not in message and "\r" not in message, f"not one line: {message!r}"
    assert len(message) <= MESSAGE_MAX_CHARS, f"{len(message)} chars: {message[:200]}..."
    if field.isprintable() and len(field) <= 40:
        assert error.field == field, f"named {error.field!r}, expected {field!r}: {message}"
        assert message.startswith(f"{field}: "), message
    else:   # an odd unknown key is named in a printable, shortened form
        assert "unknown field" in message and error.field.isprintable(), message


@given(invalid_spec_cases())
@example(({"d": 5, "tasks": [{"n": 3, "corr": 10 ** 400}]}, "tasks[0].corr"))   # found: OverflowError
@example(({"d": 5, "noise": 10 ** 400, "tasks": [{"n": 3, "corr": 0.1}]}, "noise"))
@example(({"d": 10 ** 5000, "tasks": [{"n": 3, "corr": 0.1}]}, "d"))            # found: ValueError (int -> str)
@example(({"d": 5, "tasks": [{"n": 3, "corr": None}]}, "tasks[0].corr"))         # found: TypeError
@example(({"d": 5, "tasks": [{"n": 3, "corr": 0.1}], 1: "x", "y": 2}, "1"))        # found: TypeError (sorting keys)
def test_invalid_specs_raise_one_spec_error_naming_the_field(case):
    data, field = case
    with pytest.raises(SpecError) as caught:
        PromptSpec.from_dict(data)
    check_spec_error(caught.value, field)


# ================================================================ text and JSON in
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(
        st.sampled_from(["d", "noise", "delimiter", "tasks", "task_corr", "feature_condition", "n", "corr", "x"])
        | st.text(max_size=8), children, max_size=6),
    max_leaves=40)


@given(st.one_of(st.text(max_size=300), json_values.map(lambda value: json.dumps(value, allow_nan=True)),
                 st.binary(max_size=200).map(lambda raw: raw.decode("latin-1"))))
@example("[" * 100_000 + "]" * 100_000)                                 # found: RecursionError
@example('{"d": ' + "[" * 5000 + "]" * 5000 + ', "tasks": []}')
@example('{"d": 5, "tasks": [{"n": 1, "corr": ' + "9" * 5000 + "}]}")    # found: ValueError (int digits limit)
@example('{"d": NaN, "tasks": [{"n": 1, "corr": Infinity}]}')
@example('{"d": 5, "tasks": [{"n": 1, "corr": 1e999}]}')
@example('{"d": 5, "d": 6, "tasks": [{"n": 1, "corr": 0.5}]}')
@example("\ufeff{}")
def test_any_text_parses_or_raises_spec_error(text):
    try:
        spec = PromptSpec.from_json(text)
    except SpecError as error:
        message = str(error)
        assert "\n" not in message and len(message) <= MESSAGE_MAX_CHARS, message[:300]
        assert error.field
    else:
        assert PromptSpec.from_json(spec.to_json()) == spec


# ================================================================ the command line
def _cli_in_process(capsys, args: list[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = cli.main(args)
    except SystemExit as stop:   # argparse usage errors exit through _Parser.error
        code = stop.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _spec_file(tmp_path: Path, data, index: int) -> Path:
    """Write `data` as JSON, also integers over Python's default 4300-digit str limit (hostile files hold them)."""
    path = tmp_path / f"spec_{index}.json"
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        path.write_text(json.dumps(data, allow_nan=True))
    finally:
        sys.set_int_max_str_digits(limit)
    return path


@settings(max_examples=30 * SCALE)
@given(case=invalid_spec_cases())
def test_cli_solve_rejects_invalid_specs_with_exit_2_and_one_line(case, tmp_path_factory, capsys):
    data, field = case
    path = _spec_file(tmp_path_factory.mktemp("cli"), data, 0)
    code, out, err = _cli_in_process(capsys, ["solve", str(path)])
    assert code == 2, (code, out[:200], err[:500])
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err[:500]
    assert lines[0].startswith("python -m gla_core: error: ")
    if field.isprintable() and len(field) <= 40 and field != "spec":
        assert f"{field}: " in lines[0], (field, lines[0])


@settings(max_examples=15 * SCALE)
@given(data=valid_spec_dicts(max_d=6, max_tokens=200))
def test_cli_solve_accepts_valid_specs(data, tmp_path_factory, capsys):
    path = _spec_file(tmp_path_factory.mktemp("cli"), data, 0)
    code, out, err = _cli_in_process(capsys, ["solve", str(path)])
    assert code == 0, err
    analytic = json.loads(out)
    assert all(math.isfinite(number) for number in numbers_in(analytic))


# A few real processes (each starts Python and imports torch): the exit code and stderr as a script sees them.
CLI_PROCESS_CASES = [
    ({"d": 5, "tasks": [{"n": 3, "corr": 10 ** 400}]}, "tasks[0].corr"),
    ({"d": 3, "tasks": [{"n": 2}, {"n": 2}], "task_corr": [[1, .9, -.9], [.9, 1, .9], [-.9, .9, 1]]}, "task_corr"),
    ({"d": 3, "noise": "loud", "tasks": [{"n": 2, "corr": 0.5}]}, "noise"),
    ("[" * 50_000, "spec"),
]


@pytest.mark.parametrize("data, field", CLI_PROCESS_CASES, ids=["huge-int", "not-psd", "wrong-type", "deep-json"])
def test_cli_process_exit_2_one_line(data, field, tmp_path: Path):
    path = tmp_path / "spec.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    result = subprocess.run([sys.executable, "-m", "gla_core", "solve", str(path)], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    assert f"error: {field}: " in lines[0], lines[0]
    assert result.stdout == ""
