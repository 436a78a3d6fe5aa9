"""Multitask prompts (docs/theory.md §5) and their token layout (docs/theory.md §1).

Prompt order: the n_1 examples of task 1, its delimiter, ..., the n_K examples of task K, its
delimiter, then the query. Delimiters are left out when the spec says delimiter = "none".

Token z = [x (d); y (1); delimiter features]:
    example  [x_i; y_i; 0]
    delimiter after task k  [0; 0; e_k] (task), [0; 0; 1] (shared)
    query    [x; 0; 0]
Randomness comes only from the generator passed in, never from torch's global seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .spec import PromptSpec

EXAMPLE, DELIMITER, QUERY = 0, 1, 2


@dataclass(frozen=True)
class Layout:
    """Where each kind of token sits in a prompt of T tokens."""

    kind: np.ndarray                 # (T,) EXAMPLE / DELIMITER / QUERY
    task: np.ndarray                 # (T,) task index of examples and delimiters, -1 for the query
    example_positions: np.ndarray    # (n,)
    delimiter_positions: np.ndarray  # (K,) or (0,)

    @property
    def num_tokens(self) -> int:
        return len(self.kind)


def layout(spec: PromptSpec) -> Layout:
    kind, task = [], []
    for k, task_spec in enumerate(spec.tasks):
        kind += [EXAMPLE] * task_spec.n
        task += [k] * task_spec.n
        if spec.delimiter != "none":
            kind.append(DELIMITER)
            task.append(k)
    kind.append(QUERY)
    task.append(-1)
    kind_array = np.array(kind)
    return Layout(kind=kind_array, task=np.array(task),
                  example_positions=np.flatnonzero(kind_array == EXAMPLE),
                  delimiter_positions=np.flatnonzero(kind_array == DELIMITER))


@dataclass
class Prompts:
    """A batch of B prompts, n in-context examples each.

    tokens (B, T, D); x (B, n, d); y (B, n); xq (B, d); yq (B,); task (n,) task of each example.
    """

    tokens: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    xq: torch.Tensor
    yq: torch.Tensor
    task: torch.Tensor

    def to(self, device: torch.device | str) -> "Prompts":
        return Prompts(*(tensor.to(device) for tensor in
                         (self.tokens, self.x, self.y, self.xq, self.yq, self.task)))


class PromptSampler:
    """Draws prompts for one spec; the per-coordinate task-correlation factors are computed once."""

    def __init__(self, spec: PromptSpec):
        self.spec = spec
        self.layout = layout(spec)
        # beta[:, c] = factor[c] @ standard normal, with factor[c] factor[c]^T = C^c (PSD square root,
        # so semi-definite matrices with exact ±1 correlations work too).
        eigenvalues, eigenvectors = np.linalg.eigh(spec.coordinate_corr())
        self._corr_factor = eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))[:, None, :]  # (d, K+1, K+1)
        self._feature_scale = np.sqrt(spec.feature_variances())                                   # (d,)
        self._device_constants: dict = {}  # (device, dtype) -> tensors, built on first use

    def _constants(self, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        key = (str(device), dtype)
        if key not in self._device_constants:
            self._device_constants[key] = (
                torch.as_tensor(self._corr_factor, dtype=dtype, device=device),
                torch.as_tensor(self._feature_scale, dtype=dtype, device=device),
                torch.as_tensor(self.spec.example_task, device=device),
            )
        return self._device_constants[key]

    def sample(self, batch: int, generator: torch.Generator, dtype: torch.dtype = torch.float32) -> Prompts:
        """Draw `batch` prompts on the generator's device."""
        spec, device = self.spec, generator.device
        corr_factor, feature_scale, example_task = self._constants(device, dtype)
        d, num_tasks, n = spec.d, spec.num_tasks, spec.num_examples

        def normal(*shape: int) -> torch.Tensor:
            return torch.randn(*shape, generator=generator, dtype=dtype, device=device)

        # 1. task vectors: betas (B, K+1, d), the query task last
        betas = torch.einsum("cij,bjc->bic", corr_factor, normal(batch, num_tasks + 1, d))
        # 2. features and labels of the examples
        x = normal(batch, n, d) * feature_scale
        example_beta = betas[:, example_task, :]                              # (B, n, d)
        y = (x * example_beta).sum(-1) + spec.noise * normal(batch, n)
        # 3. the query
        xq = normal(batch, d) * feature_scale
        yq = (xq * betas[:, num_tasks, :]).sum(-1) + spec.noise * normal(batch)
        # 4. tokens
        tokens = torch.zeros(batch, self.layout.num_tokens, spec.token_width, dtype=dtype, device=device)
        positions = torch.as_tensor(self.layout.example_positions, device=device)
        tokens[:, positions, :d] = x
        tokens[:, positions, d] = y
        for k, position in enumerate(self.layout.delimiter_positions):
            feature = d + 1 + (k if spec.delimiter == "task" else 0)
            tokens[:, position, feature] = 1.0
        tokens[:, -1, :d] = xq
        return Prompts(tokens=tokens, x=x, y=y, xq=xq, yq=yq, task=example_task)


def sample_prompts(spec: PromptSpec, batch: int, generator: torch.Generator,
                   dtype: torch.dtype = torch.float32) -> Prompts:
    """One-off convenience around PromptSampler."""
    return PromptSampler(spec).sample(batch, generator, dtype)
