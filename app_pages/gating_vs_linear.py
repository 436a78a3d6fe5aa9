"""Gating vs linear attention: when do gates beat equal weights? Analytic risks along a sweep, with
trained models overlaid on request."""
from functools import partial

import numpy as np
import streamlit as st

import lab_ui
from gla_core import figures
from gla_core.figures import QUANTITIES
from gla_core.session import Phase
from gla_core.spec import OVERLAY_TRAINING, SWEEPS, SpecError, load_preset, sweep_specs
from gla_core.train import ANALYTIC_KEY

PURPOSE = "gating"
MODELS = ("optimal", "scalar_gla", "vector_gla", "linear_attention")
TRAINED_POINTS = 5            # sweep points that get trained models

controls = lab_ui.Controls(PURPOSE, {"preset": "the preset box", "sweep": "what to sweep"})

st.title("Gating vs linear attention")
st.markdown("Linear attention weights every example the same. Gates can weight them differently — but only with "
            "weights that never shrink toward the query. Sweep one setting and see **where gating wins**, and by "
            "how much.")

with st.sidebar:
    preset, _ = lab_ui.preset_box(controls, key="gv_preset")
    sweep = controls(st.radio, "What to sweep", "gv_sweep", hide_as="sweep", options=list(SWEEPS),
                     captions=list(SWEEPS.values()))
base = load_preset(preset)["spec"]
st.caption(f"Base prompt: **{load_preset(preset)['title']}** — " + ", ".join(
    f"task {k + 1}: {task['n']} examples, relevance {lab_ui.format_corr(task['corr'])}"
    for k, task in enumerate(base["tasks"])))


x, spec_dicts, x_title = sweep_specs(base, sweep)

try:
    specs = [lab_ui.validated_spec(spec_dict) for spec_dict in spec_dicts]
except SpecError as error:
    lab_ui.show_invalid(error)
    st.stop()

analytic = [lab_ui.analytic_for(spec.to_json()) for spec in specs]
risks = {model: [solution[model]["risk"] for solution in analytic] for model in MODELS}
if np.allclose(risks["vector_gla"], risks["scalar_gla"], rtol=1e-9):
    del risks["vector_gla"]  # identical curves: features are alike, vector gates add nothing
best_gated = np.minimum(risks["scalar_gla"], risks.get("vector_gla", risks["scalar_gla"]))
linear = np.asarray(risks["linear_attention"])
wins = lab_ui.gating_wins(linear, best_gated)


# ---------------------------------------------------------------- trained overlay
trained_indices = sorted(set(np.linspace(0, len(specs) - 1, min(TRAINED_POINTS, len(specs))).round().astype(int)))
gatings = ["none", "scalar"] + (["vector"] if "vector_gla" in risks else [])
try:
    jobs = [(index, specs[index], lab_ui.train_config(specs[index], gating=gating, layers=1, seed=0, device="auto",
                                                      **OVERLAY_TRAINING))
            for index in trained_indices for gating in gatings]
except SpecError as error:   # the host's memory limit: the theory stands, without trained models
    lab_ui.show_invalid(error)
    jobs = []
store = lab_ui.result_store()
tag = tuple(lab_ui.result_key(spec, config) for _, spec, config in jobs)
controls_row = lab_ui.RunControls(PURPOSE, tag)
run, same_settings = controls_row.run, controls_row.same_settings
missing = [(spec, config) for (_, spec, config), key in zip(jobs, tag) if store.get(key) is None]


def train() -> None:  # runs before the next page run, with the settings shown when it was pressed
    controls_row.start(missing, post_to_board=False)   # short check runs: not a class's results


controls_row.buttons([
    lab_ui.RunButton("Overlay trained models", train, disabled=controls_row.computing or not missing, primary=True,
                     help=f"Trains linear attention and gated models at {len(trained_indices)} points of the sweep "
                          f"({OVERLAY_TRAINING['steps']} steps each). Results are kept, so a second request is "
                          "instant."),
], phone="On a phone this page shows the theory, and models trained earlier on this server.", widths=[1.6, 1, 2])


def draw(run, header) -> None:
    if same_settings and run.alive:
        with header:
            lab_ui.status_line(run)
    trained = {}
    for (index, _, config), key in zip(jobs, tag):
        result = store.get(key)   # only runs that completed are stored: a diverged one is never shown
        if result is not None:
            trained.setdefault(ANALYTIC_KEY[config.gating], []).append((x[index], result.final.test_risk))
    lab_ui.chart(partial(figures.sweep_chart, x, risks, x_title, wins, trained),
                 "Lines: the best risk each model can reach, from the theory, as the setting changes. Shaded: "
                 "where gating beats linear attention. Markers: trained models' test risks."
                 + (f" The {QUANTITIES['vector_gla'].label} line can fall below {QUANTITIES['optimal'].label}: "
                    f"{QUANTITIES['optimal'].label} is {QUANTITIES['optimal'].description}, while vector gates "
                    "implement per-coordinate WPGD, one weight per example and key coordinate."
                    if "vector_gla" in risks else ""), key="sweep_chart")
    if trained and not (same_settings and run.phase == Phase.ENDED):
        st.caption("Markers: models trained on this server with these settings, perhaps earlier or by someone else "
                   "(results are shared, so a second request is instant).")


lab_ui.live_panel(run if same_settings else None, draw)

lab_ui.sweep_verdict(x, x_title, linear, best_gated, np.asarray(risks["optimal"]))
