"""The settings widgets of the training pages: the preset box, the prompt (data and tasks), the model
and the training, and the checks that turn them into a PromptSpec and a TrainConfig."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import streamlit as st
import torch

from gla_core.limits import host_limits
from gla_core.spec import (DELIMITERS, PromptSpec, SpecError, format_corr, list_presets, load_preset,
                           preset_spec)
from gla_core.train import GATINGS, TrainConfig, check_run_allowed
from lab_ui.controls import Controls

LIVE_WALL_SECONDS = 4 * 3600.0  # a live run is limited by its computing time instead (LiveRun)


MAX_TASK_CONTROLS = 8
NEW_TASK = {"n": 10, "corr": 0.5}          # a task added beyond the preset's
STEP_CHOICES = (25, 50, 100, 200, 300, 400, 600, 800, 1000, 1500, 2000, 3000, 5000, 10000)
LR_CHOICES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
BATCH_CHOICES = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
CONDITION_CHOICES = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 1000.0)
GATING_CAPTIONS = {"none": "linear attention: every gate is 1", "scalar": "one gate per token",
                   "vector": "one gate per key coordinate"}
SETTING_LABELS = {
    "data": "dimension, number of tasks, noise, delimiters",
    "tasks": "examples and relevance of each task",
    "advanced": "feature covariance and task correlation matrix",
    "gating": "gating", "layers": "layers",
    "training": "steps, learning rate, batch, seed, device",
}


def preset_settings(name: str) -> dict:
    """Every control's value for a preset, keyed by the control's key (= its URL parameter)."""
    preset = load_preset(name)
    spec, model, train = preset["spec"], preset.get("model", {}), preset.get("train", {})
    tasks = spec["tasks"] + [NEW_TASK] * (MAX_TASK_CONTROLS - len(spec["tasks"]))
    per_coordinate = any(isinstance(task.get("corr"), list) for task in spec["tasks"])
    values = {"d": spec["d"], "tasks": len(spec["tasks"]), "noise": spec.get("noise", 0.1),
              "delimiter": spec.get("delimiter", "task"), "per_coord": per_coordinate,
              "condition": spec.get("feature_condition", 1.0),
              "task_corr": json.dumps(spec["task_corr"]) if spec.get("task_corr") else "",
              "gating": model.get("gating", "scalar"), "layers": model.get("layers", 1)}
    defaults = TrainConfig()
    values.update({name: train.get(name, getattr(defaults, name))
                   for name in ("steps", "lr", "batch", "seed", "device")})
    for k, task in enumerate(tasks, start=1):
        corr = task.get("corr", 0.0)
        values[f"n{k}"] = task["n"]
        values[f"r{k}"] = float(np.mean(corr)) if isinstance(corr, list) else corr
        values[f"rv{k}"] = format_corr(corr if isinstance(corr, list) else [corr] * spec["d"])
    return values


def use_preset(preset_key: str) -> None:
    """on_change of a preset box: every control on the page jumps to the chosen preset's values. Only
    controls now on the page: the others take the preset's values as their defaults when they appear,
    and a value set for a control of another page would outlive this page."""
    for key, value in preset_settings(st.session_state[preset_key]).items():
        if key in st.session_state:
            st.session_state[key] = value


def preset_box(controls: "Controls", key: str = "preset", default: str = "default") -> tuple[str, dict]:
    """The preset chooser; returns its name and its settings, the defaults of every other control."""
    names = list_presets()
    if controls.class_rules:
        default = controls.class_rules.preset
    name = controls(st.selectbox, "Preset", key, hide_as="preset", options=names, index=names.index(default),
                    on_change=use_preset, args=(key,),
                    help="Named settings; each one shows one thing the theory predicts.")
    return name, preset_settings(name)


MATRIX_TEXT_MAX = 4000   # characters of the task correlation matrix: a 9 x 9 matrix written out needs ~600


def parse_matrix(text: str) -> Any:
    """The task correlation matrix's JSON text, parsed; SpecError for anything else, however hostile
    (deep nesting, numbers of thousands of digits, megabytes of text): never an exception of the parser."""
    if len(text) > MATRIX_TEXT_MAX:
        raise SpecError("task_corr", f"must be at most {MATRIX_TEXT_MAX} characters, got {len(text)}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise SpecError("task_corr", f"is not valid JSON ({error.msg})") from None
    except (RecursionError, ValueError):    # nesting past the parser's depth, an integer over Python's digit limit
        raise SpecError("task_corr", "must be a (K+1)×(K+1) list of numbers from -1 to 1") from None


def _parse_corr_list(text: str, field: str) -> list[float]:
    try:
        return [float(part) for part in text.replace(";", ",").split(",") if part.strip()]
    except ValueError:
        raise SpecError(field, f"must be numbers separated by commas, got {text!r}") from None


def prompt_settings(controls: "Controls", defaults: dict, max_tasks: int = MAX_TASK_CONTROLS) -> dict:
    """Widgets for the prompt; returns the raw spec dict (PromptSpec.from_dict validates it).

    Raises SpecError for text that does not even parse (a correlation list, the matrix)."""
    d = controls(st.slider, "Dimension d", "d", hide_as="data", min_value=1, max_value=16, value=defaults["d"])
    num_tasks = controls(st.slider, "Number of tasks K", "tasks", hide_as="data", min_value=1, max_value=max_tasks,
                         value=min(defaults["tasks"], max_tasks))
    noise = controls(st.slider, "Label noise σ", "noise", hide_as="data", min_value=0.0, max_value=2.0, step=0.05,
                     value=float(defaults["noise"]))
    delimiter = controls(st.radio, "Delimiters", "delimiter", hide_as="data", options=list(DELIMITERS),
                         index=list(DELIMITERS).index(defaults["delimiter"]), horizontal=True,
                         help="task: each delimiter has its own feature, so its own gate; shared: one flag for all; "
                              "none: no delimiter tokens.")
    per_coordinate = controls(st.toggle, "Relevance per coordinate", "per_coord", hide_as="tasks",
                              value=defaults["per_coord"],
                              help="Give each task d correlations (one per coordinate) instead of one number.")
    tasks = []
    for k in range(1, num_tasks + 1):
        n = controls(st.slider, f"Task {k}: examples", f"n{k}", hide_as="tasks", min_value=1, max_value=64,
                     value=int(defaults[f"n{k}"]))
        if per_coordinate:
            text = controls(st.text_input, f"Task {k}: relevance per coordinate", f"rv{k}", hide_as="tasks",
                            value=defaults[f"rv{k}"])
            corr = _parse_corr_list(text, f"tasks[{k - 1}].corr")
        else:
            corr = controls(st.slider, f"Task {k}: relevance r{k} (correlation with the query task)", f"r{k}",
                            hide_as="tasks", min_value=-1.0, max_value=1.0, step=0.05,
                            value=float(defaults[f"r{k}"]))
        tasks.append({"n": n, "corr": corr})
    with controls.group("advanced"), st.expander("Advanced: features and task correlations"):
        condition = controls(st.select_slider, "Feature covariance condition number", "condition",
                             hide_as="advanced", options=list(CONDITION_CHOICES), value=float(defaults["condition"]),
                             help="1: isotropic features (Σ = I). Larger: feature variances spread geometrically, "
                                  "and the optimal preconditioner P* stops being a multiple of I.")
        matrix_text = controls(st.text_area, "Task correlation matrix (optional)", "task_corr", hide_as="advanced",
                               value=defaults["task_corr"], height=90,
                               placeholder="[[1, 0.3, 0.2], [0.3, 1, 0.9], [0.2, 0.9, 1]]",
                               help="JSON, (K+1)×(K+1), tasks in prompt order then the query. Must be symmetric, "
                                    "positive semi-definite, ones on the diagonal. Replaces the relevance sliders.")
    spec = {"d": d, "noise": noise, "delimiter": delimiter, "tasks": tasks, "feature_condition": condition}
    if matrix_text.strip():
        spec["task_corr"] = parse_matrix(matrix_text)
        spec["tasks"] = [{"n": task["n"]} for task in tasks]
    return spec


def prompt_description(spec: PromptSpec, preset: str) -> None:
    """The box that says which prompt the charts show: a preset's title and description when `spec` is one
    (`preset` first, then any other), else "your own prompt"."""
    described = next((name for name in [preset, *list_presets()] if preset_spec(name) == spec), None)
    st.info(f"**{load_preset(described)['title']}.** {load_preset(described)['description']}"
            if described else "**Your own prompt** (changed from the preset).", icon=":material/description:")


def training_sidebar(controls: "Controls", with_layers: bool = True, preset_key: str = "preset",
                     default_preset: str = "default") -> tuple[str, dict, dict]:
    """The sidebar of a page that trains models: the preset box, then the data, model and training
    controls. Returns the preset's name, the raw spec dict and the model and training settings.

    Raises SpecError for prompt text that does not parse, once every control is drawn."""
    with st.sidebar:
        preset, defaults = preset_box(controls, key=preset_key, default=default_preset)
        with controls.group("data", "tasks", "advanced"):
            st.header("Data")
        try:
            spec_dict, unparsable = prompt_settings(controls, defaults), None
        except SpecError as error:
            spec_dict, unparsable = None, error
        with controls.group("gating", *(["layers"] if with_layers else [])):
            st.header("Model")
        settings = model_settings(controls, defaults, with_layers=with_layers)
        with controls.group("training"):
            st.header("Training")
        settings.update(training_settings(controls, defaults))
    if unparsable is not None:
        raise unparsable
    return preset, spec_dict, settings


def validated_spec(spec_dict: dict) -> PromptSpec:
    """PromptSpec.from_dict plus this host's token limit."""
    spec = PromptSpec.from_dict(spec_dict)
    check_run_allowed(spec, TrainConfig(), max_tokens=host_limits().max_tokens)
    return spec


