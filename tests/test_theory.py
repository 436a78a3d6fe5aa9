"""gla_core.theory against sampling, against docs/theory.md's own formulas, and against brute force.

Monte Carlo: prompts from the project's sampler (float64, explicit seeds); predictions are computed
here in NumPy straight from their definitions; each closed-form risk must lie within Z_MAX standard
errors of the sample mean of the squared error. Every other expected value is computed independently
in this file (docs/theory.md §6 formulas written out with n x n matrices, scipy's SLSQP on docs/theory.md §7's QP,
random search) — never copied from the code under test.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time

import numpy as np
import pytest
import torch
from scipy import optimize

from gla_core import theory
from gla_core.sampling import PromptSampler
from gla_core.spec import PromptSpec, preset_spec

MC_PROMPTS = 200_000
MC_CHUNK = 50_000
Z_MAX = 4.0


def make(**fields) -> PromptSpec:
    return PromptSpec.from_dict(fields)


# Small d and n keep sampling cheap; together they cover negative correlations, unequal n_k, K = 1,
# anisotropic features, per-coordinate correlations, a task_corr matrix and sigma = 0.
MC_SPECS = {
    "negative_unequal_anisotropic": dict(d=3, noise=0.5, feature_condition=4.0,
                                         tasks=[{"n": 4, "corr": 0.8}, {"n": 2, "corr": -0.5}, {"n": 5, "corr": 0.3}]),
    "single_task": dict(d=2, noise=0.3, tasks=[{"n": 6, "corr": 0.6}]),
    "per_coordinate": dict(d=3, noise=0.2, feature_condition=2.0,
                           tasks=[{"n": 3, "corr": [0.9, 0.0, -0.4]}, {"n": 5, "corr": [0.2, 0.7, 0.5]}]),
    "task_corr_noiseless": dict(d=2, noise=0.0, feature_condition=3.0, delimiter="shared",
                                task_corr=[[1.0, 0.3, 0.5], [0.3, 1.0, -0.2], [0.5, -0.2, 1.0]],
                                tasks=[{"n": 4}, {"n": 3}]),
    "isotropic_no_delimiters": dict(d=3, noise=0.1, delimiter="none",
                                    tasks=[{"n": 3, "corr": 0.2}, {"n": 4, "corr": -0.9}]),
}


# ---------------------------------------------------------------- predictions, straight from docs/theory.md §3
def predict_wpgd(batch, P, omega):
    """yhat = xq^T P X^T (omega ⊙ y)."""
    x, y, xq = batch
    return np.einsum("bc,ce,bie,i,bi->b", xq, P, x, omega, y)


def predict_gla(batch, omega, Pk, Pq):
    """yhat = sum_i y_i <omega_i ⊙ Pk x_i, Pq xq>, omega (n, m)."""
    x, y, xq = batch
    return np.einsum("bi,ia,bia,ba->b", y, omega, x @ Pk.T, xq @ Pq.T)


def predict_vector_wpgd(batch, P, omega):
    """yhat = sum_i y_i sum_c omega_ic x_i[c] (P^T xq)[c], omega (n, d)."""
    x, y, xq = batch
    return np.einsum("bi,ic,bic,bc->b", y, omega, x, xq @ P)


def monte_carlo_z(spec: PromptSpec, cases: dict, seed: int) -> dict:
    """z-score (sample mean - formula) / standard error of each case {name: (predict(batch), formula)}."""
    sampler = PromptSampler(spec)
    generator = torch.Generator().manual_seed(seed)
    sums = {name: np.zeros(2) for name in cases}
    for _ in range(MC_PROMPTS // MC_CHUNK):
        prompts = sampler.sample(MC_CHUNK, generator, dtype=torch.float64)
        batch = (prompts.x.numpy(), prompts.y.numpy(), prompts.xq.numpy())
        yq = prompts.yq.numpy()
        for name, (predict, _) in cases.items():
            loss = (yq - predict(batch)) ** 2
            sums[name] += loss.sum(), (loss ** 2).sum()
    z = {}
    for name, (_, formula) in cases.items():
        mean = sums[name][0] / MC_PROMPTS
        variance = sums[name][1] / MC_PROMPTS - mean ** 2
        z[name] = (mean - formula) / math.sqrt(variance / MC_PROMPTS)
    return z


def monte_carlo_cases(spec: PromptSpec, rng: np.random.Generator) -> dict:
    """Random predictors of every form (weights of both signs, full matrices) plus solve()'s answers."""
    n, d = spec.num_examples, spec.d
    scale = 1.0 / n
    omega = rng.normal(0.5, 1.0, n)
    P = scale * rng.normal(size=(d, d))
    P_star = theory.optimal_preconditioner(spec, omega)
    omega_vector = rng.normal(0.5, 1.0, (n, d))
    P_vector = scale * rng.normal(size=(d, d))
    m = d + 1
    omega_gla = rng.normal(0.5, 1.0, (n, m))
    Pk, Pq = rng.normal(size=(m, d)), scale * rng.normal(size=(m, d))
    cases = {
        "wpgd random P": (lambda b: predict_wpgd(b, P, omega), theory.risk(spec, P, omega)),
        "wpgd P*(omega)": (lambda b: predict_wpgd(b, P_star, omega), theory.risk_optimal_P(spec, omega)),
        "vector random P": (lambda b: predict_vector_wpgd(b, P_vector, omega_vector),
                            theory.risk(spec, P_vector, omega_vector)),
        "gla Pk, Pq": (lambda b: predict_gla(b, omega_gla, Pk, Pq), theory.risk_gla(spec, omega_gla, Pk, Pq)),
    }
    solved = theory.solve(spec)
    for name in ("optimal", "scalar_gla", "linear_attention"):
        w, P_s = np.array(solved[name]["omega"]), np.array(solved[name]["P"])
        cases[name] = (lambda b, w=w, P_s=P_s: predict_wpgd(b, P_s, w), solved[name]["risk"])
    for name in ("vector_gla", "optimal_vector"):
        w, P_s = np.array(solved[name]["omega"]), np.array(solved[name]["P"])
        cases[name] = (lambda b, w=w, P_s=P_s: predict_vector_wpgd(b, P_s, w), solved[name]["risk"])
    return cases


