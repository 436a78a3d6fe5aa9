"""What every GLA Lab page shares: process-wide resources, per-session runs, URL-bound controls,
teacher mode, messages, charts and exports.

Imported once per server process (Streamlit re-executes pages, not imported modules), so the
process-wide settings below are made exactly once.
"""
from __future__ import annotations

import concurrent.futures
import csv
import hashlib
import io
import json
import re
import shlex
import uuid
from urllib.parse import urlencode
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

import lab_board
from gla_core import causal_wpgd, theory
from gla_core.gla import MAX_LAYERS as MAX_DEPTH
from gla_core.limits import host_limits
from gla_core.sampling import DELIMITER, EXAMPLE, layout
from gla_core.session import LiveRun, ResultStore, TrainingSlots
from gla_core.spec import DELIMITERS, PromptSpec, SpecError, list_presets, load_preset
from gla_core.train import ANALYTIC_KEY, GATINGS, Snapshot, TrainConfig, Trainer, check_run_allowed, untrained_frame

# torch's thread pool is process-wide, so it is set here, once. One thread per run: the models are
# tiny (tens of tokens, width ~10), so extra threads only add synchronisation, and on a busy shared
# machine they make training several times slower; the cores serve concurrent runs instead.
torch.set_num_threads(1)
# The first torch.optim optimiser imports torch._dynamo (about 1 s, under the import lock): done here,
# at start-up, rather than inside the first training run while every other run waits on the lock.
import torch._dynamo  # noqa: E402,F401

STEP_SIZE = 2 * TrainConfig().eval_every  # steps one press of Step trains: it ends on an evaluation
POLL_SECONDS = 1.0          # how often a page refreshes while its run computes (a refresh costs the trainer CPU)
LIVE_WALL_SECONDS = 4 * 3600.0  # a live run is limited by its computing time instead (LiveRun)
LIVE_RUN_PARAM = "training"  # in the URL while the session has a run alive (flag_live_runs)
LIVE_RUN_FLAGGED = "_live_run_flagged"  # session_state: this session put LIVE_RUN_PARAM in the URL
PROCESS_TOKEN = uuid.uuid4().hex[:12]   # tells this server process's runs from an earlier one's
RESULT_CAPACITY = 256       # finished runs kept for every session to reuse
FIGURE_MEMO = "_figure_memo"  # session_state: chart key -> (fingerprint, figure) last drawn
CHART_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}
BASE_CSS = """
<style>
/* Hidden controls (teacher mode) keep working but take no space. */
[class*="st-key-hidden_"] { display: none !important; }
/* Narrower side padding: charts get the width on a 1024 px projector. */
.stMainBlockContainer { padding-left: 2rem; padding-right: 2rem; padding-top: 2.5rem; }
</style>
"""
PROJECTOR_CSS = """
<style>
.stApp { font-size: 1.3rem; }
.stApp h1 { font-size: 3rem; }
.stApp .stMarkdown p, .stApp label p, .stApp .stCaption { font-size: 1.3rem !important; }
.stApp .katex { font-size: 1.35em; }
.stApp .katex-display { overflow-x: auto; overflow-y: hidden; padding-bottom: 0.3rem; }
.stApp .stButton button p, .stApp .stDownloadButton button p { font-size: 1.3rem !important; }
.stApp .stButton button { min-height: 3rem; }
.stApp [data-testid="stMetricValue"] { font-size: 2.6rem; }
</style>
"""

# Plays each replay once by itself, in the browser: a figure with a replay id (figures.training_replay's
# layout.meta.replay) gets its Play button pressed the first time this tab shows that id. One watcher per
# tab, polling the page 3 times a second; the ids already played are kept in the tab's sessionStorage.
AUTOPLAY_SCRIPT = """<script>
(function () {
  const host = window.parent || window;
  if (host.__glaReplayWatcher) return;
  host.__glaReplayWatcher = host.setInterval(function () {
    const played = JSON.parse(host.sessionStorage.getItem("gla-played") || "[]");
    host.document.querySelectorAll(".js-plotly-plot").forEach(function (chart) {
      const id = chart.layout && chart.layout.meta && chart.layout.meta.replay;
      const button = chart.querySelector(".updatemenu-button");
      if (!id || !button || played.includes(id)) return;
      played.push(id);
      host.sessionStorage.setItem("gla-played", JSON.stringify(played.slice(-100)));
      button.dispatchEvent(new MouseEvent("click", {bubbles: true}));
    });
  }, 300);
})();
</script>"""

