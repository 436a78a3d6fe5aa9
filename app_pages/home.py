"""Home: the idea of GLA Lab on one screen, "gating is weighting"."""
from functools import partial

import streamlit as st

import lab_ui
from gla_core import figures
from gla_core.spec import SpecError, load_preset

st.title("Gating is weighting")
st.markdown("#### The gates decide how much each in-context example counts.")
st.markdown("**The data.** Every prompt is an in-context linear regression: examples $(x_i, y_i)$ with "
            "$y_i = \\beta^\\top x_i + \\text{noise}$, drawn from several **tasks** (each its own $\\beta$), then a "
            "query $x$ whose label comes from the **query's task**. The model reads the examples and predicts the "
            "query's label; examples of tasks more like the query's task help more.")
st.page_link("app_pages/lesson.py", label="Start the lesson: predict, then check, in ten steps",
             icon=":material/school:")

recurrence_col, step_col = st.columns(2)
with recurrence_col:
    st.markdown("A **gated linear attention** (GLA) layer reads a prompt token by token into a state, shrinking "
                "what it has seen with a gate $g_t \\in (0, 1)$:")
    st.latex(r"S_t = g_t\, S_{t-1} + v_t k_t^\top, \qquad o_t = S_t\, q_t")
with step_col:
    st.markdown("Given examples $(x_i, y_i)$ and a query $x$, its answer is **one step of weighted, "
                "preconditioned gradient descent** (WPGD):")
    st.latex(r"\hat y = x^\top P \sum_i \omega_i\, y_i\, x_i, \qquad \omega_i = \prod_{j > i} g(z_j)")
st.markdown("The gates after an example set its weight $\\omega_i$. Plain linear attention has no gates, so every "
            "$\\omega_i = 1$. When the examples come from several tasks, some more related to the query than others, "
            "the best weights are **unique up to scale** — and gates can learn them.")

preset = load_preset("default")
first_relevance = st.slider("How related is task 1 to the query task? (Drag me.)", -1.0, 1.0,
                            value=float(preset["spec"]["tasks"][0]["corr"]), step=0.05, key="home_r1",
                            bind="query-params")
spec_dict = {**preset["spec"], "tasks": [{**preset["spec"]["tasks"][0], "corr": first_relevance},
                                         *preset["spec"]["tasks"][1:]]}
try:
    spec = lab_ui.validated_spec(spec_dict)
except SpecError as error:
    lab_ui.show_invalid(error)
else:
    analytic = lab_ui.analytic_for(spec.to_json())
    relevances = ", ".join(f"{task.corr:g}" for task in spec.tasks)
    lab_ui.chart(
        partial(figures.token_weights, spec.example_task,
                {"optimal": analytic["optimal"]["omega"], "linear_attention": analytic["linear_attention"]["omega"]},
                title="The optimal weight of each example"),
        f"Three tasks of 10 examples, related to the query task by {relevances}. Bars and diamonds: the optimal "
        "weights; crosses: linear attention's equal weights. Examples of a more related task count more.",
        key="home_weights")
    st.markdown(f"Optimal WPGD risk **{analytic['optimal']['risk']:.3f}**, linear attention "
                f"**{analytic['linear_attention']['risk']:.3f}**, best scalar-gated GLA "
                f"**{analytic['scalar_gla']['risk']:.3f}** (predicting 0: {analytic['zero']['risk']:.3f}).")

st.subheader("Words")
GLOSSARY = (
    ("Task", "One regression vector $\\beta_k$: every example of task $k$ has label $y = \\beta_k^\\top x$ plus "
             "noise."),
    ("Relevance", "How correlated a task's $\\beta_k$ is with the query task's $\\beta$, from -1 to 1: $r_k$ on the "
                  "sliders. The more relevant a task, the more its examples say about the query's label."),
    ("Delimiter", "A token after each task's examples that marks where the task ends; its gate can shrink "
                  "everything before it at once."),
    ("WPGD", "Weighted preconditioned gradient descent: one gradient step on the examples, each weighted by "
             "$\\omega_i$ and scaled by a matrix $P$. A GLA layer computes exactly such a step."),
    ("Reachable", "Weights a GLA's gates can make. Gates are at most 1, so scalar gates reach only weights that "
                  "never shrink toward the query."),
)
for word, definition in GLOSSARY:
    st.markdown(f"**{word}.** {definition}")

st.subheader("Explore")
PAGES = [  # path, title, icon, what it shows
    ("app_pages/playground.py", "Playground", ":material/science:",
     "Train a GLA live and watch its gates become the optimal weights."),
    ("app_pages/landscape.py", "Landscape", ":material/landscape:",
     "The risk over all weightings: one optimum, flat along rays."),
    ("app_pages/gating_vs_linear.py", "Gating vs linear attention", ":material/balance:",
     "When do gates beat equal weights?"),
    ("app_pages/depth.py", "Depth", ":material/stacks:", "More layers, more gradient steps, lower risk."),
    ("app_pages/recurrence.py", "Inside the recurrence", ":material/replay:",
     "Step through one prompt, token by token."),
]
for path, title, icon, blurb in PAGES:
    link_col, blurb_col = st.columns([1, 2], vertical_alignment="center")
    link_col.page_link(path, label=title, icon=icon)
    blurb_col.caption(blurb)

st.divider()
st.caption("Based on Li, Tarzanagh, Rawat, Fazel and Oymak, *Gating is Weighting: Understanding Gated Linear "
           "Attention through In-context Learning*, [arXiv:2504.04308](https://arxiv.org/abs/2504.04308) (2025).")
