"""The best L-step causal WPGD (THEORY §4) the WPGD construction can run: one numeric target per depth.

An L-layer GLA built by the construction (`construct.gla_from_wpgd`) runs L steps of causal WPGD:

    y_t^(l+1) = y_t^(l) - sum_{s<=t} y_s^(l) <omega^l_{t,s} ⊙ Pk_l x_s, Pq_l x_t>,   yhat = -y_query^(L)

Its free parameters, per layer: the key and query preconditioners and the gates. Gates that read no data
depend only on the token's kind: one gate for example and query tokens (their delimiter features are 0),
one per delimiter (task delimiters), one shared by all delimiters (shared), or none (no delimiters); vector
gates have one such value per key coordinate. By symmetry the search runs over diagonal Pk, constant on
groups of alike features, with Pq = I (`_Packing`). No closed form is known for L > 1, so:

1. minimise the mean squared error over those parameters on a fixed, seeded sample of prompts (float64,
   L-BFGS-B; a gate is g = exp(-lambda), lambda in [0, LAMBDA_MAX], so g = 1 is reachable exactly).
   Depth L + 1 starts from the depth-L optimum with one more layer (doing nothing, or a plain gradient
   step) and from random points; the landscape has several local minima from depth 2 on (large first-layer
   steps that later layers undo compete with plain descent steps), and the best start is kept;
2. estimate the risk of the parameters found on an independent sample, with control variates of known
   mean (the zero predictor's loss yq^2, mean tr Sigma + sigma^2, and the loss of the best one-step
   gated model of `theory`, whose risk is exact): the standard error is that of the regression residual.

The estimate is of the found parameters' population risk: an upper bound on the true best up to its
standard error, if the search found the global minimum. The fit's own excess is O(parameters / fit
prompts): negligible at depth 1 (2^16 prompts), visible deeper (the "fit_risk" on 2^13 prompts sits a few
per cent below the fresh "risk").

`causal_wpgd_targets` is the entry point: presets come precomputed from assets/causal_wpgd/<preset>.json
(`python -m gla_core.causal_wpgd --write-assets` rebuilds them), any other spec is computed once and cached.
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import optimize

from . import theory
from .construct import DATA_GATE_BIAS, gla_from_wpgd
from .gla import GATINGS, MAX_LAYERS, GLAModel, segment_sums
from .sampling import DELIMITER, PromptSampler, layout
from .spec import PromptSpec, SpecError, list_presets, preset_spec

LAMBDA_MAX = 30.0               # gate e^-30: the tokens before it are gone
FIT_SEED, EVAL_SEED = 1601, 1602
# Sample sizes, in prompts (sample_sizes). Larger prompts get fewer at depths 2+ (their error is larger).
FIT_CONTEXTS, DEEP_FIT_CONTEXTS, EVAL_CONTEXTS = 2 ** 16, 2 ** 13, 2 ** 16
DEEP_FIT_WORK = 2 ** 26         # at most DEEP_FIT_CONTEXTS * n^2 d: the cost of one layer over the fit sample
MIN_CONTEXTS = 2 ** 10
MAX_WORK_PER_PROMPT = 2 ** 19   # n^2 d above this: too large for a numeric target in seconds
CHUNK = 2 ** 14                 # prompts drawn (and evaluated) at a time
RANDOM_STARTS = 2               # random starts per depth beside the warm starts
MAX_ITERATIONS = 400            # L-BFGS-B iterations per start (deep fits creep along flat valleys beyond)
ASSET_DIR = Path(__file__).resolve().parent.parent / "assets" / "causal_wpgd"


# ================================================================ the gate structure of a spec
@dataclass(frozen=True)
class GateKinds:
    """Which gates lie between consecutive examples, for G gate kinds (kind 0: example and query tokens).

    names            (G,) e.g. ["examples", "delimiter 1", "delimiter 2"]
    between_examples (n, G) how many tokens of each kind sit after example j-1, up to and including example j
                     (row 0: up to example 0; the sums start at 0 there, so it is never used)
    before_query     (G,) the same from the last example up to and including the query
    """

    names: tuple[str, ...]
    between_examples: np.ndarray
    before_query: np.ndarray


def gate_kinds(spec: PromptSpec) -> GateKinds:
    """The spec's gate kinds, counted between examples from its token layout."""
    prompt = layout(spec)
    if spec.delimiter == "task":
        names = ("examples",) + tuple(f"delimiter {k + 1}" for k in range(spec.num_tasks))
        kind_of = np.where(prompt.kind == DELIMITER, 1 + prompt.task, 0)
    else:
        names = ("examples",) + (("delimiters",) if spec.delimiter == "shared" else ())
        kind_of = np.where(prompt.kind == DELIMITER, 1, 0)
    counts = np.zeros((prompt.num_tokens, len(names)))
    counts[np.arange(prompt.num_tokens), kind_of] = 1.0
    stops = np.append(prompt.example_positions, prompt.num_tokens - 1)    # examples, then the query
    starts = np.concatenate([[0], stops[:-1] + 1])
    between = np.stack([counts[a:b + 1].sum(0) for a, b in zip(starts, stops)])
    return GateKinds(names=names, between_examples=between[:-1], before_query=between[-1])


