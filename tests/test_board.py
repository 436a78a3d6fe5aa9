"""Class board: the store (SQLite always; PostgreSQL when GLA_TEST_DATABASE_URL names a server, required
under CI) and the page (AppTest): create, join by link or code, post, withdraw, clear, close, expire."""
from __future__ import annotations

import base64
import csv
import io
import json
import math
import os
import sqlite3
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from gla_core import board
from gla_core.board import Board, BoardError, BoardUnavailable
from gla_core.limits import HostLimits
from gla_core.spec import preset_spec
from gla_core.train import Trainer, TrainConfig

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "app_pages" / "class_board.py")
POSTGRES_URL = os.environ.get("GLA_TEST_DATABASE_URL", "").strip()
IN_CI = os.environ.get("CI", "").lower() in ("1", "true")


@pytest.fixture(scope="module")
def results() -> dict:
    """Real Trainer.result()s, tiny: scalar and vector gating on the default preset."""
    spec = preset_spec("default")
    out = {}
    for gating in ("scalar", "vector"):
        trainer = Trainer(spec, TrainConfig(gating=gating, steps=5, batch=16, seed=3, eval_every=5, test_size=256))
        trainer.run()
        out[gating] = trainer.result()
    assert out["scalar"]["status"] == "finished"
    return out


def seeded(result: dict, seed: int) -> dict:
    return {**result, "config": {**result["config"], "seed": seed}}


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """A Board on each backend. PostgreSQL: GLA_TEST_DATABASE_URL, skipped without it except under CI."""
    if request.param == "sqlite":
        return Board(sqlite_path=tmp_path / "board.sqlite3")
    if not POSTGRES_URL:
        if IN_CI:
            pytest.fail("CI must test the PostgreSQL board: set GLA_TEST_DATABASE_URL (.ci/run starts a server)")
        pytest.skip("no PostgreSQL: set GLA_TEST_DATABASE_URL=postgresql://... to test the board on it")
    return Board(url=POSTGRES_URL)


def with_limits(store: Board, **limits) -> Board:
    store._limits = replace(HostLimits(), **limits)
    return store


# ---------------------------------------------------------------- codes and names
def test_codes_are_unguessable_and_typeable():
    codes = {board.new_class_code() for _ in range(2000)}
    assert len(codes) == 2000
    assert board.CODE_LENGTH * math.log2(len(board.CODE_ALPHABET)) >= 96
    assert all(len(code) == board.CODE_LENGTH and set(code) <= set(board.CODE_ALPHABET) for code in codes)
    # every symbol is used about equally often (secrets.choice over the whole alphabet)
    counts = np.unique(np.array([list(code) for code in codes]).ravel(), return_counts=True)[1]
    assert len(counts) == 32 and counts.min() > 0.75 * counts.mean()
    code = "0123456789ABCDEFGHJK"
    assert board.normalise_code(" o1234-56789-abcde-fghjk ") == code
    assert board.normalise_code("O1234 56789 ABCDE FGHJK") == code
    assert board.normalise_code("0I234-56789-ABCDE-FGHJK") == "01234" + code[5:]


@pytest.mark.parametrize("text", ["", "ABC", "0123456789ABCDEFGHJKM", "0123456789ABCDEFGHJ!", "U123456789ABCDEFGHJK"])
def test_a_malformed_code_says_what_a_code_looks_like(text):
    with pytest.raises(BoardError, match="class code: expected 20 letters and digits"):
        board.normalise_code(text)


def test_setting_names_are_the_apps():
    import lab_ui
    assert board.ADJUSTABLE_SETTINGS == tuple(lab_ui.SETTING_LABELS)