def model_settings(controls: "Controls", defaults: dict, with_layers: bool = True) -> dict:
    gating = controls(st.radio, "Gating", "gating", options=list(GATINGS), captions=list(GATING_CAPTIONS.values()),
                      index=list(GATINGS).index(defaults["gating"]))
    settings = {"gating": gating}
    if with_layers:
        settings["layers"] = controls(st.slider, "Layers (= WPGD steps)", "layers", min_value=1, max_value=4,
                                      value=int(defaults["layers"]))
    return settings


def training_settings(controls: "Controls", defaults: dict) -> dict:
    limits = host_limits()
    steps_choices = [steps for steps in STEP_CHOICES if steps <= limits.max_steps] or [limits.max_steps]
    batch_choices = [batch for batch in BATCH_CHOICES if batch <= limits.max_batch] or [limits.max_batch]
    devices = ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else [])

    def nearest(choices, value):
        return min(choices, key=lambda choice: abs(choice - value))

    return {
        "steps": controls(st.select_slider, "Training steps", "steps", hide_as="training", options=steps_choices,
                          value=nearest(steps_choices, defaults["steps"])),
        "lr": controls(st.select_slider, "Learning rate", "lr", hide_as="training", options=list(LR_CHOICES),
                       value=nearest(LR_CHOICES, defaults["lr"])),
        "batch": controls(st.select_slider, "Batch (prompts per step)", "batch", hide_as="training",
                          options=batch_choices, value=nearest(batch_choices, defaults["batch"])),
        "seed": whole_number(controls(st.number_input, "Seed", "seed", hide_as="training", min_value=0.0,
                                      max_value=float(2**31 - 1), value=float(defaults["seed"]), step=1.0,
                                      format="%.0f")),
        "device": controls(st.selectbox, "Device", "device", hide_as="training", options=devices,
                           index=devices.index(defaults["device"]) if defaults["device"] in devices else 0),
    }


def whole_number(value: float) -> int | float:
    """A whole number from a number box, as an int; any other number as it is, for TrainConfig to refuse
    by name. The box holds floats because Streamlit reads a whole-number box's link value with int(), which
    raises on the page for "inf" or "1e400"; a float box falls back to its default instead."""
    return int(value) if float(value).is_integer() else value


def train_config(spec: PromptSpec, **settings) -> TrainConfig:
    """A TrainConfig for the app: the command line's defaults and a long wall-clock limit. The host's
    time limit applies to the seconds a run computes, counted by its LiveRun: a run waiting for a
    training slot, or paused between Steps, keeps its whole budget.

    Raises SpecError for a run that would hold more memory than this host allows one run
    (GLA_MAX_RUN_MEMORY_MB): one such run could take the whole server down for everyone."""
    config = TrainConfig(max_seconds=LIVE_WALL_SECONDS, **settings).validate()
    limits = host_limits()
    check_run_allowed(spec, config, max_steps=limits.max_steps, max_batch=limits.max_batch,
                      memory_budget_bytes=limits.max_run_memory_mb * 2**20)
    return config