@pytest.mark.parametrize("name", list(MC_SPECS))
def test_risk_formulas_match_sampling(name):
    spec = make(**MC_SPECS[name])
    seed = list(MC_SPECS).index(name)
    z = monte_carlo_z(spec, monte_carlo_cases(spec, np.random.default_rng(100 + seed)), seed=seed)
    assert max(abs(v) for v in z.values()) < Z_MAX, z


# ---------------------------------------------------------------- docs/theory.md §6 written out with n x n matrices
def theory_section6(spec: PromptSpec):
    """Sigma, tau, r (n,), R (n, n) for coordinate-independent correlations."""
    sigma = np.diag(spec.feature_variances())
    tau = np.trace(sigma) + spec.noise ** 2
    task = spec.example_task
    K = spec.num_tasks
    if spec.task_corr is not None:
        full = np.array(spec.task_corr)
    else:
        rk = np.array([t.corr for t in spec.tasks] + [1.0])
        full = np.outer(rk, rk)
        np.fill_diagonal(full, 1.0)
    r = full[task, K]
    R = full[np.ix_(task, task)]
    np.fill_diagonal(R, 1.0)
    return sigma, tau, r, R


def section6_risk(spec, P, omega):
    sigma, tau, r, R = theory_section6(spec)
    norm2 = omega @ omega
    middle = (omega @ R @ omega + norm2) * sigma @ sigma + norm2 * tau * sigma
    return tau - 2 * (omega @ r) * np.trace(sigma @ P @ sigma) + np.trace(P.T @ sigma @ P @ middle)


def section6_preconditioner(spec, omega):
    sigma, tau, r, R = theory_section6(spec)
    norm2 = omega @ omega
    return (omega @ r) * np.linalg.inv((omega @ R @ omega + norm2) * sigma + norm2 * tau * np.eye(spec.d))


SECTION6_SPECS = [
    dict(d=4, noise=0.3, feature_condition=20.0, tasks=[{"n": 5, "corr": 0.7}, {"n": 3, "corr": -0.4}]),
    dict(d=3, noise=0.0, task_corr=[[1.0, 0.6, 0.2], [0.6, 1.0, 0.8], [0.2, 0.8, 1.0]], tasks=[{"n": 2}, {"n": 6}]),
    dict(d=5, noise=0.1, tasks=[{"n": 10, "corr": 0.2}, {"n": 10, "corr": 0.5}, {"n": 10, "corr": 0.9}]),
]


