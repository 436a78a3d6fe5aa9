"""Charts: a Plotly figure drawn from a recipe only when its data change, sized for the projector in
teacher mode; the labels and theory lines the figures are given; the Playground's replay of the weights
and gates, and the words under them."""
from __future__ import annotations

import json
from functools import partial
from typing import Any, Callable

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from gla_core.figures import QUANTITIES, gate_values, training_replay, weight_maps
from gla_core.sampling import DELIMITER, EXAMPLE, layout
from gla_core.spec import PromptSpec
from gla_core.train import ANALYTIC_KEY
from lab_ui import keys
from lab_ui.controls import teacher_mode
from lab_ui.resources import PROCESS_TOKEN

CHART_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


def chart(recipe: Callable[[], go.Figure], description: str, key: str) -> None:
    """A Plotly chart with its plain-words description underneath and as its alt text; larger fonts
    for a projector in teacher mode.

    `recipe` builds the figure: `functools.partial(figures.depth_chart, depths, trained, risks)`. It is called
    only when its function or arguments differ from what this chart (`key`) drew last in this
    session: a live panel redraws every POLL_SECONDS while its data changes only at evaluations, and
    building Plotly figures costs tens of milliseconds of server time under the GIL, per chart, per tab.
    """
    memo = st.session_state.setdefault(keys.FIGURE_MEMO, {})
    drawing = fingerprint(recipe, teacher_mode())
    if key not in memo or memo[key][0] != drawing:
        figure = recipe()
        if teacher_mode():
            enlarge_for_projector(figure)
        memo[key] = (drawing, figure)
    st.plotly_chart(memo[key][1], config=CHART_CONFIG, key=key, width="stretch", alt=description)
    st.caption(description)


def enlarge_for_projector(figure: go.Figure) -> None:
    """Teacher mode: every text of a chart at projector size. Ticks, legends, subplot titles and the
    replay's buttons are set one by one, since Streamlit's chart theme gives them sizes of their own."""
    figure.update_layout(font={"size": 18}, legend={"font": {"size": 17}}, title={"font": {"size": 21}},
                         height=int((figure.layout.height or 360) * 1.2))
    figure.update_xaxes(tickfont={"size": 16}, title_font={"size": 17})
    figure.update_yaxes(tickfont={"size": 16}, title_font={"size": 17})
    figure.update_annotations(font={"size": 18})
    for menu in figure.layout.updatemenus or ():
        menu.font = {"size": 16}
    for slider in figure.layout.sliders or ():
        slider.font, slider.currentvalue.font = {"size": 15}, {"size": 17}


def fingerprint(recipe: Callable[[], go.Figure], *context: Any) -> str:
    """What a recipe draws, as text: its function and every argument (numbers in full, never abbreviated): what chart() compares."""
    function = getattr(recipe, "func", recipe)
    return json.dumps([function.__module__, function.__qualname__, getattr(recipe, "args", ()),
                       getattr(recipe, "keywords", {}), context], sort_keys=True, default=_plain)


def _plain(value: Any) -> Any:
    """NumPy arrays and scalars as lists and numbers, for fingerprint's json.dumps."""
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    raise TypeError(f"a chart's arguments must be plain data, got {type(value).__name__}")


def token_labels(spec: PromptSpec) -> list[str]:
    """Short unique names of the prompt's tokens: 'T2·3' (task 2, its example 3), 'D2' (delimiter
    after task 2), 'Q' (the query)."""
    prompt = layout(spec)
    labels, counts = [], np.zeros(spec.num_tasks, dtype=int)
    for kind, task in zip(prompt.kind, prompt.task):
        if kind == EXAMPLE:
            counts[task] += 1
            labels.append(f"T{task + 1}·{counts[task]}")
        else:
            labels.append(f"D{task + 1}" if kind == DELIMITER else "Q")
    return labels


def analytic_risks(analytic: dict, gating: str) -> dict[str, float]:
    """The risks a training curve is compared with (figures.QUANTITIES keys): predicting 0, linear
    attention, optimal WPGD and the best this gating can reach."""
    keys = ("zero", "linear_attention", "optimal", ANALYTIC_KEY[gating])
    return {key: analytic[key]["risk"] for key in keys}


