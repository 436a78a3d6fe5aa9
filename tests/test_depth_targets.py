"""Trained models on the depth preset against their own L-step causal WPGD target (issue: depth as steps).

The Depth page's verdict per depth: within 2 standard errors of the target (both estimates' errors combined)
is "reached", more than that above it "fell short", more than that below it "went below". The trainer's
defaults, at the preset's 100 steps, must never fall short.
"""
import math

import pytest
import torch

from gla_core.causal_wpgd import causal_wpgd_targets
from gla_core.spec import load_preset, preset_spec
from gla_core.theory import solve
from gla_core.train import TrainConfig, Trainer

SPEC = preset_spec("depth")
ANALYTIC = solve(SPEC)
TARGETS = causal_wpgd_targets(SPEC, 4, "scalar")
SE_MULTIPLE = 2.0        # the page's margin: 2 standard errors of the difference


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def margin(risk_se: float, target: dict) -> float:
    return SE_MULTIPLE * math.hypot(risk_se, target["risk_se"])


@pytest.mark.parametrize("layers, seed", [(1, 0), (2, 0), (3, 0), (4, 0), (2, 1), (3, 1)])
def test_trained_depth_models_reach_their_l_step_target_or_go_below_it(layers, seed):
    model = load_preset("depth")["model"]
    config = TrainConfig(gating=model["gating"], layers=layers, seed=seed)
    assert config.steps == 100          # the preset's training, as the Depth page runs it
    final = Trainer(SPEC, config, analytic=ANALYTIC).run()
    assert final.status == "finished"
    target = TARGETS[layers - 1]
    assert target["layers"] == layers
    # never "fell short": at most 2 SE above the target (the risk's SE is 2-3% of it on 8192 held-out prompts)
    assert final.test_risk <= target["risk"] + margin(final.test_risk_se, target), (
        f"{layers} layers, seed {seed}: {final.test_risk:.4f} ± {final.test_risk_se:.4f} against the target "
        f"{target['risk']:.4f} ± {target['risk_se']:.4f}")
    if layers == 1:   # one step: the target is the best one-step risk, which a GLA cannot beat
        assert final.test_risk >= target["risk"] - margin(final.test_risk_se, target)


def test_early_stop_ends_a_run_by_its_rule_and_says_where():
    spec = preset_spec("default")
    config = TrainConfig(patience=3, steps=400, seed=0)
    trainer = Trainer(spec, config, analytic=solve(spec))
    final = trainer.run()
    result = trainer.result()
    assert final.status == "finished"
    assert final.early_stop_step is not None and final.early_stop_step < config.steps
    assert result["early_stop"]["step"] == final.step == final.early_stop_step
    assert f"converged at step {final.step} of 400" in result["early_stop"]["reason"]
    # the rule, recomputed from the live evaluations (every frame after the untrained one; the final
    # whole-set evaluation replaces only the snapshot, not that frame): the last `patience` did not beat the best before them by
    # more than their standard error, and every earlier stretch of `patience` did
    live = trainer.frames[1:]
    assert [frame["step"] for frame in live] == list(range(5, final.step + 1, 5))

    def improves(frames: list, index: int) -> bool:
        best = min(frame["test_risk"] for frame in frames[:index]) if index else math.inf
        return frames[index]["test_risk"] < best - frames[index]["test_risk_se"]

    assert not any(improves(live, index) for index in range(len(live) - 3, len(live)))
    assert all(any(improves(live, index) for index in range(start, start + 3)) for start in range(len(live) - 3))


def test_without_patience_a_run_makes_every_step():
    spec = preset_spec("default")
    trainer = Trainer(spec, TrainConfig(steps=60, seed=0), analytic=solve(spec))
    final = trainer.run()
    assert final.step == 60 and final.early_stop_step is None and trainer.result()["early_stop"] is None
