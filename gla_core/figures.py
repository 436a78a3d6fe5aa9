"""Every Plotly figure GLA Lab shows, built from plain numbers (lists, arrays, dicts).

No model, no trainer, no UI here: a builder takes data and returns a `go.Figure`, so the web app,
the docs and the tests draw the same pictures. Colours are the Okabe–Ito colour-blind-safe palette;
lines that matter also differ by dash, so a figure reads in grey too.
"""
from __future__ import annotations

import copy
from functools import lru_cache
from typing import Mapping, NamedTuple, Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.basedatatypes import BasePlotlyType
from plotly.subplots import make_subplots

# Okabe & Ito (2008), in the app's chart order (yellow late: thin yellow lines are faint on white).
BLUE, ORANGE, GREEN, VERMILLION, PURPLE, SKY, YELLOW, BLACK = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
TASK_COLOURS = (BLUE, ORANGE, GREEN, VERMILLION, PURPLE, SKY, YELLOW, BLACK)
GREY = "#7F7F7F"
# A perceptually uniform map readable with every common colour-vision deficiency.
SEQUENTIAL = "Cividis"
DIVERGING = [[0.0, BLUE], [0.5, "#F7F7F7"], [1.0, VERMILLION]]

# The house template: Plotly's "plotly_white" cut to the layout and the trace types these figures use, and made
# this process's default, so a figure starts from it when it is made. Naming "plotly_white" in every figure's
# layout deep-copied and validated all of it (7 kB, every trace type) twice a figure: a live Playground chart
# took 75-85 ms to build under the GIL, now about 55 ms, for every tab at every refresh.
HOUSE_TEMPLATE = "gla_lab"
HOUSE_TRACE_TYPES = ("bar", "box", "heatmap", "scatter", "scatterternary")


def _house_template() -> go.layout.Template:
    white = pio.templates["plotly_white"].to_plotly_json()
    return go.layout.Template(
        layout={key: value for key, value in white["layout"].items() if key not in ("geo", "polar", "scene")},
        data={key: value for key, value in white["data"].items() if key in HOUSE_TRACE_TYPES})


pio.templates[HOUSE_TEMPLATE] = _house_template()
pio.templates.default = HOUSE_TEMPLATE


class Quantity(NamedTuple):
    """How every page names and draws one quantity: the same words, colour, line and marker everywhere."""

    label: str
    colour: str
    dash: str
    symbol: str
    description: str


# The one vocabulary. Keys are theory.solve's (plus "trained"); every figure, metric and legend takes its
# words and styles from here. Legend order: worst to best, then the trained model.
QUANTITIES = {
    "zero": Quantity("zero predictor", GREY, "dot", "line-ew-open",
                     "predicting 0 for every query: the risk with nothing learned"),
    "linear_attention": Quantity("linear attention", VERMILLION, "dash", "x",
                                 "the best one-step WPGD with every example weighted the same (no gates)"),
    "scalar_gla": Quantity("best scalar-gated GLA", BLUE, "dashdot", "circle-open",
                           "the best weights one gate per token can make (they never shrink toward the query)"),
    "vector_gla": Quantity("best vector-gated GLA", GREEN, "longdash", "square-open",
                           "the best per-coordinate WPGD that one gate per key coordinate can make: it can beat "
                           "optimal WPGD, which has one weight per example"),
    "optimal": Quantity("optimal WPGD", BLACK, "solid", "diamond",
                        "the best one-step WPGD with one weight per example"),
    "causal_wpgd": Quantity("best L-step causal WPGD", BLACK, "dot", "diamond-open",
                            "the lowest risk L steps of causal WPGD reach with this gating (the construction's own "
                            "parameters, optimised numerically): the target of an L-layer GLA"),
    "trained": Quantity("trained GLA", PURPLE, "solid", "circle",
                        "the model trained here: its test risk, with its standard error"),
}
ANALYTIC_ORDER = ("zero", "linear_attention", "scalar_gla", "vector_gla", "optimal")


def task_colour(k: int) -> str:
    return TASK_COLOURS[k % len(TASK_COLOURS)]


def _update(part, changes: Mapping) -> None:
    """part.update(changes) for a figure's layout or one of its parts (an axis, the legend), in the same meaning:
    a dict merges into what is there, anything else replaces it. But a property with nothing in it yet is set
    whole, and a leaf by itself: update_layout validated every key's path and nesting again (7 ms for _style's
    six properties on a new figure; 0.4 ms set this way), at every refresh of every tab's live chart."""
    for key, value in changes.items():
        present = part[key]
        if isinstance(value, Mapping) and isinstance(present, BasePlotlyType) and present.to_plotly_json():
            _update(present, value)
        else:
            part[key] = value


def _style(fig: go.Figure, title: str, x_title: str = "", y_title: str = "", height: int = 360) -> go.Figure:
    """The house style (on the house template, HOUSE_TEMPLATE): title top left, legend under the plot (it never
    covers data or title)."""
    plot_height = height - 90
    below_axis = (62 if x_title else 30) / plot_height   # clear of the tick labels and the axis title
    _update(fig.layout, {
        "title": {"text": title, "x": 0.0, "xanchor": "left", "y": 0.98, "yanchor": "top"},
        "height": height, "margin": {"l": 60, "r": 20, "t": 50, "b": 40},
        "legend": {"orientation": "h", "yanchor": "top", "y": -below_axis, "x": 0.0, "xanchor": "left"},
        "hovermode": "closest", "font": {"size": 13},
    })
    if x_title:
        fig.update_xaxes(title_text=x_title)
    if y_title:
        fig.update_yaxes(title_text=y_title)
    return fig


def _subplots(rows: int, **options) -> go.Figure:
    """make_subplots(rows, cols=1, **options), list options as tuples, made from a copy of the grid built the first
    time: make_subplots validates every axis and title as it lays them out (22 ms for the Playground's three
    rows, at every refresh of every tab's live chart); a copy takes 2.6 ms."""
    return go.Figure(copy.deepcopy(_subplot_grid(rows, tuple(sorted(options.items())))))


