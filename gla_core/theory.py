"""WPGD theory (docs/theory.md §6-7): closed-form population risk, the optimal preconditioner and weights,
the best weights each gated model can reach, and landscape data for the app. NumPy float64 only.

Notation. d features with diagonal covariance Sigma = diag(s) (spec.feature_variances()), label noise
sigma, tau = tr Sigma + sigma^2 (the risk of predicting 0). K tasks in prompt order with n_k examples;
coordinate c of the task vectors (beta_1[c], ..., beta_K[c], beta[c]) has correlation matrix
spec.coordinate_corr()[c] and coordinates are independent, so
    E[beta_k beta^T] = diag_c(r_{k,c}),   E[beta_k beta_l^T] = diag_c(C^c_{kl}),   C^c_{kk} = 1.

The general risk (derived here, checked against sampling in tests/test_theory.py). A one-layer GLA
predicts yhat = sum_i y_i <omega_i ⊙ Pk x_i, Pq xq> = xq^T sum_i M_i x_i y_i with M_i = Pq^T diag(omega_i) Pk.
With h = sum_i M_i x_i y_i, E[yq yhat] = E[beta^T Sigma h], E[yhat^2] = E[h^T Sigma h]; the Gaussian
fourth moment E[x x^T (x^T b)^2] = 2 Sigma b b^T Sigma + (b^T Sigma b) Sigma with E[beta_k beta_k^T] = I gives

    L = tau - 2 sum_i tr(Sigma M_i Sigma D_k(i)) + sum_ij tr(Sigma M_i Sigma D_k(i)k(j) Sigma M_j^T)
            + sum_i tr(Sigma M_i (Sigma^2 + tau Sigma) M_i^T),

which depends on the weights only through the task sums S_k = sum_{i in task k} omega_i and the Gram
matrix sum_i omega_i omega_i^T (so it costs O(n m^2), never O(n^2)).

Scalar WPGD (omega_i a number, M_i = omega_i P) and the vector-gated form with Pk = I, Pq = P^T
(M_i = P diag(omega_i), one weight sequence omega_{., c} per feature c) share one reduced form. Per
coordinate c let rho_c = sum_k r_{k,c} S_{k,c}, q_c = S_{.,c}^T C^c S_{.,c}, Q_c = sum_i omega_{i,c}^2 and
den_c = s_c q_c + (s_c + tau) Q_c. Then

    L(P, omega) = tau - 2 sum_c s_c^2 P_cc rho_c + sum_{a,c} s_a s_c den_c P_ac^2,

so the best preconditioner is diagonal, P*_cc = rho_c / den_c, and

    min_P L = tau - sum_c gain_c,   gain_c = s_c^2 rho_c^2 / den_c.

For Sigma = I and coordinate-independent correlations this is docs/theory.md §6's d + sigma^2 - d (omega^T r)^2 /
(omega^T A omega). Each gain_c is a Rayleigh quotient of the task sums; for fixed S the gain only grows
as Q shrinks, and Q is smallest when omega is constant within tasks, so every optimum over a set closed
under task averaging (all weights, the monotone cone) is constant within tasks: omega = w[k(i)], with
    gain_c = s_c^2 (b_c^T w)^2 / (w^T A_c w),   b_c = N r_c,   A_c = s_c N C^c N + (s_c + tau) N.

Vector gating: the gains of different coordinates use different weights and separate, so each
coordinate has its own Rayleigh quotient, maximised by w_c ∝ A_c^{-1} b_c = (s_c C^c N + (s_c + tau) I)^{-1}
r_c (the vector-WPGD optimum) or, for monotone gates, by the best point of the monotone cone (exact, by
enumerating the faces of the cone). When all coordinates are alike, scalar and vector coincide.
Scalar weights must serve every coordinate at once: sum_c gain_c is a sum of Rayleigh quotients, solved
in closed form when all coordinates are alike and numerically (multi-start BFGS) otherwise.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import optimize

from .spec import PromptSpec

# Numeric searches for sums of Rayleigh quotients start from this many best candidates.
MAX_STARTS = 4
# Geometric families gamma^e: the search runs over lambda = -log(gamma) on a log grid, then refines.
GEOMETRIC_GRID = 160
LAMBDA_MAX = 50.0          # gamma = e^-50: everything but the exponent-0 weight is gone
GOLDEN_STEPS = 60
# A weight vector is treated as sign-definite if its entries of the wrong sign are below this share.
SIGN_TOL = 1e-12


# ================================================================ solutions
@dataclass(frozen=True)
class Solution:
    """A weighting, its best preconditioner P = P*(omega) (d, d) and its risk L(P, omega).

    omega: (n,) one weight per in-context example (scalar WPGD / scalar gates), or (n, d) one weight per
    example and feature (vector gates, yhat = xq^T P sum_i y_i omega_i ⊙ x_i). block_weights: (K,) or
    (K, d) when omega is constant within tasks. gamma: the decay of a geometric family (a float, or (d,)
    for vector gates). note: how it was found, and any caveat.
    """

    risk: float
    omega: np.ndarray
    P: np.ndarray
    block_weights: np.ndarray | None = None
    gamma: float | np.ndarray | None = None
    note: str = ""

    def normalised(self) -> "Solution":
        """The same predictor in the gauge max |omega| = 1 with the largest entry +1 (per feature for
        vector weights): (P a, omega / a) predicts the same, so risk and gamma do not change."""
        scale = _signed_peak(self.omega)  # a number, or (d,) per feature
        return replace(self, omega=self.omega / scale, P=self.P * scale,
                       block_weights=None if self.block_weights is None else self.block_weights / scale)

    def to_dict(self) -> dict:
        """Plain JSON-ready data: risk, omega, P, and block_weights / gamma when defined."""
        out = {"risk": float(self.risk), "omega": self.omega.tolist(), "P": self.P.tolist()}
        if self.block_weights is not None:
            out["block_weights"] = self.block_weights.tolist()
        if self.gamma is not None:
            out["gamma"] = np.asarray(self.gamma, dtype=float).tolist()
        if self.note:
            out["note"] = self.note
        return out


def _signed_peak(omega: np.ndarray) -> float | np.ndarray:
    """The entry of largest magnitude (per column for 2-D weights); 1 where the weights are all zero."""
    columns = omega.reshape(len(omega), -1)
    peak = columns[np.abs(columns).argmax(axis=0), np.arange(columns.shape[1])]
    peak = np.where(peak == 0.0, 1.0, peak)
    return float(peak[0]) if omega.ndim == 1 else peak


# ================================================================ risk of given weights
def _task_statistics(spec: PromptSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """s (d,) feature variances, r (d, K) task-query correlations, C (d, K, K) task-task correlations, tau."""
    corr = spec.coordinate_corr()
    K = spec.num_tasks
    s = spec.feature_variances()
    return s, corr[:, :K, K], corr[:, :K, :K], float(s.sum() + spec.noise ** 2)


def _task_offsets(spec: PromptSpec) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(spec.n_k)[:-1]])


def _weights(spec: PromptSpec, omega, width: int) -> np.ndarray:
    """omega as (n, width): a scalar weight per example acts on every key coordinate."""
    omega = np.asarray(omega, dtype=float)
    n = spec.num_examples
    if omega.shape == (n,):
        return np.broadcast_to(omega[:, None], (n, width))
    if omega.shape == (n, width):
        return omega
    raise ValueError(f"omega must have shape ({n},) or ({n}, {width}), got {omega.shape}")


def risk_gla(spec: PromptSpec, omega, Pk, Pq) -> float:
    """Population risk E(yq - yhat)^2 of yhat = sum_i y_i <omega_i ⊙ Pk x_i, Pq xq> (a one-layer GLA).

    omega (n,) or (n, m); Pk, Pq (m, d). With V = Pq Sigma Pq^T, task sums S (K, m) and Gram G = Omega^T Omega:
        L = tau - 2 sum_{c,k,a} s_c^2 r_{k,c} S_{k,a} Pk_{a,c} Pq_{a,c}
              + sum_{a,b} V_ab sum_c s_c^2 Pk_{a,c} Pk_{b,c} (S^T C^c S)_{ab}
              + sum_{a,b} V_ab (Pk (Sigma^2 + tau Sigma) Pk^T)_ab G_ab
    (the module docstring derives it).
    """
    Pk, Pq = np.asarray(Pk, dtype=float), np.asarray(Pq, dtype=float)
    d = spec.d
    if Pk.ndim != 2 or Pk.shape[1] != d or Pq.shape != Pk.shape:
        raise ValueError(f"Pk and Pq must both have shape (m, {d}), got {Pk.shape} and {Pq.shape}")
    s, r, C, tau = _task_statistics(spec)
    omega = _weights(spec, omega, Pk.shape[0])
    S = np.add.reduceat(omega, _task_offsets(spec), axis=0)          # (K, m)
    gram = omega.T @ omega                                          # (m, m)
    V = (Pq * s) @ Pq.T
    cross = np.einsum("c,ck,ka,ac,ac->", s ** 2, r, S, Pk, Pq, optimize=True)
    task_pairs = np.einsum("ka,ckl,lb->cab", S, C, S, optimize=True)  # (d, m, m)
    quad_tasks = np.einsum("ab,c,ac,bc,cab->", V, s ** 2, Pk, Pk, task_pairs, optimize=True)
    quad_self = np.sum(V * ((Pk * (s ** 2 + tau * s)) @ Pk.T) * gram)
    return float(tau - 2.0 * cross + quad_tasks + quad_self)


def risk(spec: PromptSpec, P, omega) -> float:
    """Risk of one-step WPGD yhat = xq^T P X^T (omega ⊙ y) for omega (n,), or of its vector-gated form
    yhat = xq^T P sum_i y_i omega_i ⊙ x_i for omega (n, d) (risk_gla with Pk = I, Pq = P^T).

    docs/theory.md §6 is the case of coordinate-independent correlations R:
        L = tau - 2 (omega^T r) tr(Sigma P Sigma)
              + tr(P^T Sigma P [(omega^T R omega + |omega|^2) Sigma^2 + |omega|^2 tau Sigma]).
    """
    P = np.asarray(P, dtype=float)
    if P.shape != (spec.d, spec.d):
        raise ValueError(f"P must have shape ({spec.d}, {spec.d}), got {P.shape}")
    return risk_gla(spec, omega, np.eye(spec.d), P.T)


def _coordinate_moments(spec: PromptSpec, omega) -> tuple[np.ndarray, np.ndarray]:
    """Per feature c: task sums S (d, K) and squared norm Q (d,) of the weights acting on c."""
    omega = _weights(spec, omega, spec.d)
    return np.add.reduceat(omega, _task_offsets(spec), axis=0).T, (omega ** 2).sum(axis=0)


def _gain_terms(s, r, C, tau, S, Q) -> tuple[np.ndarray, np.ndarray]:
    """rho = r.S and den = s S^T C S + (s + tau) Q, broadcast over leading axes (den = 0 only for zero weights)."""
    rho = (r * S).sum(-1)
    den = s * np.einsum("...k,...kl,...l->...", S, C, S) + (s + tau) * Q
    return rho, den


def _safe_ratio(numerator, denominator):
    """numerator / denominator, 0 where the denominator vanishes (zero weights carry no signal)."""
    positive = denominator > 0
    return np.where(positive, numerator, 0.0) / np.where(positive, denominator, 1.0)


def optimal_preconditioner(spec: PromptSpec, omega) -> np.ndarray:
    """P*(omega) (d, d), diagonal: P*_cc = rho_c / (s_c q_c + (s_c + tau) Q_c) (module docstring).

    docs/theory.md §6's P* = (omega^T r) [(omega^T R omega + |omega|^2) Sigma + |omega|^2 tau I]^{-1} is the case of
    coordinate-independent correlations. Unique when every feature's weights are non-zero.
    """
    s, r, C, tau = _task_statistics(spec)
    rho, den = _gain_terms(s, r, C, tau, *_coordinate_moments(spec, omega))
    return np.diag(_safe_ratio(rho, den))


def risk_optimal_P(spec: PromptSpec, omega) -> float:
    """min_P L(P, omega) = tau - sum_c s_c^2 rho_c^2 / (s_c q_c + (s_c + tau) Q_c); scale invariant in omega
    (per feature for vector weights)."""
    s, r, C, tau = _task_statistics(spec)
    rho, den = _gain_terms(s, r, C, tau, *_coordinate_moments(spec, omega))
    return float(tau - np.sum(s ** 2 * _safe_ratio(rho ** 2, den)))


# ================================================================ the reduced problem
@dataclass(frozen=True)
class _Problem:
    """The P-optimised risk in task sums, with identical features merged into G groups.

    gain of group g for weights with task sums S (K,) and squared norm Q: s_g^2 (r_g.S)^2 / den_g;
    for block weights w (S = N w) it is s_g^2 (b_g.w)^2 / (w^T A_g w).
    """

    tau: float
    n_k: np.ndarray        # (K,)
    s: np.ndarray          # (G,)
    r: np.ndarray          # (G, K)
    C: np.ndarray          # (G, K, K)
    count: np.ndarray      # (G,) features per group
    group: np.ndarray      # (d,) group of each feature

    @property
    def b(self) -> np.ndarray:
        return self.r * self.n_k

    @property
    def A(self) -> np.ndarray:
        N = np.diag(self.n_k.astype(float))
        return self.s[:, None, None] * (N @ self.C @ N) + (self.s + self.tau)[:, None, None] * N

    @property
    def uncorrelated(self) -> bool:
        return not np.any(self.r)

    def gains(self, S: np.ndarray, Q: np.ndarray) -> np.ndarray:
        """(..., G) per-group gains for task sums S (..., K) and squared norms Q (...)."""
        rho, den = _gain_terms(self.s, self.r, self.C, self.tau, S[..., None, :], Q[..., None])
        return self.s ** 2 * _safe_ratio(rho ** 2, den)

    def block_gains(self, w: np.ndarray) -> np.ndarray:
        """(..., G) per-group gains of block weights w (..., K)."""
        return self.gains(w * self.n_k, (w ** 2 * self.n_k).sum(-1))

    def scalar_gain(self, w: np.ndarray) -> np.ndarray:
        """(...,) total gain sum_c gain_c of scalar block weights w (..., K); risk = tau - gain."""
        return self.block_gains(w) @ self.count


def _problem(spec: PromptSpec) -> _Problem:
    s, r, C, tau = _task_statistics(spec)
    rows = np.concatenate([s[:, None], r, C.reshape(spec.d, -1)], axis=1)
    _, first, group, count = np.unique(rows, axis=0, return_index=True, return_inverse=True, return_counts=True)
    return _Problem(tau=tau, n_k=spec.n_k.astype(float), s=s[first], r=r[first], C=C[first],
                    count=count.astype(float), group=group.reshape(-1))


def _rayleigh_optimum(problem: _Problem) -> np.ndarray:
    """(G, K) each group's unconstrained maximiser w_g = (s_g C_g N + (s_g + tau) I)^{-1} r_g (= A_g^{-1} b_g)."""
    K = len(problem.n_k)
    matrix = problem.s[:, None, None] * problem.C * problem.n_k + (problem.s + problem.tau)[:, None, None] * np.eye(K)
    return np.linalg.solve(matrix, problem.r[..., None])[..., 0]


