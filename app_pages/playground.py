"""Playground: train a GLA live and watch its gates turn into the optimal WPGD weights."""
import json
from functools import partial

import numpy as np
import streamlit as st

import lab_ui
from gla_core import figures
from gla_core.figures import QUANTITIES
from gla_core.session import Phase
from gla_core.spec import SpecError, list_presets, load_preset, preset_spec
from gla_core.train import ANALYTIC_KEY, Status
from lab_ui import keys

PURPOSE = "playground"

controls = lab_ui.Controls(PURPOSE, {"preset": "the preset box", **lab_ui.SETTING_LABELS, "exports": "the exports",
                                     "theory": "the hide-the-theory switch"},
                          follows_class=True)

st.title("Playground")
st.markdown("Choose a prompt and a model, press **Train**, and watch the gates of a gated linear attention model "
            "learn **how much each in-context example counts** — and compare that with the weights the theory "
            "says are optimal.")

try:
    preset, spec_dict, settings = lab_ui.training_sidebar(controls)
    spec = lab_ui.validated_spec(spec_dict)
    config = lab_ui.train_config(spec, **settings)
    hide_theory = lab_ui.theory_switch(controls)
except SpecError as error:
    lab_ui.show_invalid(error)
    st.stop()


tag = (spec.to_json(), json.dumps(settings, sort_keys=True))
store = lab_ui.result_store()
controls_row = lab_ui.RunControls(PURPOSE, tag)
run, same_settings = controls_row.run, controls_row.same_settings
# A run stays on screen while it lives and after it ends, until the settings change after its end.
if run is not None and not run.alive and st.session_state.get(keys.PLAYGROUND_ENDED, (None,))[0] != run.id:
    st.session_state[keys.PLAYGROUND_ENDED] = (run.id, tag)
settings_at_end = st.session_state.get(keys.PLAYGROUND_ENDED)
run_on_screen = run is not None and (run.alive or same_settings or settings_at_end == (run.id, tag))
# The description box describes what the charts show: the run on screen until new settings are trained.
described = run.current.spec if run_on_screen else spec
described_preset = next((name for name in [preset, *list_presets()] if preset_spec(name) == described), None)
st.info(f"**{load_preset(described_preset)['title']}.** {load_preset(described_preset)['description']}"
        if described_preset else "**Your own prompt** (changed from the preset).", icon=":material/description:")


# ---------------------------------------------------------------- buttons
# Callbacks run before the next page run, with this run's settings (the ones the user saw).
def train(steps: int | None = None) -> None:
    """Train to the end, or `steps` more steps and pause (Step); a run of these settings continues."""
    if not (same_settings and run.alive):
        controls_row.start([(spec, config)], step_budget=steps)
    elif steps is None:
        run.resume()
    else:
        run.grant(steps)


def reset() -> None:
    lab_ui.session_runs().replace(PURPOSE)


computing = controls_row.computing
controls_row.buttons([
    lab_ui.RunButton("Train", train, disabled=computing, primary=True,
                     help="Train the model to the end (or finish a paused run)."),
    lab_ui.RunButton(f"Step ({lab_ui.STEP_SIZE})", train, args=(lab_ui.STEP_SIZE,), disabled=computing,
                     help=f"Train {lab_ui.STEP_SIZE} steps, then pause."),
    lab_ui.RunButton("Reset", reset, disabled=run is None, help="Forget the run and start over."),
], phone="On a phone the Playground shows the theory, and models trained earlier on this server; open it on a "
         "larger screen to train models live.", stop_at=2, stop_shown_run=True)   # it stays on screen
if same_settings and run.phase == Phase.ENDED and run.current.snapshot().status == Status.STOPPED:
    st.caption("This run was stopped: **Train** starts a new run from the untrained model. (To pause a run "
               "and continue it, use **Step**.)")


