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
from gla_core.spec import list_presets
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
    link = lab_board.page_link(**{lab_board.JOIN_PARAM: room.code})
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
        clear_col.button("Clear board", key="board_clear", on_click=lab_board.teacher_action, args=(board.clear_board,),
                         help="Deletes every run on the board; students stay in the class.")
        close_col.button("Close class", key="board_close", on_click=lab_board.teacher_action, args=(board.close_class,),
                         disabled=room.closed, help="No more joins or runs; the board stays until it expires.")
        new_col.button("Start another class", key="board_forget", on_click=lab_board.forget_class)
        st.caption("The board alone, for a projector or another screen:")
        st.code(lab_board.page_link(**{lab_board.VIEW_PARAM: room.code}), language=None)
        with st.expander("Teacher link: reopens these controls in another tab or after a reload (keep it private)"):
            st.code(lab_board.page_link(**{lab_board.VIEW_PARAM: room.code, lab_board.TEACHER_PARAM: teacher[1]}),
                    language=None)
    with qr_col:
        st.image(lab_board.qr_code(link, "png"), caption="Scan to join", width=260)
        st.download_button("QR code (SVG)", lab_board.qr_code(link, "svg"), file_name="class-qr.svg",
                           mime="image/svg+xml",
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
        st.form_submit_button("Create class", on_click=lab_board.create_from_form, type="primary")
    with join_col.form("board_join_form"):
        st.subheader("Student: join a class")
        st.text_input("Class code", key="board_code", placeholder="XXXXX-XXXXX-XXXXX-XXXXX")
        st.form_submit_button("Join", on_click=lab_board.join_from_form, type="primary")
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