@pytest.mark.parametrize("fields", SECTION6_SPECS)
def test_risk_and_preconditioner_match_section6(fields):
    spec = make(**fields)
    rng = np.random.default_rng(1)
    for _ in range(5):
        omega = rng.normal(size=spec.num_examples)
        P = rng.normal(size=(spec.d, spec.d)) / spec.num_examples
        assert theory.risk(spec, P, omega) == pytest.approx(section6_risk(spec, P, omega), rel=1e-12)
        P_star = section6_preconditioner(spec, omega)
        np.testing.assert_allclose(theory.optimal_preconditioner(spec, omega), P_star, rtol=1e-12, atol=1e-15)
        assert theory.risk_optimal_P(spec, omega) == pytest.approx(section6_risk(spec, P_star, omega), rel=1e-12)


def test_isotropic_optimum_is_the_rayleigh_quotient():
    """Sigma = I: min_P L = d + sigma^2 - d (omega^T r)^2 / (omega^T A omega), omega* ∝ A^{-1} r, n x n."""
    spec = make(d=3, noise=0.4, tasks=[{"n": 4, "corr": -0.3}, {"n": 7, "corr": 0.6}, {"n": 2, "corr": 0.95}])
    _, _, r, R = theory_section6(spec)
    A = R + (spec.d + 1 + spec.noise ** 2) * np.eye(spec.num_examples)
    rng = np.random.default_rng(2)
    for omega in rng.normal(size=(5, spec.num_examples)):
        expected = spec.d + spec.noise ** 2 - spec.d * (omega @ r) ** 2 / (omega @ A @ omega)
        assert theory.risk_optimal_P(spec, omega) == pytest.approx(expected, rel=1e-12)
    omega_star = np.linalg.solve(A, r)
    best = theory.best_wpgd(spec)
    assert abs(cosine(best.omega, omega_star)) == pytest.approx(1.0, abs=1e-12)
    expected = spec.d + spec.noise ** 2 - spec.d * r @ omega_star
    assert best.risk == pytest.approx(expected, rel=1e-12)
    c = (omega_star @ r) / (omega_star @ A @ omega_star)
    np.testing.assert_allclose(theory.optimal_preconditioner(spec, omega_star), c * np.eye(spec.d), rtol=1e-12)


def cosine(a, b):
    a, b = np.ravel(a), np.ravel(b)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ---------------------------------------------------------------- optimality, scale invariance
ANISOTROPIC_PER_COORDINATE = dict(d=3, noise=0.2, feature_condition=5.0,
                                  tasks=[{"n": 4, "corr": [0.9, -0.2, 0.1]}, {"n": 6, "corr": [0.1, 0.8, 0.6]},
                                         {"n": 3, "corr": [0.5, 0.5, -0.7]}])


@pytest.mark.parametrize("vector", [False, True])
def test_optimal_preconditioner_beats_perturbations(vector):
    spec = make(**ANISOTROPIC_PER_COORDINATE)
    rng = np.random.default_rng(3)
    shape = (spec.num_examples, spec.d) if vector else (spec.num_examples,)
    omega = rng.normal(0.5, 1.0, shape)
    P_star = theory.optimal_preconditioner(spec, omega)
    best = theory.risk(spec, P_star, omega)
    assert best == pytest.approx(theory.risk_optimal_P(spec, omega), rel=1e-12)
    size = np.abs(P_star).max()
    for step in (1e-3, 1e-1, 1.0):
        for _ in range(20):
            assert theory.risk(spec, P_star + step * size * rng.normal(size=P_star.shape), omega) > best


@pytest.mark.parametrize("fields", [preset_spec("default").to_dict(), ANISOTROPIC_PER_COORDINATE,
                                    MC_SPECS["negative_unequal_anisotropic"]])
