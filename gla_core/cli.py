"""The command line: `python -m gla_core solve|sample|train|predict|presets`.

A stable contract for scripts: JSON on stdout or in --out files; bad input exits with code 2 and one
line on stderr that names the field. That includes input files that cannot be read (gla_core.files reads
them all) and output paths that cannot be written: those are checked before any work starts, and each
output is written to a temporary file renamed into place, so a failed command leaves no partial file.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch

from .files import check_output, memory_available_bytes, read_npz_array, read_text, write_atomically
from .spec import MAX_TOKENS, PromptSpec, SpecError, list_presets, load_preset
from .limits import LimitError, limits_set

EXIT_BAD_INPUT = 2
OUTPUT_OPTIONS = ("out", "save")   # every option that names a file a command writes
PREDICT_CHUNK_BYTES = 256 * 2**20  # predictions are computed in batches holding about this much at once


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the argument, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(EXIT_BAD_INPUT)


def _read_spec(args: argparse.Namespace) -> tuple[PromptSpec, dict]:
    """The spec from SPEC.json or --preset, and the preset's model defaults (empty for a file)."""
    if (args.spec is None) == (args.preset is None):
        raise SpecError("spec", "give a spec file or --preset NAME (one of them)")
    if args.preset is not None:
        preset = load_preset(args.preset)
        return PromptSpec.from_dict(preset["spec"]), preset.get("model", {})
    return PromptSpec.from_json(read_text("spec", args.spec, "a prompt spec (JSON)")), {}


def _write_json(data: dict, out: str | None) -> None:
    text = json.dumps(data, indent=2)
    if out is None:
        print(text)
    else:
        write_atomically("--out", out, lambda stream: stream.write(text.encode() + b"\n"))


def command_solve(args: argparse.Namespace) -> None:
    from .gla import MAX_LAYERS
    from .theory import solve

    spec, _ = _read_spec(args)
    if args.layers is not None and not 1 <= args.layers <= MAX_LAYERS:
        raise SpecError("layers", f"must be from 1 to {MAX_LAYERS}, got {args.layers}")
    result = solve(spec)
    if args.layers is not None:
        from .causal_wpgd import causal_wpgd_targets

        result["causal_wpgd"] = [{"layers": target["layers"], "risk": target["risk"], "risk_se": target["risk_se"]}
                                 for target in causal_wpgd_targets(spec, args.layers, "scalar")]
    _write_json(result, args.out)


def command_sample(args: argparse.Namespace) -> None:
    from .sampling import PromptSampler

    spec, _ = _read_spec(args)
    if not 1 <= args.batch <= 100_000:
        raise SpecError("batch", f"must be from 1 to 100000, got {args.batch}")
    if not 0 <= args.seed < 2**63:
        raise SpecError("seed", f"must be from 0 to 2^63 - 1, got {args.seed}")
    prompts = PromptSampler(spec).sample(args.batch, torch.Generator().manual_seed(args.seed), torch.float64)
    arrays = {name: getattr(prompts, name).numpy() for name in ("tokens", "x", "y", "xq", "yq", "task")}
    write_atomically("--out", args.out, lambda stream: np.savez(stream, **arrays))


def command_train(args: argparse.Namespace) -> None:
    from .checkpoint import save_model
    from .train import ENDED_BADLY, TrainConfig, Trainer, check_run_allowed

    spec, model_defaults = _read_spec(args)
    settings = {"gating": model_defaults.get("gating", "scalar"), "layers": model_defaults.get("layers", 1)}
    for name in ("gating", "layers", "steps", "seed", "device", "lr", "batch"):
        if getattr(args, name) is not None:
            settings[name] = getattr(args, name)
    if not 1 <= args.threads <= 256:
        raise SpecError("threads", f"must be from 1 to 256, got {args.threads}")
    torch.set_num_threads(args.threads)
    config = TrainConfig(**settings).validate()
    # The host limits that are set (GLA_MAX_*), the app's own rule; memory: the set budget, else this machine's.
    limits = limits_set()
    memory_mb = limits.get("max_run_memory_mb")
    check_run_allowed(spec, config, max_tokens=limits.get("max_tokens"), max_steps=limits.get("max_steps"),
                      max_batch=limits.get("max_batch"),
                      memory_budget_bytes=memory_mb * 2**20 if memory_mb else memory_available_bytes(),
                      budget_name="this host allows")
    trainer = Trainer(spec, config)
    trainer.run()
    result = trainer.result()
    if args.save:
        write_atomically("--save", args.save, lambda stream: save_model(trainer.model, spec, stream))
    _write_json(result, args.out)
    print(f"{result['status']}: test risk {result['test_risk']:.4f} after {result['steps']} steps "
          f"in {result['seconds']:.2f} s, cosine {result['cosine']:.4f}", file=sys.stderr)
    if result["status"] in ENDED_BADLY:
        sys.exit(1)


