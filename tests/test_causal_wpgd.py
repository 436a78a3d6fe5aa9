"""The L-step causal WPGD target: its forward pass against the NumPy reference and the constructed GLA,
depth 1 against the closed-form theory, and the Monte-Carlo estimate against fresh prompts."""
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gla_core import causal_wpgd, theory
from gla_core.reference import wpgd_causal
from gla_core.sampling import DELIMITER, EXAMPLE, PromptSampler, layout
from gla_core.spec import PromptSpec, SpecError, list_presets, preset_spec

REPO = Path(__file__).resolve().parent.parent
SMALL = {"d": 2, "noise": 0.1, "delimiter": "task", "tasks": [{"n": 4, "corr": 0.3}, {"n": 4, "corr": 0.9}]}
SMALL_SIZES = (2 ** 16, 1024, 2 ** 14)   # fit at depth 1 (cheap: the query's row alone), fit deeper, evaluation


@pytest.fixture(scope="module")
def small_targets() -> list[dict]:
    return causal_wpgd.compute_targets(PromptSpec.from_dict(SMALL), 2, "scalar", random_starts=0, sizes=SMALL_SIZES)


@pytest.fixture(scope="module")
def depth_targets() -> list[dict]:
    return causal_wpgd.causal_wpgd_targets(preset_spec("depth"), 4)


def coordinate_major(prompts) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return prompts.x.permute(2, 1, 0), prompts.y.T, prompts.xq.T


def token_log_gates(spec: PromptSpec, lam: np.ndarray) -> np.ndarray:
    """(T,) or (T, d) log gate of every token, read off the layout: examples and the query share
    lam[0], the delimiter after task k has lam[1 + k] (task) or lam[1] (shared)."""
    prompt = layout(spec)
    rows = [0 if kind != DELIMITER else (1 + task if spec.delimiter == "task" else 1)
            for kind, task in zip(prompt.kind, prompt.task)]
    return -np.asarray(lam)[rows]


def explicit_weights(log_gates: np.ndarray) -> np.ndarray:
    """omega[t, s] = prod_{m=s+1..t} g_m for s <= t, else 0, by a double loop."""
    T = len(log_gates)
    omega = np.zeros((T, T) + log_gates.shape[1:])
    for t in range(T):
        for s in range(t + 1):
            omega[t, s] = np.exp(log_gates[s + 1:t + 1].sum(0))
    return omega


def random_layers(spec: PromptSpec, gating: str, layers: int, rng: np.random.Generator) -> list:
    d, kinds = spec.d, len(causal_wpgd.gate_kinds(spec).names)
    out = []
    for _ in range(layers):
        lam_shape = (kinds, d) if gating == "vector" else (kinds,)
        lam = np.zeros(lam_shape) if gating == "none" else rng.uniform(0.0, 2.0, lam_shape)
        Pq = torch.tensor(np.eye(d) + 0.3 * rng.standard_normal((d, d))) if gating == "vector" else None
        out.append(causal_wpgd.Layer(Pk=torch.tensor(0.3 * rng.standard_normal((d, d))), Pq=Pq, lam=torch.tensor(lam)))
    return out


# ---------------------------------------------------------------- the forward pass
@pytest.mark.parametrize("gating, delimiter", [("scalar", "task"), ("scalar", "shared"), ("scalar", "none"),
                                               ("vector", "task"), ("vector", "shared"), ("none", "task")])
def test_prediction_equals_the_reference_and_the_constructed_gla(gating: str, delimiter: str):
    spec = PromptSpec.from_dict({**SMALL, "d": 3, "delimiter": delimiter})
    layers = random_layers(spec, gating, 3, np.random.default_rng(0))
    prompts = PromptSampler(spec).sample(6, torch.Generator().manual_seed(1), torch.float64)
    kinds = causal_wpgd.gate_kinds(spec)
    ours = causal_wpgd.predict(layers, kinds, *coordinate_major(prompts)).numpy()

    d = spec.d
    omega = np.stack([explicit_weights(token_log_gates(spec, layer.lam.numpy())) for layer in layers])
    omega = np.broadcast_to(omega[:, None], (3, 6) + omega.shape[1:])
    Pk, Pq = (np.stack(matrices) for matrices in zip(*(layer.matrices() for layer in layers)))
    tokens = prompts.tokens.numpy()
    reference = wpgd_causal(tokens[..., :d], tokens[..., d], Pk, omega, Pq)
    np.testing.assert_allclose(ours, reference, rtol=1e-10, atol=1e-12)

    target = {"gate_kinds": list(kinds.names), **causal_wpgd._layers_to_dict(layers, kinds)}
    with torch.no_grad():
        gla = causal_wpgd.gla_model(spec, target, gating)(prompts.tokens).numpy()
    np.testing.assert_allclose(gla, reference, rtol=1e-9, atol=1e-12)


