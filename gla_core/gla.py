"""Gated linear attention (docs/theory.md §2), read top to bottom.

    z_t (token) -> q_t = Wq z_t, k_t = Wk z_t, v_t = Wv z_t, gate g_t = sigmoid(Wg z_t + bg)
    S_t = G_t ⊙ S_{t-1} + v_t k_t^T,   o_t = S_t q_t
    Z^{l+1} = Z^l + GLA_l(Z^l),         prediction = -Z^L[query, label slot]

Gates are kept in log space (`gate_log = logsigmoid(...)`); products of gates are exponentials of
sums of log gates. The same attention has three forms:

- reference: the token loop of `reference.gla_reference` (slow, obvious);
- parallel:  o = (decay ⊙ Q K^T) V with the (T, T) decay matrix built from segment sums (quadratic in T);
- chunked:   inside chunks of C tokens one matrix product (gate products factored as exponentials of
             running sums from the chunk's start), plus a state recurrence across chunks (linear in T),
             as in Mamba-2's SSD and fla's chunk kernels.

`GLAConfig.form = "auto"` picks parallel or chunked by gating and prompt length (`choose_form`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .reference import gla_reference

GATINGS = ("none", "scalar", "vector")
FORMS = ("auto", "parallel", "chunked", "reference")
MAX_LAYERS = 4

# Within a chunk, the chunked form's scores for s < t are one matrix product, since there
# omega_{t,s} = exp(c_t) exp(-c_s) with c the running sum of log gates from the chunk's start. exp(-c_s) grows as
# gates close, so a chunk takes that product only while its gate product stays above
# exp(FACTORED_MIN_LOG_DECAY) = 2e-9; a chunk whose gates close further is split into chunks of SEGMENT_SUM_CHUNK
# tokens, and at that size takes the parallel form (segment sums, exact for any gates). At the limit, outputs and
# gradients are within 1.5e-15 (float64) and 8.5e-7 (float32) of the token loop in relative RMS
# (tests/test_gla.py, test_factored_chunks_at_their_limit_match_the_reference).
FACTORED_MIN_LOG_DECAY = -20.0
SEGMENT_SUM_CHUNK = 8
# Measured on this project's 2-core CPU (one thread, process CPU time, so other jobs on the machine do not count),
# forward + backward, float32, milliseconds; gates sigmoid(2 + N(0, 1)); "one" is the chunked form with the whole
# prompt as its one chunk (no padding, no recurrence):
#  batch 256, token width 8 (the training batch):
#                    parallel | chunked C = 16     32    one
#   none   T =   16:      0.9 |             1.9    2.7    1.3
#          T =   43:      2.9 |             4.7    6.6    3.0
#          T =   64:      5.4 |             6.1    6.6    7.9
#          T =   96:       13 |             8.8    9.9     16
#   scalar T =   16:      1.6 |             1.5    2.8    1.5
#          T =   43:      8.7 |             5.3    6.9    3.5
#          T =   64:       20 |             6.6    6.6    6.4
#          T =   96:       44 |              10     10     18
#   vector T =   16:       11 |             1.5    2.8    1.5
#          T =   43:       88 |             7.2    8.3    4.1
#          T =   64:        - |             8.2    9.1    7.7
#          T =   96:        - |              13     15     20
#  batch 32, token width 16: alike (scalar T = 43: 1.4 | 1.6 2.0 1.0; vector T = 64: - | 2.4 2.3 1.6), and forward
#  alone at an evaluation's batch (scalar, 540 prompts of 43 tokens): parallel 7.8, C = 16 3.1, one chunk 2.5.
#  Longer prompts (batch 32, width 16; C = 8 is slower still):
#   none   T =  512:      118 |              16     12
#          T = 2048:        - |              74     55
#   scalar T =  512:      464 |              17     13
#          T = 2048:        - |              77     62
#   vector T =  512:        - |              20     16
#          T = 2048:        - |              83     73
# The parallel form's decay matrix costs O(B T^2), O(B T^2 D) for vector gates: without gating (no decay matrix) it
# wins up to about 96 tokens, with gates never by more than a few hundredths of a millisecond. Rule: parallel up to
# PARALLEL_MAX_TOKENS, chunked beyond; a prompt of up to two chunks is one chunk (default_chunk_size), a longer one
# is cut into chunks of CHUNK_SIZE.
PARALLEL_MAX_TOKENS = {"none": 96, "scalar": 0, "vector": 0}
CHUNK_SIZE = 32


# ---------------------------------------------------------------- configuration
@dataclass(frozen=True)
class GLAConfig:
    """token_width D; label_index d (the x block is z[:d]); 1–4 layers; gating none | scalar | vector;
    form auto | parallel | chunked | reference; chunk_size C for the chunked form (None: default_chunk_size)."""

    token_width: int
    label_index: int
    layers: int = 1
    gating: str = "scalar"
    form: str = "auto"
    chunk_size: int | None = None

    def __post_init__(self):
        if self.token_width < 2:
            raise ValueError(f"token_width: must be at least 2 (x and the label slot), got {self.token_width}")
        if not 1 <= self.label_index < self.token_width:
            raise ValueError(f"label_index: must be from 1 to token_width - 1 = {self.token_width - 1}, "
                             f"got {self.label_index}")
        if not 1 <= self.layers <= MAX_LAYERS:
            raise ValueError(f"layers: must be from 1 to {MAX_LAYERS}, got {self.layers}")
        if self.gating not in GATINGS:
            raise ValueError(f"gating: must be one of {', '.join(GATINGS)}, got {self.gating!r}")
        if self.form not in FORMS:
            raise ValueError(f"form: must be one of {', '.join(FORMS)}, got {self.form!r}")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ValueError(f"chunk_size: must be at least 1 (or None for the default), got {self.chunk_size}")


# ---------------------------------------------------------------- gate products
def segment_sums(x: torch.Tensor) -> torch.Tensor:
    """x (..., T) -> (..., T, T) with [t, s] = sum_{m=s+1..t} x_m for s <= t, and -inf for s > t.

    Each entry is a running sum of the terms it covers (a cumsum down a masked copy of x), never
    the difference of two prefix sums: over a long prompt those grow large and their difference
    loses the digits that matter (or becomes inf - inf). Log gates are <= 0, so these running sums
    have no cancellation at all.
    """
    num_tokens = x.shape[-1]
    ones = torch.ones(num_tokens, num_tokens, dtype=torch.bool, device=x.device)
    strictly_lower, lower = ones.tril(-1), ones.tril(0)
    terms = x[..., :, None].expand(*x.shape, num_tokens).masked_fill(~strictly_lower, 0.0)  # [m, s] = x_m if m > s
    return terms.cumsum(dim=-2).masked_fill(~lower, -math.inf)


def weights_from_gate_log(gate_log: torch.Tensor) -> torch.Tensor:
    """Induced weights omega_{t,s} = prod_{m=s+1..t} g_m (0 for s > t).

    gate_log (B, T) -> (B, T, T); gate_log (B, T, D) -> (B, T, T, D), one weight per key coordinate.
    """
    if gate_log.dim() == 2:
        return torch.exp(segment_sums(gate_log))
    return torch.exp(segment_sums(gate_log.transpose(1, 2))).permute(0, 2, 3, 1)


def suffix_sums(x: torch.Tensor, dim: int) -> torch.Tensor:
    """[s] = sum of x over the positions after s along dim (0 at the last position): the log of
    the gate product from s + 1 to the end. A reversed running sum, so again no differences."""
    after = x.flip(dim).cumsum(dim).flip(dim).narrow(dim, 1, x.shape[dim] - 1)
    return torch.cat([after, torch.zeros_like(x.narrow(dim, 0, 1))], dim=dim)


# ---------------------------------------------------------------- the three forms of attention
def gating_of(gate_log: torch.Tensor | None) -> str:
    return "none" if gate_log is None else ("scalar" if gate_log.dim() == 2 else "vector")


def gla_parallel(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                 gate_log: torch.Tensor | None) -> torch.Tensor:
    """o_t = sum_{s<=t} (sum_c q_t[c] k_s[c] omega_{t,s(,c)}) v_s in one shot. Shapes as gla_reference."""
    if gate_log is None:
        scores = (q @ k.transpose(1, 2)).tril()                            # (B, T, T)
    elif gate_log.dim() == 2:
        scores = (q @ k.transpose(1, 2)) * weights_from_gate_log(gate_log)
    else:
        # vector gates: the weight differs per key coordinate, so it enters inside the q.k sum
        # (elementwise then sum: as an einsum this becomes many tiny matrix products, several times slower)
        scores = (q[:, :, None, :] * weights_from_gate_log(gate_log) * k[:, None, :, :]).sum(-1)
    return scores @ v


def within_chunks(q_c: torch.Tensor, q_from_start: torch.Tensor, k_c: torch.Tensor, v_c: torch.Tensor,
                  gate_log_c: torch.Tensor, from_start: torch.Tensor, gated: bool = True) -> torch.Tensor:
    """Each chunk's outputs from its own tokens, (B*N, C, D). q_from_start = q_c ⊙ exp(from_start), from_start
    the running sums of log gates from the chunk's start (B*N, C, D or 1); gated: False without gating.

    For s <= t, omega_{t,s} = exp(from_start_t) exp(-from_start_s), so the scores are one matrix product (a token's
    own weight, 1, comes out as exp(c) exp(-c): exact but for rounding, like every other weight). Chunks whose
    gates close further than FACTORED_MIN_LOG_DECAY take closed_chunks instead. On the meta device (shapes only,
    for train.training_memory_bytes) gated chunks run both ways, so what is counted bounds either.
    """
    if q_c.is_meta:
        if gated:
            closed_chunks(q_c, k_c, v_c, gate_log_c)
        return _factored(q_c, q_from_start, k_c, v_c, from_start)
    factored = from_start[:, -1].amin(dim=-1) >= FACTORED_MIN_LOG_DECAY                 # (B*N,)
    if factored.all():
        return _factored(q_c, q_from_start, k_c, v_c, from_start)
    if not factored.any():
        return closed_chunks(q_c, k_c, v_c, gate_log_c)
    rest, closed = factored.nonzero().squeeze(1), (~factored).nonzero().squeeze(1)
    parts = (_factored(*(x[rest] for x in (q_c, q_from_start, k_c, v_c, from_start))),
             closed_chunks(*(x[closed] for x in (q_c, k_c, v_c, gate_log_c))))
    return torch.cat(parts)[torch.argsort(torch.cat([rest, closed]))]


def _factored(q_c: torch.Tensor, q_from_start: torch.Tensor, k_c: torch.Tensor, v_c: torch.Tensor,
              from_start: torch.Tensor) -> torch.Tensor:
    scores = q_from_start @ (k_c * torch.exp(-from_start)).transpose(1, 2)
    # s <= t only, as a product with a 0/1 mask: on CPU a little faster than tril (the Depth page's 4-layer step:
    # 16.6 -> 15.9 ms). What it zeroes is finite (at most exp(-FACTORED_MIN_LOG_DECAY) |q_t| |k_s|), so 0 x it is 0.
    num_tokens = q_c.shape[1]
    lower = torch.ones(num_tokens, num_tokens, dtype=q_c.dtype, device=q_c.device).tril()
    return (scores * lower) @ v_c


def closed_chunks(q_c: torch.Tensor, k_c: torch.Tensor, v_c: torch.Tensor, gate_log_c: torch.Tensor) -> torch.Tensor:
    """Chunks whose gates close too far to factor, each taken as a prompt of its own: the chunked form in chunks of
    SEGMENT_SUM_CHUNK tokens (whose smaller gate products may factor), and at that size the parallel form, exact for
    any gates (its decay tensors grow as C^2, C^2 D for vector gates, so it is kept to small chunks)."""
    if q_c.shape[1] <= SEGMENT_SUM_CHUNK:
        return gla_parallel(q_c, k_c, v_c, gate_log_c)
    return gla_chunked(q_c, k_c, v_c, gate_log_c, SEGMENT_SUM_CHUNK)


def gla_chunked(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, gate_log: torch.Tensor | None,
                chunk_size: int | None = None) -> torch.Tensor:
    """The same outputs in O(T C D + T D^2): one matrix product inside each chunk of C tokens (default
    default_chunk_size), a recurrence across them."""
    batch, num_tokens, width = q.shape
    chunk_size = chunk_size or default_chunk_size(num_tokens)
    gated = gate_log is not None
    if not gated:
        gate_log = q.new_zeros(batch, num_tokens)   # no gating = gates of exactly 1
    # 1. pad to whole chunks; padding sits after every real token, so it changes no real output
    padding = -num_tokens % chunk_size
    num_chunks = (num_tokens + padding) // chunk_size

    def to_chunks(x: torch.Tensor) -> torch.Tensor:
        if padding:
            x = F.pad(x, (0, 0, 0, padding)) if x.dim() == 3 else F.pad(x, (0, padding))
        return x.reshape(batch * num_chunks, chunk_size, *x.shape[2:])

    q_c, k_c, v_c, gate_log_c = map(to_chunks, (q, k, v, gate_log))
    # Log decays per key coordinate (B*N, C, D or 1): a scalar gate decays every key coordinate alike
    decay_log = gate_log_c if gate_log_c.dim() == 3 else gate_log_c[..., None]
    if num_chunks == 1:
        # No state enters the only chunk, so its first gate decays nothing: out of the running sums, its gradient is
        # exactly 0, as in the token loop (in them, it would cancel in every exp(c_t) exp(-c_s) but for rounding)
        decay_log = torch.cat([torch.zeros_like(decay_log[:, :1]), decay_log[:, 1:]], dim=1)
    from_start = decay_log.cumsum(dim=1)          # log of the gate product from the chunk's start to each position
    q_from_start = q_c * torch.exp(from_start)
    # 2. within each chunk
    intra = within_chunks(q_c, q_from_start, k_c, v_c, gate_log_c, from_start, gated)
    if num_chunks == 1:
        return intra.reshape(batch, chunk_size, -1)[:, :num_tokens]
    # 3. what each chunk alone leaves in the state at its end: sum_s v_s (k_s ⊙ decay(s -> end))^T
    chunk_state = torch.einsum("ncv,nck->nvk", v_c, k_c * torch.exp(suffix_sums(decay_log, dim=1)))
    chunk_decay = torch.exp(from_start[:, -1])                             # (B*N, D or 1)
    chunk_state = chunk_state.reshape(batch, num_chunks, v.shape[-1], width)
    chunk_decay = chunk_decay.reshape(batch, num_chunks, 1, -1)
    # 4. across chunks: the state entering each chunk, S_in[n] = decay_{n-1} ⊙ S_in[n-1] + chunk_state[n-1]
    # (unbind, not indexing chunk by chunk: each index's backward would write a whole zero tensor)
    state = q.new_zeros(batch, v.shape[-1], width)
    entering = []
    for decay, contribution in zip(chunk_decay.unbind(1), chunk_state.unbind(1)):
        entering.append(state)
        state = decay * state + contribution
    entering = torch.stack(entering, dim=1).reshape(batch * num_chunks, v.shape[-1], width)
    # 5. each position reads the entering state, decayed by the gates from the chunk start to itself
    inter = torch.einsum("nvk,nck->ncv", entering, q_from_start)
    return (intra + inter).reshape(batch, num_chunks * chunk_size, -1)[:, :num_tokens]


def query_row_scores(q_last: torch.Tensor, k: torch.Tensor, gate_log: torch.Tensor | None) -> torch.Tensor:
    """The last position's scores, a_s = sum_c q_T[c] k_s[c] omega_{T,s(,c)}: (B, T), in O(T D); its output is
    o_T = sum_s a_s v_s, so a model that reads only the query's output needs nothing more (GLALayer.last_output).

    q_last (B, D) is the last token's query; k, gate_log as gla_reference. The weights
    omega_{T,s} = exp(suffix sum of log gates after s) are the query row of the decay matrix, so no
    (T, T) matrix is ever built. Products and sums rather than einsums: their backward is elementwise too,
    where an einsum's is a batch of outer products (B matrices of T x 1 times 1 x D, slow on CPU).
    """
    if gate_log is None:
        return (k * q_last[:, None, :]).sum(-1)
    omega = torch.exp(suffix_sums(gate_log, dim=1))                        # (B, T) or (B, T, D)
    if omega.dim() == 2:   # one weight per position: applied to the T sums, not to the T x D products
        return (k * q_last[:, None, :]).sum(-1) * omega
    return (k * omega * q_last[:, None, :]).sum(-1)


def default_chunk_size(num_tokens: int) -> int:
    """The whole prompt as one chunk up to two chunks' length (no padding, no recurrence), CHUNK_SIZE beyond."""
    return num_tokens if num_tokens <= 2 * CHUNK_SIZE else CHUNK_SIZE