def test_optimal_weights_beat_random_directions(fields):
    spec = make(**fields)
    best = theory.best_wpgd(spec)
    best_vector = theory.best_vector_wpgd(spec)
    rng = np.random.default_rng(4)
    n, d = spec.num_examples, spec.d
    block_directions = np.repeat(rng.normal(size=(300, spec.num_tasks)), spec.n_k, axis=1)
    for omega in np.concatenate([rng.normal(size=(300, n)), block_directions,
                                 best.omega + 0.01 * rng.normal(size=(100, n))]):
        assert theory.risk_optimal_P(spec, omega) >= best.risk - 1e-12 * best.risk
    for _ in range(300):
        omega = rng.normal(size=(n, d)) if rng.random() < 0.5 else best_vector.omega + 0.01 * rng.normal(size=(n, d))
        assert theory.risk_optimal_P(spec, omega) >= best_vector.risk - 1e-12 * best_vector.risk
    assert best_vector.risk <= best.risk + 1e-12 * best.risk


def test_scale_invariance():
    spec = make(**ANISOTROPIC_PER_COORDINATE)
    rng = np.random.default_rng(5)
    n, d = spec.num_examples, spec.d
    omega, P = rng.normal(size=n), rng.normal(size=(d, d)) / n
    for c in (-3.0, 0.2, 7.0):
        assert theory.risk(spec, c * P, omega / c) == pytest.approx(theory.risk(spec, P, omega), rel=1e-12)
        assert theory.risk_optimal_P(spec, c * omega) == pytest.approx(theory.risk_optimal_P(spec, omega), rel=1e-12)
    omega_vector, a = rng.normal(size=(n, d)), rng.normal(size=d)  # one scale per feature (column of P)
    assert theory.risk(spec, P * a, omega_vector / a) == pytest.approx(theory.risk(spec, P, omega_vector), rel=1e-12)
    assert theory.risk_optimal_P(spec, omega_vector * a) == pytest.approx(theory.risk_optimal_P(spec, omega_vector), rel=1e-12)


def test_forms_agree_where_they_coincide():
    """Equal per-feature weights are scalar weights; scalar gates commute with Pk (M_i = omega_i Pq^T Pk)."""
    spec = make(**ANISOTROPIC_PER_COORDINATE)
    rng = np.random.default_rng(6)
    n, d = spec.num_examples, spec.d
    omega, P = rng.normal(size=n), rng.normal(size=(d, d)) / n
    expected = theory.risk(spec, P, omega)
    assert theory.risk(spec, P, np.tile(omega[:, None], (1, d))) == pytest.approx(expected, rel=1e-12)
    assert theory.risk_gla(spec, omega, P, np.eye(d)) == pytest.approx(expected, rel=1e-12)
    Q = rng.normal(size=(d, d))  # any factorisation P = Pq^T Pk: Pk = Q^T P, Pq = Q^-1
    assert theory.risk_gla(spec, omega, Q.T @ P, np.linalg.inv(Q)) == pytest.approx(expected, rel=1e-10)


def test_bad_shapes_are_rejected():
    spec = make(**ANISOTROPIC_PER_COORDINATE)
    with pytest.raises(ValueError, match="omega"):
        theory.risk(spec, np.eye(spec.d), np.ones(spec.num_examples + 1))
    with pytest.raises(ValueError, match="P must"):
        theory.risk(spec, np.eye(spec.d + 1), np.ones(spec.num_examples))


# ---------------------------------------------------------------- reachable sets
def random_monotone_blocks(rng, count, K):
    """Random points of the monotone cone 0 <= w_1 <= ... <= w_K, including its extreme rays."""
    u = rng.exponential(size=(count, K)) * (rng.random((count, K)) < 0.6)
    u[:, -1] += 1e-3
    return np.concatenate([np.cumsum(u, axis=1), np.triu(np.ones((K, K)))])


def block_risk(spec, w):
    """min_P L of block weights, through the per-example API (independent of the block form)."""
    return theory.risk_optimal_P(spec, np.repeat(w, spec.n_k))


TASK_SPECS = [
    preset_spec("default").to_dict(),
    preset_spec("far_relevant").to_dict(),
    dict(d=2, noise=0.5, tasks=[{"n": 5, "corr": -0.7}, {"n": 2, "corr": -0.2}, {"n": 4, "corr": -0.9}]),
    ANISOTROPIC_PER_COORDINATE,
    dict(d=6, noise=0.3, feature_condition=30.0,
         tasks=[{"n": n, "corr": c} for n, c in zip((9, 3, 14, 5, 7), (0.9, -0.3, 0.4, 0.95, 0.1))]),
]


