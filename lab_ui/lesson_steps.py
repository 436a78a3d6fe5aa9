"""The Lesson page's ten steps (app_pages/lesson.py draws one at a time). Each step draws its text, formula,
controls and figure and returns (question, answer, settings): answer() is called only at the reveal (it may
train a model); settings name what is on screen, so a moved slider asks a new question. The questions and
the reasoning of the answers live in gla_core/lesson.py; this module is their page side."""
import json
import time
from functools import partial

import numpy as np
import streamlit as st

from gla_core import figures, lesson
from gla_core.sampling import layout
from gla_core.session import SLOT_POLL_SECONDS
from gla_core.spec import PromptSpec, preset_spec
from gla_core.train import ANALYTIC_KEY, GATINGS
from lab_ui import keys
from lab_ui.charts import chart
from lab_ui.resources import analytic_for, training_slots
from lab_ui.settings import GATING_CAPTIONS, format_corr

LESSON_PRESET = "default"


def picks() -> dict:
    """What the student picked during the lesson, kept across steps (a widget's own state ends when its step
    is left)."""
    return st.session_state.setdefault(keys.LESSON_PICKS, {})


def remembered(widget, label: str, key: str, default, **kwargs):
    """A URL-bound widget that starts from the student's earlier pick (or `default`) and remembers the new one."""
    picked = picks()
    value = picked.get(key, default)
    if widget is st.radio:
        kwargs["index"] = kwargs["options"].index(value)
    else:
        kwargs["value"] = value
    picked[key] = widget(label, key=key, bind="query-params", **kwargs)
    return picked[key]


@st.cache_data(max_entries=64, show_spinner="Training a GLA to check your prediction (a few seconds)…")
def trained_for(spec_json: str, gating: str, layers: int) -> tuple[float, float]:
    """A short check run, in its turn among this server's trainings (the cap on runs computing at once)."""
    slots, owner = training_slots(), object()
    try:
        while not slots.try_take(owner):
            time.sleep(SLOT_POLL_SECONDS)
        return lesson.trained_risk(PromptSpec.from_json(spec_json), gating, layers)
    finally:
        slots.leave(owner)


def student_spec() -> PromptSpec:
    """The lesson's prompt: the default preset with the relevances of step 3, in the order of step 5."""
    base = preset_spec(LESSON_PRESET)
    picked = picks()
    relevances = [picked.get(f"lesson_r{k + 1}", task.corr) for k, task in enumerate(base.tasks)]
    order = picked.get("lesson_order", lesson.task_orders(relevances)[0])
    return lesson.with_relevances(base, order if sorted(order) == sorted(relevances) else relevances)


def relevance_text(spec: PromptSpec) -> str:
    return ", ".join(f"task {k + 1}: {format_corr(task.corr)}" for k, task in enumerate(spec.tasks))


def weights_chart(spec: PromptSpec, keys: tuple[str, ...], caption: str, key: str) -> None:
    """Per-example weights of the theory's solutions. A vector gate's weights (n, d) are drawn by their first
    coordinate: the lesson's prompt has every coordinate alike, so each coordinate has the same weights."""
    analytic = analytic_for(spec.to_json())
    weights = {name: np.asarray(analytic[name]["omega"]).reshape(spec.num_examples, -1)[:, 0] for name in keys}
    chart(partial(figures.token_weights, spec.example_task, weights, title="Weight of each in-context example"),
                 caption, key=key)


def revealing(draw_check, answer_of):
    """An answer that first draws the chart that decides it: shown only at the reveal, so that it cannot give
    the answer away before the student has predicted."""
    def answer() -> lesson.Answer:
        draw_check()
        return answer_of()
    return answer