@lru_cache(maxsize=64)
def _subplot_grid(rows: int, options: tuple) -> dict:
    """The empty one-column grid's layout and subplot references, as a plain dict (go.Figure takes it, references
    and all; a dict, unlike a figure, is only read when copied from several threads at once)."""
    grid = make_subplots(rows=rows, cols=1, **{key: list(value) if isinstance(value, tuple) else value
                                               for key, value in options})
    layout = {key: value for key, value in grid.layout.to_plotly_json().items() if key != "template"}
    return {"data": [], "layout": layout, "_grid_ref": grid._grid_ref, "_grid_str": grid._grid_str}


def _marker(symbol: str, colour: str, size: int) -> dict:
    return {"symbol": symbol, "size": size, "color": colour, "line": {"width": 2, "color": colour}}


def _delimiter_lines(fig: go.Figure, example_task: Sequence[int], row: int | None = None,
                     col: int | None = None) -> None:
    """A dotted line between tasks, where the prompt puts a delimiter token (on the subplot at row, col), across
    the plot's height. The lines are the shapes add_vline makes, added at once: add_vline looked through the
    figure's traces again for every line, 2 ms a line, a sixth of a live Playground chart's build."""
    x_ref, y_ref = "x", "y"
    if row is not None:
        subplot = fig.get_subplot(row, col)
        x_ref, y_ref = (axis.plotly_name.replace("axis", "") for axis in (subplot.xaxis, subplot.yaxis))
    example_task = np.asarray(example_task)
    lines = [{"type": "line", "xref": x_ref, "x0": boundary + 0.5, "x1": boundary + 0.5, "yref": f"{y_ref} domain",
              "y0": 0, "y1": 1, "line": {"color": GREY, "dash": "dot", "width": 1}}
             for boundary in np.flatnonzero(np.diff(example_task)) + 1]
    fig.update_layout(shapes=[*fig.layout.shapes, *lines])


def same_gauge(induced: Sequence, target: Sequence) -> np.ndarray:
    """The induced weights in the target's gauge: max |omega| = 1 and the sign that agrees with the
    target, per key coordinate for (n, d) weights. (P absorbs a scale and sign, per coordinate for
    vector gates, so these describe the same predictor.)"""
    induced, target = np.asarray(induced, dtype=float), np.asarray(target, dtype=float)
    columns, target_columns = induced.reshape(len(induced), -1), target.reshape(len(target), -1)
    peak = np.abs(columns).max(axis=0)
    sign = np.where(np.sum(columns * target_columns, axis=0) < 0, -1.0, 1.0)
    return (columns * sign / np.where(peak > 0, peak, 1.0)).reshape(induced.shape)


# ---------------------------------------------------------------- training curves
def _risk_lines(analytic_risks: Mapping[str, float], x_range: Sequence[float], suffix: str = "") -> list:
    """Horizontal lines at the analytic risks given (QUANTITIES keys), in the vocabulary's styles."""
    traces = []
    for key in ANALYTIC_ORDER:
        if key in analytic_risks:
            quantity, risk = QUANTITIES[key], float(analytic_risks[key])
            traces.append(go.Scatter(
                x=list(x_range), y=[risk, risk], mode="lines", name=f"{quantity.label}{suffix}: {risk:.3f}",
                line={"color": quantity.colour, "dash": quantity.dash, "width": 2},
                hovertemplate=f"{quantity.label}<br>risk %{{y:.4f}}<extra></extra>"))
    return traces


# ---------------------------------------------------------------- token weights
def token_weights(example_task: Sequence[int], references: Mapping[str, Sequence],
                  title: str = "Weight of each in-context example") -> go.Figure:
    """Analytic per-example weights (QUANTITIES key -> weights, max |omega| = 1): the first as bars
    coloured by task, every one as markers, delimiters as dotted lines."""
    (first_key, first), *_ = references.items()
    bars = np.asarray(first, dtype=float)
    fig = go.Figure(_task_bars(example_task, bars, "{}: " + QUANTITIES[first_key].label))
    for trace in _weight_markers(references):
        fig.add_trace(trace)
    _delimiter_lines(fig, example_task)
    fig = _style(fig, title, "in-context example (prompt order; dotted line = delimiter)", "weight (max |ω| = 1)")
    fig.update_layout(bargap=0.15)
    return fig


def _task_bars(example_task: Sequence[int], weights: np.ndarray, name: str, **where) -> list[go.Bar]:
    """One bar trace per task (always all of them, so animation frames can update each by index)."""
    example_task = np.asarray(example_task)
    positions = np.arange(1, len(example_task) + 1)
    traces = []
    for k in np.unique(example_task):
        mine = example_task == k
        traces.append(go.Bar(
            x=positions[mine].tolist(), y=np.asarray(weights[mine], dtype=float).tolist(),
            name=name.format(f"task {k + 1}"), marker_color=task_colour(int(k)),
            legendgroup=f"task {k}", hovertemplate=f"example %{{x}} (task {k + 1})<br>weight %{{y:.3f}}<extra></extra>",
            **where))
    return traces


def _weight_markers(references: Mapping[str, Sequence], **where) -> list[go.Scatter]:
    positions = np.arange(1, len(next(iter(references.values()))) + 1)
    traces = []
    for key, weights in references.items():
        quantity = QUANTITIES[key]
        traces.append(go.Scatter(
            x=positions.tolist(), y=np.asarray(weights, dtype=float).tolist(), mode="markers",
            name=f"{quantity.label} ω",
            marker=_marker(quantity.symbol, quantity.colour, 10),
            hovertemplate=f"example %{{x}}<br>{quantity.label} %{{y:.3f}}<extra></extra>", **where))
    return traces


REPLAY_SPEEDS = {"slow": 600, "normal": 200, "fast": 60}   # milliseconds per frame; "normal" is Play's (21 frames: 4 s)


