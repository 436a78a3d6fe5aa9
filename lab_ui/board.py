"""The class board in the app: which class this browser tab has joined, and as whom (session state),
and posting a finished run there from a training thread.

A training run ends in its own thread, where st.session_state cannot be read. So a page takes the
membership when it starts the run (joined_class(), in the script's thread) and hands it to
post_finished, which the run's on-finished hook calls; a post that fails is kept here, per
membership, for the board page to say (post_problem): never dropped silently.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import streamlit as st

from gla_core import board
from lab_ui import keys

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