# ---------------------------------------------------------------- the steps
def step_data():
    spec = student_spec()
    st.markdown("Each prompt is a small **in-context linear regression**. It holds examples $(x_i, y_i)$ from "
                "several **tasks**, each task $k$ with its own vector $\\beta_k$, then a **query** $x$ whose label "
                "comes from the query's own task $\\beta$. A task's **relevance** $r_k$ is how correlated its "
                f"$\\beta_k$ is with the query's $\\beta$; here {relevance_text(spec)}.")
    st.latex(r"y_i = \beta_{k(i)}^\top x_i + \varepsilon_i, \qquad r_k = \mathrm{corr}(\beta_k, \beta)")
    prompt = layout(spec)
    chart(partial(lesson.token_strip, prompt.kind, prompt.task),
                 f"The {spec.num_tokens} tokens of one prompt in order: examples coloured by task, grey "
                 "delimiters (tokens that mark where a task ends) and the black query last.", key="lesson_strip")
    return lesson.ask_data(spec), partial(lesson.answer_data, spec), spec.to_json()


def step_construction():
    spec = preset_spec(LESSON_PRESET)
    st.markdown("A GLA layer multiplies its state by a gate $g_t \\in (0, 1)$ at every token, so example $i$ "
                "reaches the query shrunk by the product of the gates after it: that product is its weight "
                "$\\omega_i$. Here a GLA's delimiter gates are set so that these products are the weights in the "
                "chart, the optimal **WPGD** weights (weighted preconditioned gradient descent: one gradient step "
                "with weighted examples). The check runs the GLA and that WPGD step on the same 8 prompts.")
    st.latex(r"\hat y = x^\top P \sum_i \omega_i\, y_i\, x_i, \qquad \omega_i = \prod_{j > i} g_j")
    weights_chart(spec, ("optimal",), "The weights the gates are set to make, one per example.", "lesson_gates")

    def answer():
        gla, wpgd = lesson.gla_and_wpgd(spec)
        chart(partial(lesson.agreement_figure, gla, wpgd),
                     "Each point is one prompt: across, the WPGD prediction; up, the GLA's. On the dotted diagonal "
                     "the two are equal.", key="lesson_agreement")
        return lesson.answer_construction(spec)

    return lesson.ask_construction(), answer, spec.to_json()


def step_optimal():
    base = preset_spec(LESSON_PRESET)
    st.markdown("The **optimal weights** are the WPGD weights with the lowest risk (the expected squared error "
                "on the query). Move the sliders to set each task's relevance. The chart shows linear attention's "
                "equal weights; the check draws the optimal weights for these relevances next to them.")
    st.latex(r"\omega^\star \propto (s\,C N + (s + \tau) I)^{-1} r")
    columns = st.columns(base.num_tasks)
    for k, (column, task) in enumerate(zip(columns, base.tasks)):
        with column:
            remembered(st.slider, f"Task {k + 1}'s relevance r{k + 1}", f"lesson_r{k + 1}", task.corr,
                       min_value=-1.0, max_value=1.0, step=0.05)
    spec = student_spec()
    weights_chart(spec, ("linear_attention",), "Linear attention: every example's weight is 1.", "lesson_equal")
    check = partial(weights_chart, spec, ("optimal", "linear_attention"),
                    f"Optimal weights for relevances {relevance_text(spec)} (the largest is 1).", "lesson_optimal")
    return lesson.ask_optimal(spec), revealing(check, partial(lesson.answer_optimal, spec)), spec.to_json()


def step_scale():
    spec = student_spec()
    st.markdown("Multiplying every weight by $c$ and the preconditioner $P$ by $1/c$ leaves every prediction "
                "unchanged. The chart shows the optimal weights of your prompt; the check scales them, and equal "
                "weights, by $c$ from ¼ to 4, choosing the best $P$ each time.")
    st.latex(r"L(P / c,\; c\,\omega) = L(P, \omega)")
    weights_chart(spec, ("optimal",), "The optimal weights (the largest is 1).", "lesson_direction")
    scales = [0.25 * 2 ** (i / 4) for i in range(17)]
    check = partial(chart, partial(lesson.scale_figure, scales, lesson.scale_risks(spec, scales)),
                    "Risk against the scale c of the weights, for the optimal direction and for equal weights: only "
                    "the direction matters, so the optimum is unique up to scale.", key="lesson_scale")
    return lesson.ask_scale(), revealing(check, partial(lesson.answer_scale, spec)), spec.to_json()


