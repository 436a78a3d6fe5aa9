"""docs/benchmarks.md and its step-cost plot, from the benchmark results.

    python -m bench --report        # measure everything, then write the report
    python -m bench.report          # rewrite the report from artifacts/bench/results.json

The plot is a static PNG through Plotly + Kaleido (which drives a headless Chromium); where that
export fails, the report links an interactive HTML file of the same figure instead and says why.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import step_cost

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
PLOT_PNG = ROOT / "docs" / "benchmarks_step_cost.png"
PLOT_HTML = ROOT / "docs" / "benchmarks_step_cost.html"
RESULTS = ROOT / "artifacts" / "bench" / "results.json"
FORM_COLOURS = {"reference": "#7f7f7f", "parallel": "#1f77b4", "chunked": "#2ca02c", "model": "#d62728"}
FORM_NAMES = {"reference": "reference loop", "parallel": "parallel", "chunked": "chunked",
              "model": "the model's prediction (training)"}


# ---------------------------------------------------------------- formatting
def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f} s"


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _step(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def _measured_at(section: dict) -> str:
    machine = section.get("machine", {})
    load = machine.get("load_average_1min")
    if load is None:
        return ""
    return f"*Load average (1 min) as this section finished: {load:.1f} on {machine['cores_available']} cores.*"


def _ratio(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"×{value:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _percent(value: float) -> str:
    return f"{100 * value:+.2f}%"


# ---------------------------------------------------------------- sections
def _machine(results: dict) -> str:
    machine = results["machine"]
    rows = [[key.replace("_", " "), str(value)] for key, value in machine.items()]
    return "## Machine\n\n" + _table(["", ""], rows) + (
        "\n\nThe cores are shared with other jobs: the load average says how busy the machine was. Every time "
        "is a median of several runs, and each table gives ratios against a baseline measured in the same "
        "process, which hold up far better than bare times on a shared machine.")


def _converge(section: dict) -> str:
    out = ["## 1. Time to a converged comparison",
           f"Seconds from start (solve, held-out set, model) until the test risk is within "
           f"{100 * section['risk_tolerance']:.0f}% of the model's analytic target and the induced weights' cosine "
           f"to the target weights is ≥ {section['cosine_target']}; for 2–4 layers, until the test risk is at or "
           "below the one-step optimum (depth should beat it). Medians over seeds; “whole run” is the complete "
           "default run (100 steps, the final numbers are its end).", _measured_at(section), ""]
    rows = [[row["preset"], row["gating"], str(row["layers"]), f"{row['converged']}/{row['runs']}",
             _seconds(row["median_seconds"]), _step(row["median_step"]), _seconds(row["median_run_seconds"]),
             _percent(row["median_final_gap"]), f"{row['median_final_cosine']:.4f}"] for row in section["presets"]]
    out.append(_table(["preset", "gating", "layers", "converged", "median time", "median step", "whole run",
                       "final risk vs target", "final cosine"], rows))
    out += ["", "### What each change bought (default preset)",
            "From the settings training started from to the defaults, one change at a time; ratios against "
            "the starting settings, measured in the same process. Where the starting settings never converge, "
            "the ratio (marked >) is against their whole run.", ""]
    out.append(_settings_table(section["road"]))
    out += ["", "### Tried and rejected (default preset)",
            "One change to the defaults at a time; ratios against the defaults measured in the same process "
            "(above 1 would be faster).", ""]
    out.append(_settings_table(section["alternatives"]))
    if "compile" in section and "error" in section["compile"]:
        out += ["", f"**torch.compile** failed on this host: {section['compile']['error']}."]
    elif "compile" in section:
        compiled = section["compile"]
        out += ["", f"**torch.compile** (default training step): the first step takes "
                f"{compiled['first_step_seconds']:.0f} s to compile, then a step costs "
                f"{compiled['compiled_step_ms']:.2f} ms "
                f"against {compiled['eager_step_ms']:.2f} ms eager ({_ratio(compiled['speedup'], 2)}). The compile "
                "time alone is many times the whole training run: rejected."]
    return "\n".join(out)


def _settings_table(rows: list[dict]) -> str:
    def ratio(row: dict) -> str:
        if "speedup" in row:
            return _ratio(row["speedup"], 2)
        if "speedup_over_whole_baseline_run" in row:
            return "> " + _ratio(row["speedup_over_whole_baseline_run"])
        return "—"

    return _table(["settings", "median time to converge", "ratio", "converged", "median step", "whole run",
                   "final risk vs target", "final cosine"],
                  [[row["change"], _seconds(row["median_seconds"]), ratio(row), f"{row['converged']}/{row['runs']}",
                    _step(row["median_step"]), _seconds(row["median_run_seconds"]), _percent(row["median_final_gap"]),
                    f"{row['median_final_cosine']:.4f}"]
                   for row in rows])


def _step_cost(section: dict, plot_note: str) -> str:
    out = ["## 2. Cost of a training step against the token loop",
           f"Forward + backward, float32, batch {section['batch']}, token width {section['token_width']}, milliseconds "
           "(median). *reference*, *parallel* and *chunked* compute every position's output in every layer: the loop "
           "over tokens (`gla_core.reference.gla_reference`) and the two fast forms. *model* is what training runs: "
           "the model's prediction, with its own choice of form for the hidden layers and only the query's output "
           "in the last layer. "
           "× = speed-up over the loop; — = not run (the parallel form's decay matrix would take tens of seconds "
           "and gigabytes).", _measured_at(section), ""]
    forms = step_cost.FORMS
    rows = []
    for row in section["rows"]:
        cells = [row["gating"], str(row["layers"]), str(row["tokens"]), _ms(row["ms"]["reference"])]
        for form in forms[1:]:
            cells.append(f"{_ms(row['ms'][form])} ({_ratio(row['speedup'][form])})" if row["ms"][form] else "—")
        rows.append(cells)
    out.append(_table(["gating", "layers", "tokens", "reference ms"] + [f"{form} ms" for form in forms[1:]], rows))
    out += ["", "Growth with prompt length: time at the longest prompt over time at 128 tokens "
            f"(linear growth would be ×{section['growth'][0]['linear']:.0f}).", ""]
    out.append(_table(["gating", "layers"] + list(forms),
                      [[g["gating"], str(g["layers"])] + [_ratio(g["ratio"][form]) for form in forms]
                       for g in section["growth"]]))
    out += ["", plot_note]
    return "\n".join(out)


def _theory(section: dict) -> str:
    rows = [[row["case"], _ms(row["ms"]), _ms(row["target_ms"]), f"{row['of_target']:.2f}"] for row in section["rows"]]
    return "\n".join(["## 3. Theory speed",
                      "Median milliseconds; “of target” below 1 meets the target (50 ms for a preset, 1 s for the "
                      "largest prompt allowed and for a landscape grid as the app requests it).",
                      _measured_at(section), "",
                      _table(["computation", "ms", "target ms", "of target"], rows)])


def _pages(section: dict) -> str:
    out = ["## 4. Page speed"]
    if "skipped" in section:
        return "\n".join(out + [f"Skipped: {section['skipped']}."])
    out += ["Each page's render after a warm-up (AppTest, no browser: a fresh session opens the app and switches "
            "to the page; only the page's run is timed). Median milliseconds; target under 1 s.",
            _measured_at(section), ""]
    out.append(_table(["page", "ms", "of 1 s", "vs home"],
                      [[row["page"], _ms(row["ms"]), f"{row['of_target']:.2f}", _ratio(row["vs_home"], 2)]
                       for row in section["rows"]]))
    browser = section.get("browser")
    if browser:
        out += ["", f"From the browser test's last run (`tests/app/test_browser.py`, artifacts/browser/timings.json, "
                f"written {section.get('browser_written', 'at an unknown time')}, "
                "by whatever code was checked out then): "
                + ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in browser.items()) + "."]
    else:
        out += ["", "Press-Train-to-finished-comparison needs a browser: `tests/app/test_browser.py` writes it to "
                "artifacts/browser/timings.json, quoted here when present (it was not, this run)."]
    return "\n".join(out)


def _memory(section: dict) -> str:
    return "\n".join(["## 5. Memory",
                      "Peak resident memory of one default training run in a fresh process (the kernel's "
                      "high-water mark, VmHWM, reset just before training), against the same process just before "
                      "training. (`resource.getrusage`'s ru_maxrss cannot be used: after fork and exec it still "
                      "carries the benchmark process's own high-water mark.)", "",
                      _table(["", "MB"], [
                          ["before training (Python, torch, gla_core, the analytic solution)",
                           f"{section['before_mb']:.0f}"],
                          ["peak, after one default run", f"{section['peak_mb']:.0f}"],
                          ["what training adds", f"{section['training_mb']:.0f} "
                                                 f"({_ratio(section['peak_over_baseline'], 2)} of the baseline)"]]),
                      "", "The app with 10 idle sessions needs a running server and is not measured here."])


# Measured with one-off runs while the deep recipe was chosen (issue 15's levers); kept beside the table.
DEPTH_LEVERS = """
What else was measured for issue 15's levers (depth preset, 1 torch thread, `python -m bench --only depth_page` and the
scripts behind the table above):
- **The deep recipe** is what turned "short" into "below": keys and queries at x0.5 (x0.1: L=2 +16%; x0.3: +9%;
  x1: diverges), the rate held for 60% of the steps (with decay from step 0 and x0.5: +0.3% at L=2), Adam beta2 0.99.
  Raising the values' rate (x2, x3, x6) or the gates' (x40) did not help (+4% to +20% at L=2); batch 64 or 128 fell
  short (L=2: +38%, +10%). Applied to one layer the deep recipe leaves the default preset 0.9-2.4% above its target,
  so one layer keeps its recipe.
