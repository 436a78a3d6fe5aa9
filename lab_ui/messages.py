"""Words and numbers on screen: text from a user shown literally, an invalid setting said plainly, and
measured numbers stated honestly against the theory (the metrics row of a trained model)."""
from __future__ import annotations

import re
from typing import Any

import numpy as np
import streamlit as st

from gla_core.figures import QUANTITIES
from gla_core.train import ANALYTIC_KEY, TARGET_MARGIN_SE, Status

# Every character Markdown (CommonMark, GitHub's autolinks, Streamlit's $math$, :emoji: and :colour[...])
# gives a meaning to; a backslash before each shows it as itself.
WORD_JOINER = "\u2060"
MARKDOWN_SPECIALS = frozenset("\\`*_{}[]()<>#+-.!|$~:=&\"'^")


def literal(text: Any) -> str:
    """Text that came from a user (a URL value, a typed list, an error message quoting them) made safe to
    put inside Markdown: it shows exactly as typed, never as a link, an image, a formula or markup."""
    escaped = "".join("\\" + char if char in MARKDOWN_SPECIALS else char for char in str(text))
    # GitHub's autolinks ignore escapes: an invisible word joiner after "www", "@" and "://"'s colon keeps
    # an address from becoming a link (or an image fetch) while it reads the same.
    for trigger in ("www", "@", "\\:"):
        escaped = re.sub(re.escape(trigger), lambda match: match.group(0) + WORD_JOINER, escaped, flags=re.IGNORECASE)
    return escaped.replace("\n", " ")


def show_invalid(error: Exception) -> None:
    """An invalid setting, said plainly, in place of the figure it would have drawn. The field is the
    code's name for it; the message quotes what the user gave, so it is shown literally."""
    field, _, message = str(error).partition(": ")
    st.error(f"**This setting cannot be used** — `{field}`: {literal(message)}" if message
             else literal(error), icon=":material/warning:")


def layer_list(depths: list[int]) -> str:
    """'1 layer', '2, 3 and 4 layers'."""
    words = ", ".join(map(str, depths[:-1])) + (" and " if len(depths) > 1 else "") + str(depths[-1])
    return f"{words} layer{'s' if depths != [1] else ''}"


def risk_text(risk: float, risk_se: float) -> str:
    """A measured risk with its standard error: '2.259 ± 0.010'."""
    return f"{risk:.3f} ± {risk_se:.3f}" if np.isfinite(risk_se) else f"{risk:.3f}"


def compared_with(risk: float, risk_se: float, theory_risk: float, name: str) -> tuple[str, str]:
    """How a measured risk stands against a theory line, honestly: within 2 standard errors it is *at*
    the line (noise never beats the theory). Returns (words, st.metric delta_color)."""
    difference = risk - theory_risk
    if not np.isfinite(risk_se) or abs(difference) <= 2 * risk_se:
        return "at the theory line (±2 SE)", "off"
    return f"{difference:+.3f} vs {name}", "inverse"


def theory_metrics(snapshot, risks: dict[str, float], gating: str, show_theory: bool) -> None:
    """The row of numbers over a trained model's charts: its test risk ± SE against the best this gating
    can reach, that best, optimal WPGD, and the cosine with the target weights. `snapshot`: the run's
    (or None before one); `risks`: charts.analytic_risks; with show_theory off the theory reads "?"."""
    target_key = ANALYTIC_KEY[gating]
    target, optimal = QUANTITIES[target_key], QUANTITIES["optimal"]
    diverged = snapshot is not None and snapshot.status == Status.DIVERGED
    trained = snapshot is not None and snapshot.step > 0 and not diverged
    cells = st.columns([1.7, 1.2, 1.1, 0.8])
    if diverged:
        cells[0].metric("Trained model", f"diverged at step {snapshot.step}", help=snapshot.reason)
    else:
        words, colour = (compared_with(snapshot.test_risk, snapshot.test_risk_se, risks[target_key], target.label)
                         if trained and show_theory else (None, "off"))
        cells[0].metric("Trained model", risk_text(snapshot.test_risk, snapshot.test_risk_se) if trained
                        else "—", delta=words, delta_color=colour,
                        help="Test risk of the trained model (mean squared error on new prompts) ± its standard "
                             "error. Within 2 standard errors of a theory line it counts as at that line.")
    hidden = "" if show_theory else " (hidden until the run ends)"
    cells[1].metric(target.label[0].upper() + target.label[1:], f"{risks[target_key]:.3f}" if show_theory else "?",
                    help=f"The lowest risk this model can reach, from the theory: {target.description}.{hidden}")
    cells[2].metric(optimal.label[0].upper() + optimal.label[1:], f"{risks['optimal']:.3f}" if show_theory else "?",
                    help=f"{optimal.description[0].upper() + optimal.description[1:]}." + (
                        " Vector gates implement per-coordinate WPGD, whose best risk can be lower: a vector-gated "
                        "GLA below this line does not beat the theory." if gating == "vector" else "") + hidden)
    cells[3].metric("Cosine", f"{snapshot.cosine:.3f}" if trained and show_theory else ("?" if trained else "—"),
                    help=f"Cosine similarity of the trained model's weights and the {target.label} weights: 1 = the "
                         "same up to scale.")


