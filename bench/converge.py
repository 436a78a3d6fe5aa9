"""Time to a converged comparison: seconds from start (solve, held-out set, model) until the test risk
is within 2% of the analytic target and the induced weights' cosine to the target is >= 0.99.

For more than one layer the target is the one-step optimum, which depth should beat: such a run counts
as converged once its test risk is at or below it (no cosine: layer 1 alone need not be one WPGD step).

Tables (medians over seeded runs):
- per preset, the trainer's defaults (the depth preset with 1 to 4 layers);
- the road from the settings training started from to the defaults, on the default preset, one change
  at a time, each as a ratio against the starting settings measured in the same process;
- variations of the defaults that were tried and rejected, as ratios against the defaults;
- torch.compile on the training step (full runs only: compiling takes tens of seconds).
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, replace

import torch

from gla_core import train
from gla_core.gla import GLAModel
from gla_core.spec import PromptSpec, list_presets, load_preset, preset_spec
from gla_core.theory import solve
from gla_core.train import TrainConfig, Trainer

RISK_TOLERANCE = 0.02
COSINE_TARGET = 0.99


def converged(row: dict, target_risk: float, layers: int) -> bool:
    if layers > 1:
        return row["test_risk"] <= target_risk
    return row["test_risk"] <= (1 + RISK_TOLERANCE) * target_risk and row["cosine"] >= COSINE_TARGET


def time_to_converge(spec: PromptSpec, config: TrainConfig, trainer_class: type[Trainer] = Trainer) -> dict:
    """One seeded run from scratch: seconds until the first converged evaluation (None if never)."""
    start = time.perf_counter()
    trainer = trainer_class(spec, config, analytic=solve(spec))
    setup = time.perf_counter() - start
    final = trainer.run()
    target = trainer.target["risk"]
    first = next((row for row in trainer.history_rows() if converged(row, target, config.layers)), None)
    return {"seconds": None if first is None else setup + first["seconds"],
            "step": None if first is None else first["step"],
            "setup_seconds": setup, "run_seconds": final.seconds, "steps": final.step,
            "final_gap": final.test_risk / target - 1, "final_cosine": final.cosine, "status": final.status}


def summarise(runs: list[dict]) -> dict:
    """Median over seeds; a run that never converged counts as infinitely slow."""
    seconds = [run["seconds"] if run["seconds"] is not None else math.inf for run in runs]
    steps = [run["step"] if run["step"] is not None else math.inf for run in runs]
    median_seconds = statistics.median(seconds)
    return {"median_seconds": None if math.isinf(median_seconds) else median_seconds,
            "median_step": None if math.isinf(statistics.median(steps)) else statistics.median(steps),
            "converged": sum(run["seconds"] is not None for run in runs), "runs": len(runs),
            "median_run_seconds": statistics.median(run["run_seconds"] for run in runs),
            "median_final_gap": statistics.median(run["final_gap"] for run in runs),
            "median_final_cosine": statistics.median(run["final_cosine"] for run in runs),
            "seeds": runs}


# ---------------------------------------------------------------- per preset, the defaults
def preset_runs(device: str, seeds: int) -> list[dict]:
    rows = []
    for name in list_presets():
        spec, model = preset_spec(name), load_preset(name)["model"]
        layer_counts = (1, 2, 3, 4) if name == "depth" else (model["layers"],)
        for layers in layer_counts:
            config = TrainConfig(gating=model["gating"], layers=layers, device=device)
            row = {"preset": name, "gating": config.gating, "layers": layers,
                   **summarise([time_to_converge(spec, replace(config, seed=seed)) for seed in range(seeds)])}
            rows.append(row)
            print(_preset_text(row), flush=True)
    return rows


def _preset_text(row: dict) -> str:
    seconds = "never" if row["median_seconds"] is None else f"{row['median_seconds']:.2f} s"
    return (f"  {row['preset']:15s} {row['gating']:6s} L={row['layers']}  converged {row['converged']}/{row['runs']}, "
            f"median {seconds} (step {row['median_step']}); whole run {row['median_run_seconds']:.2f} s, "
            f"final gap {100 * row['median_final_gap']:+.2f}%, cosine {row['median_final_cosine']:.4f}")


# ---------------------------------------------------------------- variations of the defaults
@dataclass(frozen=True)
class Settings:
    """The trainer's defaults (every field at its default), or a variation of them: each field is one
    thing that was changed on the way from the starting settings, or tried and rejected."""

    label: str
    query_row_only: bool = True          # the model's last layer computes only the query's output
    init_gate: float = TrainConfig.init_gate
    qk_scale: float | None = None        # Wq = Wk = qk_scale I; None: sqrt(1/(n+d+1+sigma^2)), the trainer's
    init_noise: float = 0.0
    per_kind_lr: bool = True             # gates x GATE_LR_FACTOR, keys/queries x KEY_QUERY_LR_FACTOR
    merged_key_query: bool = False       # Wk fixed at I, Wq learns the merged matrix Wk^T Wq
    schedule: str = "linear"             # linear (decay to 0) | one-cycle (warm-up 10%, cosine down)
    lr: float = TrainConfig.lr
    batch: int = TrainConfig.batch
    steps: int = TrainConfig.steps
    eval_every: int = TrainConfig.eval_every
    eval_chunk_floats: int = train.EVAL_CHUNK_FLOATS
    threads: int | None = None           # None: as set for the whole benchmark

    def config(self, device: str, seed: int) -> TrainConfig:
        return TrainConfig(device=device, seed=seed, init_gate=self.init_gate, lr=self.lr, batch=self.batch,
                           steps=self.steps, eval_every=self.eval_every)


# The merged key-query matrix is on the scale of P (about 0.03), not of Wq (about 0.17): its steps are
# smaller (best of 0.01, 0.03, 0.1 on the default, monotone and far_relevant presets).
MERGED_KEY_QUERY_LR_FACTOR = 0.03


class EveryPositionGLA(GLAModel):
    """The model as it was before its last layer learned to compute the query's row alone: every position's
    output in every layer, then the query's label slot."""

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return -self.hidden_states(tokens)[-1][:, -1, self.config.label_index]


