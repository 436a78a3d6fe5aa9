"""The spec: validation names the field and range; JSON round trips; derived statistics."""
import json

import numpy as np
import pytest

from gla_core.spec import (MAX_TOKENS, PromptSpec, SpecError, default_spec, list_presets, load_preset, preset_spec,
                           sweep_specs)

BASE = {"d": 5, "noise": 0.1, "delimiter": "task",
        "tasks": [{"n": 10, "corr": 0.2}, {"n": 10, "corr": 0.5}, {"n": 10, "corr": 0.9}],
        "task_corr": None, "feature_condition": 1.0}


def with_changes(**changes):
    data = json.loads(json.dumps(BASE))
    data.update(changes)
    return data


@pytest.mark.parametrize("data, field, words", [
    (with_changes(d=0), "d", "from 1 to 64"),
    (with_changes(d=65), "d", "from 1 to 64"),
    (with_changes(d=2.5), "d", "whole number"),
    (with_changes(d=True), "d", "whole number"),
    (with_changes(d="5"), "d", "whole number"),
    (with_changes(noise=-0.1), "noise", "from 0"),
    (with_changes(noise=float("nan")), "noise", "finite"),
    (with_changes(noise=float("inf")), "noise", "finite"),
    (with_changes(delimiter="comma"), "delimiter", "task, shared, none"),
    (with_changes(tasks=[]), "tasks", "from 1 to 8"),
    (with_changes(tasks=[{"n": 1, "corr": 0.5}] * 9), "tasks", "from 1 to 8"),
    (with_changes(tasks=[{"n": 0, "corr": 0.5}]), "tasks[0].n", "from 1 to 256"),
    (with_changes(tasks=[{"n": 257, "corr": 0.5}]), "tasks[0].n", "from 1 to 256"),
    (with_changes(tasks=[{"n": 5, "corr": 1.5}]), "tasks[0].corr", "between -1 and 1"),
    (with_changes(tasks=[{"n": 5, "corr": [0.1, 0.2]}]), "tasks[0].corr", "d = 5"),
    (with_changes(tasks=[{"n": 5, "corr": [0.1, 0.2, 0.3, 2.0, 0.1]}]), "tasks[0].corr[3]", "between -1 and 1"),
    (with_changes(tasks=[{"n": 5}]), "tasks[0].corr", "required"),
    (with_changes(tasks=[{"n": 5, "corr": 0.1, "weight": 2}]), "tasks[0].weight", "unknown field"),
    (with_changes(tasks={"n": 5}), "tasks", "list"),
    (with_changes(colour="red"), "colour", "unknown field"),
    (with_changes(feature_condition=0.5), "feature_condition", "from 1"),
    (with_changes(d=1, tasks=[{"n": 3, "corr": 0.5}], feature_condition=2.0), "feature_condition", "d = 1"),
    (with_changes(d=1, tasks=[{"n": 256, "corr": 0.5}] * 8), "tasks", f"at most {MAX_TOKENS}"),
    (with_changes(task_corr=[[1, 0.5], [0.5, 1]]), "task_corr", "4x4"),
    (with_changes(task_corr=[[1, .9, 0, .9], [.9, 1, 0, 0], [0, 0, 1, .9], [.9, 0, .9, 1]],
                  tasks=[{"n": 2}, {"n": 2}, {"n": 2}]), "task_corr", "positive semi-definite"),
    (with_changes(task_corr=[[1, .5, 0, 0], [.4, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
                  tasks=[{"n": 2}, {"n": 2}, {"n": 2}]), "task_corr", "symmetric"),
    (with_changes(task_corr=[[2, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
                  tasks=[{"n": 2}, {"n": 2}, {"n": 2}]), "task_corr[0][0]", "between -1 and 1"),
    (with_changes(task_corr=[[.5, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
                  tasks=[{"n": 2}, {"n": 2}, {"n": 2}]), "task_corr", "ones on the diagonal"),
    (with_changes(task_corr=[[1, 0, 0, .3], [0, 1, 0, 0], [0, 0, 1, 0], [.3, 0, 0, 1]],
                  tasks=[{"n": 2, "corr": 0.5}, {"n": 2}, {"n": 2}]), "tasks[0].corr", "task_corr says 0.3"),
    ({"tasks": [{"n": 2, "corr": 0.1}]}, "d", "required"),
    ([1, 2], "spec", "JSON object"),
])
def test_invalid_specs_name_the_field(data, field, words):
    with pytest.raises(SpecError) as caught:
        PromptSpec.from_dict(data)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert words in str(caught.value)


def test_bad_json_text_is_a_spec_error():
    with pytest.raises(SpecError, match="not valid JSON"):
        PromptSpec.from_json("{\"d\": 5,")


def test_json_round_trip_keeps_every_field():
    data = with_changes(tasks=[{"n": 3, "corr": [0.1, -0.2, 0.3, 0.4, 1.0]}, {"n": 7, "corr": -0.5}],
                        feature_condition=10.0, delimiter="shared", noise=0.0)
    spec = PromptSpec.from_dict(data)
    assert PromptSpec.from_json(spec.to_json()) == spec
    assert spec.to_dict() == data


def test_optional_fields_take_defaults():
    spec = PromptSpec.from_dict({"d": 3, "tasks": [{"n": 4, "corr": 0.5}]})
    assert (spec.noise, spec.delimiter, spec.task_corr, spec.feature_condition) == (0.1, "task", None, 1.0)


def test_sizes_follow_the_layout():
    spec = default_spec()
    assert spec.num_examples == 30
    assert spec.num_tokens == 30 + 3 + 1
    assert spec.token_width == 5 + 1 + 3
    shared = PromptSpec.from_dict(with_changes(delimiter="shared"))
    assert (shared.num_tokens, shared.token_width) == (34, 7)
    plain = PromptSpec.from_dict(with_changes(delimiter="none"))
    assert (plain.num_tokens, plain.token_width) == (31, 6)


def test_coordinate_corr_matches_the_task_model():
    spec = PromptSpec.from_dict(with_changes(tasks=[{"n": 2, "corr": [0.1, 0.2, 0.3, 0.4, 0.5]},
                                                    {"n": 2, "corr": -0.7}]))
    corr = spec.coordinate_corr()
    assert corr.shape == (5, 3, 3)
    # coordinate 2: r = (0.3, -0.7); corr(beta_1, beta_2) = r_1 r_2, corr(beta_k, beta) = r_k
    np.testing.assert_allclose(corr[2], [[1, 0.3 * -0.7, 0.3], [0.3 * -0.7, 1, -0.7], [0.3, -0.7, 1]])


def test_task_corr_fills_missing_task_correlations():
    matrix = [[1, 0.2, 0.3], [0.2, 1, 0.6], [0.3, 0.6, 1]]
    spec = PromptSpec.from_dict({"d": 2, "tasks": [{"n": 2}, {"n": 3}], "task_corr": matrix})
    assert [t.corr for t in spec.tasks] == [0.3, 0.6]
    np.testing.assert_allclose(spec.coordinate_corr()[1], matrix)


def test_feature_variances_have_the_condition_number_and_mean_one():
    spec = PromptSpec.from_dict(with_changes(feature_condition=100.0))
    variances = spec.feature_variances()
    assert variances.max() / variances.min() == pytest.approx(100.0)
    assert variances.mean() == pytest.approx(1.0)


def test_every_preset_is_a_valid_spec():
    names = list_presets()
    assert "default" in names
    for name in names:
        preset = load_preset(name)
        assert preset_spec(name) == PromptSpec.from_dict(preset["spec"])
        assert preset["title"] and preset["description"]


def test_unknown_preset_lists_the_choices():
    with pytest.raises(SpecError, match="choose from: .*default"):
        preset_spec("nope")


def test_a_sweep_moves_exactly_one_setting_and_labels_each_point():
    base = {"d": 3, "noise": 0.1, "tasks": [{"n": 5, "corr": 0.2}, {"n": 7, "corr": 0.9}, {"n": 3, "corr": [0.5, 0.5, 0]}]}
    x, specs, title = sweep_specs(base, "examples")
    assert x == ["1", "2", "4", "8", "16", "32", "64"] and title == "examples per task"
    assert [[task["n"] for task in spec["tasks"]] for spec in specs] == [[n] * 3 for n in (1, 2, 4, 8, 16, 32, 64)]
    x, specs, _ = sweep_specs(base, "relevance")
    assert len(x) == 21 and x[0] == -1.0 and x[10] == 0.0 and x[-1] == 1.0
    assert all(spec["tasks"][0]["corr"] == r and spec["tasks"][1:] == base["tasks"][1:] for r, spec in zip(x, specs))
    x, specs, _ = sweep_specs(base, "order")
    assert len(specs) == 6 and len({json.dumps(spec["tasks"]) for spec in specs}) == 6
    assert x[0] == "0.2 → 0.9 → 0.5, 0.5, 0" and x[-1] == "0.5, 0.5, 0 → 0.9 → 0.2"
    assert all(spec["d"] == 3 and spec["noise"] == 0.1 for spec in specs)
    with pytest.raises(SpecError, match="sweep"):
        sweep_specs(base, "noise")