def _monotone_cone_optimum(problem: _Problem) -> np.ndarray:
    """(G, K) each group's exact maximiser of (b.w)^2 / (w^T A w) over 0 <= w_1 <= ... <= w_K.

    With w = L u (L lower-triangular ones, u >= 0) the quotient is (c.u)^2 / (u^T M u), c = L^T b,
    M = L^T A L. Its maximum over the cone lies in the relative interior of some face {u_j = 0, j not in F},
    where stationarity gives u_F ∝ M_F^{-1} c_F and the value c_F^T M_F^{-1} c_F; the best face whose
    u_F has one sign is the global maximum (the sign is absorbed in P). 2^K - 1 faces, K <= 8.
    """
    G, K = problem.r.shape
    L = np.tril(np.ones((K, K)))
    M = L.T @ problem.A @ L
    c = problem.b @ L
    best_value = np.full(G, -np.inf)
    best_u = np.zeros((G, K))
    best_u[:, 0] = 1.0  # uniform weights: the fallback when no face carries signal (r = 0)
    for size in range(1, K + 1):
        for face in itertools.combinations(range(K), size):
            face = list(face)
            u = np.linalg.solve(M[:, face][:, :, face], c[:, face, None])[..., 0]
            value = (c[:, face] * u).sum(-1)
            u = u * np.where(u.sum(-1) < 0, -1.0, 1.0)[:, None]
            one_sign = (u >= -SIGN_TOL * np.abs(u).max(-1, keepdims=True)).all(-1)
            better = one_sign & (value > best_value) & (value > 0)
            best_value[better] = value[better]
            best_u[better] = 0.0
            best_u[np.ix_(better, face)] = np.clip(u[better], 0.0, None)
    return best_u @ L.T