def training_replay(example_task: Sequence[int], references: Mapping[str, Sequence], frames: Sequence[Mapping],
                    analytic_risks: Mapping[str, float], total_steps: int, show_theory: bool = True,
                    animate: bool = True, layer: int = 0, title: str = "What the gates learn",
                    replay_id: str | None = None) -> go.Figure:
    """The trained model's weights (layer `layer`), test risk and cosine through training, as one figure
    whose animation frames replay the run in the browser (Play, Pause, a speed choice and a step slider;
    no server round trip).

    frames: the run's trajectory (gla_core.train frames: step, test_risk, test_risk_se, cosine,
    induced_weights per layer), first = the untrained model; the figure shows the last one. references:
    QUANTITIES key -> analytic weights (n,) or (n, d), the first being the model's target, which fixes the
    induced weights' gauge. show_theory False leaves out every analytic marker and line and the cosine,
    so a class can predict first. animate False: no frames or controls (a run still computing).
    replay_id: kept as layout.meta.replay, for a front end that plays each replay once by itself.

    Rows: weights (bars by task; for (n, d) weights a heatmap, key coordinates as rows), risk, cosine.
    """
    (target_key, target), *_ = references.items()
    target = np.asarray(target, dtype=float)
    per_coordinate = target.ndim == 2
    steps = [frame["step"] for frame in frames]
    weights = [same_gauge(frame["induced_weights"][layer], target) for frame in frames]
    risks = [frame["test_risk"] for frame in frames]
    errors = [frame.get("test_risk_se", float("nan")) for frame in frames]
    cosines = [frame["cosine"] for frame in frames]
    rows = 3 if show_theory else 2
    fig = _subplots(rows, vertical_spacing=0.12, row_heights=(0.52, 0.3, 0.18)[:rows],
                    subplot_titles=("weight of each in-context example (max |ω| = 1)", "test risk",
                                    "cosine with the " + QUANTITIES[target_key].label + " weights")[:rows])
    # 1. The weights: the traces every frame updates come first, in this order.
    if per_coordinate:
        moving = [go.Heatmap(z=weights[-1].T.tolist(), x=list(range(1, len(target) + 1)),
                             y=[f"x[{c + 1}]" for c in range(target.shape[1])], zmin=-1, zmax=1,
                             colorscale=DIVERGING, colorbar={"title": "ω", "len": 0.5, "y": 0.8},
                             name=QUANTITIES["trained"].label,
                             hovertemplate="example %{x}, %{y}<br>weight %{z:.3f}<extra></extra>")]
    else:
        moving = _task_bars(example_task, weights[-1], "{}")
    markers = _weight_markers(references) if show_theory and not per_coordinate else []
    for trace in moving + markers:
        fig.add_trace(trace, row=1, col=1)
    quantity = QUANTITIES["trained"]
    fig.add_trace(go.Scatter(x=[steps[-1]], y=[risks[-1]], mode="markers", name="step on screen",
                             marker={"size": 14, "color": quantity.colour, "symbol": "circle-open",
                                     "line": {"width": 3, "color": quantity.colour}},
                             hovertemplate="step %{x}<br>test risk %{y:.4f}<extra></extra>"), row=2, col=1)
    if show_theory:
        fig.add_trace(go.Scatter(x=[steps[-1]], y=[cosines[-1]], mode="markers", showlegend=False,
                                 marker={"size": 14, "color": BLUE, "symbol": "circle-open", "line": {"width": 3}},
                                 hovertemplate="step %{x}<br>cosine %{y:.4f}<extra></extra>"), row=3, col=1)
    # Every frame carries the traces above (the analytic markers too: plotly.js drops a subplot's traces
    # that a frame leaves out while it redraws); what follows stays as it is.
    moving_count = len(fig.data)
    x_end = max(total_steps, steps[-1], 1)
    if show_theory:
        for trace in _risk_lines(analytic_risks, [0, x_end]):
            fig.add_trace(trace, row=2, col=1)
    fig.add_trace(go.Scatter(x=steps, y=risks, mode="lines+markers", name=f"{quantity.label}: test risk",
                             error_y={"type": "data", "array": errors, "visible": True, "thickness": 1},
                             line={"color": quantity.colour, "dash": quantity.dash, "width": 3}, marker={"size": 5},
                             hovertemplate="step %{x}<br>test risk %{y:.4f}<extra></extra>"), row=2, col=1)
    if show_theory:
        fig.add_trace(go.Scatter(x=steps, y=cosines, mode="lines", name="cosine", showlegend=False,
                                 line={"color": BLUE, "width": 2},
                                 hovertemplate="step %{x}<br>cosine %{y:.4f}<extra></extra>"), row=3, col=1)
        _update(fig.get_subplot(3, 1).yaxis, {"range": [min([0.0] + [c for c in cosines if np.isfinite(c)]), 1.05]})
    if not per_coordinate:
        _delimiter_lines(fig, example_task, row=1, col=1)
        _update(fig.get_subplot(1, 1).yaxis, {"range": [min(-0.05, float(np.min(weights)) - 0.05), 1.1]})
    shown = risks + ([float(v) for v in analytic_risks.values()] if show_theory else [])
    high = float(analytic_risks["zero"]) * 1.1 if show_theory and "zero" in analytic_risks else max(risks) * 1.1
    _update(fig.get_subplot(2, 1).yaxis, {"range": [0.9 * min(shown), high]})
    for row in range(2, rows + 1):
        _update(fig.get_subplot(row, 1).xaxis, {"range": [-0.02 * x_end, 1.02 * x_end]})
    _update(fig.get_subplot(rows, 1).xaxis, {"title": {"text": "training step"}})
    fig = _style(fig, f"{title} — {_frame_caption(frames[-1], total_steps, show_theory)}",
                 height=700 if animate and len(frames) > 1 else 640)
    _update(fig.layout, {"margin": {"b": 130}, "legend": {"y": -0.16}, "bargap": 0.15, "barmode": "group"})
    if animate and len(frames) > 1:
        _add_replay(fig, frames, weights, moving_count, per_coordinate, show_theory, title, total_steps)
        if replay_id is not None:
            _update(fig.layout, {"meta": {"replay": replay_id}})
    return fig


