"""Figure builders: plain data in, the right traces out, in the colour-blind-safe palette."""
import numpy as np
import plotly.graph_objects as go
import pytest
from plotly.subplots import make_subplots

from gla_core import figures
from gla_core.spec import PromptSpec, default_spec
from gla_core.theory import landscape_three_tasks, landscape_two_tasks, solve

SPEC = default_spec()
ANALYTIC = solve(SPEC)
HISTORY = [{"step": step, "seconds": step / 100, "train_loss": 3.0 - step / 300, "test_risk": 2.9 - step / 400,
            "cosine": 0.9 + step / 6000} for step in (25, 50, 75, 100)]
RISKS = {"zero": 5.01, "linear_attention": 2.97, "scalar_gla": 2.25, "optimal": 2.25}
OKABE_ITO = {"#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"}


def traces_named(fig: go.Figure, words: str) -> list:
    return [trace for trace in fig.data if trace.name and words in trace.name]


def test_same_gauge_scales_to_one_and_takes_the_target_sign():
    induced = -2.0 * np.array([0.1, 0.5, 1.0])
    assert np.allclose(figures.same_gauge(induced, [0.1, 0.5, 1.0]), [0.1, 0.5, 1.0])
    per_coordinate = np.array([[1.0, -4.0], [2.0, -2.0]])
    assert np.allclose(figures.same_gauge(per_coordinate, np.ones((2, 2))), [[0.5, 1.0], [1.0, 0.5]])


def test_the_replay_draws_every_analytic_risk_line_and_the_trained_risk():
    frames = [{"step": row["step"], "test_risk": row["test_risk"], "test_risk_se": 0.01, "cosine": row["cosine"],
               "induced_weights": [np.ones(SPEC.num_examples)], "gates": [None]} for row in HISTORY]
    fig = figures.training_replay(SPEC.example_task, {"scalar_gla": ANALYTIC["scalar_gla"]["omega"]}, frames,
                                  RISKS, total_steps=600)
    for key in RISKS:
        (line,) = traces_named(fig, figures.QUANTITIES[key].label + ":")
        assert line.y[0] == line.y[1] == RISKS[key]       # horizontal, at its risk
        assert tuple(line.x) == (0, 600)
    (trained,) = traces_named(fig, "test risk")
    assert list(trained.y) == [row["test_risk"] for row in HISTORY]
    assert list(trained.error_y.array) == [0.01] * len(HISTORY)


def test_token_weights_colours_bars_by_task_and_marks_delimiters():
    target = ANALYTIC["scalar_gla"]["omega"]
    fig = figures.token_weights(SPEC.example_task, {"scalar_gla": target, "optimal": ANALYTIC["optimal"]["omega"]})
    bars = [trace for trace in fig.data if isinstance(trace, go.Bar)]
    assert [bar.marker.color for bar in bars] == [figures.task_colour(k) for k in range(3)]
    assert np.allclose(np.concatenate([bar.y for bar in bars]), target)
    assert len(traces_named(fig, "best scalar-gated GLA ω")) == 1 and len(traces_named(fig, "optimal WPGD ω")) == 1
    assert len(fig.layout.shapes) == SPEC.num_tasks - 1                    # a line between tasks


def test_a_grid_from_the_cache_is_make_subplots_own_and_each_copy_is_its_own():
    options = {"vertical_spacing": 0.12, "row_heights": [0.52, 0.3, 0.18], "subplot_titles": ["a", "b", "c"]}
    made = make_subplots(rows=3, cols=1, **options)
    first = figures._subplots(3, **{key: tuple(value) if isinstance(value, list) else value
                                    for key, value in options.items()})
    assert first.to_dict() == made.to_dict()
    first.add_trace(go.Bar(x=[1], y=[1]), row=3, col=1)       # the copy knows its subplots
    assert first.data[0].xaxis == "x3" and first.data[0].yaxis == "y3"
    first.update_layout(title={"text": "changed"})
    first.update_yaxes(range=[0, 9], row=1, col=1)
    second = figures._subplots(3, vertical_spacing=0.12, row_heights=(0.52, 0.3, 0.18), subplot_titles=("a", "b", "c"))
    assert second.to_dict() == made.to_dict()                  # what the first copy changed stays in it


def test_setting_layout_parts_directly_means_what_update_layout_means():
    changes = {"legend": {"y": -0.3}, "margin": {"t": 110}, "height": 500, "title": {"text": "new", "x": 0.0},
               "meta": {"replay": "a"}, "bargap": 0.15}
    for start in ({}, {"legend": {"y": -0.1, "x": 0.0}, "margin": {"l": 60, "t": 50}, "height": 360}):
        by_plotly, directly = go.Figure(layout=start), go.Figure(layout=start)
        by_plotly.update_layout(**changes)
        figures._update(directly.layout, changes)
        assert directly.to_dict() == by_plotly.to_dict()
    axis_by_plotly, axis_directly = figures._subplots(2), figures._subplots(2)
    axis_by_plotly.update_yaxes(range=[0, 2], title_text="risk", row=2, col=1)
    figures._update(axis_directly.get_subplot(2, 1).yaxis, {"range": [0, 2], "title": {"text": "risk"}})
    assert axis_directly.to_dict() == axis_by_plotly.to_dict()


