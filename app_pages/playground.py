"""Playground: train a GLA live and watch its gates turn into the optimal WPGD weights."""
import json
from functools import partial

import numpy as np
import streamlit as st

import lab_ui
from gla_core import figures
from gla_core.spec import SpecError, load_preset, preset_spec
from gla_core.train import ANALYTIC_KEY

PURPOSE = "playground"

controls = lab_ui.Controls(PURPOSE, {"preset": "the preset box", **lab_ui.SETTING_LABELS, "exports": "the exports"})

st.title("Playground")
st.markdown("Choose a prompt and a model, press **Train**, and watch the gates of a gated linear attention model "
            "learn **how much each in-context example counts** — and compare that with the weights the theory "
            "says are optimal.")

try:
    preset, spec_dict, settings = lab_ui.training_sidebar(controls)
    spec = lab_ui.validated_spec(spec_dict)
    config = lab_ui.train_config(spec, **settings)
except SpecError as error:
    lab_ui.show_invalid(error)
    st.stop()

st.info(f"**{load_preset(preset)['title']}.** {load_preset(preset)['description']}"
        if spec == preset_spec(preset) else "**Your own prompt** (changed from the preset).",
        icon=":material/description:")
tag = (spec.to_json(), json.dumps(settings, sort_keys=True))
store = lab_ui.result_store()
runs = lab_ui.session_runs()
run = runs.get(PURPOSE)
same_settings = run is not None and runs.tag(PURPOSE) == tag
# A run stays on screen while it lives and after it ends, until the settings change after its end.
if run is not None and not run.alive and st.session_state.get("playground_ended", (None,))[0] != run.id:
    st.session_state["playground_ended"] = (run.id, tag)
settings_at_end = st.session_state.get("playground_ended")
run_on_screen = run is not None and (run.alive or same_settings or settings_at_end == (run.id, tag))


# ---------------------------------------------------------------- buttons
# Callbacks run before the next page run, with this run's settings (the ones the user saw).
def train(steps: int | None = None) -> None:
    """Train to the end, or `steps` more steps and pause (Step); a run of these settings continues."""
    if not (same_settings and run.alive):
        lab_ui.start_run(PURPOSE, [(spec, config)], tag, step_budget=steps)
    elif steps is None:
        run.resume()
    else:
        run.grant(steps)


def stop() -> None:
    run.stop()


def reset() -> None:
    runs.replace(PURPOSE)


if lab_ui.on_phone():
    st.warning("On a phone the Playground shows the theory, and models trained earlier on this server; open it "
               "on a larger screen to train models live.", icon=":material/smartphone:")
else:
    computing = same_settings and run.phase in ("waiting", "running")
    train_col, step_col, stop_col, reset_col = st.columns(4)
    train_col.button("Train", on_click=train, disabled=computing, type="primary", width="stretch",
                     help="Train the model to the end (or finish a paused run).")
    step_col.button(f"Step ({lab_ui.STEP_SIZE})", on_click=train, args=(lab_ui.STEP_SIZE,), disabled=computing, width="stretch",
                    help=f"Train {lab_ui.STEP_SIZE} steps, then pause.")
    stop_col.button("Stop", on_click=stop, disabled=run is None or not run.alive, width="stretch")
    reset_col.button("Reset", on_click=reset, disabled=run is None, width="stretch",
                     help="Forget the run and start over.")