# ---------------------------------------------------------------- the store, on each backend
def test_post_and_list_keep_what_the_board_shows(store, results):
    room = store.create_class("  Tuesday   lab ")
    assert room.title == "Tuesday lab" and room.teacher_key and not room.closed
    assert room.expires - room.created == pytest.approx(7 * 86400)
    student = store.join_class(room.display_code.lower())
    assert student.count("-") == 1 and student.split("-")[0] in board.ADJECTIVES
    result = results["scalar"]
    run_id = store.post_run(room.code, student, result)
    [run] = store.list_runs(room.code)
    record = run.record
    assert (run.run_id, run.student) == (run_id, student)
    assert record["test_risk"] == result["test_risk"] and record["test_risk_se"] == result["test_risk_se"]
    assert record["cosine"] == result["cosine"] and record["steps"] == result["steps"] == 5
    assert record["induced"] == result["induced_weights"][0]
    assert record["analytic"]["optimal"]["omega"] == result["analytic"]["optimal"]["omega"]
    assert record["seed"] == 3 and record["gating"] == "scalar"
    assert "history" not in record and "trajectory" not in record
    assert store.get_class(room.code).title == "Tuesday lab"


def test_settings_groups_ignore_seed_and_split_on_gating(store, results):
    room = store.create_class("groups")
    student = store.join_class(room.code)
    for seed in (1, 2):
        store.post_run(room.code, student, seeded(results["scalar"], seed))
    store.post_run(room.code, student, results["vector"])
    runs = store.list_runs(room.code)
    assert [run.record["seed"] for run in runs] == [1, 2, 3]          # oldest first
    assert runs[0].settings == runs[1].settings != runs[2].settings
    assert board.settings_label(runs[0].record).startswith("scalar gates, 1 layer; n 10/10/10, relevance 0.2/0.5/0.9")


@pytest.mark.parametrize("status", ["diverged", "error", "running"])
def test_a_diverged_or_failed_run_is_never_shared(store, results, status):
    room = store.create_class("no divergence")
    student = store.join_class(room.code)
    bad = {**results["scalar"], "status": status, "reason": "loss became inf at step 3"}
    with pytest.raises(BoardError, match=f"run status: .*this one is '{status}': loss became inf"):
        store.post_run(room.code, student, bad)
    assert store.list_runs(room.code) == []


def test_unknown_expired_and_closed_classes_are_refused_clearly(tmp_path, results):
    now = [1_000_000.0]
    store = Board(sqlite_path=tmp_path / "board.sqlite3", clock=lambda: now[0])
    with pytest.raises(BoardError, match="no class has this code"):
        store.join_class(board.new_class_code())
    room = store.create_class("short", days=1)
    student = store.join_class(room.code)
    store.close_class(room.code, room.teacher_key)
    for attempt in (lambda: store.join_class(room.code), lambda: store.post_run(room.code, student, results["scalar"])):
        with pytest.raises(BoardError, match="closed this class"):
            attempt()
    assert store.list_runs(room.code) == []    # a closed board stays readable
    now[0] += 86400 + 1
    with pytest.raises(BoardError, match="this class has expired"):
        store.list_runs(room.code)
    store.create_class("the next one")          # creating a class deletes the expired ones
    with pytest.raises(BoardError, match="no class has this code"):
        store.get_class(room.code)
    with sqlite3.connect(tmp_path / "board.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM board_students WHERE code = ?", (room.code,)).fetchone() == (0,)


@pytest.mark.parametrize("title,days,message", [("", 7, "class name: 1 to 80"), ("x" * 81, 7, "class name"),
                                                ("ok", 0.01, "expires after: from 1 hour to 90 days"),
                                                ("ok", 91, "expires after")])
def test_bad_class_settings_name_the_field(tmp_path, title, days, message):
    with pytest.raises(BoardError, match=message):
        Board(sqlite_path=tmp_path / "b.sqlite3").create_class(title, days=days)


def test_bad_preset_and_settings_name_the_field(tmp_path):
    store = Board(sqlite_path=tmp_path / "b.sqlite3")
    with pytest.raises(BoardError, match="preset: unknown preset 'nope'"):
        store.create_class("x", preset="nope")
    with pytest.raises(BoardError, match="open settings: unknown secret"):
        store.create_class("x", open_settings=["gating", "secret"])
    assert store.create_class("x", open_settings=["training", "gating"]).open_settings == ("gating", "training")