def _frame_caption(frame: Mapping, total_steps: int, show_theory: bool) -> str:
    label = "untrained" if frame["step"] == 0 else f"step {frame['step']} of {total_steps}"
    text = f"{label} · test risk {frame['test_risk']:.3f} ± {frame.get('test_risk_se', float('nan')):.3f}"
    return text + (f" · cosine {frame['cosine']:.3f}" if show_theory else "")


def _add_replay(fig: go.Figure, frames: Sequence[Mapping], weights: Sequence[np.ndarray], moving_count: int,
                per_coordinate: bool, show_theory: bool, title: str, total_steps: int) -> None:
    """Plotly animation frames over the moving traces (indices 0 .. moving_count-1), a step slider and
    Play / Pause / speed buttons, all played by the browser. The frames are plain dicts, validated once as they
    are set: made as go.Frame and trace objects they were validated twice (a third of a finished run's chart)."""
    task_masks = [np.asarray(trace.x) - 1 for trace in fig.data[:moving_count] if isinstance(trace, go.Bar)]
    markers = [{"type": "scatter", "x": trace.x, "y": trace.y} for trace in fig.data[:moving_count]
               if isinstance(trace, go.Scatter) and trace.xaxis in (None, "x")]
    animation = []
    for frame, frame_weights in zip(frames, weights):
        if per_coordinate:
            data = [{"type": "heatmap", "z": frame_weights.T.tolist()}]
        else:
            data = [{"type": "bar", "y": frame_weights[mask].tolist()} for mask in task_masks] + markers
        data.append({"type": "scatter", "x": [frame["step"]], "y": [frame["test_risk"]]})
        if show_theory:
            data.append({"type": "scatter", "x": [frame["step"]], "y": [frame["cosine"]]})
        caption = _frame_caption(frame, total_steps, show_theory)
        animation.append({"data": data, "traces": list(range(moving_count)), "name": str(frame["step"]),
                          "layout": {"title": {"text": f"{title} — {caption}"}}})
    fig.frames = animation
    _replay_controls(fig, [frame["step"] for frame in frames], slider_y=-0.12)
    _update(fig.layout, {"margin": {"t": 110, "b": 170}, "legend": {"y": -0.42}})


def _replay_controls(fig: go.Figure, steps: Sequence[int], slider_y: float) -> None:
    """Play / Pause buttons, a speed menu and a step slider (its top at slider_y, in plot heights below the
    plot) for a figure whose frames are named by step."""
    def play(milliseconds: int) -> list:
        return [None, {"frame": {"duration": milliseconds, "redraw": True}, "fromcurrent": True,
                       "transition": {"duration": 0}, "mode": "immediate"}]

    _update(fig.layout, {
        "updatemenus": [
            {"type": "buttons", "direction": "left", "x": 0.0, "xanchor": "left", "y": 1.02, "yanchor": "bottom",
             "showactive": False, "pad": {"r": 6, "b": 24},
             "buttons": [{"label": "▶ Play", "method": "animate", "args": play(REPLAY_SPEEDS["normal"])},
                         {"label": "❚❚ Pause", "method": "animate",
                          "args": [[None], {"frame": {"duration": 0, "redraw": False}, "mode": "immediate"}]}]},
            {"type": "dropdown", "direction": "down", "x": 0.3, "xanchor": "left", "y": 1.02, "yanchor": "bottom",
             "showactive": True, "active": 1, "pad": {"b": 24},
             "buttons": [{"label": f"speed: {name}", "method": "animate", "args": play(milliseconds)}
                         for name, milliseconds in REPLAY_SPEEDS.items()]}],
        "sliders": [{"active": len(steps) - 1, "x": 0.0, "len": 1.0, "y": slider_y, "yanchor": "top",
                  "currentvalue": {"prefix": "step ", "visible": True},
                  "steps": [{"label": str(step), "method": "animate",
                             "args": [[str(step)], {"frame": {"duration": 0, "redraw": True},
                                                    "mode": "immediate", "transition": {"duration": 0}}]}
                            for step in steps]}]})


def weight_maps(example_task: Sequence[int], maps: Mapping[str, Sequence],
                title: str = "Weight of each example, per key coordinate") -> go.Figure:
    """Per-coordinate weights (QUANTITIES key -> (n, d) weights, max |omega| = 1 per coordinate) as
    heatmaps, one panel each, key coordinates as rows."""
    fig = _subplots(len(maps), shared_xaxes=True, vertical_spacing=0.12,
                    subplot_titles=tuple(QUANTITIES[key].label for key in maps))
    for row, (key, weights) in enumerate(maps.items(), start=1):
        weights = np.asarray(weights, dtype=float)
        fig.add_trace(go.Heatmap(
            z=weights.T, x=np.arange(1, weights.shape[0] + 1), y=[f"x[{c + 1}]" for c in range(weights.shape[1])],
            zmin=-1, zmax=1, colorscale=DIVERGING, name=QUANTITIES[key].label, showscale=row == 1,
            colorbar={"title": "ω"}, hovertemplate="example %{x}, %{y}<br>weight %{z:.3f}<extra></extra>"),
            row=row, col=1)
    fig = _style(fig, title, height=160 + 140 * len(maps))
    fig.update_xaxes(title_text="in-context example", row=len(maps), col=1)
    fig.update_yaxes(title_text="key coordinate")
    return fig