@pytest.mark.parametrize("fields", TASK_SPECS)
def test_monotone_cone_solution(fields):
    spec = make(**fields)
    scalar = theory.best_scalar_gla(spec)
    optimal = theory.best_wpgd(spec, starts=scalar.block_weights)
    linear = theory.best_linear_attention(spec)
    w = scalar.normalised().block_weights
    assert np.all(w >= -1e-12) and np.all(np.diff(w) >= -1e-12) and w.max() == pytest.approx(1.0)
    assert scalar.risk == pytest.approx(block_risk(spec, scalar.block_weights), rel=1e-12)
    assert optimal.risk - 1e-12 <= scalar.risk <= linear.risk + 1e-12
    rng = np.random.default_rng(7)
    brute = min(block_risk(spec, w) for w in random_monotone_blocks(rng, 3000, spec.num_tasks))
    assert scalar.risk <= brute + 1e-10


@pytest.mark.parametrize("fields", TASK_SPECS[:3])
def test_monotone_cone_matches_theory_qp(fields):
    """docs/theory.md §7's QP, solved by SLSQP for both signs: min w^T (N C N + lambda N) w, (N r)^T w = ±1,
    0 <= w_1 <= ... <= w_K, lambda = d + 1 + sigma^2; risk = d + sigma^2 - d / (QP value)."""
    spec = make(**fields)
    K, N = spec.num_tasks, np.diag(spec.n_k.astype(float))
    rk = np.array([t.corr for t in spec.tasks])
    C = np.outer(rk, rk)
    np.fill_diagonal(C, 1.0)
    Q = N @ C @ N + (spec.d + 1 + spec.noise ** 2) * N
    constraints_monotone = [{"type": "ineq", "fun": lambda w: w[0]}] + [
        {"type": "ineq", "fun": lambda w, k=k: w[k + 1] - w[k]} for k in range(K - 1)]
    values = []
    for sign in (1.0, -1.0):
        constraints = constraints_monotone + [{"type": "eq", "fun": lambda w, s=sign: N @ rk @ w - s}]
        start = np.full(K, sign / (N @ rk).sum()) if abs((N @ rk).sum()) > 1e-9 else np.arange(1.0, K + 1)
        result = optimize.minimize(lambda w: w @ Q @ w, start, jac=lambda w: 2 * Q @ w, method="SLSQP",
                                   constraints=constraints, options={"ftol": 1e-14, "maxiter": 500})
        feasible = all(c["fun"](result.x) >= -1e-9 for c in constraints_monotone)
        if feasible and abs(constraints[-1]["fun"](result.x)) < 1e-9:  # SLSQP may stop at precision limits
            values.append(result.fun)
    expected = spec.d + spec.noise ** 2 - spec.d / min(values)
    assert theory.best_scalar_gla(spec).risk == pytest.approx(expected, rel=1e-8)


@pytest.mark.parametrize("fields", [preset_spec("default").to_dict(), TASK_SPECS[2],
                                    dict(d=2, noise=0.0, tasks=[{"n": 3, "corr": 0.1}, {"n": 8, "corr": 0.0},
                                                                {"n": 1, "corr": 0.99}, {"n": 4, "corr": -0.5}])])
def test_numeric_solvers_agree_with_closed_forms(fields):
    spec = make(**fields)
    closed, numeric = theory.best_wpgd(spec, "closed_form"), theory.best_wpgd(spec, "numeric")
    assert numeric.risk == pytest.approx(closed.risk, rel=1e-10)
    assert abs(cosine(numeric.omega, closed.omega)) == pytest.approx(1.0, abs=1e-8)
    exact, numeric = theory.best_scalar_gla(spec, "exact"), theory.best_scalar_gla(spec, "numeric")
    assert numeric.risk == pytest.approx(exact.risk, rel=1e-9)


def test_closed_forms_refuse_unlike_features():
    spec = make(**ANISOTROPIC_PER_COORDINATE)
    with pytest.raises(ValueError):
        theory.best_wpgd(spec, "closed_form")
    with pytest.raises(ValueError):
        theory.best_scalar_gla(spec, "exact")


