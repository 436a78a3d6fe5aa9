"""GLA Lab's engine: multitask prompts, gated linear attention, WPGD theory, training, figures."""
from .construct import gla_from_block_weights, gla_from_wpgd
from .gla import GLAConfig, GLAModel, gla_attention
from .reference import gla_reference, wpgd_causal, wpgd_one_step, wpgd_one_step_vector
from .sampling import PromptSampler, Prompts
from .spec import PromptSpec, SpecError, TaskSpec, default_spec, list_presets, load_preset, preset_spec
from .theory import risk, solve

__all__ = [
    "GLAConfig", "GLAModel", "PromptSampler", "PromptSpec", "Prompts", "SpecError", "TaskSpec", "default_spec",
    "gla_attention", "gla_from_block_weights", "gla_from_wpgd", "gla_reference", "list_presets", "load_preset",
    "preset_spec", "risk", "solve", "wpgd_causal", "wpgd_one_step", "wpgd_one_step_vector",
]
