"""Depth: each GLA layer is one more step of causal WPGD. Train 1 to 4 layers and compare."""
import json
from functools import partial

import streamlit as st

import lab_ui
from gla_core import figures
from gla_core.spec import DEPTH_TRAINING, SpecError, depth_start_order
from gla_core.train import Status, stop_at

PURPOSE = "depth"
DEPTHS = (1, 2, 3, 4)

HIDEABLE = {"preset": "the preset box",
            **{name: label for name, label in lab_ui.SETTING_LABELS.items() if name != "layers"}}
controls = lab_ui.Controls(PURPOSE, HIDEABLE, follows_class=True)

st.title("Depth: more layers, more gradient steps")
st.markdown("With the WPGD construction in every layer, a GLA of $L$ layers runs $L$ steps of **causal** WPGD: "
            "layer $l$ corrects every token's label by a weighted step built from the tokens before it,")
st.latex(r"y_t^{(l+1)} = y_t^{(l)} - x_t^\top P_l \sum_{s \le t} \omega^{l}_{t,s}\, x_s\, y_s^{(l)}, "
         r"\qquad \hat y = -\,y^{(L)}_{\mathrm{query}}")
st.markdown("More steps can only help, so trained models should fall **below the best one-step risk** as layers "
            "are added.")

try:
    _, spec_dict, settings = lab_ui.training_sidebar(controls, with_layers=False, preset_key="dp_preset",
                                                     default_preset="depth")
    spec = lab_ui.validated_spec(spec_dict)
    targets = lab_ui.depth_targets(spec, settings["gating"])
    stop_at_target = controls(
        st.toggle, "Stop each model at its target", lab_ui.keys.STOP_AT_TARGET, hide_as="training", value=True,
        help="A model stops at the first evaluation (every 10 steps) at which all the held-out prompts put its test "
             "risk within 2 standard errors of its L-step target, or below it. Off: every model runs all its steps.")
    if stop_at_target and targets is None:
        st.caption("These settings have no L-step targets yet (compute them below): every model runs all its steps.")
    stopping = bool(stop_at_target and targets)
    configs = {layers: lab_ui.train_config(spec, layers=layers, **settings, **DEPTH_TRAINING,
                                           **(stop_at(targets[layers - 1]) if stopping else {}))
               for layers in DEPTHS}
except SpecError as error:
    lab_ui.show_invalid(error)
    st.stop()

store = lab_ui.result_store()
keys = {layers: lab_ui.result_key(spec, config) for layers, config in configs.items()}
tag = (spec.to_json(), json.dumps(settings, sort_keys=True), stopping)
controls_row = lab_ui.RunControls(PURPOSE, tag)
run, same_settings = controls_row.run, controls_row.same_settings
missing = [layers for layers in DEPTHS if store.get(keys[layers]) is None]


def train(again: bool = False) -> None:  # runs before the next page run, with the settings shown when pressed
    depths = list(DEPTHS) if again else missing
    controls_row.start([(spec, configs[layers]) for layers in depths], start_order=depth_start_order(depths))


controls_row.buttons([
    lab_ui.RunButton("Train 1 to 4 layers", train, disabled=controls_row.computing or not missing, primary=True,
                     help="Trains the models not trained yet with these settings, shallowest first, two at a time "
                          "when the server has a core free."),
    lab_ui.RunButton("Train again", train, args=(True,), disabled=controls_row.computing,
                     help="Train all four models afresh, live, even where results trained earlier exist."),
], phone="On a phone this page shows results trained earlier on this server; open it on a larger screen to train.",
    widths=[1.4, 1, 1, 1])


def draw(run, header) -> None:
    live = {}  # layers -> (snapshot, trajectory) of this session's models with these settings
    if same_settings:
        if run.alive:
            with header:
                lab_ui.status_line(run)
        live = {trainer.config.layers: (trainer.snapshot(), trainer.trajectory()) for trainer in run.trainers}
    results, diverged, earlier = {}, {}, []   # layers -> (risk, se, trajectory); layers -> step; layers
    stopped = {}    # layers -> the step at which the model stopped at its target
    training = []   # layers of models still training: drawn as they go, given words once they end
    for layers in DEPTHS:
        snapshot, frames = live.get(layers, (None, []))
        stored = store.get(keys[layers])
        if snapshot is not None and snapshot.status == Status.DIVERGED:
            diverged[layers] = snapshot.step
        elif snapshot is not None and snapshot.step > 0 and frames:
            results[layers] = (snapshot.test_risk, snapshot.test_risk_se, frames)
            if snapshot.status == Status.RUNNING:
                training.append(layers)
        elif stored is not None:
            snapshot = stored.final
            results[layers] = (snapshot.test_risk, snapshot.test_risk_se, stored.trajectory)
            earlier.append(layers)
        if layers in results and snapshot.early_stop_step is not None:
            stopped[layers] = snapshot.early_stop_step
    analytic = lab_ui.analytic_for(spec.to_json())
    trained = [results[layers][:2] if layers in results else None for layers in DEPTHS]
    risks = lab_ui.analytic_risks(analytic, settings["gating"])
    lab_ui.chart(partial(figures.depth_chart, DEPTHS, trained, risks, sorted(diverged),
                         [(target["risk"], target["risk_se"]) for target in targets] if targets else None),
                 "Trained GLA: test risk (± standard error) of the model with 1 to 4 layers; a cross at the top marks "
                 "a model that diverged. Open diamonds: each depth's own target, the best L-step causal WPGD. "
                 "Horizontal lines: the best one-step risks (optimal WPGD, the best this gating reaches, linear "
                 "attention, predicting 0).", key="depth_chart")
    if earlier:
        st.caption(f"Models with {lab_ui.layer_list(earlier)} were trained earlier on this server with these "
                   "settings, not by this run: press **Train again** to train them live.")
    lab_ui.depth_run_warnings(run if same_settings else None, diverged)
    if not results:
        st.markdown("Press **Train 1 to 4 layers**: four models train, two at a time when the server has a core "
                    "free, and their test risks appear above as they learn.")
        return
    ended = {layers: result[:2] for layers, result in results.items() if layers not in training}
    if targets and ended:
        st.markdown(" ".join(lab_ui.depth_verdict(layers, *ended[layers], targets[layers - 1], stopped.get(layers))
                             for layers in sorted(ended)))
    if ended:
        st.markdown(lab_ui.against_one_step(ended, analytic["optimal"]["risk"]))
    deepest = max(results)
    frames = results[deepest][2]
    replay = (not same_settings or not run.alive) and len(frames) > 1
    with st.container(key="replay_layers"):
        lab_ui.chart(partial(figures.layer_weights, [frame["induced_weights"] for frame in frames], spec.example_task,
                             [frame["step"] for frame in frames], replay,
                             title=f"Induced weights of every layer ({deepest}-layer model)",
                             replay_id=lab_ui.replay_id("depth", keys[deepest] if deepest in earlier else run.id),
                             target_weights=targets[deepest - 1]["omega"] if targets else None),
                     "The weight the query gives each example in each layer (gate products of that layer, largest "
                     "= 1; the mean over coordinates for vector gates), coloured by task"
                     + (f"; open diamonds: the {deepest}-step target's weights of that layer." if targets else ".")
                     + (" Play replays the training from the untrained model." if replay else ""), key="layer_weights")


lab_ui.live_panel(run if same_settings else None, draw)
lab_ui.depth_target_request(spec, settings["gating"])