def test_default_preset_gla_reaches_the_optimum():
    spec = preset_spec("default")
    _, _, r, R = theory_section6(spec)
    omega_star = np.linalg.solve(R + (spec.d + 1 + spec.noise ** 2) * np.eye(spec.num_examples), r)
    assert np.all(omega_star > 0) and np.all(np.diff(omega_star) >= -1e-12)  # monotone, independently
    solved = theory.solve(spec)
    assert solved["scalar_gla"]["risk"] == pytest.approx(solved["optimal"]["risk"], rel=1e-12)
    np.testing.assert_allclose(solved["scalar_gla"]["omega"], solved["optimal"]["omega"], atol=1e-10)
    assert solved["flags"]["scalar_reaches_optimum"]
    assert solved["vector_gla"]["risk"] == pytest.approx(solved["scalar_gla"]["risk"], rel=1e-12)


def test_far_relevant_task_costs_scalar_gating():
    spec = make(d=5, noise=0.1, tasks=[{"n": 10, "corr": 0.9}, {"n": 10, "corr": 0.0}])
    solved = theory.solve(spec)
    assert solved["scalar_gla"]["risk"] > solved["optimal"]["risk"] + 0.1
    assert not solved["flags"]["scalar_reaches_optimum"]
    assert any("gap" in note for note in solved["notes"])


@pytest.mark.parametrize("delimiter", ["task", "shared", "none"])
def test_vector_gating_wins_with_per_coordinate_relevance(delimiter):
    per_coordinate = make(d=4, noise=0.1, delimiter=delimiter,
                          tasks=[{"n": 12, "corr": [0.95, 0.95, 0.0, 0.0]}, {"n": 12, "corr": [0.0, 0.0, 0.9, 0.9]}])
    scalar = theory.best_scalar_gla(per_coordinate)
    vector = theory.best_vector_gla(per_coordinate)
    assert vector.risk < scalar.risk - 0.05
    assert vector.risk >= theory.best_vector_wpgd(per_coordinate).risk - 1e-12
    alike = make(d=4, noise=0.1, delimiter=delimiter, tasks=[{"n": 12, "corr": 0.3}, {"n": 5, "corr": 0.8}])
    assert theory.best_vector_gla(alike).risk == pytest.approx(theory.best_scalar_gla(alike).risk, rel=1e-12)


@pytest.mark.parametrize("delimiter", ["shared", "none"])
@pytest.mark.parametrize("feature_condition", [1.0, 8.0])
def test_geometric_families(delimiter, feature_condition):
    spec = make(d=3, noise=0.2, delimiter=delimiter, feature_condition=feature_condition,
                tasks=[{"n": 6, "corr": [0.3, 0.9, 0.0]}, {"n": 4, "corr": [0.9, -0.2, 0.5]}, {"n": 5, "corr": 0.6}])
    scalar = theory.best_scalar_gla(spec)
    assert 0 < scalar.gamma <= 1
    exponents = (np.arange(spec.num_examples)[::-1] if delimiter == "none"
                 else spec.num_tasks - 1 - spec.example_task)
    np.testing.assert_allclose(scalar.omega / scalar.omega.max(), scalar.gamma ** exponents, rtol=1e-9)
    linear = theory.best_linear_attention(spec).risk
    optimal = theory.solve(spec)["optimal"]["risk"]
    assert optimal - 1e-12 <= scalar.risk <= linear + 1e-12
    gammas = np.concatenate([np.linspace(1e-3, 1.0, 1500), 1 - np.geomspace(1e-6, 1e-2, 100)])
    brute = min(theory.risk_optimal_P(spec, g ** exponents) for g in gammas)
    assert scalar.risk <= brute + 1e-10
    vector = theory.best_vector_gla(spec)
    assert vector.risk <= scalar.risk + 1e-12
    for c in range(spec.d):  # each feature's decay is the best on a fine grid, the others held fixed
        for g in gammas[::10]:
            omega = vector.omega.copy()
            omega[:, c] = g ** exponents
            assert theory.risk_optimal_P(spec, omega) >= vector.risk - 1e-10