def trainer_with(settings: Settings) -> type[Trainer]:
    """A Trainer whose initialisation, optimiser and evaluation passes follow `settings`."""

    class Variant(Trainer):
        eval_chunk_floats = settings.eval_chunk_floats

        def initial_model(self) -> GLAModel:
            model = super().initial_model()
            if not settings.query_row_only:
                model = EveryPositionGLA(model.config)
            step_size = 1.0 / (self.spec.num_examples + self.spec.d + 1 + self.spec.noise ** 2)
            qk_scale = math.sqrt(step_size) if settings.qk_scale is None else settings.qk_scale
            model.init_structured(torch.Generator().manual_seed(self.config.seed), qk_scale=qk_scale,
                                  gate=settings.init_gate, noise=settings.init_noise)
            if settings.merged_key_query:
                with torch.no_grad():
                    for layer in model.layers:
                        layer.Wq.weight.mul_(qk_scale)     # the x block becomes qk_scale^2 I = Wk^T Wq
                        layer.Wk.weight.copy_(torch.eye(self.spec.token_width))
                        layer.Wk.weight.requires_grad_(False)
            return model

        def optimiser(self):
            if settings.per_kind_lr:
                optimizer, linear_decay = super().optimiser()
                if settings.merged_key_query:
                    for group in optimizer.param_groups:   # Wk is fixed, so the trainer left it out
                        if group["kind"] == "Wq":
                            group["lr"] = group["initial_lr"] = self.config.lr * MERGED_KEY_QUERY_LR_FACTOR
            else:
                optimizer = torch.optim.Adam(self.model.parameters(), lr=self.config.lr)
                steps = self.config.steps
                linear_decay = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1.0 - step / steps))
            if settings.schedule == "linear":
                return optimizer, linear_decay
            max_lr = [group["lr"] for group in optimizer.param_groups]
            return optimizer, torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr,
                                                                  total_steps=self.config.steps, pct_start=0.1)

    return Variant


DEFAULTS = Settings("the defaults")
STARTING = replace(DEFAULTS, label="starting settings: every position's output in the last layer, gates 0.97, "
                   "Wq = Wk = 0.3 I (+ noise 0.01), one Adam lr 0.05 with one-cycle, 600 steps, evaluation every "
                   "25 steps in one pass",
                   query_row_only=False, init_gate=0.97, qk_scale=0.3, init_noise=0.01, per_kind_lr=False,
                   schedule="one-cycle", lr=0.05, steps=600, eval_every=25, eval_chunk_floats=16_000_000)


def _road() -> list[Settings]:
    """From the starting settings to the defaults, one change at a time."""
    road = [STARTING]
    for label, changes in [
        ("+ the model's last layer computes only the query's output", {"query_row_only": True}),
        ("+ gates start at 0.998", {"init_gate": 0.998}),
        ("+ per-kind learning rates (gates x15, keys/queries x0.1), lr 0.02", {"per_kind_lr": True, "lr": 0.02}),
        ("+ Wq = Wk = sqrt(1/(n+d+1+sigma^2)) I, no initial noise", {"qk_scale": None, "init_noise": 0.0}),
        ("+ linear decay over 100 steps", {"schedule": "linear", "steps": 100}),
        ("+ evaluation every 5 steps in cache-sized passes (= the defaults)",
         {"eval_every": 5, "eval_chunk_floats": train.EVAL_CHUNK_FLOATS}),
    ]:
        road.append(replace(road[-1], label=label, **changes))
    assert replace(road[-1], label=DEFAULTS.label) == DEFAULTS, "the road must end at the defaults"
    return road


