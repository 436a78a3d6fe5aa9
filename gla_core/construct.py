"""Build a GLA that computes a given WPGD algorithm (docs/theory.md §3–4).

Every layer gets Wk = [[Pk, 0], [0, 0]], Wq = [[Pq, 0], [0, 0]] (keys and queries read only the x
block) and Wv = -e_label e_label^T (values carry minus the label), so only the label slot ever
changes and the model's prediction -Z^L[query, label] is the WPGD prediction:

- one layer, scalar gates: xq^T P X^T (omega ⊙ y) with P = Pq^T Pk and omega the query's gate products;
- one layer, vector gates: sum_i y_i <omega_i ⊙ Pk x_i, Pq xq>;
- L layers: L steps of causal WPGD (`reference.wpgd_causal`).

`gla_from_wpgd` takes the gate parameters as given; `gla_from_block_weights` chooses them so that
a multitask prompt with task delimiters gets requested per-task weights.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .gla import GLAConfig, GLAModel
from .spec import PromptSpec

# Data and query tokens get gate sigmoid(DATA_GATE_BIAS) = 1 - 4.2e-18: every weight carries a factor
# (1 - 4.2e-18)^(tokens after it), within 1e-14 of 1 for the longest allowed prompt.
DATA_GATE_BIAS = 40.0


def _matrices(value, name: str, layers: int, shape: tuple[int, ...]) -> np.ndarray:
    array = np.asarray(value, dtype=float)
    if array.shape != (layers, *shape):
        raise ValueError(f"{name}: expected shape {(layers, *shape)} (one per layer), got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: must be finite")
    return array


def gla_from_wpgd(P: Sequence[np.ndarray] | np.ndarray, *, token_width: int, label_index: int,
                  gating: str = "none", gate_weight=None, gate_bias=None, Pq=None,
                  form: str = "auto") -> GLAModel:
    """A float64 GLAModel with one layer per preconditioner.

    P            (L, d, d) key preconditioners Pk_l (d = label_index); with Pq = I, P_l itself
    gating       "none" | "scalar" | "vector"
    gate_weight  (L, 1, D) scalar or (L, D, D) vector: the gate Linear weights Wg_l (D = token_width)
    gate_bias    (L, 1) scalar or (L, D) vector: the gate biases bg_l
    Pq           (L, d, d) query preconditioners; identity when None
    """
    d = label_index
    P = np.asarray(P, dtype=float)
    if P.ndim != 3:
        raise ValueError(f"P: expected shape (L, {d}, {d}) (one preconditioner per layer), got {P.shape}")
    layers = P.shape[0]
    config = GLAConfig(token_width=token_width, label_index=label_index, layers=layers, gating=gating, form=form)
    Pk = _matrices(P, "P", layers, (d, d))
    Pq = np.broadcast_to(np.eye(d), (layers, d, d)) if Pq is None else _matrices(Pq, "Pq", layers, (d, d))
    if gating == "none":
        if gate_weight is not None or gate_bias is not None:
            raise ValueError("gate_weight: must be None when gating is 'none'")
    else:
        gate_outputs = 1 if gating == "scalar" else token_width
        gate_weight = _matrices(gate_weight, "gate_weight", layers, (gate_outputs, token_width))
        gate_bias = _matrices(gate_bias, "gate_bias", layers, (gate_outputs,))

    model = GLAModel(config).double()
    label = label_index
    with torch.no_grad():
        for l, layer in enumerate(model.layers):
            for linear, block in ((layer.Wk, Pk[l]), (layer.Wq, Pq[l])):
                linear.weight.zero_()
                linear.weight[:d, :d] = torch.tensor(block)
            layer.Wv.weight.zero_()
            layer.Wv.weight[label, label] = -1.0
            if layer.Wg is not None:
                layer.Wg.weight.copy_(torch.tensor(gate_weight[l]))
                layer.Wg.bias.copy_(torch.tensor(gate_bias[l]))
    return model


def gla_from_block_weights(spec: PromptSpec, P: np.ndarray, block_weights: Sequence[float],
                           form: str = "auto") -> GLAModel:
    """One scalar-gated layer that predicts xq^T P X^T (omega ⊙ y) with omega_i = block_weights[task of i].

    Needs task delimiters. Data and query tokens get gates ~1 (bias DATA_GATE_BIAS, weights 0); the
    delimiter after task k gets gate w_k / w_{k+1} through its one-hot feature (the last one stays ~1),
    so the query sees task k through the gates of delimiters k..K: omega = w / w_K. The factor w_K
    moves into the preconditioner (Pk = w_K P). Reachable weights are positive and non-decreasing
    toward the query (docs/theory.md §7).
    """
    if spec.delimiter != "task":
        raise ValueError(f"spec: needs delimiter 'task' (one gate per task), got {spec.delimiter!r}")
    d, width, num_tasks = spec.d, spec.token_width, spec.num_tasks
    weights = np.asarray(block_weights, dtype=float)
    if weights.shape != (num_tasks,):
        raise ValueError(f"block_weights: expected {num_tasks} numbers (one per task), got shape {weights.shape}")
    if not np.all(np.isfinite(weights)) or np.any(weights <= 0):
        raise ValueError(f"block_weights: must be positive (a gate product is), got {weights.tolist()}")
    if np.any(np.diff(weights) < 0):
        raise ValueError("block_weights: must be non-decreasing toward the query (gates are at most 1), "
                         f"got {weights.tolist()}")
    P = np.asarray(P, dtype=float)
    if P.shape != (d, d):
        raise ValueError(f"P: expected shape ({d}, {d}), got {P.shape}")

    # Gate of delimiter k: ratio_k = w_k / w_{k+1} <= 1 (1 for the last). Its feature weight makes
    # bias + weight = logit(ratio_k); ratios that round to gates above the data gate stay at it.
    ratios = np.append(weights[:-1] / weights[1:], 1.0)
    with np.errstate(divide="ignore"):
        log_odds = np.log(ratios) - np.log1p(-ratios)          # +inf where the ratio is 1
    gate_weight = np.zeros((1, 1, width))
    gate_weight[0, 0, d + 1:] = np.minimum(log_odds, DATA_GATE_BIAS) - DATA_GATE_BIAS
    gate_bias = np.full((1, 1), DATA_GATE_BIAS)
    return gla_from_wpgd(weights[-1] * P[None], token_width=width, label_index=spec.label_index,
                         gating="scalar", gate_weight=gate_weight, gate_bias=gate_bias, form=form)

