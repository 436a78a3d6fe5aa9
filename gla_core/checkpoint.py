"""Saving and loading trained models: tensors and plain data only, never pickled code.

A model file is a `torch.save` of {"format", "version", "config", "spec", "state_dict"} and is read
back with `torch.load(weights_only=True)`, which refuses anything but tensors and plain containers.
"""
from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path

import torch

from .gla import GLAConfig, GLAModel
from .spec import PromptSpec, SpecError

FORMAT = "gla-lab-model"
VERSION = 1


def save_model(model: GLAModel, spec: PromptSpec, path: str | Path) -> None:
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    torch.save({"format": FORMAT, "version": VERSION, "config": asdict(model.config),
                "spec": spec.to_dict(), "state_dict": state}, path)


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
        raise SpecError("model", f"{path} has format version {payload.get('version')!r}; this GLA Lab reads {VERSION}")
    spec = PromptSpec.from_dict(payload["spec"])
    known = {f.name for f in fields(GLAConfig)}
    config_data = payload.get("config")
    if not isinstance(config_data, dict) or not set(config_data) <= known:
        raise SpecError("model", f"{path} has an unreadable model config")
    model = GLAModel(GLAConfig(**config_data))
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError, TypeError) as error:
        raise SpecError("model", f"{path} holds weights that do not fit its config ({str(error).splitlines()[0]})") from None
    return model.double().eval(), spec