- **Early stop** (`TrainConfig.patience`, off by default): stopping once 3 or 4 live evaluations in a row have not
  improved the best by more than their standard error ends one-layer runs at steps 35-60, 1-3% above their target,
  and 2-4 layer runs at steps 35-70, up to 32% short of their L-step target: a live risk's SE (1024 prompts) is larger
  than what the last stretch of a run gains. Not used by the pages.
- **The hidden layers' form at the training batch**: scalar gates, 43 tokens, 4 layers, batch 256: parallel 62 ms a
  step, chunked C = 8 37 ms, C = 16 60 ms (T = 80: 262 / 86 / 88 ms); at batch 32 they are alike. The auto rule then
  ran such prompts chunked in chunks of 16 (9.6 -> 8.6 ms an attention with the product inside a chunk). Now a
  prompt of up to 64 tokens is one chunk, with no recurrence (the note "One chunk" below): 5.3 -> 3.5 ms.
- **Fewer steps for the overlay**: the trainer's defaults instead of the page's earlier 300 steps halved its time with
  every model within 2% of its target. Now 70 steps, evaluated at steps 35 and 70 only (the overlay draws no replay):
  within 2% on seeds 0-2 (worst +1.7%; the table above). 60 steps evaluated every 20 reached +1.99% on seed 1, 50
  steps +2.45% (8 of 10 within 2%), and batch 128 at 60 steps +3.3%: too close or over.