def choose_form(num_tokens: int, gating: str) -> str:
    """The faster form on CPU for prompts of num_tokens tokens (timings at PARALLEL_MAX_TOKENS)."""
    return "chunked" if num_tokens > PARALLEL_MAX_TOKENS[gating] else "parallel"


def gla_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, gate_log: torch.Tensor | None,
                  form: str = "auto", chunk_size: int | None = None) -> torch.Tensor:
    """Dispatch to one form. q, k, v (B, T, D); gate_log None, (B, T) or (B, T, D)."""
    if form == "auto":
        form = choose_form(q.shape[1], gating_of(gate_log))
    if form == "parallel":
        return gla_parallel(q, k, v, gate_log)
    if form == "chunked":
        return gla_chunked(q, k, v, gate_log, chunk_size)
    if form == "reference":
        return gla_reference(q, k, v, gate_log)
    raise ValueError(f"form: must be one of {', '.join(FORMS)}, got {form!r}")


# ---------------------------------------------------------------- layer and model
def _normal_(tensor: torch.Tensor, std: float, generator: torch.Generator) -> None:
    """Fill with N(0, std^2) draws from `generator` (on the generator's device, then moved)."""
    draw = torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype, device=generator.device)
    tensor.copy_(std * draw)


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


class GLALayer(nn.Module):
    """One GLA head over tokens of width D: q, k, v projections D x D (no bias), gate Linear(D, 1)
    (scalar) or Linear(D, D) (vector) or none."""

    def __init__(self, config: GLAConfig):
        super().__init__()
        self.config = config
        width = config.token_width
        # skip_init: parameters are filled by GLAModel's explicit-generator inits, never torch's global RNG
        self.Wq = nn.utils.skip_init(nn.Linear, width, width, bias=False)
        self.Wk = nn.utils.skip_init(nn.Linear, width, width, bias=False)
        self.Wv = nn.utils.skip_init(nn.Linear, width, width, bias=False)
        gate_outputs = {"none": 0, "scalar": 1, "vector": width}[config.gating]
        self.Wg = nn.utils.skip_init(nn.Linear, width, gate_outputs) if gate_outputs else None

    def gate_log(self, z: torch.Tensor) -> torch.Tensor | None:
        """log g for tokens z (B, T, D): (B, T) scalar, (B, T, D) vector, None without gating."""
        if self.Wg is None:
            return None
        gate_log = F.logsigmoid(self.Wg(z))
        return gate_log.squeeze(-1) if self.config.gating == "scalar" else gate_log

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, T, D) -> o (B, T, D)."""
        return gla_attention(self.Wq(z), self.Wk(z), self.Wv(z), self.gate_log(z),
                             self.config.form, self.config.chunk_size)

    def last_output(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, T, D) -> o_T (B, D): forward(z)[:, -1] without the other positions' outputs (query_row_scores).

        Values enter o_T only through a sum over positions, o_T = Wv sum_s a_s z_s, so Wv is applied once, to that
        sum, not to every token. So is Wk, where a gate weighs every key coordinate alike:
        q_T . (Wk z_s) = (Wk^T q_T) . z_s. Vector gates weigh each key coordinate apart, so there the keys are
        projected token by token. The default preset's training step, forward and backward: 3.5 -> 2.3 ms (its
        one-step einsums had a backward of outer products, slow on CPU); a whole default run 0.83 -> 0.59 s of CPU.
        """
        q_last, gate_log = self.Wq(z[:, -1]), self.gate_log(z)
        if self.config.gating == "vector":
            scores = query_row_scores(q_last, self.Wk(z), gate_log)
        else:
            scores = query_row_scores(q_last @ self.Wk.weight, z, gate_log)
        return self.Wv((scores[..., None] * z).sum(1))