def test_one_class_cannot_see_or_touch_anothers_runs(store, results):
    first, second = store.create_class("first"), store.create_class("second")
    alice, bob = store.join_class(first.code), store.join_class(second.code)
    run_id = store.post_run(first.code, alice, results["scalar"])
    assert store.list_runs(second.code) == []
    with pytest.raises(BoardError, match="has not joined the class"):
        store.post_run(second.code, alice, results["scalar"])
    assert not store.withdraw_run(second.code, bob, run_id)
    assert not store.withdraw_run(first.code, bob, run_id)        # only its own student withdraws a run
    with pytest.raises(BoardError, match="only the session that created this class"):
        store.clear_board(first.code, second.teacher_key)
    assert [run.run_id for run in store.list_runs(first.code)] == [run_id]
    assert store.withdraw_run(first.code, alice, run_id)
    assert store.list_runs(first.code) == []


def test_the_teacher_clears_the_board(store, results):
    room = store.create_class("clear me")
    students = [store.join_class(room.code) for _ in range(3)]
    assert len(set(students)) == 3
    for student in students:
        store.post_run(room.code, student, results["scalar"])
    assert store.clear_board(room.code, room.teacher_key) == 3
    assert store.list_runs(room.code) == []
    store.post_run(room.code, students[0], results["scalar"])   # students stay joined
    assert len(store.list_runs(room.code)) == 1


def test_limits_per_student_and_per_class(store, results):
    with_limits(store, max_board_runs_per_student=2, max_board_runs_per_class=3)
    room = store.create_class("limits")
    alice, bob = store.join_class(room.code), store.join_class(room.code)
    first = store.post_run(room.code, alice, results["scalar"])
    store.post_run(room.code, alice, results["scalar"])
    with pytest.raises(BoardError, match="you have posted 2 runs.*GLA_MAX_BOARD_RUNS_PER_STUDENT = 2"):
        store.post_run(room.code, alice, results["scalar"])
    store.post_run(room.code, bob, results["scalar"])
    with pytest.raises(BoardError, match="holds 3 runs.*GLA_MAX_BOARD_RUNS_PER_CLASS = 3.*teacher can clear"):
        store.post_run(room.code, bob, results["scalar"])
    assert store.withdraw_run(room.code, alice, first)     # withdrawing makes room
    store.post_run(room.code, bob, results["scalar"])
    assert sorted(run.student for run in store.list_runs(room.code)) == sorted([alice, bob, bob])


def test_thirty_students_posting_at_once_lose_nothing(store, results):
    room = store.create_class("rush")
    students = [store.join_class(room.code) for _ in range(30)]
    assert len(set(students)) == 30
    errors = []

    def post(student):
        try:
            store.post_run(room.code, student, results["scalar"])
        except Exception as error:   # collected: a thread's exception would otherwise vanish
            errors.append(error)

    threads = [threading.Thread(target=post, args=(student,)) for student in students]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    runs = store.list_runs(room.code)
    assert sorted(run.student for run in runs) == sorted(students)      # all 30, none twice
    assert len({run.run_id for run in runs}) == 30


def test_a_class_limit_holds_when_posts_race(store, results):
    with_limits(store, max_board_runs_per_class=10)
    room = store.create_class("race")
    students = [store.join_class(room.code) for _ in range(16)]
    outcomes = []
    threads = [threading.Thread(target=lambda s=student: outcomes.append(_try_post(store, room.code, s, results)))
               for student in students]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("posted") == 10 and outcomes.count("GLA_MAX_BOARD_RUNS_PER_CLASS") == 6
    assert len(store.list_runs(room.code)) == 10


def _try_post(store, code, student, results) -> str:
    try:
        store.post_run(code, student, results["scalar"])
        return "posted"
    except BoardError as error:
        return "GLA_MAX_BOARD_RUNS_PER_CLASS" if "GLA_MAX_BOARD_RUNS_PER_CLASS" in str(error) else str(error)


