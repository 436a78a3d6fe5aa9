"""The GLA model: every form against the token loop, induced weights against explicit gate products,
one layer against one WPGD step, and stability when gates are nearly 0."""
import dataclasses
from functools import partial

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gla_core import gla
from gla_core.gla import (GATINGS, PARALLEL_MAX_TOKENS, GLAConfig, GLAModel, choose_form, gla_attention,
                          gla_chunked, gla_parallel)
from gla_core.reference import gla_reference, wpgd_one_step, wpgd_one_step_vector
from gla_core.sampling import PromptSampler
from gla_core.spec import PromptSpec

# Tolerances on the relative RMS error against the float64 reference.
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}
SMALL_CHUNK = 8
SPEC = PromptSpec.from_dict({"d": 3, "noise": 0.1, "delimiter": "task",
                             "tasks": [{"n": 4, "corr": 0.3}, {"n": 3, "corr": 0.6}, {"n": 5, "corr": 0.9}]})


def relative_rms(value: torch.Tensor, reference: torch.Tensor) -> float:
    return float((value.double() - reference).norm() / reference.norm())


def attention_inputs(gating: str, batch: int, num_tokens: int, width: int, seed: int, gate_center: float = 2.0):
    """float64 q, k, v (B, T, D) and gate inputs (pre-sigmoid; None, (B, T) or (B, T, D)).
    Gates sigmoid(gate_center + N(0, 1)): mostly near 1, some small."""
    generator = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(batch, num_tokens, width, generator=generator, dtype=torch.float64) for _ in range(3))
    gate_shape = {"none": None, "scalar": (batch, num_tokens), "vector": (batch, num_tokens, width)}[gating]
    gate_input = None if gate_shape is None else gate_center + torch.randn(gate_shape, generator=generator,
                                                                           dtype=torch.float64)
    return q, k, v, gate_input


def outputs_and_gradients(attention, inputs, dtype: torch.dtype) -> list[torch.Tensor]:
    """[o, dL/dq, dL/dk, dL/dv, dL/d(gate input)] for L = <o, probe>, run in `dtype`."""
    leaves = [None if x is None else x.detach().to(dtype).requires_grad_() for x in inputs]
    q, k, v, gate_input = leaves
    output = attention(q, k, v, None if gate_input is None else F.logsigmoid(gate_input))
    probe = torch.randn(output.shape, generator=torch.Generator().manual_seed(99), dtype=torch.float64)
    (output * probe.to(dtype)).sum().backward()
    return [output.detach()] + [leaf.grad for leaf in leaves if leaf is not None]


def assert_matches_reference(attention, inputs, dtype: torch.dtype) -> list[float]:
    # the reference sees exactly the numbers the tested form sees (rounded to dtype first)
    rounded = [None if x is None else x.to(dtype).double() for x in inputs]
    expected = outputs_and_gradients(gla_reference, rounded, torch.float64)
    got = outputs_and_gradients(attention, rounded, dtype)
    errors = [relative_rms(value, reference) for value, reference in zip(got, expected)]
    names = ["output", "dq", "dk", "dv", "d gate"][:len(errors)]
    assert max(errors) <= TOLERANCE[dtype], dict(zip(names, errors))
    for value in got:
        assert value.dtype == dtype and torch.isfinite(value).all()
    return errors


# ---------------------------------------------------------------- forms against the reference loop
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("gating", GATINGS)
@pytest.mark.parametrize("num_tokens", [1, 2, 5, SMALL_CHUNK - 1, SMALL_CHUNK, SMALL_CHUNK + 1, 3 * SMALL_CHUNK + 5])
@pytest.mark.parametrize("form", ["parallel", "chunked"])
def test_form_matches_reference_outputs_and_gradients(form, num_tokens, gating, dtype):
    attention = gla_parallel if form == "parallel" else partial(gla_chunked, chunk_size=SMALL_CHUNK)
    inputs = attention_inputs(gating, batch=3, num_tokens=num_tokens, width=5, seed=num_tokens)
    assert_matches_reference(attention, inputs, dtype)