def layer_weights(weights_frames: Sequence[Sequence[Sequence]], example_task: Sequence[int],
                  steps: Sequence[int] | None = None, animate: bool = False,
                  title: str = "Induced weights of every layer", replay_id: str | None = None,
                  target_weights: Sequence[Sequence] | None = None) -> go.Figure:
    """One panel per layer: the query's weight on each example (scalar weights, or the mean over key
    coordinates for vector gates), bars coloured by task. weights_frames[f][layer]: a frame's weights
    per layer; the last frame is drawn, and with animate every frame (named by `steps`) replays
    (replay_id as in training_replay). target_weights: per layer, the L-step target's weights, as markers."""
    def per_example(weights) -> np.ndarray:
        weights = np.asarray(weights, dtype=float)
        return weights.mean(axis=1) if weights.ndim == 2 else weights

    frames = [[per_example(layer_weights) for layer_weights in frame] for frame in weights_frames]
    layers = len(frames[-1])
    fig = _subplots(layers, shared_xaxes=True, vertical_spacing=0.08,
                    subplot_titles=tuple(f"layer {layer + 1}" for layer in range(layers)))
    task_of = np.asarray(example_task)
    for layer, weights in enumerate(frames[-1], start=1):
        for bar in _task_bars(example_task, weights, "{}"):
            bar.showlegend = layer == 1
            fig.add_trace(bar, row=layer, col=1)
        _delimiter_lines(fig, example_task, row=layer, col=1)
    for layer, weights in enumerate(target_weights or (), start=1):   # after the bars: frames update bars only
        target = QUANTITIES["causal_wpgd"]
        fig.add_trace(go.Scatter(x=np.arange(1, len(task_of) + 1), y=per_example(weights), mode="markers",
                                 name=f"{target.label} ω", showlegend=layer == 1, legendgroup="target",
                                 marker=_marker(target.symbol, target.colour, 9),
                                 hovertemplate=f"layer {layer}, example %{{x}}<br>target %{{y:.3f}}<extra></extra>"),
                      row=layer, col=1)
    fig = _style(fig, title, height=140 + 170 * layers)
    fig.update_xaxes(title_text="in-context example", row=layers, col=1)
    if animate and len(frames) > 1:
        tasks = np.unique(task_of)
        # The target's markers ride along in every frame: plotly.js drops a subplot's traces a frame leaves out.
        # Frames as plain dicts, validated once as they are set (see _add_replay).
        markers = [{"type": "scatter", "x": trace.x, "y": trace.y} for trace in fig.data[layers * len(tasks):]]
        fig.frames = [{"data": [{"type": "bar", "y": weights[task_of == k].tolist()}
                                for weights in frame for k in tasks] + markers,
                       "traces": list(range(layers * len(tasks) + len(markers))), "name": str(step)}
                      for frame, step in zip(frames, steps)]
        _update(fig.layout, {"height": fig.layout.height + 170, "margin": {"t": 130, "b": 170}, "legend": {"y": -0.3}})
        _replay_controls(fig, steps, slider_y=-(110 / (fig.layout.height - 270)))
        if replay_id is not None:
            _update(fig.layout, {"meta": {"replay": replay_id}})
    return fig


def gate_values(gates_frames: Sequence[Sequence], token_labels: Sequence[str],
                coordinate_labels: Sequence[str] | None = None, steps: Sequence[int] | None = None,
                animate: bool = False, title: str = "Gate values per token") -> go.Figure:
    """Mean gate of every token in every layer, as the run went: gates_frames[f][layer] is a frame's
    gates, (T,) for scalar gates or (T, D) for vector gates; the last frame is shown, and with animate
    the frames (named by `steps`) replay in the browser. Scalar gates: one heatmap, rows = layers;
    vector gates: one panel per layer, rows = key coordinates. Gates near 1 keep the past; small gates forget."""
    frames = [[np.asarray(layer_gates, dtype=float) for layer_gates in gates] for gates in gates_frames]
    last = frames[-1]
    hover = "token %{x}<br>%{y}<br>gate %{z:.3f}<extra></extra>"
    if last[0].ndim == 1:
        fig = go.Figure(go.Heatmap(
            z=np.stack(last).tolist(), x=list(token_labels), y=[f"layer {layer + 1}" for layer in range(len(last))],
            zmin=0, zmax=1, colorscale=SEQUENTIAL, colorbar={"title": "gate"}, hovertemplate=hover))
        fig = _style(fig, title, "token (prompt order)", height=160 + 50 * len(last))
        moving = [lambda gates: [{"type": "heatmap", "z": np.stack(gates).tolist()}], [0]]
    else:
        fig = _subplots(len(last), shared_xaxes=True, vertical_spacing=0.1,
                        subplot_titles=tuple(f"layer {layer + 1}" for layer in range(len(last))))
        for layer, layer_gates in enumerate(last, start=1):
            fig.add_trace(go.Heatmap(
                z=layer_gates.T.tolist(), x=list(token_labels),
                y=list(coordinate_labels or [f"coordinate {c + 1}" for c in range(layer_gates.shape[1])]),
                zmin=0, zmax=1, colorscale=SEQUENTIAL, showscale=layer == 1, colorbar={"title": "gate"},
                hovertemplate=hover), row=layer, col=1)
        fig = _style(fig, title, height=120 + 220 * len(last))
        moving = [lambda gates: [{"type": "heatmap", "z": layer_gates.T.tolist()} for layer_gates in gates],
                  list(range(len(last)))]
    if animate and len(frames) > 1:
        build, traces = moving
        fig.frames = [{"data": build(gates), "traces": traces, "name": str(step)}      # plain dicts: see _add_replay
                      for gates, step in zip(frames, steps)]
        _update(fig.layout, {"height": fig.layout.height + 170, "margin": {"t": 100, "b": 190}})
        _replay_controls(fig, steps, slider_y=-(150 / (fig.layout.height - 290)))
    return fig


# ---------------------------------------------------------------- analytic comparisons
def matrix_heatmap(matrix: Sequence[Sequence[float]], title: str, labels: Sequence[str] | None = None,
                   axis_label: str = "") -> go.Figure:
    """A small matrix (e.g. the preconditioner P*) with its entries written in."""
    matrix = np.asarray(matrix, dtype=float)
    bound = float(np.abs(matrix).max()) or 1.0
    labels = list(labels) if labels is not None else [str(i + 1) for i in range(matrix.shape[0])]
    fig = go.Figure(go.Heatmap(
        z=matrix, x=labels, y=labels, zmin=-bound, zmax=bound, colorscale=DIVERGING,
        text=np.round(matrix, 3), texttemplate="%{text}" if matrix.shape[0] <= 8 else None,
        hovertemplate="row %{y}, column %{x}<br>%{z:.4f}<extra></extra>"))
    fig = _style(fig, title, axis_label, axis_label, height=320)
    fig.update_yaxes(autorange="reversed", scaleanchor="x")
    return fig