CHILD = """
import os, sys
from gla_core.board import Board
url, path, code, action = sys.argv[1:5]
store = Board(url=url or None, sqlite_path=path or None)
if action == "die-mid-post":   # the process is killed after writing, before COMMIT
    with store._transaction() as execute:
        execute("INSERT INTO board_runs (run_id, code, student, posted, settings, record) VALUES (?, ?, ?, ?, ?, ?)",
                "partial", code, "nobody", 0.0, "{}", "{}")
        os._exit(3)
print(store.join_class(code))
"""


def _child(store: Board, tmp_path, code: str, action: str) -> subprocess.CompletedProcess:
    url = POSTGRES_URL if store.dialect.name == "postgresql" else ""
    path = "" if url else str(tmp_path / "board.sqlite3")
    return subprocess.run([sys.executable, "-c", CHILD, url, path, code, action], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_another_process_shares_the_board_and_a_killed_post_leaves_nothing(store, results, tmp_path):
    room = store.create_class("two replicas")
    joined = _child(store, tmp_path, room.code, "join")
    assert joined.returncode == 0, joined.stderr
    student = joined.stdout.strip()
    store.post_run(room.code, student, results["scalar"])       # joined in one process, posted from another
    assert [run.student for run in store.list_runs(room.code)] == [student]
    killed = _child(store, tmp_path, room.code, "die-mid-post")
    assert killed.returncode == 3, killed.stderr
    assert [run.student for run in store.list_runs(room.code)] == [student]


# ---------------------------------------------------------------- retries (SQLite stands in for either backend)
class FlakyConnection:
    """A sqlite3 connection whose COMMIT commits and then reports the connection lost, `failures` times."""

    def __init__(self, connection, failures: list):
        self.connection, self.failures = connection, failures

    def execute(self, sql, params=()):
        cursor = self.connection.execute(sql, params)
        if sql == "COMMIT" and self.failures:
            self.failures.pop()
            raise sqlite3.OperationalError("disk I/O error")
        return cursor

    def close(self):
        self.connection.close()


def test_a_post_retried_after_a_lost_answer_is_stored_once(tmp_path, results, monkeypatch):
    monkeypatch.setattr(board, "RETRY_DELAYS", (0.0, 0.0))
    store = Board(sqlite_path=tmp_path / "board.sqlite3")
    room = store.create_class("flaky")
    student = store.join_class(room.code)
    connect, failures = store.dialect.connect, [1]
    store.dialect = replace(store.dialect, connect=lambda: FlakyConnection(connect(), failures))
    store.post_run(room.code, student, results["scalar"])
    assert failures == [] and len(store.list_runs(room.code)) == 1


def test_a_database_that_stays_away_is_reported_not_dropped(tmp_path, results, monkeypatch):
    monkeypatch.setattr(board, "RETRY_DELAYS", (0.0, 0.0))
    store = Board(sqlite_path=tmp_path / "board.sqlite3")
    room = store.create_class("down")
    student = store.join_class(room.code)
    tries = []

    def unreachable():
        tries.append(1)
        raise sqlite3.OperationalError("unable to open database file")

    store.dialect = replace(store.dialect, connect=unreachable)
    with pytest.raises(BoardUnavailable, match="did not answer .*nothing was changed"):
        store.post_run(room.code, student, results["scalar"])
    assert len(tries) == 3                      # the first try and one per delay


def test_a_programming_error_is_not_retried(tmp_path):
    store = Board(sqlite_path=tmp_path / "board.sqlite3")
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        store._retrying(lambda execute: execute("SELECT * FROM missing"))


# ---------------------------------------------------------------- files and settings
def test_sqlite_board_is_made_on_first_use_in_wal_mode(tmp_path, monkeypatch):
    monkeypatch.setenv("GLA_DATA_DIR", str(tmp_path / "data"))
    path = board.data_dir() / "board.sqlite3"
    assert not path.exists()
    Board()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")} == {
            "board_classes", "board_students", "board_runs"}