@pytest.mark.parametrize("gating", GATINGS)
def test_long_prompt_matches_reference(gating):
    # Gates around sigmoid(0) = 1/2: log-gate prefix sums reach about -800 over 999 tokens, so
    # weights computed as exp of differences of prefix sums would miss the float32 tolerance.
    inputs = attention_inputs(gating, batch=1, num_tokens=999, width=4, seed=7, gate_center=0.0)
    for attention in (gla_parallel, gla_chunked):   # default chunk size; 999 tokens leave a partial chunk
        for dtype in (torch.float64, torch.float32):
            assert_matches_reference(attention, inputs, dtype)


@pytest.mark.parametrize("gating", ["scalar", "vector"])
@pytest.mark.parametrize("closed_chunks", ["none", "one", "all"])
def test_factored_chunks_at_their_limit_match_the_reference(closed_chunks, gating, monkeypatch):
    # Each chunk's gate product at exp(0.99 FACTORED_MIN_LOG_DECAY): just inside the limit, where the chunks' factored
    # scores round the most; the closed chunks at exp(1.01 FACTORED_MIN_LOG_DECAY), just beyond it, and only they,
    # go to closed_chunks (whose smaller chunks factor again for "one", and take the parallel form for "all").
    chunk = gla.CHUNK_SIZE
    q, k, v, _ = attention_inputs("none", batch=2, num_tokens=2 * chunk + 5, width=4, seed=11)
    gate_shape = (2, q.shape[1]) if gating == "scalar" else tuple(q.shape)
    gate_log = torch.full(gate_shape, 0.99 * gla.FACTORED_MIN_LOG_DECAY / chunk, dtype=torch.float64)
    closed = {"none": 0, "one": 1, "all": 2 * 3}[closed_chunks]    # 2 prompts of 3 chunks, the last one partial
    if closed_chunks == "one":
        gate_log[1, chunk:2 * chunk] *= 1.01 / 0.99
    elif closed_chunks == "all":
        gate_log *= 1.01 / 0.99 * chunk / 5            # the partial chunk's 5 tokens close as far as a whole one
    gate_input = torch.log(torch.expm1(-gate_log))             # logsigmoid(-gate_input) = gate_log
    closed_calls, closed_chunks = [], gla.closed_chunks
    monkeypatch.setattr(gla, "closed_chunks",
                        lambda *args: closed_calls.append(args[0].shape[:2]) or closed_chunks(*args))
    for dtype in (torch.float64, torch.float32):
        assert_matches_reference(gla_chunked, (q, k, v, -gate_input), dtype)
    assert [count for count, size in closed_calls if size == chunk] == ([closed, closed] if closed else [])


@pytest.mark.parametrize("gating", ["scalar", "vector"])
def test_a_prompt_of_one_chunk_beyond_the_limit_matches_the_reference(gating, monkeypatch):
    # A prompt of up to two chunks is one chunk (default_chunk_size): prompt 0's gate product (its gates after the
    # first: no state enters a lone chunk) is just inside the factored limit, prompt 1's just beyond it, so prompt 1
    # alone goes to closed_chunks, as a whole.
    num_tokens = 2 * gla.CHUNK_SIZE
    assert gla.default_chunk_size(num_tokens) == num_tokens
    q, k, v, _ = attention_inputs("none", batch=2, num_tokens=num_tokens, width=4, seed=5)
    gate_shape = (2, num_tokens) if gating == "scalar" else tuple(q.shape)
    gate_log = torch.full(gate_shape, gla.FACTORED_MIN_LOG_DECAY / (num_tokens - 1), dtype=torch.float64)
    gate_log[0] *= 0.99
    gate_log[1] *= 1.01
    gate_input = torch.log(torch.expm1(-gate_log))             # logsigmoid(-gate_input) = gate_log
    closed_calls, closed_chunks = [], gla.closed_chunks
    monkeypatch.setattr(gla, "closed_chunks",
                        lambda *args: closed_calls.append(tuple(args[0].shape[:2])) or closed_chunks(*args))
    for dtype in (torch.float64, torch.float32):
        assert_matches_reference(gla_chunked, (q, k, v, -gate_input), dtype)
    assert [shape for shape in closed_calls if shape[1] == num_tokens] == [(1, num_tokens)] * 2


