"""Inside the recurrence: one prompt, a GLA built from a WPGD solution, stepped token by token."""
from functools import partial

import numpy as np
import streamlit as st
import torch

import lab_ui
from gla_core import figures
from gla_core.construct import gla_from_block_weights
from gla_core.reference import wpgd_one_step
from gla_core.sampling import PromptSampler
from gla_core.spec import SpecError

MIN_WEIGHT = 1e-6   # stands in for a zero task weight, which no gate product reaches

controls = lab_ui.Controls("recurrence", {"prompt": "tasks, examples, relevance, dimension, seed"})

st.title("Inside the recurrence")
st.markdown("A GLA whose weights are **built** from a WPGD solution (no training): keys and queries read $x$ "
            "through the preconditioner, values carry the label, and each delimiter's gate is set so that the "
            "gate products equal the chosen task weights. Step through one prompt and watch the state fill up.")

with st.sidebar:
    num_tasks = controls(st.radio, "Number of tasks", "rc_tasks", hide_as="prompt", options=[2, 3], horizontal=True)
    relevance = [controls(st.slider, f"Relevance of task {k + 1}", f"rc_r{k + 1}", hide_as="prompt",
                          min_value=-1.0, max_value=1.0, step=0.05, value=default)
                 for k, default in enumerate((0.3, 0.9) if num_tasks == 2 else (0.2, 0.5, 0.9))]
    examples = controls(st.slider, "Examples per task", "rc_n", hide_as="prompt", min_value=1, max_value=5, value=3)
    d = controls(st.slider, "Dimension d", "rc_d", hide_as="prompt", min_value=1, max_value=4, value=2)
    seed = lab_ui.whole_number(controls(st.number_input, "Prompt seed", "rc_seed", hide_as="prompt", min_value=0.0,
                                        max_value=1e6, value=0.0, step=1.0, format="%.0f"))

try:
    if not isinstance(seed, int):
        raise SpecError("rc_seed", f"must be a whole number from 0 to 1000000, got {seed!r}")
    spec = lab_ui.validated_spec({"d": d, "noise": 0.1, "delimiter": "task",
                                  "tasks": [{"n": examples, "corr": r} for r in relevance]})
except SpecError as error:
    lab_ui.show_invalid(error)
    st.stop()

solution = lab_ui.analytic_for(spec.to_json())["scalar_gla"]
block_weights, P = np.asarray(solution["block_weights"]), np.asarray(solution["P"])
if np.any(block_weights <= 0):
    # The best reachable weights ignore an anti- or unrelated task (weight 0), but a product of gates is
    # never exactly 0: build the GLA for a tiny weight instead (GLA and WPGD still agree exactly).
    block_weights = np.maximum(block_weights, MIN_WEIGHT)
    st.caption(f"The best gated weights ignore a task here (weight 0); a product of gates is never exactly 0, so "
               f"the model gives it weight {MIN_WEIGHT:g} instead.")

# The model, one prompt, and everything the recurrence computes, in float64.
model = gla_from_block_weights(spec, P, block_weights)
prompt = PromptSampler(spec).sample(1, torch.Generator().manual_seed(int(seed)), torch.float64)
labels = lab_ui.token_labels(spec)
with torch.no_grad():
    tokens = prompt.tokens
    layer = model.layers[0]
    q, k, v = (projection(tokens)[0].numpy() for projection in (layer.Wq, layer.Wk, layer.Wv))
    gates = model.gates(tokens)[0][0].numpy()
    weights = model.induced_weights(tokens)[0][0].numpy()          # (T, T): omega_{t,s}
    model_prediction = float(model(tokens)[0])
states, state = [], np.zeros((spec.token_width, spec.token_width))
for t in range(len(labels)):                                       # S_t = g_t S_{t-1} + v_t k_t^T
    state = gates[t] * state + np.outer(v[t], k[t])
    states.append(state)
omega = block_weights[spec.example_task]
wpgd_prediction = float(wpgd_one_step(prompt.x[0].numpy(), prompt.y[0].numpy(), prompt.xq[0].numpy(), P, omega))
recurrence_prediction = -float((states[-1] @ q[-1])[spec.label_index])


def move(by: int) -> None:
    st.session_state["rc_t"] = int(np.clip(st.session_state["rc_t"] + by, 1, len(labels)))


back_col, slider_col, forward_col = st.columns([1, 8, 1], vertical_alignment="bottom")
position = slider_col.slider("Token", 1, len(labels), key="rc_t", bind="query-params",
                             help="Where the recurrence is: 1 is the first token, the last is the query.") - 1
back_col.button("◀", on_click=move, args=(-1,), disabled=position == 0, width="stretch", help="previous token")
forward_col.button("▶", on_click=move, args=(1,), disabled=position == len(labels) - 1, width="stretch",
                   help="next token")
kind = "the query" if labels[position] == "Q" else ("a delimiter" if labels[position].startswith("D") else "an example")
st.markdown(f"**Token {position + 1} of {len(labels)}: `{labels[position]}`**, {kind}, gate "
            f"$g = {gates[position]:.6f}$.")

figure_col, state_col = st.columns([1.3, 1])
with figure_col:
    lab_ui.chart(partial(figures.recurrence_step, labels, gates, np.tril(weights)[position], position),
                 "Top: every token's gate (black: the current token; blue: tokens already read). Bottom: the weight "
                 "the current token gives each token read so far, the product of the gates after it.",
                 key="recurrence_step")
with state_col:
    coordinates = [f"x{c + 1}" for c in range(spec.d)] + ["y"] + [f"D{c + 1}" for c in range(spec.delimiter_width)]
    lab_ui.chart(partial(figures.matrix_heatmap, states[position], f"State S after token {labels[position]}",
                         coordinates),
                 "The state matrix after this token (rows: value coordinates, columns: key coordinates). Values "
                 "carry only the label, so only row y fills: it holds −Σ ω y_s P x_s.", key="recurrence_state")
st.latex(r"S_t = g_t\, S_{t-1} + v_t k_t^\top, \qquad S_t[y,:] = -\sum_{s \le t} \omega_{t,s}\, y_s\, (P x_s)^\top")

st.subheader("At the query: GLA and WPGD side by side")
st.table({"": ["GLA: the state read by the query", "WPGD: the formula", "difference"],
          "prediction": [f"{recurrence_prediction:.15f}", f"{wpgd_prediction:.15f}",
                         f"{abs(recurrence_prediction - wpgd_prediction):.1e}"]}, hide_index=True)
st.latex(r"\hat y_{\mathrm{GLA}} = -\,(S_T\, q_T)[y] \;=\; x^\top P \sum_i \omega_i\, y_i\, x_i"
         r" = \hat y_{\mathrm{WPGD}}, "
         r"\qquad \omega_i = w_{k(i)}")
st.caption(f"Task weights w = ({', '.join(f'{w:.4f}' for w in block_weights)}), the best a scalar-gated GLA can "
           f"reach for this prompt, and P = {P[0, 0]:.4f}·I. The model's own forward pass "
           f"gives {model_prediction:.15f}.")