# ---------------------------------------------------------------- degenerate cases and solve()
def finite_json(solved) -> dict:
    return json.loads(json.dumps(solved, allow_nan=False))


@pytest.mark.parametrize("feature_condition", [1.0, 10.0])
def test_uncorrelated_tasks(feature_condition):
    spec = make(d=3, noise=0.5, feature_condition=feature_condition, tasks=[{"n": 4, "corr": 0.0}, {"n": 3, "corr": 0.0}])
    solved = finite_json(theory.solve(spec))
    tau = spec.d + 0.25  # tr Sigma = d (mean variance 1)
    for name in ("zero", "optimal", "linear_attention", "scalar_gla", "vector_gla", "optimal_vector"):
        assert solved[name]["risk"] == pytest.approx(tau, rel=1e-12)
    assert solved["flags"]["uncorrelated"] and solved["flags"]["unique"] is False
    assert any("not unique" in note for note in solved["notes"])
    assert np.all(np.array(solved["optimal"]["P"]) == 0)


def test_noiseless_and_single_task():
    spec = make(d=3, noise=0.0, feature_condition=4.0, tasks=[{"n": 7, "corr": [0.5, -0.8, 0.2]}])
    solved = finite_json(theory.solve(spec))
    assert solved["flags"]["noiseless"] and solved["flags"]["single_task"]
    risks = [solved[name]["risk"] for name in ("optimal", "linear_attention", "scalar_gla", "vector_gla",
                                               "optimal_vector")]
    assert risks == pytest.approx([risks[0]] * len(risks), rel=1e-12)
    assert risks[0] < spec.d
    np.testing.assert_allclose(solved["optimal"]["omega"], np.ones(7))


def test_solve_output_shapes_and_gauge():
    spec = make(**ANISOTROPIC_PER_COORDINATE)
    solved = finite_json(theory.solve(spec))
    n, d = spec.num_examples, spec.d
    assert np.all(np.array(solved["zero"]["omega"]) == 0) and np.all(np.array(solved["zero"]["P"]) == 0)
    assert solved["zero"]["risk"] == pytest.approx(d + spec.noise ** 2)
    for name in ("optimal", "linear_attention", "scalar_gla"):
        omega = np.array(solved[name]["omega"])
        assert omega.shape == (n,) and np.abs(omega).max() == pytest.approx(1.0) and omega.max() == pytest.approx(1.0)
        assert np.array(solved[name]["P"]).shape == (d, d)
        assert theory.risk(spec, np.array(solved[name]["P"]), omega) == pytest.approx(solved[name]["risk"], rel=1e-10)
    for name in ("vector_gla", "optimal_vector"):
        omega = np.array(solved[name]["omega"])
        assert omega.shape == (n, d)
        np.testing.assert_allclose(np.abs(omega).max(axis=0), 1.0)
        assert theory.risk(spec, np.array(solved[name]["P"]), omega) == pytest.approx(solved[name]["risk"], rel=1e-10)
    r = [solved[name]["risk"] for name in ("zero", "linear_attention", "scalar_gla", "vector_gla", "optimal_vector")]
    assert all(a >= b - 1e-12 for a, b in zip(r, r[1:]))
    assert solved["optimal_vector"]["risk"] <= solved["optimal"]["risk"] + 1e-12 <= solved["scalar_gla"]["risk"] + 2e-12


def test_solve_is_fast():
    default = preset_spec("default")
    theory.solve(default)
    start = time.perf_counter()
    theory.solve(default)
    assert time.perf_counter() - start < 0.5  # target 50 ms; generous for loaded test machines
    corr = np.cos(np.add.outer(np.arange(8), np.arange(16)) * 0.7)
    big = make(d=16, noise=0.1, feature_condition=50.0, delimiter="none",
               tasks=[{"n": 254, "corr": list(row)} for row in corr])
    for delimiter in ("task", "shared", "none"):
        start = time.perf_counter()
        theory.solve(dataclasses.replace(big, delimiter=delimiter))
        assert time.perf_counter() - start < 5.0  # target 1 s


# ---------------------------------------------------------------- landscape
@pytest.mark.parametrize("fields", [preset_spec("depth").to_dict(),
                                    dict(d=3, noise=0.2, tasks=[{"n": 6, "corr": -0.8}, {"n": 4, "corr": 0.5}])])
