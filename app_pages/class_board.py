"""Class board: a teacher creates a class, students join by link or code under generated names, and every
run they finish lands on one board for the projector: induced weights on the analytic ones, grouped
by settings; cosines and risks against the theory; a sortable table, downloadable as CSV."""
from __future__ import annotations

import io
from collections import defaultdict
from functools import partial
from urllib.parse import urlencode, urlsplit, urlunsplit

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import segno
import streamlit as st
from plotly.subplots import make_subplots

import lab_ui
from gla_core import board, figures
from gla_core.spec import list_presets
from lab_ui import board as lab_board, keys

REFRESH_SECONDS = 5          # how often the board reads new runs while the page is open
JOIN_PARAM = "join"          # ?join=CODE: the class link students open
VIEW_PARAM = "board"         # ?board=CODE: the board alone, for a projector or a second screen
TEACHER_PARAM = "teacher_key"   # ?board=CODE&teacher_key=KEY: the teacher's link, reopening the class's controls
URL_PATH = "board"           # this page's url_path in app.py


def page_link(**params: str) -> str:
    """This page's address with these query parameters."""
    here = urlsplit(st.context.url or "")
    path = here.path.rstrip("/")
    if not path.endswith(f"/{URL_PATH}"):   # behind a proxy the path keeps its prefix
        path = f"{path}/{URL_PATH}"
    return urlunsplit((here.scheme or "http", here.netloc or "localhost:8501", path, urlencode(params), ""))


def qr_code(link: str, kind: str) -> bytes:
    """The link as a QR code image, kind "png" or "svg" (medium error correction: a projector is blurry)."""
    out = io.BytesIO()
    segno.make(link, error="m").save(out, kind=kind, scale=8, border=2)
    return out.getvalue()


# ---------------------------------------------------------------- figures (plain data in, figures out)
def _mean_over_coordinates(weights: np.ndarray) -> np.ndarray:
    """(n,) weights as they are; (n, d) per-coordinate weights averaged over the coordinates."""
    return weights.reshape(len(weights), -1).mean(axis=1)


def weights_figure(records: list[dict], title: str) -> go.Figure:
    """Every run's induced weights, each in its analytic target's gauge (figures.same_gauge: max |omega| = 1,
    the target's sign), over the target (the best weights this gating can reach) and optimal WPGD."""
    target_key = board.GATING_TARGET[records[0]["gating"]]
    target = np.asarray(records[0]["analytic"][target_key]["omega"], dtype=float)
    example = np.arange(1, len(target) + 1)
    fig = go.Figure()
    for key in dict.fromkeys(("optimal", target_key)):    # the optimum, and the reachable one when it differs
        omega = np.asarray(records[0]["analytic"][key]["omega"], dtype=float)
        quantity = figures.QUANTITIES[key]
        fig.add_scatter(x=example, y=_mean_over_coordinates(figures.same_gauge(omega, omega)), mode="lines+markers",
                        line={"color": quantity.colour, "dash": quantity.dash, "width": 3},
                        marker={"symbol": quantity.symbol, "size": 7}, name=quantity.label)
    trained = figures.QUANTITIES["trained"]
    for index, record in enumerate(records):   # drawn over the theory: thin lines, each run visible
        induced = figures.same_gauge(record["induced"], target)
        fig.add_scatter(x=example, y=_mean_over_coordinates(induced), mode="lines", opacity=0.4,
                        line={"color": trained.colour, "width": 1.5}, name=f"trained runs ({len(records)})",
                        legendgroup="trained", showlegend=index == 0, hovertext=record.get("student", ""))
    fig.update_layout(title={"text": title, "x": 0.0}, template="plotly_white", height=340,
                      margin={"l": 60, "r": 20, "t": 50, "b": 40}, legend={"orientation": "h", "y": -0.25},
                      xaxis_title="example (prompt order, the query after the last)",
                      yaxis_title="weight (max |ω| = 1)")
    return fig


