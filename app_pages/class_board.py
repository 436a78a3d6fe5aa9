"""Class board: a teacher creates a class, students join by link or code under generated names, and every
run they finish lands on one board for the projector: induced weights on the analytic ones, grouped
by settings; cosines and risks against the theory; a sortable table, downloadable as CSV."""
from __future__ import annotations

from collections import defaultdict
from functools import partial

import pandas as pd
import streamlit as st

import lab_ui
from gla_core import board, figures
from gla_core.train import ANALYTIC_KEY
from lab_ui import board as lab_board, keys

REFRESH_SECONDS = 5          # how often the board reads new runs while the page is open


# ---------------------------------------------------------------- page
st.title("Class board")
st.markdown("Every student trains their own model; the board puts all of them on one chart. If the optimal "
            "weights are **unique up to scaling**, every run with the same settings lands on the same curve.")

view_code = lab_board.follow_links()
teacher = st.session_state.get(keys.BOARD_TEACHER)
membership = lab_board.joined_class()
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
                      on_click=lab_board.forget_class if teacher else lab_board.leave)

if teacher and room:
    lab_board.teacher_panel(room, teacher[1])
elif not membership and not view_code:
    lab_board.create_and_join_forms(lab_ui.SETTING_LABELS)
if membership and room:
    lab_board.student_panel(room, membership[1])


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
                    button_col.button("Withdraw", key=f"board_withdraw_{run.run_id}", on_click=lab_board.withdraw,
                                      args=(membership, run.run_id))
    st.subheader(f"The board: {len(runs)} run{'s' if len(runs) != 1 else ''}")
    if not runs:
        st.info("No runs yet: each run a student finishes appears here within a few seconds.")
        return
    by_settings: dict[str, list[dict]] = defaultdict(list)
    for run in runs:
        by_settings[run.settings].append({**run.record, "student": run.student})
    groups = [(f"G{number}", ANALYTIC_KEY[records[0]["gating"]], records) for number, records in enumerate(
        sorted(by_settings.values(), key=len, reverse=True), start=1)]
    for name, target_key, records in groups:
        reached = sum(board.reached_optimum(record) for record in records)
        label = board.settings_label(records[0])
        lab_ui.chart(partial(figures.board_weights, records, target_key, f"{name}: {label}"),
                     f"{name}: {reached} of {len(records)} runs at the best risk this gating can reach (within 2 "
                     "standard errors). Each thin line is one run's learned weights, scaled like the analytic "
                     "ones (per-coordinate weights averaged over the coordinates).", key=f"board_weights_{name}")
    lab_ui.chart(partial(figures.board_spread, groups),
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