def step_reach():
    base = student_spec()
    relevances = [task.corr for task in base.tasks]
    st.markdown("A gate is at most 1, so a product of gates can only shrink going back from the query: scalar "
                "gates (one gate per token) with a delimiter per task make exactly the task weights that never "
                "shrink toward the query. Those weights are **reachable**. Put your tasks in another order; the "
                "bars are the optimal weights, and the check adds the best reachable ones.")
    st.latex(r"0 \le w_1 \le w_2 \le \dots \le w_K \quad (w_k:\ \text{task } k\text{'s weight})")
    orders = lesson.task_orders(sorted(relevances))
    current = tuple(relevances) if tuple(relevances) in orders else orders[0]
    order = st.selectbox("Relevances in prompt order (task 1 first, the query after the last)", orders,
                         index=orders.index(current), format_func=lambda o: ", ".join(f"{r:g}" for r in o),
                         key="lesson_order_box")
    picks()["lesson_order"] = order
    spec = lesson.with_relevances(base, order)
    weights_chart(spec, ("optimal",), f"Optimal weights for relevances {relevance_text(spec)}.", "lesson_order")
    check = partial(weights_chart, spec, ("optimal", "scalar_gla"), "Bars and diamonds: the optimal weights; "
                    "circles: the best weights scalar gates can reach.", "lesson_reach")
    return lesson.ask_reach(), revealing(check, partial(lesson.answer_reach, spec)), spec.to_json()


def step_gain():
    base = preset_spec("equal_tasks")
    st.markdown("**Linear attention** has no gates: every example's weight is 1. Tasks 2 and 3 below are "
                f"related to the query by {base.tasks[1].corr:g}; the slider sets task 1's relevance. The chart shows "
                "linear attention's risk against predicting 0; the check sweeps task 1's relevance and shades where "
                "scalar gating beats linear attention.")
    r1 = remembered(st.slider, "Task 1's relevance r1", "lesson_gain_r1", base.tasks[0].corr,
                    min_value=-1.0, max_value=1.0, step=0.05)
    spec = lesson.with_relevances(base, [r1, *[task.corr for task in base.tasks[1:]]])
    analytic = analytic_for(spec.to_json())
    chart(partial(lesson.risk_figure, [(figures.QUANTITIES[key].label, analytic[key]["risk"])
                                              for key in ("zero", "linear_attention")]),
                 f"Risks from the theory at r1 = {r1:g}.", key="lesson_linear")
    sweep = [round(-1.0 + 0.1 * i, 2) for i in range(21)]
    solved = [analytic_for(lesson.with_relevances(spec, [r, *[t.corr for t in spec.tasks[1:]]]).to_json())
              for r in sweep]
    risks = {key: [solution[key]["risk"] for solution in solved] for key in ("linear_attention", "scalar_gla")}
    wins = [not lesson.same_risk(a, b, spec) for a, b in zip(risks["linear_attention"], risks["scalar_gla"])]
    check = partial(chart, partial(figures.sweep_chart, sweep, risks, "task 1's relevance r1", wins),
                    f"Risk as task 1's relevance changes; the slider is at r1 = {r1:g}.", key="lesson_gain")
    return lesson.ask_gain(), revealing(check, partial(lesson.answer_gain, spec)), spec.to_json()


def step_vector():
    base = preset_spec("per_coordinate")
    st.markdown("A **vector gate** has one value per key coordinate, so every coordinate of the examples gets its "
                "own weights. Here task 1 agrees with the query on coordinates 1 and 2 (relevance 0.95) and task 2 "
                "on all four (0.9); the slider sets task 1's relevance on coordinates 3 and 4. The chart shows each "
                "task's relevance per coordinate; the check compares the best risks.")
    relevance = remembered(st.slider, "Task 1's relevance on coordinates 3 and 4", "lesson_vector_r", 0.0,
                           min_value=0.0, max_value=0.95, step=0.05)
    spec = lesson.with_partial_relevance(base, 0, (2, 3), relevance)
    relevance_map = [list(np.broadcast_to(task.corr, (spec.d,)).astype(float)) for task in spec.tasks]
    chart(partial(lesson.relevance_map, relevance_map),
                 "Each task's relevance to the query on each coordinate.", key="lesson_relevance_map")
    analytic = analytic_for(spec.to_json())
    risks = [(figures.QUANTITIES[key].label, analytic[key]["risk"]) for key in ("linear_attention", "scalar_gla",
                                                                                "vector_gla")]
    check = partial(chart, partial(lesson.risk_figure, risks),
                    "Each model's best risk for this prompt, from the theory.", key="lesson_vector")
    return lesson.ask_vector(), revealing(check, partial(lesson.answer_vector, spec)), spec.to_json()