# ---------------------------------------------------------------- the live panel
def draw(run) -> None:
    if run_on_screen:
        trainer = run.current
        shown_spec, shown_config, analytic = trainer.spec, trainer.config, trainer.analytic
        snapshot, frames, ended = trainer.snapshot(), trainer.trajectory(), run.phase == Phase.ENDED
        if not same_settings:
            st.caption("These charts show your run; your settings have changed since it started. Press Train to "
                       "start a run with the new settings, or Reset to see their theory.")
        lab_ui.status_line(run)
    else:
        shown_spec, shown_config, analytic = spec, config, lab_ui.analytic_for(spec.to_json())
        stored = store.get(lab_ui.result_key(spec, config)) if lab_ui.on_phone() else None
        snapshot, frames, ended = (stored.final, stored.trajectory, True) if stored else (None, [], False)
        if stored:
            st.caption(f"A model trained earlier on this server with these settings ({stored.final.step} steps), "
                       "not a run of yours.")
    frames = frames or [lab_ui.untrained(shown_spec, shown_config)]   # before the run's first frame
    gating = shown_config.gating
    target_key = ANALYTIC_KEY[gating]
    target = QUANTITIES[target_key]
    show_theory = ended or not hide_theory
    risks = lab_ui.analytic_risks(analytic, gating)
    lab_ui.theory_metrics(snapshot, risks, gating, show_theory)
    for note in analytic.get("notes", []) if show_theory else []:
        st.caption(f"Note: {note}")

    references = {target_key: analytic[target_key]["omega"]}
    if gating == "scalar" and not np.allclose(analytic["optimal"]["omega"], analytic[target_key]["omega"], atol=1e-3):
        references["optimal"] = analytic["optimal"]["omega"]
    replay = ended and len(frames) > 1
    per_coordinate = gating == "vector"
    state = ("Before training: the untrained model, whose gates all start at the same value, so the weights are "
             "nearly equal. " if len(frames) == 1 else
             "The replay of your run, from the untrained model to the end: Play, Pause, a speed and the step slider "
             "under the chart. " if replay else "Your run as it trains. ")
    weights_words = ("Top: the trained model's weight on each example and key coordinate (a heatmap, first layer). "
                     if per_coordinate else
                     "Bars: the weight the model's gates give each in-context example (first layer), coloured by task. ")
    theory_words = ((f"Markers: the {target.label} weights" + (" and the optimal WPGD weights" if "optimal" in references
                                                                 else "") + "; lines: the theory's risks. ")
                    if show_theory and not per_coordinate else
                    "Lines: the theory's risks. " if show_theory else "The theory is hidden until the run ends. ")
    delimiters = "Dotted lines: delimiter tokens. " if shown_spec.delimiter_width and not per_coordinate else ""
    with st.container(key="replay_weights"):
        lab_ui.chart(partial(figures.training_replay, shown_spec.example_task, references, frames, risks,
                             shown_config.steps, show_theory, replay,
                             replay_id=lab_ui.replay_id("playground", run.id if run_on_screen else
                                                        lab_ui.result_key(spec, config))),
                     state + weights_words + theory_words + delimiters
                     + "Below: the test risk (± standard error) and the cosine, with the step on screen circled.",
                     key="weights_chart")
    if per_coordinate and show_theory:
        lab_ui.chart(partial(figures.weight_maps, shown_spec.example_task, {target_key: analytic[target_key]["omega"]}),
                     f"The {target.label} weights, per example and key coordinate, scaled so the largest is 1.",
                     key="target_map")
    st.markdown("**Gating is weighting.** A one-layer GLA predicts with one weighted step of gradient descent; "
                "each example's weight is the product of the gates that come after it:")
    st.latex(r"\hat y = x^\top P \sum_i \omega_i\, y_i\, x_i,\qquad \omega_i = \prod_{j>i} g(z_j)")
    st.markdown("**Risk** $L(P, \\omega) = \\mathbb{E}\\,(\\hat y - y)^2$ is the expected squared error on a new "
                "prompt. Optimal WPGD minimises it over all weights; gates only make weights that never shrink toward "
                "the query, so a GLA may stop above it.")

    if frames[-1]["gates"] and frames[-1]["gates"][0] is not None:
        coordinates = ([f"x{c + 1}" for c in range(shown_spec.d)] + ["y"]
                       + [f"delimiter {c + 1}" for c in range(shown_spec.delimiter_width)])
        with st.container(key="replay_gates"):
            lab_ui.chart(partial(figures.gate_values, [frame["gates"] for frame in frames],
                                 lab_ui.token_labels(shown_spec), coordinates, [frame["step"] for frame in frames],
                                 animate=replay),
                         "Mean gate value of every token in every layer (T2·3: task 2, example 3; "
                         + ("D2: the delimiter after task 2; " if shown_spec.delimiter_width else "")
                         + "Q: the query). A small gate shrinks everything before it."
                         + (" Play replays the run." if replay else ""), key="gates_chart")
    elif gating == "none":
        st.caption("Linear attention has no gates: every gate is 1, so every example counts the same.")


lab_ui.live_panel(run, draw)


# ---------------------------------------------------------------- exports
if run is not None and run.phase in (Phase.PAUSED, Phase.ENDED) and "exports" not in controls.hidden:
    lab_ui.export_panel(run.current, preset)