def depth_verdict(layers: int, risk: float, risk_se: float, target: dict, stopped_at: int | None = None) -> str:
    """One depth's trained risk against its own L-step target (causal_wpgd: "risk", "risk_se"), in words;
    2 standard errors of both together decide (train.TARGET_MARGIN_SE). stopped_at: the step at which the run
    stopped at its target (TrainConfig.target_risk), None for a run of all its steps."""
    margin = TARGET_MARGIN_SE * float(np.hypot(np.nan_to_num(risk_se), target["risk_se"]))
    model = f"**{layer_list([layers])}**"
    if abs(risk - target["risk"]) <= margin:
        return (f"{model}: reached the {layers}-step target ({target['risk']:.3f})"
                + (f" at step {stopped_at}, and stopped there." if stopped_at is not None else "."))
    if risk > target["risk"]:
        return f"{model}: fell short of the {layers}-step target by {100 * (risk / target['risk'] - 1):.1f}%."
    return (f"{model}: went below the {layers}-step target ({target['risk']:.3f}) by more than 2 standard errors — "
            "the trained GLA computes something outside L-step WPGD: it has more freedom than the construction "
            "(keys, queries and values read every slot), so its weights differ from the target's below."
            + (f" It stopped at step {stopped_at}." if stopped_at is not None else ""))


def against_one_step(results: dict[int, tuple[float, float]], best_one_step: float) -> str:
    """Trained models of several depths (layers -> risk, SE) against the best one-step WPGD risk, in words:
    below it, or at it, only by more or within 2 standard errors."""
    below = [layers for layers, (risk, se) in results.items() if risk < best_one_step - 2 * np.nan_to_num(se)]
    at = [layers for layers, (risk, se) in results.items() if layers not in below and abs(risk - best_one_step) <= 2 * se]
    return (f"The best **one-step** WPGD risk is **{best_one_step:.3f}**. "
            + (f"Models with {layer_list(below)} beat it by more than 2 standard errors: more steps, lower risk. "
               if below else "No trained model is below it by more than 2 standard errors. ")
            + (f"Models with {layer_list(at)} are at it (within 2 standard errors)." if at else ""))


def depth_run_warnings(run, diverged: dict[int, int]) -> None:
    """Under the Depth chart: each model of `run` (None: no run of these settings) that its time limit
    stopped, and each model that diverged ({layers: step}) and so has no result."""
    for index, reason in (run.limit_reasons.items() if run is not None else ()):
        trainer = run.trainers[index]
        st.warning(f"The {trainer.config.layers}-layer model stopped at step {trainer.snapshot().step} of "
                   f"{trainer.config.steps}: {reason}. Its risk is from the steps it made.", icon=":material/timer:")
    for layers, step in diverged.items():
        st.error(f"The {layers}-layer model diverged at step {step}: it has no result. Lower the learning rate.",
                 icon=":material/error:")


def gating_wins(linear: np.ndarray, best_gated: np.ndarray) -> np.ndarray:
    """Where the best gated model's risk is below linear attention's, by more than rounding."""
    return best_gated < linear * (1 - 1e-6)


def sweep_verdict(x: list, x_title: str, linear: np.ndarray, best_gated: np.ndarray, optimal: np.ndarray) -> None:
    """The Gating page's conclusion in words, from the theory's risks along the sweep (one per setting x):
    where the best gated model beats linear attention and by how much, and where even it stays above
    optimal WPGD."""
    wins = gating_wins(linear, best_gated)
    gain = (linear - best_gated) / linear
    if not wins.any():
        st.success("**Here gating never helps**: on every setting of this sweep the best weights are equal weights "
                   "(or gates cannot reach better ones), so linear attention is already as good as a GLA.",
                   icon=":material/balance:")
    else:
        best = int(np.argmax(gain))
        st.success(f"**Gating wins on {int(wins.sum())} of {len(x)} settings**, by up to {100 * gain[best]:.1f}% "
                   f"lower risk (at {x_title.split(' (')[0]} = {x[best]}). It wins when tasks differ in relevance and "
                   "the more relevant examples sit nearer the query; gates cannot give a far-away task more weight "
                   "than a near one.", icon=":material/balance:")
    above = (best_gated - optimal) > 1e-6 * linear
    if above.any():
        st.info(f"On {int(above.sum())} settings even the best gated model stays above optimal WPGD (the black "
                "line): there the optimal weights shrink toward the query, which gate products cannot do.")
    st.latex(r"\text{gating wins} \iff \min_{\omega \text{ reachable}} L(P^*(\omega), \omega)"
             r" < L(P^*(\mathbf{1}), \mathbf{1})")
