"""Saving and loading trained models: tensors and plain data only, never pickled code.

A model file is a `torch.save` of {"format", "version", "config", "spec", "state_dict"} and is read
back with `torch.load(weights_only=True)`, which refuses anything but tensors and plain containers.
"""
from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path

import torch

from .gla import GLAConfig, GLAModel
from .spec import MAX_TOKENS, PromptSpec, SpecError

FORMAT = "gla-lab-model"
VERSION = 1


def save_model(model: GLAModel, spec: PromptSpec, path: str | Path) -> None:
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    torch.save({"format": FORMAT, "version": VERSION, "config": asdict(model.config),
                "spec": spec.to_dict(), "state_dict": state}, path)


def _config(data: object, spec: PromptSpec, path: str | Path) -> GLAConfig:
    """The model config from a file, checked field by field and against the file's spec (so a crafted
    config can neither fail deep inside torch nor ask for a model far larger than its prompts need)."""
    known = {f.name: f for f in fields(GLAConfig)}
    if not isinstance(data, dict) or not set(data) <= set(known):
        raise SpecError("model", f"{path} has an unreadable model config")
    for name in ("token_width", "label_index", "layers", "chunk_size"):
        value = data.get(name)
        if name in data and not (value is None and name == "chunk_size") and (
                isinstance(value, bool) or not isinstance(value, int)):
            raise SpecError("model", f"{path} has an unreadable model config ({name} is not a whole number)")
    chunk_size = data.get("chunk_size")
    if chunk_size is not None and not 1 <= chunk_size <= MAX_TOKENS:
        raise SpecError("model", f"{path} has an unreadable model config (chunk_size must be from 1 to {MAX_TOKENS})")
    try:
        config = GLAConfig(**data)
    except (TypeError, ValueError) as error:
        raise SpecError("model", f"{path} has an unreadable model config ({str(error).splitlines()[0][:120]})") from None
    if (config.token_width, config.label_index) != (spec.token_width, spec.label_index):
        raise SpecError("model", f"{path} has a model for tokens of width {config.token_width}, but its spec makes "
                                 f"tokens of width {spec.token_width}")
    return config


def load_model(path: str | Path) -> tuple[GLAModel, PromptSpec]:
    """Load a model file; any corrupt, foreign or code-carrying file gives a SpecError naming 'model'."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SpecError("model", f"no such file: {path}") from None
    except Exception as error:  # torch raises several types for corrupt or unsafe files
        raise SpecError("model", f"{path} is not a GLA Lab model file ({type(error).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise SpecError("model", f"{path} is not a GLA Lab model file")
    if payload.get("version") != VERSION:
        raise SpecError("model", f"{path} has format version {payload.get('version')!r:.40}; this GLA Lab reads {VERSION}")
    try:
        spec = PromptSpec.from_dict(payload.get("spec"))
    except SpecError as error:
        raise SpecError("model", f"{path} holds an invalid prompt spec ({error})") from None
    model = GLAModel(_config(payload.get("config"), spec, path))
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise SpecError("model", f"{path} holds no weights (a state_dict of tensors)")
    if not all(torch.isfinite(value).all() for value in state.values() if value.is_floating_point()):
        raise SpecError("model", f"{path} holds NaN or infinite weights")
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, ValueError) as error:
        raise SpecError("model", f"{path} holds weights that do not fit its config ({str(error).splitlines()[0]})") from None
    return model.double().eval(), spec