# ---------------------------------------------------------------- process-wide resources
@st.cache_resource
def training_slots() -> TrainingSlots:
    """The cap on trainings computing at once in this server process, and its line, shared by every session."""
    return TrainingSlots(host_limits().max_concurrent_runs)


@st.cache_resource
def result_store() -> ResultStore:
    """Finished results every session can reuse (e.g. the overlays of a sweep)."""
    return ResultStore(RESULT_CAPACITY)


class SessionRuns:
    """One browser session's live runs by purpose ('playground', 'depth', ...), each with a tag: the
    settings it was started with, so a page can tell whether its controls still describe it."""

    def __init__(self):
        self._runs: dict[str, tuple[LiveRun, Any]] = {}

    def get(self, purpose: str) -> LiveRun | None:
        return self._runs.get(purpose, (None, None))[0]

    def tag(self, purpose: str) -> Any:
        return self._runs.get(purpose, (None, None))[1]

    def replace(self, purpose: str, run: LiveRun | None = None, tag: Any = None) -> None:
        """Stop the purpose's run, if any, and keep `run` in its place."""
        old = self._runs.pop(purpose, None)
        if old is not None:
            old[0].stop()
        if run is not None:
            self._runs[purpose] = (run, tag)

    def any_alive(self) -> bool:
        return any(run.alive for run, _ in self._runs.values())

    def stop_all(self) -> None:
        for run, _ in self._runs.values():
            run.stop()
        self._runs.clear()


@st.cache_resource(scope="session", on_release=SessionRuns.stop_all, show_spinner=False)
def session_runs() -> SessionRuns:
    """This session's runs; released (and every run stopped) when the session ends."""
    return SessionRuns()


@st.cache_data(max_entries=512, show_spinner=False)
def analytic_for(spec_json: str) -> dict:
    """theory.solve for a spec, cached by its JSON (identical specs are common across a class)."""
    return theory.solve(PromptSpec.from_json(spec_json))


@st.cache_data(max_entries=256, show_spinner=False)
def landscape_for(spec_json: str) -> dict:
    """The WPGD landscape of a two- or three-task spec (theory.landscape_two_tasks / _three_tasks)."""
    spec = PromptSpec.from_json(spec_json)
    return (theory.landscape_two_tasks if spec.num_tasks == 2 else theory.landscape_three_tasks)(spec)


def flag_live_runs() -> None:
    """Keep LIVE_RUN_PARAM in the URL while this session has a run alive, and say so when a page opens
    with it but no run: the server restarted (or the session expired) and the run was lost. Streamlit
    keeps a tab's URL when it reconnects to a restarted server, but not its session. Called by the
    frame (app.py) on every page run."""
    if session_runs().any_alive():
        st.query_params[LIVE_RUN_PARAM] = "1"
        st.session_state[LIVE_RUN_FLAGGED] = True
    elif LIVE_RUN_PARAM in st.query_params:
        if not st.session_state.get(LIVE_RUN_FLAGGED):
            st.warning("**Your training run was interrupted**: the server restarted or your session expired, and "
                       "a run lives only in the server's memory. Press **Train** to start it again.",
                       icon=":material/restart_alt:")
        del st.query_params[LIVE_RUN_PARAM]


# ---------------------------------------------------------------- teacher mode and controls
def teacher_mode() -> bool:
    return bool(st.session_state.get("teacher", False))


def apply_display_mode() -> None:
    """The styles for hidden controls and, in teacher mode, projector-sized text; the replays' autoplay."""
    st.html(BASE_CSS + (PROJECTOR_CSS if teacher_mode() else ""))
    st.html(AUTOPLAY_SCRIPT, unsafe_allow_javascript=True, width="content")