def test_query_weights_are_the_gate_products_after_each_example():
    spec = PromptSpec.from_dict(SMALL)
    lam = np.array([0.1, 0.7, 0.3])
    log_gates = token_log_gates(spec, lam)
    examples = layout(spec).kind == EXAMPLE
    expected = explicit_weights(log_gates)[-1][examples]
    np.testing.assert_allclose(causal_wpgd._query_weights(causal_wpgd.gate_kinds(spec), lam),
                               expected / expected.max(), rtol=1e-12)


# ---------------------------------------------------------------- the targets
def exact_one_layer_risk(spec: PromptSpec, target: dict) -> float:
    """The closed-form risk (theory.risk_gla) of a depth-1 target's own parameters."""
    (layer,) = causal_wpgd.layers_from_target(target)
    examples = layout(spec).kind == EXAMPLE
    omega = explicit_weights(token_log_gates(spec, layer.lam.numpy()))[-1][examples]
    Pk, Pq = layer.matrices()
    return theory.risk_gla(spec, omega, Pk, Pq)


@pytest.mark.parametrize("which", ["small", "depth"])
def test_one_layer_is_the_best_one_step_scalar_gla(which, request):
    spec = PromptSpec.from_dict(SMALL) if which == "small" else preset_spec("depth")
    target = request.getfixturevalue(f"{which}_targets")[0]
    best = theory.best_scalar_gla(spec).risk
    exact = exact_one_layer_risk(spec, target)
    # the sampled estimate of these parameters agrees with their exact risk ...
    assert abs(target["risk"] - exact) <= 4 * target["risk_se"]
    # ... which the fit brings to the best one-step risk, within two standard errors (the depth preset:
    # 1.0e-4 above it, for a standard error of 1.5e-4)
    assert best - 1e-9 <= exact <= best + 2 * target["risk_se"]
    assert abs(target["risk"] - best) <= 4 * target["risk_se"]


@pytest.mark.parametrize("which", ["small", "depth"])
def test_the_target_never_increases_with_depth(which, request):
    targets = request.getfixturevalue(f"{which}_targets")
    fit = [target["fit_risk"] for target in targets[1:]]   # depths 2+ fit on one sample, from warm starts
    assert all(deeper <= shallower + 1e-12 for shallower, deeper in zip(fit, fit[1:]))
    for shallower, deeper in zip(targets, targets[1:]):
        assert deeper["risk"] <= shallower["risk"] + 2 * math.hypot(shallower["risk_se"], deeper["risk_se"])


def test_depth_preset_target_agrees_with_fresh_prompts(depth_targets):
    spec = preset_spec("depth")
    kinds = causal_wpgd.gate_kinds(spec)
    fresh = causal_wpgd._draw(spec, 2 ** 14, seed=99)
    for target in depth_targets:
        risk, se = causal_wpgd.estimate_risk(spec, causal_wpgd.layers_from_target(target), kinds, fresh, None)
        assert abs(risk - target["risk"]) <= 4 * math.hypot(se, target["risk_se"]), target["layers"]


def test_depth_preset_deeper_is_better_by_more_than_its_error(depth_targets):
    risks = [target["risk"] for target in depth_targets]
    errors = [target["risk_se"] for target in depth_targets]
    for l in range(3):
        assert risks[l + 1] < risks[l] - 4 * math.hypot(errors[l], errors[l + 1])


def test_depth_preset_best_risk_is_reached_from_two_starts_at_one_and_two_layers(depth_targets):
    # Depth 1: every start lands on the same risk. From depth 2 on the landscape has several local minima
    # (depth 2: two starts within 1e-4, two others 1% higher; deeper the spread is 4-10%), and the target
    # keeps the best start.
    assert np.ptp(depth_targets[0]["start_risks"]) <= 1e-6 * depth_targets[0]["start_risks"][0]
    risks = np.array(depth_targets[1]["start_risks"])
    assert len(risks) == 4 and risks[1] - risks[0] <= 1e-3 * risks[0]


