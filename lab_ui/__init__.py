"""What every GLA Lab page shares, one job per module:

    resources   process-wide: training slots and their line, the worker processes models train in, the store
                of finished runs, each session's live runs, cached theory, the background worker for L-step
                targets
    controls    teacher mode, URL-bound controls (hidden ones included), the student link, the phone check
    settings    the preset, prompt, model and training widgets, and their checks (PromptSpec, TrainConfig)
    runs        starting a run, the button row, the live panel and the words for where a run stands
    messages    user text shown literally, invalid settings said plainly, numbers against the theory
    charts      Plotly charts drawn only when their data change, projector sizes, labels and theory lines
    exports     CSV, JSON and command-line downloads
    board       the class board's session glue: joining, posting finished runs from a training thread
    keys        every session-state key and URL parameter the app owns
    lesson_steps  the Lesson page's ten steps (imported by that page alone)

A page reads `import lab_ui` and calls `lab_ui.<name>`: the names below are the pages' vocabulary.
Imported once per server process (Streamlit re-executes pages, not imported modules), so the
process-wide settings in `resources` are made exactly once.
"""
from lab_ui.charts import (analytic_risks, chart, enlarge_for_projector, gates_chart, replay_id, token_labels,
                           weights_replay)
from lab_ui.controls import Controls, apply_display_mode, on_phone, student_link, teacher_mode, theory_switch
from lab_ui.exports import cli_command, export_panel, history_csv, run_json, weights_csv
from lab_ui.keys import LIVE_RUN_PARAM
from lab_ui.messages import (against_one_step, compared_with, depth_run_warnings, depth_verdict, gating_wins,
                             layer_list, literal, risk_text, show_invalid, sweep_verdict, theory_metrics)
from lab_ui.resources import (analytic_for, browser_id, depth_targets, landscape_for, result_key, result_store,
                              session_runs, training_slots, training_workers, untrained)
from lab_ui.runs import (POLL_SECONDS, STEP_SIZE, RunButton, RunControls, depth_target_request, ended_status,
                         flag_live_runs, live_panel, start_run, status_line)
from lab_ui.settings import (CONDITION_CHOICES, GATING_CAPTIONS, SETTING_LABELS, format_corr, parse_matrix,
                             preset_box, preset_settings, prompt_description, train_config, training_sidebar,
                             validated_spec, whole_number)

__all__ = [
    "against_one_step", "analytic_for", "analytic_risks", "apply_display_mode", "browser_id", "chart", "cli_command",
    "compared_with", "CONDITION_CHOICES", "Controls", "depth_run_warnings", "depth_target_request", "depth_targets",
    "depth_verdict", "ended_status", "enlarge_for_projector", "export_panel", "flag_live_runs", "format_corr",
    "gates_chart", "GATING_CAPTIONS", "gating_wins", "history_csv", "landscape_for", "layer_list", "literal",
    "live_panel", "LIVE_RUN_PARAM", "on_phone", "parse_matrix", "POLL_SECONDS", "preset_box", "preset_settings",
    "prompt_description", "replay_id", "result_key", "result_store", "risk_text", "run_json", "RunButton",
    "RunControls", "session_runs", "SETTING_LABELS", "show_invalid", "start_run", "status_line", "STEP_SIZE",
    "student_link", "sweep_verdict", "teacher_mode", "theory_metrics", "theory_switch", "token_labels", "train_config",
    "training_sidebar", "training_slots", "training_workers", "untrained", "validated_spec", "weights_csv",
    "weights_replay", "whole_number",
]
