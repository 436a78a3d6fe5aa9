"""What the Depth page and the overlay of the Gating page wait for: their models' training, end to end.

Depth: the page's four models (1 to 4 layers, scalar gates) on the depth preset, one after another as the
page trains them (with gla_core.spec.DEPTH_TRAINING: an evaluation every 10 steps), each against its own
L-step causal WPGD target (gla_core.causal_wpgd): seconds in all,
and each model's verdict as the page gives it (reached: within 2 standard errors of the target; short;
below). Two trainers in the same process, round-robin over seeds: the one before the L-step work (every
depth on the one-layer recipe, the parallel form for the hidden layers at any batch) and today's defaults.

Overlay: the ten models of "Overlay trained models" (default preset, sweep of examples per task, 5 points,
linear attention and scalar gates) at the page's settings (gla_core.spec.OVERLAY_TRAINING: 70 steps, evaluated
at steps 35 and 70), against the trainer's defaults the page used before (100 steps, evaluated every 5), each
model's risk against its analytic target.
"""
from __future__ import annotations

import dataclasses
import math
import statistics
import time

import numpy as np
import torch

from gla_core import gla, train
from gla_core.causal_wpgd import causal_wpgd_targets
from gla_core.gla import GLAModel
from gla_core.spec import DEPTH_TRAINING, OVERLAY_TRAINING, PromptSpec, load_preset, preset_spec
from gla_core.theory import solve
from gla_core.train import TrainConfig, Trainer

DEPTHS = (1, 2, 3, 4)
OVERLAY_SIZES = (1, 2, 4, 8, 16, 32, 64)
OVERLAY_POINTS = 5


class BeforeDepthTargets(Trainer):
    """The trainer as it was before deeper models were trained to their L-step targets: every depth on the
    one-layer recipe, and the hidden layers in the parallel form wherever the prompt is short."""

    def initial_model(self) -> GLAModel:
        model = super().initial_model()
        if self.spec.num_tokens <= gla.PARALLEL_MAX_TOKENS[self.config.gating]:
            parallel = GLAModel(dataclasses.replace(model.config, form="parallel"))
            parallel.load_state_dict(model.state_dict())
            return parallel
        return model

    def optimiser(self):
        optimizer, _ = super().optimiser()
        plan = train.ONE_LAYER
        for group in optimizer.param_groups:
            group["betas"] = plan.betas
            if group["kind"] in ("Wq", "Wk"):
                group["lr"] = group["initial_lr"] = self.config.lr * plan.key_query_lr_factor
        steps = self.config.steps
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1.0 - step / steps))


def verdict(risk: float, risk_se: float, target: dict) -> str:
    """The Depth page's words for a trained risk against its target (2 SE of the difference decide)."""
    margin = 2 * math.hypot(risk_se, target["risk_se"])
    if abs(risk - target["risk"]) <= margin:
        return "reached"
    return "short" if risk > target["risk"] else "below"


def depth_run(trainer_class: type[Trainer], seed: int) -> dict:
    spec = preset_spec("depth")
    gating = load_preset("depth")["model"]["gating"]
    targets = causal_wpgd_targets(spec, max(DEPTHS), gating)
    analytic = solve(spec)
    models = []
    start = time.perf_counter()
    for layers in DEPTHS:
        model_start = time.perf_counter()
        config = TrainConfig(gating=gating, layers=layers, seed=seed, **DEPTH_TRAINING)
        final = trainer_class(spec, config, analytic=analytic).run()
        target = targets[layers - 1]
        models.append({"layers": layers, "seconds": time.perf_counter() - model_start, "risk": final.test_risk,
                       "risk_se": final.test_risk_se, "target": target["risk"], "target_se": target["risk_se"],
                       "gap": final.test_risk / target["risk"] - 1,
                       "verdict": verdict(final.test_risk, final.test_risk_se, target)})
    return {"seconds": time.perf_counter() - start, "models": models}


def overlay_specs() -> list[PromptSpec]:
    base = load_preset("default")["spec"]
    indices = sorted(set(np.linspace(0, len(OVERLAY_SIZES) - 1, OVERLAY_POINTS).round().astype(int)))
    return [PromptSpec.from_dict({**base, "tasks": [{**task, "n": OVERLAY_SIZES[index]} for task in base["tasks"]]})
            for index in indices]


def overlay_run(settings: dict) -> dict:
    start = time.perf_counter()
    gaps = []
    for spec in overlay_specs():
        analytic = solve(spec)
        for gating in ("none", "scalar"):
            trainer = Trainer(spec, TrainConfig(gating=gating, seed=0, **settings), analytic=analytic)
            final = trainer.run()
            gaps.append(final.test_risk / trainer.target["risk"] - 1)
    return {"seconds": time.perf_counter() - start, "models": len(gaps), "max_gap": max(gaps),
            "within_2_percent": sum(gap < 0.02 for gap in gaps)}


def run(quick: bool) -> dict:
    seeds = 1 if quick else 3
    runs: dict[str, list[dict]] = {"before": [], "now": []}
    for seed in range(seeds):          # round-robin: a burst of load falls on both alike
        for name, trainer_class in (("before", BeforeDepthTargets), ("now", Trainer)):
            runs[name].append(depth_run(trainer_class, seed))
    depth = {}
    for name, mine in runs.items():
        depth[name] = {"median_seconds": statistics.median(run["seconds"] for run in mine),
                       "per_depth": [{"layers": layers,
                                      "median_seconds": statistics.median(run["models"][i]["seconds"] for run in mine),
                                      "median_gap": statistics.median(run["models"][i]["gap"] for run in mine),
                                      "verdicts": [run["models"][i]["verdict"] for run in mine],
                                      "runs": [run["models"][i] for run in mine]}
                                     for i, layers in enumerate(DEPTHS)]}
        print(f"  depth page, {name}: {depth[name]['median_seconds']:.2f} s in all; " + "; ".join(
            f"L={row['layers']} {row['median_seconds']:.2f} s gap {100 * row['median_gap']:+.1f}% "
            f"({', '.join(row['verdicts'])})" for row in depth[name]["per_depth"]), flush=True)
    depth["speedup"] = depth["before"]["median_seconds"] / depth["now"]["median_seconds"]
    overlay_runs: dict[str, list[dict]] = {"page settings": [], "trainer defaults": []}
    for _ in range(1 if quick else 3):
        for name, settings in (("trainer defaults", {}), ("page settings", OVERLAY_TRAINING)):
            overlay_runs[name].append(overlay_run(settings))
    overlay = {name: {"median_seconds": statistics.median(run["seconds"] for run in mine),
                      "max_gap": max(run["max_gap"] for run in mine),
                      "within_2_percent": min(run["within_2_percent"] for run in mine), "models": mine[0]["models"]}
               for name, mine in overlay_runs.items()}
    overlay["speedup"] = overlay["trainer defaults"]["median_seconds"] / overlay["page settings"]["median_seconds"]
    for name in overlay_runs:
        row = overlay[name]
        print(f"  overlay, {name}: {row['median_seconds']:.2f} s for {row['models']} models, "
              f"{row['within_2_percent']}/{row['models']} within 2% of their target (worst {100 * row['max_gap']:+.2f}%)",
              flush=True)
    return {"depth": depth, "overlay": overlay, "seeds": seeds}
