"""Slow, obvious implementations that the fast code is tested against.

Two things live here:

- `gla_reference`: the GLA recurrence of docs/theory.md §2 as a loop over tokens, one state update at a time.
  It is differentiable (plain torch ops), so gradients of the fast forms can be compared with it.
  Run it in float64 when it serves as ground truth.
- the WPGD algorithms of docs/theory.md §3–4 in NumPy: one step with scalar weights, one step with
  per-coordinate weights, and L steps of causal WPGD on a whole token sequence.

Nothing here is clever on purpose: each line should be checkable against the formula it names.
"""
from __future__ import annotations

import numpy as np
import torch


def gla_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                  gate_log: torch.Tensor | None) -> torch.Tensor:
    """Gated linear attention, one token at a time.

    q, k, v:  (B, T, D) queries, keys, values
    gate_log: None      no gating, G_t = 1 (linear attention)
              (B, T)    scalar gates, G_t = g_t 1 1^T
              (B, T, D) vector gates, G_t = 1 g_t^T: one decay per KEY coordinate
    returns   (B, T, D) outputs o_t = S_t q_t, where S_t = G_t ⊙ S_{t-1} + v_t k_t^T and S_0 = 0.
    """
    batch, num_tokens, width = q.shape
    # 1. the state: rows index value coordinates, columns index key coordinates
    state = q.new_zeros(batch, v.shape[-1], width)
    outputs = []
    for t in range(num_tokens):
        # 2. decay the old state with this token's gate
        if gate_log is not None:
            gate = torch.exp(gate_log[:, t])
            if gate.dim() == 1:
                state = gate[:, None, None] * state    # scalar: the whole state
            else:
                state = gate[:, None, :] * state       # vector: column c (key coordinate c) by g_t[c]
        # 3. write the outer product v_t k_t^T
        state = state + v[:, t, :, None] * k[:, t, None, :]
        # 4. read with the query
        outputs.append(torch.einsum("bvk,bk->bv", state, q[:, t]))
    return torch.stack(outputs, dim=1)


def wpgd_one_step(x: np.ndarray, y: np.ndarray, xq: np.ndarray, P: np.ndarray,
                  omega: np.ndarray) -> np.ndarray:
    """One step of weighted preconditioned gradient descent from w = 0 (docs/theory.md §3).

    x (..., n, d) examples, y (..., n) labels, xq (..., d) query, P (d, d) or (..., d, d)
    preconditioner, omega (..., n) weights. Returns (...,) predictions

        yhat = xq^T P X^T (omega ⊙ y).
    """
    # 1. the weighted gradient at w = 0, negated: X^T (omega ⊙ y)
    gradient = np.einsum("...nj,...n->...j", x, omega * y)
    # 2. the step w_1 = P X^T (omega ⊙ y)
    w_1 = np.einsum("...ij,...j->...i", P, gradient)
    # 3. predict at the query
    return np.einsum("...i,...i->...", xq, w_1)


def wpgd_one_step_vector(x: np.ndarray, y: np.ndarray, xq: np.ndarray, Pk: np.ndarray,
                         Pq: np.ndarray, omega: np.ndarray) -> np.ndarray:
    """One WPGD step with per-coordinate weights, the vector-gated form of docs/theory.md §3.

    x (..., n, d), y (..., n), xq (..., d), Pk and Pq (d, d) or (..., d, d), omega (..., n, d):
    omega[i, c] weights example i on coordinate c of the preconditioned key Pk x_i. Returns (...,)

        yhat = sum_i y_i <omega_i ⊙ Pk x_i, Pq xq>.
    """
    # 1. preconditioned keys Pk x_i (..., n, d) and query Pq xq (..., d)
    keys = np.einsum("...cj,...nj->...nc", Pk, x)
    query = np.einsum("...cj,...j->...c", Pq, xq)
    # 2. weight each key coordinate, take the inner product with the query, sum over examples
    return np.einsum("...n,...nc,...c->...", y, omega * keys, query)


def wpgd_causal(x: np.ndarray, y: np.ndarray, P: np.ndarray, omega: np.ndarray,
                Pq: np.ndarray | None = None) -> np.ndarray:
    """L steps of causal WPGD on a whole token sequence (docs/theory.md §4).

    x      (..., T, d)   the x part of every token (0 for delimiters)
    y      (..., T)      labels, 0 at the query (last) and at delimiters
    P      (L, d, d)     per-layer preconditioners P_l (with Pq: the key preconditioners Pk_l)
    omega  (L, ..., T, T) per-layer weights omega^l_{t,s} (only s <= t is read), or
           (L, ..., T, T, d) one weight per coordinate of the preconditioned key
    Pq     (L, d, d)     per-layer query preconditioners; identity when None
    returns (...,) the prediction -y_query^(L), where layer l updates every position t by

        y_t^(l+1) = y_t^(l) - sum_{s<=t} y_s^(l) <omega^l_{t,s} ⊙ P_l x_s, Pq_l x_t>

    which for scalar weights and Pq = I is y_t^(l) - x_t^T P_l sum_{s<=t} omega^l_{t,s} x_s y_s^(l).
    """
    num_tokens = x.shape[-2]
    residual = np.array(y, dtype=float)  # y^(0)
    for layer in range(len(P)):
        # 1. preconditioned keys and queries of every token
        keys = np.einsum("cj,...tj->...tc", P[layer], x)
        query_matrix = np.eye(x.shape[-1]) if Pq is None else Pq[layer]
        queries = np.einsum("cj,...tj->...tc", query_matrix, x)
        weights = omega[layer]
        if weights.ndim == residual.ndim + 1:   # scalar weights: the same on every coordinate
            weights = weights[..., None]
        # 2. every position takes its own causal step, reading the residuals of layer l
        updated = residual.copy()
        for t in range(num_tokens):
            for s in range(t + 1):
                inner = np.einsum("...c,...c->...", weights[..., t, s, :] * keys[..., s, :], queries[..., t, :])
                updated[..., t] -= residual[..., s] * inner
        residual = updated
    # 3. the construction writes minus the prediction into the query's label slot
    return -residual[..., -1]
