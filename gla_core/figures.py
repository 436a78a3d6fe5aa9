"""Every Plotly figure GLA Lab shows, built from plain numbers (lists, arrays, dicts).

No model, no trainer, no UI here: a builder takes data and returns a `go.Figure`, so the web app,
the docs and the tests draw the same pictures. Colours are the Okabe–Ito colour-blind-safe palette;
lines that matter also differ by dash, so a figure reads in grey too.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

# Okabe & Ito (2008), in the app's chart order (yellow late: thin yellow lines are faint on white).
BLUE, ORANGE, GREEN, VERMILLION, PURPLE, SKY, YELLOW, BLACK = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
TASK_COLOURS = (BLUE, ORANGE, GREEN, VERMILLION, PURPLE, SKY, YELLOW, BLACK)
GREY = "#7F7F7F"
# A perceptually uniform map readable with every common colour-vision deficiency.
SEQUENTIAL = "Cividis"
DIVERGING = [[0.0, BLUE], [0.5, "#F7F7F7"], [1.0, VERMILLION]]

# The analytic reference risks: label, colour and dash, in legend order.
ANALYTIC_LINES = {
    "zero": ("zero predictor", GREY, "dot"),
    "linear_attention": ("linear attention (best)", VERMILLION, "dash"),
    "reachable": ("best GLA-reachable", BLUE, "dashdot"),
    "optimal": ("optimal WPGD", BLACK, "solid"),
}


def task_colour(k: int) -> str:
    return TASK_COLOURS[k % len(TASK_COLOURS)]


def _style(fig: go.Figure, title: str, x_title: str = "", y_title: str = "", height: int = 360) -> go.Figure:
    """The house style: title top left, legend under the plot (it never covers data or title)."""
    plot_height = height - 90
    below_axis = (62 if x_title else 30) / plot_height   # clear of the tick labels and the axis title
    fig.update_layout(
        title={"text": title, "x": 0.0, "xanchor": "left", "y": 0.98, "yanchor": "top"},
        template="plotly_white", height=height, margin={"l": 60, "r": 20, "t": 50, "b": 40},
        legend={"orientation": "h", "yanchor": "top", "y": -below_axis, "x": 0.0, "xanchor": "left"},
        hovermode="closest", font={"size": 13},
    )
    if x_title:
        fig.update_xaxes(title_text=x_title)
    if y_title:
        fig.update_yaxes(title_text=y_title)
    return fig


def _marker(symbol: str, colour: str, size: int) -> dict:
    return {"symbol": symbol, "size": size, "color": colour, "line": {"width": 2, "color": colour}}


def _delimiter_lines(fig: go.Figure, example_task: Sequence[int], **where) -> None:
    """A dotted line between tasks, where the prompt puts a delimiter token."""
    example_task = np.asarray(example_task)
    for boundary in np.flatnonzero(np.diff(example_task)) + 1:
        fig.add_vline(x=boundary + 0.5, line={"color": GREY, "dash": "dot", "width": 1}, **where)


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
def risk_curve(history: Sequence[Mapping], analytic_risks: Mapping[str, float], total_steps: int | None = None,
               title: str = "Test risk while training") -> go.Figure:
    """Train loss and test risk over steps, with horizontal lines at the analytic risks.

    history: rows with step, train_loss, test_risk; analytic_risks: keys of ANALYTIC_LINES -> risk.
    """
    fig = go.Figure()
    steps = [row["step"] for row in history]
    x_end = max([total_steps or 0, *steps, 1])
    for key, (label, colour, dash) in ANALYTIC_LINES.items():
        if key in analytic_risks:
            risk = float(analytic_risks[key])
            fig.add_trace(go.Scatter(
                x=[0, x_end], y=[risk, risk], mode="lines", name=f"{label}: {risk:.3f}",
                line={"color": colour, "dash": dash, "width": 2},
                hovertemplate=f"{label}<br>risk %{{y:.4f}}<extra></extra>"))
    if history:
        fig.add_trace(go.Scatter(
            x=steps, y=[row["train_loss"] for row in history], mode="lines", name="train loss (one batch)",
            line={"color": SKY, "width": 1}, opacity=0.7,
            hovertemplate="step %{x}<br>train loss %{y:.4f}<extra></extra>"))
        fig.add_trace(go.Scatter(
            x=steps, y=[row["test_risk"] for row in history], mode="lines+markers", name="trained GLA: test risk",
            line={"color": GREEN, "width": 3}, marker={"size": 5},
            hovertemplate="step %{x}<br>test risk %{y:.4f}<extra></extra>"))
    fig = _style(fig, title, "training step", "risk (mean squared error)")
    # Start the view at the analytic lines: an early, large loss would flatten everything that matters.
    low = min([float(v) for v in analytic_risks.values()] + [row["test_risk"] for row in history])
    fig.update_yaxes(range=[0.9 * low, 1.15 * float(analytic_risks.get("zero", low * 2))])
    fig.update_xaxes(range=[0, x_end])
    return fig


def cosine_curve(history: Sequence[Mapping], title: str = "Do the gates learn the optimal weights?") -> go.Figure:
    """Cosine similarity between induced and analytic weights over steps (1 = the same direction)."""
    fig = go.Figure(go.Scatter(
        x=[row["step"] for row in history], y=[row["cosine"] for row in history], mode="lines+markers",
        name="cosine", line={"color": BLUE, "width": 3}, marker={"size": 5},
        hovertemplate="step %{x}<br>cosine %{y:.4f}<extra></extra>"))
    fig.add_hline(y=1.0, line={"color": BLACK, "dash": "dot", "width": 1})
    fig = _style(fig, title, "training step", "cosine(induced, analytic)", height=300)
    fig.update_yaxes(range=[min([0.0] + [row["cosine"] for row in history if np.isfinite(row["cosine"])]), 1.02])
    return fig


# ---------------------------------------------------------------- token weights
def token_weights(example_task: Sequence[int], references: Mapping[str, Sequence], induced: Sequence | None = None,
                  title: str = "Weight of each in-context example") -> go.Figure:
    """Per-example weights: the trained model's induced weights as bars coloured by task, analytic
    weights as markers (label -> weights; the first is the model's target), delimiters as dotted
    lines. All weights come scaled the same way (max |omega| = 1); induced ones take the sign of the
    target's. Before training (induced None) the target itself is drawn as faint bars.

    Per-coordinate weights (target of shape (n, d)) are drawn as heatmaps: induced, then target.
    """
    (target_label, target), *others = [(label, np.asarray(w, dtype=float)) for label, w in references.items()]
    if target.ndim == 2:
        return _token_weight_maps(target, target_label, example_task, induced, title)
    example_task = np.asarray(example_task)
    positions = np.arange(1, len(target) + 1)
    if induced is None:
        bars, bar_name, opacity = target, "{}", 0.45
    else:
        bars, bar_name, opacity = same_gauge(induced, target), "trained, {}", 1.0
    fig = go.Figure()
    for k in np.unique(example_task):
        mine = example_task == k
        fig.add_trace(go.Bar(
            x=positions[mine], y=bars[mine], name=bar_name.format(f"task {k + 1}"), marker_color=task_colour(int(k)),
            opacity=opacity, hovertemplate=f"example %{{x}} (task {k + 1})<br>weight %{{y:.3f}}<extra></extra>"))
    symbols = [("diamond", BLACK), ("circle-open", VERMILLION), ("square-open", PURPLE)]
    for (label, weights), (symbol, colour) in zip([(target_label, target), *others], symbols):
        fig.add_trace(go.Scatter(
            x=positions, y=weights, mode="markers", name=label,
            marker=_marker(symbol, colour, 10),
            hovertemplate=f"example %{{x}}<br>{label} %{{y:.3f}}<extra></extra>"))
    _delimiter_lines(fig, example_task)
    fig = _style(fig, title, "in-context example (prompt order; dotted line = delimiter)", "weight (max |ω| = 1)")
    fig.update_layout(bargap=0.15)
    return fig


def _token_weight_maps(target: np.ndarray, target_label: str, example_task: Sequence[int],
                       induced: Sequence | None, title: str) -> go.Figure:
    maps = [(target_label, target)]
    if induced is not None:
        maps.insert(0, ("trained, induced", same_gauge(induced, target)))
    fig = make_subplots(rows=len(maps), cols=1, shared_xaxes=True, vertical_spacing=0.12,
                        subplot_titles=[label for label, _ in maps])
    positions = np.arange(1, target.shape[0] + 1)
    coordinates = [f"x[{c + 1}]" for c in range(target.shape[1])]
    for row, (label, weights) in enumerate(maps, start=1):
        fig.add_trace(go.Heatmap(
            z=weights.T, x=positions, y=coordinates, zmin=-1, zmax=1, colorscale=DIVERGING, name=label,
            showscale=row == 1, colorbar={"title": "ω"},
            hovertemplate="example %{x}, %{y}<br>weight %{z:.3f}<extra>" + label + "</extra>"), row=row, col=1)
        _delimiter_lines(fig, example_task, row=row, col=1)
    fig = _style(fig, title, height=200 + 140 * len(maps))
    fig.update_xaxes(title_text="in-context example (dotted line = delimiter)", row=len(maps), col=1)
    fig.update_yaxes(title_text="key coordinate")
    return fig


def layer_weights(induced_per_layer: Sequence[Sequence], example_task: Sequence[int],
                  title: str = "Induced weights of every layer") -> go.Figure:
    """One panel per layer: the query's weight on each example (scalar weights, or the mean over
    key coordinates for vector gates), bars coloured by task."""
    example_task = np.asarray(example_task)
    layers = len(induced_per_layer)
    fig = make_subplots(rows=layers, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=[f"layer {layer + 1}" for layer in range(layers)])
    for layer, weights in enumerate(induced_per_layer, start=1):
        weights = np.asarray(weights, dtype=float)
        if weights.ndim == 2:
            weights = weights.mean(axis=1)
        positions = np.arange(1, len(weights) + 1)
        for k in np.unique(example_task):
            mine = example_task == k
            fig.add_trace(go.Bar(
                x=positions[mine], y=weights[mine], name=f"task {k + 1}", marker_color=task_colour(int(k)),
                legendgroup=f"task {k}", showlegend=layer == 1,
                hovertemplate=f"layer {layer}, example %{{x}} (task {k + 1})<br>weight %{{y:.3f}}<extra></extra>"),
                row=layer, col=1)
        _delimiter_lines(fig, example_task, row=layer, col=1)
    fig = _style(fig, title, height=140 + 170 * layers)
    fig.update_xaxes(title_text="in-context example", row=layers, col=1)
    return fig


def gate_values(gates_per_layer: Sequence[Sequence], token_labels: Sequence[str],
                coordinate_labels: Sequence[str] | None = None, title: str = "Gate values per token") -> go.Figure:
    """Mean gate of every token in every layer: a heatmap, rows = layers (scalar gates) or one panel
    per layer with rows = key coordinates (vector gates). Gates near 1 keep the past; small gates forget."""
    gates = [np.asarray(layer_gates, dtype=float) for layer_gates in gates_per_layer]
    hover = "token %{x}<br>%{y}<br>gate %{z:.3f}<extra></extra>"
    if gates[0].ndim == 1:
        fig = go.Figure(go.Heatmap(
            z=np.stack(gates), x=list(token_labels), y=[f"layer {layer + 1}" for layer in range(len(gates))],
            zmin=0, zmax=1, colorscale=SEQUENTIAL, colorbar={"title": "gate"}, hovertemplate=hover))
        return _style(fig, title, "token (prompt order)", height=160 + 50 * len(gates))
    fig = make_subplots(rows=len(gates), cols=1, shared_xaxes=True, vertical_spacing=0.1,
                        subplot_titles=[f"layer {layer + 1}" for layer in range(len(gates))])
    for layer, layer_gates in enumerate(gates, start=1):
        fig.add_trace(go.Heatmap(
            z=layer_gates.T, x=list(token_labels),
            y=list(coordinate_labels or [f"coordinate {c + 1}" for c in range(layer_gates.shape[1])]),
            zmin=0, zmax=1, colorscale=SEQUENTIAL, showscale=layer == 1, colorbar={"title": "gate"},
            hovertemplate=hover), row=layer, col=1)
    return _style(fig, title, height=120 + 220 * len(gates))


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
    styles = {
        "optimal": ("optimal WPGD", BLACK, "solid"),
        "scalar_gla": ("scalar-gated GLA (best)", BLUE, "dashdot"),
        "vector_gla": ("vector-gated GLA (best)", GREEN, "longdash"),
        "linear_attention": ("linear attention (best)", VERMILLION, "dash"),
    }
    if gating_wins is not None:
        spacing = np.diff(x_plot)
        for start, stop in _runs_of_true(gating_wins):
            left = spacing[start - 1] / 2 if start > 0 else (spacing[0] / 2 if len(spacing) else 0.5)
            right = spacing[stop - 1] / 2 if stop - 1 < len(spacing) else left
            fig.add_vrect(x0=x_plot[start] - left, x1=x_plot[stop - 1] + right, fillcolor=SKY, opacity=0.18,
                          line_width=0, annotation_text="gating wins", annotation_position="top left")
    hover_x = "%{text}" if labels else "%{x:.3g}"
    for key, values in risks.items():
        label, colour, dash = styles.get(key, (key, GREY, "solid"))
        fig.add_trace(go.Scatter(x=x_plot, y=values, text=labels, mode="lines+markers", name=label,
                                 line={"color": colour, "dash": dash, "width": 2.5}, marker={"size": 6},
                                 hovertemplate=f"{label}<br>{hover_x}: risk %{{y:.4f}}<extra></extra>"))
    markers = {"linear_attention": ("trained linear attention", VERMILLION, "x"),
               "scalar_gla": ("trained scalar GLA", BLUE, "circle-open"),
               "vector_gla": ("trained vector GLA", GREEN, "square-open")}
    for key, points in (trained or {}).items():
        if points:
            label, colour, symbol = markers.get(key, (key, GREY, "circle"))
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


def depth_chart(layers: Sequence[int], trained_risks: Sequence[float | None], analytic_risks: Mapping[str, float],
                title: str = "Test risk against depth") -> go.Figure:
    """Trained test risk per number of layers, with the one-step analytic risks as horizontal lines."""
    fig = go.Figure()
    x_range = [min(layers) - 0.5, max(layers) + 0.5]
    for key, (label, colour, dash) in ANALYTIC_LINES.items():
        if key in analytic_risks:
            risk = float(analytic_risks[key])
            fig.add_trace(go.Scatter(x=x_range, y=[risk, risk], mode="lines", name=f"{label} (one step): {risk:.3f}",
                                     line={"color": colour, "dash": dash, "width": 2},
                                     hovertemplate=f"{label}<br>risk %{{y:.4f}}<extra></extra>"))
    done = [(layer, risk) for layer, risk in zip(layers, trained_risks) if risk is not None]
    if done:
        fig.add_trace(go.Scatter(x=[layer for layer, _ in done], y=[risk for _, risk in done], mode="lines+markers",
                                 name="trained GLA: test risk", line={"color": GREEN, "width": 3},
                                 marker={"size": 11}, hovertemplate="%{x} layers<br>test risk %{y:.4f}<extra></extra>"))
    fig = _style(fig, title, "layers (= WPGD steps)", "risk", height=380)
    fig.update_xaxes(range=x_range, tickmode="array", tickvals=list(layers))
    # Frame the interesting band: from below the best risk to just above linear attention (the zero
    # predictor's line, far above, stays in the legend with its value).
    shown = [risk for key, risk in analytic_risks.items() if key != "zero"] + [risk for _, risk in done]
    fig.update_yaxes(range=[0.85 * min(shown), 1.1 * max(shown)])
    return fig


# ---------------------------------------------------------------- the WPGD landscape
def _point_markers() -> dict:
    """How the landscape marks its special weightings: key -> (label, symbol, colour)."""
    return {"optimal": ("optimal WPGD ω*", "star", BLACK),
            "linear_attention": ("uniform ω (linear attention)", "x", VERMILLION),
            "monotone_best": ("best scalar-gated ω", "circle-open", BLUE)}


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
