"""Figure builders: plain data in, the right traces out, in the colour-blind-safe palette."""
import numpy as np
import plotly.graph_objects as go
import pytest

from gla_core import figures
from gla_core.spec import PromptSpec, default_spec
from gla_core.theory import landscape_three_tasks, landscape_two_tasks, solve

SPEC = default_spec()
ANALYTIC = solve(SPEC)
HISTORY = [{"step": step, "seconds": step / 100, "train_loss": 3.0 - step / 300, "test_risk": 2.9 - step / 400,
            "cosine": 0.9 + step / 6000} for step in (25, 50, 75, 100)]
RISKS = {"zero": 5.01, "linear_attention": 2.97, "reachable": 2.25, "optimal": 2.25}
OKABE_ITO = {"#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"}


def traces_named(fig: go.Figure, words: str) -> list:
    return [trace for trace in fig.data if trace.name and words in trace.name]


def test_same_gauge_scales_to_one_and_takes_the_target_sign():
    induced = -2.0 * np.array([0.1, 0.5, 1.0])
    assert np.allclose(figures.same_gauge(induced, [0.1, 0.5, 1.0]), [0.1, 0.5, 1.0])
    per_coordinate = np.array([[1.0, -4.0], [2.0, -2.0]])
    assert np.allclose(figures.same_gauge(per_coordinate, np.ones((2, 2))), [[0.5, 1.0], [1.0, 0.5]])


def test_risk_curve_has_every_analytic_line_and_the_trained_risk():
    fig = figures.risk_curve(HISTORY, RISKS, total_steps=600)
    for label, _, _ in figures.ANALYTIC_LINES.values():
        (line,) = traces_named(fig, label)
        assert line.y[0] == line.y[1]                     # horizontal
        assert tuple(line.x) == (0, 600)
    (trained,) = traces_named(fig, "test risk")
    assert list(trained.y) == [row["test_risk"] for row in HISTORY]
    assert figures.risk_curve([], RISKS).data, "before training the analytic lines still show"


def test_token_weights_colours_bars_by_task_and_marks_delimiters():
    target = ANALYTIC["scalar_gla"]["omega"]
    fig = figures.token_weights(SPEC.example_task, {"target": target, "optimal": ANALYTIC["optimal"]["omega"]},
                                induced=-0.5 * np.asarray(target))
    bars = [trace for trace in fig.data if isinstance(trace, go.Bar)]
    assert [bar.marker.color for bar in bars] == [figures.task_colour(k) for k in range(3)]
    assert np.allclose(np.concatenate([bar.y for bar in bars]), target)   # same gauge as the target
    assert len(traces_named(fig, "target")) == 1 and len(traces_named(fig, "optimal")) == 1
    assert len(fig.layout.shapes) == SPEC.num_tasks - 1                    # a line between tasks


def test_token_weights_before_training_shows_the_target():
    target = ANALYTIC["scalar_gla"]["omega"]
    fig = figures.token_weights(SPEC.example_task, {"target": target})
    assert np.allclose(np.concatenate([t.y for t in fig.data if isinstance(t, go.Bar)]), target)


def test_vector_weights_are_heatmaps_per_coordinate():
    spec = PromptSpec.from_dict({"d": 2, "tasks": [{"n": 3, "corr": [0.9, 0.0]}, {"n": 3, "corr": [0.5, 0.9]}]})
    target = np.asarray(solve(spec)["vector_gla"]["omega"])
    fig = figures.token_weights(spec.example_task, {"target": target}, induced=target * [2.0, 3.0])
    heatmaps = [trace for trace in fig.data if isinstance(trace, go.Heatmap)]
    assert len(heatmaps) == 2
    assert np.allclose(np.asarray(heatmaps[0].z), target.T)


