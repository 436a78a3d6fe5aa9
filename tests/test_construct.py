"""A GLA built from a WPGD solution predicts exactly what WPGD predicts (docs/theory.md §3–4)."""
import numpy as np
import pytest
import torch

from gla_core.construct import gla_from_block_weights, gla_from_wpgd
from gla_core.reference import wpgd_causal, wpgd_one_step, wpgd_one_step_vector
from gla_core.sampling import PromptSampler
from gla_core.spec import PromptSpec

SPEC = PromptSpec.from_dict({"d": 3, "noise": 0.1, "delimiter": "task",
                             "tasks": [{"n": 4, "corr": 0.2}, {"n": 3, "corr": 0.5}, {"n": 5, "corr": 0.9}]})
D, d = SPEC.token_width, SPEC.d
TOLERANCE = 1e-10


def relative_error(value: np.ndarray, expected: np.ndarray) -> float:
    return float(np.linalg.norm(value - expected) / np.linalg.norm(expected))


def prompts(spec: PromptSpec = SPEC, batch: int = 6, seed: int = 0):
    sampler = PromptSampler(spec)
    return sampler.sample(batch, torch.Generator().manual_seed(seed), torch.float64), sampler.layout


def random_wpgd(layers: int, gating: str, seed: int):
    """Preconditioners near 0.1 I (moderate steps) and random gate parameters (gates mostly near 1)."""
    rng = np.random.default_rng(seed)
    Pk = 0.1 * (np.eye(d) + 0.3 * rng.normal(size=(layers, d, d)))
    Pq = np.eye(d) + 0.3 * rng.normal(size=(layers, d, d))
    outputs = 1 if gating == "scalar" else D
    gate_weight = rng.normal(size=(layers, outputs, D))
    gate_bias = 2.0 + rng.normal(size=(layers, outputs))
    return Pk, Pq, gate_weight, gate_bias


def gate_products(gates: np.ndarray) -> np.ndarray:
    """omega[..., t, s(, c)] = prod_{m=s+1..t} gates[..., m(, c)] for s <= t, else 0, with np.prod."""
    num_tokens = gates.shape[1]
    omega = np.zeros(gates.shape[:2] + (num_tokens,) + gates.shape[2:])
    for t in range(num_tokens):
        for s in range(t + 1):
            omega[:, t, s] = np.prod(gates[:, s + 1:t + 1], axis=1)
    return omega


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@pytest.mark.parametrize("gating", ["scalar", "vector"])
def test_one_layer_is_one_wpgd_step(gating):
    Pk, Pq, gate_weight, gate_bias = random_wpgd(1, gating, seed=1)
    if gating == "scalar":
        Pq = None  # P = Pk with the identity query preconditioner
    model = gla_from_wpgd(Pk, token_width=D, label_index=d, gating=gating, gate_weight=gate_weight,
                          gate_bias=gate_bias, Pq=Pq)
    batch, lay = prompts()
    tokens = batch.tokens.numpy()
    # gates straight from the parameters passed in, then the query's weights by explicit products
    gates = sigmoid(tokens @ gate_weight[0].T + gate_bias[0])
    gates = gates[..., 0] if gating == "scalar" else gates
    omega = gate_products(gates)[:, -1, lay.example_positions]
    x, y, xq = batch.x.numpy(), batch.y.numpy(), batch.xq.numpy()
    if gating == "scalar":
        expected = wpgd_one_step(x, y, xq, Pk[0], omega)
    else:
        expected = wpgd_one_step_vector(x, y, xq, Pk[0], Pq[0], omega[..., :d])
    assert relative_error(model(batch.tokens).detach().numpy(), expected) <= TOLERANCE
    assert model.layers[0].Wq.weight.dtype == torch.float64


