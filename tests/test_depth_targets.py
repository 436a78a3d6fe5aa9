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


class WholeSetAtEveryEvaluation(Trainer):
    """A run that also reads the whole held-out set at every live evaluation (reading it draws nothing from the
    training generator, so the run's steps are the same): the verdict the target rule would get at each."""

    def evaluate(self, num_prompts=None):
        if num_prompts is not None:
            self.whole_set_risks = getattr(self, "whole_set_risks", [])
            whole = super().evaluate()
            self.whole_set_risks.append((whole["test_risk"], whole["test_risk_se"]))
        return super().evaluate(num_prompts)


@pytest.mark.parametrize("layers", [2, 4])
def test_a_run_stops_at_its_target_once_the_whole_held_out_set_puts_it_there(layers):
    target = TARGETS[layers - 1]
    settings = dict(gating="scalar", layers=layers, seed=0, eval_every=10)   # the Depth page's evaluations
    stopping = Trainer(SPEC, TrainConfig(**settings, target_risk=target["risk"], target_risk_se=target["risk_se"]),
                       analytic=ANALYTIC)
    final = stopping.run()
    assert final.status == "finished" and final.early_stop_step == final.step < 100
    assert f"reached its target at step {final.step} of 100" in stopping.result()["early_stop"]["reason"]
    # the same run without the rule, all 100 steps, its whole held-out set read at every evaluation
    fixed = WholeSetAtEveryEvaluation(SPEC, TrainConfig(**settings), analytic=ANALYTIC)
    assert fixed.run().step == 100
    # the rule changes nothing before it fires: the same losses and live evaluations, to the last bit
    def numbers(rows: list) -> list:
        return [(row["step"], row["train_loss"], row["test_risk"], row["cosine"]) for row in rows]

    assert numbers(stopping.history_rows()) == numbers(fixed.history_rows())[:len(stopping.history_rows())]
    # it stopped with the whole set's numbers at that step, which put the model at its target (2 SE, or below);
    # the live points decide only when to look, so it never stops before the whole set would have allowed
    evaluations = list(range(10, 100, 10))
    at = [risk <= target["risk"] + margin(se, target) for risk, se in fixed.whole_set_risks[1:]]
    assert (final.test_risk, final.test_risk_se) == fixed.whole_set_risks[1:][evaluations.index(final.step)]
    assert at[evaluations.index(final.step)]
    assert final.step >= evaluations[at.index(True)]


@pytest.mark.parametrize("field, value", [("target_risk", -0.5), ("target_risk", math.inf),
                                          ("target_risk", math.nan), ("target_risk_se", -1.0),
                                          ("target_risk", True)])
def test_a_target_that_is_not_a_risk_is_refused_by_name(field, value):
    from gla_core.spec import SpecError

    with pytest.raises(SpecError, match=f"^{field}: "):
        TrainConfig(**{field: value}).validate()