def spread_figure(groups: list[tuple[str, list[dict]]]) -> go.Figure:
    """Per settings group: the runs' cosines (left) and test risks (right), with the theory's risks per
    group as short horizontal marks: linear attention, the best this gating reaches, optimal WPGD."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("cosine with the analytic weights", "test risk"))
    trained = figures.QUANTITIES["trained"]
    for name, records in groups:
        names = [record.get("student", "") for record in records]
        for col, values in ((1, [record["cosine"] for record in records]), (2, [record["test_risk"] for record in records])):
            fig.add_trace(go.Box(x=[name] * len(records), y=values, boxpoints="all", jitter=0.4, pointpos=0,
                                 marker={"color": trained.colour, "size": 7}, line={"color": trained.colour},
                                 fillcolor="rgba(0,0,0,0)", hovertext=names, name=name, showlegend=False),
                          row=1, col=col)
    for key in ("linear_attention", "scalar_gla", "vector_gla", "optimal"):
        # linear attention and optimal WPGD for every group; a gated model's best for the groups with its gating
        marked = [(name, records[0]["analytic"][key]["risk"]) for name, records in groups
                  if key in ("linear_attention", "optimal") or board.GATING_TARGET[records[0]["gating"]] == key]
        if not marked:
            continue
        quantity = figures.QUANTITIES[key]
        fig.add_trace(go.Scatter(x=[name for name, _ in marked], y=[risk for _, risk in marked], mode="markers",
                                 name=quantity.label, marker={"symbol": "line-ew-open", "size": 44,
                                                              "color": quantity.colour,
                                                              "line": {"width": 3, "color": quantity.colour}}),
                      row=1, col=2)
    fig.update_layout(template="plotly_white", height=380, margin={"l": 60, "r": 20, "t": 50, "b": 40},
                      legend={"orientation": "h", "y": -0.15})
    return fig


# ---------------------------------------------------------------- page
st.title("Class board")
st.markdown("Every student trains their own model; the board puts all of them on one chart. If the optimal "
            "weights are **unique up to scaling**, every run with the same settings lands on the same curve.")

link_code = st.query_params.get(JOIN_PARAM)
if link_code:
    del st.query_params[JOIN_PARAM]    # a reload must not join again under a second name
    current = lab_board.joined_class()
    try:
        if current is None or current[0] != board.normalise_code(link_code):
            lab_board.join(link_code)
    except (board.BoardError, board.BoardUnavailable) as error:
        st.error(str(error))

view_code = st.query_params.get(VIEW_PARAM)
teacher_key = st.query_params.get(TEACHER_PARAM)
if teacher_key:
    del st.query_params[TEACHER_PARAM]    # not left in the address bar of a projected page
    try:
        if not (view_code and board.is_teacher(view_code, teacher_key)):
            raise board.BoardError("teacher link: it does not belong to this class; open the link the class page gave")
        st.session_state[keys.BOARD_TEACHER] = (board.normalise_code(view_code), teacher_key)
    except (board.BoardError, board.BoardUnavailable) as error:
        st.error(str(error))

teacher = st.session_state.get(keys.BOARD_TEACHER)
membership = lab_board.joined_class()


def create_class() -> None:
    try:
        room = board.create_class(st.session_state.board_title, st.session_state.board_preset,
                                  st.session_state.board_open, float(st.session_state.board_days))
    except (board.BoardError, board.BoardUnavailable) as error:
        st.session_state[keys.BOARD_MESSAGE] = str(error)
        return
    st.session_state[keys.BOARD_TEACHER] = (room.code, room.teacher_key)


def join_typed() -> None:
    try:
        lab_board.join(st.session_state.board_code)
    except (board.BoardError, board.BoardUnavailable) as error:
        st.session_state[keys.BOARD_MESSAGE] = str(error)


def teacher_action(action) -> None:
    code, key = st.session_state[keys.BOARD_TEACHER]
    try:
        action(code, key)
    except (board.BoardError, board.BoardUnavailable) as error:
        st.session_state[keys.BOARD_MESSAGE] = str(error)


def forget_class() -> None:
    st.session_state.pop(keys.BOARD_TEACHER, None)


def withdraw(run_id: str) -> None:
    try:
        board.withdraw_run(*membership, run_id)
    except (board.BoardError, board.BoardUnavailable) as error:
        st.session_state[keys.BOARD_MESSAGE] = str(error)


message = st.session_state.pop(keys.BOARD_MESSAGE, None)
if message:
    st.error(message)
problem = lab_board.post_problem(membership)
if problem:
    st.warning(problem)

board_code = teacher[0] if teacher else membership[0] if membership else view_code
room = None
if board_code:
    try:
        room = board.get_class(board_code)
    except (board.BoardError, board.BoardUnavailable) as error:
        st.error(str(error))
        if teacher or membership:   # an expired class: let the tab start afresh
            st.button("Forget this class", key="board_forget_gone",
                      on_click=forget_class if teacher else lab_board.leave)

if teacher and room:
    link = page_link(**{JOIN_PARAM: room.code})
    info_col, qr_col = st.columns([2, 1])
    with info_col:
        st.subheader("Your class")
        st.text(room.title)      # a teacher's words, shown as typed (no markdown)
        st.caption("Class code (students may type it on the Class board page):")
        st.code(room.display_code, language=None)
        st.caption("Join link:")
        st.code(link, language=None)
        expires = pd.Timestamp(room.expires, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M UTC")
        st.caption(f"Preset {room.preset}; students may change: {', '.join(room.open_settings) or 'nothing'}. "
                   f"{'Closed: no more joins or runs. ' if room.closed else ''}Expires {expires}.")
        clear_col, close_col, new_col = st.columns(3)
        clear_col.button("Clear board", key="board_clear", on_click=teacher_action, args=(board.clear_board,),
                         help="Deletes every run on the board; students stay in the class.")
        close_col.button("Close class", key="board_close", on_click=teacher_action, args=(board.close_class,),
                         disabled=room.closed, help="No more joins or runs; the board stays until it expires.")
        new_col.button("Start another class", key="board_forget", on_click=forget_class)
        st.caption("The board alone, for a projector or another screen:")
        st.code(page_link(**{VIEW_PARAM: room.code}), language=None)
        with st.expander("Teacher link: reopens these controls in another tab or after a reload (keep it private)"):
            st.code(page_link(**{VIEW_PARAM: room.code, TEACHER_PARAM: teacher[1]}), language=None)
    with qr_col:
        st.image(qr_code(link, "png"), caption="Scan to join", width=260)
        st.download_button("QR code (SVG)", qr_code(link, "svg"), file_name="class-qr.svg", mime="image/svg+xml",
                           key="board_qr_svg")
elif not membership and not view_code:
    create_col, join_col = st.columns(2)
    with create_col.form("board_create_form"):
        st.subheader("Teacher: create a class")
        st.text_input("Class name", key="board_title", max_chars=board.MAX_TITLE_CHARS, placeholder="Tuesday lab")
        st.selectbox("Preset", list_presets(), key="board_preset", index=list_presets().index("default"))
        st.multiselect("Settings students may change", list(board.ADJUSTABLE_SETTINGS),
                       default=list(board.ADJUSTABLE_SETTINGS), key="board_open",
                       format_func=lambda name: f"{name}: {lab_ui.SETTING_LABELS[name]}")
        st.number_input("Expires after (days)", min_value=1, max_value=int(board.MAX_DAYS),
                        value=int(board.DEFAULT_DAYS), key="board_days")
        st.form_submit_button("Create class", on_click=create_class, type="primary")
    with join_col.form("board_join_form"):
        st.subheader("Student: join a class")
        st.text_input("Class code", key="board_code", placeholder="XXXXX-XXXXX-XXXXX-XXXXX")
        st.form_submit_button("Join", on_click=join_typed, type="primary")
        st.caption("You get a made-up name; nothing about you is stored. Every run you finish is posted to the "
                   "class board, and you can withdraw yours.")

if membership and room:
    student = membership[1]
    st.subheader(f"You are {student}")
    st.text(f"Class: {room.title}")
    st.caption(f"Train on any page: each run you finish is posted here. Preset {room.preset}; you may change "
               f"{', '.join(room.open_settings) or 'nothing'}.")
    st.button("Leave class", key="board_leave", on_click=lab_board.leave,
              help="Your posted runs stay on the board; withdraw them first to take them off.")


@st.fragment(run_every=REFRESH_SECONDS if room else None)
def show_board() -> None:
    try:
        runs = board.list_runs(room.code)
    except (board.BoardError, board.BoardUnavailable) as error:
        st.error(str(error))
        return
    if membership:
        mine = [run for run in runs if run.student == membership[1]]
        if mine:
            with st.expander(f"Your runs on the board ({len(mine)})"):
                for run in mine:
                    text_col, button_col = st.columns([4, 1])
                    text_col.text(f"{board.settings_label(run.record)}: risk {run.record['test_risk']:.3f}, "
                                  f"seed {run.record['seed']}")
                    button_col.button("Withdraw", key=f"board_withdraw_{run.run_id}", on_click=withdraw,
                                      args=(run.run_id,))
    st.subheader(f"The board: {len(runs)} run{'s' if len(runs) != 1 else ''}")
    if not runs:
        st.info("No runs yet: each run a student finishes appears here within a few seconds.")
        return
    by_settings: dict[str, list[dict]] = defaultdict(list)
    for run in runs:
        by_settings[run.settings].append({**run.record, "student": run.student})
    groups = [(f"G{number}", records) for number, records in enumerate(
        sorted(by_settings.values(), key=len, reverse=True), start=1)]
    for name, records in groups:
        reached = sum(board.reached_optimum(record) for record in records)
        label = board.settings_label(records[0])
        lab_ui.chart(partial(weights_figure, records, f"{name}: {label}"),
                     f"{name}: {reached} of {len(records)} runs at the best risk this gating can reach (within 2 "
                     "standard errors). Each thin line is one run's learned weights, scaled like the analytic "
                     "ones (per-coordinate weights averaged over the coordinates).", key=f"board_weights_{name}")
    lab_ui.chart(partial(spread_figure, groups),
                 "Left: how close each run's weights are to the analytic ones in direction (1 = the same up to "
                 "scaling). Right: each run's test risk; marks: the theory's risks for that group's settings.",
                 key="board_spread")
    table = pd.DataFrame(board.table_rows(runs), columns=board.TABLE_COLUMNS)
    st.dataframe(table, hide_index=True, key="board_table", column_config={
        "risk": st.column_config.NumberColumn("risk", format="%.3f"),
        "risk_se": st.column_config.NumberColumn("± SE", format="%.3f"),
        "cosine": st.column_config.NumberColumn("cosine", format="%.3f")})
    st.download_button("Download the table (CSV)", board.table_csv(runs), file_name="class-board.csv",
                       mime="text/csv", key="board_csv")


if room:
    show_board()