def test_gate_values_scalar_and_vector():
    labels = [f"t{i}" for i in range(5)]
    scalar = figures.gate_values([[0.9] * 5, [0.5] * 5], labels)
    assert np.asarray(scalar.data[0].z).shape == (2, 5)
    vector = figures.gate_values([np.full((5, 3), 0.7)], labels, ["x1", "x2", "y"])
    assert list(vector.data[0].y) == ["x1", "x2", "y"]


def test_cosine_depth_and_layer_charts():
    assert list(figures.cosine_curve(HISTORY).data[0].y) == [row["cosine"] for row in HISTORY]
    depth = figures.depth_chart([1, 2, 3, 4], [2.4, 2.1, None, None], RISKS)
    (trained,) = traces_named(depth, "trained")
    assert list(trained.x) == [1, 2]
    layers = figures.layer_weights([np.ones(30), np.ones((30, 5))], SPEC.example_task)
    assert len([t for t in layers.data if isinstance(t, go.Bar)]) == 2 * SPEC.num_tasks


def test_sweep_chart_shades_where_gating_wins_and_accepts_labels():
    risks = {"optimal": [1.0, 1.0, 1.0], "scalar_gla": [1.0, 1.1, 1.3], "linear_attention": [1.3, 1.3, 1.3]}
    fig = figures.sweep_chart([1, 2, 4], risks, "n", gating_wins=[True, True, False],
                              trained={"scalar_gla": [(2, 1.12)]})
    assert len(fig.layout.shapes) == 1
    assert fig.layout.shapes[0].x0 < 1 < 2 < fig.layout.shapes[0].x1 < 4
    labelled = figures.sweep_chart(["a → b", "b → a"], {"optimal": [1, 2]}, "order",
                                   trained={"scalar_gla": [("b → a", 2)]})
    assert list(labelled.layout.xaxis.ticktext) == ["a → b", "b → a"]
    assert list(labelled.data[-1].x) == [1]


def test_landscape_figures_mark_the_optimum_and_the_cone():
    two = PromptSpec.from_dict({"d": 3, "tasks": [{"n": 5, "corr": 0.3}, {"n": 5, "corr": 0.8}]})
    data = landscape_two_tasks(two, num_angles=91, grid_size=21)
    angle = figures.landscape_angle(data["angle"]["theta"], data["angle"]["risk"], data["points"],
                                    data["monotone_cone"]["theta"], data["zero_risk"])
    (optimum,) = traces_named(angle, "optimal")
    assert optimum.x[0] == pytest.approx(np.degrees(data["points"]["optimal"]["theta"]))
    plane = figures.landscape_plane(data["grid"]["w"], data["grid"]["risk"], data["points"],
                                    data["monotone_cone"]["theta"])
    assert traces_named(plane, "reachable") and isinstance(plane.data[0], go.Heatmap)
    three = landscape_three_tasks(SPEC, resolution=10)
    simplex = figures.landscape_simplex(three["simplex"]["barycentric"], three["simplex"]["risk"], three["points"],
                                        three["monotone_cone"])
    assert len(simplex.data[0].a) == len(three["simplex"]["risk"])
    assert traces_named(simplex, "optimal")


def test_recurrence_and_matrix_figures():
    fig = figures.recurrence_step(["T1·1", "T1·2", "D1", "Q"], [1.0, 1.0, 0.3, 1.0], [0.3, 0.3, 1.0, 0.0], position=2)
    assert list(fig.data[0].marker.color) == [figures.SKY, figures.SKY, figures.BLACK, "#D9D9D9"]
    matrix = figures.matrix_heatmap(np.eye(3) * 0.2, "P*", ["x1", "x2", "x3"])
    assert list(matrix.data[0].x) == ["x1", "x2", "x3"]


def test_series_colours_come_from_the_okabe_ito_palette():
    fig = figures.risk_curve(HISTORY, RISKS)
    colours = {trace.line.color for trace in fig.data}
    assert colours <= OKABE_ITO | {figures.GREY}
    assert set(figures.TASK_COLOURS) == OKABE_ITO
