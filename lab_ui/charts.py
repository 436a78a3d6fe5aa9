"""Charts: a Plotly figure drawn from a recipe only when its data change, sized for the projector in
teacher mode; the labels and theory lines the figures are given."""
from __future__ import annotations

import json
from typing import Any, Callable

import numpy as np
import plotly.graph_objects as go
import streamlit as st

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
