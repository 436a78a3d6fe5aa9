"""Saving and loading trained models: tensors and plain data only, never pickled code.

A model file is a `torch.save` of {"format", "version", "config", "spec", "state_dict"} and is read
back with `torch.load(weights_only=True)`, which refuses anything but tensors and plain containers.
A file is small, but its config picks how attention is computed; a config whose form would make one
prompt cost far more memory than the default form is refused before any model is built.
"""
from __future__ import annotations

from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import BinaryIO

import torch

from .files import input_file, reading
from .gla import GLAConfig, GLAModel
from .spec import MAX_TOKENS, PromptSpec, SpecError
from .train import _saved_bytes

FORMAT = "gla-lab-model"
VERSION = 1
# A file's form and chunk size may cost at most this many times the memory of the default form, or
# FORM_COST_FLOOR if that is more (all forms compute the same outputs; the slow reference form costs a
# few times the default; parallel attention with vector gates at 2048 tokens needs over 200 MB a prompt).
MAX_FORM_COST = 4
FORM_COST_FLOOR = 64 * 2**20


def save_model(model: GLAModel, spec: PromptSpec, file: str | Path | BinaryIO) -> None:
    """Write a model file to a path or an open binary stream."""
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    torch.save({"format": FORMAT, "version": VERSION, "config": asdict(model.config),
                "spec": spec.to_dict(), "state_dict": state}, file)


def forward_bytes(config: GLAConfig, num_tokens: int) -> int:
    """About the memory one prompt of num_tokens tokens needs in a forward pass of this model (an upper
    bound: the tensors a training step would keep for backward, counted without allocating them)."""
    return _saved_bytes(config, num_tokens, 1)


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
    cost = forward_bytes(config, spec.num_tokens)
    default_cost = forward_bytes(replace(config, form="auto", chunk_size=None), spec.num_tokens)
    if cost > max(MAX_FORM_COST * default_cost, FORM_COST_FLOOR):
        raise SpecError("model", f"{path} asks for form {config.form!r} with chunk size {config.chunk_size}, which "
                                 f"needs {cost / 2**20:.0f} MB for one prompt of its spec; the default form needs "
                                 f"{default_cost / 2**20:.1f} MB")
    return config


def load_model(path: str | Path) -> tuple[GLAModel, PromptSpec]:
    """Load a model file; any corrupt, foreign or code-carrying file gives a SpecError naming 'model'."""
    with reading("model", input_file("model", path), "a GLA Lab model file"):
        payload = torch.load(path, map_location="cpu", weights_only=True)
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