@pytest.mark.parametrize("gating", ["scalar", "vector"])
@pytest.mark.parametrize("layers", [1, 2, 3, 4])
def test_layers_are_causal_wpgd_steps(layers, gating):
    Pk, Pq, gate_weight, gate_bias = random_wpgd(layers, gating, seed=layers)
    model = gla_from_wpgd(Pk, token_width=D, label_index=d, gating=gating, gate_weight=gate_weight,
                          gate_bias=gate_bias, Pq=Pq)
    batch, _ = prompts(batch=3, seed=layers)
    tokens = batch.tokens.numpy()
    # Gates read the label slot, which every layer rewrites: take each layer's gates from the model
    # (layer 0 checked against the parameters) and form their products independently.
    gates = [g.detach().numpy() for g in model.gates(batch.tokens)]
    first = sigmoid(tokens @ gate_weight[0].T + gate_bias[0])
    np.testing.assert_allclose(gates[0], first[..., 0] if gating == "scalar" else first, rtol=1e-13)
    omega = np.stack([gate_products(g) for g in gates])
    if gating == "vector":
        omega = omega[..., :d]   # keys live on the x block only
    expected = wpgd_causal(tokens[..., :d], tokens[..., d], Pk, omega, Pq)
    assert relative_error(model(batch.tokens).detach().numpy(), expected) <= TOLERANCE
    if layers > 1:   # later layers' gates differ from the first's: the causal steps really matter
        assert np.abs(gates[-1] - gates[0]).max() > 1e-3


@pytest.mark.parametrize("block_weights", [[0.2, 0.5, 1.3], [0.5, 0.5, 2.0], [1.0, 1.0, 1.0], [1e-3, 0.1, 0.1]])
def test_block_weights_are_reproduced(block_weights):
    P = np.random.default_rng(5).normal(size=(d, d))
    model = gla_from_block_weights(SPEC, P, block_weights)
    batch, lay = prompts()
    weights = np.asarray(block_weights)[SPEC.example_task]
    # the query's induced weights are the requested ones divided by the last (scale moved into P)
    induced = model.induced_query_weights(batch.tokens)[0].detach().numpy()[:, lay.example_positions]
    np.testing.assert_allclose(induced, np.broadcast_to(weights / weights[-1], induced.shape), rtol=1e-12)
    expected = wpgd_one_step(batch.x.numpy(), batch.y.numpy(), batch.xq.numpy(), P, weights)
    assert relative_error(model(batch.tokens).detach().numpy(), expected) <= TOLERANCE


def test_block_weights_reproduced_on_a_long_prompt():
    # the data gates' residual 1 - sigmoid(40) compounds over every token; still invisible at 2041 tokens
    spec = PromptSpec.from_dict({"d": 2, "delimiter": "task", "tasks": [{"n": 254, "corr": 0.5}] * 8})
    block_weights = np.linspace(0.1, 0.8, 8)
    model = gla_from_block_weights(spec, np.eye(2), block_weights)
    batch, lay = prompts(spec, batch=1)
    induced = model.induced_query_weights(batch.tokens)[0].detach().numpy()[0, lay.example_positions]
    np.testing.assert_allclose(induced, block_weights[spec.example_task] / 0.8, rtol=1e-13)


@pytest.mark.parametrize("block_weights, message", [
    ([1.0, 0.5, 2.0], "non-decreasing"),
    ([0.0, 0.5, 1.0], "positive"),
    ([-1.0, 0.5, 1.0], "positive"),
    ([0.5, 1.0], "3 numbers"),
    ([0.5, np.nan, 1.0], "positive"),
])
def test_block_weights_rejects_unreachable_weights(block_weights, message):
    with pytest.raises(ValueError, match=f"block_weights: .*{message}"):
        gla_from_block_weights(SPEC, np.eye(d), block_weights)


def test_block_weights_needs_task_delimiters():
    shared = PromptSpec.from_dict({**SPEC.to_dict(), "delimiter": "shared"})
    with pytest.raises(ValueError, match="spec: needs delimiter 'task'"):
        gla_from_block_weights(shared, np.eye(d), [1.0, 1.0, 1.0])


def test_general_construction_rejects_wrong_shapes_by_name():
    Pk, Pq, gate_weight, gate_bias = random_wpgd(2, "scalar", seed=0)
    common = {"token_width": D, "label_index": d}
    with pytest.raises(ValueError, match="^P:"):
        gla_from_wpgd(Pk[0], **common)
    with pytest.raises(ValueError, match="^Pq:"):
        gla_from_wpgd(Pk, Pq=Pq[:1], **common)
    with pytest.raises(ValueError, match="^gate_weight:"):
        gla_from_wpgd(Pk, gating="vector", gate_weight=gate_weight, gate_bias=gate_bias, **common)
    with pytest.raises(ValueError, match="^gate_bias:"):
        gla_from_wpgd(Pk, gating="scalar", gate_weight=gate_weight, gate_bias=gate_bias[:, :0], **common)
    with pytest.raises(ValueError, match="^gate_weight:"):
        gla_from_wpgd(Pk, gating="none", gate_weight=gate_weight, gate_bias=gate_bias, **common)
