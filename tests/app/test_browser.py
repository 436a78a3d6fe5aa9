"""GLA Lab in a real browser: Playwright drives Debian's Chromium against `streamlit run app.py`.

What only a browser can show: live refreshing while a model trains in the background, a click on
another control leaving the run alone, Stop, and links that carry settings. Screenshots of every
step land in artifacts/browser/ (1024 px wide, the width of a classroom projector), together with
timings.json (seconds from pressing Train to the finished comparison).
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from gla_core.train import TrainConfig
from tests.load import harness

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "browser"
PHONE = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 "
         "Mobile Safari/537.36")
PAGES = {"home": "Home: gating is weighting", "lesson": "Lesson: predict, then check", "playground": "Playground",
         "landscape": "Landscape", "gating": "Gating vs linear attention", "depth": "Depth", "recurrence": "Inside the recurrence"}
PAGE_WAIT = 30_000   # milliseconds for a page run
TRAIN_WAIT = 150_000  # milliseconds for the default preset to finish training on a busy 2-core machine


@pytest.fixture(scope="module")
def app_server():
    """A fresh `streamlit run app.py` that trains one model at a time (its first request in this module
    is a deep link)."""
    with harness.AppServer("browser", env={"GLA_MAX_CONCURRENT_RUNS": "1"}) as server:  # a second run queues
        yield server


@pytest.fixture(scope="module")
def base_url(app_server):
    return app_server.url


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=harness.VIEWPORT)
    tab = context.new_page()
    tab.set_default_timeout(PAGE_WAIT)
    yield tab
    context.close()


def settle(tab) -> None:
    """Wait until the page script has run to the end, and its last deltas have painted."""
    harness.settle(tab, PAGE_WAIT)
    tab.wait_for_timeout(300)


def open_page(tab, url: str) -> None:
    """Load a page and wait for its first run to finish."""
    harness.open_app(tab, url, PAGE_WAIT)
    tab.wait_for_timeout(300)


def shot(tab, name: str) -> None:
    """A screenshot of the whole page at 1024 px width (the app scrolls inside its main pane, so the
    window is made as tall as that pane for the shot)."""
    height = tab.evaluate("() => document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight ?? 0")
    tab.set_viewport_size({"width": harness.VIEWPORT["width"], "height": min(max(height, harness.VIEWPORT["height"]), 8000)})
    tab.wait_for_timeout(300)
    tab.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    tab.set_viewport_size(harness.VIEWPORT)


def element(tab, key: str):
    """The element with this key in the latest page run (not one left over from the run before)."""
    return tab.locator(f'.st-key-{key}:not([data-stale="true"])')


def slider_value(tab, key: str) -> str:
    return element(tab, key).locator('[data-testid="stSliderThumbValue"]').inner_text()


def progress(tab) -> str:
    bars = tab.locator('[data-testid="stProgress"]')
    return bars.first.inner_text() if bars.count() else ""


def wait_for_text(tab, pattern: str, timeout: float = PAGE_WAIT) -> None:
    """Wait for text matching `pattern`; on a timeout keep a screenshot and say what the page showed."""
    try:
        tab.get_by_text(re.compile(pattern)).first.wait_for(timeout=timeout)
    except sync_api.TimeoutError:
        shot(tab, "timeout")
        pytest.fail(f"no {pattern!r} after {timeout / 1000:.0f} s; progress line: {progress(tab)!r} "
                    f"(screenshot: {ARTIFACTS / 'timeout.png'})")


def step_of(text: str) -> int:
    """The step a progress line names: 'Training: step 120 of 600 ...' or 'Stopped · 120 steps ...'."""
    match = re.search(r"step (\d+)|(\d+) steps", text)
    return int(match.group(1) or match.group(2)) if match else -1


def test_a_shared_link_restores_the_settings(page, base_url):
    # First request to a fresh server, straight into a page: the app frame (navigation, teacher mode) must run.
    open_page(page, f"{base_url}/playground?lr=0.1&gating=vector&tasks=2&noise=0.5&teacher=true")
    assert harness.exceptions_on(page) == []
    assert slider_value(page, "lr") == "0.1"
    assert slider_value(page, "tasks") == "2"
    assert slider_value(page, "noise") == "0.50"
    assert element(page, "gating").get_by_role("radio", name="vector").is_checked()
    assert page.get_by_role("link", name="Landscape").count() == 1, "the app's own navigation is shown"
    assert page.locator(".st-key-teacher").get_by_role("switch").is_checked()
    shot(page, "shared_link_teacher_mode")
    # a change goes into the URL, and that URL opens the same settings elsewhere
    element(page, "gating").get_by_text("none", exact=True).click()
    settle(page)
    page.wait_for_url(re.compile(r"gating=none"))
    other = page.context.new_page()
    open_page(other, page.url)
    assert element(other, "gating").get_by_role("radio", name="none").is_checked()
    assert slider_value(other, "lr") == "0.1"


def test_teacher_mode_hides_chosen_controls_and_enlarges_text(page, base_url):
    open_page(page, f"{base_url}/playground")
    normal_size = page.locator("h1").evaluate("h => parseFloat(getComputedStyle(h).fontSize)")
    open_page(page, f"{base_url}/playground?teacher=true&hide_playground=training&hide_playground=advanced")
    assert not element(page, "lr").is_visible() and not element(page, "seed").is_visible()
    assert element(page, "gating").is_visible()
    assert page.locator("h1").evaluate("h => parseFloat(getComputedStyle(h).fontSize)") > normal_size
    shot(page, "teacher_mode_hidden_controls")


def test_a_phone_sees_results_not_training(browser, base_url):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, user_agent=PHONE)
    try:
        phone = context.new_page()
        open_page(phone, f"{base_url}/playground")
        assert phone.get_by_text("On a phone").is_visible()
        assert harness.page_button(phone, "Train").count() == 0
        assert harness.exceptions_on(phone) == []
        phone.screenshot(path=str(ARTIFACTS / "phone_playground.png"))
    finally:
        context.close()


def test_every_page_loads_without_an_exception(page, base_url):
    open_page(page, base_url)
    for name, title in PAGES.items():
        if name != "home":  # through the app's own navigation, as a student moves around
            page.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click()
            page.wait_for_url(re.compile(f"/{name}"))
        page.locator('[data-testid="stPlotlyChart"]').first.wait_for()
        settle(page)
        assert harness.exceptions_on(page) == []
        shot(page, f"page_{name}")


REPLAY_WINDOW = 8.0   # seconds from pressing Train in which a viewer must see the gates learn
# ... or, where training itself took longer (a busy 2-core machine's first run after the server started finished in
# 3-7 s), this long after the finished comparison: the replay plays by itself in 4.2 s (21 frames at "normal")
REPLAY_AFTER_FINISH = 6.0


WEIGHTS_NOW = """const chart = document.querySelector('.st-key-replay_weights .js-plotly-plot');
    return chart && chart.data ? JSON.stringify(chart.data[0].y) : null;"""


def drawn_weights(tab) -> str | None:
    """The first task's bars as the browser has drawn them now (Plotly's own data of the weights chart)."""
    return tab.evaluate(f"() => {{ {WEIGHTS_NOW} }}")


def record_weight_states(tab) -> None:
    """Keep, in the page itself, each distinct state of the weights chart as it is drawn (at every animation frame,
    and every 20 ms where frames are held back). Sampling from the test instead (a round trip per look) missed
    frames on a busy 2-core machine: each look took up to half a second there, while the replay shows a frame every
    0.2 s. The first state kept is the chart as it is when recording starts."""
    tab.evaluate(f"""() => {{
        const now = () => {{ {WEIGHTS_NOW} }};
        window.weightStates = [];
        const look = () => {{
            const drawn = now();
            if (drawn !== null && drawn !== window.weightStates[window.weightStates.length - 1]) {{
                window.weightStates.push(drawn);
            }}
            requestAnimationFrame(look);
        }};
        look();
        setInterval(look, 20); }}""")


def recorded_weight_states(tab) -> list[str]:
    return tab.evaluate("() => window.weightStates")


def recorded_weight_count(tab) -> int:
    return tab.evaluate("() => window.weightStates.length")


def test_default_preset_trains_and_replays_what_the_gates_learned(page, base_url, app_server):
    """From pressing Train, with no other touch: the weights chart goes from the untrained model through at
    least 10 intermediate states to the final one within REPLAY_WINDOW seconds, or REPLAY_AFTER_FINISH seconds after
    the finished comparison where that is later (the replay plays by itself, in the browser), and the converged
    comparison is on screen. Train is pressed once the server's training workers are up, as a class meets a
    server: the timings it records are the click's, not those of a server's first seconds."""
    open_page(page, f"{base_url}/playground")
    assert app_server.wait_for_workers(), "the server's training workers did not start"
    shot(page, "before_training")
    # read after the shot: the chart as the shot's resizing left it (read before, its data differed from the
    # untrained chart the recorder starts with, and counted as a change at the first look after Train)
    untrained = drawn_weights(page)
    record_weight_states(page)
    started = time.monotonic()
    harness.page_button(page, "Train").click()
    first_change, mid_shot, progress_shown, finished = None, False, None, None
    window = REPLAY_WINDOW
    while time.monotonic() - started < window:
        line = progress(page)
        if progress_shown is None and line:
            progress_shown = time.monotonic() - started    # the first visible answer to the click
        if finished is None and line.startswith("Finished"):
            finished = time.monotonic() - started          # the converged comparison is on screen
            window = max(REPLAY_WINDOW, finished + REPLAY_AFTER_FINISH)
        recorded = recorded_weight_count(page)       # the untrained chart first
        if first_change is None and recorded > 1:
            first_change = time.monotonic() - started
        if not mid_shot and recorded >= 8:
            shot(page, "replay_midway")
            mid_shot = True
        page.wait_for_timeout(50)
    states = recorded_weight_states(page)
    wait_for_text(page, rf"^Finished · {TrainConfig().steps} steps", TRAIN_WAIT)   # the default preset's steps
    settle(page)
    final = drawn_weights(page)
    intermediate = {state for state in states if state not in (untrained, final)}
    assert len(intermediate) >= 10, f"{len(intermediate)} intermediate weight states in {window:.1f} s"
    assert harness.exceptions_on(page) == []
    for chart in ("weights_chart", "gates_chart"):
        element(page, chart).wait_for()
    cosine = float(page.locator('[data-testid="stMetric"]', has_text="Cosine")
                   .locator('[data-testid="stMetricValue"]').inner_text())
    assert cosine > 0.95, f"the gates should have learned the reachable weights, cosine {cosine}"
    assert "±" in page.locator('[data-testid="stMetric"]', has_text="Trained model").inner_text()
    assert page.get_by_text("Export this run").is_visible()
    shot(page, "training_finished")
    (ARTIFACTS / "timings.json").write_text(json.dumps({
        "train_to_progress_line_seconds": round(progress_shown or float("nan"), 2),
        "train_to_first_chart_change_seconds": round(first_change or float("nan"), 2),
        "train_to_finished_comparison_seconds": round(finished or float("nan"), 2),
        "weight_states_seen_in_window": len(intermediate), "window_seconds": round(window, 2),
        "cosine": cosine}, indent=2))


def test_another_click_leaves_the_run_alone_and_stop_stops_it(page, base_url):
    open_page(page, f"{base_url}/playground?steps=5000&seed=3")
    harness.page_button(page, "Train").click()
    wait_for_text(page, r"^Training: step [1-9]")
    before = step_of(progress(page))
    # Another control, mid-run: the page reruns, the run goes on.
    element(page, "gating").get_by_text("vector", exact=True).click()
    wait_for_text(page, "your settings have changed since it started")
    page.wait_for_function(
        f"() => /step (\\d+)/.test(document.body.innerText) && "
        f"Number(document.body.innerText.match(/Training: step (\\d+)/)?.[1] ?? -1) > {before}",
        timeout=TRAIN_WAIT)
    assert progress(page).startswith("Training")
    shot(page, "run_survives_a_click")
    harness.page_button(page, "Stop").click()
    wait_for_text(page, r"^Stopped · \d+ steps")
    stopped_at = step_of(progress(page))
    page.wait_for_timeout(2000)
    settle(page)
    assert step_of(progress(page)) == stopped_at, "a stopped run does not go on"
    assert stopped_at < 5000
    assert harness.exceptions_on(page) == []
    shot(page, "run_stopped")


def test_a_busy_server_queues_a_run_and_a_closed_tab_frees_its_slot(browser, base_url):
    first, second = browser.new_context(viewport=harness.VIEWPORT), browser.new_context(viewport=harness.VIEWPORT)
    try:
        busy = first.new_page()
        open_page(busy, f"{base_url}/playground?steps=5000&seed=21")
        harness.page_button(busy, "Train").click()
        wait_for_text(busy, r"^Training: step [1-9]")
        waiting = second.new_page()
        open_page(waiting, f"{base_url}/playground?steps=25&seed=22")
        harness.page_button(waiting, "Train").click()
        wait_for_text(waiting, "Waiting for a free training slot")
        shot(waiting, "waiting_for_a_slot")
        first.close()        # the session ends: its run stops and gives the slot back
        wait_for_text(waiting, r"^Finished · 25 steps", TRAIN_WAIT)
        assert harness.exceptions_on(waiting) == []
    finally:
        second.close()