def test_delimiter_lines_cross_their_own_subplot_between_tasks():
    task = SPEC.example_task
    boundaries = [index + 0.5 for index in range(1, SPEC.num_examples) if task[index] != task[index - 1]]
    layers = figures.layer_weights([[np.ones(30), np.ones(30)]], SPEC.example_task)
    lines = [(shape.xref, shape.yref, shape.x0, shape.x1, shape.y0, shape.y1) for shape in layers.layout.shapes]
    assert lines == [(x_ref, f"{y_ref} domain", at, at, 0, 1) for x_ref, y_ref in (("x", "y"), ("x2", "y2"))
                     for at in boundaries]
    assert all(shape.line.dash == "dot" and shape.line.color == figures.GREY for shape in layers.layout.shapes)


def frame(step: int, weights, risk: float = 2.5, cosine: float = 0.9) -> dict:
    return {"step": step, "test_risk": risk, "test_risk_se": 0.01, "cosine": cosine, "induced_weights": [weights],
            "gates": [None]}


def test_the_replay_starts_untrained_ends_at_the_final_weights_and_moves_the_bars():
    target = np.asarray(ANALYTIC["scalar_gla"]["omega"])
    untrained = np.ones(SPEC.num_examples)
    frames = [frame(0, untrained, 3.0, 0.8), frame(50, (untrained + target) / 2, 2.6), frame(100, -2.0 * target, 2.3)]
    fig = figures.training_replay(SPEC.example_task, {"scalar_gla": target}, frames, RISKS, 100)
    assert [f.name for f in fig.frames] == ["0", "50", "100"]
    bars = lambda data: np.concatenate([trace.y for trace in data if isinstance(trace, go.Bar)])  # noqa: E731
    assert np.allclose(bars(fig.frames[0].data), 1.0)                 # untrained: equal weights
    assert np.allclose(bars(fig.frames[-1].data), target)             # final, in the target's gauge and sign
    assert np.allclose(bars(fig.data), target)                        # what shows before Play: the end
    risk_marker = fig.frames[1].data[-2]
    assert (risk_marker.x[0], risk_marker.y[0]) == (50, 2.6)          # the risk chart circles the step on screen
    assert [step.label for step in fig.layout.sliders[0].steps] == ["0", "50", "100"]
    assert {button.label for button in fig.layout.updatemenus[0].buttons} == {"▶ Play", "❚❚ Pause"}
    live = figures.training_replay(SPEC.example_task, {"scalar_gla": target}, frames, RISKS, 100, animate=False)
    assert not live.frames and not live.layout.sliders


def test_hiding_the_theory_leaves_out_every_analytic_marker_line_and_the_cosine():
    target = np.asarray(ANALYTIC["scalar_gla"]["omega"])
    frames = [frame(0, np.ones(SPEC.num_examples)), frame(10, target)]
    shown = figures.training_replay(SPEC.example_task, {"scalar_gla": target}, frames, RISKS, 10)
    hidden = figures.training_replay(SPEC.example_task, {"scalar_gla": target}, frames, RISKS, 10, show_theory=False)
    labels = [quantity.label for key, quantity in figures.QUANTITIES.items() if key != "trained"]
    assert any(traces_named(shown, label) for label in labels)
    assert not any(traces_named(hidden, label) for label in labels)
    assert not traces_named(hidden, "cosine") and "cosine" not in hidden.layout.title.text
    assert all(isinstance(trace, go.Bar) or trace.xaxis == "x2" for trace in hidden.data)


def test_vector_weights_replay_as_a_heatmap_per_coordinate():
    spec = PromptSpec.from_dict({"d": 2, "tasks": [{"n": 3, "corr": [0.9, 0.0]}, {"n": 3, "corr": [0.5, 0.9]}]})
    target = np.asarray(solve(spec)["vector_gla"]["omega"])
    frames = [frame(0, np.ones((6, 2))), frame(10, target * [2.0, 3.0])]
    fig = figures.training_replay(spec.example_task, {"vector_gla": target}, frames, RISKS, 10)
    (heatmap,) = [trace for trace in fig.data if isinstance(trace, go.Heatmap)]
    assert np.allclose(np.asarray(heatmap.z), target.T)
    assert np.allclose(np.asarray(fig.frames[0].data[0].z), 1.0)
    maps = figures.weight_maps(spec.example_task, {"vector_gla": target})
    assert np.allclose(np.asarray(maps.data[0].z), target.T) and maps.data[0].name == "best vector-gated GLA"