def _maximise_scalar_gain(problem: _Problem, starts: np.ndarray, monotone: bool) -> np.ndarray:
    """Block weights w (K,) maximising sum_g count_g s_g^2 (b_g.w)^2 / (w^T A_g w), over all of R^K or over
    the monotone cone w = L u, u >= 0. The quotient is homogeneous of degree 0, so its gradient is
    orthogonal to w and (L-)BFGS keeps the scale; the best few starts are refined, the best result kept."""
    K = len(problem.n_k)
    A, b, weight = problem.A, problem.b, problem.count * problem.s ** 2
    L = np.tril(np.ones((K, K))) if monotone else np.eye(K)
    scale = max(float(weight @ (b * _rayleigh_optimum(problem)).sum(-1)), 1e-300)  # >= the maximum

    def objective(u):
        w = L @ u
        Aw = A @ w
        num, den = b @ w, Aw @ w
        if not np.all(den > 0):
            return 0.0, np.zeros(K)
        ratio = num / den
        value = weight @ (num * ratio)
        grad = 2.0 * (weight * ratio) @ b - 2.0 * (weight * ratio ** 2) @ Aw
        return -value / scale, -(L.T @ grad) / scale

    starts = starts[np.any(starts != 0.0, axis=1)]  # a feature group without signal proposes w = 0
    values = problem.scalar_gain(starts)
    best_w, best_value = starts[np.argmax(values)], values.max()
    for start in starts[np.argsort(-values)[:MAX_STARTS]]:
        u0 = np.linalg.solve(L, start)
        u0 = u0 / np.linalg.norm(u0)
        if monotone:
            result = optimize.minimize(objective, u0, jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * K,
                                       options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 500})
        else:
            result = optimize.minimize(objective, u0, jac=True, method="BFGS", options={"gtol": 1e-12, "maxiter": 500})
        w = L @ result.x
        value = problem.scalar_gain(w)
        if np.isfinite(value) and value > best_value:
            best_w, best_value = w, value
    return best_w