def sweep_chart(x: Sequence, risks: Mapping[str, Sequence[float]], x_title: str,
                gating_wins: Sequence[bool] | None = None, trained: Mapping[str, Sequence[tuple]] | None = None,
                title: str = "Analytic risk as the setting changes") -> go.Figure:
    """Risk of each model along a sweep (solve() key -> risks), the stretch where gating beats linear
    attention shaded, and trained models as markers (solve() key -> [(x, test risk)]). x may be
    numbers or labels (e.g. task orders)."""
    labels = [str(value) for value in x] if any(isinstance(value, str) for value in x) else None
    position = {value: index for index, value in enumerate(x)}
    x_plot = np.arange(len(x), dtype=float) if labels else np.asarray(x, dtype=float)
    fig = go.Figure()
    if gating_wins is not None:
        spacing = np.diff(x_plot)
        for start, stop in _runs_of_true(gating_wins):
            left = spacing[start - 1] / 2 if start > 0 else (spacing[0] / 2 if len(spacing) else 0.5)
            right = spacing[stop - 1] / 2 if stop - 1 < len(spacing) else left
            fig.add_vrect(x0=x_plot[start] - left, x1=x_plot[stop - 1] + right, fillcolor=SKY, opacity=0.18,
                          line_width=0, annotation_text="gating wins", annotation_position="top left")
    hover_x = "%{text}" if labels else "%{x:.3g}"
    for key, values in risks.items():
        label, colour, dash = QUANTITIES[key][:3]
        fig.add_trace(go.Scatter(x=x_plot, y=values, text=labels, mode="lines+markers", name=label,
                                 line={"color": colour, "dash": dash, "width": 2.5}, marker={"size": 6},
                                 hovertemplate=f"{label}<br>{hover_x}: risk %{{y:.4f}}<extra></extra>"))
    trained_names = {"linear_attention": "trained linear attention", "scalar_gla": "trained scalar-gated GLA",
                     "vector_gla": "trained vector-gated GLA"}
    for key, points in (trained or {}).items():
        if points:
            label, (_, colour, _, symbol, _) = trained_names[key], QUANTITIES[key]
            px = [position[value] if labels else value for value, _ in points]
            fig.add_trace(go.Scatter(x=px, y=[risk for _, risk in points], mode="markers", name=label,
                                     marker={"color": colour, "symbol": symbol, "size": 13, "line": {"width": 2}},
                                     hovertemplate=f"{label}<br>test risk %{{y:.4f}}<extra></extra>"))
    fig = _style(fig, title, x_title, "population risk", height=430)
    if labels:
        fig.update_xaxes(tickvals=list(x_plot), ticktext=labels)
    return fig


def _runs_of_true(flags: Sequence[bool]) -> list[tuple[int, int]]:
    """[start, stop) index ranges where flags are True."""
    runs, start = [], None
    for index, flag in enumerate(list(flags) + [False]):
        if flag and start is None:
            start = index
        elif not flag and start is not None:
            runs.append((start, index))
            start = None
    return runs


def depth_chart(layers: Sequence[int], trained: Sequence[tuple[float, float] | None],
                analytic_risks: Mapping[str, float], diverged: Sequence[int] = (),
                targets: Sequence[tuple[float, float]] | None = None,
                title: str = "Test risk against depth") -> go.Figure:
    """Trained test risk (risk, standard error) per number of layers (None: not trained), with the
    one-step analytic risks as horizontal lines and each depth's own target, the best L-step causal WPGD
    (risk, standard error) per entry of `layers`; a model that diverged is marked, never plotted as a risk."""
    fig = go.Figure()
    x_range = [min(layers) - 0.5, max(layers) + 0.5]
    for trace in _risk_lines(analytic_risks, x_range, suffix=" (one step)"):
        fig.add_trace(trace)
    done = [(layer, point) for layer, point in zip(layers, trained) if point is not None]
    quantity = QUANTITIES["trained"]
    if done:
        fig.add_trace(go.Scatter(x=[layer for layer, _ in done], y=[risk for _, (risk, _) in done],
                                 error_y={"type": "data", "array": [2 * se for _, (_, se) in done], "visible": True},
                                 mode="lines+markers", name=f"{quantity.label}: test risk (± 2 SE)",
                                 line={"color": quantity.colour, "dash": quantity.dash, "width": 3}, marker={"size": 11},
                                 hovertemplate="%{x} layers<br>test risk %{y:.4f}<extra></extra>"))
    if targets:
        target = QUANTITIES["causal_wpgd"]
        fig.add_trace(go.Scatter(x=list(layers), y=[risk for risk, _ in targets], mode="lines+markers",
                                 error_y={"type": "data", "array": [2 * se for _, se in targets], "visible": True},
                                 name=f"{target.label} (± 2 SE)", line={"color": target.colour, "dash": target.dash,
                                                                        "width": 2},
                                 marker={"symbol": target.symbol, "size": 13, "color": target.colour},
                                 hovertemplate="%{x} steps<br>best causal WPGD risk %{y:.4f}<extra></extra>"))
    shown = ([risk for key, risk in analytic_risks.items() if key != "zero"] + [risk for _, (risk, _) in done]
             + [risk for risk, _ in targets or ()])
    low, high = 0.85 * min(shown), 1.1 * max(shown)
    if diverged:
        fig.add_trace(go.Scatter(x=list(diverged), y=[high * 0.97] * len(diverged), mode="markers+text",
                                 text=["diverged"] * len(diverged), textposition="bottom center",
                                 name="diverged (no result)", marker={"symbol": "x", "size": 14, "color": GREY},
                                 hovertemplate="%{x} layers: diverged<extra></extra>"))
    fig = _style(fig, title, "layers (= WPGD steps)", "risk", height=380)
    fig.update_xaxes(range=x_range, tickmode="array", tickvals=list(layers))
    # Frame the interesting band: from below the best risk to just above linear attention (the zero
    # predictor's line, far above, stays in the legend with its value).
    fig.update_yaxes(range=[low, high])
    return fig


