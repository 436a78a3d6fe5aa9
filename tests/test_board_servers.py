"""Class board across app servers: two `streamlit run app.py` processes share one PostgreSQL board
(GLA_DATABASE_URL from GLA_TEST_DATABASE_URL; skipped without it, except under CI, which must test it).

A teacher creates a class in Chromium on server A; three students join by the class link (two on A,
one on B), each trains the default preset (the host caps a run at 25 steps, so it is short); the board
page served by B, open for the projector from before the first run, shows all three runs within its
refresh interval, without a reload. The stored rows are read back through gla_core.board as a second,
independent witness: one run per student, under the names the pages gave them.
"""
from __future__ import annotations

import os
import re
import threading
import time

import pytest

from gla_core.board import Board, normalise_code
from tests.load import harness

POSTGRES_URL = os.environ.get("GLA_TEST_DATABASE_URL", "").strip()
IN_CI = os.environ.get("CI", "").lower() in ("1", "true")
MAX_STEPS = 25                 # GLA_MAX_STEPS: the default preset's run shrinks to this (the fewest offered)
REFRESH_SECONDS = 5            # app_pages/class_board.py REFRESH_SECONDS
TRAIN_TIMEOUT_MS = 120_000     # three short runs sharing two cores
CODE_PATTERN = re.compile(r"\b[0-9A-Z]{5}(?:-[0-9A-Z]{5})+\b")   # the class code as the page shows it

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def database_url() -> str:
    if not POSTGRES_URL:
        if IN_CI:
            pytest.fail("CI must test the board across servers: set GLA_TEST_DATABASE_URL (.ci/run starts PostgreSQL)")
        pytest.skip("no PostgreSQL: set GLA_TEST_DATABASE_URL=postgresql://... to run two servers on one board")
    return POSTGRES_URL


@pytest.fixture(scope="module")
def servers(database_url):
    """Servers A and B on the same database, started side by side (each takes seconds to import)."""
    env = {"GLA_DATABASE_URL": database_url, "GLA_MAX_STEPS": str(MAX_STEPS), "GLA_MAX_CONCURRENT_RUNS": "3",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    pair = [harness.AppServer(f"board_{name}", env=env) for name in ("a", "b")]
    errors: list[BaseException] = []

    def start(server):
        try:
            server.start()
        except BaseException as error:   # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=start, args=(server,)) for server in pair]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        if errors:
            raise errors[0]
        yield pair
    finally:
        for server in pair:
            server.stop()
    for server in pair:
        assert not harness.unexpected_tracebacks(server.log_tail(100_000)), server.log_tail()


def board_heading(page) -> str:
    """The board's heading, e.g. 'The board: 3 runs', once the page shows one."""
    heading = page.get_by_role("heading", name=re.compile(r"^The board: \d+ runs?$"))
    heading.first.wait_for(timeout=30_000)
    return heading.first.inner_text()


def _shown_code(page, timeout: float = 30.0) -> str:
    """The class code the teacher's page shows, once its code block has rendered (the heading comes first)."""
    deadline = time.monotonic() + timeout
    while True:
        found = CODE_PATTERN.search(harness.main_text(page))
        if found or time.monotonic() > deadline:
            assert found, f"no class code on the teacher's page: {harness.main_text(page)[:500]!r}"
            return found.group(0)
        page.wait_for_timeout(200)


def test_students_on_two_servers_land_on_one_board(browser, servers, database_url):
    server_a, server_b = servers
    contexts = []

    def new_page(server, path):
        context = browser.new_context(viewport=harness.VIEWPORT)
        contexts.append(context)
        page = context.new_page()
        harness.open_app(page, f"{server.url}{path}")
        return page

    try:
        teacher = new_page(server_a, "/board")
        teacher.get_by_label("Class name").fill("Two servers")
        teacher.get_by_role("button", name="Create class").click()
        teacher.get_by_role("heading", name="Your class").wait_for(timeout=30_000)
        harness.settle(teacher)
        code = normalise_code(_shown_code(teacher))

        projector = new_page(server_b, f"/board?board={code}")
        assert board_heading(projector) == "The board: 0 runs"

        names = []
        students = []
        for server in (server_a, server_b, server_a):
            student = new_page(server, f"/board?join={code}")
            heading = student.get_by_role("heading", name=re.compile(r"^You are [a-z]+-[a-z]+$"))
            heading.wait_for(timeout=30_000)
            names.append(heading.inner_text().removeprefix("You are "))
            # in-app navigation keeps the session, and with it the class membership
            student.get_by_test_id("stSidebarNav").get_by_role("link", name="Playground").click()
            harness.page_button(student, "Train").wait_for(timeout=60_000)
            harness.settle(student)
            harness.page_button(student, "Train").click()
            students.append(student)
        assert len(set(names)) == 3, names

        for student in students:
            student.get_by_text(re.compile(rf"Finished · {MAX_STEPS} steps")).first.wait_for(timeout=TRAIN_TIMEOUT_MS)

        # the projector's page was never reloaded: its fragment reads the board every REFRESH_SECONDS
        projector.get_by_role("heading", name="The board: 3 runs").wait_for(timeout=(REFRESH_SECONDS + 5) * 1000)
        assert not harness.exceptions_on(projector)
        # one settings group (same preset, different seeds): all three runs are counted in it
        assert re.search(r"G1: [0-3] of 3 runs at the best risk", harness.main_text(projector))

        runs = Board(url=database_url).list_runs(code)
        assert sorted(run.student for run in runs) == sorted(names)
        assert all(run.record["steps"] == MAX_STEPS for run in runs), [run.record for run in runs]
    finally:
        for context in contexts:
            context.close()
