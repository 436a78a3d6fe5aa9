"""Downloads: the training history and weights as CSV, the run as JSON, and the command line that
trains the same run; the export box that offers them."""
from __future__ import annotations

import csv
import io
import json
import shlex

import numpy as np
import streamlit as st

from gla_core.spec import PromptSpec, preset_spec
from gla_core.train import ANALYTIC_KEY, TrainConfig, Trainer

def history_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["step", "seconds", "train_loss", "test_risk", "cosine"])
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def weights_csv(spec: PromptSpec, analytic: dict, gating: str, induced_per_layer: list) -> str:
    """One row per example (and key coordinate for vector gates): analytic and induced weights."""
    target = np.asarray(analytic[ANALYTIC_KEY[gating]]["omega"], dtype=float)
    optimal = np.asarray(analytic["optimal"]["omega"], dtype=float)
    induced = [np.asarray(layer, dtype=float) for layer in induced_per_layer]
    out = io.StringIO()
    writer = csv.writer(out)
    per_coordinate = target.ndim == 2
    writer.writerow(["example", "task"] + (["coordinate"] if per_coordinate else [])
                    + ["optimal_wpgd", f"best_{ANALYTIC_KEY[gating]}"]
                    + [f"induced_layer_{layer + 1}" for layer in range(len(induced))])
    for i, task in enumerate(spec.example_task):
        for c in range(target.shape[1] if per_coordinate else 1):
            where = (i, c) if per_coordinate else (i,)
            writer.writerow([i + 1, int(task) + 1] + ([c + 1] if per_coordinate else []) + [optimal[i], target[where]]
                            + [layer[where] if layer.shape == target.shape else layer[i] for layer in induced])
    return out.getvalue()


def cli_command(spec: PromptSpec, preset: str | None, config: TrainConfig) -> str:
    """The command line that trains the same run (`python -m gla_core train`, same JSON out)."""
    options = (f"--gating {config.gating} --layers {config.layers} --steps {config.steps} --lr {config.lr:g} "
               f"--batch {config.batch} --seed {config.seed} --device {config.device} --out run.json")
    if preset is not None:
        return f"python -m gla_core train --preset {preset} {options}"
    spec_text = json.dumps(spec.to_dict())
    return f"echo {shlex.quote(spec_text)} > spec.json\npython -m gla_core train spec.json {options}"


def run_json(trainer: Trainer) -> str:
    return json.dumps(trainer.result(), indent=2)


def export_panel(trainer: Trainer, preset: str) -> None:
    """The "Export this run" box: the run JSON, its history and weights as CSV, and the command line
    that trains it again (naming the preset when the run's prompt is the preset's)."""
    with st.expander("Export this run"):
        json_col, history_col, weights_col = st.columns(3)
        json_col.download_button("Run JSON", data=lambda: run_json(trainer), file_name="run.json",
                                 mime="application/json", on_click="ignore", width="stretch",
                                 help="Same format as `python -m gla_core train --out`.")
        history_col.download_button("History CSV", data=lambda: history_csv(trainer.history_rows()),
                                    file_name="history.csv", mime="text/csv", on_click="ignore", width="stretch")
        weights_col.download_button("Weights CSV", data=lambda: weights_csv(
            trainer.spec, trainer.analytic, trainer.config.gating, trainer.snapshot().induced_weights),
            file_name="weights.csv", mime="text/csv", on_click="ignore", width="stretch")
        st.markdown("The same run from the command line:")
        run_preset = preset if trainer.spec == preset_spec(preset) else None
        st.code(cli_command(trainer.spec, run_preset, trainer.config), language="bash")
        st.caption("Each chart saves itself as a PNG: use the camera icon at its top right.")