ALTERNATIVES = [
    replace(DEFAULTS, label="batch 128", batch=128),
    replace(DEFAULTS, label="batch 512", batch=512),
    replace(DEFAULTS, label="60 steps", steps=60),
    replace(DEFAULTS, label="one-cycle schedule (warm-up 10%) instead of linear decay", schedule="one-cycle"),
    replace(DEFAULTS, label="gates start at 0.99", init_gate=0.99),
    replace(DEFAULTS, label="one learning rate (0.02) for every parameter", per_kind_lr=False),
    replace(DEFAULTS, label=f"merged key-query matrix (Wk = I fixed; lr x{MERGED_KEY_QUERY_LR_FACTOR:g})",
            merged_key_query=True),
    replace(DEFAULTS, label="evaluation every 25 steps", eval_every=25),
    replace(DEFAULTS, label="2 torch threads", threads=2),
]


def settings_runs(all_settings: list[Settings], device: str, seeds: int) -> list[dict]:
    """Default preset, each settings over `seeds` seeds, with ratios against the first (the baseline).

    Round-robin: each seed runs every settings before the next seed starts, so a burst of load from
    other jobs on the machine falls on all settings alike instead of on whichever ran at the time.
    """
    spec = preset_spec("default")
    threads = torch.get_num_threads()
    runs: list[list[dict]] = [[] for _ in all_settings]
    for seed in range(seeds):
        for settings, mine in zip(all_settings, runs):
            torch.set_num_threads(settings.threads or threads)
            mine.append(time_to_converge(spec, settings.config(device, seed), trainer_with(settings)))
            torch.set_num_threads(threads)
    rows = [{"change": settings.label, **summarise(mine)} for settings, mine in zip(all_settings, runs)]
    baseline = rows[0]
    for row in rows:
        # the starting settings may never converge: then compare with their whole run, and say so
        if row["median_seconds"] is not None and baseline["median_seconds"] is not None:
            row["speedup"] = baseline["median_seconds"] / row["median_seconds"]
        elif row["median_seconds"] is not None:
            row["speedup_over_whole_baseline_run"] = baseline["median_run_seconds"] / row["median_seconds"]
        print(_settings_text(row), flush=True)
    return rows


def compile_check(device: str) -> dict:
    """torch.compile on the default training step: compile time, then step time against eager."""
    spec = preset_spec("default")
    trainer = Trainer(spec, TrainConfig(device=device))
    optimizer, _ = trainer.optimiser()
    compiled = torch.compile(trainer.model)

    def step(model) -> None:
        prompts = trainer.sampler.sample(trainer.config.batch, trainer.train_generator)
        loss = ((model(prompts.tokens) - prompts.yq) ** 2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    start = time.perf_counter()
    try:
        step(compiled)
    except Exception as error:  # no compiler toolchain on this host: a finding, not a crash
        print(f"  torch.compile failed: {type(error).__name__}: {str(error).splitlines()[0][:160]}", flush=True)
        return {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"}
    first = time.perf_counter() - start
    eager_ms, compiled_ms = [], []
    for _ in range(30):                      # interleaved, so both meet the same load
        for model, times in ((trainer.model, eager_ms), (compiled, compiled_ms)):
            start = time.perf_counter()
            step(model)
            times.append(1e3 * (time.perf_counter() - start))
    result = {"first_step_seconds": first, "eager_step_ms": statistics.median(eager_ms),
              "compiled_step_ms": statistics.median(compiled_ms)}
    result["speedup"] = result["eager_step_ms"] / result["compiled_step_ms"]
    print(f"  torch.compile: first step {first:.1f} s, then {result['compiled_step_ms']:.2f} ms/step against "
          f"{result['eager_step_ms']:.2f} eager (x{result['speedup']:.2f})", flush=True)
    return result


def _settings_text(row: dict) -> str:
    seconds = "never" if row["median_seconds"] is None else f"{row['median_seconds']:.2f} s"
    if "speedup" in row:
        ratio = f"x{row['speedup']:.2f}"
    elif "speedup_over_whole_baseline_run" in row:
        ratio = f"> x{row['speedup_over_whole_baseline_run']:.1f}"
    else:
        ratio = "-"
    return (f"  {seconds:>8s} {ratio:>8s}  conv {row['converged']}/{row['runs']}, step {row['median_step']}, "
            f"whole run {row['median_run_seconds']:.2f} s, gap {100 * row['median_final_gap']:+.2f}%, "
            f"cos {row['median_final_cosine']:.4f}  {row['change']}")


def run(device: str, quick: bool) -> dict:
    # warm-up: the first run in a process pays one-off costs (allocator, kernels' first calls) that the
    # app's long-lived server pays once for all its runs
    time_to_converge(preset_spec("default"), TrainConfig(device=device, steps=20))
    print(" per preset, the trainer's defaults:", flush=True)
    presets = preset_runs(device, seeds=2 if quick else 5)
    print(" from the starting settings to the defaults (default preset; ratios against the starting settings):",
          flush=True)
    road = settings_runs(_road(), device, seeds=1 if quick else 3)
    print(" variations of the defaults (default preset; ratios against the defaults):", flush=True)
    alternatives = settings_runs([DEFAULTS] + ALTERNATIVES, device, seeds=2 if quick else 5)
    result = {"presets": presets, "road": road, "alternatives": alternatives,
              "risk_tolerance": RISK_TOLERANCE, "cosine_target": COSINE_TARGET}
    if not quick:
        result["compile"] = compile_check(device)
    return result