def test_every_figure_names_and_styles_its_quantities_from_the_one_vocabulary():
    vocabulary = {(q.label, q.colour) for q in figures.QUANTITIES.values()}
    sweep = figures.sweep_chart([1, 2], {key: [1.0, 1.1] for key in ("optimal", "scalar_gla", "vector_gla",
                                                                        "linear_attention")}, "n")
    for fig in (figures.depth_chart([1, 2], [(2.4, 0.01), None], RISKS), sweep):
        lines = [trace for trace in fig.data if (trace.mode or "").startswith("lines")]
        assert len(lines) >= 4
        for trace in lines:
            label = trace.name.split(" (one step)")[0].split(":")[0]
            assert (label, trace.line.color) in vocabulary, trace.name
            assert trace.line.dash == next(q.dash for q in figures.QUANTITIES.values() if q.label == label)
    data = landscape_two_tasks(PromptSpec.from_dict({"d": 3, "tasks": [{"n": 5, "corr": 0.3}, {"n": 5, "corr": 0.8}]}),
                               num_angles=31, grid_size=11)
    angle = figures.landscape_angle(data["angle"]["theta"], data["angle"]["risk"], data["points"],
                                    data["monotone_cone"]["theta"], data["zero_risk"])
    for key in ("optimal", "linear_attention", "scalar_gla"):
        (point,) = traces_named(angle, figures.QUANTITIES[key].label)
        assert (point.marker.symbol, point.marker.color) == (figures.QUANTITIES[key].symbol, figures.QUANTITIES[key].colour)


def test_gate_values_scalar_and_vector():
    labels = [f"t{i}" for i in range(5)]
    scalar = figures.gate_values([[[0.9] * 5, [0.5] * 5]], labels)
    assert np.asarray(scalar.data[0].z).shape == (2, 5)
    vector = figures.gate_values([[np.full((5, 3), 0.7)]], labels, ["x1", "x2", "y"])
    assert list(vector.data[0].y) == ["x1", "x2", "y"]
    replay = figures.gate_values([[[1.0] * 5], [[0.5] * 5]], labels, steps=[0, 10], animate=True)
    assert np.allclose(np.asarray(replay.frames[0].data[0].z), 1.0) and np.allclose(np.asarray(replay.data[0].z), 0.5)


def test_cosine_depth_and_layer_charts():
    depth = figures.depth_chart([1, 2, 3, 4], [(2.4, 0.01), (2.1, 0.02), None, None], RISKS, diverged=[4])
    (trained,) = traces_named(depth, "trained")
    assert list(trained.x) == [1, 2] and list(trained.error_y.array) == [0.02, 0.04]
    (diverged,) = traces_named(depth, "diverged")
    assert list(diverged.x) == [4] and diverged.y[0] < depth.layout.yaxis.range[1]   # marked, never plotted as a risk
    layers = figures.layer_weights([[np.zeros(30), np.zeros((30, 5))], [np.ones(30), np.ones((30, 5))]],
                                   SPEC.example_task, steps=[0, 10], animate=True)
    assert len([t for t in layers.data if isinstance(t, go.Bar)]) == 2 * SPEC.num_tasks
    assert np.allclose(np.concatenate([bar.y for bar in layers.frames[0].data]), 0.0)


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
    fig = figures.depth_chart([1, 2], [(2.4, 0.01), None], RISKS)
    colours = {trace.line.color for trace in fig.data}
    assert colours <= OKABE_ITO | {figures.GREY}
    assert set(figures.TASK_COLOURS) == OKABE_ITO


def test_the_board_draws_every_run_in_its_targets_gauge_over_the_theory():
    """Two runs whose weights are the target times 3 and times -0.5 land on the target's curve (max |ω| = 1,
    the target's sign); the spread marks each group's reachable risk only for its own gating."""
    omega = np.array([0.2, 0.4, -0.1, 0.8])
    analytic = {key: {"omega": omega * (1.0 if key == "scalar_gla" else 1.1), "risk": risk}
                for key, risk in (("linear_attention", 2.0), ("scalar_gla", 1.5), ("vector_gla", 1.4), ("optimal", 1.2))}
    records = [{"analytic": analytic, "induced": list(omega * scale), "cosine": 1.0, "test_risk": 1.5, "student": name}
               for name, scale in (("amber-heron", 3.0), ("calm-finch", -0.5))]
    fig = figures.board_weights(records, "scalar_gla", "G1")
    runs = [trace for trace in fig.data if trace.legendgroup == "trained"]
    assert len(runs) == 2 and [trace.hovertext for trace in runs] == ["amber-heron", "calm-finch"]
    for trace in runs:
        assert np.allclose(trace.y, omega / 0.8)
    spread = figures.board_spread([("G1", "scalar_gla", records), ("G2", "vector_gla", records)])
    (reachable_scalar,) = traces_named(spread, figures.QUANTITIES["scalar_gla"].label)
    assert list(reachable_scalar.x) == ["G1"] and list(reachable_scalar.y) == [1.5]
    (optimal,) = traces_named(spread, figures.QUANTITIES["optimal"].label)
    assert list(optimal.x) == ["G1", "G2"]