def test_two_task_landscape(fields):
    spec = make(**fields)
    data = theory.landscape_two_tasks(spec, num_angles=721, grid_size=61)
    grid = data["grid"]["risk"]
    center = 30
    for a in range(-15, 16):  # (w1, w2) and 2 (w1, w2) lie on one ray
        for b in range(-15, 16):
            if a or b:
                assert grid[center + 2 * a, center + 2 * b] == pytest.approx(grid[center + a, center + b], rel=1e-12)
    assert grid[center, center] == pytest.approx(data["zero_risk"])
    axis = data["grid"]["w"]
    for i, j in ((3, 50), (50, 3), (10, 41)):  # risk[i, j] sits at (w_1, w_2) = (w[j], w[i])
        assert grid[i, j] == pytest.approx(block_risk(spec, np.array([axis[j], axis[i]])), rel=1e-12)
    risk = data["angle"]["risk"][:-1]  # the last angle repeats the first line
    assert risk[0] == pytest.approx(data["angle"]["risk"][-1], rel=1e-12)
    minima = np.flatnonzero((risk < np.roll(risk, 1)) & (risk <= np.roll(risk, -1)))
    assert len(minima) == 1
    optimal = data["points"]["optimal"]
    step = math.pi / 720
    assert abs(data["angle"]["theta"][minima[0]] - optimal["theta"]) <= step * 1.01
    assert optimal["risk"] == pytest.approx(theory.best_wpgd(spec).risk, rel=1e-12)
    assert optimal["risk"] <= risk.min() + 1e-12
    monotone = data["points"]["monotone_best"]
    assert math.pi / 4 - 1e-12 <= monotone["theta"] <= math.pi / 2 + 1e-12
    assert monotone["risk"] == pytest.approx(theory.best_scalar_gla(spec).risk, rel=1e-12)
    assert data["points"]["linear_attention"]["theta"] == pytest.approx(math.pi / 4)


def test_three_task_landscape():
    spec = preset_spec("far_relevant")
    data = theory.landscape_three_tasks(spec, resolution=40)
    points = data["simplex"]["barycentric"]
    assert points.shape == (41 * 42 // 2, 3)
    np.testing.assert_allclose(points.sum(axis=1), 1.0)
    optimal = theory.best_wpgd(spec).risk
    assert data["simplex"]["risk"].min() >= optimal - 1e-12
    assert data["simplex"]["risk"].min() <= optimal + 0.01
    assert data["points"]["optimal"]["inside"] is True
    assert data["points"]["optimal"]["risk"] == pytest.approx(optimal, rel=1e-12)
    assert data["points"]["linear_attention"]["risk"] == pytest.approx(theory.best_linear_attention(spec).risk, rel=1e-12)
    monotone = np.array(data["points"]["monotone_best"]["w"])
    assert np.all(np.diff(monotone) >= -1e-12)
    assert data["points"]["monotone_best"]["risk"] == pytest.approx(theory.best_scalar_gla(spec).risk, rel=1e-12)
    cone = data["monotone_cone"]
    assert np.all(np.diff(cone, axis=1) >= 0) and np.allclose(cone.sum(axis=1), 1.0)


@pytest.mark.parametrize("solver, exact", [(theory.best_wpgd, "closed_form"), (theory.best_scalar_gla, "exact")])
def test_exact_methods_are_refused_where_features_differ_and_auto_falls_back(solver, exact):
    alike = PromptSpec.from_dict(dict(d=3, tasks=[{"n": 4, "corr": 0.3}, {"n": 4, "corr": 0.9}]))
    unalike = PromptSpec.from_dict({**alike.to_dict(), "feature_condition": 4.0})
    assert solver(alike, method=exact).risk == pytest.approx(solver(alike).risk, rel=1e-12)
    with pytest.raises(ValueError, match=f"method '{exact}' needs Sigma = c I"):
        solver(unalike, method=exact)
    assert np.isfinite(solver(unalike).risk)
    assert solver(unalike).risk == pytest.approx(solver(unalike, method="numeric").risk, rel=1e-9)
    with pytest.raises(ValueError, match="method must be 'auto'"):
        solver(alike, method="fastest")