class Controls:
    """The URL-bound widgets of one page. In teacher mode the teacher picks controls to hide: a
    hidden control keeps working (its value still comes from the URL) but is not shown.

    hideable: name -> what it hides, for what the teacher may hide (the names are shown as they are:
    URL values of choice widgets are the shown labels, so they stay short words); a widget belongs to
    the name given as `hide_as` (several widgets can share one, e.g. every task's size), or else to its key.
    """

    def __init__(self, page: str, hideable: dict[str, str]):
        self.hidden: set[str] = set()
        key = f"hide_{page}"
        if teacher_mode():
            with st.sidebar:
                self.hidden = set(st.multiselect(
                    "Hide these controls", options=list(hideable), key=key, bind="query-params",
                    help="Hidden controls keep their values; the link keeps the choice. "
                         + "; ".join(f"**{name}**: {label}" for name, label in hideable.items())))
                st.text_input("Student link", value=student_link(), disabled=False, key=f"student_link_{page}",
                              help="This page with these settings and these controls hidden, without teacher "
                                   "mode: copy it for the class.")
        else:   # a student link: the teacher's choice of hidden controls, without the box that makes it
            self.hidden = {name for name in st.query_params.get_all(key) if name in hideable}

    def group(self, *names: str):
        """A container for a heading or section that is hidden when all of `names` are."""
        hidden = set(names) <= self.hidden
        return st.container(key=f"hidden_group_{'_'.join(names)}") if hidden else nullcontext()

    def __call__(self, widget: Callable, label: str, key: str, hide_as: str | None = None, **kwargs) -> Any:
        hidden = (hide_as or key) in self.hidden
        from_link, repeated = st.query_params.get(key), st.query_params.get_all(key)   # before the widget rewrites them
        with st.container(key=f"hidden_{key}") if hidden else nullcontext():
            value = widget(label, key=key, bind="query-params", **kwargs)
        if len(repeated) > 1 and widget is not st.multiselect:
            st.warning(f"The link gives {key} {len(repeated)} times ({literal(', '.join(map(repr, repeated)))}); "
                       f"a setting takes one value: showing {literal(value)}.")
        # Streamlit drops a link value the widget cannot take and shows its default: say so.
        elif from_link is not None and _link_value_refused(from_link, value):
            st.warning(f"The link's {key}={literal(repr(from_link))} is not an allowed value for {label.lower()}; "
                       f"showing {literal(value)} instead.")
        return value


def student_link() -> str:
    """The page's address with its settings, less teacher mode (its URL parameter, `teacher`)."""
    base = (st.context.url or "").split("?")[0]
    query = [(name, value) for name in st.query_params if name not in ("teacher", LIVE_RUN_PARAM)
             for value in st.query_params.get_all(name)]
    return base + ("?" + urlencode(query) if query else "")


def _link_value_refused(from_link: str, value: Any) -> bool:
    """Whether the widget ended up with something other than the URL's text (lists are not checked)."""
    if isinstance(value, (list, tuple)) or str(value).lower() == from_link.lower():
        return False
    try:
        return float(from_link) != float(value)
    except (TypeError, ValueError):
        return True


# ---------------------------------------------------------------- settings: presets, prompt, model, training
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


def format_corr(corr) -> str:
    """A correlation as text: 0.5, or a per-coordinate list as 0.9, 0.9, 0."""
    return ", ".join(f"{c:g}" for c in corr) if isinstance(corr, list) else f"{corr:g}"


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
        "seed": controls(st.number_input, "Seed", "seed", hide_as="training", min_value=0, max_value=2**31 - 1,
                         value=int(defaults["seed"]), step=1),
        "device": controls(st.selectbox, "Device", "device", hide_as="training", options=devices,
                           index=devices.index(defaults["device"]) if defaults["device"] in devices else 0),
    }


def on_phone() -> bool:
    """A phone browser (by its user agent): pages show precomputed results instead of training."""
    return "Mobi" in (st.context.headers.get("User-Agent") or "")


# ---------------------------------------------------------------- messages and charts
# Every character Markdown (CommonMark, GitHub's autolinks, Streamlit's $math$, :emoji: and :colour[...])
# gives a meaning to; a backslash before each shows it as itself.
WORD_JOINER = "\u2060"
MARKDOWN_SPECIALS = frozenset("\\`*_{}[]()<>#+-.!|$~:=&\"'^")


