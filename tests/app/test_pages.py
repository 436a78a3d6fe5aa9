"""Every page through Streamlit's AppTest (no browser): it renders, its controls move its analytic
figures, invalid input gives a message, and short trainings finish and show the comparison.

AppTest does not fire `run_every` refreshes, so a training test reruns the page until the run says
it is done; live refreshing itself is covered by the browser test.
"""
import base64
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import lab_ui
import torch
from gla_core.sampling import PromptSampler
from gla_core.spec import default_spec
from gla_core.theory import solve
from gla_core.train import Trainer

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("home", "playground", "landscape", "gating_vs_linear", "depth", "recurrence")
TIMEOUT = 30        # seconds for one page run (AppTest's default of 3 is short on a busy CI machine)
TRAIN_WAIT = 120    # seconds for a short training to finish
SETTINGS_OF_DEFAULT = {"gating": "scalar", "layers": 1, "steps": 100, "lr": 0.02, "batch": 256, "seed": 0,
                       "device": "auto"}


def open_page(page: str, **query: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update(query)
    at.run()
    if page != "home":
        at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, [error.value for error in at.exception]
    return at


def chart(at: AppTest, key: str) -> dict:
    """The figure JSON of the chart with this key."""
    for element in at.get("plotly_chart"):
        if element.proto.id.endswith(f"-{key}"):
            return json.loads(element.proto.spec)
    raise AssertionError(f"no chart {key!r}; charts: {[element.proto.id for element in at.get('plotly_chart')]}")


def array(value) -> np.ndarray:
    """A figure JSON array: a plain list, or Plotly's base64 typed array {"dtype", "bdata", "shape"}."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return flat.reshape([int(n) for n in value["shape"].split(",")]) if "shape" in value else flat
    return np.asarray(value)


def has_chart(at: AppTest, key: str) -> bool:
    return any(element.proto.id.endswith(f"-{key}") for element in at.get("plotly_chart"))


def progress_text(at: AppTest) -> str:
    return " ".join(element.proto.text for element in at.get("progress"))


def rerun_until(at: AppTest, words: tuple[str, ...]) -> str:
    """Rerun the page until its progress line holds one of `words`; return that line."""
    deadline = time.monotonic() + TRAIN_WAIT
    while time.monotonic() < deadline:
        text = progress_text(at)
        if any(word in text for word in words):
            return text
        time.sleep(0.3)
        at.run()
        assert not at.exception, [error.value for error in at.exception]
    raise AssertionError(f"the run did not reach {words} in {TRAIN_WAIT} s; progress: {progress_text(at)!r}")


def plain(markdown: str) -> str:
    """A message's Markdown as it reads on screen: backslash escapes undone."""
    return re.sub(r"\\(.)", r"\1", markdown)


def click(at: AppTest, label: str) -> None:
    next(button for button in at.button if button.label == label).click().run()
    assert not at.exception, [error.value for error in at.exception]


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_without_errors(page):
    at = open_page(page)
    assert not at.error, [error.value for error in at.error]
    assert at.get("plotly_chart"), "every page shows a figure"
    assert at.title


def test_home_slider_moves_the_weights():
    at = open_page("home")
    before = chart(at, "home_weights")
    at.slider(key="home_r1").set_value(0.9).run()
    assert chart(at, "home_weights")["data"] != before["data"]


# ---------------------------------------------------------------- playground
def test_playground_relevance_moves_the_analytic_weights():
    at = open_page("playground")
    before = chart(at, "weights_chart")
    at.slider(key="r1").set_value(0.95).run()
    after = chart(at, "weights_chart")
    assert after["data"] != before["data"]


def test_playground_settings_come_from_the_url():
    at = open_page("playground", lr="0.1", gating="vector", tasks="2", noise="0.5")
    assert at.select_slider(key="lr").value == 0.1
    assert at.radio(key="gating").value == "vector"
    assert at.slider(key="tasks").value == 2
    assert at.slider(key="noise").value == 0.5
    assert {"r1", "r2"} <= {slider.key for slider in at.slider} and "r3" not in {slider.key for slider in at.slider}


def test_choosing_a_preset_sets_every_control():
    at = open_page("playground")
    at.selectbox(key="preset").set_value("per_coordinate").run()
    assert at.slider(key="d").value == 4
    assert at.toggle(key="per_coord").value is True
    assert at.radio(key="gating").value == "vector"
    assert at.text_input(key="rv1").value == "0.95, 0.95, 0, 0"
    assert any(trace["type"] == "heatmap" for trace in chart(at, "weights_chart")["data"])


def test_a_correlation_matrix_that_is_not_psd_gives_a_message_not_a_figure():
    at = open_page("playground")
    at.text_area(key="task_corr").input(
        "[[1, 0.9, 0, 0.9], [0.9, 1, 0, 0], [0, 0, 1, 0.9], [0.9, 0, 0.9, 1]]").run()
    assert not at.exception
    assert any("positive semi-definite" in plain(error.value) for error in at.error)
    assert not has_chart(at, "weights_chart")


def test_unparsable_relevance_text_gives_a_message():
    at = open_page("playground", per_coord="true")
    at.text_input(key="rv1").input("0.5, lots").run()
    assert any("tasks[0].corr" in error.value and "'0.5, lots'" in plain(error.value) for error in at.error)


def test_a_short_training_finishes_and_the_comparison_appears():
    at = open_page("playground", steps="25", batch="16", seed="11")
    assert "frames" not in chart(at, "weights_chart")
    click(at, "Train")
    assert "Finished" in rerun_until(at, ("Finished", "Stopped", "Diverged", "Failed"))
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["Trained model"] != "—" and float(metrics["Cosine"]) > 0
    assert has_chart(at, "gates_chart")
    figure = chart(at, "weights_chart")
    assert [frame["name"] for frame in figure["frames"]] == [str(step) for step in range(0, 26, 5)]
    assert all(np.isfinite(bars_of(figure)))
    command = at.code[0].value
    assert command.startswith("python -m gla_core train --preset default") and "--steps 25" in command
    assert "--batch 16" in command and "--seed 11" in command
    assert "Export this run" in [expander.label for expander in at.expander]


def test_a_run_waiting_behind_another_shows_its_place_once_and_the_page_as_before():
    slots = lab_ui.training_slots()
    owners = [object() for _ in range(slots.capacity)]
    assert all(slots.try_take(owner) for owner in owners)      # every slot busy
    ahead = object()
    assert not slots.try_take(ahead)                            # and a run in line before this page's
    owners.append(ahead)
    try:
        at = open_page("playground", steps="25", batch="16", seed="14")
        click(at, "Train")
        waiting = [info.value for info in at.info if "Waiting for a free training slot" in info.value]
        assert len(waiting) == 1 and "1 run ahead of yours" in waiting[0]
        assert has_chart(at, "weights_chart") and has_chart(at, "gates_chart")
        assert at.metric and not at.exception
    finally:
        for owner in owners:
            slots.leave(owner)
    assert "Finished" in rerun_until(at, ("Finished", "Stopped", "Diverged", "Failed"))
    assert not [info for info in at.info if "Waiting for a free training slot" in info.value]


def test_the_url_flags_a_live_run_and_a_page_that_lost_its_run_says_so():
    at = open_page("playground", steps="2000", batch="16", seed="13")  # long enough to be alive at the next page run
    assert lab_ui.LIVE_RUN_PARAM not in at.query_params
    click(at, "Train")
    assert at.query_params.get(lab_ui.LIVE_RUN_PARAM) in ("1", ["1"])     # while the run lives
    rerun_until(at, ("Finished",))
    at.run()
    assert lab_ui.LIVE_RUN_PARAM not in at.query_params                   # it ended here: nothing to say
    assert not [warning for warning in at.warning if "interrupted" in warning.value]
    # a new session (a restarted server) opened with the flag: its run is gone, and the page says so once
    lost = open_page("home", **{lab_ui.LIVE_RUN_PARAM: "1"})
    assert [warning for warning in lost.warning if "interrupted" in warning.value]
    assert lab_ui.LIVE_RUN_PARAM not in lost.query_params
    lost.run()
    assert not [warning for warning in lost.warning if "interrupted" in warning.value]


def test_a_copied_link_with_another_browsers_live_run_flag_says_nothing():
    """The flag holds the training browser's mark (AppTest has no cookie: its mark is "1"); a visitor who
    opens a link copied from that browser's address bar is not told that a run of theirs was lost."""
    copied = open_page("playground", **{lab_ui.LIVE_RUN_PARAM: "5f3a9c1e"})
    assert not [warning for warning in copied.warning if "interrupted" in warning.value]
    assert lab_ui.LIVE_RUN_PARAM not in copied.query_params


def test_a_run_over_the_hosts_memory_limit_is_refused_with_the_batch_that_fits(host_env):
    from gla_core.spec import PromptSpec, load_preset
    from gla_core.train import TrainConfig, training_memory_bytes

    host_env(GLA_MAX_RUN_MEMORY_MB="64")
    at = open_page("playground", gating="vector", layers="4", n1="64", n2="64", n3="64")
    errors = [plain(error.value) for error in at.error]
    assert len(errors) == 1 and "`batch`" in errors[0] and "this server allows 64 MB per run" in errors[0]
    assert not [button for button in at.button if button.label == "Train"]      # nothing to start
    fits = int(re.search(r"a batch of at most (\d+)", errors[0]).group(1))
    default = load_preset("default")["spec"]
    spec = PromptSpec.from_dict({**default, "tasks": [{**task, "n": 64} for task in default["tasks"]]})

    def need(batch):
        return training_memory_bytes(spec, TrainConfig(gating="vector", layers=4, batch=batch))
    assert need(fits) <= 64 * 2**20 < need(fits + 1)


def test_step_pauses_and_stop_ends_the_run():
    at = open_page("playground", steps="100", batch="16", seed="12")
    step = lab_ui.STEP_SIZE
    click(at, f"Step ({step})")
    assert f"Paused at step {step}" in rerun_until(at, ("Paused",))
    click(at, f"Step ({step})")
    assert f"Paused at step {2 * step}" in rerun_until(at, (f"step {2 * step}",))
    click(at, "Stop")
    assert "Stopped" in rerun_until(at, ("Stopped",))


def charts(at: AppTest) -> dict[str, tuple[tuple[int, ...], str, str]]:
    """Each chart by its key: its place in the page (its path of child indices), its id and its figure, as the
    browser receives them."""
    found = {}

    def walk(node, path: tuple[int, ...]) -> None:
        if getattr(node, "type", None) == "plotly_chart":
            found[node.proto.id.rsplit("-", 1)[-1]] = (path, node.proto.id, node.proto.spec)
        for index, child in getattr(node, "children", {}).items():
            walk(child, path + (index,))

    walk(at._tree, ())
    return found


@pytest.mark.parametrize("page, button, query", [
    ("playground", "Train", {"steps": "1000", "seed": "13"}),
    ("depth", "Train again", {"seed": "14"}),
    ("gating_vs_linear", "Overlay trained models", {"seed": "15"}),
])
def test_starting_a_run_moves_no_chart(page, button, query):
    # A chart whose place in the page changes is drawn again by the browser: with a progress line put in front of
    # the charts when a run started, the Playground's progress line showed 0.5-0.8 s after Train instead of 0.2-0.3.
    at = open_page(page, **query)
    if page == "playground":
        without_runs(at)
    before = charts(at)
    click(at, button)
    # Training, or (on a fast machine: the overlay's ten models take 0.9 s there) already ended: a panel waits for an
    # end that is near, so the page can be drawn only once the run is over; either way no chart may have moved
    ended = next(button for button in at.button if button.label == "Stop").disabled
    assert progress_text(at).startswith("Training") or ended, progress_text(at)
    after = charts(at)
    assert before and {key: chart[0] for key, chart in after.items()} == {key: chart[0] for key, chart in before.items()}
    # A chart showing what it showed keeps its id (the browser leaves it as it is); one that shows the run's first
    # steps already (a quick start: they came before the page was drawn) is a new figure, drawn anyway.
    for key, (_, chart_id, figure) in after.items():
        assert chart_id == before[key][1] or figure != before[key][2], f"{key}: a new id for the same figure"
    if not ended:
        click(at, "Stop")
    deadline = time.monotonic() + TRAIN_WAIT     # until the run has ended: its slot free for the next test's run
    while not next(button for button in at.button if button.label == "Stop").disabled:
        assert time.monotonic() < deadline, "the run did not end after Stop"
        time.sleep(0.3)
        at.run()


# ---------------------------------------------------------------- other pages
def test_landscape_relevance_moves_the_curve_and_three_tasks_show_a_simplex():
    at = open_page("landscape")
    before = chart(at, "landscape_angle")
    at.slider(key="ls_r1").set_value(-0.5).run()
    assert chart(at, "landscape_angle")["data"] != before["data"]
    at.radio(key="ls_tasks").set_value(3).run()
    assert chart(at, "landscape_simplex")["data"][0]["type"] == "scatterternary"


def test_landscape_anisotropic_features_make_a_true_preconditioner():
    at = open_page("landscape")
    isotropic = array(chart(at, "landscape_P")["data"][0]["z"])
    assert np.allclose(isotropic, isotropic[0, 0] * np.eye(len(isotropic)))    # P* = c I
    at.select_slider(key="ls_condition").set_value(100.0).run()
    spread = np.diag(array(chart(at, "landscape_P")["data"][0]["z"]))
    assert spread.max() > 1.5 * spread.min()


def test_gating_sweep_follows_the_setting_and_gives_a_verdict():
    at = open_page("gating_vs_linear")
    before = chart(at, "sweep_chart")
    at.radio(key="gv_sweep").set_value("relevance").run()
    after = chart(at, "sweep_chart")
    assert after["data"] != before["data"]
    assert any("Gating wins" in message.value or "never helps" in message.value for message in at.success)
    at.selectbox(key="gv_preset").set_value("equal_tasks").run()
    assert chart(at, "sweep_chart")["data"] != after["data"]


def test_depth_trains_one_to_four_layers():
    at = open_page("depth", steps="25", batch="16", seed="13")
    lines_before = chart(at, "depth_chart")["data"]
    at.radio(key="gating").set_value("none").run()
    assert chart(at, "depth_chart")["data"] != lines_before
    click(at, "Train 1 to 4 layers")
    deadline = time.monotonic() + TRAIN_WAIT
    while time.monotonic() < deadline:
        trained = [trace for trace in chart(at, "depth_chart")["data"] if trace["name"].startswith("trained")]
        if trained and len(array(trained[0]["x"])) == 4:
            break
        time.sleep(0.3)
        at.run()
    assert trained and list(array(trained[0]["x"])) == [1, 2, 3, 4]
    assert has_chart(at, "layer_weights")


def test_depth_gives_no_verdict_on_a_model_still_training():
    at = open_page("depth", steps="2000", batch="16", seed="13")
    click(at, "Train 1 to 4 layers")
    deadline = time.monotonic() + TRAIN_WAIT
    trained = []
    while not trained and time.monotonic() < deadline:
        time.sleep(0.3)
        at.run()
        trained = [trace for trace in chart(at, "depth_chart")["data"] if trace["name"].startswith("trained")]
    assert trained, "a model training is drawn as it goes"
    words = " ".join(element.value for element in at.markdown)
    assert not any(verdict in words for verdict in ("target (", "fell short", "went below", "one-step** WPGD")), words
    # its models may stop at their targets, well before their last step: the time left is a bound
    assert re.search(r"· up to about \d+ s left", progress_text(at)), progress_text(at)
    click(at, "Stop")


def test_recurrence_gla_equals_wpgd_and_the_token_slider_steps():
    at = open_page("recurrence")
    gla, wpgd, _ = at.table[0].value["prediction"]
    assert len(gla) >= 15 and abs(float(gla) - float(wpgd)) < 1e-12 * max(1.0, abs(float(wpgd)))
    before = chart(at, "recurrence_step")
    next(button for button in at.button if button.label == "▶").click().run()
    assert at.slider(key="rc_t").value == 2
    assert chart(at, "recurrence_step")["data"] != before["data"]


def test_teacher_mode_offers_controls_to_hide():
    at = open_page("playground", teacher="true", hide_playground="training")
    assert at.toggle(key="teacher").value is True
    assert at.multiselect(key="hide_playground").value == ["training"]
    assert not at.exception
    link = at.text_input(key="student_link_playground").value
    assert "hide_playground=training" in link and "teacher" not in link


def hidden_blocks(node) -> set[str]:
    """Keys of the blocks the page hides (st.container(key="hidden_..."), display: none by BASE_CSS)."""
    found = set()
    for child in getattr(node, "children", {}).values():
        block_id = getattr(getattr(child, "proto", None), "id", "")
        if isinstance(block_id, str) and "-hidden_" in block_id:
            found.add(block_id.split("-hidden_", 1)[1])
        found |= hidden_blocks(child)
    return found


def test_a_student_link_hides_the_teachers_choice_without_the_box():
    at = open_page("playground", hide_playground="training")
    assert not at.multiselect                                    # no "Hide these controls" box
    assert {"steps", "lr", "batch", "seed", "device"} <= hidden_blocks(at._tree)
    assert "d" not in hidden_blocks(at._tree)                     # only what the teacher chose
    assert at.select_slider(key="steps").value == 100            # a hidden control still works
    assert not hidden_blocks(open_page("playground")._tree)


def bars_of(figure: dict) -> np.ndarray:
    return np.concatenate([array(trace["y"]) for trace in figure["data"] if trace["type"] == "bar"])


def without_runs(at: AppTest) -> AppTest:
    """The page with no run of this session on it (AppTest's sessions in one process share session resources,
    so an earlier test's run can still be here)."""
    reset = next(button for button in at.button if button.label == "Reset")
    if not reset.disabled:
        reset.click().run()
    return at


def test_before_training_the_bars_are_the_untrained_models_weights_not_the_analytic_ones():
    at = without_runs(open_page("playground"))
    figure = chart(at, "weights_chart")
    trainer = Trainer(default_spec(), lab_ui.train_config(default_spec(), **SETTINGS_OF_DEFAULT))
    with torch.no_grad():   # the model a run starts from, measured on prompts of another seed
        untrained = trainer.induced_weights(PromptSampler(default_spec()).sample(128, torch.Generator().manual_seed(7)))[0]
    bars = bars_of(figure)
    assert np.allclose(bars, np.asarray(untrained) / np.max(untrained), atol=1e-3)   # nearly equal weights
    analytic = np.asarray(solve(default_spec())["scalar_gla"]["omega"])
    assert not np.allclose(bars, analytic, atol=0.1)
    markers = [trace for trace in figure["data"] if trace["type"] == "scatter" and trace.get("name", "").endswith("ω")]
    assert markers and np.allclose(array(markers[0]["y"]), analytic)                   # the theory as markers
    assert {metric.label: metric.value for metric in at.metric}["Trained model"] == "—"


def test_hide_the_theory_keeps_markers_lines_and_cosine_back_until_the_run_ends():
    at = without_runs(open_page("playground", hide_theory="true", steps="25", batch="16"))
    names = [trace.get("name", "") for trace in chart(at, "weights_chart")["data"]]
    assert not any("optimal WPGD" in name or "scalar-gated" in name for name in names), names
    assert {metric.label: metric.value for metric in at.metric}["Best scalar-gated GLA"] == "?"
    click(at, "Train")
    assert "Finished" in rerun_until(at, ("Finished", "Stopped", "Diverged", "Failed"))
    figure = chart(at, "weights_chart")
    assert any("scalar-gated" in trace.get("name", "") for trace in figure["data"])      # the run ended: the theory shows
    metrics = {metric.label: metric.value for metric in at.metric}
    assert float(metrics["Best scalar-gated GLA"]) > 0 and float(metrics["Cosine"]) > 0
    assert "±" in metrics["Trained model"]
    assert 2 <= len(figure["frames"]) <= 200 and figure["frames"][0]["name"] == "0"   # a replay from the start


def test_depth_draws_each_depths_own_target_and_says_where_a_model_landed():
    from gla_core.causal_wpgd import causal_wpgd_targets
    from gla_core.spec import preset_spec

    at = open_page("depth", steps="25", batch="16", seed="21")
    (drawn,) = [trace for trace in chart(at, "depth_chart")["data"] if "causal WPGD" in trace.get("name", "")]
    targets = causal_wpgd_targets(preset_spec("depth"), 4)
    assert np.allclose(array(drawn["y"]), [target["risk"] for target in targets])
    assert np.allclose(array(drawn["error_y"]["array"]), [2 * target["risk_se"] for target in targets])
    assert not [button for button in at.button if button.label == "Compute the L-step targets"]   # precomputed
    click(at, "Train 1 to 4 layers")
    deadline = time.monotonic() + TRAIN_WAIT
    while time.monotonic() < deadline and "**4 layers**:" not in " ".join(m.value for m in at.markdown):
        time.sleep(0.3)
        at.run()
    words = " ".join(markdown.value for markdown in at.markdown)
    for layers in (1, 2, 3, 4):
        assert re.search(rf"\*\*{layers} layers?\*\*: (reached|fell short|went below)", words), words
    # settings without precomputed targets: a button computes them in the background; nothing blocks the page
    other = open_page("depth", n1="7")
    assert [button for button in other.button if button.label == "Compute the L-step targets"]
    assert not [trace for trace in chart(other, "depth_chart")["data"] if "causal WPGD" in trace.get("name", "")]


def depth_words_once_trained(at: AppTest) -> str:
    click(at, "Train 1 to 4 layers")
    deadline = time.monotonic() + TRAIN_WAIT
    while time.monotonic() < deadline and "**4 layers**:" not in " ".join(m.value for m in at.markdown):
        time.sleep(0.3)
        at.run()
    return " ".join(markdown.value for markdown in at.markdown)


def test_depth_models_stop_at_their_target_unless_switched_off():
    """The depth preset as the page trains it (100 steps, every 10 evaluated): with the switch on, as it starts,
    each model ends at the first evaluation whose whole held-out set puts it at its L-step target, and says where;
    switched off, each runs all its steps."""
    at = open_page("depth", seed="0")
    assert [toggle.value for toggle in at.toggle if toggle.label == "Stop each model at its target"] == [True]
    words = depth_words_once_trained(at)
    stops = [int(step) for step in re.findall(r"-step target \(\d\.\d+\) at step (\d+), and stopped there", words)]
    assert len(stops) == 4 and all(10 <= step < 100 and step % 10 == 0 for step in stops), words
    off = depth_words_once_trained(open_page("depth", seed="0", stop_at_target="false"))
    assert "stopped" not in off and re.search(r"\*\*4 layers\*\*: (reached|went below)", off), off


def test_tabs_of_one_browser_are_one_browser_though_their_cookie_text_differs():
    """The server masks the XSRF token afresh for every page it sends: the cookie's text differs from tab
    to tab (and after a restart) while the token under the mask is the browser's own."""
    from streamlit.web.server.starlette.starlette_app_utils import generate_xsrf_token_string
    from lab_ui.resources import xsrf_secret

    mine, theirs = bytes(range(16)), bytes(range(1, 17))
    tab_1, tab_2 = generate_xsrf_token_string(mine, 1700000000), generate_xsrf_token_string(mine, 1700000000)
    assert tab_1 != tab_2
    assert xsrf_secret(tab_1) == xsrf_secret(tab_2) == mine.hex()
    assert xsrf_secret(generate_xsrf_token_string(theirs, 1700000000)) != xsrf_secret(tab_1)
    assert xsrf_secret("not|a|cookie") == "not|a|cookie"


def test_a_seed_that_is_not_whole_is_refused_by_name():
    at = open_page("playground", seed="3.7")
    assert any("`seed`: must be a whole number" in error.value for error in at.error)
    assert not [button for button in at.button if button.label == "Train"]     # nothing to train with it


def test_depth_verdicts_say_reached_short_or_below_by_two_standard_errors_of_both():
    target = {"risk": 1.0, "risk_se": 0.01}
    # the margin is 2 standard errors of both together: 2 * hypot(0.005, 0.01) = 0.0224
    assert "reached the 2-step target" in lab_ui.depth_verdict(2, 1.02, 0.005, target)
    assert "fell short of the 2-step target by 2.5%" in lab_ui.depth_verdict(2, 1.025, 0.005, target)
    assert "fell short of the 3-step target by 5.0%" in lab_ui.depth_verdict(3, 1.05, 0.01, target)
    below = lab_ui.depth_verdict(4, 0.95, 0.01, target)
    assert "went below the 4-step target" in below and "outside L-step WPGD" in below
    assert "reached the 2-step target (1.000) at step 60, and stopped there." in lab_ui.depth_verdict(
        2, 1.02, 0.005, target, stopped_at=60)
    assert lab_ui.depth_verdict(4, 0.95, 0.01, target, stopped_at=40).endswith("It stopped at step 40.")
    summary = lab_ui.against_one_step({1: (1.44, 0.001), 2: (1.0, 0.01), 3: (1.439, 0.002)}, 1.44)
    assert "Models with 2 layers beat it" in summary and "Models with 1 and 3 layers are at it" in summary
