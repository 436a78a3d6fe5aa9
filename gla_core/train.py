"""Training a GLA on multitask prompts, with snapshots another thread can read.

    trainer = Trainer(spec, TrainConfig(gating="scalar"))
    result = trainer.run()                 # or run in a thread: TrainingRun(trainer).start()
    trainer.snapshot()                     # latest Snapshot, safe to read from any thread

Every step draws fresh prompts from a per-run generator (never the global seed); the test risk is
measured on a fixed held-out set drawn from a second seeded generator. The run stops when asked
(checked every step), when it diverges, or when it hits its step or time limit, and says why.

Why the defaults converge well within their 100 steps (40-60 on the presets; docs/benchmarks.md has
the measurements):
- the model starts at the WPGD construction of docs/theory.md §3 with every gate at `init_gate` = 0.998:
  the optimal weights are flat within a task, so data-token gates must end near 1, and only the
  delimiter gates have to learn (they fall to about 0.3 on the default preset);
- keys and queries start at sqrt(eta) I, eta = 1 / (n + d + 1 + sigma^2): the best one-step size for
  uniform weights if every example came from the query task (no task correlations used);
- Adam with one learning rate per kind of parameter (Adam moves each parameter by about its learning
  rate per step, whatever the gradient's size, so each kind gets a step fit to the distance it has to
  travel) and a learning rate decaying linearly to 0 (`Recipe`, ONE_LAYER).

Deeper models travel further (DEEP): on the depth preset a trained 2-4 layer GLA goes below its L-step causal
WPGD target by making its layers' keys and queries larger than the first step's sqrt(eta) (0.17 -> 0.25)
and its first layer write onto the x block as well as the label slot. With keys and queries at x0.1 and a
decay from step 0 those moves did not fit in 100 steps (6-16% short); x0.5, the learning rate held for 60%
of the steps and Adam's beta2 = 0.99 (second moments that follow a changing landscape in tens of steps)
bring them there in 50-90 (docs/benchmarks.md, tests/test_depth_targets.py). One layer keeps its recipe:
its keys and queries only set its step size, which starts near the best one and where the risk is steep
(the deep recipe leaves the default preset 0.9-2.4% above its target at 100 steps, against 0-0.5%).

Early stop (TrainConfig.patience > 0, off by default and whenever a fixed number of steps is asked for):
the run ends once `patience` live evaluations in a row have not improved on the best live test risk by
more than that evaluation's standard error; the result says at which step and why (`early_stop`). A live
risk's standard error (LIVE_EVAL_PROMPTS: about 1% of the risk on one layer, 10-15% on the depth preset's deeper
models) is larger than what the slow last stretch of a run gains in 15 steps, so with patience 3-4 a run stops
1-3% short of its target on one layer and up to 30% short on 2-4 layers (docs/benchmarks.md, measured with live
points of 1024 prompts): the app keeps it off.

Stop at a target (TrainConfig.target_risk > 0, off by default; the Depth page sets each model's L-step target):
the run ends at the first evaluation at which the whole held-out set puts the model at its target or below it,
within TARGET_MARGIN_SE standard errors of the difference (at_target), the verdict its final numbers then get.
A live evaluation only decides when to look (its standard error is 4 times the whole set's); the whole set decides
whether to stop. On the depth preset 2-4 layers get there at steps 50-80 of 100 (docs/benchmarks.md).
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import math
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any, Callable

import numpy as np
import torch

from .gla import GATINGS, MAX_LAYERS, GLAConfig, GLAModel
from .limits import MAX_BATCH, MAX_STEPS
from .sampling import PromptSampler, Prompts
from .spec import PromptSpec, SpecError
from .theory import solve

DEVICES = ("auto", "cpu", "cuda")
MAX_HISTORY = 1000          # rows kept; older rows are thinned, first and last always kept
# The trajectory (frames for a replay): at most MAX_FRAMES, and at most TRAJECTORY_BYTES of weights and
# gates in all, so a 2048-token prompt with vector gates and 4 layers (about 0.7 MB a frame) keeps 22 frames
# rather than 140 MB. Thinning keeps the first frame (the untrained model) and the last.
MAX_FRAMES = 200
FRAME_KEYS = ("test_risk", "test_risk_se", "cosine", "induced_weights", "gates")   # a frame: these and its step
TRAJECTORY_BYTES = 16 * 2**20
DIVERGENCE_FACTOR = 10.0    # test risk this many times the zero predictor's risk counts as divergence
TEST_SET_FLOATS = 8_000_000  # memory budget of the held-out tokens (32 MB in float32)
# Evaluations during a run read the first LIVE_EVAL_PROMPTS held-out prompts, the final one all of them:
# a live point then costs about one training step (the depth preset's 4-layer model: 13 ms against 15), while the
# final test risk gets the whole set's precision. Standard errors of a trained model's risk on 512 / 1024 / all
# 8192 prompts: default preset 1.3 / 0.9 / 0.4% of the risk; depth preset, 2 layers 12 / 9 / 2.8%, 4 layers
# 15 / 12 / 3.6%. Live points come every 5 steps (eval_every), so a replay of the default 100 steps has 21 frames.
# At 1024 prompts the Depth page's four models took 6% longer (docs/benchmarks.md).
LIVE_EVAL_PROMPTS = 512
# Prompts per forward pass at evaluation, counted as B * T * T: passes that fit the CPU's caches are
# 2-2.5x as fast as one big pass (8192 prompts of the default preset: 65 ms against 169 ms).
EVAL_CHUNK_FLOATS = 1_000_000
WEIGHT_PROMPTS = 128         # prompts averaged for the induced weights shown
# Learning rates as multiples of TrainConfig.lr. Gate parameters travel several logits (a delimiter
# gate goes from 0.998 to about 0.3: a logit change of 7); keys and queries start near 0.17 and the
# risk is steep in them, so they take small steps; values take TrainConfig.lr.
GATE_LR_FACTOR = 15.0
VALUE_LR_FACTOR = 1.0


@dataclass(frozen=True)
class Recipe:
    """How the optimiser moves a model: keys' and queries' learning rate (x TrainConfig.lr), Adam's betas, and
    the share of the steps the learning rate is held before it decays linearly to 0.

    With `at_key_scale` set, the keys' and queries' factor holds for a model whose keys start at that scale
    (Trainer.key_scale) and scales with it: Adam moves a weight by about its learning rate per step whatever
    its size, so small keys (a long prompt's) need proportionally small steps."""

    key_query_lr_factor: float
    betas: tuple[float, float]
    hold_fraction: float
    at_key_scale: float | None = None


ONE_LAYER = Recipe(key_query_lr_factor=0.1, betas=(0.9, 0.999), hold_fraction=0.0)
# x0.1 left 2-4 layer models 6-16% short of their L-step target at 100 steps; x1 diverges. Tuned on the
# depth preset, whose keys start at sqrt(1/46.01) = 0.147; unscaled, x0.5 made a 4-layer model of a 521-token
# prompt (keys at 0.043) diverge at its second step.
DEEP = Recipe(key_query_lr_factor=0.5, betas=(0.9, 0.99), hold_fraction=0.6, at_key_scale=math.sqrt(1 / 46.01))


def recipe(layers: int) -> Recipe:
    return ONE_LAYER if layers == 1 else DEEP


ANALYTIC_KEY = {"none": "linear_attention", "scalar": "scalar_gla", "vector": "vector_gla"}


@dataclass(frozen=True)
class TrainConfig:
    """How to train: the model (gating, layers), the optimisation (steps, base learning rate, prompts per
    step, seed, starting gate value), where (device) and how often to evaluate; `validate` checks it."""

    gating: str = "scalar"
    layers: int = 1
    steps: int = 100
    lr: float = 0.02
    batch: int = 256
    seed: int = 0
    device: str = "auto"
    test_size: int = 0          # 0: as many held-out prompts as fit a fixed memory budget (at most 8192)
    eval_every: int = 5
    max_seconds: float = 120.0
    init_gate: float = 0.998    # every gate's value at the start (through the gate bias)
    # Early stop: end the run once this many live evaluations in a row have not improved on the best live
    # test risk by more than their standard error (0: off, run every step)
    patience: int = 0
    # Stop at a target (0: off, run every step): end the run once the whole held-out set puts its test risk at
    # target_risk or below it, within 2 standard errors of the difference (target_risk_se: the target's own)
    target_risk: float = 0.0
    target_risk_se: float = 0.0

    def validate(self) -> "TrainConfig":
        def check_int(name: str, low: int, high: int) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise SpecError(name, f"must be a whole number from {low} to {high}, got {value!r}")

        if self.gating not in GATINGS:
            raise SpecError("gating", f"must be one of {', '.join(GATINGS)}, got {self.gating!r}")
        if self.device not in DEVICES:
            raise SpecError("device", f"must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise SpecError("device", "cuda was asked for but no CUDA device is available (use auto or cpu)")
        check_int("layers", 1, MAX_LAYERS)
        check_int("steps", 1, MAX_STEPS)
        check_int("batch", 1, MAX_BATCH)
        check_int("seed", 0, 2**31 - 1)
        check_int("test_size", 0, 65536)
        check_int("eval_every", 1, 100_000)
        check_int("patience", 0, 1000)
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not (0 < self.lr <= 10) or not math.isfinite(self.lr):
            raise SpecError("lr", f"must be a number in (0, 10], got {self.lr!r}")
        if isinstance(self.max_seconds, bool) or not isinstance(self.max_seconds, (int, float)) or not self.max_seconds > 0:
            raise SpecError("max_seconds", f"must be a positive number of seconds, got {self.max_seconds!r}")
        if (isinstance(self.init_gate, bool) or not isinstance(self.init_gate, (int, float))
                or not 0 < self.init_gate < 1):
            raise SpecError("init_gate", f"must be a number strictly between 0 and 1, got {self.init_gate!r}")
        for name in ("target_risk", "target_risk_se"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise SpecError(name, f"must be a number from 0 (off) up, got {value!r}")
        return self

    def resolved_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)


class Status(StrEnum):
    """How a run stands or ended (Snapshot.status). Each is also its plain string, as the run JSON has it."""

    IDLE = "idle"                 # not started
    RUNNING = "running"
    FINISHED = "finished"         # completed its steps
    STOPPED = "stopped"           # by its owner
    DIVERGED = "diverged"         # the loss or the test risk blew up: never a result
    TIME_LIMIT = "time limit"     # stopped by its time limit
    ERROR = "error"               # failed: never a result


ENDED_BADLY = (Status.DIVERGED, Status.ERROR)   # runs that are never shown or shared as a result


@dataclass
class Snapshot:
    """What a reader sees of a run. Plain Python data, safe to hand to another thread."""

    step: int = 0
    total_steps: int = 0
    seconds: float = 0.0
    train_loss: float = float("nan")
    test_risk: float = float("nan")
    test_risk_se: float = float("nan")   # standard error of test_risk (the held-out set is finite)
    test_mse: float = float("nan")
    cosine: float = float("nan")
    induced_weights: list = field(default_factory=list)   # per layer: query's weights per example
    gates: list = field(default_factory=list)             # per layer: mean gate per token (per coordinate if vector)
    status: Status = Status.IDLE
    reason: str = ""
    early_stop_step: int | None = None   # the step where an early-stop rule ended a finished run (None: it did not)


TARGET_MARGIN_SE = 2.0   # a risk within this many standard errors of its target (or below) is at it


def at_target(risk: float, risk_se: float, target_risk: float, target_risk_se: float) -> bool:
    """Whether a test risk (± SE) is at a target (± SE) or below it: within TARGET_MARGIN_SE standard errors of
    their difference, or lower. A risk without a standard error (NaN) is compared as exact."""
    margin = TARGET_MARGIN_SE * math.hypot(0.0 if math.isnan(risk_se) else risk_se, target_risk_se)
    return risk <= target_risk + margin


def stop_at(target: dict) -> dict:
    """TrainConfig settings that stop a run at a target ("risk", "risk_se": an L-step causal WPGD target)."""
    return {"target_risk": target["risk"], "target_risk_se": target["risk_se"]}


def _cosine(induced, target) -> float:
    """|cos| between induced and analytic weights, (n,) or (n, d).

    Vector weights are compared one key coordinate at a time and averaged over the coordinates the
    target uses: each coordinate's scale is absorbed by its column of P, so only its direction counts.
    """
    induced, target = np.asarray(induced, dtype=float), np.asarray(target, dtype=float)
    if induced.ndim == 1:
        induced, target = induced[:, None], target[:, None]
    cosines = [abs(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b))
               for a, b in zip(induced.T, target.T) if np.linalg.norm(a) * np.linalg.norm(b) > 0]
    return float(np.mean(cosines)) if cosines else float("nan")


def model_config(spec: PromptSpec, config: TrainConfig) -> GLAConfig:
    """The GLA a TrainConfig trains on a spec's prompts."""
    return GLAConfig(token_width=spec.token_width, label_index=spec.label_index, layers=config.layers,
                     gating=config.gating)


def training_memory_bytes(spec: PromptSpec, config: TrainConfig) -> int:
    """About how much memory a run holds at its peak, an upper bound: the activations autograd keeps
    for the backward pass, for the whole batch; the gradients the backward pass holds beside them (at
    most BACKWARD_LARGEST_TENSORS times the largest saved tensor); and the held-out set. The saved
    activations are counted for both ways a chunk may take (gla.within_chunks: factored, or closed beyond
    that form's limit), so the count bounds either. (The largest run the app allows, 8 tasks x 64 examples, d = 16,
    vector gates, 4 layers, batch 128, with every gate at e^-30 saves 1242 MB and peaked at 1522 to 1552 MB
    over its start with glibc's default allocator settings, about 4.7 largest tensors and the 32 MB held-out set
    beyond the saved ones, and at about 1020 MB with the allocator as a run sets it; the estimate is 1897 MB; with
    its gates open as training starts them the same run peaks at 651 to 699 MB; tests/test_train.py measures it.)
    A front end refuses runs over its budget before they start (see lab_ui)."""
    gla = model_config(spec, config)
    saved = _saved_bytes(gla, spec.num_tokens, config.batch)
    backward = BACKWARD_LARGEST_TENSORS * _saved_bytes(gla, spec.num_tokens, config.batch, largest=True)
    held_out_floats = max(TEST_SET_FLOATS, 256 * spec.num_tokens * spec.token_width)   # as held_out() sizes it
    return saved + backward + 4 * held_out_floats


BACKWARD_LARGEST_TENSORS = 5   # gradients alive at once in backward, in largest saved tensors (measured: 3 to 4.7)


def check_run_allowed(spec: PromptSpec, config: TrainConfig, *, max_tokens: int | None = None,
                      max_steps: int | None = None, max_batch: int | None = None,
                      memory_budget_bytes: int | None = None, budget_name: str = "this server allows") -> None:
    """The one owner of "may this run start", for the app and the command line alike: the prompt's
    tokens, the steps, the batch and the memory one training step holds (training_memory_bytes), each
    against its limit (None: no limit). Raises SpecError naming the field, its limit and, for memory, the
    batch that fits."""
    if max_tokens is not None and spec.num_tokens > max_tokens:
        raise SpecError("tasks", f"the prompt has {spec.num_tokens} tokens; {budget_name} at most {max_tokens}")
    if max_steps is not None and config.steps > max_steps:
        raise SpecError("steps", f"must be at most {max_steps} ({budget_name} {max_steps}), got {config.steps}")
    if max_batch is not None and config.batch > max_batch:
        raise SpecError("batch", f"must be at most {max_batch} ({budget_name} {max_batch}), got {config.batch}")
    if memory_budget_bytes is None:
        return
    need = training_memory_bytes(spec, config)
    if need > memory_budget_bytes:
        fits, over = 0, config.batch   # bisect for the largest batch that fits (need grows with the batch)
        while over - fits > 1:
            middle = (fits + over) // 2
            if training_memory_bytes(spec, replace(config, batch=middle)) <= memory_budget_bytes:
                fits = middle
            else:
                over = middle
        layers = f"{config.layers} layer{'s' if config.layers != 1 else ''}"
        what = (f"training this prompt ({spec.num_tokens} tokens, {config.gating} gating, {layers}) needs about "
                f"{need / 2**20:,.0f} MB at batch {config.batch}; {budget_name} {memory_budget_bytes / 2**20:,.0f} "
                "MB per run")
        if fits >= 1:
            raise SpecError("batch", f"{what}: choose a batch of at most {fits}")
        raise SpecError("tasks", f"{what}, less than one prompt needs: use fewer examples or layers")


@functools.lru_cache(maxsize=1024)
def _saved_bytes(gla: GLAConfig, num_tokens: int, batch: int, largest: bool = False) -> int:
    """Every tensor autograd saves for backward in a forward pass over `batch` prompts, in bytes
    (largest=True: the largest one alone), counted on PyTorch's meta device: shapes without data, so a
    2048-token model at any batch costs milliseconds, not gigabytes. A tensor saved twice counts twice,
    as a view would: this errs high. On that device the chunked form's gated chunks run both ways they
    may take (gla.within_chunks), and both count."""
    saved = []

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        saved.append(tensor.numel() * tensor.element_size())
        return tensor

    model = GLAModel(gla).to("meta")
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(torch.empty(batch, num_tokens, gla.token_width, device="meta"))
    return max(saved, default=0) if largest else sum(saved)


HELD_OUT_SEED = 2**31 - 1   # the held-out prompts' generator seed, the same for every run


@functools.lru_cache(maxsize=1)
def held_out_prompts(spec: PromptSpec, size: int, device: str) -> Prompts:
    """The held-out prompts of `spec`: `size` of them, from their own seed, the same for every model on the spec.

    Kept for the next run (one set, at most TEST_SET_FLOATS of tokens, per process): a class trains one preset run
    after run in the same worker processes, and drawing the default preset's 8192 prompts took 58 ms of a default
    run's 0.7-1.0 s. Read only: evaluations slice it."""
    return PromptSampler(spec).sample(size, torch.Generator(device).manual_seed(HELD_OUT_SEED))


@functools.cache
def _c_library() -> ctypes.CDLL | None:
    """The C library, looked up once (find_library runs ldconfig in a subprocess)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


# glibc's malloc parameters (mallopt): how much free memory an arena keeps before handing it back, and from what
# size an allocation is a fresh mapping of its own. By default both follow the largest block freed so far, so a
# step's (B, T, T) scores (2 MB on the depth preset) were mapped afresh, and every page faulted in again, at every
# step: 790-1320 page faults a step, 16-22% of a 4-layer model's step (20.8 -> 16.2 ms; docs/benchmarks.md).
# 32 MB kept and mappings from 4 MB do as well as 128 / 32 MB (40-100 faults a step) and leave a class's server
# about 200 MB smaller (the held-out sets, 32 MB each, stay mappings of their own, handed back when freed).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
KEEP_FREED_BYTES = 32 * 2**20
OWN_MAPPING_BYTES = 4 * 2**20


@functools.cache
def _keep_freed_memory_for_reuse() -> None:
    """Let the C heap keep up to KEEP_FREED_BYTES freed (a run's next step reuses them) and give allocations up to
    OWN_MAPPING_BYTES from the heap, for the whole process, once. A run's end still hands the pages back
    (_give_freed_memory_back). Nothing to do on another C library."""
    mallopt = getattr(_c_library(), "mallopt", None)
    if mallopt is not None:
        mallopt(M_TRIM_THRESHOLD, KEEP_FREED_BYTES)
        mallopt(M_MMAP_THRESHOLD, OWN_MAPPING_BYTES)


@contextlib.contextmanager
def denormals_flushed():
    """This thread's floating point flushes denormal numbers (below 1.2e-38 in float32) to zero while a run computes.
    A model trained on the query's output alone sends gradients back through gate products that reach that range
    on long prompts, and on x86 every operation on a denormal takes many times as long: a 4-layer step with vector
    gates at 2048 tokens took 337 ms with them, 135 ms flushed. Nothing a run reports moves (the presets' final risks
    are the same to the last digit)."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def _give_freed_memory_back() -> None:
    """Hand the C heap's free pages back to the system (glibc's malloc_trim). A run's activations are
    freed after every step, but glibc keeps the pages for reuse: the largest run left its process 640 MB
    larger after it ended, 49 MB after a trim. Nothing to do on another C library."""
    trim = getattr(_c_library(), "malloc_trim", None)
    if trim is not None:
        trim(0)


class Trainer:
    """One training run of one model on one spec. `run()` is blocking; read `snapshot()` from anywhere."""

    eval_chunk_floats = EVAL_CHUNK_FLOATS

    def __init__(self, spec: PromptSpec, config: TrainConfig, analytic: dict | None = None):
        self.spec = spec
        self.config = config.validate()
        self.device = config.resolved_device()
        self.analytic = analytic if analytic is not None else solve(spec)
        self.target = self.analytic[ANALYTIC_KEY[config.gating]]
        self.sampler = PromptSampler(spec)
        self.model = self.initial_model().to(self.device)
        self.train_generator = torch.Generator(self.device).manual_seed(config.seed + 1)
        self._held_out: tuple[Prompts, torch.Tensor] | None = None   # made when first needed (held_out())
        # Called before every step, and may block there: a front end's pause and slot point
        # (gla_core.session.LiveRun). Nothing is computed before its first call returns. It may return how many
        # more steps are granted before a pause (None: none planned): a worker process asks ahead while it may.
        self.before_step: Callable[[], int | None] = lambda: None
        self._lock = threading.Lock()
        self._snapshot = Snapshot(total_steps=config.steps)
        self.history: list[dict] = []
        self.frames: list[dict] = []        # the trajectory: see record_frame
        self.stop_requested = threading.Event()

    # ------------------------------------------------------------ reading from other threads
    def snapshot(self) -> Snapshot:
        with self._lock:
            return replace(self._snapshot)

    def history_rows(self) -> list[dict]:
        with self._lock:
            return list(self.history)

    def trajectory(self) -> list[dict]:
        """The frames recorded so far as JSON-ready data (lists), oldest first."""
        with self._lock:
            frames = list(self.frames)
        return [frame_as_json(frame) for frame in frames]

    def _publish(self, **changes: Any) -> None:
        with self._lock:
            self._snapshot = replace(self._snapshot, **changes)

    def _record(self, row: dict) -> None:
        with self._lock:
            self.history.append(row)
            if len(self.history) > MAX_HISTORY:   # keep first, last and every other row in between
                self.history = self.history[:1] + self.history[1:-1:2] + self.history[-1:]

    def _record_frame(self, step: int, evaluation: dict) -> None:
        """One frame of the trajectory: the model as it is after `step` updates (0: untrained)."""
        frame = {"step": step, **{key: evaluation[key] for key in FRAME_KEYS}}
        frame["induced_weights"] = [np.asarray(layer, dtype=np.float32) for layer in frame["induced_weights"]]
        frame["gates"] = [None if gate is None else np.asarray(gate, dtype=np.float32) for gate in frame["gates"]]
        with self._lock:
            self.frames.append(frame)
            self.frames = thin_frames(self.frames, max_frames(frame))

    # ------------------------------------------------------------ model and optimiser
    def initial_model(self) -> GLAModel:
        """The WPGD construction (docs/theory.md §3) with step size 1 / (n + d + 1 + sigma^2) and gates at init_gate.

        That step size is P* for uniform weights when every example comes from the query task
        (docs/theory.md §6 with r = 1, R = 1 1^T): it uses the prompt's sizes, not its task correlations.
        """
        model = GLAModel(model_config(self.spec, self.config))
        return model.init_structured(torch.Generator().manual_seed(self.config.seed), qk_scale=self.key_scale(),
                                     gate=self.config.init_gate, noise=0.0)

    def key_scale(self) -> float:
        """The scale keys and queries start at: sqrt of the step size 1 / (n + d + 1 + sigma^2)."""
        spec = self.spec
        return math.sqrt(1.0 / (spec.num_examples + spec.d + 1 + spec.noise ** 2))

    def optimiser(self) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        """Adam, one learning rate per kind of parameter (see GATE_LR_FACTOR and `recipe`), held for the recipe's
        share of the steps, then decaying linearly to 0. A subclass may return another optimiser and schedule
        (bench/converge.py does)."""
        plan = recipe(self.config.layers)
        key_query = plan.key_query_lr_factor * (self.key_scale() / plan.at_key_scale if plan.at_key_scale else 1.0)
        factors = {"Wg": GATE_LR_FACTOR, "Wq": key_query, "Wk": key_query, "Wv": VALUE_LR_FACTOR}
        groups: dict[str, list[torch.nn.Parameter]] = {kind: [] for kind in factors}
        for name, parameter in self.model.named_parameters():
            if parameter.requires_grad:
                groups[name.split(".")[-2]].append(parameter)       # layers.0.Wg.bias -> Wg
        # fused: one kernel per group. On CPU torch's default is a Python loop over the parameters (about 10 calls
        # each), which in a busy server waits for the interpreter lock at every call: it took 37% of a class's
        # training threads' time holding that lock. Alone: the Depth page's four models 2.83 -> 2.68 s.
        optimizer = torch.optim.Adam([{"params": groups[kind], "lr": self.config.lr * factor, "kind": kind}
                                      for kind, factor in factors.items() if groups[kind]], betas=plan.betas,
                                     fused=True)
        steps = self.config.steps
        decay_steps = steps * (1 - plan.hold_fraction)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min(1.0, max(0.0, (steps - step) / decay_steps)))
        return optimizer, schedule

    # ------------------------------------------------------------ evaluation
    def _at_target(self, risk: float, risk_se: float) -> bool:
        return at_target(risk, risk_se, self.config.target_risk, self.config.target_risk_se)

    def _worth_a_whole_look(self, live: dict) -> bool:
        """Whether a live evaluation's risk is at the target within the margin the whole set would give it (its
        standard error shrinks as one over the root of the prompts read): a whole-set evaluation costs about ten
        of the Depth page's steps, so it is run only where it is likely to stop the run."""
        whole_prompts = len(self.held_out()[0].yq)
        whole_se = live["test_risk_se"] * math.sqrt(min(LIVE_EVAL_PROMPTS, whole_prompts) / whole_prompts)
        return self._at_target(live["test_risk"], whole_se)

    def held_out(self) -> tuple[Prompts, torch.Tensor]:
        """The held-out prompts and the reference predictor's squared error on each (see below).

        Made on first use and dropped when run() ends (up to 32 MB, see TEST_SET_FLOATS: a finished
        run kept by a front end should not hold it); the same prompts again if asked for later. The set
        depends on the spec only, so every model on a spec meets the same prompts (held_out_prompts).
        """
        if self._held_out is None:
            spec = self.spec
            size = self.config.test_size or int(np.clip(TEST_SET_FLOATS // (spec.num_tokens * spec.token_width),
                                                         256, 8192))
            prompts = held_out_prompts(spec, size, str(self.device))
            self._held_out = (prompts, self._reference_errors(prompts))
        return self._held_out

    def _reference_errors(self, prompts: Prompts) -> torch.Tensor:
        """Squared errors, prompt by prompt on the held-out set, of the WPGD predictor this model should
        learn: its analytic target, P and omega of the best reachable weights, whose exact risk is known.

        The test risk below is a control-variate estimate: model MSE - reference MSE + reference risk.
        Both MSEs are measured on the same prompts, so most sampling noise cancels, while the estimate
        stays unbiased for the model's population risk (the reference's mean MSE is its exact risk). The
        nearer the reference is to the model, the more cancels: hence the target rather than the optimum
        (on the far_relevant and per_coordinate presets the optimum as reference leaves 3.5x the noise).
        """
        P = torch.tensor(self.target["P"], dtype=torch.float32, device=self.device)
        omega = torch.tensor(self.target["omega"], dtype=torch.float32, device=self.device)  # (n,) or (n, d)
        weights = omega if omega.dim() == 2 else omega[:, None]
        weighted_sum = torch.einsum("bn,nd,bnd->bd", prompts.y, weights, prompts.x)  # sum_i y_i omega_i ⊙ x_i
        prediction = torch.einsum("bd,de,be->b", prompts.xq, P, weighted_sum)        # xq^T P (that sum)
        return (prediction - prompts.yq) ** 2

    @torch.no_grad()
    def evaluate(self, num_prompts: int | None = None) -> dict:
        """Test risk and weights on the first num_prompts held-out prompts (all of them when None)."""
        prompts, reference_errors = self.held_out()
        chunk = max(1, self.eval_chunk_floats // self.spec.num_tokens ** 2)
        prediction = torch.cat([self.model(tokens) for tokens in prompts.tokens[:num_prompts].split(chunk)])
        model_errors = ((prediction - prompts.yq[:num_prompts]) ** 2).double()
        # The control-variate estimate is a mean of per-prompt differences: its standard error is theirs.
        differences = model_errors - reference_errors[:num_prompts].double()
        induced = self.induced_weights(prompts)
        return {
            "test_mse": float(model_errors.mean()),
            "test_risk": float(differences.mean()) + float(self.target["risk"]),
            "test_risk_se": float(differences.std() / math.sqrt(len(differences))) if len(differences) > 1 else float("nan"),
            "induced_weights": induced,
            "cosine": _cosine(induced[-1] if self.config.layers == 1 else induced[0], self.target["omega"]),
            "gates": [None if gate is None else gate.mean(0).cpu().numpy().tolist()
                      for gate in self.model.gates(prompts.tokens[:WEIGHT_PROMPTS])],
        }

    def induced_weights(self, prompts: Prompts) -> list[list]:
        """Per layer, the query's weight on each in-context example (mean over prompts), scaled so max |omega| = 1.

        For vector gates each example gets d numbers: the weights of the key coordinates that read x,
        each coordinate scaled on its own (as the theory's vector weights are).
        """
        positions = torch.as_tensor(self.sampler.layout.example_positions, device=self.device)
        weights = []
        for query_row in self.model.induced_query_weights(prompts.tokens[:WEIGHT_PROMPTS]):
            omega = query_row.mean(0)[positions]                  # (n,) or (n, D)
            if omega.dim() == 2:
                omega = omega[:, : self.spec.d]
            omega = omega / omega.abs().amax(dim=0).clamp_min(1e-30)
            weights.append(omega.cpu().numpy().tolist())
        return weights

    # ------------------------------------------------------------ the loop
    def run(self) -> Snapshot:
        """Train to the end (or a stop, divergence or the time limit); the final snapshot."""
        _keep_freed_memory_for_reuse()
        with denormals_flushed():
            return self._run()

    def _run(self) -> Snapshot:
        config = self.config
        self.before_step()        # step 1's turn: a front end may hold the run here before anything is computed
        if self.stop_requested.is_set():
            self._publish(status=Status.STOPPED, reason="stopped before the first step")
            return self.snapshot()
        optimizer, schedule = self.optimiser()
        zero_risk = self.analytic["zero"]["risk"]
        start = time.perf_counter()
        untrained = self.evaluate(LIVE_EVAL_PROMPTS)
        self._record_frame(0, untrained)
        self._publish(status=Status.RUNNING, total_steps=config.steps, **untrained)
        status, reason, step = Status.FINISHED, f"completed {config.steps} steps", 0
        best_risk, stale_evaluations, early_stop_step = math.inf, 0, None
        final = None   # the whole-set evaluation that stopped the run at its target
        for step in range(1, config.steps + 1):
            if step > 1:
                self.before_step()    # may wait here, between two steps, with the model and optimiser intact
            if self.stop_requested.is_set():
                status, reason, step = Status.STOPPED, f"stopped at step {step - 1}", step - 1
                break
            prompts = self.sampler.sample(config.batch, self.train_generator)
            loss = ((self.model(prompts.tokens) - prompts.yq) ** 2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            train_loss = loss.item()
            if not math.isfinite(train_loss):
                status, reason = Status.DIVERGED, f"the training loss became {train_loss} at step {step}; lower the learning rate"
                break
            if step % config.eval_every == 0 or step == config.steps:
                evaluation = self.evaluate(None if step == config.steps else LIVE_EVAL_PROMPTS)
                seconds = time.perf_counter() - start     # when this row became known
                self._record({"step": step, "seconds": seconds, "train_loss": train_loss,
                              "test_risk": evaluation["test_risk"], "cosine": evaluation["cosine"]})
                self._publish(step=step, seconds=seconds, train_loss=train_loss, **evaluation)
                if evaluation["test_risk"] < DIVERGENCE_FACTOR * zero_risk:   # a diverged model is no frame
                    self._record_frame(step, evaluation)
                if not evaluation["test_risk"] < DIVERGENCE_FACTOR * zero_risk:
                    status = Status.DIVERGED
                    reason = (f"the test risk reached {evaluation['test_risk']:.3g}, over {DIVERGENCE_FACTOR:g}x the zero "
                              f"predictor's {zero_risk:.3g}, at step {step}; lower the learning rate")
                    break
                if evaluation["test_risk"] < best_risk - evaluation["test_risk_se"]:
                    best_risk, stale_evaluations = evaluation["test_risk"], 0
                else:
                    best_risk, stale_evaluations = min(best_risk, evaluation["test_risk"]), stale_evaluations + 1
                if config.target_risk and step < config.steps and self._worth_a_whole_look(evaluation):
                    whole = self.evaluate()       # the whole held-out set decides; a live point only says when
                    if self._at_target(whole["test_risk"], whole["test_risk_se"]):
                        early_stop_step, final = step, whole
                        reason = (f"reached its target at step {step} of {config.steps}: on all held-out prompts the "
                                  f"test risk {whole['test_risk']:.3g} ± {whole['test_risk_se']:.2g} is within "
                                  f"{TARGET_MARGIN_SE:g} standard errors of {config.target_risk:.3g} or below it")
                        break
                if config.patience and stale_evaluations >= config.patience and step < config.steps:
                    early_stop_step = step
                    reason = (f"converged at step {step} of {config.steps}: the last {config.patience} evaluations "
                              "did not improve the test risk by more than its standard error")
                    break
            else:
                seconds = time.perf_counter() - start
                self._publish(step=step, seconds=seconds, train_loss=train_loss)
            if seconds > config.max_seconds:
                status, reason = Status.TIME_LIMIT, f"stopped after {seconds:.1f} s at step {step} (limit {config.max_seconds:g} s)"
                break
        if step < config.steps and status != Status.DIVERGED:   # a run cut short: its final, whole-set evaluation
            final = final or self.evaluate()
            self._publish(**final)
            with self._lock:
                last_step = self.frames[-1]["step"] if self.frames else -1
            if step > last_step:
                self._record_frame(step, final)
        self._publish(status=status, reason=reason, step=step, seconds=time.perf_counter() - start,
                      early_stop_step=early_stop_step)
        self._held_out = None
        _give_freed_memory_back()
        return self.snapshot()

    def run_result(self) -> "RunResult":
        """The run as it stands, as one value: what the result store keeps and pages show (a run that has
        ended); its to_dict() is result()."""
        with self._lock:
            frames = list(self.frames)
        return RunResult(spec=self.spec, config=self.config, device=str(self.device), final=self.snapshot(),
                         analytic=self.analytic, history=self.history_rows(), trajectory=frames)

    def result(self) -> dict:
        """The run as JSON-ready data (the CLI's `train --out` format, what the class board is posted)."""
        return self.run_result().to_dict()


@dataclass(frozen=True)
class RunResult:
    """A run, as every reader of a finished one sees it: the page that shows it, the shared result store,
    the class board and the command line (to_dict, the run JSON). `final` is the run's last snapshot;
    the trajectory's weights and gates stay float32 arrays (a quarter of the memory of Python floats,
    for a store that keeps results), written out as lists by to_dict."""

    spec: PromptSpec
    config: TrainConfig
    device: str
    final: Snapshot
    analytic: dict
    history: list            # rows of step, seconds, train_loss, test_risk, cosine
    trajectory: list         # frames: step and FRAME_KEYS

    def to_dict(self) -> dict:
        final = self.final
        return {
            "spec": self.spec.to_dict(),
            "config": asdict(self.config),
            "device": self.device,
            "status": final.status,
            "reason": final.reason,
            "test_risk": final.test_risk,
            "test_risk_se": final.test_risk_se,
            "test_mse": final.test_mse,
            "analytic": self.analytic,
            "induced_weights": final.induced_weights,
            "cosine": final.cosine,
            "steps": final.step,
            "seconds": final.seconds,
            # None, or where and why an early-stop rule (config.patience or config.target_risk) ended the run
            "early_stop": None if final.early_stop_step is None else {"step": final.early_stop_step,
                                                                      "reason": final.reason},
            "history": list(self.history),
            "trajectory": [frame_as_json(frame) for frame in self.trajectory],
        }


def frame_bytes(frame: dict) -> int:
    """Bytes a frame's weights and gates take as float32 arrays."""
    arrays = [*frame["induced_weights"], *(gate for gate in frame["gates"] if gate is not None)]
    return sum(np.asarray(array).size for array in arrays) * 4


def max_frames(frame: dict) -> int:
    """How many frames like this one a trajectory keeps (MAX_FRAMES and TRAJECTORY_BYTES; at least 2)."""
    return int(max(2, min(MAX_FRAMES, TRAJECTORY_BYTES // max(frame_bytes(frame), 1))))


def thin_frames(frames: list, limit: int) -> list:
    """At most `limit` frames: over it, every other one from the first, and the last (frames recorded at even
    steps stay evenly spaced)."""
    while len(frames) > limit:
        frames = frames[:-1:2] + frames[-1:]
    return frames


def frame_as_json(frame: dict) -> dict:
    """A recorded frame with its arrays as lists (the run JSON's `trajectory` entries)."""
    return {**frame, "induced_weights": [np.asarray(layer).tolist() for layer in frame["induced_weights"]],
            "gates": [None if gate is None else np.asarray(gate).tolist() for gate in frame["gates"]]}


def untrained_frame(spec: PromptSpec, config: TrainConfig, analytic: dict | None = None,
                    num_prompts: int = 256) -> dict:
    """The model a run of `config` starts from, before any update, as a trajectory frame (step 0): what a
    page draws before Train. Its weights and gates are the run's first frame's (the same construction and
    gates; they hardly depend on the prompts); its test risk is measured on `num_prompts` held-out
    prompts only, so it costs a fraction of a step."""
    trainer = Trainer(spec, replace(config, device="cpu", test_size=num_prompts), analytic=analytic)
    evaluation = trainer.evaluate()
    return frame_as_json({"step": 0, **{key: evaluation[key] for key in FRAME_KEYS}})


class TrainingRun:
    """A Trainer in its own daemon thread; a failure becomes the snapshot's status and reason. Slots and
    pauses are the trainer's `before_step` hook's business (gla_core.session.LiveRun). With `workers`
    (gla_core.workers.TrainingWorkers) the thread follows the trainer computing in a worker process instead."""

    def __init__(self, trainer: Trainer, on_finish: Callable[[Trainer], None] | None = None, workers=None):
        self.trainer = trainer
        self.on_finish = on_finish
        self.workers = workers
        self.thread = threading.Thread(target=self._main, daemon=True)

    def start(self) -> "TrainingRun":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.trainer.stop_requested.set()

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    def _main(self) -> None:
        trainer = self.trainer
        try:
            if self.workers is not None:
                self.workers.run(trainer)
            else:
                trainer.run()
        except Exception as error:  # the page shows the reason instead of a dead thread
            trainer._publish(status=Status.ERROR, reason=f"{type(error).__name__}: {error}")
        finally:
            if self.on_finish is not None:
                self.on_finish(trainer)