def literal(text: Any) -> str:
    """Text that came from a user (a URL value, a typed list, an error message quoting them) made safe to
    put inside Markdown: it shows exactly as typed, never as a link, an image, a formula or markup."""
    escaped = "".join("\\" + char if char in MARKDOWN_SPECIALS else char for char in str(text))
    # GitHub's autolinks ignore escapes: an invisible word joiner after "www", "@" and "://"'s colon keeps
    # an address from becoming a link (or an image fetch) while it reads the same.
    for trigger in ("www", "@", "\\:"):
        escaped = re.sub(re.escape(trigger), lambda match: match.group(0) + WORD_JOINER, escaped, flags=re.IGNORECASE)
    return escaped.replace("\n", " ")


def show_invalid(error: Exception) -> None:
    """An invalid setting, said plainly, in place of the figure it would have drawn. The field is the
    code's name for it; the message quotes what the user gave, so it is shown literally."""
    field, _, message = str(error).partition(": ")
    st.error(f"**This setting cannot be used** — `{field}`: {literal(message)}" if message
             else literal(error), icon=":material/warning:")


def chart(recipe: Callable[[], go.Figure], description: str, key: str) -> None:
    """A Plotly chart with its plain-words description underneath and as its alt text; larger fonts
    for a projector in teacher mode.

    `recipe` builds the figure: `functools.partial(figures.depth_chart, depths, trained, risks)`. It is called
    only when its function or arguments differ from what this chart (`key`) drew last in this
    session: a live panel redraws every POLL_SECONDS while its data changes only at evaluations, and
    building Plotly figures costs tens of milliseconds of server time under the GIL, per chart, per tab.
    """
    memo = st.session_state.setdefault(FIGURE_MEMO, {})
    fingerprint = _fingerprint(recipe, teacher_mode())
    if key not in memo or memo[key][0] != fingerprint:
        figure = recipe()
        if teacher_mode():
            enlarge_for_projector(figure)
        memo[key] = (fingerprint, figure)
    st.plotly_chart(memo[key][1], config=CHART_CONFIG, key=key, width="stretch", alt=description)
    st.caption(description)


def enlarge_for_projector(figure: go.Figure) -> None:
    """Teacher mode: every text of a chart at projector size. Ticks, legends, subplot titles and the
    replay's buttons are set one by one, since Streamlit's chart theme gives them sizes of their own."""
    figure.update_layout(font={"size": 18}, legend={"font": {"size": 17}}, title={"font": {"size": 21}},
                         height=int((figure.layout.height or 360) * 1.2))
    figure.update_xaxes(tickfont={"size": 16}, title_font={"size": 17})
    figure.update_yaxes(tickfont={"size": 16}, title_font={"size": 17})
    figure.update_annotations(font={"size": 18})
    for menu in figure.layout.updatemenus or ():
        menu.font = {"size": 16}
    for slider in figure.layout.sliders or ():
        slider.font, slider.currentvalue.font = {"size": 15}, {"size": 17}


def _fingerprint(recipe: Callable[[], go.Figure], *context: Any) -> str:
    """What a recipe draws, as text: its function and every argument (numbers in full, never abbreviated)."""
    function = getattr(recipe, "func", recipe)
    return json.dumps([function.__module__, function.__qualname__, getattr(recipe, "args", ()),
                       getattr(recipe, "keywords", {}), context], sort_keys=True, default=_plain)


def _plain(value: Any) -> Any:
    """NumPy arrays and scalars as lists and numbers, for _fingerprint's json.dumps."""
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    raise TypeError(f"a chart's arguments must be plain data, got {type(value).__name__}")


def token_labels(spec: PromptSpec) -> list[str]:
    """Short unique names of the prompt's tokens: 'T2·3' (task 2, its example 3), 'D2' (delimiter
    after task 2), 'Q' (the query)."""
    prompt = layout(spec)
    labels, counts = [], np.zeros(spec.num_tasks, dtype=int)
    for kind, task in zip(prompt.kind, prompt.task):
        if kind == EXAMPLE:
            counts[task] += 1
            labels.append(f"T{task + 1}·{counts[task]}")
        else:
            labels.append(f"D{task + 1}" if kind == DELIMITER else "Q")
    return labels