# ---------------------------------------------------------------- the WPGD landscape
def _point_markers() -> dict:
    """How the landscape marks its special weightings: key -> (label, symbol, colour)."""
    styles = {"optimal": "optimal", "linear_attention": "linear_attention", "monotone_best": "scalar_gla"}
    return {key: (f"{QUANTITIES[name].label} ω", QUANTITIES[name].symbol, QUANTITIES[name].colour)
            for key, name in styles.items()}


def landscape_angle(theta: Sequence[float], risk: Sequence[float], points: Mapping[str, Mapping],
                    cone_theta: Sequence[float], zero_risk: float,
                    title: str = "Risk over the direction of the task weights") -> go.Figure:
    """Risk along the unit direction (cos θ, sin θ) of the task weights (w1, w2), θ in degrees, with
    the directions scalar gates can reach shaded and the special weightings marked."""
    degrees = np.degrees(np.asarray(theta, dtype=float))
    fig = go.Figure()
    fig.add_vrect(x0=np.degrees(cone_theta[0]), x1=np.degrees(cone_theta[1]), fillcolor=SKY, opacity=0.2,
                  line_width=0, annotation_text="scalar gates reach", annotation_position="bottom left")
    fig.add_trace(go.Scatter(x=degrees, y=risk, mode="lines", name="risk with the best P",
                             line={"color": BLUE, "width": 3},
                             hovertemplate="θ = %{x:.1f}°<br>risk %{y:.4f}<extra></extra>"))
    fig.add_hline(y=zero_risk, line={"color": GREY, "dash": "dot"}, annotation_text="zero predictor",
                  annotation_position="top left")
    for key, (label, symbol, colour) in _point_markers().items():
        point = points[key]
        fig.add_trace(go.Scatter(x=[np.degrees(point["theta"])], y=[point["risk"]], mode="markers", name=label,
                                 marker=_marker(symbol, colour, 16),
                                 hovertemplate=f"{label}<br>θ = %{{x:.1f}}°<br>risk %{{y:.4f}}<extra></extra>"))
    fig = _style(fig, title, "direction θ of (w1, w2), degrees (w and −w: the same predictor)", "risk", height=380)
    fig.update_xaxes(range=[-90, 90], tickvals=[-90, -45, 0, 45, 90])
    return fig


def landscape_plane(axis: Sequence[float], risk: Sequence[Sequence[float]], points: Mapping[str, Mapping],
                    cone_theta: Sequence[float], title: str = "Risk over the task weights (w1, w2)") -> go.Figure:
    """Heatmap of the risk over (w1, w2): constant along every ray from the origin (only the direction
    of the weights matters). Lines through the origin mark the special directions; the wedge is the
    scalar-gated cone."""
    axis = np.asarray(axis, dtype=float)
    edge = float(np.abs(axis).max())
    fig = go.Figure(go.Heatmap(x=axis, y=axis, z=risk, colorscale=SEQUENTIAL, colorbar={"title": "risk"},
                               hovertemplate="w1 = %{x:.2f}, w2 = %{y:.2f}<br>risk %{z:.4f}<extra></extra>"))
    low, high = cone_theta
    angles = np.linspace(low, high, 20)
    to_edge = edge / np.maximum(np.abs(np.cos(angles)), np.abs(np.sin(angles)))   # each ray out to the square's edge
    wedge_x = np.concatenate([[0.0], to_edge * np.cos(angles), [0.0]])
    wedge_y = np.concatenate([[0.0], to_edge * np.sin(angles), [0.0]])
    fig.add_trace(go.Scatter(x=wedge_x, y=wedge_y, mode="lines",
                             fill="toself", fillcolor="rgba(86,180,233,0.25)", line={"color": SKY, "width": 2},
                             name="reachable by scalar gates", hoverinfo="skip"))
    for key, (label, symbol, colour) in _point_markers().items():
        direction = np.asarray(points[key]["w"], dtype=float)
        direction = direction / np.abs(direction).max() * edge
        fig.add_trace(go.Scatter(x=[-direction[0], direction[0]], y=[-direction[1], direction[1]], mode="lines+markers",
                                 name=label, line={"color": colour, "width": 2, "dash": "dash"},
                                 marker=_marker(symbol, colour, 14),
                                 hovertemplate=f"{label}<br>w1 = %{{x:.2f}}, w2 = %{{y:.2f}}<extra></extra>"))
    fig = _style(fig, title, "w1 (weight of task 1)", "w2 (weight of task 2)", height=460)
    fig.update_xaxes(range=[-edge, edge], constrain="domain")
    fig.update_yaxes(range=[-edge, edge], scaleanchor="x")
    return fig


def landscape_simplex(barycentric: Sequence[Sequence[float]], risk: Sequence[float], points: Mapping[str, Mapping],
                      cone_vertices: Sequence[Sequence[float]],
                      title: str = "Risk over the weights of three tasks (w1 + w2 + w3 = 1)") -> go.Figure:
    """Ternary heatmap of the risk over non-negative task weights (scale does not matter, so the
    simplex shows every direction with w >= 0), the scalar-gated region w1 <= w2 <= w3 outlined."""
    barycentric = np.asarray(barycentric, dtype=float)
    fig = go.Figure(go.Scatterternary(
        a=barycentric[:, 0], b=barycentric[:, 1], c=barycentric[:, 2], mode="markers", name="risk",
        marker={"color": risk, "colorscale": SEQUENTIAL, "size": 9, "symbol": "triangle-up",
                "colorbar": {"title": "risk"}, "showscale": True},
        hovertemplate="w = (%{a:.2f}, %{b:.2f}, %{c:.2f})<br>risk %{marker.color:.4f}<extra></extra>",
        showlegend=False))
    cone = np.asarray(cone_vertices, dtype=float)
    cone = np.vstack([cone, cone[:1]])
    fig.add_trace(go.Scatterternary(a=cone[:, 0], b=cone[:, 1], c=cone[:, 2], mode="lines",
                                    name="reachable by scalar gates", line={"color": SKY, "width": 3},
                                    hoverinfo="skip"))
    for key, (label, symbol, colour) in _point_markers().items():
        point = points[key]
        w = np.asarray(point["w"], dtype=float)
        if not point.get("inside", True):  # mixed signs (False) or parallel to the simplex (None): not drawable
            continue
        fig.add_trace(go.Scatterternary(a=[w[0]], b=[w[1]], c=[w[2]], mode="markers", name=label,
                                        marker=_marker(symbol, colour, 16),
                                        hovertemplate=f"{label}<br>risk {point['risk']:.4f}<extra></extra>"))
    fig = _style(fig, title, height=480)
    fig.update_layout(ternary={"aaxis": {"title": "w1"}, "baxis": {"title": "w2"}, "caxis": {"title": "w3"}})
    return fig


