"""The guided lesson's questions, answers and small figures: "predict, then check".

Every correct answer is computed here from the theory (gla_core.theory), the construction
(gla_core.construct) or a short training run (gla_core.train) for the settings the student has on
screen; no answer is written into the lesson's text. No Streamlit here: the page (app_pages/lesson.py)
draws the widgets, and the tests call these functions directly.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from . import construct, figures, reference, theory
from .sampling import DELIMITER, EXAMPLE, sample_prompts
from .spec import PromptSpec
from .train import ANALYTIC_KEY, Status, TrainConfig, Trainer

# Two risks closer than this share of the zero predictor's risk count as equal (solver rounding).
SAME_RISK = 1e-9
# A gain of gating under this share of linear attention's risk is "small".
SMALL_GAIN = 0.05
# The short trainings the lesson checks a prediction with: a few seconds on one CPU thread.
LESSON_TRAINING = {"steps": 100, "test_size": 1024, "device": "cpu", "seed": 0}
DEPTH_LAYERS = 2


@dataclass(frozen=True)
class Question:
    """What the student is asked: the question and its two to four choices."""

    prompt: str
    choices: tuple[str, ...]


@dataclass(frozen=True)
class Answer:
    """The computed answer: the index of the correct choice and why, with the number that decides it."""

    correct: int
    why: str


def same_risk(a: float, b: float, spec: PromptSpec) -> bool:
    """Whether two risks of this spec are equal up to solver rounding (SAME_RISK)."""
    return abs(a - b) <= SAME_RISK * theory.best_zero(spec).risk


def with_relevances(spec: PromptSpec, relevances) -> PromptSpec:
    """The spec with task k's relevance (correlation with the query task) set to relevances[k]."""
    return PromptSpec.from_dict({**spec.to_dict(), "tasks": [{"n": task.n, "corr": float(r)} for task, r
                                                             in zip(spec.tasks, relevances)]})


def task_orders(relevances) -> list[tuple[float, ...]]:
    """Every order of the given relevances, each once, the given order first."""
    return list(dict.fromkeys(itertools.permutations(relevances)))


# ---------------------------------------------------------------- step: the data
def ask_data(spec: PromptSpec) -> Question:
    return Question("If the model could read only one task's examples, which task should it read?",
                    tuple(f"Task {k + 1}" for k in range(spec.num_tasks)))


def answer_data(spec: PromptSpec) -> Answer:
    """The task whose examples alone (weights 1 on it, 0 elsewhere) give the lowest risk."""
    alone = theory.risk_of_task_weights(spec, np.eye(spec.num_tasks))
    best = int(np.argmin(alone))
    risks = ", ".join(f"task {k + 1}: {risk:.3f}" for k, risk in enumerate(alone))
    return Answer(best, f"Task {best + 1}'s examples alone give the lowest risk ({risks}; predicting 0: "
                        f"{theory.best_zero(spec).risk:.3f}). The more a task is related to the query's task, "
                        "the more its examples say about the query's label.")


