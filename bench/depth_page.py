"""What the Depth page and the overlay of the Gating page wait for: their models' training, end to end.

Both train as the pages do, in one LiveRun on a quiet server's two training slots, so two models at a time
(gla_core.session.LiveRun's lanes), each in a worker process (gla_core.workers, prestarted as the app's), against
the same models two at a time in threads and one at a time (as the pages trained them before).

Depth: the page's four models (1 to 4 layers, scalar gates) on the depth preset (with
gla_core.spec.DEPTH_TRAINING: an evaluation every 10 steps), each against its own L-step causal WPGD target
(gla_core.causal_wpgd): seconds in all, and each model's verdict as the page gives it (reached: within 2
standard errors of the target; short; below). The page stops each model at its target (TrainConfig.target_risk).
Round-robin over seeds in one process: the trainer before the L-step work (every depth on the one-layer recipe, the
parallel form for the hidden layers at any batch, all 100 steps), one model at a time; today's trainer one at a
time; two at a time in threads; two at a time in workers with all 100 steps (the page's switch off); and two at a
time in workers, each model stopped at its target (the page).

Overlay: the ten models of "Overlay trained models" (default preset, sweep of examples per task, 5 points,
linear attention and scalar gates): the trainer's defaults the page used before (100 steps, evaluated every 5),
one at a time; the page's settings (gla_core.spec.OVERLAY_TRAINING: 70 steps, evaluated at steps 35 and 70), one
at a time, two at a time in threads, and two at a time in workers (the page); each model's risk against its
analytic target.
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
from gla_core.session import LiveRun, TrainingSlots
from gla_core.spec import DEPTH_TRAINING, OVERLAY_TRAINING, PromptSpec, depth_start_order, load_preset, preset_spec
from gla_core.theory import solve
from gla_core.train import Status, TrainConfig, Trainer, stop_at
from gla_core.workers import TrainingWorkers

DEPTHS = (1, 2, 3, 4)
OVERLAY_SIZES = (1, 2, 4, 8, 16, 32, 64)
OVERLAY_POINTS = 5


# The auto rule then: today's, but scalar gates took the parallel form up to 64 tokens
BEFORE_PARALLEL_MAX_TOKENS = {**gla.PARALLEL_MAX_TOKENS, "scalar": 64}


class BeforeDepthTargets(Trainer):
    """The trainer as it was before deeper models were trained to their L-step targets: every depth on the
    one-layer recipe, and the hidden layers in the parallel form wherever the prompt is short."""

    def initial_model(self) -> GLAModel:
        model = super().initial_model()
        if self.spec.num_tokens <= BEFORE_PARALLEL_MAX_TOKENS[self.config.gating]:
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


def train_as_the_page_does(trainers: list[Trainer], lanes: int, start_order: list[int] | None = None,
                           workers: TrainingWorkers | None = None) -> float:
    """Seconds to train `trainers` as a page does: one LiveRun on a quiet server's two slots, `lanes` models at a
    time (the pages' runs of several models have 2: gla_core.session.LiveRun), started in `start_order`, in
    `workers` (the app's) or in threads (None)."""
    start = time.perf_counter()
    run = LiveRun(trainers, TrainingSlots(2), max_active_seconds=3600.0, lanes=lanes, start_order=start_order,
                  workers=workers).start()
    if not run.join(3600.0) or any(trainer.snapshot().status != Status.FINISHED for trainer in trainers):
        raise RuntimeError("a benchmark run did not finish")
    return time.perf_counter() - start


def depth_run(trainer_class: type[Trainer], seed: int, lanes: int, workers: TrainingWorkers | None,
              stop_at_target: bool) -> dict:
    spec = preset_spec("depth")
    gating = load_preset("depth")["model"]["gating"]
    targets = causal_wpgd_targets(spec, max(DEPTHS), gating)
    analytic = solve(spec)
    trainers = [trainer_class(spec, TrainConfig(gating=gating, layers=layers, seed=seed, **DEPTH_TRAINING,
                                                **(stop_at(targets[layers - 1]) if stop_at_target else {})),
                              analytic=analytic) for layers in DEPTHS]
    # two at a time in the page's order; one at a time in depth order, as the page trained them before
    seconds = train_as_the_page_does(trainers, lanes, depth_start_order(list(DEPTHS)) if lanes == 2 else None,
                                     workers)
    models = []
    for layers, trainer in zip(DEPTHS, trainers):
        final, target = trainer.snapshot(), targets[layers - 1]
        models.append({"layers": layers, "seconds": final.seconds, "steps": final.step, "risk": final.test_risk,
                       "risk_se": final.test_risk_se, "target": target["risk"], "target_se": target["risk_se"],
                       "gap": final.test_risk / target["risk"] - 1,
                       "verdict": verdict(final.test_risk, final.test_risk_se, target)})
    return {"seconds": seconds, "models": models}


def overlay_specs() -> list[PromptSpec]:
    base = load_preset("default")["spec"]
    indices = sorted(set(np.linspace(0, len(OVERLAY_SIZES) - 1, OVERLAY_POINTS).round().astype(int)))
    return [PromptSpec.from_dict({**base, "tasks": [{**task, "n": OVERLAY_SIZES[index]} for task in base["tasks"]]})
            for index in indices]


def overlay_run(settings: dict, lanes: int, workers: TrainingWorkers | None) -> dict:
    trainers = []
    for spec in overlay_specs():
        analytic = solve(spec)
        trainers += [Trainer(spec, TrainConfig(gating=gating, seed=0, **settings), analytic=analytic)
                     for gating in ("none", "scalar")]
    seconds = train_as_the_page_does(trainers, lanes, workers=workers)
    gaps = [trainer.snapshot().test_risk / trainer.target["risk"] - 1 for trainer in trainers]
    return {"seconds": seconds, "models": len(gaps), "max_gap": max(gaps),
            "within_2_percent": sum(gap < 0.02 for gap in gaps)}


# The variants each section measures: (name, trainer or settings, lanes, in workers[, each model stopped at its
# target]). "now" and "page settings" are the pages' (a worker trains a plain Trainer: the before-trainer runs in a
# thread).
DEPTH_VARIANTS = (("before", BeforeDepthTargets, 1, False, False), ("one at a time", Trainer, 1, False, True),
                  ("two at a time in threads", Trainer, 2, False, True), ("all 100 steps", Trainer, 2, True, False),
                  ("now", Trainer, 2, True, True))
OVERLAY_VARIANTS = (("trainer defaults", {}, 1, False), ("page settings, one at a time", OVERLAY_TRAINING, 1, False),
                    ("page settings in threads", OVERLAY_TRAINING, 2, False), ("page settings", OVERLAY_TRAINING, 2, True))


def ready_workers() -> TrainingWorkers:
    """Two workers started and waiting, as the app's are by the time anyone presses Train (lab_ui.resources)."""
    workers = TrainingWorkers(keep=2).prestart()
    deadline = time.monotonic() + 120
    while workers.counts()[0] < 2:
        if time.monotonic() > deadline:
            raise RuntimeError("the training workers did not start")
        time.sleep(0.05)
    return workers


def run(quick: bool) -> dict:
    seeds = 1 if quick else 3
    workers = ready_workers()
    runs: dict[str, list[dict]] = {name: [] for name, *_ in DEPTH_VARIANTS}
    for seed in range(seeds):          # round-robin: a burst of load falls on every variant alike
        for name, trainer_class, lanes, in_workers, stop_at_target in DEPTH_VARIANTS:
            runs[name].append(depth_run(trainer_class, seed, lanes, workers if in_workers else None, stop_at_target))
    depth = {}
    for name, mine in runs.items():
        depth[name] = {"median_seconds": statistics.median(run["seconds"] for run in mine),
                       "per_depth": [{"layers": layers,
                                      "median_seconds": statistics.median(run["models"][i]["seconds"] for run in mine),
                                      "median_steps": statistics.median(run["models"][i]["steps"] for run in mine),
                                      "median_gap": statistics.median(run["models"][i]["gap"] for run in mine),
                                      "verdicts": [run["models"][i]["verdict"] for run in mine],
                                      "runs": [run["models"][i] for run in mine]}
                                     for i, layers in enumerate(DEPTHS)]}
        print(f"  depth page, {name}: {depth[name]['median_seconds']:.2f} s in all; " + "; ".join(
            f"L={row['layers']} {row['median_seconds']:.2f} s {row['median_steps']:g} steps "
            f"gap {100 * row['median_gap']:+.1f}% "
            f"({', '.join(row['verdicts'])})" for row in depth[name]["per_depth"]), flush=True)
    depth["speedup"] = depth["before"]["median_seconds"] / depth["now"]["median_seconds"]
    depth["lanes_speedup"] = depth["one at a time"]["median_seconds"] / depth["now"]["median_seconds"]
    depth["workers_speedup"] = depth["two at a time in threads"]["median_seconds"] / depth["now"]["median_seconds"]
    depth["stop_speedup"] = depth["all 100 steps"]["median_seconds"] / depth["now"]["median_seconds"]
    overlay_runs: dict[str, list[dict]] = {name: [] for name, *_ in OVERLAY_VARIANTS}
    for _ in range(1 if quick else 3):
        for name, settings, lanes, in_workers in OVERLAY_VARIANTS:
            overlay_runs[name].append(overlay_run(settings, lanes, workers if in_workers else None))
    workers.close()
    overlay = {name: {"median_seconds": statistics.median(run["seconds"] for run in mine),
                      "max_gap": max(run["max_gap"] for run in mine),
                      "within_2_percent": min(run["within_2_percent"] for run in mine), "models": mine[0]["models"]}
               for name, mine in overlay_runs.items()}
    overlay["speedup"] = overlay["trainer defaults"]["median_seconds"] / overlay["page settings"]["median_seconds"]
    overlay["lanes_speedup"] = (overlay["page settings, one at a time"]["median_seconds"]
                                / overlay["page settings"]["median_seconds"])
    overlay["workers_speedup"] = (overlay["page settings in threads"]["median_seconds"]
                                  / overlay["page settings"]["median_seconds"])
    for name in overlay_runs:
        row = overlay[name]
        print(f"  overlay, {name}: {row['median_seconds']:.2f} s for {row['models']} models, "
              f"{row['within_2_percent']}/{row['models']} within 2% of their target (worst {100 * row['max_gap']:+.2f}%)",
              flush=True)
    return {"depth": depth, "overlay": overlay, "seeds": seeds}