class GLAModel(nn.Module):
    """A residual stack of GLA layers that predicts the query's label.

    Parameters start from `init_random(generator)` (a fixed seed-0 generator when none is given);
    `init_structured` restarts them near the WPGD construction. Use `.double()` for float64.
    """

    def __init__(self, config: GLAConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList(GLALayer(config) for _ in range(config.layers))
        self.init_random(generator if generator is not None else torch.Generator().manual_seed(0))

    # ------------------------------------------------------------ initialisation
    @torch.no_grad()
    def init_random(self, generator: torch.Generator, std: float | None = None) -> "GLAModel":
        """Every weight N(0, std^2) (std = 1/sqrt(D) by default), gate biases 0 (gates near 1/2)."""
        std = self.config.token_width ** -0.5 if std is None else std
        for name, parameter in self.named_parameters():
            if name.endswith("bias"):
                parameter.zero_()
            else:
                _normal_(parameter, std, generator)
        return self

    @torch.no_grad()
    def init_structured(self, generator: torch.Generator, qk_scale: float = 0.3, gate: float = 0.97,
                        noise: float = 0.01) -> "GLAModel":
        """Start near the WPGD construction of docs/theory.md §3: Wv reads the label slot with -1, Wq and Wk
        are qk_scale * I on the x block (so each layer is a GD step of size qk_scale^2; about 1/n suits
        n examples), every gate starts at `gate` through its bias. Every weight also gets N(0, noise^2)."""
        if not 0.0 < gate < 1.0:
            raise ValueError(f"gate: must be strictly between 0 and 1, got {gate}")
        self.init_random(generator, std=noise)
        d = label = self.config.label_index
        for layer in self.layers:
            layer.Wv.weight[label, label] = -1.0
            layer.Wq.weight[:d, :d].diagonal().add_(qk_scale)
            layer.Wk.weight[:d, :d].diagonal().add_(qk_scale)
            if layer.Wg is not None:
                layer.Wg.bias.fill_(_logit(gate))
        return self

    # ------------------------------------------------------------ forward
    def hidden_states(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """[Z^0 = tokens, Z^1, ..., Z^L], each (B, T, D), with Z^{l+1} = Z^l + GLA_l(Z^l)."""
        states = [tokens]
        for layer in self.layers:
            states.append(states[-1] + layer(states[-1]))
        return states

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T, D), query last -> prediction (B,) = -Z^L[:, -1, label_index]
        (minus: the construction writes -yhat, as Wv = -1 on the label slot).

        Only the query's row of the last layer is read, so that layer computes that row alone
        (`last_output`, O(T) instead of the O(T^2) parallel form). The reference form runs every
        layer in full: it is the slow, obvious check on this shortcut.
        """
        label = self.config.label_index
        if self.config.form == "reference":
            return -self.hidden_states(tokens)[-1][:, -1, label]
        z = tokens
        for layer in self.layers[:-1]:
            z = z + layer(z)
        return -(z[:, -1, label] + self.layers[-1].last_output(z)[:, label])

    # ------------------------------------------------------------ what the gates do
    def gate_logs(self, tokens: torch.Tensor) -> list[torch.Tensor | None]:
        """Per layer, log gates computed from that layer's input Z^l (the last layer's output is not needed)."""
        gate_logs, z = [], tokens
        for index, layer in enumerate(self.layers):
            gate_logs.append(layer.gate_log(z))
            if index < len(self.layers) - 1:
                z = z + layer(z)
        return gate_logs

    def gates(self, tokens: torch.Tensor) -> list[torch.Tensor | None]:
        """Per layer, gate values g in (0, 1): (B, T) scalar, (B, T, D) vector, None without gating."""
        return [None if gate_log is None else torch.exp(gate_log) for gate_log in self.gate_logs(tokens)]

    def induced_weights(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """Per layer omega_{t,s} = prod_{m=s+1..t} g_m: (B, T, T), or (B, T, T, D) per key coordinate
        for vector gates; the all-ones lower triangle without gating."""
        batch, num_tokens, _ = tokens.shape
        ones = torch.ones(num_tokens, num_tokens, dtype=tokens.dtype, device=tokens.device).tril()
        return [ones.expand(batch, -1, -1) if gate_log is None else weights_from_gate_log(gate_log)
                for gate_log in self.gate_logs(tokens)]

    def induced_query_weights(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """Per layer the query's row omega_{T,s} = prod_{m=s+1..T} g_m: (B, T) or (B, T, D);
        costs O(T) where induced_weights costs O(T^2)."""
        return [torch.ones_like(tokens[..., 0]) if gate_log is None else torch.exp(suffix_sums(gate_log, dim=1))
                for gate_log in self.gate_logs(tokens)]