def test_data_dir_falls_back_when_home_cannot_be_written(tmp_path, monkeypatch):
    blocked = tmp_path / "home"
    blocked.write_text("a file where a folder would go, as on a read-only root")
    monkeypatch.setattr(Path, "home", lambda: blocked)
    monkeypatch.setattr(board.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    assert board.data_dir({}) == tmp_path / "tmp" / "gla-lab"
    assert board.data_dir({"GLA_DATA_DIR": " /srv/gla "}) == Path("/srv/gla")


def test_database_url_must_be_postgresql():
    with pytest.raises(BoardError, match="GLA_DATABASE_URL: must start with postgresql://.*'mysql'"):
        Board(url="mysql://user:secret@host/db")


def test_reached_optimum_is_two_standard_errors_from_the_reachable_risk(results):
    record = board.board_record(results["scalar"])
    reachable = record["analytic"]["scalar_gla"]["risk"]
    assert board.reached_optimum({**record, "test_risk": reachable + 1.9 * 0.01, "test_risk_se": 0.01})
    assert not board.reached_optimum({**record, "test_risk": reachable + 2.1 * 0.01, "test_risk_se": 0.01})
    assert board.reached_optimum({**record, "test_risk": reachable * 1.009, "test_risk_se": None})


def test_table_csv_reads_back(tmp_path, results):
    store = Board(sqlite_path=tmp_path / "board.sqlite3")
    room = store.create_class("csv")
    student = store.join_class(room.code)
    store.post_run(room.code, student, {**results["scalar"], "test_risk_se": float("nan")})
    rows = list(csv.DictReader(io.StringIO(board.table_csv(store.list_runs(room.code)))))
    assert list(rows[0]) == list(board.TABLE_COLUMNS)
    assert rows[0]["name"] == student and rows[0]["risk_se"] == ""
    assert float(rows[0]["risk"]) == results["scalar"]["test_risk"]
    assert float(rows[0]["cosine"]) == results["scalar"]["cosine"]


# ---------------------------------------------------------------- the page (AppTest, SQLite)
@pytest.fixture
def page_board(tmp_path, monkeypatch):
    """The app's default board on a fresh SQLite file for this test."""
    monkeypatch.setenv("GLA_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("GLA_DATABASE_URL", raising=False)
    board.default_board.cache_clear()
    yield board.default_board()
    board.default_board.cache_clear()


def open_board(**query) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.query_params.update(query)
    at.run()
    assert not at.exception, [error.value for error in at.exception]
    return at


def texts(at: AppTest) -> list[str]:
    return [element.value for element in at.text]


def test_teacher_creates_a_class_with_link_and_qr(page_board):
    teacher = open_board()
    teacher.text_input(key="board_title").input("**Tuesday** <b>lab</b>")
    teacher.get("form_submit_button")[0].click().run()
    code, _ = teacher.session_state["board_teacher"]
    assert "**Tuesday** <b>lab</b>" in texts(teacher)          # a teacher's words are shown as typed
    shown = [element.value for element in teacher.code]
    assert page_board.get_class(code).display_code in shown
    assert any(value.endswith(f"/board?join={code}") for value in shown)
    assert len(teacher.get("image")) == 1
    assert "No runs yet" in teacher.info[0].value


def test_student_joins_by_link_posts_and_withdraws(page_board, results):
    room = page_board.create_class("by link")
    student = open_board(join=room.display_code.lower())
    name = student.session_state["board_student"]
    assert student.session_state["board_class"] == room.code
    assert student.subheader[0].value == f"You are {name}"
    assert "join" not in student.query_params                   # a reload does not join a second time
    for seed in (1, 2):
        page_board.post_run(room.code, name, seeded(results["scalar"], seed))
    student.run()
    assert "The board: 2 runs" in [element.value for element in student.subheader]
    figure = next(chart for chart in student.get("plotly_chart") if chart.proto.id.endswith("board_weights_G1"))
    traces = [trace for trace in json.loads(figure.proto.spec)["data"] if trace["name"].startswith("trained")]
    assert len(traces) == 2
    induced = np.asarray(results["scalar"]["induced_weights"][0], dtype=float)
    target = np.asarray(results["scalar"]["analytic"]["scalar_gla"]["omega"], dtype=float)
    expected = induced * np.sign(induced @ target) / np.abs(induced).max()   # the target's gauge, by hand
    np.testing.assert_allclose(_array(traces[0]["y"]), expected, rtol=1e-12)
    target_trace = next(trace for trace in json.loads(figure.proto.spec)["data"]
                        if trace["name"] == "best scalar-gated GLA")
    np.testing.assert_allclose(_array(target_trace["y"]), target / np.abs(target).max(), rtol=1e-12)
    withdraw = [button for button in student.button if button.label == "Withdraw"]
    assert len(withdraw) == 2
    withdraw[0].click().run()
    assert [run.record["seed"] for run in page_board.list_runs(room.code)] == [2]


def _array(value) -> np.ndarray:
    if isinstance(value, dict):   # Plotly's typed array
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value, dtype=float)


def test_student_types_a_code_and_a_bad_one_is_explained(page_board):
    room = page_board.create_class("typed")
    student = open_board()
    student.text_input(key="board_code").input("ABCDE")
    student.get("form_submit_button")[1].click().run()
    assert "class code: expected 20 letters and digits" in student.error[0].value
    student.text_input(key="board_code").input(room.display_code)
    student.get("form_submit_button")[1].click().run()
    assert student.session_state["board_class"] == room.code


def test_teacher_clears_and_closes_and_the_class_expires(page_board, results):
    teacher = open_board()
    teacher.text_input(key="board_title").input("to close")
    teacher.get("form_submit_button")[0].click().run()
    code, _ = teacher.session_state["board_teacher"]
    name = page_board.join_class(code)
    page_board.post_run(code, name, results["scalar"])
    page_board.post_run(code, name, results["vector"])
    teacher.run()
    assert "The board: 2 runs" in [element.value for element in teacher.subheader]
    assert len([chart for chart in teacher.get("plotly_chart") if "board_weights_" in chart.proto.id]) == 2
    assert teacher.get("download_button")[-1].proto.label == "Download the table (CSV)"
    next(button for button in teacher.button if button.label == "Clear board").click().run()
    assert page_board.list_runs(code) == [] and "No runs yet" in teacher.info[0].value
    next(button for button in teacher.button if button.label == "Close class").click().run()
    with pytest.raises(BoardError, match="closed this class"):
        page_board.post_run(code, name, results["scalar"])
    page_board._retrying(lambda execute: execute("UPDATE board_classes SET expires = 0 WHERE code = ?", code))
    student = open_board(join=code)
    assert "this class has expired" in student.error[0].value
    assert "board_class" not in student.session_state
    teacher.run()
    assert "this class has expired" in teacher.error[0].value
    next(button for button in teacher.button if button.label == "Forget this class").click().run()
    assert "board_teacher" not in teacher.session_state and teacher.get("form_submit_button")


def test_a_board_link_shows_the_board_and_a_teacher_link_restores_the_controls(page_board, results):
    room = page_board.create_class("projector")
    page_board.post_run(room.code, page_board.join_class(room.code), results["scalar"])
    projector = open_board(board=room.code)
    assert "The board: 1 run" in [element.value for element in projector.subheader]
    assert not projector.get("form_submit_button") and "board_teacher" not in projector.session_state
    wrong = open_board(board=room.code, teacher_key=page_board.create_class("other").teacher_key)
    assert "teacher link: it does not belong to this class" in wrong.error[0].value
    assert "board_teacher" not in wrong.session_state
    teacher = open_board(board=room.code, teacher_key=room.teacher_key)
    assert teacher.session_state["board_teacher"] == (room.code, room.teacher_key)
    assert "teacher_key" not in teacher.query_params            # the key leaves the address bar
    assert any(button.label == "Clear board" for button in teacher.button)
    teacher_link = next(element.value for element in teacher.code if "teacher_key=" in element.value)
    assert teacher_link.endswith(f"/board?board={room.code}&teacher_key={room.teacher_key}")


def test_the_teacher_link_works_inside_the_app(page_board):
    """Through app.py, whose own widgets are bound to the URL too (Teacher mode is ?teacher=...): the
    board's parameters must not be taken for theirs."""
    room = page_board.create_class("in the app")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params.update({"board": room.code, "teacher_key": room.teacher_key})
    at.run()
    at.switch_page("app_pages/class_board.py").run()
    assert not at.exception, [error.value for error in at.exception]
    assert at.session_state["board_teacher"] == (room.code, room.teacher_key)
    assert dict(at.query_params) == {"board": room.code}


def _student_page(page: str, room, student: str, **query: str) -> AppTest:
    """A training page, through app.py, in a session that has joined `room` as `student`."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["board_class"], at.session_state["board_student"] = room.code, student
    at.query_params.update(query)
    at.run()
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, [error.value for error in at.exception]
    # AppTest's sessions in one process share session resources: an earlier test's run may be on screen
    reset = next((button for button in at.button if button.label == "Reset"), None)
    if reset is not None and not reset.disabled:
        reset.click().run()
    return at


def test_a_class_fixes_its_preset_and_the_settings_it_did_not_open(page_board):
    """A class on the depth preset that opens only the training settings: the Playground starts there, the
    data and model controls are shown fixed at the preset's values, and a link cannot move them."""
    depth = preset_spec("depth")
    room = page_board.create_class("fixed", preset="depth", open_settings=("training",))
    at = _student_page("playground", room, page_board.join_class(room.code), d="9", gating="vector", steps="25")
    preset, d, tasks = (at.selectbox(key="class_fixed_preset"), at.slider(key="class_fixed_d"),
                        at.slider(key="class_fixed_tasks"))
    assert (preset.value, preset.disabled) == ("depth", True)
    assert (d.value, d.disabled, tasks.value) == (depth.d, True, depth.num_tasks)
    assert at.radio(key="class_fixed_gating").value == "scalar"
    assert at.select_slider(key="steps").value == 25                 # training is open: the link's value holds
    assert "fixes the preset and advanced, data, gating, layers, tasks" in at.sidebar.info[0].value
    weights = next(json.loads(element.proto.spec) for element in at.get("plotly_chart")
                   if element.proto.id.endswith("-weights_chart"))
    examples = sum(len(_array(trace["x"])) for trace in weights["data"] if trace["type"] == "bar")
    assert examples == sum(task.n for task in depth.tasks)           # the drawn prompt is the class's


def test_a_class_that_opens_everything_only_sets_the_starting_preset(page_board):
    room = page_board.create_class("open", preset="depth")
    at = _student_page("depth", room, page_board.join_class(room.code), d="7")
    assert at.selectbox(key="dp_preset").value == "depth" and not at.selectbox(key="dp_preset").disabled
    assert at.slider(key="d").value == 7
    assert "leaves every setting to you" in at.sidebar.info[0].value


def test_a_reload_keeps_the_seat_and_a_copied_link_does_not_give_it_away(page_board, monkeypatch):
    """A reload is a new session: the seat in the address brings the student back as the same name, in
    the same browser only (the seat's mac is tied to the browser's secret)."""
    import lab_ui.board
    room = page_board.create_class("reload")
    student = page_board.join_class(room.code)
    monkeypatch.setattr(lab_ui.board, "browser_id", lambda: "browser-a")
    first = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    first.session_state["board_class"], first.session_state["board_student"] = room.code, student
    first.run()
    seat = first.query_params["seat"]
    seat = seat[0] if isinstance(seat, list) else seat
    assert seat.startswith(f"{room.code}.{student}.")
    reloaded = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    reloaded.query_params["seat"] = seat
    reloaded.run()
    reloaded.switch_page("app_pages/class_board.py").run()
    assert not reloaded.exception, [error.value for error in reloaded.exception]
    assert reloaded.session_state["board_student"] == student
    assert f"You are {student}" in [element.value for element in reloaded.subheader]
    monkeypatch.setattr(lab_ui.board, "browser_id", lambda: "browser-b")      # the link, opened elsewhere
    copied = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    copied.query_params["seat"] = seat
    copied.run()
    assert "board_student" not in copied.session_state and "seat" not in copied.query_params
    forged = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    forged.query_params["seat"] = f"{room.code}.{student}.{'0' * 20}"
    forged.run()
    assert "board_student" not in forged.session_state
