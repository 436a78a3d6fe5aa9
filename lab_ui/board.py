"""The class board in the app: which class this browser tab has joined, and as whom (session state),
and posting a finished run there from a training thread.

A training run ends in its own thread, where st.session_state cannot be read. So a page takes the
membership when it starts the run (joined_class(), in the script's thread) and hands it to
post_finished, which the run's on-finished hook calls; a post that fails is kept here, per
membership, for the board page to say (post_problem): never dropped silently.

Also the Class board page's own glue: its links (join, projector, teacher), its QR code, its panels (the
teacher's class, the forms to create and join one, the student's place) and the callbacks of their forms
and buttons, which report a refusal once (keys.BOARD_MESSAGE).
"""
from __future__ import annotations

import hashlib
import hmac
import io
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable
from urllib.parse import urlencode, urlsplit, urlunsplit

import segno
import streamlit as st

from gla_core import board
from gla_core.spec import list_presets
from lab_ui import keys
from lab_ui.resources import browser_id

JOIN_PARAM = "join"             # ?join=CODE: the class link students open
VIEW_PARAM = "board"            # ?board=CODE: the board alone, for a projector or a second screen
TEACHER_PARAM = "teacher_key"   # ?board=CODE&teacher_key=KEY: the teacher's link, reopening the class's controls
URL_PATH = "board"              # the Class board page's url_path in app.py

_problems: dict[tuple[str, str], str] = {}
_problems_lock = threading.Lock()


def joined_class() -> tuple[str, str] | None:
    """(class code, student name) when this session has joined a class, else None. Script thread only."""
    code, student = st.session_state.get(keys.BOARD_CLASS), st.session_state.get(keys.BOARD_STUDENT)
    return (code, student) if code and student else None


@dataclass(frozen=True)
class ClassRules:
    """What a joined class fixes on the training pages: its preset, and the setting groups
    (board.ADJUSTABLE_SETTINGS) its students may not change."""

    title: str
    preset: str
    locked: frozenset[str]


def class_rules() -> ClassRules | None:
    """The rules of the class this session has joined; None outside a class, or when the class cannot
    be read now (gone, or its database away: the board page says which)."""
    membership = joined_class()
    if membership is None:
        return None
    try:
        room = board.get_class(membership[0])
    except (board.BoardError, board.BoardUnavailable):
        return None
    return ClassRules(room.title, room.preset, frozenset(board.ADJUSTABLE_SETTINGS) - set(room.open_settings))


def join(code: str) -> str:
    """Join the class with this code as a newly generated name, and remember it in the session.
    Raises board.BoardError (bad, expired or closed class) or board.BoardUnavailable."""
    code = board.normalise_code(code)
    student = board.join_class(code)
    st.session_state[keys.BOARD_CLASS], st.session_state[keys.BOARD_STUDENT] = code, student
    return student


def leave() -> None:
    """Forget the joined class in this session (its posted runs stay on the board)."""
    st.session_state.pop(keys.BOARD_CLASS, None)
    st.session_state.pop(keys.BOARD_STUDENT, None)
    st.query_params.pop(keys.SEAT, None)


def keep_seat() -> None:
    """Keep this tab's place in its class over a reload, which starts a new session: while it is in a
    class the address holds `seat=CODE.name.mac`, and a new session that finds it takes the seat back
    when the mac is this browser's (a copied link's seat is another browser's: dropped quietly, so no
    one posts under a classmate's name). Called by the frame (app.py) on every page run."""
    browser, membership = browser_id(), joined_class()
    if membership is not None:
        if browser is not None:
            st.query_params[keys.SEAT] = ".".join([*membership, _seat_mac(browser, *membership)])
        return
    seat = st.query_params.pop(keys.SEAT, None)
    parts = str(seat).split(".") if seat else []
    if browser is not None and len(parts) == 3 and hmac.compare_digest(parts[2], _seat_mac(browser, *parts[:2])):
        st.session_state[keys.BOARD_CLASS], st.session_state[keys.BOARD_STUDENT] = parts[:2]