def analytic_risks(analytic: dict, gating: str) -> dict[str, float]:
    """The risks a training curve is compared with (figures.QUANTITIES keys): predicting 0, linear
    attention, optimal WPGD and the best this gating can reach."""
    keys = ("zero", "linear_attention", "optimal", ANALYTIC_KEY[gating])
    return {key: analytic[key]["risk"] for key in keys}


def layer_list(depths: list[int]) -> str:
    """'1 layer', '2, 3 and 4 layers'."""
    words = ", ".join(map(str, depths[:-1])) + (" and " if len(depths) > 1 else "") + str(depths[-1])
    return f"{words} layer{'s' if depths != [1] else ''}"


def risk_text(risk: float, risk_se: float) -> str:
    """A measured risk with its standard error: '2.259 ± 0.010'."""
    return f"{risk:.3f} ± {risk_se:.3f}" if np.isfinite(risk_se) else f"{risk:.3f}"


def compared_with(risk: float, risk_se: float, theory_risk: float, name: str) -> tuple[str, str]:
    """How a measured risk stands against a theory line, honestly: within 2 standard errors it is *at*
    the line (noise never beats the theory). Returns (words, st.metric delta_color)."""
    difference = risk - theory_risk
    if not np.isfinite(risk_se) or abs(difference) <= 2 * risk_se:
        return "at the theory line (±2 SE)", "off"
    return f"{difference:+.3f} vs {name}", "inverse"


THEORY_HIDDEN = "hide_theory"   # URL parameter and widget key of the hide-the-theory switch


def theory_switch(controls: "Controls") -> bool:
    """The sidebar switch that hides analytic markers, lines and the cosine until a run ends, so a class
    can predict first; bound to the URL, so a teacher's link sets it."""
    with st.sidebar:
        return controls(st.toggle, "Hide the theory until the run ends", THEORY_HIDDEN, hide_as="theory",
                        value=False, help="Analytic weights, risk lines and the cosine appear when the run ends: "
                                          "predict first, then check.")


@st.cache_data(max_entries=256, show_spinner=False)
def untrained_for(spec_json: str, config_json: str) -> dict:
    """The model a run starts from, as a trajectory frame (gla_core.train.untrained_frame), cached."""
    spec = PromptSpec.from_json(spec_json)
    return untrained_frame(spec, TrainConfig(**json.loads(config_json)), analytic=analytic_for(spec_json))


def untrained(spec: PromptSpec, config: TrainConfig) -> dict:
    return untrained_for(spec.to_json(), json.dumps(asdict(config), sort_keys=True))


def replay_id(*parts: Any) -> str:
    """The id a replay figure carries (figures' replay_id): the browser plays each id by itself once. It
    holds this server process's own token, since run ids start again at 1 when the server restarts."""
    return json.dumps([PROCESS_TOKEN, *parts], sort_keys=True, default=str)


# ---------------------------------------------------------------- runs
def start_run(purpose: str, jobs: list[tuple[PromptSpec, TrainConfig]], tag: Any = None,
              step_budget: int | None = None, post_to_board: bool = True) -> LiveRun:
    """Start a background run that trains one model per (spec, config) job, one after another, in
    place of this session's run for `purpose`. Each model that completes its steps goes to the
    result_store, for every session to reuse (see _keep_result), and, when this session has joined a
    class and post_to_board is set, to the class board."""
    membership = lab_board.joined_class() if post_to_board else None   # read here: session state is this thread's

    def finished(trainer: Trainer) -> None:
        if _keep_result(trainer):
            lab_board.post_finished(membership, trainer.result())

    trainers = [Trainer(spec, config, analytic=analytic_for(spec.to_json())) for spec, config in jobs]
    run = LiveRun(trainers, training_slots(), host_limits().max_seconds,
                  step_budget=step_budget, on_trainer_finished=finished, group=browser_id())
    session_runs().replace(purpose, run, tag)
    return run.start()