# ---------------------------------------------------------------- the live panel
def draw(run) -> None:
    if run_on_screen:
        trainer = run.current
        shown_spec, analytic, gating = trainer.spec, trainer.analytic, trainer.config.gating
        snapshot, history = trainer.snapshot(), trainer.history_rows()
        if not same_settings:
            st.caption("These charts show your run; your settings have changed since it started. Press Train to "
                       "start a run with the new settings, or Reset to see their theory.")
        lab_ui.status_line(run)
    else:
        shown_spec, analytic, gating = spec, lab_ui.analytic_for(spec.to_json()), settings["gating"]
        stored = store.get(lab_ui.result_key(spec, config)) if lab_ui.on_phone() else None
        snapshot, history = (lab_ui.snapshot_from_result(stored), stored["history"]) if stored else (None, [])
        if stored:
            st.caption(f"A model trained earlier on this server with these settings ({stored['steps']} steps).")
    target_key = ANALYTIC_KEY[gating]
    trained = snapshot is not None and bool(snapshot.induced_weights)
    risks = lab_ui.analytic_risks(analytic, gating)

    cells = st.columns(4)
    cells[0].metric("Trained model", f"{snapshot.test_risk:.3f}" if trained else "—",
                    delta=f"{snapshot.test_risk - analytic[target_key]['risk']:+.3f} vs reachable" if trained else None,
                    delta_color="inverse", help="Test risk of the trained model (mean squared error on new prompts).")
    cells[1].metric("Reachable", f"{analytic[target_key]['risk']:.3f}",
                    help="The lowest risk this model (gating, one layer) can reach, from the theory.")
    cells[2].metric("Optimal WPGD", f"{risks['optimal']:.3f}", help="The lowest risk of any one-step WPGD.")
    cells[3].metric("Cosine", f"{snapshot.cosine:.3f}" if trained else "—",
                    help="Cosine similarity of the induced and reachable weights: 1 = the same up to scale.")
    for note in analytic.get("notes", []):
        st.caption(f"Note: {note}")

    references = {f"best {gating}-gated weights" if gating != "none" else "linear attention weights (all equal)":
                  analytic[target_key]["omega"]}
    if gating != "vector" and not np.allclose(analytic["optimal"]["omega"], analytic[target_key]["omega"], atol=1e-3):
        references["optimal WPGD ω*"] = analytic["optimal"]["omega"]
    induced = snapshot.induced_weights[0] if trained else None
    lab_ui.chart(partial(figures.token_weights, shown_spec.example_task, references, induced),
                 "Bars: the weight the trained model's gates give each in-context example (first layer), coloured "
                 "by task; before training, the reachable weights. Markers: the analytic weights. Dotted lines: "
                 "delimiter tokens. All scaled so the largest weight is 1.", key="weights_chart")
    st.markdown("**Gating is weighting.** A one-layer GLA predicts with one weighted step of gradient descent; "
                "each example's weight is the product of the gates that come after it:")
    st.latex(r"\hat y = x^\top P \sum_i \omega_i\, y_i\, x_i,\qquad \omega_i = \prod_{j>i} g(z_j)")

    lab_ui.chart(partial(figures.risk_curve, history, risks, snapshot.total_steps if snapshot else settings["steps"]),
                 "Green: the trained model's test risk over training; light blue: the loss on each training batch. "
                 "Horizontal lines: predicting 0, the best linear attention, the best this gating can reach, and "
                 "optimal one-step WPGD.", key="risk_chart")
    st.markdown("**Risk** $L(P, \\omega) = \\mathbb{E}\\,(\\hat y - y)^2$ is the expected squared error on a new "
                "prompt. Optimal WPGD minimises it over all weights; gates only make weights that never shrink toward "
                "the query, so a GLA may stop above it.")

    if history:
        lab_ui.chart(partial(figures.cosine_curve, history),
                     "Cosine similarity between the induced and reachable weights over training; 1 means the same "
                     "weights up to scale.", key="cosine_chart")
        if snapshot.gates and snapshot.gates[0] is not None:
            coordinates = ([f"x{c + 1}" for c in range(shown_spec.d)] + ["y"]
                           + [f"delimiter {c + 1}" for c in range(shown_spec.delimiter_width)])
            lab_ui.chart(partial(figures.gate_values, snapshot.gates, lab_ui.token_labels(shown_spec), coordinates),
                         "Mean gate value of every token in every layer (T2·3: task 2, example 3; D2: the delimiter "
                         "after task 2; Q: the query). A small gate shrinks everything before it.", key="gates_chart")
        elif gating == "none":
            st.caption("Linear attention has no gates: every gate is 1, so every example counts the same.")


lab_ui.live_panel(run, draw)


# ---------------------------------------------------------------- exports
if run is not None and run.phase in ("paused", "ended") and "exports" not in controls.hidden:
    trainer = run.current
    with st.expander("Export this run"):
        json_col, history_col, weights_col = st.columns(3)
        json_col.download_button("Run JSON", data=lambda: lab_ui.run_json(trainer), file_name="run.json",
                                 mime="application/json", on_click="ignore", width="stretch",
                                 help="Same format as `python -m gla_core train --out`.")
        history_col.download_button("History CSV", data=lambda: lab_ui.history_csv(trainer.history_rows()),
                                    file_name="history.csv", mime="text/csv", on_click="ignore", width="stretch")
        weights_col.download_button("Weights CSV", data=lambda: lab_ui.weights_csv(
            trainer.spec, trainer.analytic, trainer.config.gating, trainer.snapshot().induced_weights),
            file_name="weights.csv", mime="text/csv", on_click="ignore", width="stretch")
        st.markdown("The same run from the command line:")
        run_preset = preset if trainer.spec == preset_spec(preset) else None
        st.code(lab_ui.cli_command(trainer.spec, run_preset, trainer.config), language="bash")
        st.caption("Each chart saves itself as a PNG: use the camera icon at its top right.")