# ================================================================ parameters and the forward pass
@dataclass
class Layer:
    """One layer of the construction, torch float64. Pk: the key preconditioner, (d,) its diagonal or (d, d);
    Pq: the query preconditioner (d, d), None for I; lam (G,) scalar or (G, d) vector gates,
    g = exp(-lam) per gate kind (and key coordinate)."""

    Pk: torch.Tensor
    Pq: torch.Tensor | None
    lam: torch.Tensor

    def matrices(self) -> tuple[np.ndarray, np.ndarray]:
        """(Pk, Pq) as (d, d) NumPy arrays."""
        Pk = self.Pk.detach().numpy()
        Pk = np.diag(Pk) if Pk.ndim == 1 else Pk
        return Pk, np.eye(len(Pk)) if self.Pq is None else self.Pq.detach().numpy()


def _times(P: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """P x for coordinate-major x (d, ...): P (d,) diagonal, (d, d), or None (identity)."""
    if P is None:
        return x
    if P.dim() == 1:
        return P.reshape(-1, *[1] * (x.dim() - 1)) * x
    return (P @ x.reshape(len(x), -1)).reshape(x.shape)


def predict(layers: list[Layer], kinds: GateKinds, x: torch.Tensor, y: torch.Tensor,
            xq: torch.Tensor) -> torch.Tensor:
    """L steps of causal WPGD over the examples and the query, coordinate-major:
    x (d, n, B), y (n, B), xq (d, B) -> predictions (B,).

    Delimiters have x = 0, so they add nothing to the sums: only their gates enter, through `kinds`.
    gamma_t is the product of the gates after example t-1 up to example t, so the weights between
    examples are omega_{t,s} = prod_{m=s+1..t} gamma_m (`gla.segment_sums`, per key coordinate for vector gates).
    """
    between = torch.as_tensor(kinds.between_examples, dtype=x.dtype)
    before_query = torch.as_tensor(kinds.before_query, dtype=x.dtype)
    y_query = torch.zeros_like(xq[0])
    for index, layer in enumerate(layers):
        log_gamma = -(between @ layer.lam)                             # (n,) or (n, d)
        omega = torch.exp(segment_sums(log_gamma.mT if log_gamma.dim() == 2 else log_gamma))  # (n, n) or (d, n, n)
        gamma_query = torch.exp(-(before_query @ layer.lam))           # () or (d,)
        signal = _times(layer.Pk, x) * y                               # Pk x_s y_s^(l)  (d, n, B)
        # h_t = sum_{s<=t} omega_{t,s} ⊙ Pk x_s y_s: every example's own causal step (the query needs only the last)
        last = index == len(layers) - 1
        h = torch.matmul(omega[..., -1:, :] if last else omega, signal)  # (d, n or 1, B)
        h_query = gamma_query.reshape(-1, 1) * h[:, -1] + _times(layer.Pk, xq) * y_query
        y_query = y_query - (_times(layer.Pq, xq) * h_query).sum(0)
        if not last:
            y = y - (_times(layer.Pq, x) * h).sum(0)
    return -y_query


# ================================================================ flat parameter vectors for L-BFGS-B
class _Packing:
    """Layers <-> one flat float64 vector, with L-BFGS-B bounds (lambda in [0, LAMBDA_MAX], or fixed at 0
    without gating).

    preconditioner "symmetric" (the default): Pk = diag(p), Pq = I, with one p (and, for vector gates,
    one gate per kind) for each group of alike features (same variance, same correlations: theory's
    feature groups). Flipping the sign of feature c (x_c and every beta[c]) leaves the prompt distribution
    unchanged, and so does swapping two alike features, so the risk is invariant under Pk -> Pi Pk Pi^T
    (every signed permutation Pi of alike features): a unique best Pk is diagonal and constant on groups.
    With vector gates only Pq^T diag(omega) Pk matters, which for diagonal maps is diag(p ⊙ omega).
    "full": every entry of Pk, a gate per key coordinate, and Pq with vector gates: the check that the
    symmetric parameters lose nothing.
    """

    def __init__(self, spec: PromptSpec, num_kinds: int, gating: str, layers: int, preconditioner: str = "symmetric"):
        if preconditioner not in ("symmetric", "full"):
            raise ValueError(f"preconditioner: must be 'symmetric' or 'full', got {preconditioner!r}")
        d = spec.d
        self.d, self.gating, self.layers, self.preconditioner = d, gating, layers, preconditioner
        self.group = theory._problem(spec).group if preconditioner == "symmetric" else np.arange(d)
        groups = int(self.group.max()) + 1
        self.lam_shape = (num_kinds, groups) if gating == "vector" else (num_kinds,)
        self.num_lam = math.prod(self.lam_shape)
        self.num_key = groups if preconditioner == "symmetric" else d * d
        self.num_query = d * d if preconditioner == "full" and gating == "vector" else 0
        self.per_layer = self.num_key + self.num_query + self.num_lam

    def unpack(self, theta: torch.Tensor) -> list[Layer]:
        d, group, out = self.d, torch.as_tensor(self.group), []
        for chunk in theta.reshape(self.layers, self.per_layer):
            key, query, lam = torch.split(chunk, [self.num_key, self.num_query, self.num_lam])
            Pk = key[group] if self.preconditioner == "symmetric" else key.reshape(d, d)
            lam = lam.reshape(self.lam_shape)
            out.append(Layer(Pk=Pk, Pq=query.reshape(d, d) if self.num_query else None,
                             lam=lam[:, group] if self.gating == "vector" else lam))
        return out

    def pack(self, layers: list[Layer]) -> np.ndarray:
        """The inverse of unpack for layers of this structure (one representative per group)."""
        first = np.unique(self.group, return_index=True)[1]
        parts = []
        for layer in layers:
            Pk, Pq = layer.matrices()
            parts.append(np.diag(Pk)[first] if self.preconditioner == "symmetric" else Pk.ravel())
            if self.num_query:
                parts.append(Pq.ravel())
            lam = layer.lam.detach().numpy()
            parts.append((lam[:, first] if self.gating == "vector" else lam).ravel())
        return np.concatenate(parts).astype(float)

    def bounds(self) -> list[tuple]:
        gate = (0.0, 0.0) if self.gating == "none" else (0.0, LAMBDA_MAX)
        return ([(None, None)] * (self.num_key + self.num_query) + [gate] * self.num_lam) * self.layers


# ================================================================ samples
@dataclass
class _Sample:
    """Prompts without their tokens, coordinate-major float64: x (d, n, B), y (n, B), xq (d, B), yq (B,)."""

    x: torch.Tensor
    y: torch.Tensor
    xq: torch.Tensor
    yq: torch.Tensor

    def __len__(self) -> int:
        return len(self.yq)

    def part(self, start: int, stop: int) -> "_Sample":
        return _Sample(self.x[..., start:stop], self.y[:, start:stop], self.xq[:, start:stop], self.yq[start:stop])


def _draw(spec: PromptSpec, num_prompts: int, seed: int) -> _Sample:
    sampler, generator = PromptSampler(spec), torch.Generator().manual_seed(seed)
    parts = []
    for start in range(0, num_prompts, CHUNK):
        prompts = sampler.sample(min(CHUNK, num_prompts - start), generator, torch.float64)
        parts.append((prompts.x.permute(2, 1, 0), prompts.y.T, prompts.xq.T, prompts.yq))
    return _Sample(*(torch.cat(tensors, dim=-1).contiguous() for tensors in zip(*parts)))


def sample_sizes(spec: PromptSpec) -> tuple[int, int, int]:
    """(fit at depth 1, fit at depths 2+, evaluation) prompts. Depth 1 reads only the query's row, so it
    fits cheaply on FIT_CONTEXTS; deeper fits cost n^2 d per prompt and layer and use DEEP_FIT_CONTEXTS up
    to the presets' size (n^2 d = 8000), fewer for larger prompts (a power of two, at least MIN_CONTEXTS)."""
    per_prompt = spec.num_examples ** 2 * spec.d
    if per_prompt > MAX_WORK_PER_PROMPT:
        raise SpecError("spec", f"n^2 d = {per_prompt} (n = {spec.num_examples} examples, d = {spec.d}) is too "
                        f"large for the causal WPGD target (at most {MAX_WORK_PER_PROMPT})")
    deep = int(np.clip(DEEP_FIT_WORK // per_prompt, MIN_CONTEXTS, DEEP_FIT_CONTEXTS))
    return FIT_CONTEXTS, 1 << (deep.bit_length() - 1), EVAL_CONTEXTS


# ================================================================ fitting
def _starts(spec: PromptSpec, packing: _Packing, previous: list[Layer] | None, generator: np.random.Generator,
            random_starts: int) -> list[np.ndarray]:
    """Warm starts: the previous depth's layers and one more that does nothing (P = 0) or takes a plain
    gradient step (P = I / (n + d + 1), every gate 1); at depth 1 that plain step alone. Random starts:
    every layer a step of that size on each coordinate times a factor in [0.5, 1.5], gates in [e^-1, 1]."""
    d, layers = spec.d, packing.layers
    step = 1.0 / (spec.num_examples + d + 1)
    ones = torch.ones(d, dtype=torch.float64)
    lam_shape = (packing.lam_shape[0], d) if packing.gating == "vector" else packing.lam_shape
    no_gate = torch.zeros(lam_shape, dtype=torch.float64)
    if previous is None:
        starts = [packing.pack([Layer(Pk=step * ones, Pq=None, lam=no_gate)] * layers)]
    else:
        starts = [packing.pack(previous + [Layer(Pk=scale * ones, Pq=None, lam=no_gate)]) for scale in (0.0, step)]
    for _ in range(random_starts):
        random_layers = []
        for _ in range(layers):
            scale = torch.as_tensor(generator.uniform(0.5, 1.5, d))
            lam = no_gate if packing.gating == "none" else torch.as_tensor(generator.uniform(0.0, 1.0, lam_shape))
            random_layers.append(Layer(Pk=step * scale, Pq=None, lam=lam))
        # pack keeps one value per group of alike features: each random layer is projected onto the structure
        starts.append(packing.pack(random_layers))
    return starts


def _fit(kinds: GateKinds, packing: _Packing, sample: _Sample, starts: list[np.ndarray]) -> list[tuple[float, np.ndarray]]:
    """(training risk, parameters) from each start, best first."""
    def objective(theta_np: np.ndarray) -> tuple[float, np.ndarray]:
        theta = torch.tensor(theta_np, requires_grad=True)
        loss = ((sample.yq - predict(packing.unpack(theta), kinds, sample.x, sample.y, sample.xq)) ** 2).mean()
        loss.backward()
        return float(loss.detach()), theta.grad.numpy().astype(float)

    results = []
    for start in starts:
        found = optimize.minimize(objective, start, jac=True, method="L-BFGS-B", bounds=packing.bounds(),
                                  options={"maxiter": MAX_ITERATIONS, "ftol": 1e-12, "gtol": 1e-8})
        results.append((float(found.fun), found.x))
    return sorted(results, key=lambda result: result[0])


# ================================================================ estimating the risk
def _one_step_reference(spec: PromptSpec, gating: str) -> theory.Solution:
    """The best one-step model of this gating kind (exact risk): a control variate."""
    if gating == "none":
        return theory.best_linear_attention(spec)
    return theory.best_scalar_gla(spec) if gating == "scalar" else theory.best_vector_gla(spec)


def _one_step_prediction(solution: theory.Solution, sample: _Sample) -> torch.Tensor:
    """yhat = xq^T P sum_i y_i omega_i (⊙ x_i): the theory's one-step predictor (omega (n,) or (n, d))."""
    omega = torch.as_tensor(solution.omega, dtype=torch.float64)
    omega = omega[None, :, None] if omega.dim() == 1 else omega.T[:, :, None]    # (1 or d, n, 1)
    weighted = (omega * sample.x * sample.y).sum(1)                                # (d, B)
    return (sample.xq * (torch.as_tensor(solution.P) @ weighted)).sum(0)


def squared_errors(layers: list[Layer], kinds: GateKinds, sample: _Sample) -> np.ndarray:
    """(B,) squared errors of the layers' predictions on `sample`, computed CHUNK prompts at a time."""
    with torch.no_grad():
        parts = [sample.part(i, i + CHUNK) for i in range(0, len(sample), CHUNK)]
        return torch.cat([(part.yq - predict(layers, kinds, part.x, part.y, part.xq)) ** 2 for part in parts]).numpy()


def estimate_risk(spec: PromptSpec, layers: list[Layer], kinds: GateKinds, sample: _Sample,
                  reference: theory.Solution | None) -> tuple[float, float]:
    """(risk, standard error) of the layers' predictor on `sample`. With a reference, the zero predictor's
    loss yq^2 (mean tau) and the reference's loss (mean: its exact risk) are control variates: risk =
    mean(loss - (controls - means) b), b by least squares; without, the plain mean and its error."""
    loss = squared_errors(layers, kinds, sample)
    if reference is None:
        return float(loss.mean()), float(loss.std(ddof=1) / math.sqrt(len(loss)))
    tau = float(spec.feature_variances().sum() + spec.noise ** 2)
    with torch.no_grad():
        reference_loss = ((sample.yq - _one_step_prediction(reference, sample)) ** 2).numpy()
    controls = np.stack([sample.yq.numpy() ** 2 - tau, reference_loss - reference.risk], axis=1)
    b = np.linalg.lstsq(controls - controls.mean(0), loss - loss.mean(), rcond=None)[0]
    adjusted = loss - controls @ b
    return float(adjusted.mean()), float(adjusted.std(ddof=3) / math.sqrt(len(loss)))


# ================================================================ the targets
def _query_weights(kinds: GateKinds, lam: np.ndarray) -> np.ndarray:
    """The query's weights omega_{T,s} at the examples, (n,) or (n, d), scaled max |omega| = 1 (per key
    coordinate): the gates after example s up to the query, multiplied."""
    after = np.cumsum(np.vstack([kinds.between_examples[1:], kinds.before_query])[::-1], axis=0)[::-1]
    omega = np.exp(-(after @ lam))
    return omega / omega.max(axis=0)


def _layers_to_dict(layers: list[Layer], kinds: GateKinds) -> dict:
    """Per layer: omega (query weights), gates (G,) or (G, d), P = Pq^T Pk; Pk and Pq when Pq is not I."""
    out = {"omega": [], "gates": [], "P": []}
    for layer in layers:
        lam, (Pk, Pq) = layer.lam.detach().numpy(), layer.matrices()
        out["omega"].append(_query_weights(kinds, lam).tolist())
        out["gates"].append(np.exp(-lam).tolist())
        out["P"].append((Pq.T @ Pk).tolist())
        if not np.array_equal(Pq, np.eye(len(Pq))):
            out.setdefault("Pk", []).append(Pk.tolist())
            out.setdefault("Pq", []).append(Pq.tolist())
    return out


def compute_targets(spec: PromptSpec, max_layers: int, gating: str = "scalar", random_starts: int = RANDOM_STARTS,
                    sizes: tuple[int, int, int] | None = None, preconditioner: str = "symmetric",
                    log=None) -> list[dict]:
    """Fit depths 1..max_layers in turn (from the previous depth's optimum and from random starts: the
    landscape has several local minima, so the best of all starts is kept) and estimate each on one
    fresh sample. Slow: use `causal_wpgd_targets`. Keys as there, plus "fit_risk" (training-sample risk
    of the best start), "start_risks" (every start's, best first), "fit_prompts", "eval_prompts" and
    "seconds" (process time of that depth's fit). sizes: as sample_sizes; log: called with each depth's
    target as it is found."""
    _check(spec, max_layers, gating)
    fit_one, fit_deep, eval_prompts = sizes or sample_sizes(spec)
    kinds = gate_kinds(spec)
    fit_sample, eval_sample = _draw(spec, max(fit_one, fit_deep), FIT_SEED), _draw(spec, eval_prompts, EVAL_SEED)
    reference = _one_step_reference(spec, gating)
    generator = np.random.default_rng(FIT_SEED)
    targets, previous = [], None
    for depth in range(1, max_layers + 1):
        began = time.process_time()
        fit_prompts = fit_one if depth == 1 else fit_deep
        packing = _Packing(spec, len(kinds.names), gating, depth, preconditioner)
        results = _fit(kinds, packing, fit_sample.part(0, fit_prompts),
                       _starts(spec, packing, previous, generator, random_starts))
        previous = packing.unpack(torch.tensor(results[0][1]))
        risk, risk_se = estimate_risk(spec, previous, kinds, eval_sample, reference)
        targets.append({"layers": depth, "risk": risk, "risk_se": risk_se, "gate_kinds": list(kinds.names),
                        **_layers_to_dict(previous, kinds), "fit_risk": results[0][0],
                        "start_risks": [result[0] for result in results], "fit_prompts": fit_prompts,
                        "eval_prompts": eval_prompts, "seconds": time.process_time() - began})
        if log is not None:
            log(targets[-1])
    return targets


def layers_from_target(target: dict) -> list[Layer]:
    """The parameters of one depth's target (a dict from causal_wpgd_targets) as Layers."""
    def tensors(name):
        return [torch.tensor(value, dtype=torch.float64) for value in target[name]]

    lam = [-torch.log(gates) for gates in tensors("gates")]
    if "Pq" in target:
        return [Layer(Pk=Pk, Pq=Pq, lam=l) for Pk, Pq, l in zip(tensors("Pk"), tensors("Pq"), lam)]
    return [Layer(Pk=P, Pq=None, lam=l) for P, l in zip(tensors("P"), lam)]


def gla_model(spec: PromptSpec, target: dict, gating: str = "scalar") -> GLAModel:
    """The float64 GLA that runs one depth's target: the construction with its Pk_l, Pq_l, and gate biases
    and delimiter-feature weights that give each kind of token its gate (gates of 1 become DATA_GATE_BIAS)."""
    layers = layers_from_target(target)
    Pk, Pq = (np.stack(matrices) for matrices in zip(*(layer.matrices() for layer in layers)))
    if gating == "none":
        return gla_from_wpgd(Pk, token_width=spec.token_width, label_index=spec.label_index, Pq=Pq)
    d, width = spec.d, spec.token_width
    outputs = 1 if gating == "scalar" else width
    rows = slice(0, outputs if gating == "scalar" else d)     # gate outputs that act on x's key coordinates
    weight, bias = np.zeros((len(layers), outputs, width)), np.full((len(layers), outputs), DATA_GATE_BIAS)
    for l, layer in enumerate(layers):
        lam = layer.lam.numpy().reshape(len(target["gate_kinds"]), -1)             # (G, 1) or (G, d)
        with np.errstate(divide="ignore"):
            logit = np.minimum(-lam - np.log(-np.expm1(-lam)), DATA_GATE_BIAS)    # logit(exp(-lam))
        bias[l, rows] = logit[0]
        if spec.delimiter != "none":
            weight[l, rows, d + 1:] = (logit[1:] - logit[0]).T
    return gla_from_wpgd(Pk, token_width=width, label_index=spec.label_index, gating=gating,
                         gate_weight=weight, gate_bias=bias, Pq=Pq)


def _check(spec: PromptSpec, max_layers, gating) -> None:
    if isinstance(max_layers, bool) or not isinstance(max_layers, int) or not 1 <= max_layers <= MAX_LAYERS:
        raise SpecError("max_layers", f"must be a whole number from 1 to {MAX_LAYERS}, got {max_layers!r}")
    if gating not in GATINGS:
        raise SpecError("gating", f"must be one of {', '.join(GATINGS)}, got {gating!r}")


# ================================================================ assets and the cache
def _asset_path(preset: str) -> Path:
    return ASSET_DIR / f"{preset}.json"


@functools.lru_cache(maxsize=None)
def _asset(preset: str) -> dict | None:
    """A preset's stored targets, read once per process (a page asks for them on every refresh)."""
    path = _asset_path(preset)
    return json.loads(path.read_text())["targets"] if path.is_file() else None


def _from_assets(spec: PromptSpec, max_layers: int, gating: str) -> list[dict] | None:
    for preset in list_presets():
        stored = _asset(preset)
        if stored is not None and preset_spec(preset) == spec:
            targets = stored.get(gating)
            if targets is not None and len(targets) >= max_layers:
                return targets[:max_layers]
    return None


def precomputed(spec: PromptSpec, max_layers: int, gating: str = "scalar") -> bool:
    """Whether causal_wpgd_targets answers at once for this spec (its targets are in assets, as the presets'
    are), so a page can call it without waiting."""
    return _from_assets(spec, max_layers, gating) is not None


def _vector_from_scalar(spec: PromptSpec, targets: list[dict]) -> list[dict] | None:
    """With all features alike (one feature group) the symmetric vector-gated model has one gate per kind,
    the same on every coordinate: it is the scalar-gated model, so its targets are the scalar ones with
    omega and gates repeated per coordinate. None when the features differ."""
    if len(theory._problem(spec).s) != 1:
        return None
    d = spec.d
    return [{**target, "omega": [[[w] * d for w in omega] for omega in target["omega"]],
             "gates": [[[g] * d for g in gates] for gates in target["gates"]]} for target in targets]


def _compute(spec: PromptSpec, max_layers: int, gating: str) -> list[dict]:
    vector = _vector_from_scalar(spec, causal_wpgd_targets(spec, max_layers)) if gating == "vector" else None
    return vector if vector is not None else compute_targets(spec, max_layers, gating)


@functools.lru_cache(maxsize=32)
def _cached(spec_json: str, max_layers: int, gating: str) -> tuple[dict, ...]:
    spec = PromptSpec.from_json(spec_json)
    found = _from_assets(spec, max_layers, gating)
    return tuple(found if found is not None else _compute(spec, max_layers, gating))


def causal_wpgd_targets(spec: PromptSpec, max_layers: int, gating: str = "scalar") -> list[dict]:
    """The best L-step causal WPGD the construction reaches, for L = 1..max_layers (at most MAX_LAYERS).

    One dict per depth: "layers" L, "risk" and "risk_se" (fresh-sample estimate and its standard error),
    and the target's parameters per layer l: "omega" the query's weights at the examples ((n,), or (n, d)
    for vector gates, scaled max |omega| = 1), "gates" the gate values per kind ((G,) or (G, d), kinds
    named in "gate_kinds"), "P" = Pq^T Pk (d, d), and "Pk", "Pq" where Pq is not I. Presets are read from
    assets (milliseconds); other specs take seconds to minutes once, then come from a cache.
    """
    _check(spec, max_layers, gating)
    return [dict(target) for target in _cached(spec.to_json(), max_layers, gating)]


def write_assets(presets: list[str], gatings: tuple[str, ...] = ("scalar", "vector")) -> None:
    """Compute every preset's targets up to MAX_LAYERS and store them in assets/causal_wpgd/."""
    ASSET_DIR.mkdir(parents=True, exist_ok=True)
    for preset in presets:
        spec = preset_spec(preset)
        targets = {}
        for gating in gatings:
            def log(target: dict) -> None:
                print(f"{preset} {gating} L={target['layers']}: {target['risk']:.5f} ± {target['risk_se']:.5f} "
                      f"(fit {target['fit_risk']:.5f}, starts {np.round(target['start_risks'], 5).tolist()}, "
                      f"{target['seconds']:.1f} s)", flush=True)

            targets[gating] = (_vector_from_scalar(spec, targets["scalar"]) if gating == "vector" and "scalar" in targets
                               else None) or compute_targets(spec, MAX_LAYERS, gating, log=log)
        _asset_path(preset).write_text(json.dumps({"spec": spec.to_dict(), "targets": targets}) + "\n")
    _asset.cache_clear()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gla_core.causal_wpgd",
                                     description="Precompute the presets' L-step causal WPGD targets.")
    parser.add_argument("--write-assets", action="store_true", help="recompute assets/causal_wpgd/*.json")
    parser.add_argument("--presets", nargs="*", default=None, help="only these presets")
    args = parser.parse_args(argv)
    if args.write_assets:
        write_assets(args.presets or list_presets())


if __name__ == "__main__":
    main()
