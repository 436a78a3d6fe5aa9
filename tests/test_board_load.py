"""A class of thirty on one board, through a real server: thirty protocol clients (tests/load/protocol.py,
each a tab over Streamlit's own WebSocket) join one class by its link, go to the Playground and press
Train at once. Every run lands on the board once, under the name its tab was given.

Measured and printed (artifacts/load/board_load.json): when each row was posted against when its tab
first showed "Finished", and what a board page run costs the server with the thirty runs on it.
"""
from __future__ import annotations

import asyncio
import json
import re
import statistics
import time

import pytest

from gla_core.board import Board
from tests.load import harness
from tests.load.protocol import Student

STUDENTS = 30
RUN = "steps=25&batch=64"      # the default preset, short: the test is of the board, not of training
RUN_TIMEOUT_S = 240.0
BOARD_REFRESHES = 7            # board page runs timed with the thirty runs on it (their median is reported)
NAME = re.compile(r"^You are ([a-z]+-[a-z]+(?:-\d+)?)$")


async def class_of_thirty(server: harness.AppServer, store: Board, code: str) -> dict:
    """Thirty tabs join by the class link, go to the Playground and press Train at once; once every run
    has ended, the board's rows and the seconds of BOARD_REFRESHES projector page runs."""
    students = [Student(server, page="board", query=f"join={code}") for _ in range(STUDENTS)]
    projector = Student(server, page="board", query=f"board={code}")
    try:
        await asyncio.gather(*(student.open() for student in students))
        await asyncio.gather(*(student.navigate("playground", f"{RUN}&seed={seed}")
                               for seed, student in enumerate(students)))
        clicked = time.time()
        await asyncio.gather(*(student.click("Train") for student in students))
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while not all(student.ended() for student in students) and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        deadline = time.monotonic() + 10   # a post is made as its run ends: let the last ones commit
        runs = store.list_runs(code)
        while len(runs) < STUDENTS and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            runs = store.list_runs(code)
        await projector.open()
        refresh_s = [await projector.rerun() for _ in range(BOARD_REFRESHES)]
        return {"students": students, "clicked": clicked, "runs": runs, "refresh_s": refresh_s}
    finally:
        await asyncio.gather(*(tab.close() for tab in [*students, projector]))


@pytest.mark.slow
def test_thirty_students_train_at_once_and_every_run_lands_on_the_board_once(tmp_path):
    database = tmp_path / "board.sqlite3"
    env = {"GLA_DATA_DIR": str(tmp_path), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with harness.AppServer("board_load", env=env) as server:
        store = Board(sqlite_path=database)
        room = store.create_class("Load test")
        seen = asyncio.run(class_of_thirty(server, store, room.code))
        assert server.healthy()
    students, runs = seen["students"], seen["runs"]
    names = [next((match.group(1) for text in student.headings if (match := NAME.match(text))), None)
             for student in students]
    assert None not in names, [student.headings[:5] for student in students]
    assert len(set(names)) == STUDENTS, "every tab its own generated name"
    assert [student.exceptions for student in students if student.exceptions] == []
    assert sum("finished" in student.seen for student in students) == STUDENTS, \
        [student.last_status for student in students if "finished" not in student.seen]
    assert sorted(run.student for run in runs) == sorted(names), "all thirty rows, none twice, each its name"
    assert len({run.run_id for run in runs}) == STUDENTS
    assert all(run.record["steps"] == 25 for run in runs)
    clicked, refresh_s = seen["clicked"], seen["refresh_s"]
    finished_at = {name: student.seen["finished"] for name, student in zip(names, students)}
    post_after_finished = sorted(run.posted - finished_at[run.student] for run in runs)
    figures = {"students": STUDENTS, "run": RUN,
               "all_finished_s": round(max(finished_at.values()) - clicked, 2),
               "posted_minus_finished_shown_s": {"min": round(post_after_finished[0], 3),
                                                 "median": round(statistics.median(post_after_finished), 3),
                                                 "max": round(post_after_finished[-1], 3)},
               "board_page_run_s": {"median": round(statistics.median(refresh_s), 3),
                                    "min": round(min(refresh_s), 3), "max": round(max(refresh_s), 3),
                                    "runs": len(refresh_s)}}
    harness.ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (harness.ARTIFACTS / "board_load.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures))