# ---------------------------------------------------------------- the class board
def _mean_over_coordinates(weights: np.ndarray) -> np.ndarray:
    """(n,) weights as they are; (n, d) per-coordinate weights averaged over the coordinates."""
    return weights.reshape(len(weights), -1).mean(axis=1)


def board_weights(records: Sequence[Mapping], target_key: str, title: str) -> go.Figure:
    """Every run's induced weights (board records of one settings group), each in its analytic target's
    gauge (same_gauge: max |omega| = 1, the target's sign), over the target (`target_key`: the best
    weights this gating can reach) and optimal WPGD."""
    target = np.asarray(records[0]["analytic"][target_key]["omega"], dtype=float)
    example = np.arange(1, len(target) + 1)
    fig = go.Figure()
    for key in dict.fromkeys(("optimal", target_key)):    # the optimum, and the reachable one when it differs
        omega = np.asarray(records[0]["analytic"][key]["omega"], dtype=float)
        quantity = QUANTITIES[key]
        fig.add_scatter(x=example, y=_mean_over_coordinates(same_gauge(omega, omega)), mode="lines+markers",
                        line={"color": quantity.colour, "dash": quantity.dash, "width": 3},
                        marker={"symbol": quantity.symbol, "size": 7}, name=quantity.label)
    trained = QUANTITIES["trained"]
    for index, record in enumerate(records):   # drawn over the theory: thin lines, each run visible
        induced = same_gauge(record["induced"], target)
        fig.add_scatter(x=example, y=_mean_over_coordinates(induced), mode="lines", opacity=0.4,
                        line={"color": trained.colour, "width": 1.5}, name=f"trained runs ({len(records)})",
                        legendgroup="trained", showlegend=index == 0, hovertext=record.get("student", ""))
    fig.update_layout(title={"text": title, "x": 0.0}, template="plotly_white", height=340,
                      margin={"l": 60, "r": 20, "t": 50, "b": 40}, legend={"orientation": "h", "y": -0.25},
                      xaxis_title="example (prompt order, the query after the last)",
                      yaxis_title="weight (max |ω| = 1)")
    return fig


def board_spread(groups: Sequence[tuple[str, str, Sequence[Mapping]]]) -> go.Figure:
    """Per settings group (name, target key, board records): the runs' cosines (left) and test risks
    (right), with the theory's risks per group as short horizontal marks: linear attention, the best
    this gating reaches (the target), optimal WPGD."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("cosine with the analytic weights", "test risk"))
    trained = QUANTITIES["trained"]
    for name, _, records in groups:
        names = [record.get("student", "") for record in records]
        for col, values in ((1, [record["cosine"] for record in records]), (2, [record["test_risk"] for record in records])):
            fig.add_trace(go.Box(x=[name] * len(records), y=values, boxpoints="all", jitter=0.4, pointpos=0,
                                 marker={"color": trained.colour, "size": 7}, line={"color": trained.colour},
                                 fillcolor="rgba(0,0,0,0)", hovertext=names, name=name, showlegend=False),
                          row=1, col=col)
    for key in ("linear_attention", "scalar_gla", "vector_gla", "optimal"):
        # linear attention and optimal WPGD for every group; a gated model's best for the groups with its gating
        marked = [(name, records[0]["analytic"][key]["risk"]) for name, target_key, records in groups
                  if key in ("linear_attention", "optimal") or target_key == key]
        if not marked:
            continue
        quantity = QUANTITIES[key]
        fig.add_trace(go.Scatter(x=[name for name, _ in marked], y=[risk for _, risk in marked], mode="markers",
                                 name=quantity.label, marker={"symbol": "line-ew-open", "size": 44,
                                                              "color": quantity.colour,
                                                              "line": {"width": 3, "color": quantity.colour}}),
                      row=1, col=2)
    fig.update_layout(template="plotly_white", height=380, margin={"l": 60, "r": 20, "t": 50, "b": 40},
                      legend={"orientation": "h", "y": -0.15})
    return fig


# ---------------------------------------------------------------- inside the recurrence
def recurrence_step(token_labels: Sequence[str], gates: Sequence[float], weights: Sequence[float], position: int,
                    title: str = "Gates and running weights") -> go.Figure:
    """Two panels over the prompt's tokens: every token's gate, and the weight omega_{t,s} that the
    current token t (0-based `position`) gives each earlier token s (0 after t)."""
    labels = list(token_labels)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.14,
                        subplot_titles=["gate g of each token",
                                        f"weight of each token as seen from {labels[position]}"])
    colours = [BLACK if index == position else (SKY if index < position else "#D9D9D9") for index in range(len(labels))]
    fig.add_trace(go.Bar(x=labels, y=gates, marker_color=colours, name="gate", showlegend=False,
                         hovertemplate="%{x}<br>gate %{y:.6f}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Bar(x=labels, y=weights, marker_color=colours, name="weight", showlegend=False,
                         hovertemplate="%{x}<br>weight %{y:.6f}<extra></extra>"), row=2, col=1)
    fig.update_yaxes(range=[0, 1.05], row=1, col=1)
    fig.update_yaxes(range=[0, 1.05], row=2, col=1)
    return _style(fig, title, height=440)