@pytest.mark.parametrize("form", ["parallel", "chunked", "reference"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_nearly_closed_gates_stay_finite(form, dtype):
    # gate_log = -50: every product of two or more gates underflows; outputs and gradients must not
    # become inf or nan, and the output keeps only each token's own term v_t k_t^T q_t.
    q, k, v, _ = attention_inputs("none", batch=2, num_tokens=3 * SMALL_CHUNK + 3, width=4, seed=3)
    for gate_shape in ((2, q.shape[1]), tuple(q.shape)):
        gate_log = torch.full(gate_shape, -50.0, dtype=dtype, requires_grad=True)
        leaves = [x.detach().to(dtype).requires_grad_() for x in (q, k, v)]
        output = gla_attention(*leaves, gate_log, form=form, chunk_size=SMALL_CHUNK)
        output.square().sum().backward()
        for tensor in [output, gate_log.grad] + [leaf.grad for leaf in leaves]:
            assert torch.isfinite(tensor).all()
        own_term = (q * k).sum(-1, keepdim=True) * v
        assert relative_rms(output.detach(), own_term) <= TOLERANCE[dtype]


def test_vector_gates_equal_across_coordinates_act_as_scalar_gates():
    q, k, v, gate_input = attention_inputs("scalar", batch=2, num_tokens=11, width=5, seed=5)
    gate_log = F.logsigmoid(gate_input)
    for attention in (gla_parallel, partial(gla_chunked, chunk_size=4), gla_reference):
        scalar = attention(q, k, v, gate_log)
        vector = attention(q, k, v, gate_log[..., None].expand(-1, -1, 5))
        assert relative_rms(vector, scalar) <= 1e-13


# ---------------------------------------------------------------- the model
def model_pair(gating: str, layers: int, seed: int) -> tuple[GLAModel, GLAModel]:
    """An auto-form float64 model with random structured-ish weights and its reference-form twin."""
    config = GLAConfig(token_width=SPEC.token_width, label_index=SPEC.label_index, layers=layers,
                       gating=gating, form="auto")
    model = GLAModel(config).double()
    model.init_structured(torch.Generator().manual_seed(seed), qk_scale=0.1, gate=0.9, noise=0.05)
    twin = GLAModel(dataclasses.replace(config, form="reference")).double()
    twin.load_state_dict(model.state_dict())
    return model, twin


def random_tokens(num_tokens: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randn(2, num_tokens, SPEC.token_width, generator=generator, dtype=torch.float64)
    tokens[:, -1, SPEC.label_index] = 0.0  # the query's label slot is empty
    return tokens


def prediction_and_gradients(model: GLAModel, tokens: torch.Tensor) -> list[torch.Tensor]:
    model.zero_grad()
    tokens = tokens.clone().requires_grad_()
    prediction = model(tokens)
    prediction.square().sum().backward()
    return [prediction.detach(), tokens.grad] + [parameter.grad for parameter in model.parameters()]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("gating", GATINGS)
@pytest.mark.parametrize("layers", [1, 2, 3, 4])
def test_model_auto_form_matches_reference(layers, gating, dtype):
    # one short prompt (the auto rule runs it in parallel form without gating, else as one chunk), one it runs
    # chunked in several default-size chunks, the last one padded
    lengths = (9, max(PARALLEL_MAX_TOKENS[gating], 2 * gla.CHUNK_SIZE) + 13)
    short_form = "parallel" if gating == "none" else "chunked"
    assert [choose_form(n, gating) for n in lengths] == [short_form, "chunked"]
    model, twin = model_pair(gating, layers, seed=layers)
    model.to(dtype)
    twin.load_state_dict(model.state_dict())  # the reference gets the same (rounded) numbers
    for num_tokens in lengths:
        tokens = random_tokens(num_tokens, seed=num_tokens).to(dtype)
        expected = prediction_and_gradients(twin, tokens.double())
        got = prediction_and_gradients(model, tokens)
        errors = [relative_rms(value, reference) for value, reference in zip(got, expected)]
        assert max(errors) <= TOLERANCE[dtype], errors


def test_config_rejects_bad_fields_by_name():
    for field, value in [("layers", 5), ("gating", "matrix"), ("form", "fast"), ("chunk_size", 0),
                         ("label_index", 9)]:
        with pytest.raises(ValueError, match=field):
            GLAConfig(**{"token_width": 7, "label_index": 3, field: value})


def test_initialisation_uses_only_the_given_generator():
    config = GLAConfig(token_width=7, label_index=3, layers=2, gating="vector")
    torch.manual_seed(123)
    global_state = torch.get_rng_state()
    first = GLAModel(config, torch.Generator().manual_seed(5)).init_structured(torch.Generator().manual_seed(6))
    second = GLAModel(config, torch.Generator().manual_seed(5)).init_structured(torch.Generator().manual_seed(6))
    other = GLAModel(config, torch.Generator().manual_seed(5)).init_structured(torch.Generator().manual_seed(7))
    assert torch.equal(torch.get_rng_state(), global_state)
    for (name, a), b, c in zip(first.named_parameters(), second.parameters(), other.parameters()):
        assert torch.equal(a, b)
        assert name.endswith("bias") or not torch.equal(a, c)  # biases are set, not drawn


def test_structured_init_without_noise_is_one_wpgd_step():
    # Wq = Wk = s I on x, Wv = -1 on the label, every gate g: yhat = xq^T (s^2 I) X^T (omega ⊙ y),
    # omega_i = g^(tokens after i)
    scale, gate = 0.4, 0.95
    config = GLAConfig(token_width=SPEC.token_width, label_index=SPEC.label_index, gating="scalar")
    model = GLAModel(config).double().init_structured(torch.Generator(), qk_scale=scale, gate=gate, noise=0.0)
    sampler = PromptSampler(SPEC)
    prompts = sampler.sample(4, torch.Generator().manual_seed(0), torch.float64)
    tokens_after = SPEC.num_tokens - 1 - sampler.layout.example_positions
    expected = wpgd_one_step(prompts.x.numpy(), prompts.y.numpy(), prompts.xq.numpy(),
                             scale ** 2 * np.eye(SPEC.d), gate ** tokens_after)
    assert np.abs(model(prompts.tokens).detach().numpy() - expected).max() <= 1e-10 * np.abs(expected).max()


# ---------------------------------------------------------------- induced weights
def explicit_gate_products(gates: np.ndarray) -> np.ndarray:
    """omega[b, t, s(, c)] = prod_{m=s+1..t} gates[b, m(, c)] by plain multiplication; 0 for s > t."""
    batch, num_tokens = gates.shape[:2]
    omega = np.zeros((batch, num_tokens, num_tokens) + gates.shape[2:])
    for b in range(batch):
        for t in range(num_tokens):
            for s in range(t + 1):
                product = np.ones(gates.shape[2:])
                for m in range(s + 1, t + 1):
                    product = product * gates[b, m]
                omega[b, t, s] = product
    return omega


@pytest.mark.parametrize("gating", GATINGS)
def test_induced_weights_are_gate_products(gating):
    model, _ = model_pair(gating, layers=2, seed=11)
    tokens = random_tokens(7, seed=2)
    gates = model.gates(tokens)
    omega = model.induced_weights(tokens)
    query_row = model.induced_query_weights(tokens)
    assert len(gates) == len(omega) == len(query_row) == 2
    for layer_gates, layer_omega, layer_query_row in zip(gates, omega, query_row):
        if gating == "none":
            assert layer_gates is None
            expected = np.broadcast_to(np.tril(np.ones((7, 7))), (2, 7, 7))
        else:
            assert layer_gates.shape == ((2, 7) if gating == "scalar" else (2, 7, SPEC.token_width))
            expected = explicit_gate_products(layer_gates.detach().numpy())
        np.testing.assert_allclose(layer_omega.detach().numpy(), expected, rtol=1e-12, atol=0)
        np.testing.assert_allclose(layer_query_row.detach().numpy(), expected[:, -1], rtol=1e-12, atol=0)


def test_gates_of_a_layer_come_from_its_input():
    # layer 2's gates are sigmoid(Wg Z^1 + bg), Z^1 = tokens + the first layer's output (by hand)
    model, _ = model_pair("vector", layers=2, seed=4)
    tokens = random_tokens(6, seed=1)
    first, second = model.layers
    with torch.no_grad():
        z1 = tokens + gla_reference(first.Wq(tokens), first.Wk(tokens), first.Wv(tokens),
                                    torch.log(torch.sigmoid(first.Wg(tokens))))
        expected = torch.sigmoid(z1 @ second.Wg.weight.T + second.Wg.bias)
        got = model.gates(tokens)[1]
    assert relative_rms(got, expected) <= 1e-14
    assert relative_rms(got, model.gates(tokens)[0].detach()) > 1e-3  # the two layers do differ


@pytest.mark.parametrize("gating", ["scalar", "vector"])
def test_one_layer_predicts_wpgd_with_its_induced_query_weights(gating):
    # Wk = [[P,0],[0,0]], Wq = [[I,0],[0,0]], Wv = -e_label e_label^T, gates left as initialised (random)
    model, _ = model_pair(gating, layers=1, seed=8)
    d, label = SPEC.d, SPEC.label_index
    P = np.random.default_rng(0).normal(size=(d, d))
    layer = model.layers[0]
    with torch.no_grad():
        for linear in (layer.Wq, layer.Wk, layer.Wv):
            linear.weight.zero_()
        layer.Wk.weight[:d, :d] = torch.from_numpy(P)
        layer.Wq.weight[:d, :d] = torch.eye(d)
        layer.Wv.weight[label, label] = -1.0
    sampler = PromptSampler(SPEC)
    prompts = sampler.sample(5, torch.Generator().manual_seed(3), torch.float64)
    omega = model.induced_query_weights(prompts.tokens)[0].detach().numpy()[:, sampler.layout.example_positions]
    x, y, xq = prompts.x.numpy(), prompts.y.numpy(), prompts.xq.numpy()
    if gating == "scalar":
        expected = wpgd_one_step(x, y, xq, P, omega)
    else:
        expected = wpgd_one_step_vector(x, y, xq, P, np.eye(d), omega[..., :d])
    assert omega.std() > 1e-2  # the weights are far from uniform, so they matter
    predicted = model(prompts.tokens).detach().numpy()
    assert np.linalg.norm(predicted - expected) <= 1e-10 * np.linalg.norm(expected)


@pytest.mark.gpu  # skipped without CUDA (conftest.py)
@pytest.mark.parametrize("gating", GATINGS)
def test_forms_on_cuda_match_reference(gating):
    inputs = attention_inputs(gating, batch=2, num_tokens=200, width=6, seed=1)
    for form in ("parallel", "chunked"):
        for dtype in (torch.float64, torch.float32):
            def on_cuda(q, k, v, gate_log, form=form):
                moved = [None if x is None else x.cuda() for x in (q, k, v, gate_log)]
                return gla_attention(*moved, form=form, chunk_size=32).cpu()
            assert_matches_reference(on_cuda, inputs, dtype)


@pytest.mark.parametrize("gating", ["scalar", "vector"])
@pytest.mark.parametrize("layers", [1, 3])
def test_a_short_gated_prompt_at_a_training_batch_runs_as_one_chunk_and_matches_reference(layers, gating):
    num_tokens, batch = 43, 256          # the depth preset's prompt at the training batch
    assert choose_form(num_tokens, gating) == "chunked"
    assert gla.default_chunk_size(num_tokens) == num_tokens
    model, twin = model_pair(gating, layers, seed=7)
    model.float()
    twin.load_state_dict(model.state_dict())  # the reference gets the same (rounded) numbers
    tokens = torch.randn(batch, num_tokens, model.config.token_width, generator=torch.Generator().manual_seed(3))
    tokens[:, -1, model.config.label_index] = 0.0
    expected = prediction_and_gradients(twin, tokens.double())
    got = prediction_and_gradients(model, tokens)
    errors = [relative_rms(value, reference) for value, reference in zip(got, expected)]
    assert max(errors) <= TOLERANCE[torch.float32], errors