def _seat_mac(browser: str, code: str, student: str) -> str:
    """Ties a seat to the browser (browser_id: from the secret in its XSRF cookie, never shown)."""
    return hashlib.sha256(f"{browser}|{code}|{student}".encode()).hexdigest()[:20]


def post_finished(membership: tuple[str, str] | None, result: dict) -> None:
    """Post a finished run (Trainer.result()) for `membership` (joined_class() taken when the run
    started); nothing when it is None. Safe from any thread: a refusal or an unreachable database is
    kept for post_problem instead of raised into the training thread."""
    if membership is None:
        return
    try:
        board.post_run(*membership, result)
    except (board.BoardError, board.BoardUnavailable) as error:
        with _problems_lock:
            _problems[membership] = f"A run was not posted to the class board: {error}"


def post_problem(membership: tuple[str, str] | None) -> str | None:
    """The last post that failed for this membership, once (it is forgotten when read)."""
    with _problems_lock:
        return _problems.pop(membership, None) if membership else None


# ---------------------------------------------------------------- the Class board page's links and buttons
def page_link(**params: str) -> str:
    """This page's address with these query parameters."""
    here = urlsplit(st.context.url or "")
    path = here.path.rstrip("/")
    if not path.endswith(f"/{URL_PATH}"):   # behind a proxy the path keeps its prefix
        path = f"{path}/{URL_PATH}"
    return urlunsplit((here.scheme or "http", here.netloc or "localhost:8501", path, urlencode(params), ""))


def follow_links() -> str | None:
    """What the Class board page's address asks: ?join=CODE joins the class (once: the parameter is
    dropped, so a reload does not join again under a second name), ?board=CODE&teacher_key=KEY makes
    this tab the class's teacher (the key leaves the address bar). Returns the ?board= code, if any;
    a refused link is said on the page."""
    link_code = st.query_params.get(JOIN_PARAM)
    if link_code:
        del st.query_params[JOIN_PARAM]    # a reload must not join again under a second name
        current = joined_class()
        try:
            if current is None or current[0] != board.normalise_code(link_code):
                join(link_code)
        except (board.BoardError, board.BoardUnavailable) as error:
            st.error(str(error))
    view_code = st.query_params.get(VIEW_PARAM)
    teacher_key = st.query_params.get(TEACHER_PARAM)
    if teacher_key:
        del st.query_params[TEACHER_PARAM]    # not left in the address bar of a projected page
        try:
            if not (view_code and board.is_teacher(view_code, teacher_key)):
                raise board.BoardError("teacher link: it does not belong to this class; open the link the class "
                                       "page gave")
            st.session_state[keys.BOARD_TEACHER] = (board.normalise_code(view_code), teacher_key)
        except (board.BoardError, board.BoardUnavailable) as error:
            st.error(str(error))
    return view_code


def qr_code(link: str, kind: str) -> bytes:
    """The link as a QR code image, kind "png" or "svg" (medium error correction: a projector is blurry)."""
    out = io.BytesIO()
    segno.make(link, error="m").save(out, kind=kind, scale=8, border=2)
    return out.getvalue()


def create_from_form() -> None:
    """The create form's button: a new class, this tab its teacher."""
    try:
        room = board.create_class(st.session_state.board_title, st.session_state.board_preset,
                                  st.session_state.board_open, float(st.session_state.board_days))
    except (board.BoardError, board.BoardUnavailable) as error:
        st.session_state[keys.BOARD_MESSAGE] = str(error)
        return
    st.session_state[keys.BOARD_TEACHER] = (room.code, room.teacher_key)


def join_from_form() -> None:
    """The join form's button: join the typed code."""
    try:
        join(st.session_state.board_code)
    except (board.BoardError, board.BoardUnavailable) as error:
        st.session_state[keys.BOARD_MESSAGE] = str(error)


