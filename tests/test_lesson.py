"""The guided lesson (app_pages/lesson.py, gla_core/lesson.py) through AppTest: every step renders, a right
and a wrong answer get the right reveal, the correct choice follows the settings on screen, the step is in
the URL with Back/Next, and the last step opens the Playground with the student's settings.

Each expected answer is computed here from gla_core.theory directly (or from the trained risk the page
draws), never by the lesson's own answer functions.
"""
import itertools
import re
from pathlib import Path
from urllib.parse import parse_qs

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.app.test_pages import array, chart

import lab_ui
from gla_core import lesson, theory
from gla_core.spec import PromptSpec, preset_spec

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 60    # seconds for one page run: the two trained steps train a small GLA
NUM_STEPS = 10
DEFAULT_RELEVANCES = (0.2, 0.5, 0.9)


def open_step(step, **query: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update({"step": str(step), **query})
    at.run()
    at.switch_page("app_pages/lesson.py").run()
    assert not at.exception, [error.value for error in at.exception]
    return at


def question(at: AppTest):
    (radio,) = [radio for radio in at.radio if radio.key and radio.key.startswith("lesson_q")]
    return radio


def reveal(at: AppTest) -> tuple[str, str]:
    """('right' | 'wrong' | 'shown' | 'none', the text)."""
    for kind, elements in (("right", at.success), ("wrong", at.error), ("shown", at.info)):
        if len(elements):
            return kind, elements[0].value
    return "none", ""


def answer(at: AppTest, choice: str) -> tuple[str, str]:
    question(at).set_value(choice).run()
    assert not at.exception, [error.value for error in at.exception]
    return reveal(at)


def check_right_and_wrong(at: AppTest, correct: str) -> None:
    """The expected choice is called right; every other choice is called wrong and names the expected one."""
    choices = question(at).options
    assert correct in choices, (correct, choices)
    kind, text = answer(at, correct)
    assert kind == "right", text
    for other in (choice for choice in choices if choice != correct):
        kind, text = answer(at, other)
        assert kind == "wrong" and f"The answer is **{correct}**" in text, text


def spec_with(relevances, preset="default") -> PromptSpec:
    data = preset_spec(preset).to_dict()
    data["tasks"] = [{"n": task["n"], "corr": r} for task, r in zip(data["tasks"], relevances)]
    return PromptSpec.from_dict(data)


def equal(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * 5.01   # 5.01: the zero predictor's risk of these presets (d = 5, sigma = 0.1)


# ---------------------------------------------------------------- navigation
def test_step_from_url_and_back_next():
    at = open_step(4)
    assert "step 4 of 10" in at.title[0].value
    at.button(key="lesson_next").click().run()
    assert "step 5 of 10" in at.title[0].value and at.query_params["step"] == "5"
    at.button(key="lesson_back").click().run()
    at.button(key="lesson_back").click().run()
    assert "step 3 of 10" in at.title[0].value and at.query_params["step"] == "3"


@pytest.mark.parametrize("step", ["0", "11", "abc", "<b>4</b>"])
def test_a_bad_step_link_says_so_and_opens_step_1(step):
    at = open_step(step)
    assert "step 1 of 10" in at.title[0].value
    (warning,) = at.warning
    assert "is not a step of this lesson" in warning.value and "<b>" not in warning.value


def test_first_and_last_steps_disable_back_and_next():
    assert open_step(1).button(key="lesson_back").disabled
    assert open_step(NUM_STEPS).button(key="lesson_next").disabled


# ---------------------------------------------------------------- each step's answer, computed independently
def single_task_best(spec: PromptSpec) -> int:
    """The task whose examples alone give the lowest risk: P* for one-hot block weights, through theory.risk."""
    risks = []
    for k in range(spec.num_tasks):
        omega = (spec.example_task == k).astype(float)
        risks.append(theory.risk(spec, theory.optimal_preconditioner(spec, omega), omega))
    return int(np.argmin(risks))


def test_step_1_the_task_to_read_alone():
    spec = spec_with(DEFAULT_RELEVANCES)
    check_right_and_wrong(open_step(1), f"Task {single_task_best(spec) + 1}")


def test_step_2_gla_from_wpgd_predicts_the_same_number():
    at = open_step(2)
    answer(at, question(at).options[0])
    figure = chart(at, "lesson_agreement")
    wpgd, gla = array(figure["data"][1]["x"]), array(figure["data"][1]["y"])
    assert np.max(np.abs(gla - wpgd)) < 1e-12 * np.max(np.abs(wpgd))
    check_right_and_wrong(at, lesson.GAP_CHOICES[0][1])


@pytest.mark.parametrize("relevances", [(0.2, 0.5, 0.9), (0.9, 0.2, 0.5), (0.2, 0.9, -0.3), (-0.8, 0.1, 0.3)])
def test_step_3_most_weight_follows_the_sliders(relevances):
    at = open_step(3)
    for k, r in enumerate(relevances, start=1):
        at.slider(key=f"lesson_r{k}").set_value(r)
    at.run()
    weights = theory.best_wpgd(spec_with(relevances)).normalised().block_weights
    check_right_and_wrong(at, f"Task {int(np.argmax(weights)) + 1}")


def test_step_4_risk_is_flat_along_a_ray():
    spec = spec_with(DEFAULT_RELEVANCES)
    optimal = theory.best_wpgd(spec)
    # (P / 2, 2 omega) through the general risk of given P and weights, not the P-optimised one
    assert equal(theory.risk(spec, optimal.P / 2, 2 * optimal.omega), optimal.risk)
    check_right_and_wrong(open_step(4), "The risk stays the same")


@pytest.mark.parametrize("order", [(0.2, 0.5, 0.9), (0.2, 0.9, 0.5), (0.9, 0.5, 0.2), (0.5, 0.2, 0.9)])
def test_step_5_reachable_follows_the_task_order(order):
    at = open_step(5)
    at.selectbox(key="lesson_order_box").set_value(order).run()
    spec = spec_with(order)
    reaches = equal(theory.best_scalar_gla(spec).risk, theory.best_wpgd(spec).risk)
    # independent of the solver: the optimal weights rise toward the query exactly when they are reachable
    rising = bool(np.all(np.diff(theory.best_wpgd(spec).normalised().block_weights) >= 0))
    assert reaches == rising
    check_right_and_wrong(at, lesson.REACH_CHOICES[0 if reaches else 1])


@pytest.mark.parametrize("r1, expected", [(0.6, 0), (0.5, 1), (0.0, 2), (-0.5, 2)])
def test_step_6_gating_against_linear_attention_follows_the_slider(r1, expected):
    at = open_step(6)
    at.slider(key="lesson_gain_r1").set_value(r1).run()
    spec = spec_with((r1, 0.6, 0.6), preset="equal_tasks")
    linear, scalar = theory.best_linear_attention(spec).risk, theory.best_scalar_gla(spec).risk
    gain = (linear - scalar) / linear
    computed = 0 if equal(linear, scalar) else (1 if gain < lesson.SMALL_GAIN else 2)
    assert computed == expected    # the three settings give three different answers
    check_right_and_wrong(at, lesson.GAIN_CHOICES[computed])


@pytest.mark.parametrize("relevance, expected", [(0.0, "Vector gates"), (0.5, "Vector gates"), (0.95, "They tie")])
def test_step_7_vector_against_scalar_follows_the_slider(relevance, expected):
    at = open_step(7)
    at.slider(key="lesson_vector_r").set_value(relevance).run()
    data = preset_spec("per_coordinate").to_dict()
    data["tasks"][0]["corr"] = [0.95, 0.95, relevance, relevance]
    spec = PromptSpec.from_dict(data)
    scalar, vector = theory.best_scalar_gla(spec).risk, theory.best_vector_gla(spec).risk
    computed = "They tie" if equal(scalar, vector) else ("Vector gates" if vector < scalar else "Scalar gates")
    assert computed == expected
    check_right_and_wrong(at, computed)


def trained_marker(at: AppTest, key: str) -> tuple[float, float]:
    """The trained risk and its standard error that the reveal's chart draws (error bar: 2 SE)."""
    (marker,) = [trace for trace in chart(at, key)["data"] if trace.get("name", "").startswith("trained")]
    return float(marker["x"][0]), float(marker["error_x"]["array"][0]) / 2


def test_step_8_depth_checked_by_a_trained_two_layer_model():
    at = open_step(8)
    answer(at, question(at).options[0])
    risk, se = trained_marker(at, "lesson_depth_trained")
    one_layer = theory.best_scalar_gla(preset_spec("depth")).risk
    assert risk + 2 * se < one_layer    # two layers, two gradient steps: below the best one-layer risk
    check_right_and_wrong(at, "Below the best one-layer risk")


@pytest.mark.parametrize("gating", ["none", "scalar"])
def test_step_9_the_trained_risk_lands_nearest_the_computed_line(gating):
    at = open_step(9)
    at.radio(key="lesson_gating").set_value(gating).run()
    choices = question(at).options
    answer(at, choices[0])
    risk, _ = trained_marker(at, "lesson_trained_check")
    solved = theory.solve(spec_with(DEFAULT_RELEVANCES))
    reachable = {"none": "linear_attention", "scalar": "scalar_gla"}[gating]
    lines = sorted({round(solved[key]["risk"], 9) for key in ("zero", "linear_attention", reachable, "optimal")},
                   reverse=True)
    assert len(choices) == len(lines)
    nearest = int(np.argmin([abs(risk - line) for line in lines]))
    assert f"({lines[nearest]:.3f})" in choices[nearest]
    check_right_and_wrong(at, choices[nearest])
    assert abs(risk - solved[reachable]["risk"]) < 0.1 * solved[reachable]["risk"]  # training lands near its line


def walk_to_last_step(order, gating) -> AppTest:
    """Pick the task order at step 5 and the gating at step 9, then go Next to step 10."""
    at = open_step(5)
    at.selectbox(key="lesson_order_box").set_value(order).run()
    for _ in range(4):
        at.button(key="lesson_next").click().run()
    at.radio(key="lesson_gating").set_value(gating).run()
    at.button(key="lesson_next").click().run()
    assert "step 10 of 10" in at.title[0].value
    return at


@pytest.mark.parametrize("order, gating, expected", [((0.2, 0.5, 0.9), "scalar", 2), ((0.2, 0.9, 0.5), "scalar", 1),
                                                     ((0.2, 0.5, 0.9), "none", 1), ((0.9, 0.5, 0.2), "vector", 1)])
def test_step_10_what_training_approaches_follows_the_picks(order, gating, expected):
    at = walk_to_last_step(order, gating)
    spec = spec_with(order)
    optimal = theory.best_wpgd(spec).risk
    reachable = {"none": theory.best_linear_attention, "scalar": theory.best_scalar_gla,
                 "vector": theory.best_vector_gla}[gating](spec).risk
    computed = 2 if equal(optimal, reachable) else 1
    assert computed == expected
    check_right_and_wrong(at, lesson.TARGET_CHOICES[computed])


def has_chart(at: AppTest, key: str) -> bool:
    return any(element.proto.id.endswith(f"-{key}") for element in at.get("plotly_chart"))


@pytest.mark.parametrize("step, key", [(2, "lesson_agreement"), (3, "lesson_optimal"), (4, "lesson_scale"),
                                       (5, "lesson_reach"), (6, "lesson_gain"), (7, "lesson_vector"),
                                       (10, "lesson_target")])
def test_the_chart_that_decides_appears_only_at_the_reveal(step, key):
    at = open_step(step)
    assert not has_chart(at, key)
    answer(at, question(at).options[0])
    assert has_chart(at, key)


# ---------------------------------------------------------------- teacher mode
def test_teacher_holds_the_reveal_until_show():
    at = open_step(3, teacher="true")
    kind, _ = answer(at, "Task 1")
    assert kind == "none"                                   # the class is still voting
    at.button(key=f"show_{question(at).key}").click().run()
    kind, text = reveal(at)
    assert kind == "wrong" and "The answer is **Task 3**" in text
    at.toggle(key="lesson_hold").set_value(False).run()
    assert reveal(at)[0] == "wrong"


def test_teacher_shows_the_answer_before_any_vote():
    at = open_step(6, teacher="true")
    at.button(key=f"show_{question(at).key}").click().run()
    kind, text = reveal(at)
    assert kind == "shown" and lesson.GAIN_CHOICES[0] in text


# ---------------------------------------------------------------- the student's picks reach the Playground
def test_last_step_opens_the_playground_with_the_picked_settings():
    at = open_step(3)
    for k, r in enumerate((0.9, 0.3, 0.6), start=1):
        at.slider(key=f"lesson_r{k}").set_value(r)
    at.run()
    for _ in range(2):
        at.button(key="lesson_next").click().run()
    at.selectbox(key="lesson_order_box").set_value((0.3, 0.6, 0.9)).run()
    for _ in range(4):
        at.button(key="lesson_next").click().run()
    at.radio(key="lesson_gating").set_value("vector").run()
    at.button(key="lesson_next").click().run()
    assert "step 10 of 10" in at.title[0].value
    (link,) = at.get("page_link")
    query = {name: values[0] for name, values in parse_qs(link.proto.query_string).items()}
    assert link.proto.page == "playground"
    assert query == {"preset": "default", "gating": "vector", "r1": "0.3", "r2": "0.6", "r3": "0.9"}
    assert set(query) - {"preset"} <= set(lab_ui.preset_settings("default"))   # the Playground's own URL keys


def test_home_starts_the_lesson_and_defines_its_words():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert any(link.proto.page == "lesson" for link in at.get("page_link"))
    text = " ".join(block.value for block in at.markdown)
    assert "in-context linear regression" in text
    for word in ("Task", "Relevance", "Delimiter", "WPGD", "Reachable"):
        assert f"**{word}.**" in text


def test_task_orders_are_every_order_once():
    orders = lesson.task_orders((0.5, 0.5, 0.9))
    assert orders[0] == (0.5, 0.5, 0.9)
    assert sorted(orders) == sorted(set(itertools.permutations((0.5, 0.5, 0.9))))


# ---------------------------------------------------------------- in a real browser
@pytest.mark.browser
def test_browser_step_links_and_back_next(browser):
    """?step=N opens step N; Next and Back move the step in the address bar. Screenshots of three steps a
    first-time student sees (after answering) land in artifacts/browser/lesson_step_N.png."""
    from tests.load import harness

    artifacts = ROOT / "artifacts" / "browser"
    artifacts.mkdir(parents=True, exist_ok=True)
    with harness.AppServer("lesson") as server:
        context = browser.new_context(viewport=harness.VIEWPORT)
        tab = context.new_page()
        tab.set_default_timeout(30_000)
        for step, choice in ((1, "Task 3"), (3, "Task 1"), (5, lesson.REACH_CHOICES[0])):
            harness.open_app(tab, f"{server.url}/lesson?step={step}", 30_000)
            tab.get_by_role("heading", name=re.compile(f"step {step} of 10")).wait_for()
            tab.get_by_text(choice, exact=True).click()
            tab.get_by_text(re.compile(r"^(Right|Not this time)")).first.wait_for()
            # the app scrolls inside its main pane: the window is made as tall as that pane for the shot
            height = tab.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
            tab.set_viewport_size({"width": harness.VIEWPORT["width"], "height": min(max(height, 768), 4000)})
            tab.wait_for_timeout(300)
            tab.screenshot(path=str(artifacts / f"lesson_step_{step}.png"))
            tab.set_viewport_size(harness.VIEWPORT)
        harness.open_app(tab, f"{server.url}/lesson?step=4", 30_000)
        tab.get_by_role("button", name="Next").click()
        tab.wait_for_url(re.compile(r"step=5"))
        tab.get_by_role("heading", name=re.compile("step 5 of 10")).wait_for()
        tab.get_by_role("button", name="Back").click()
        tab.wait_for_url(re.compile(r"step=4"))
        tab.get_by_role("heading", name=re.compile("step 4 of 10")).wait_for()
        context.close()