def step_depth():
    spec = preset_spec("depth")
    st.markdown("A GLA of $L$ layers runs $L$ steps of causal WPGD: each layer corrects the labels with one more "
                "weighted gradient step. The bars are the theory's best **one-layer** risks for a prompt of two "
                f"tasks ({relevance_text(spec)}, {spec.tasks[0].n} examples each); the check trains a "
                f"{lesson.DEPTH_LAYERS}-layer scalar-gated GLA.")
    st.latex(r"y_t^{(l+1)} = y_t^{(l)} - x_t^\top P_l \sum_{s \le t} \omega^{l}_{t,s}\, x_s\, y_s^{(l)}")
    lines = lesson.risk_lines(spec, "scalar")
    chart(partial(lesson.risk_figure, lines), "One-layer risks from the theory.", key="lesson_depth")

    def answer():
        trained = trained_for(spec.to_json(), "scalar", lesson.DEPTH_LAYERS)
        chart(partial(lesson.risk_figure, lines, trained), "The trained 2-layer GLA (marker) against the "
                     "one-layer risks.", key="lesson_depth_trained")
        return lesson.answer_depth(spec, trained)

    return lesson.ask_depth(), answer, spec.to_json()


def step_trained():
    spec = student_spec()
    st.markdown(f"Now a model trained on your prompt ({relevance_text(spec)}, the order of step 5). Pick a "
                "gating; the bars are the theory's risks for it, and the check trains that GLA for "
                f"{lesson.LESSON_TRAINING['steps']} steps on fresh prompts.")
    gating = remembered(st.radio, "Gating", "lesson_gating", "scalar", options=list(GATINGS), horizontal=True,
                        captions=list(GATING_CAPTIONS.values()))
    lines = lesson.risk_lines(spec, gating)
    chart(partial(lesson.risk_figure, lines), "The theory's risks for this prompt and gating.",
                 key="lesson_trained")

    def answer():
        trained = trained_for(spec.to_json(), gating, 1)
        chart(partial(lesson.risk_figure, lines, trained), "The trained GLA (marker) against the theory.",
                     key="lesson_trained_check")
        return lesson.answer_trained(spec, gating, trained)

    return lesson.ask_trained(spec, gating), answer, json.dumps([spec.to_json(), gating])


def step_playground():
    spec, gating = student_spec(), picks().get("lesson_gating", "scalar")
    st.markdown(f"Train it yourself: the Playground opens with your prompt ({relevance_text(spec)}) and "
                f"{gating} gating, and shows the gates' weights moving as the model trains. The bars are the "
                "optimal WPGD weights; the check adds the best weights your gating can reach.")
    weights_chart(spec, ("optimal",), "The optimal WPGD weights of your prompt.", "lesson_final")
    st.page_link("app_pages/playground.py", label="Open the Playground with these settings",
                 icon=":material/science:", query_params=lesson.playground_query(spec, gating))
    check = partial(weights_chart, spec, ("optimal", ANALYTIC_KEY[gating]),
                    "Optimal weights and the best your gating can reach.", "lesson_target")
    return (lesson.ask_target(gating), revealing(check, partial(lesson.answer_target, spec, gating)),
            json.dumps([spec.to_json(), gating]))


STEPS = (("The data: tasks, relevance, a query", step_data), ("Gating is weighting", step_construction),
         ("The optimal weights", step_optimal), ("Unique up to scale", step_scale),
         ("What scalar gates can reach", step_reach), ("Gating against linear attention", step_gain),
         ("Vector gates", step_vector), ("Depth: more layers, more steps", step_depth),
         ("Where will a trained model land?", step_trained), ("Now train it yourself", step_playground))
