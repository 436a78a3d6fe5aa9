"""Playground: train a GLA live and watch its gates turn into the optimal WPGD weights."""
import json

import streamlit as st

import lab_ui
from gla_core.session import Phase
from gla_core.spec import SpecError
from gla_core.train import Status
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
lab_ui.prompt_description(described, preset)


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
def draw(run, header) -> None:
    if run_on_screen:
        trainer = run.current
        shown_spec, shown_config, analytic = trainer.spec, trainer.config, trainer.analytic
        snapshot, frames, ended = trainer.snapshot(), trainer.trajectory(), run.phase == Phase.ENDED
        with header:
            if not same_settings:
                st.caption("These charts show your run; your settings have changed since it started. Press Train to "
                           "start a run with the new settings, or Reset to see their theory.")
            lab_ui.status_line(run)
    else:
        shown_spec, shown_config, analytic = spec, config, lab_ui.analytic_for(spec.to_json())
        stored = store.get(lab_ui.result_key(spec, config)) if lab_ui.on_phone() else None
        snapshot, frames, ended = (stored.final, stored.trajectory, True) if stored else (None, [], False)
        if stored:
            header.caption(f"A model trained earlier on this server with these settings ({stored.final.step} steps), "
                           "not a run of yours.")
    frames = frames or [lab_ui.untrained(shown_spec, shown_config)]   # before the run's first frame
    gating = shown_config.gating
    show_theory = ended or not hide_theory
    lab_ui.theory_metrics(snapshot, lab_ui.analytic_risks(analytic, gating), gating, show_theory)
    for note in analytic.get("notes", []) if show_theory else []:
        st.caption(f"Note: {note}")
    replay = ended and len(frames) > 1
    # The untrained model's chart keeps the id of its settings until the run's first frame: pressing Train then draws
    # the figure the chart already shows (lab_ui.chart keeps it while its recipe is the same), which the browser
    # leaves as it is; a figure built anew was drawn again and held the progress line back 0.2-0.4 s.
    untrained_only = len(frames) == 1
    lab_ui.weights_replay(shown_spec, gating, shown_config.steps, analytic, frames, show_theory, replay,
                          lab_ui.replay_id("playground", lab_ui.result_key(shown_spec, shown_config)
                                           if untrained_only or not run_on_screen else run.id))
    st.markdown("**Gating is weighting.** A one-layer GLA predicts with one weighted step of gradient descent; "
                "each example's weight is the product of the gates that come after it:")
    st.latex(r"\hat y = x^\top P \sum_i \omega_i\, y_i\, x_i,\qquad \omega_i = \prod_{j>i} g(z_j)")
    st.markdown("**Risk** $L(P, \\omega) = \\mathbb{E}\\,(\\hat y - y)^2$ is the expected squared error on a new "
                "prompt. Optimal WPGD minimises it over all weights; gates only make weights that never shrink toward "
                "the query, so a GLA may stop above it.")
    lab_ui.gates_chart(shown_spec, frames, replay)


lab_ui.live_panel(run, draw)


# ---------------------------------------------------------------- exports
if run is not None and run.phase in (Phase.PAUSED, Phase.ENDED) and "exports" not in controls.hidden:
    lab_ui.export_panel(run.current, preset)
