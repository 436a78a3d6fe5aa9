"""GLA Lab's engine: multitask prompts, gated linear attention, WPGD theory, training, figures."""
from .spec import PromptSpec, SpecError, TaskSpec, default_spec, list_presets, load_preset, preset_spec

__all__ = ["PromptSpec", "SpecError", "TaskSpec", "default_spec", "list_presets", "load_preset", "preset_spec"]
