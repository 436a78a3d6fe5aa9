"""GLA Lab's engine: multitask prompts, gated linear attention, WPGD theory, training, figures.

The names below are exported lazily (PEP 562): importing a light submodule such as gla_core.spec or
gla_core.limits does not pull in torch and scipy.
"""
import importlib

_EXPORTS = {
    "construct": ("gla_from_block_weights", "gla_from_wpgd"),
    "gla": ("GLAConfig", "GLAModel", "gla_attention"),
    "reference": ("gla_reference", "wpgd_causal", "wpgd_one_step", "wpgd_one_step_vector"),
    "sampling": ("PromptSampler", "Prompts"),
    "spec": ("PromptSpec", "SpecError", "TaskSpec", "default_spec", "list_presets", "load_preset", "preset_spec"),
    "theory": ("risk", "solve"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'gla_core' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
