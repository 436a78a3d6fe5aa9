"""The command line contract: JSON and file formats others script against, exit code 2 on bad input."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gla_core.checkpoint import load_model
from gla_core.spec import default_spec

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gla_core", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"d": 3, "noise": 0.2, "delimiter": "task",
                                "tasks": [{"n": 4, "corr": 0.3}, {"n": 5, "corr": 0.8}]}))
    return path


def test_solve_prints_every_model_scaled_to_max_one(spec_file: Path):
    result = run_cli("solve", str(spec_file))
    assert result.returncode == 0, result.stderr
    solution = json.loads(result.stdout)
    assert set(solution) >= {"zero", "optimal", "linear_attention", "scalar_gla", "vector_gla"}
    assert solution["zero"]["risk"] == pytest.approx(3 + 0.2 ** 2)
    for name in ("optimal", "linear_attention", "scalar_gla", "vector_gla"):
        omega = np.array(solution[name]["omega"], dtype=float)
        assert omega.shape[0] == 9                       # one weight per example, delimiters excluded
        assert np.abs(omega).max() == pytest.approx(1.0)
        assert np.array(solution[name]["P"]).shape == (3, 3)
    assert np.array(solution["vector_gla"]["omega"]).shape == (9, 3)
    risks = {name: solution[name]["risk"] for name in solution if isinstance(solution[name], dict) and "risk" in solution[name]}
    assert risks["optimal"] <= risks["scalar_gla"] + 1e-9 <= risks["linear_attention"] + 2e-9 < risks["zero"]


def test_sample_writes_the_documented_arrays(spec_file: Path, tmp_path: Path):
    out = tmp_path / "prompts.npz"
    result = run_cli("sample", str(spec_file), "--batch", "6", "--seed", "3", "--out", str(out))
    assert result.returncode == 0, result.stderr
    with np.load(out) as data:
        shapes = {name: data[name].shape for name in data.files}
        tokens, x, y = data["tokens"], data["x"], data["y"]
    assert shapes == {"tokens": (6, 12, 6), "x": (6, 9, 3), "y": (6, 9), "xq": (6, 3), "yq": (6,), "task": (9,)}
    assert np.array_equal(tokens[:, 0, :3], x[:, 0]) and np.array_equal(tokens[:, 0, 3], y[:, 0])
    again = tmp_path / "again.npz"
    run_cli("sample", str(spec_file), "--batch", "6", "--seed", "3", "--out", str(again))
    with np.load(again) as data:
        assert np.array_equal(data["tokens"], tokens)   # same seed, same prompts


def test_train_then_predict_round_trip(tmp_path: Path):
    run_json, model_file, prompts_file, predictions = (tmp_path / name for name in
                                                       ("run.json", "model.pt", "p.npz", "pred.npy"))
    result = run_cli("train", "--preset", "default", "--steps", "60", "--seed", "1", "--out", str(run_json),
                     "--save", str(model_file))
    assert result.returncode == 0, result.stderr
    run = json.loads(run_json.read_text())
    assert set(run) >= {"test_risk", "analytic", "induced_weights", "cosine", "steps", "seconds", "history"}
    assert run["steps"] == 60 and run["analytic"]["zero"]["risk"] > run["test_risk"]
    assert len(run["induced_weights"]) == 1 and len(run["induced_weights"][0]) == 30
    assert run_cli("sample", "--preset", "default", "--batch", "5", "--out", str(prompts_file)).returncode == 0
    result = run_cli("predict", str(model_file), str(prompts_file), "--out", str(predictions))
    assert result.returncode == 0, result.stderr
    model, spec = load_model(model_file)
    assert spec == default_spec()
    with np.load(prompts_file) as data:
        expected = model(torch.from_numpy(data["tokens"])).detach().numpy()
    np.testing.assert_allclose(np.load(predictions), expected, rtol=1e-12)


@pytest.mark.parametrize("args, field", [
    (["solve", "--preset", "nope"], "preset"),
    (["solve", "missing.json"], "spec"),
    (["solve"], "spec"),
    (["train", "--preset", "default", "--layers", "0", "--out", "x.json"], "layers"),
    (["train", "--preset", "default", "--lr", "-1", "--out", "x.json"], "lr"),
    (["train", "--preset", "default", "--gating", "cosmic", "--out", "x.json"], "--gating"),
    (["sample", "--preset", "default", "--batch", "0", "--out", "x.npz"], "batch"),
    (["sample", "--preset", "default", "--batch", "many", "--out", "x.npz"], "--batch"),
])
def test_bad_input_exits_2_with_one_line_naming_the_field(args, field, tmp_path: Path):
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0], result.stderr


def test_bad_spec_file_names_the_field(tmp_path: Path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"d": 5, "tasks": [{"n": 5, "corr": 1.7}]}))
    result = run_cli("solve", str(path))
    assert result.returncode == 2
    assert result.stderr.strip().endswith("tasks[0].corr: must be between -1 and 1, got 1.7")


@pytest.mark.parametrize("content", [b"not a model", b"PK\x03\x04garbage"])
def test_predict_rejects_foreign_model_files(content: bytes, tmp_path: Path):
    model = tmp_path / "model.pt"
    model.write_bytes(content)
    prompts = tmp_path / "p.npz"
    np.savez(prompts, tokens=np.zeros((1, 34, 9)))
    result = run_cli("predict", str(model), str(prompts), "--out", str(tmp_path / "out.npy"))
    assert result.returncode == 2
    assert "model:" in result.stderr and "not a GLA Lab model file" in result.stderr


def test_predict_refuses_pickled_code(tmp_path: Path):
    class Payload:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "owned",))

    model = tmp_path / "model.pt"
    torch.save({"format": "gla-lab-model", "payload": Payload()}, model)
    with pytest.raises(Exception, match="model: .*not a GLA Lab model file"):
        load_model(model)
    assert not (tmp_path / "owned").exists()


def test_presets_lists_every_preset():
    result = run_cli("presets")
    assert result.returncode == 0
    names = [line.split(":")[0] for line in result.stdout.strip().splitlines()]
    assert {"default", "far_relevant", "equal_tasks", "per_coordinate", "depth", "monotone"} <= set(names)