@dataclass(frozen=True)
class RunButton:
    """One button of a page's run controls (RunControls.buttons)."""

    label: str
    on_click: Callable
    args: tuple = ()
    disabled: bool = False
    help: str | None = None
    primary: bool = False


class RunControls:
    """What a training page knows of its run, and its button row: this session's run for `purpose`,
    whether it was started with the settings now on screen (`tag`), and whether it computes.

        controls = lab_ui.RunControls("depth", tag)
        controls.buttons([RunButton("Train", train, primary=True)], phone="On a phone ...")
    """

    def __init__(self, purpose: str, tag: Any):
        self.purpose, self.tag = purpose, tag
        runs = session_runs()
        self.run = runs.get(purpose)
        self.same_settings = self.run is not None and runs.tag(purpose) == tag

    @property
    def computing(self) -> bool:
        """The run of these settings is waiting for a slot or training."""
        return self.same_settings and self.run.phase in ("waiting", "running")

    def start(self, jobs: list[tuple[PromptSpec, TrainConfig]], **options) -> LiveRun:
        return start_run(self.purpose, jobs, self.tag, **options)

    def stop(self) -> None:
        self.run.stop()

    def buttons(self, buttons: list[RunButton], phone: str, widths: list[float] | None = None,
                stop_at: int | None = None, stop_shown_run: bool = False) -> None:
        """The page's buttons in one row, with a Stop at position `stop_at` (default: last); on a phone,
        which trains nothing, the `phone` notice instead. widths: the columns' relative widths.
        stop_shown_run: Stop also stops a run of other settings (a page that keeps showing it)."""
        if on_phone():
            st.warning(phone, icon=":material/smartphone:")
            return
        row = list(buttons)
        stoppable = self.run is not None and self.run.alive and (self.same_settings or stop_shown_run)
        stop = RunButton("Stop", self.stop, disabled=not stoppable)
        row.insert(len(row) if stop_at is None else stop_at, stop)
        for column, button in zip(st.columns(widths or [1] * len(row)), row):
            column.button(button.label, on_click=button.on_click, args=button.args, disabled=button.disabled,
                          help=button.help, type="primary" if button.primary else "secondary", width="stretch")


@st.cache_resource
def _target_jobs() -> tuple[concurrent.futures.ThreadPoolExecutor, dict]:
    """One background worker for L-step targets not precomputed (seconds to minutes each), and its jobs."""
    return concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="causal-wpgd"), {}


def depth_targets(spec: PromptSpec, gating: str, compute: bool = False) -> list[dict] | None:
    """The best L-step causal WPGD for L = 1..4 (gla_core.causal_wpgd): at once for a preset (precomputed);
    for other settings only once `compute` has asked for it and the background worker has finished
    (None until then), so no page waits on it."""
    if causal_wpgd.precomputed(spec, MAX_DEPTH, gating):
        return causal_wpgd.causal_wpgd_targets(spec, MAX_DEPTH, gating)
    worker, jobs = _target_jobs()
    key = (spec.to_json(), gating)
    if key not in jobs and compute:
        jobs[key] = worker.submit(causal_wpgd.causal_wpgd_targets, spec, MAX_DEPTH, gating)
    job = jobs.get(key)
    return job.result() if job is not None and job.done() and job.exception() is None else None


def depth_targets_pending(spec: PromptSpec, gating: str) -> bool:
    job = _target_jobs()[1].get((spec.to_json(), gating))
    return job is not None and not job.done()


def browser_id() -> str | None:
    """Which browser this session is in: tabs of one browser share Streamlit's XSRF cookie (hashed here,
    never kept), so one browser's tabs share one place at the head of the training line (TrainingSlots)."""
    cookie = (st.context.cookies or {}).get("_streamlit_xsrf")
    return hashlib.sha256(cookie.encode()).hexdigest()[:16] if cookie else None


def result_key(spec: PromptSpec, config: TrainConfig) -> str:
    """What makes two runs the same run (the time limit aside), as a result_store key."""
    settings = {name: value for name, value in asdict(config).items() if name != "max_seconds"}
    return json.dumps([spec.to_dict(), settings], sort_keys=True)