- **Fewer evaluations on the Depth page** (gla_core.spec.DEPTH_TRAINING): every 10 steps instead of 5, 18.05 s ->
  16.49 s for the four models (medians over seeds 0-2, round-robin), with every final risk the same to the last digit
  (an evaluation reads its own held-out set); the deepest model's replay has 11 frames instead of 21.
- **Fewer steps for the Depth page** did not hold: 50 steps left 2-4 layers 6-22% short of their L-step targets, 70
  steps reached them on seed 0 but left L=2 11% short on seed 1; a higher rate for fewer steps (lr 0.03, 60 steps)
  left L=2 83% short.
- **One projection for q, k, v and the gate** (token width 9, batch 256, 34 tokens): forward + backward of the four
  projections 3.5 ms as four linears, 2.3 ms as one (width 8: 2.2 / 1.5 ms). Tried in the model with the one-chunk
  form: the Depth page's 4-layer step 19.8 -> 20.1 ms, the 1-layer step 2.56 -> 3.07 ms (q, k and v come out as
  strided views, which the products after it read more slowly). Not done.
- **Two models at a time** (gla_core.session.LiveRun's lanes, the table above): a run of several models trains the
  next one beside the current one on a spare slot, taken only while nobody waits for a slot. Two trainers in two
  threads (one torch thread each) run 1.6x as fast as one after the other here (the GIL is released inside torch's
  operations): Depth 9.27 -> 6.69 s, the overlay 4.89 -> 3.10 s, every risk the same to the last digit. In a class
  it changes nothing: the spare slot is never free while others wait.
- **Start order on two lanes** (gla_core.spec.depth_start_order): the 1- and 2-layer models first, then 4 beside 3,
  so both lanes end together: 4.00 -> 3.45 s (seeds 0-2, medians, with the one-chunk form); starting the deepest
  first (4, 3, 2, 1) gave the same 3.45 s but shows nothing for the first two seconds on a busy server.
- **Live evaluations of 512 prompts** (train.LIVE_EVAL_PROMPTS, was 1024): a live point of the 4-layer model costs
  13 ms instead of 24, about one step; the four models 3.06 -> 2.83 s, every final risk the same (the final
  evaluation still reads all 8192 prompts). Standard errors of a trained 4-layer model: 15% of the risk on 512
  prompts, 12% on 1024, 3.6% on 8192.
- **Adam fused** (one kernel per parameter group): 2.83 -> 2.68 s, every final risk within 0.1%.
- **Stopping at the target**, first as a rule on live points alone (end a model once a live evaluation is below its
  L-step target by more than 2 SE of the difference), would never fire early: at 1024 live prompts that margin is
  14-19% of the target for 2-4 layers, and on seeds 0-4 the first live point that cleared it was step 90-100, or none.
  Done instead (2026-12-04, gla_core.train.TrainConfig.target_risk, the Depth page's switch "Stop each model at its
  target"): the whole held-out set decides, at the first evaluation at which it puts the model within 2 SE of its
  target or below it, the verdict the page then gives. Checked at every live point it cost 2-5 whole-set reads a
  run (one is about ten 4-layer steps), so 2-3 layers gained nothing (L=2 0.65 -> 0.59 s); a live point now only
  says when to look (its risk within the margin the whole set would give it), and then 1-2 reads suffice. Seeds 0-2,
  one at a time, on 8192 held-out prompts: L=1 stops at steps 60-80, L=2 70-90, L=3 60-90, L=4 50-70, each at
  -5% to +4% of its target (with all 100 steps -3% to -15%), the four together 3.44 -> 2.37 s of training.
- **The GIL and two lanes**: two 4-layer step loops in two threads lose 9% each; two whole runs (evaluations
  included) 17-27%; in the page's run two at a time, each model takes about 30% longer than alone.
- **Held-out prompts drawn once per spec** (gla_core.train.held_out_prompts, 2026-12-03; one set kept per process):
  drawing the default preset's 8192 held-out prompts took 58 ms of each run. A default run's CPU time 0.991 ->
  0.931 s (medians of 12 runs, alternating in one process), every risk the same. A class of 30 (2 slots, one
  round each, alternating with the code before, on a slow hour): p95 27.2 -> 24.0 s and 24.6 -> 22.2 s.
- **The last layer's query output from sums** (gla_core.gla.GLALayer.last_output, 2026-12-03): o_T = Wv sum_s a_s z_s
  with a_s = omega_{T,s} (Wk^T q_T) . z_s, so Wv (and Wk, for scalar or no gates) is applied once instead of to
  every token, and the scores are products and sums instead of einsums, whose backward was a batch of T x 1 times
  1 x D outer products (0.46 ms each at batch 256, two a step). The default preset's forward and backward 3.5 ->
  2.3 ms; a default run 0.83 -> 0.59 s of CPU (medians of 5, three alternating pairs), per_coordinate 0.65 -> 0.53 s,
  the same final risks to 5 digits; the Depth page's 4-layer step 27.2 -> 26.9 ms (its hidden layers dominate).
  Thirty default runs through two workers with no pages: 12.3 -> 8.6 s. A class of 30 (2 slots, one round each,
  alternating, warmed-up server): p95 14.7 / 14.3 / 15.9 / 13.3 / 15.5 s against 21.3 / 18.1 / 20.6 / 14.6 / 18.7 s.
- **Token assembly by concatenation** instead of indexed writes into a zero tensor (the prompt sampler): the same
  tokens bit for bit, but 1.7-2.3 ms against 1.5-1.8 ms for a batch of 256 in one process, alternating. Not done.
- **Worker processes** (gla_core.workers, 2026-12-02, a machine on which one model at a time took 9.41 s for the
  Depth page's four, against 4.51 s the day before): on a quiet server the page's models in two workers against two
  threads: Depth x1.03 (5.62 / 5.80 s), overlay x1.37 (4.00 / 5.48 s), the same numbers to the last bit. The Depth
  page is bound by its 4-layer model, which two threads already overlapped well. Where the workers count is a busy
  server: a class of 30 (docs/deploy.md, capacity) went from p95 31.0-59.5 s to 21.6-24.3 s on this machine.
"""


def _depth_page(section: dict) -> str:
    """The Depth page's four models against their L-step targets, and the overlay's ten, before and now."""
    depth, overlay = section["depth"], section["overlay"]
    rows = []
    for name in ("before", "one at a time", "two at a time in threads", "all 100 steps", "now"):
        for row in depth[name]["per_depth"]:
            rows.append([name, str(row["layers"]), _seconds(row["median_seconds"]), f"{row['median_steps']:g}",
                         f"{row['runs'][0]['target']:.3f} ± {row['runs'][0]['target_se']:.3f}",
                         _percent(row["median_gap"]), ", ".join(row["verdicts"])])
        rows.append([name, "all", _seconds(depth[name]["median_seconds"]), "", "", "", ""])
    overlay_rows = [[name, _seconds(overlay[name]["median_seconds"]),
                     f"{overlay[name]['within_2_percent']}/{overlay[name]['models']}", _percent(overlay[name]["max_gap"])]
                    for name in ("trainer defaults", "page settings, one at a time", "page settings in threads",
                                 "page settings")]
    return "\n\n".join([
        "## 1b. The Depth page and the overlay, end to end",
        "`python -m bench --only depth_page`. Each set of models trains as the page trains it: one run on a quiet "
        "server's two training slots, two models at a time (gla_core.session.LiveRun's lanes) in worker processes "
        "(gla_core.workers), or in threads, or one at a time as the pages did before. Depth preset, the page's four models (scalar gates, the trainer's defaults: 100 steps, "
        "batch 256; evaluated every 10 steps, gla_core.spec.DEPTH_TRAINING), each against its L-step causal WPGD "
        "target; verdicts as the page gives them (reached: within 2 SE of the difference; short; below), one per "
        "seed; a model's seconds are its own, from its start; steps: where it ended (median). The page stops each "
        "model at its target (its switch, on by default: the first evaluation at which the whole held-out set puts "
        "the model within 2 SE of its target or below it, gla_core.train.TrainConfig.target_risk). *before*: every "
        "depth on the one-layer recipe (keys and queries x0.1, decay from step 0, beta2 0.999) and the parallel form "
        "for the hidden layers, all 100 steps, one at a time; *one at a time*: today's trainer, stopped at the "
        "target; *two at a time in threads*: as the page ran it before its models trained in worker processes; "
        "*all 100 steps*: as the page runs it with its switch off; *now*: two at a time in two workers, each "
        "stopped at its target, as the page runs it. Medians over "
        f"{section['seeds']} seeds, round-robin in one process: now is x{depth['speedup']:.2f} the speed of before, "
        f"x{depth['stop_speedup']:.2f} that of all 100 steps, x{depth['lanes_speedup']:.2f} that of one at a time, "
        f"x{depth['workers_speedup']:.2f} that of two threads.",
        _table(["trainer", "layers", "seconds", "steps", "target ± SE", "gap to target", "verdicts"], rows),
        "The overlay of the Gating page: its ten models (default preset, examples per task 1, 4, 8, 16, 64; linear "
        "attention and scalar gates) at the trainer's defaults, which the page used before (100 steps, evaluated "
        "every 5), one at a time, and at the page's settings (gla_core.spec.OVERLAY_TRAINING: 70 steps, evaluated at "
        "steps 35 and 70; the overlay draws final risks only), one at a time, two at a time in threads, and two at a "
        f"time in workers as the page runs them: the page is x{overlay['speedup']:.2f} the speed of the defaults, "
        f"x{overlay['lanes_speedup']:.2f} that of one at a time, x{overlay['workers_speedup']:.2f} that of two "
        "threads; gap: each model's risk against its analytic target, the worst of the ten.",
        _table(["settings", "seconds (10 models)", "within 2% of target", "worst gap"], overlay_rows),
        _measured_at(section),
        DEPTH_LEVERS.strip(),
    ])


def _targets(results: dict) -> str:
    """Issue 5's targets against this run's numbers."""
    rows = []

    def verdict(met: bool) -> str:
        return "met" if met else "**not met**"

    if "converge" in results:
        default = next(row for row in results["converge"]["presets"] if row["preset"] == "default")
        seconds = default["median_seconds"]
        rows.append(["default preset: converged comparison in about 1 s (median)", _seconds(seconds),
                     verdict(seconds is not None and seconds <= 1.0)])
    if "depth_page" in results:
        depth, overlay = results["depth_page"]["depth"]["now"], results["depth_page"]["overlay"]["page settings"]
        at_target = all(verdict != "short" for row in depth["per_depth"] for verdict in row["verdicts"])
        rows.append(["Depth page: 4 models at their L-step target (or below), at most 3 s of training in all",
                     f"{_seconds(depth['median_seconds'])}, {'none' if at_target else 'some'} short",
                     verdict(at_target and depth["median_seconds"] <= 3.0)])
        rows.append(["overlay, 10 models: at most 5 s", _seconds(overlay["median_seconds"]),
                     verdict(overlay["median_seconds"] <= 5.0)])
    if "step_cost" in results:
        for row in results["step_cost"]["rows"]:
            if row["tokens"] == 512:
                for form in ("chunked", "model"):
                    speedup = row["speedup"][form]
                    rows.append([f"{row['gating']} gates, {row['layers']} layer(s), 512 tokens: "
                                 f"{form} ≥ 10x the loop", _ratio(speedup), verdict(speedup is not None and speedup >= 10)])
        for growth in results["step_cost"]["growth"]:
            for form in ("chunked", "model"):
                ratio = growth["ratio"][form]
                rows.append([f"{growth['gating']} gates, {growth['layers']} layer(s): {form} about linear from "
                             f"{growth['from']} to {growth['to']} tokens (×{growth['linear']:.0f})", _ratio(ratio),
                             verdict(ratio is not None and ratio <= 1.25 * growth["linear"])])
    if "theory" in results:
        for row in results["theory"]["rows"]:
            if row["case"].startswith("solve"):
                rows.append([f"{row['case']} under {_ms(row['target_ms'])} ms", f"{_ms(row['ms'])} ms",
                             verdict(row["of_target"] <= 1)])
    if "pages" in results and "rows" in results["pages"]:
        slowest = max(results["pages"]["rows"], key=lambda row: row["ms"])
        rows.append(["every page renders in under 1 s (AppTest)", f"slowest: {slowest['page']} {_ms(slowest['ms'])} ms",
                     verdict(slowest["of_target"] <= 1)])
    return "## Targets at a glance\n\n" + _table(["target (issue 5)", "this run", ""], rows)


NOTES = """## Notes

Measured while building this, not regenerated by the command:

- **The control variate.** The test risk is model MSE − reference MSE + reference risk on the same held-out
  prompts. With the optimal WPGD as the reference, on far_relevant (where the reachable optimum is far from the
  optimum) the estimate on 4096 prompts said −1.4% against the target when 200,000 fresh prompts said +0.8%;
  with the model's own analytic target as the reference its noise is 3.5x smaller (0.25% against 0.87% of the
  risk on 8192 prompts; per_coordinate 0.32% against 1.19%). The trainer now uses the target.
- **Threads.** Ops this small gain little from a second torch thread, and on a machine whose other core is busy
  two OpenMP threads wait on each other: the "2 torch threads" row swung from ×1.3 faster to ×0.04 between two
  runs of this benchmark an hour apart, as other jobs came and went. The app gives each run one thread (2 runs
  on 2 cores); the command line keeps torch's default. Likewise NumPy's BLAS: with two threads a per_coordinate
  `solve()` swung from 9 ms to 180 ms, so these benchmarks run with one BLAS thread, as the Dockerfile serves
  the app.
- **Inside a chunk, one matrix product.** The chunked form's scores inside a chunk were segment sums of log gates
  over a (chunks, C, C) tensor, (chunks, C, C, D) for vector gates, forward and backward; with vector gates that
  made the chunked form about 6x the loop at 512 tokens and a 4-layer model's step 8.8x. For s < t the weight is
  exp(c_t) exp(-c_s), c the running sum of log gates from the chunk's start, so the scores are one matrix product
  of decayed queries and keys, as in fla's chunk kernels; a chunk whose gate product falls below e^-20 (where
  exp(-c_s) would grow past what float32 holds well) takes segment sums in chunks of 8 (`gla.within_chunks`).
  Forward + backward of one attention, before and now, round-robin in one process (ms): vector gates, batch 16,
  width 16, 512 tokens 57.7 -> 12.1, 2048 tokens 286 -> 61; batch 256, width 8, 43 tokens 28.0 -> 7.0; scalar gates
  12.6 -> 11.6 (batch 16, 512 tokens) and 9.6 -> 8.6 (batch 256, 43 tokens: the Depth page's hidden layers). A
  4-layer model's training step with vector gates at 512 tokens (batch 16, width 16): 160.5 -> 39.7 ms, from x5.1
  to x20.5 the loop's 814 ms in the same run. With
  the product the best chunk is 32 tokens for every gating, and vector gates never take the parallel form. The
  memory estimate counts both ways a chunk may take, so it still bounds a run whose gates close
  (`train.training_memory_bytes`).
- **One chunk for a short prompt, and the own term in the product.** A prompt of up to 64 tokens is now one chunk
  (no padding, no recurrence), and scalar gates always take the chunked form: at the training batch (256 prompts,
  width 8, forward + backward) scalar 43 tokens 8.7 (parallel) / 5.3 (chunks of 16) -> 3.5 ms, vector 7.2 -> 4.1 ms;
  at an evaluation's batch (540 prompts, forward) 7.8 / 3.1 -> 2.5 ms (the table in `gla.py`). Each token's own term
  is now in the chunk's product (exp(c) exp(-c), exact but for rounding) rather than added apart, and the causal mask
  is a 0/1 product: the Depth page's 4-layer step 19.1 -> 16.3 ms and 16.6 -> 15.9 ms. A lone chunk leaves its first
  gate out of the running sums (no state enters it), so that gate's gradient stays exactly 0, as in the loop.
- **Freed memory kept for the next step.** glibc mapped each step's 2 MB score tensors afresh and faulted their pages
  in again at every step (790-1320 page faults a 4-layer step); `train._keep_freed_memory_for_reuse` sets its trim
  threshold to 128 MB and its mapping threshold to 32 MB once per process: 20.8 -> 16.2 ms a step (a run's end still
  hands the pages back with malloc_trim). The largest run's peak stays within its estimate (tests/test_train.py).
- **A class of 30 is bound by the interpreter lock.** In a class each default run held its slot 0.8-1.9 s (0.4 s
  alone) while the server used 1.1-1.4 of its 2 cores: py-spy --gil showed the page scripts holding the lock 52% of
  the time and the training threads 39%, 37% of theirs inside the optimiser's Python loop (now fused; still 29%
  inside the fused step's Python). A slot given back now wakes the next run at once (it waited up to 0.2 s for its
  next look). Refreshing a waiting tab's place every 3 s instead of 1, or a switch interval of 0.5 ms instead of
  5, moved p95 by less than the 2 s it varies between rounds. What would lift the bound is training in worker
  processes (no lock shared with the pages): done the next day (the Worker processes note above).
- **Charts built for less** (gla_core.figures, 2026-12-03). With training in workers, a profile of the server in a
  class of 30 (py-spy, samples off the locks and waits) found the Playground's weights chart taking half of the
  server's time and its gates chart a tenth: Plotly validated every layout key's path again in update_layout
  (7 ms for the house style's six properties on a new figure, 0.4 ms set directly), make_subplots laid out and
  validated its grid afresh (22 ms, 2.6 ms copied from a cached one), add_vline looked through the traces for every
  delimiter line, animation frames made as go.Frame objects were validated twice, and each numpy array was converted
  on its way in and out (base64). Now: layout changes set directly where nothing is there yet and leaf by leaf where
  something is (update_layout's meaning, tested against it), grids copied from a cache, the lines added at once,
  frames and trace data as plain dicts and lists. Every figure the tests build is the same (compared as data). Built
  before and now in one process, alternating (medians of 40): the live chart 44.9 -> 16.6 ms, the finished one
  107.0 -> 34.6 ms, and the finished one's serialisation (each time a page shows it) 15.3 -> 6.3 ms. A class of 30
  (docs/deploy.md, capacity), before and now alternating, 3 pairs: p95 23.1 / 23.4 / 25.0 s -> 15.9 / 13.7 / 15.8
  s, then a pair at 23.4 -> 20.2 s; health p95 0.27-0.78 s -> 0.00-0.25 s. Still above the 12 s target here.
"""


# ---------------------------------------------------------------- the plot
def step_cost_figure(section: dict) -> go.Figure:
    points = step_cost.points(section)
    panels = sorted({(p["gating"], p["layers"]) for p in points})
    figure = make_subplots(rows=1, cols=len(panels), shared_yaxes=True,
                           subplot_titles=[f"{gating} gates, {layers} layer{'s' * (layers > 1)}"
                                           for gating, layers in panels])
    for column, (gating, layers) in enumerate(panels, start=1):
        for form in step_cost.FORMS:
            mine = sorted((p["tokens"], p["ms"]) for p in points
                          if (p["gating"], p["layers"], p["form"]) == (gating, layers, form))
            if mine:
                figure.add_trace(go.Scatter(x=[t for t, _ in mine], y=[ms for _, ms in mine], mode="lines+markers",
                                            name=FORM_NAMES[form], legendgroup=form, showlegend=column == 1,
                                            line={"color": FORM_COLOURS[form]}), row=1, col=column)
        figure.update_xaxes(type="log", title_text="prompt length (tokens)", row=1, col=column)
    figure.update_yaxes(type="log")
    figure.update_yaxes(title_text="forward + backward (ms)", row=1, col=1)
    figure.update_layout(width=320 * len(panels) + 120, height=420, template="plotly_white",
                         legend={"orientation": "h", "y": -0.25}, margin={"t": 40, "b": 110})
    return figure


def write_plot(section: dict) -> tuple[Path, str]:
    """The PNG, or the HTML fallback when static export fails; and the report's sentence about it."""
    figure = step_cost_figure(section)
    try:
        figure.write_image(PLOT_PNG, scale=2)
        PLOT_HTML.unlink(missing_ok=True)
        return PLOT_PNG, f"![Step cost against prompt length for each form]({PLOT_PNG.name})"
    except Exception as error:  # kaleido needs a working Chromium; the figure itself is still worth keeping
        figure.write_html(PLOT_HTML, include_plotlyjs="cdn")
        reason = str(error).splitlines()[0][:160]
        return PLOT_HTML, (f"The static PNG export failed here ({type(error).__name__}: {reason}), so the plot is "
                           f"an interactive HTML file: [{PLOT_HTML.name}]({PLOT_HTML.name}).")


# ---------------------------------------------------------------- the report
def write_report(results: dict) -> list[Path]:
    written = []
    parts = ["# Benchmarks",
             f"Generated by `python -m bench --report` (last run started {results['started']}"
             f"{', quick' if results.get('quick') else ''}; a run with `--only` keeps the other sections' numbers, "
             "each with the load it met). Rerun it to refresh every number here; `python -m bench.report` rewrites "
             "this page from the last results (artifacts/bench/results.json).",
             _machine(results), _targets(results)]
    if "converge" in results:
        parts.append(_converge(results["converge"]))
    if "depth_page" in results:
        parts.append(_depth_page(results["depth_page"]))
    if "step_cost" in results:
        plot, note = write_plot(results["step_cost"])
        written.append(plot)
        parts.append(_step_cost(results["step_cost"], note))
    if "theory" in results:
        parts.append(_theory(results["theory"]))
    if "pages" in results:
        parts.append(_pages(results["pages"]))
    if "memory" in results:
        parts.append(_memory(results["memory"]))
    parts.append(NOTES.strip())
    DOC.write_text("\n\n".join(parts) + "\n")
    written.insert(0, DOC)
    return written


if __name__ == "__main__":
    if not RESULTS.is_file():
        sys.exit(f"no results at {RESULTS}: run python -m bench first")
    for path in write_report(json.loads(RESULTS.read_text())):
        print(f"report: {path.relative_to(ROOT)}")
