"""Cost of one training step (forward + backward) of the GLA model, each form against the token loop.

Same shapes, same weights, float32. Three forms compute every position's output in every layer:
`reference` (the loop over tokens of gla_core.reference), `parallel` and `chunked`. The fourth
column, `model`, is what training runs: the model's prediction, with the form it picks for the hidden
layers and only the query's output in the last layer. The ratio reference / form is the speed-up;
time(2048) / time(128) shows how a form grows with the prompt (16 is linear). The loop at 2048 tokens
takes seconds, so long prompts get few repeats. Every form runs with denormal numbers flushed to zero, as a
training run computes (gla_core.train.denormals_flushed).
"""
from __future__ import annotations

import statistics

import torch

from gla_core.gla import GLAConfig, GLAModel
from gla_core.train import denormals_flushed

from .timing import median_seconds, synchronised

FORMS = ("reference", "parallel", "chunked", "model")
BATCH = 16
TOKEN_WIDTH = 16            # d = 12 features, the label slot and 3 delimiter features
# The parallel form holds B x T x T (x D for vector gates) floats several times over; above this many
# per tensor it is skipped: it would take tens of seconds a step (and gigabytes) to say what the
# shorter prompts already show.
PARALLEL_MAX_FLOATS = 2 ** 25
# Repeats per measurement: fewer where one call is slow (the loop at long prompts).
REPEATS_BY_SECONDS = ((0.05, 15), (0.5, 7), (float("inf"), 3))


def _model(gating: str, layers: int, form: str, device: torch.device) -> GLAModel:
    config = GLAConfig(token_width=TOKEN_WIDTH, label_index=TOKEN_WIDTH - 4, layers=layers, gating=gating, form=form)
    model = GLAModel(config)
    model.init_structured(torch.Generator().manual_seed(0), qk_scale=0.2, gate=0.95, noise=0.05)
    return model.to(device)


def _step_function(model: GLAModel, tokens: torch.Tensor, every_output: bool):
    def step() -> None:
        model.zero_grad(set_to_none=True)
        output = model.hidden_states(tokens)[-1] if every_output else model(tokens)
        output.square().mean().backward()
    return step


def step_function(gating: str, layers: int, form: str, num_tokens: int, device: torch.device):
    """Forward + backward on BATCH prompts of num_tokens tokens, or None where the form is skipped.
    form: reference | parallel | chunked (every output, every layer) or model (the prediction)."""
    per_tensor = BATCH * num_tokens ** 2 * (TOKEN_WIDTH if gating == "vector" else 1)
    if form == "parallel" and per_tensor > PARALLEL_MAX_FLOATS:
        return None
    model = _model(gating, layers, "auto" if form == "model" else form, device)
    tokens = torch.randn(BATCH, num_tokens, TOKEN_WIDTH, generator=torch.Generator().manual_seed(1)).to(device)
    return synchronised(_step_function(model, tokens, every_output=form != "model"), device)


def time_forms(gating: str, layers: int, num_tokens: int, device: torch.device) -> dict[str, float | None]:
    """Median seconds per form. Round-robin: every repeat times each form once, so a burst of load
    from other jobs falls on all forms alike; slow shapes (the loop at long prompts) get few repeats."""
    steps = {form: step_function(gating, layers, form, num_tokens, device) for form in FORMS}
    first = {form: median_seconds(step, repeats=1, warmup=0) for form, step in steps.items() if step}  # warm-up
    repeats = next(count for limit, count in REPEATS_BY_SECONDS if max(first.values()) <= limit)
    times: dict[str, list[float]] = {form: [] for form in first}
    for _ in range(repeats):
        for form in first:
            times[form].append(median_seconds(steps[form], repeats=1, warmup=0))
    return {form: statistics.median(times[form]) if form in times else None for form in FORMS}


def run(device: torch.device, quick: bool) -> dict:
    with denormals_flushed():
        return _run(device, quick)


def _run(device: torch.device, quick: bool) -> dict:
    lengths = (32, 512) if quick else (32, 128, 512, 2048)
    layer_counts = (1,) if quick else (1, 4)
    rows = []
    for gating in ("scalar", "vector"):
        for layers in layer_counts:
            for num_tokens in lengths:
                seconds = time_forms(gating, layers, num_tokens, device)
                row = {"gating": gating, "layers": layers, "tokens": num_tokens,
                       "ms": {form: None if s is None else 1e3 * s for form, s in seconds.items()},
                       "speedup": {form: None if s is None else seconds["reference"] / s
                                   for form, s in seconds.items() if form != "reference"}}
                rows.append(row)
                print(_row_text(row), flush=True)
    return {"batch": BATCH, "token_width": TOKEN_WIDTH, "dtype": "float32", "rows": rows,
            "growth": _growth(rows, lengths)}


def _growth(rows: list[dict], lengths: tuple[int, ...]) -> list[dict]:
    """time(longest) / time(128 or shortest) per gating, layers and form: 16 = linear from 128 to 2048."""
    short, long = (128 if 128 in lengths else lengths[0]), lengths[-1]
    out = []
    for gating, layers in sorted({(row["gating"], row["layers"]) for row in rows}):
        by_length = {row["tokens"]: row["ms"] for row in rows if row["gating"] == gating and row["layers"] == layers}
        ratios = {form: (by_length[long][form] / by_length[short][form]
                         if by_length[long][form] and by_length[short][form] else None) for form in FORMS}
        out.append({"gating": gating, "layers": layers, "from": short, "to": long, "ratio": ratios,
                    "linear": long / short})
    return out


def _row_text(row: dict) -> str:
    def ms(form: str) -> str:
        value = row["ms"][form]
        return "skipped" if value is None else f"{value:9.2f}"

    speedups = "  ".join(f"{form} x{value:.1f}" if value else f"{form} -" for form, value in row["speedup"].items())
    return (f"  {row['gating']:6s} L={row['layers']} T={row['tokens']:5d}  ms: "
            + " ".join(f"{form} {ms(form)}" for form in FORMS) + f"   vs loop: {speedups}")


def points(result: dict) -> list[dict]:
    """One {form, gating, layers, tokens, ms} record per measured step, for the report's plot."""
    return [{"form": form, "gating": row["gating"], "layers": row["layers"], "tokens": row["tokens"], "ms": ms}
            for row in result["rows"] for form, ms in row["ms"].items() if ms is not None]