def replay_id(*parts: Any) -> str:
    """The id a replay figure carries (figures' replay_id): the browser plays each id by itself once. It
    holds this server process's own token, since run ids start again at 1 when the server restarts."""
    return json.dumps([PROCESS_TOKEN, *parts], sort_keys=True, default=str)


def weights_replay(spec: PromptSpec, gating: str, steps: int, analytic: dict, frames: list[dict], show_theory: bool,
                   replay: bool, replay_id: str) -> None:
    """The Playground's main chart (figures.training_replay): the first layer's weights per example at each
    frame of a run, with the test risk and cosine below; markers for the weights this gating can reach (and
    for scalar gates the optimal WPGD weights, where they differ). For vector gates, the target's weights
    per key coordinate beside it."""
    target_key = ANALYTIC_KEY[gating]
    references = {target_key: analytic[target_key]["omega"]}
    if gating == "scalar" and not np.allclose(analytic["optimal"]["omega"], analytic[target_key]["omega"], atol=1e-3):
        references["optimal"] = analytic["optimal"]["omega"]
    with st.container(key="replay_weights"):
        chart(partial(training_replay, spec.example_task, references, frames, analytic_risks(analytic, gating), steps,
                      show_theory, replay, replay_id=replay_id),
              replay_caption(spec, gating, len(frames), replay, show_theory, with_optimal="optimal" in references),
              key="weights_chart")
    if gating == "vector" and show_theory:
        chart(partial(weight_maps, spec.example_task, {target_key: analytic[target_key]["omega"]}),
              f"The {QUANTITIES[target_key].label} weights, per example and key coordinate, scaled so the largest is 1.",
              key="target_map")


def replay_caption(spec: PromptSpec, gating: str, num_frames: int, replay: bool, show_theory: bool,
                   with_optimal: bool) -> str:
    """The words under the Playground's weights chart (figures.training_replay), saying what is on it now:
    the untrained model, the run as it trains, or its replay; bars or a heatmap; markers for the theory's
    weights (the optimal WPGD ones too when `with_optimal`) unless the theory is hidden."""
    per_coordinate = gating == "vector"
    state = ("Before training: the untrained model, whose gates all start at the same value, so the weights are "
             "nearly equal. " if num_frames == 1 else
             "The replay of your run, from the untrained model to the end: Play, Pause, a speed and the step slider "
             "under the chart. " if replay else "Your run as it trains. ")
    weights = ("Top: the trained model's weight on each example and key coordinate (a heatmap, first layer). "
               if per_coordinate else
               "Bars: the weight the model's gates give each in-context example (first layer), coloured by task. ")
    target = QUANTITIES[ANALYTIC_KEY[gating]]
    theory = ((f"Markers: the {target.label} weights" + (" and the optimal WPGD weights" if with_optimal else "")
               + "; lines: the theory's risks. ") if show_theory and not per_coordinate else
              "Lines: the theory's risks. " if show_theory else "The theory is hidden until the run ends. ")
    delimiters = "Dotted lines: delimiter tokens. " if spec.delimiter_width and not per_coordinate else ""
    return (state + weights + theory + delimiters
            + "Below: the test risk (± standard error) and the cosine, with the step on screen circled.")


def gates_chart(spec: PromptSpec, frames: list[dict], replay: bool) -> None:
    """Every token's mean gate in every layer, for the run's frames (figures.gate_values; Play replays them),
    or the words for a model without gates."""
    if frames[-1]["gates"] and frames[-1]["gates"][0] is not None:
        coordinates = ([f"x{c + 1}" for c in range(spec.d)] + ["y"]
                       + [f"delimiter {c + 1}" for c in range(spec.delimiter_width)])
        with st.container(key="replay_gates"):
            chart(partial(gate_values, [frame["gates"] for frame in frames], token_labels(spec), coordinates,
                          [frame["step"] for frame in frames], animate=replay),
                  "Mean gate value of every token in every layer (T2·3: task 2, example 3; "
                  + ("D2: the delimiter after task 2; " if spec.delimiter_width else "")
                  + "Q: the query). A small gate shrinks everything before it."
                  + (" Play replays the run." if replay else ""), key="gates_chart")
    else:
        st.caption("Linear attention has no gates: every gate is 1, so every example counts the same.")
