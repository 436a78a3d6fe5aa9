"""Landscape: the one-step WPGD risk over every weighting — a unique optimum, flat along rays."""
from functools import partial

import numpy as np
import streamlit as st

import lab_ui
from gla_core import figures
from gla_core.spec import SpecError

controls = lab_ui.Controls("landscape", {"tasks": "number of tasks", "relevance": "relevance of each task",
                                         "shape": "examples, dimension, noise, feature covariance"})

st.title("The WPGD landscape")
st.markdown("Every weighting $\\omega$ of the examples, with its best preconditioner $P^*(\\omega)$, has a risk. "
            "Here the weights are constant within each task, so a weighting is a vector of task weights $w$. "
            "Scaling $w$ changes nothing (the preconditioner absorbs it), so the risk depends only on the "
            "**direction** of $w$ — and over directions it has **one** optimum.")

with st.sidebar:
    num_tasks = controls(st.radio, "Number of tasks", "ls_tasks", hide_as="tasks", options=[2, 3], horizontal=True)
    defaults = {2: (0.3, 0.8), 3: (0.2, 0.5, 0.9)}[num_tasks]
    relevance = [controls(st.slider, f"Relevance of task {k + 1} to the query", f"ls_r{k + 1}", hide_as="relevance",
                          min_value=-1.0, max_value=1.0, step=0.05, value=default)
                 for k, default in enumerate(defaults)]
    examples = controls(st.slider, "Examples per task", "ls_n", hide_as="shape", min_value=1, max_value=64, value=10)
    d = controls(st.slider, "Dimension d", "ls_d", hide_as="shape", min_value=1, max_value=8, value=4)
    noise = controls(st.slider, "Label noise σ", "ls_noise", hide_as="shape", min_value=0.0, max_value=2.0,
                     step=0.05, value=0.1)
    condition = controls(st.select_slider, "Feature covariance condition number", "ls_condition", hide_as="shape",
                         options=list(lab_ui.CONDITION_CHOICES), value=1.0,
                         help="Above 1 the features have unequal variances; watch P* below.")

try:
    spec = lab_ui.validated_spec({"d": d, "noise": noise, "delimiter": "task", "feature_condition": condition,
                                  "tasks": [{"n": examples, "corr": r} for r in relevance]})
except SpecError as error:
    lab_ui.show_invalid(error)
    st.stop()

analytic = lab_ui.analytic_for(spec.to_json())
if analytic["flags"]["uncorrelated"]:
    st.warning("No task is related to the query task (every relevance is 0): every weighting has the same risk, "
               "so there is no unique optimum. Move a relevance slider away from 0.", icon=":material/warning:")

if num_tasks == 2:
    landscape = lab_ui.landscape_for(spec.to_json())
    lab_ui.chart(partial(figures.landscape_angle, landscape["angle"]["theta"], landscape["angle"]["risk"],
                         landscape["points"], landscape["monotone_cone"]["theta"], landscape["zero_risk"]),
                 "Risk along each direction of the two task weights. Star: the optimum; cross: linear "
                 "attention's equal weights; circle: the best that scalar gates reach (shaded directions).",
                 key="landscape_angle")
    lab_ui.chart(partial(figures.landscape_plane, landscape["grid"]["w"], landscape["grid"]["risk"],
                         landscape["points"], landscape["monotone_cone"]["theta"]),
                 "The same risk over the plane of task weights: its colour never changes along a line through "
                 "the origin (scaling the weights changes nothing).", key="landscape_plane")
else:
    landscape = lab_ui.landscape_for(spec.to_json())
    simplex_col, text_col = st.columns([1.6, 1])
    with simplex_col:
        lab_ui.chart(partial(figures.landscape_simplex, landscape["simplex"]["barycentric"],
                             landscape["simplex"]["risk"], landscape["points"], landscape["monotone_cone"]),
                     "Risk over non-negative task weights scaled to sum to 1 (darker is lower). Star: the optimum; "
                     "cross: equal weights; outlined: the weights scalar gates reach (w1 ≤ w2 ≤ w3).",
                     key="landscape_simplex")
    with text_col:
        st.markdown("A point of the triangle is a weighting $w = (w_1, w_2, w_3)$ with $w_1 + w_2 + w_3 = 1$: "
                    "a corner puts all weight on one task, the centre weights all tasks equally.")
        if not landscape["points"]["optimal"]["inside"]:
            st.info("The optimal weights have mixed signs here (a task is anti-related), so the optimum lies "
                    "outside this triangle of non-negative weights.")

points = landscape["points"]
gap = points["monotone_best"]["risk"] - points["optimal"]["risk"]
verdict = ("The optimal weights grow toward the query, so **scalar gates reach the optimum exactly**."
           if gap <= 1e-9 * landscape["zero_risk"] else
           f"The optimal weights do not grow toward the query, and gate products can only shrink going back in the "
           f"prompt: **scalar gates stop {gap:.4f} above the optimum**.")
st.markdown(f"Risk at the optimum **{points['optimal']['risk']:.4f}**, at equal weights (linear attention) "
            f"**{points['linear_attention']['risk']:.4f}**, best scalar-gated "
            f"**{points['monotone_best']['risk']:.4f}**. "
            + verdict)

st.subheader("The optimal preconditioner P*")
matrix_col, text_col = st.columns([1, 1.2])
with matrix_col:
    lab_ui.chart(partial(figures.matrix_heatmap, analytic["optimal"]["P"], "P* at the optimal weights",
                         [f"x{c + 1}" for c in range(spec.d)]),
                 "Entries of the optimal preconditioner, scaled with the weights so that the largest weight is 1.",
                 key="landscape_P")
with text_col:
    st.markdown("For fixed weights the best preconditioner has a closed form. With isotropic features "
                "($\\Sigma = I$) it is a multiple of the identity,")
    st.latex(r"P^* = c\, I, \qquad c = \frac{\omega^\top r}{\omega^\top A\, \omega}")
    st.markdown("With unequal feature variances (raise the condition number) its diagonal spreads out: "
                "a true **preconditioner**, stepping further along low-variance features.")
    variances = spec.feature_variances()
    st.caption("Feature variances: " + ", ".join(f"{v:.3g}" for v in variances)
               + "; diagonal of P*: " + ", ".join(f"{p:.3g}" for p in np.diag(analytic["optimal"]["P"])))