# ---------------------------------------------------------------- geometric families gamma^e
def _geometric_exponents(spec: PromptSpec, per_example: bool) -> np.ndarray:
    """Exponent of gamma for each example: n - i (no delimiters: one gate per token) or, per example,
    K - k of its task (shared delimiters: one gate per delimiter, example gates 1)."""
    if per_example:
        return np.arange(spec.num_examples)[::-1].astype(float)
    return (spec.num_tasks - 1 - spec.example_task).astype(float)


def _geometric_moments(spec: PromptSpec, exponents: np.ndarray, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Task sums (..., K) and squared norms (...) of omega_i = exp(-lam e_i) for an array of lam."""
    omega = np.exp(-lam[..., None] * exponents)
    return np.add.reduceat(omega, _task_offsets(spec), axis=-1), (omega ** 2).sum(-1)


def _golden_max(f, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Golden-section maximisation of f (maps x (G,) to (G,) values, one function per entry) on [lo, hi]."""
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = lo.astype(float), hi.astype(float)
    x1, x2 = b - ratio * (b - a), a + ratio * (b - a)
    f1, f2 = f(x1), f(x2)
    for _ in range(GOLDEN_STEPS):
        left = f1 >= f2  # the maximum lies in [a, x2]
        a, b = np.where(left, a, x1), np.where(left, x2, b)
        new = np.where(left, b - ratio * (b - a), a + ratio * (b - a))
        f_new = f(new)
        x1, x2, f1, f2 = (np.where(left, new, x2), np.where(left, x1, new),
                          np.where(left, f_new, f2), np.where(left, f1, f_new))
    return np.where(f1 >= f2, x1, x2)


def _best_decay(spec: PromptSpec, problem: _Problem, per_example: bool, per_group: bool) -> np.ndarray:
    """lambda = -log(gamma) >= 0 maximising the gain of omega_i = gamma^e_i: one lambda for the summed
    gain (scalar gates) or (G,) one per feature group (vector gates). A log grid, then golden section
    between the grid neighbours of the best grid point."""
    exponents = _geometric_exponents(spec, per_example)
    lam_min = 1e-4 / max(exponents.max(), 1.0)
    grid = np.concatenate([[0.0], np.geomspace(lam_min, LAMBDA_MAX, GEOMETRIC_GRID)])
    on_grid = problem.gains(*_geometric_moments(spec, exponents, grid))            # (grid, G)
    if not per_group:
        on_grid = (on_grid @ problem.count)[:, None]
    best = on_grid.argmax(axis=0)
    lo, hi = grid[np.maximum(best - 1, 0)], grid[np.minimum(best + 1, len(grid) - 1)]
    column = np.arange(on_grid.shape[1])

    def objective(lam):  # (columns,) -> (columns,)
        gains = problem.gains(*_geometric_moments(spec, exponents, lam))         # (columns, G)
        return gains[column, column] if per_group else gains @ problem.count

    lam = _golden_max(objective, lo, hi)
    return np.where(objective(lam) >= on_grid[best, column], lam, grid[best])


# ================================================================ best weights per model
def _finish(spec: PromptSpec, omega: np.ndarray, note: str, block_weights: np.ndarray | None = None,
            gamma=None) -> Solution:
    """A Solution with P = P*(omega) and its risk. Weights that vanish on a feature carry no signal
    there; they are replaced by uniform ones (P is 0 on that feature, the risk is unchanged)."""
    columns = omega.reshape(len(omega), -1)
    silent = ~np.any(columns, axis=0)
    if np.any(silent):
        columns = np.where(silent, 1.0, columns)
        omega = columns.reshape(omega.shape)
        if block_weights is not None:
            block_weights = np.where(silent, 1.0, block_weights.reshape(spec.num_tasks, -1)).reshape(block_weights.shape)
    return Solution(risk=risk_optimal_P(spec, omega), omega=omega, P=optimal_preconditioner(spec, omega),
                    block_weights=block_weights, gamma=gamma, note=note)


def _from_blocks(spec: PromptSpec, w: np.ndarray, note: str) -> Solution:
    """Block weights (K,) or (K, d) expanded to one weight per example."""
    return _finish(spec, np.repeat(w, spec.n_k, axis=0), note, block_weights=w)


def _per_feature(problem: _Problem, group_values: np.ndarray) -> np.ndarray:
    """Per-group columns (..., G) -> per-feature columns (..., d)."""
    return group_values[..., problem.group]


def best_zero(spec: PromptSpec) -> Solution:
    """The zero predictor: risk tr Sigma + sigma^2, omega = 0, P = 0."""
    return Solution(risk=_task_statistics(spec)[3], omega=np.zeros(spec.num_examples),
                    P=np.zeros((spec.d, spec.d)), note="predicts 0")


def best_linear_attention(spec: PromptSpec) -> Solution:
    """Linear attention: omega = 1 (every gate 1), P = P*(1)."""
    return _from_blocks(spec, np.ones(spec.num_tasks), "linear attention: equal weights, P optimised")


def best_wpgd(spec: PromptSpec, method: str = "auto", starts=None) -> Solution:
    """The optimal one-step WPGD weights omega* (scalar, constant within tasks) and P*(omega*).

    method "closed_form" (all features alike: Sigma = c I and coordinate-independent correlations):
    omega* ∝ (s C N + (s + tau) I)^{-1} r, for Sigma = I docs/theory.md §6.2's (C_K N + (d + 1 + sigma^2) I)^{-1} r_K,
    unique up to scale when r != 0. "numeric": maximise the sum of per-feature Rayleigh quotients by
    multi-start BFGS from the per-feature optima, uniform weights and `starts` (extra (m, K) block
    weights, e.g. reachable solutions, so the result is never worse than them). "auto" picks the first
    when it applies.
    """
    problem = _problem(spec)
    if _method(method, problem, exact="closed_form") == "closed_form":
        return _from_blocks(spec, _rayleigh_optimum(problem)[0],
                            "closed form: omega* ∝ (s C N + (s + tau) I)^-1 r")
    candidates = [np.ones((1, spec.num_tasks)), _rayleigh_optimum(problem)]
    if starts is not None:
        candidates.append(np.atleast_2d(np.asarray(starts, dtype=float)))
    w = _maximise_scalar_gain(problem, np.concatenate(candidates), monotone=False)
    return _from_blocks(spec, w, "numeric: sum of per-feature Rayleigh quotients, multi-start BFGS")


def _method(method: str, problem, exact: str) -> str:
    """A solver's method: 'auto' is `exact` when every feature is alike (Sigma = c I, the same
    correlations on every coordinate), else 'numeric'; `exact` is refused when they are not alike."""
    alike = len(problem.s) == 1
    if method == "auto":
        return exact if alike else "numeric"
    if method not in (exact, "numeric"):
        raise ValueError(f"method must be 'auto', '{exact}' or 'numeric', got {method!r}")
    if method == exact and not alike:
        raise ValueError(f"method '{exact}' needs Sigma = c I and the same correlations on every coordinate")
    return method


def best_vector_wpgd(spec: PromptSpec) -> Solution:
    """The optimal vector-weighted WPGD (one weight sequence per feature, not necessarily monotone):
    w_c ∝ (s_c C^c N + (s_c + tau) I)^{-1} r_c for each feature c, exact. Below best_wpgd when task
    relevance differs across features; equal to it when all features are alike."""
    problem = _problem(spec)
    return _from_blocks(spec, _per_feature(problem, _rayleigh_optimum(problem).T),
                        "closed form per feature: w_c ∝ (s_c C^c N + (s_c + tau) I)^-1 r_c")


def best_scalar_gla(spec: PromptSpec, method: str = "auto") -> Solution:
    """Best risk scalar gates can reach with data-independent gates, by delimiter kind (docs/theory.md §7):

    task:   monotone block weights 0 <= w_1 <= ... <= w_K (times a sign absorbed in P). All features alike:
            exact (faces of the cone, equivalent to the QP min w^T (N C N + lambda N) w s.t. (N r)^T w = 1,
            0 <= w_1 <= ... <= w_K, for both signs); otherwise L-BFGS-B over the cone from the per-feature
            cone optima. method "exact" / "numeric" forces one ("exact" needs all features alike);
            it only matters for task delimiters.
    shared: block weights gamma^(K-k), gamma in (0, 1] (docs/theory.md §7.3's one-parameter family: example gates 1;
            a constant example gate below 1 would add a decay within tasks, not searched here).
    none:   per-example weights gamma^(n-i), gamma in (0, 1] (the query's gate is a common factor).
    """
    problem = _problem(spec)
    if spec.delimiter == "task":
        starts = _monotone_cone_optimum(problem)
        if _method(method, problem, exact="exact") == "exact":
            return _from_blocks(spec, starts[0], "exact: best point of the monotone cone")
        starts = np.concatenate([np.ones((1, spec.num_tasks)), starts])
        return _from_blocks(spec, _maximise_scalar_gain(problem, starts, monotone=True),
                            "numeric: L-BFGS-B over the monotone cone")
    return _geometric_solution(spec, float(_best_decay(spec, problem, spec.delimiter == "none", False)[0]))


def _geometric_solution(spec: PromptSpec, lam) -> Solution:
    """omega_i = gamma^e_i with gamma = exp(-lam): a float (scalar gates) or (d,) per feature."""
    per_example = spec.delimiter == "none"
    exponents = _geometric_exponents(spec, per_example)
    lam = np.asarray(lam, dtype=float)
    omega = np.exp(-np.multiply.outer(exponents, lam))  # (n,) or (n, d)
    gamma = float(np.exp(-lam)) if lam.ndim == 0 else np.exp(-lam)
    kind = "gamma^(n-i) per example (no delimiters)" if per_example else "gamma^(K-k) per task (shared delimiters)"
    blocks = None if per_example else omega[_task_offsets(spec)]
    return _finish(spec, omega, f"geometric weights {kind}, gamma searched in (0, 1]", block_weights=blocks, gamma=gamma)


def best_vector_gla(spec: PromptSpec, scalar: Solution | None = None) -> Solution:
    """Best risk vector gates can reach: the scalar family of best_scalar_gla, chosen separately for every
    key feature (the gains separate across features). Task delimiters: each feature's exact monotone-cone
    optimum. Shared / none: each feature's own gamma_c, never worse than the scalar gamma (`scalar`, the
    best_scalar_gla solution, is computed when not given). Equal to the scalar result when all features
    are alike; strictly better when task relevance differs across features. The key map is Pk = I (gates
    act on the features themselves, where Sigma is diagonal and relevance is defined); key maps that mix
    features are covered by risk_gla but not searched."""
    problem = _problem(spec)
    if spec.delimiter == "task":
        w = _per_feature(problem, _monotone_cone_optimum(problem).T)
        return _from_blocks(spec, w, "exact per feature: best point of each feature's monotone cone")
    lam = _best_decay(spec, problem, spec.delimiter == "none", True)
    scalar = best_scalar_gla(spec) if scalar is None else scalar
    exponents = _geometric_exponents(spec, spec.delimiter == "none")
    scalar_lam = np.full_like(lam, -math.log(scalar.gamma))
    own = problem.gains(*_geometric_moments(spec, exponents, lam))
    shared = problem.gains(*_geometric_moments(spec, exponents, scalar_lam))
    column = np.arange(len(lam))
    lam = np.where(own[column, column] >= shared[column, column], lam, scalar_lam)
    return _geometric_solution(spec, _per_feature(problem, lam))


# ================================================================ solve
def solve(spec: PromptSpec) -> dict:
    """Every model's best risk, weights and preconditioner, as plain JSON-ready data.

    Keys zero, optimal (optimal scalar WPGD), linear_attention, scalar_gla, vector_gla (best reachable by
    scalar / vector gates with this spec's delimiters) and optimal_vector (optimal per-feature WPGD);
    each {"risk", "omega", "P", ...} from Solution.to_dict in the gauge max |omega| = 1 (per feature for
    vector weights), omega in prompt order, delimiters excluded. "flags" and "notes" describe degenerate
    cases: uncorrelated (r = 0: every weighting has risk tr Sigma + sigma^2, no unique optimum), noiseless,
    single_task, closed_form, unique (True / False / None = not established), scalar_reaches_optimum (scalar
    gates reach the optimal WPGD risk).
    """
    problem = _problem(spec)
    linear = best_linear_attention(spec)
    scalar = best_scalar_gla(spec)
    vector = best_vector_gla(spec, scalar)
    # The task averages of reachable weights are WPGD weights at least as good; starting the numeric
    # search there keeps optimal <= scalar_gla even where the search has several local optima.
    optimal = best_wpgd(spec, starts=np.add.reduceat(scalar.omega, _task_offsets(spec)) / spec.n_k)
    optimal_vector = best_vector_wpgd(spec)
    tau = problem.tau
    tolerance = 1e-9 * tau

    closed_form = len(problem.s) == 1
    flags = {
        "uncorrelated": problem.uncorrelated,
        "noiseless": spec.noise == 0.0,
        "single_task": spec.num_tasks == 1,
        "closed_form": closed_form,
        "unique": False if problem.uncorrelated else (True if closed_form or spec.num_tasks == 1 else None),
        "scalar_reaches_optimum": scalar.risk <= optimal.risk + tolerance,
    }
    notes = []
    if flags["uncorrelated"]:
        notes.append("No in-context task correlates with the query task (r = 0): every weighting has risk "
                     f"tr Sigma + sigma^2 = {tau:.6g}, P* = 0, and the optimal weights are not unique.")
    if flags["noiseless"]:
        notes.append("sigma = 0: the labels are noise-free; the risk formulas hold unchanged.")
    if flags["single_task"]:
        notes.append("One task: uniform weights are optimal and every model reaches them.")
    if not closed_form and not flags["uncorrelated"]:
        notes.append("Features differ (anisotropic Sigma or per-coordinate correlations): the optimal scalar "
                     "weights are found numerically; uniqueness up to scale is not established.")
    silent = [int(c) for c in np.flatnonzero(_per_feature(problem, ~np.any(problem.r, axis=1)))]
    if silent and not flags["uncorrelated"]:
        notes.append(f"Features {silent} are uncorrelated with the query task: their weights do not matter (P = 0 there).")
    if not flags["scalar_reaches_optimum"]:
        notes.append(f"Scalar gating cannot reach the optimal weights: gap {scalar.risk - optimal.risk:.4g}.")

    solutions = {"zero": best_zero(spec), "optimal": optimal, "linear_attention": linear,
                 "scalar_gla": scalar, "vector_gla": vector, "optimal_vector": optimal_vector}
    out = {name: solution.normalised().to_dict() for name, solution in solutions.items()}
    out["flags"] = flags
    out["notes"] = notes
    return out


# ================================================================ landscape data
def risk_of_task_weights(spec: PromptSpec, w) -> np.ndarray:
    """min_P L for scalar weights constant within tasks, w (..., K) -> (...,); tau at w = 0."""
    problem = _problem(spec)
    return problem.tau - problem.scalar_gain(np.asarray(w, dtype=float))


def _point(spec: PromptSpec, w: np.ndarray, **where) -> dict:
    return {"w": np.asarray(w, dtype=float).tolist(), "risk": float(risk_of_task_weights(spec, w)), **where}


def _fold_angle(w: np.ndarray) -> float:
    """Angle of the line through w, in (-pi/2, pi/2] (w and -w give the same risk, P's sign absorbing it)."""
    theta = math.atan2(w[1], w[0])
    if theta > math.pi / 2:
        theta -= math.pi
    elif theta <= -math.pi / 2:
        theta += math.pi
    return theta


def landscape_two_tasks(spec: PromptSpec, num_angles: int = 361, grid_size: int = 61) -> dict:
    """K = 2 landscape of min_P L over task weights (w_1, w_2).

    angle: theta (num_angles,) over [-pi/2, pi/2] (each line through 0 once: a ray and its negative give
    the same risk, P's sign absorbing it) and risk (num_angles,) along (cos theta, sin theta).
    grid: w (grid_size,) on [-1, 1] and risk (grid_size, grid_size), risk[i, j] at (w_1, w_2) = (w[j], w[i]),
    constant along every ray (tau at the origin).
    points: optimal, linear_attention (theta = pi/4), monotone_best, each {"w", "risk", "theta"};
    monotone_cone: the reachable directions of scalar gates, theta in [pi/4, pi/2]. zero_risk: tau.
    """
    if spec.num_tasks != 2:
        raise ValueError(f"landscape_two_tasks needs K = 2 tasks, got {spec.num_tasks}")
    theta = np.linspace(-math.pi / 2, math.pi / 2, num_angles)
    axis = np.linspace(-1.0, 1.0, grid_size)
    w1, w2 = np.meshgrid(axis, axis)
    optimal = best_wpgd(spec).block_weights
    monotone = _best_monotone_blocks(spec)
    points = {name: _point(spec, w, theta=_fold_angle(w)) for name, w in
              (("optimal", optimal), ("linear_attention", np.ones(2)), ("monotone_best", monotone))}
    return {"angle": {"theta": theta, "risk": risk_of_task_weights(spec, np.stack([np.cos(theta), np.sin(theta)], -1))},
            "grid": {"w": axis, "risk": risk_of_task_weights(spec, np.stack([w1, w2], -1))},
            "points": points,
            "monotone_cone": {"theta": [math.pi / 4, math.pi / 2]},
            "zero_risk": _problem(spec).tau}


def _best_monotone_blocks(spec: PromptSpec) -> np.ndarray:
    """Best block weights of the monotone cone, whatever the spec's delimiter kind."""
    return best_scalar_gla(replace(spec, delimiter="task")).block_weights


def landscape_three_tasks(spec: PromptSpec, resolution: int = 40) -> dict:
    """K = 3 landscape of min_P L over the simplex of non-negative task weights (scale is irrelevant).

    simplex: barycentric (m, 3) points w with w_1 + w_2 + w_3 = 1 on a grid of step 1/resolution, and
    risk (m,). points: optimal (its barycentric coordinates, sign chosen so they sum to 1; "inside" is
    False when omega* has mixed signs, or None when it is parallel to the simplex), linear_attention
    (1/3, 1/3, 1/3), monotone_best. monotone_cone: vertices of the reachable region w_1 <= w_2 <= w_3
    on the simplex. zero_risk: tau.
    """
    if spec.num_tasks != 3:
        raise ValueError(f"landscape_three_tasks needs K = 3 tasks, got {spec.num_tasks}")
    i, j = np.meshgrid(np.arange(resolution + 1), np.arange(resolution + 1), indexing="ij")
    keep = i + j <= resolution
    barycentric = np.stack([i[keep], j[keep], resolution - i[keep] - j[keep]], -1) / resolution

    optimal = best_wpgd(spec).block_weights
    total = optimal.sum()
    if abs(total) > 1e-12 * np.abs(optimal).max():
        optimal_point = _point(spec, optimal / total, inside=bool(np.all(optimal / total >= 0)))
    else:
        optimal_point = _point(spec, optimal / np.abs(optimal).max(), inside=None)
    monotone = _best_monotone_blocks(spec)
    return {"simplex": {"barycentric": barycentric, "risk": risk_of_task_weights(spec, barycentric)},
            "points": {"optimal": optimal_point,
                       "linear_attention": _point(spec, np.full(3, 1 / 3)),
                       "monotone_best": _point(spec, monotone / monotone.sum())},
            "monotone_cone": np.array([[1 / 3, 1 / 3, 1 / 3], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]]),
            "zero_risk": _problem(spec).tau}