def test_the_symmetric_preconditioner_loses_nothing_against_a_full_one():
    spec = PromptSpec.from_dict({**SMALL, "feature_condition": 4.0})   # two unlike features
    exact = {}
    for structure in ("symmetric", "full"):
        (target,) = causal_wpgd.compute_targets(spec, 1, "scalar", random_starts=0, sizes=(2 ** 14, 0, 2 ** 12),
                                                preconditioner=structure)
        exact[structure] = exact_one_layer_risk(spec, target)
    best = theory.best_scalar_gla(spec).risk
    assert best - 1e-9 <= exact["symmetric"] <= exact["full"] + 1e-3 * best


def test_vector_gates_with_alike_features_are_the_scalar_target(small_targets):
    spec = PromptSpec.from_dict(SMALL)
    (vector,) = causal_wpgd.compute_targets(spec, 1, "vector", random_starts=0, sizes=(2 ** 14, 0, 2 ** 14))
    assert vector["risk"] == pytest.approx(small_targets[0]["risk"], abs=4 * small_targets[0]["risk_se"])
    assert np.array(vector["omega"]).shape == (1, 8, 2)
    assert np.array(causal_wpgd._vector_from_scalar(spec, small_targets)[1]["gates"]).shape == (2, 3, 2)


# ---------------------------------------------------------------- assets, cache and input checks
PRECOMPUTED = sorted(path.stem for path in causal_wpgd.ASSET_DIR.glob("*.json"))


def test_the_depth_preset_is_precomputed():
    assert "depth" in PRECOMPUTED and set(PRECOMPUTED) <= set(list_presets())


@pytest.mark.parametrize("preset", PRECOMPUTED)
def test_precomputed_presets_match_their_spec_and_load_fast(preset):
    stored = json.loads((causal_wpgd.ASSET_DIR / f"{preset}.json").read_text())
    assert PromptSpec.from_dict(stored["spec"]) == preset_spec(preset)
    began = time.perf_counter()
    for gating in ("scalar", "vector"):
        targets = causal_wpgd.causal_wpgd_targets(preset_spec(preset), 4, gating)
        assert [target["layers"] for target in targets] == [1, 2, 3, 4]
        assert targets == stored["targets"][gating]
        for target in targets:
            omega = np.array(target["omega"])
            assert len(omega) == target["layers"] and omega.shape[1] == preset_spec(preset).num_examples
            assert np.abs(omega).max(axis=1) == pytest.approx(1.0)
    assert time.perf_counter() - began < 1.0


def test_bad_arguments_name_the_field():
    spec = PromptSpec.from_dict(SMALL)
    with pytest.raises(SpecError, match="max_layers: must be a whole number from 1 to 4"):
        causal_wpgd.causal_wpgd_targets(spec, 5)
    with pytest.raises(SpecError, match="gating: must be one of none, scalar, vector"):
        causal_wpgd.causal_wpgd_targets(spec, 2, "diagonal")
    huge = PromptSpec.from_dict({"d": 64, "tasks": [{"n": 256, "corr": 0.5}] * 4})
    with pytest.raises(SpecError, match="spec: n\\^2 d = .* too large"):
        causal_wpgd.causal_wpgd_targets(huge, 1)


# ---------------------------------------------------------------- command line
def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gla_core", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


def test_solve_layers_adds_the_causal_wpgd_targets():
    result = run_cli("solve", "--preset", "depth", "--layers", "3")
    assert result.returncode == 0, result.stderr
    solution = json.loads(result.stdout)
    stored = causal_wpgd.causal_wpgd_targets(preset_spec("depth"), 3)
    assert solution["causal_wpgd"] == [{"layers": t["layers"], "risk": t["risk"], "risk_se": t["risk_se"]} for t in stored]
    plain = json.loads(run_cli("solve", "--preset", "depth").stdout)
    assert "causal_wpgd" not in plain
    assert plain == {key: value for key, value in solution.items() if key != "causal_wpgd"}


@pytest.mark.parametrize("layers", ["0", "5"])
def test_solve_layers_out_of_range_is_one_line_naming_it(layers):
    result = run_cli("solve", "--preset", "depth", "--layers", layers)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"python -m gla_core: error: layers: must be from 1 to 4, got {layers}"]