# ---------------------------------------------------------------- step: gating is weighting
def gla_and_wpgd(spec: PromptSpec, num_prompts: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Predictions (num_prompts,) of a scalar-gated GLA built from the optimal WPGD weights
    (construct.gla_from_block_weights) and of the WPGD step itself (reference.wpgd_one_step), float64."""
    solution = theory.best_wpgd(spec).normalised()
    model = construct.gla_from_block_weights(spec, solution.P, solution.block_weights)
    prompts = sample_prompts(spec, num_prompts, torch.Generator().manual_seed(seed), dtype=torch.float64)
    with torch.no_grad():
        gla = model(prompts.tokens).numpy()
    wpgd = reference.wpgd_one_step(prompts.x.numpy(), prompts.y.numpy(), prompts.xq.numpy(), solution.P,
                                   solution.omega)
    return gla, wpgd


GAP_CHOICES = ((1e-12, "The same number, up to rounding (under 10⁻¹²)"),
               (0.01, "Close, within 1%"), (np.inf, "Only roughly alike (more than 1% apart)"))


def ask_construction() -> Question:
    return Question("A GLA whose delimiter gates are set from WPGD's weights reads the same prompts. How close "
                    "are its predictions to WPGD's?", tuple(label for _, label in GAP_CHOICES))


def answer_construction(spec: PromptSpec) -> Answer:
    gla, wpgd = gla_and_wpgd(spec)
    gap = float(np.max(np.abs(gla - wpgd)) / np.max(np.abs(wpgd)))
    correct = next(index for index, (bound, _) in enumerate(GAP_CHOICES) if gap < bound)
    return Answer(correct, f"The largest difference over {len(gla)} prompts is {gap:.1e} of the largest prediction. "
                           "The gates' products are exactly WPGD's weights, so the GLA computes one weighted "
                           "gradient step: gating is weighting.")


# ---------------------------------------------------------------- step: the optimal weights
def ask_optimal(spec: PromptSpec) -> Question:
    return Question("Which task gets the most weight in the optimal WPGD weights?",
                    tuple(f"Task {k + 1}" for k in range(spec.num_tasks)))


def answer_optimal(spec: PromptSpec) -> Answer:
    weights = np.asarray(theory.solve(spec)["optimal"]["block_weights"])
    best = int(np.argmax(weights))
    shown = ", ".join(f"task {k + 1}: {w:.2f}" for k, w in enumerate(weights))
    return Answer(best, f"Optimal weights per example ({shown}; the largest is 1). Task {best + 1}, the most "
                        "related to the query's task, counts most.")


# ---------------------------------------------------------------- step: unique up to scale
SCALE_CHOICES = ("The risk falls", "The risk stays the same", "The risk rises")


def ask_scale() -> Question:
    return Question("Double every optimal weight and let the preconditioner P adjust. What happens to the risk?",
                    SCALE_CHOICES)


def scale_risks(spec: PromptSpec, scales) -> dict[str, np.ndarray]:
    """Risk with P re-optimised, min_P L(P, c omega), along the rays of the optimal and of equal weights."""
    omega = theory.best_wpgd(spec).omega
    return {"optimal": np.array([theory.risk_optimal_P(spec, c * omega) for c in scales]),
            "linear_attention": np.array([theory.risk_optimal_P(spec, c * np.ones_like(omega)) for c in scales])}


def answer_scale(spec: PromptSpec) -> Answer:
    once, doubled = scale_risks(spec, [1.0, 2.0])["optimal"]
    correct = 1 if same_risk(once, doubled, spec) else (0 if doubled < once else 2)
    return Answer(correct, f"Risk {once:.6f} at the optimal weights, {doubled:.6f} at twice them: P shrinks by half "
                           "and the prediction is unchanged. The optimal weights are unique only up to scale; "
                           "the risk is flat along every ray.")


def scale_figure(scales, risks: dict[str, np.ndarray]) -> go.Figure:
    """Risk against the scale c of the weights (log axis), one flat line per direction."""
    fig = go.Figure()
    for key, values in risks.items():
        label, colour, dash = figures.QUANTITIES[key][:3]
        fig.add_trace(go.Scatter(x=list(scales), y=values, mode="lines", name=f"{label} ω, scaled by c",
                                 line={"color": colour, "dash": dash, "width": 3}))
    fig.update_xaxes(type="log")
    return figures._style(fig, "Risk along a ray: scale every weight by c", "scale c", "risk (P re-optimised)")


# ---------------------------------------------------------------- step: what scalar gates can reach
REACH_CHOICES = ("Yes: they reach the optimal risk", "No: they pay a gap")


def ask_reach() -> Question:
    return Question("In this task order, can scalar gates reach the optimal WPGD weights?", REACH_CHOICES)


def answer_reach(spec: PromptSpec) -> Answer:
    solved = theory.solve(spec)
    optimal, scalar = solved["optimal"]["risk"], solved["scalar_gla"]["risk"]
    reaches = same_risk(optimal, scalar, spec)
    reason = ("the optimal weights never shrink toward the query, which gate products can make" if reaches else
              "a more relevant task sits farther from the query than a less relevant one, and gate products can "
              "only shrink weights going back in the prompt")
    return Answer(0 if reaches else 1, f"Best scalar-gated risk {scalar:.4f}, optimal WPGD {optimal:.4f} "
                                       f"(gap {scalar - optimal:.4f}): {reason}.")


# ---------------------------------------------------------------- step: gating against linear attention
GAIN_CHOICES = ("No: linear attention does as well", f"Yes, by under {SMALL_GAIN:.0%} of the risk",
                f"Yes, by {SMALL_GAIN:.0%} or more")


def ask_gain() -> Question:
    return Question("Will scalar gating beat linear attention here, and by how much?", GAIN_CHOICES)


def answer_gain(spec: PromptSpec) -> Answer:
    solved = theory.solve(spec)
    linear, scalar = solved["linear_attention"]["risk"], solved["scalar_gla"]["risk"]
    gain = (linear - scalar) / linear
    correct = 0 if same_risk(linear, scalar, spec) else (1 if gain < SMALL_GAIN else 2)
    gained = "nothing" if correct == 0 else f"{gain:.1%} of the risk"
    return Answer(correct, f"Linear attention's risk {linear:.4f}, best scalar-gated GLA {scalar:.4f}: gating gains "
                           f"{gained}. Equal weights are optimal only when every task is equally related to the "
                           "query; the more the relevances differ, the more gates gain.")


# ---------------------------------------------------------------- step: vector gates
VECTOR_CHOICES = ("Vector gates", "Scalar gates", "They tie")


def ask_vector() -> Question:
    return Question("Which gates reach the lower risk here?", VECTOR_CHOICES)


def answer_vector(spec: PromptSpec) -> Answer:
    solved = theory.solve(spec)
    scalar, vector = solved["scalar_gla"]["risk"], solved["vector_gla"]["risk"]
    correct = 2 if same_risk(scalar, vector, spec) else (0 if vector < scalar else 1)
    return Answer(correct, f"Best scalar-gated risk {scalar:.4f}, best vector-gated {vector:.4f}. Vector gates weight "
                           "each coordinate on its own, so they gain when a task's relevance differs across "
                           "coordinates, and tie when every coordinate is alike.")


def with_partial_relevance(spec: PromptSpec, task: int, coordinates, relevance: float) -> PromptSpec:
    """The spec with task `task`'s per-coordinate relevance set to `relevance` on `coordinates`."""
    data = spec.to_dict()
    corr = list(np.broadcast_to(spec.tasks[task].corr, (spec.d,)).astype(float))
    for c in coordinates:
        corr[c] = float(relevance)
    data["tasks"][task]["corr"] = corr
    return PromptSpec.from_dict(data)


# ---------------------------------------------------------------- steps checked by training
def trained_risk(spec: PromptSpec, gating: str, layers: int = 1) -> tuple[float, float]:
    """(test risk, standard error) of a GLA trained briefly (LESSON_TRAINING) on this spec."""
    config = TrainConfig(gating=gating, layers=layers, **LESSON_TRAINING).validate()
    snapshot = Trainer(spec, config).run()
    if snapshot.status != Status.FINISHED:
        raise RuntimeError(f"the check run did not finish: {snapshot.reason}")
    return snapshot.test_risk, snapshot.test_risk_se


DEPTH_CHOICES = ("Below the best one-layer risk", "About at it (within 2 standard errors)", "Above it")


def ask_depth() -> Question:
    return Question(f"Trained for {LESSON_TRAINING['steps']} steps, where will a {DEPTH_LAYERS}-layer GLA's test risk "
                    "land?", DEPTH_CHOICES)


def answer_depth(spec: PromptSpec, trained: tuple[float, float]) -> Answer:
    one_layer = theory.solve(spec)["scalar_gla"]["risk"]
    risk, se = trained
    correct = 1 if abs(risk - one_layer) <= 2 * se else (0 if risk < one_layer else 2)
    return Answer(correct, f"The {DEPTH_LAYERS}-layer GLA's test risk is {risk:.4f} ± {se:.4f}; the best any "
                           f"one-layer scalar-gated GLA can do is {one_layer:.4f}. Each layer is one more gradient "
                           "step.")


def risk_lines(spec: PromptSpec, gating: str) -> list[tuple[str, float]]:
    """The theory's risks a trained model is compared with, worst first, equal risks merged into one line."""
    solved = theory.solve(spec)
    lines: list[tuple[str, float]] = []
    for key in dict.fromkeys(("zero", "linear_attention", ANALYTIC_KEY[gating], "optimal")):
        label, risk = figures.QUANTITIES[key].label, solved[key]["risk"]
        if lines and same_risk(lines[-1][1], risk, spec):
            lines[-1] = (f"{lines[-1][0]} = {label}", lines[-1][1])
        else:
            lines.append((label, risk))
    return lines


def ask_trained(spec: PromptSpec, gating: str) -> Question:
    return Question(f"Trained for {LESSON_TRAINING['steps']} steps, which line will this {gating}-gated GLA's test "
                    "risk land nearest?" if gating != "none" else
                    f"Trained for {LESSON_TRAINING['steps']} steps, which line will linear attention's test risk "
                    "land nearest?", tuple(f"{label} ({risk:.3f})" for label, risk in risk_lines(spec, gating)))


def answer_trained(spec: PromptSpec, gating: str, trained: tuple[float, float]) -> Answer:
    lines = risk_lines(spec, gating)
    risk, se = trained
    nearest = int(np.argmin([abs(risk - line) for _, line in lines]))
    return Answer(nearest, f"The trained model's test risk is {risk:.4f} ± {se:.4f}, nearest {lines[nearest][0]} "
                           f"({lines[nearest][1]:.4f}). Training finds the weights its gates can make, no better.")


TARGET_CHOICES = ("The optimal WPGD weights", "The best weights its gates can reach", "Here the two are the same")


def ask_target(gating: str) -> Question:
    model = "linear attention" if gating == "none" else f"a {gating}-gated GLA"
    return Question(f"As {model} trains in the Playground, which weights will its own weights approach?",
                    TARGET_CHOICES)


def answer_target(spec: PromptSpec, gating: str) -> Answer:
    solved = theory.solve(spec)
    optimal, reachable = solved["optimal"]["risk"], solved[ANALYTIC_KEY[gating]]["risk"]
    correct = 2 if same_risk(optimal, reachable, spec) else 1
    label = figures.QUANTITIES[ANALYTIC_KEY[gating]].label
    return Answer(correct, f"Optimal WPGD's risk is {optimal:.4f} and the {label}'s {reachable:.4f}. Training can "
                           "only find weights its gates can make, so it heads for the best of those.")


def risk_figure(risks: list[tuple[str, float]], trained: tuple[float, float] | None = None,
                title: str = "Risk of each model (lower is better)") -> go.Figure:
    """Horizontal bars of (label, risk), and the trained model's risk ± 2 SE as a marker when given."""
    fig = go.Figure(go.Bar(y=[label for label, _ in risks], x=[risk for _, risk in risks], orientation="h",
                           marker_color=figures.GREY, name="theory", text=[f"{risk:.3f}" for _, risk in risks],
                           textposition="inside"))
    if trained is not None:
        fig.add_trace(go.Scatter(x=[trained[0]], y=[risks[-1][0]], mode="markers", name="trained GLA (± 2 SE)",
                                 error_x={"type": "data", "array": [2 * trained[1]], "visible": True},
                                 marker=_trained_marker()))
        fig.add_vline(x=trained[0], line={"color": figures.QUANTITIES["trained"].colour, "dash": "dot"})
    return figures._style(fig, title, "population risk", height=300)


def _trained_marker() -> dict:
    quantity = figures.QUANTITIES["trained"]
    return {"color": quantity.colour, "symbol": quantity.symbol, "size": 14}


# ---------------------------------------------------------------- figure: the prompt's tokens
def token_strip(kinds: Sequence[int], tasks: Sequence[int]) -> go.Figure:
    """One square per token in prompt order (sampling.layout's kind and task of each token), coloured by
    task; delimiters grey, the query black."""
    colours, labels = [], []
    for position, (kind, task) in enumerate(zip(kinds, tasks)):
        if kind == EXAMPLE:
            colours.append(figures.task_colour(int(task)))
            labels.append(f"token {position + 1}: an example (x, y) of task {task + 1}")
        elif kind == DELIMITER:
            colours.append(figures.GREY)
            labels.append(f"token {position + 1}: the delimiter after task {task + 1}")
        else:
            colours.append(figures.BLACK)
            labels.append(f"token {position + 1}: the query x (its label is what the model predicts)")
    fig = go.Figure(go.Bar(x=np.arange(1, len(colours) + 1), y=np.ones(len(colours)), marker_color=colours,
                           hovertext=labels, hoverinfo="text", showlegend=False))
    fig.update_yaxes(visible=False)
    return figures._style(fig, "One prompt, token by token", "token position (prompt order)", height=200)


def playground_query(spec: PromptSpec, gating: str) -> dict[str, str]:
    """The Playground's URL settings (lab_ui.preset_settings keys) for the default preset with this
    spec's task relevances and this gating."""
    query = {"preset": "default", "gating": gating}
    query.update({f"r{k + 1}": f"{task.corr:g}" for k, task in enumerate(spec.tasks)})
    return query



def agreement_figure(gla: np.ndarray, wpgd: np.ndarray) -> go.Figure:
    """Each prompt's GLA prediction against its WPGD prediction, with the diagonal where they are equal."""
    low, high = float(min(gla.min(), wpgd.min())), float(max(gla.max(), wpgd.max()))
    fig = go.Figure([
        go.Scatter(x=[low, high], y=[low, high], mode="lines", name="equal predictions",
                   line={"color": figures.GREY, "dash": "dot"}),
        go.Scatter(x=wpgd, y=gla, mode="markers", name="one prompt", marker=_trained_marker(),
                   hovertemplate="WPGD %{x:.6f}<br>GLA %{y:.6f}<extra></extra>"),
    ])
    return figures._style(fig, "GLA built from WPGD against WPGD, prompt by prompt", "WPGD prediction",
                          "GLA prediction", height=340)


def relevance_map(relevance: Sequence[Sequence[float]]) -> go.Figure:
    """Each task's relevance (rows, K) on each coordinate (columns, d), the entries written in."""
    relevance = np.asarray(relevance, dtype=float)
    fig = go.Figure(go.Heatmap(
        z=relevance, x=[f"coordinate {c + 1}" for c in range(relevance.shape[1])],
        y=[f"task {k + 1}" for k in range(relevance.shape[0])], zmin=-1.0, zmax=1.0, colorscale=figures.DIVERGING,
        text=np.round(relevance, 2), texttemplate="%{text}",
        hovertemplate="%{y}, %{x}: relevance %{z:.2f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return figures._style(fig, "Relevance of each task on each coordinate", height=260)