def teacher_action(action: Callable[[str, str], object]) -> None:
    """A teacher's button: board.clear_board or board.close_class on the class this tab teaches."""
    code, key = st.session_state[keys.BOARD_TEACHER]
    try:
        action(code, key)
    except (board.BoardError, board.BoardUnavailable) as error:
        st.session_state[keys.BOARD_MESSAGE] = str(error)


def forget_class() -> None:
    """This tab stops being the class's teacher (the class goes on; the teacher link reopens it)."""
    st.session_state.pop(keys.BOARD_TEACHER, None)


def withdraw(membership: tuple[str, str], run_id: str) -> None:
    """A student's Withdraw button: take one of their runs off the board."""
    try:
        board.withdraw_run(*membership, run_id)
    except (board.BoardError, board.BoardUnavailable) as error:
        st.session_state[keys.BOARD_MESSAGE] = str(error)


# ---------------------------------------------------------------- the Class board page's panels
def teacher_panel(room: board.ClassInfo, teacher_key: str) -> None:
    """The teacher's view of their class: its code, links and QR code to join, and the class's controls."""
    link = page_link(**{JOIN_PARAM: room.code})
    info_col, qr_col = st.columns([2, 1])
    with info_col:
        st.subheader("Your class")
        st.text(room.title)      # a teacher's words, shown as typed (no markdown)
        st.caption("Class code (students may type it on the Class board page):")
        st.code(room.display_code, language=None)
        st.caption("Join link:")
        st.code(link, language=None)
        expires = datetime.fromtimestamp(room.expires, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
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
            st.code(page_link(**{VIEW_PARAM: room.code, TEACHER_PARAM: teacher_key}), language=None)
    with qr_col:
        st.image(qr_code(link, "png"), caption="Scan to join", width=260)
        st.download_button("QR code (SVG)", qr_code(link, "svg"), file_name="class-qr.svg", mime="image/svg+xml",
                           key="board_qr_svg")


def create_and_join_forms(setting_labels: dict[str, str]) -> None:
    """A tab in no class: the teacher's form to create one (the settings students may change are listed with
    `setting_labels`, lab_ui.SETTING_LABELS) beside the student's to join one."""
    create_col, join_col = st.columns(2)
    with create_col.form("board_create_form"):
        st.subheader("Teacher: create a class")
        st.text_input("Class name", key="board_title", max_chars=board.MAX_TITLE_CHARS, placeholder="Tuesday lab")
        st.selectbox("Preset", list_presets(), key="board_preset", index=list_presets().index("default"))
        st.multiselect("Settings students may change", list(board.ADJUSTABLE_SETTINGS),
                       default=list(board.ADJUSTABLE_SETTINGS), key="board_open",
                       format_func=lambda name: f"{name}: {setting_labels[name]}")
        st.number_input("Expires after (days)", min_value=1, max_value=int(board.MAX_DAYS),
                        value=int(board.DEFAULT_DAYS), key="board_days")
        st.form_submit_button("Create class", on_click=create_from_form, type="primary")
    with join_col.form("board_join_form"):
        st.subheader("Student: join a class")
        st.text_input("Class code", key="board_code", placeholder="XXXXX-XXXXX-XXXXX-XXXXX")
        st.form_submit_button("Join", on_click=join_from_form, type="primary")
        st.caption("You get a made-up name; nothing about you is stored. Every run you finish is posted to the "
                   "class board, and you can withdraw yours.")


def student_panel(room: board.ClassInfo, student: str) -> None:
    """A student's view: their name in the class, what they may change, and leaving."""
    st.subheader(f"You are {student}")
    st.text(f"Class: {room.title}")
    st.caption(f"Train on any page: each run you finish is posted here. Preset {room.preset}; you may change "
               f"{', '.join(room.open_settings) or 'nothing'}.")
    st.button("Leave class", key="board_leave", on_click=leave,
              help="Your posted runs stay on the board; withdraw them first to take them off.")