def _keep_result(trainer: Trainer) -> bool:
    """Keep a run that completed in the result store (True); a diverged, stopped or failed run is never
    offered to other sessions as a trained result (False)."""
    if trainer.snapshot().status != "finished":
        return False
    result_store().put(result_key(trainer.spec, trainer.config), trainer.result(compact=True))
    return True


def snapshot_from_result(result: dict) -> Snapshot:
    """A stored run's result (Trainer.result) seen as the snapshot of a run that has ended."""
    return Snapshot(step=result["steps"], total_steps=result["config"]["steps"], seconds=result["seconds"],
                    test_risk=result["test_risk"], test_risk_se=result.get("test_risk_se", float("nan")),
                    test_mse=result["test_mse"], cosine=result["cosine"],
                    induced_weights=result["induced_weights"], status=result["status"], reason=result["reason"])


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


def live_panel(run: LiveRun | None, draw: Callable[[LiveRun | None], None]) -> None:
    """Draw `draw(run)` in a fragment that refreshes every POLL_SECONDS while the run computes, and
    reruns the whole page exactly once when it pauses or ends (so buttons and exports catch up)."""
    computing = run is not None and run.phase in ("waiting", "running")

    @st.fragment(run_every=POLL_SECONDS if computing else None)
    def panel() -> None:
        draw(run)
        if computing and run.phase in ("paused", "ended"):
            seen = ("refreshed", run.id, run.version)
            if st.session_state.get("last_refresh") != seen:  # the rerun below runs this again: once only
                st.session_state["last_refresh"] = seen
                st.rerun()

    panel()


def status_line(run: LiveRun) -> None:
    """Progress bar with step count and time left, or what the run is waiting for."""
    trainer = run.current
    snapshot = trainer.snapshot()
    phase = run.phase
    position = f" (model {run.trainers.index(trainer) + 1} of {len(run.trainers)})" if len(run.trainers) > 1 else ""
    if phase == "waiting":
        capacity, ahead = host_limits().max_concurrent_runs, run.runs_ahead()
        line = f"{ahead} run{'s' if ahead != 1 else ''} ahead of yours" if ahead else "yours is next"
        wait = run.wait_estimate()
        when = f" (about {wait:.0f} s)" if np.isfinite(wait) else ""
        st.info(f"Waiting for a free training slot{position} — {line}{when}; the server trains {capacity} "
                f"model{'s' if capacity != 1 else ''} at a time. It starts by itself.",
                icon=":material/hourglass_top:")
        return
    fraction = snapshot.step / max(snapshot.total_steps, 1)
    seconds = run.active_seconds()
    if phase == "running":
        left = seconds / snapshot.step * (snapshot.total_steps - snapshot.step) if snapshot.step else float("nan")
        limit_left = run.max_active_seconds - seconds     # the host's time limit stops the model sooner
        when = ("estimating time left" if not np.isfinite(left) else f"about {left:.0f} s left" if left <= limit_left
                else f"the time limit stops it in about {max(limit_left, 0):.0f} s")
        text = f"Training{position}: step {snapshot.step} of {snapshot.total_steps} · {when}"
    elif phase == "paused":
        text = (f"Paused at step {snapshot.step} of {snapshot.total_steps} — Step for {STEP_SIZE} more, "
                "Train to finish")
    else:
        text = f"{ended_status(run, snapshot)} · {snapshot.step} steps in {seconds:.1f} s of training"
    st.progress(min(fraction, 1.0), text=text)


def ended_status(run: LiveRun, snapshot: Snapshot) -> str:
    """How a run ended, and for a run that went wrong, why and what to do (the trainer's reason)."""
    if run.reason:
        return run.reason[0].upper() + run.reason[1:]
    label = {"finished": "Finished", "stopped": "Stopped", "diverged": "Diverged", "time limit": "Time limit",
             "error": "Failed"}.get(snapshot.status, snapshot.status.capitalize())
    if snapshot.status in ("diverged", "time limit", "error") and snapshot.reason:
        return f"{label}: {snapshot.reason}"
    return label


# ---------------------------------------------------------------- exports
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