def command_predict(args: argparse.Namespace) -> None:
    from .checkpoint import forward_bytes, load_model

    model, spec = load_model(args.model)
    # a quarter of the free memory: the float64 tokens, the model's activations and the predictions share it
    tokens = read_npz_array("prompts", args.prompts, "tokens", max_bytes=memory_available_bytes() // 4)
    if tokens.ndim != 3 or tokens.shape[0] < 1 or not 1 <= tokens.shape[1] <= MAX_TOKENS \
            or tokens.shape[2] != spec.token_width:
        raise SpecError("prompts", f"tokens must have shape (B, T, {spec.token_width}) for this model, with B >= 1 "
                                   f"and T from 1 to {MAX_TOKENS}, got {tokens.shape}")
    if not np.isfinite(tokens).all():
        raise SpecError("prompts", "tokens hold NaN or infinite values")
    rows = max(1, PREDICT_CHUNK_BYTES // forward_bytes(model.config, tokens.shape[1]))
    with torch.no_grad():
        prediction = np.concatenate([model(torch.from_numpy(chunk)).numpy()
                                     for chunk in np.array_split(tokens, range(rows, len(tokens), rows))])
    if not np.isfinite(prediction).all():
        bad = int((~np.isfinite(prediction)).sum())
        raise SpecError("prompts", f"the model's predictions are not finite for {bad} of {len(prediction)} prompts "
                                   f"(token values too large for it: the largest is {np.abs(tokens).max():.3g})")
    write_atomically("--out", args.out, lambda stream: np.save(stream, prediction))


def command_presets(args: argparse.Namespace) -> None:
    for name in list_presets():
        print(f"{name}: {load_preset(name)['title']}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m gla_core", description="GLA Lab: gated linear attention as weighted gradient descent.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def with_spec(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument("spec", nargs="?", help="prompt spec JSON file")
        sub.add_argument("--preset", help=f"a named preset instead of a file ({', '.join(list_presets())})")
        return sub

    solve = with_spec(commands.add_parser("solve", help="analytic risks, weights and preconditioners"))
    solve.add_argument("--out", help="write the JSON here instead of stdout")
    solve.add_argument("--layers", type=int,
                       help="also the best L-step causal WPGD risk (scalar gates) for 1..LAYERS layers, "
                            "estimated by sampling (presets precomputed, other specs take seconds to minutes)")
    solve.set_defaults(handler=command_solve)

    sample = with_spec(commands.add_parser("sample", help="draw prompts into an .npz file"))
    sample.add_argument("--batch", type=int, default=16)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out", required=True)
    sample.set_defaults(handler=command_sample)

    train = with_spec(commands.add_parser("train", help="train a GLA and compare it with the theory"))
    train.add_argument("--gating", choices=["none", "scalar", "vector"])
    train.add_argument("--layers", type=int)
    train.add_argument("--steps", type=int)
    train.add_argument("--seed", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--batch", type=int)
    train.add_argument("--device", choices=["auto", "cpu", "cuda"])
    train.add_argument("--threads", type=int, default=1,
                       help="CPU threads for torch (default 1: these models are small, and extra threads "
                            "slow training down on a busy machine)")
    train.add_argument("--out", required=True, help="run JSON")
    train.add_argument("--save", help="also save the trained model here (.pt)")
    train.set_defaults(handler=command_train)

    predict = commands.add_parser("predict", help="predict the query labels of prompts with a saved model")
    predict.add_argument("model")
    predict.add_argument("prompts", help=".npz file with a tokens array (B, T, D)")
    predict.add_argument("--out", required=True, help=".npy file for the predictions (B,)")
    predict.set_defaults(handler=command_predict)

    presets = commands.add_parser("presets", help="list the named presets")
    presets.set_defaults(handler=command_presets)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        for name in OUTPUT_OPTIONS:
            if getattr(args, name, None) is not None:
                check_output(f"--{name}", getattr(args, name))
        args.handler(args)
    except (SpecError, LimitError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0
