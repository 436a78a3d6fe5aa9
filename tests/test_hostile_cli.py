"""The command line against hostile files and paths: every input it cannot read and every output it
cannot write gives exit code 2 and one line naming the argument, before any work, and leaves no file
behind. Most cases run in-process (`cli.main`); a few real processes check what a script sees."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gla_core import cli
from gla_core.checkpoint import load_model, save_model
from gla_core.gla import GLAConfig, GLAModel
from gla_core.spec import PromptSpec, default_spec

REPO = Path(__file__).resolve().parent.parent
PROG = "python -m gla_core: error: "


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_refused(code: int, err: str, field: str = "") -> str:
    """Exit 2 and exactly one line, `python -m gla_core: error: FIELD: ...`; returns the line."""
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, (code, err[-2000:])
    assert lines[0].startswith(f"{PROG}{field}: " if field else PROG), lines[0]
    return lines[0]


def files_in(folder: Path) -> set[str]:
    return {path.name for path in folder.iterdir()}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """A valid model for the default spec (untrained: these tests are about files, not accuracy)."""
    spec = default_spec()
    path = tmp_path_factory.mktemp("model") / "model.pt"
    save_model(GLAModel(GLAConfig(token_width=spec.token_width, label_index=spec.label_index)).double(), spec, path)
    return path


@pytest.fixture
def prompts_file(tmp_path: Path) -> Path:
    spec = default_spec()
    path = tmp_path / "prompts.npz"
    np.savez(path, tokens=np.random.default_rng(0).normal(size=(8, spec.num_tokens, spec.token_width)))
    return path


def forged_npz(path: Path, shape: tuple[int, ...], data: bytes = b"\0" * 64) -> Path:
    """An .npz whose tokens.npy header claims `shape` (float64) but holds only `data`."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("tokens.npy", header.getvalue() + data)
    return path


# ================================================================ input files
def test_truncated_npz_is_refused(capsys, model_file: Path, prompts_file: Path, tmp_path: Path):
    prompts_file.write_bytes(prompts_file.read_bytes()[:len(prompts_file.read_bytes()) // 2])
    code, _, err = run_main(capsys, "predict", model_file, prompts_file, "--out", tmp_path / "p.npy")
    assert "not an .npz file" in assert_refused(code, err, "prompts")
    assert not (tmp_path / "p.npy").exists()


def test_garbage_npz_is_refused(capsys, model_file: Path, tmp_path: Path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    code, _, err = run_main(capsys, "predict", model_file, garbage, "--out", tmp_path / "p.npy")
    assert_refused(code, err, "prompts")


def test_dev_null_as_prompts_is_refused(capsys, model_file: Path, tmp_path: Path):
    code, _, err = run_main(capsys, "predict", model_file, "/dev/null", "--out", tmp_path / "p.npy")
    assert "/dev/null" in assert_refused(code, err, "prompts")


@pytest.mark.parametrize("shape", [(8, 0, 9), (0, 34, 9), (8, 34, 4), (34, 9), (8, 3000, 9)])
def test_tokens_of_a_bad_shape_are_refused(shape, capsys, model_file: Path, tmp_path: Path):
    prompts = tmp_path / "prompts.npz"
    np.savez(prompts, tokens=np.zeros(shape))
    code, _, err = run_main(capsys, "predict", model_file, prompts, "--out", tmp_path / "p.npy")
    assert str(shape) in assert_refused(code, err, "prompts")


def test_a_header_claiming_1e11_prompts_is_refused_before_allocating(capsys, model_file: Path, tmp_path: Path):
    prompts = forged_npz(tmp_path / "huge.npz", (10**11, 34, 9))   # 223 TiB claimed, 64 bytes held
    code, _, err = run_main(capsys, "predict", model_file, prompts, "--out", tmp_path / "p.npy")
    assert "(100000000000, 34, 9)" in assert_refused(code, err, "prompts")


def test_an_array_larger_than_memory_is_refused(capsys, model_file: Path, tmp_path: Path, monkeypatch):
    """An honest file that would not fit: the check is against memory, from the header alone."""
    monkeypatch.setattr(cli, "memory_available_bytes", lambda: 4 * 8 * 34 * 9 * 100)   # room for 100 prompts
    prompts = tmp_path / "big.npz"
    np.savez(prompts, tokens=np.zeros((101, 34, 9)))
    code, _, err = run_main(capsys, "predict", model_file, prompts, "--out", tmp_path / "p.npy")
    assert "GiB" in assert_refused(code, err, "prompts")
    np.savez(prompts, tokens=np.zeros((100, 34, 9)))
    assert run_main(capsys, "predict", model_file, prompts, "--out", tmp_path / "p.npy")[0] == 0


def test_a_pickled_tokens_array_is_refused(capsys, model_file: Path, tmp_path: Path):
    prompts = tmp_path / "objects.npz"
    np.savez(prompts, tokens=np.array([{"a": 1}], dtype=object))
    code, _, err = run_main(capsys, "predict", model_file, prompts, "--out", tmp_path / "p.npy")
    assert "object" in assert_refused(code, err, "prompts")


def test_a_spec_that_is_not_utf8_is_refused(capsys, tmp_path: Path):
    spec = tmp_path / "spec.json"
    spec.write_bytes(b'{"d": 3, "tasks": [{"n": 4, "corr": 0.5}], "note": "\xff\xfe"}')
    code, _, err = run_main(capsys, "solve", spec)
    assert "not UTF-8" in assert_refused(code, err, "spec")


@pytest.mark.parametrize("spec", ["/dev/null", "/dev/zero", "."])
def test_a_spec_that_is_not_a_file_is_refused(spec, capsys):
    code, _, err = run_main(capsys, "solve", spec)
    assert_refused(code, err, "spec")


def test_tokens_too_large_for_the_model_give_an_error_not_inf(capsys, model_file: Path, tmp_path: Path):
    prompts = tmp_path / "prompts.npz"
    np.savez(prompts, tokens=np.full((4, 34, 9), 1e300))
    code, _, err = run_main(capsys, "predict", model_file, prompts, "--out", tmp_path / "p.npy")
    assert "not finite for 4 of 4" in assert_refused(code, err, "prompts")
    assert files_in(tmp_path) == {"prompts.npz"}


def test_a_model_file_asking_for_a_huge_form_is_refused(capsys, prompts_file: Path, tmp_path: Path):
    """The parallel form with vector gates builds a (T, T, D) decay matrix per prompt and layer: 215 MB for one
    2041-token prompt, where the default form needs 3 MB. The file is refused when read, before the prompts are.
    On a 511-token prompt the same form (14 MB a prompt) is costlier but bounded, and so is a chunk of 2048 tokens
    (one (T, T) score matrix per chunk, 18 MB): both are read."""
    def spec_of(num_tasks: int) -> PromptSpec:   # 255 examples a task: 8 tasks make 2041 tokens
        return PromptSpec.from_dict({"d": 3, "tasks": [{"n": 255, "corr": 0.5}] * num_tasks, "delimiter": "none"})

    model = tmp_path / "model.pt"
    for num_tasks, form, chunk_size in [(8, "parallel", None), (2, "parallel", None), (2, "chunked", 2048)]:
        spec = spec_of(num_tasks)
        config = GLAConfig(token_width=spec.token_width, label_index=spec.label_index, layers=2, gating="vector",
                           form=form, chunk_size=chunk_size)
        save_model(GLAModel(config).double(), spec, model)
        code, _, err = run_main(capsys, "predict", model, prompts_file, "--out", tmp_path / "p.npy")
        if num_tasks == 8:
            assert "'parallel' with chunk size None" in assert_refused(code, err, "model")
        else:
            assert "model:" not in err
    assert load_model(model)[0].config.chunk_size == 2048


# ================================================================ output paths
OUTPUT_COMMANDS = {   # command line with OUTPUT where the path under test goes; the option it names
    "solve --out": (["solve", "--preset", "default", "--out", "OUTPUT"], "--out"),
    "sample --out": (["sample", "--preset", "default", "--batch", "2", "--out", "OUTPUT"], "--out"),
    "train --out": (["train", "--preset", "default", "--steps", "3", "--out", "OUTPUT"], "--out"),
    "train --save": (["train", "--preset", "default", "--steps", "3", "--out", "RUN", "--save", "OUTPUT"], "--save"),
    "predict --out": (["predict", "MODEL", "PROMPTS", "--out", "OUTPUT"], "--out"),
}


def command(name: str, output: Path, tmp_path: Path, model_file: Path, prompts_file: Path) -> tuple[list[str], str]:
    words, option = OUTPUT_COMMANDS[name]
    paths = {"OUTPUT": output, "RUN": tmp_path / "run.json", "MODEL": model_file, "PROMPTS": prompts_file}
    return [str(paths.get(word, word)) for word in words], option


@pytest.mark.parametrize("name", OUTPUT_COMMANDS)
def test_an_output_into_a_missing_folder_is_refused_before_the_work(name, capsys, tmp_path: Path,
                                                                   model_file: Path, prompts_file: Path):
    args, option = command(name, tmp_path / "missing" / "result", tmp_path, model_file, prompts_file)
    before = files_in(tmp_path)
    code, out, err = run_main(capsys, *args)
    assert "does not exist" in assert_refused(code, err, option)
    assert out == "" and files_in(tmp_path) == before   # train wrote no run.json: it never started


@pytest.mark.parametrize("name", OUTPUT_COMMANDS)
def test_an_output_into_a_read_only_folder_is_refused(name, capsys, tmp_path: Path, model_file: Path,
                                                      prompts_file: Path):
    # /sys refuses new files even to root, who may write in any folder whatever its mode
    args, option = command(name, Path("/sys/result"), tmp_path, model_file, prompts_file)
    code, _, err = run_main(capsys, *args)
    assert "cannot write in /sys" in assert_refused(code, err, option)
    assert not (tmp_path / "run.json").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in a folder of any mode")
def test_an_output_into_a_folder_without_write_permission_is_refused(capsys, tmp_path: Path):
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o500)
    code, _, err = run_main(capsys, "solve", "--preset", "default", "--out", folder / "s.json")
    assert_refused(code, err, "--out")


def test_train_checks_every_output_before_it_trains(tmp_path: Path):
    """The issue's case as a script sees it: nothing trained, nothing written, exit 2."""
    result = subprocess.run([sys.executable, "-m", "gla_core", "train", "--preset", "default", "--out",
                             str(tmp_path / "ok.json"), "--save", "/nonexistent/m.pt"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr[-2000:]
    assert "--save: " in result.stderr and not (tmp_path / "ok.json").exists()


@pytest.mark.parametrize("name", ["solve --out", "predict --out"])
def test_an_output_that_is_a_folder_is_refused(name, capsys, tmp_path: Path, model_file: Path, prompts_file: Path):
    folder = tmp_path / "results"
    folder.mkdir()
    args, option = command(name, folder, tmp_path, model_file, prompts_file)
    code, _, err = run_main(capsys, *args)
    assert "is a directory" in assert_refused(code, err, option)
    assert not (tmp_path / "results.npy").exists() and not any(folder.iterdir())


def test_outputs_land_at_exactly_the_given_name(capsys, tmp_path: Path, model_file: Path):
    """numpy would add .npz / .npy to a name without them; a script finds its file where it said."""
    assert run_main(capsys, "sample", "--preset", "default", "--batch", "3", "--out", tmp_path / "prompts")[0] == 0
    assert run_main(capsys, "predict", model_file, tmp_path / "prompts", "--out", tmp_path / "pred")[0] == 0
    assert {"prompts", "pred"} <= files_in(tmp_path) and not {"prompts.npz", "pred.npy"} & files_in(tmp_path)
    assert np.load(tmp_path / "pred").shape == (3,)


def test_predictions_in_batches_equal_one_forward_pass(capsys, monkeypatch, tmp_path: Path, model_file: Path,
                                                      prompts_file: Path):
    """Predict bounds its memory by running batches; one prompt per batch must change nothing."""
    monkeypatch.setattr(cli, "PREDICT_CHUNK_BYTES", 1)
    assert run_main(capsys, "predict", model_file, prompts_file, "--out", tmp_path / "pred.npy")[0] == 0
    model, _ = load_model(model_file)
    with np.load(prompts_file) as data, torch.no_grad():
        expected = model(torch.from_numpy(data["tokens"])).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "pred.npy"), expected, rtol=1e-12, atol=1e-15)


def test_a_failed_write_leaves_the_old_file_and_no_partial_one(tmp_path: Path):
    from gla_core.files import write_atomically

    target = tmp_path / "run.json"
    target.write_text("old")

    def fails_half_way(stream):
        stream.write(b'{"half": ')
        raise OSError(28, "No space left on device")

    with pytest.raises(Exception, match="--out: writing .*run.json failed .No space left on device"):
        write_atomically("--out", target, fails_half_way)
    assert target.read_text() == "old" and files_in(tmp_path) == {"run.json"}
    write_atomically("--out", target, lambda stream: stream.write(b"new"))
    assert target.read_text() == "new" and files_in(tmp_path) == {"run.json"}
    assert target.stat().st_mode & 0o777 == 0o666 & ~current_umask()


def current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


# ================================================================ random bytes as every input file
RANDOM_FILES = settings(max_examples=40, deadline=None, derandomize=True,
                        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
# bytes that start like each format, so the loaders get past their first check and into the parsing
PREFIXES = st.sampled_from([b"", b"PK\x03\x04", b"\x93NUMPY\x01\x00", b"\x80\x02", b"{", b'{"d": 3, "tasks": '])


@RANDOM_FILES
@given(prefix=PREFIXES, body=st.binary(max_size=2000), role=st.sampled_from(["prompts", "model", "spec"]))
def test_random_bytes_as_any_input_exit_2_with_one_line_and_no_output(prefix, body, role, capsys, tmp_path_factory,
                                                                      model_file: Path):
    folder = tmp_path_factory.mktemp("random")
    hostile = folder / "input"
    hostile.write_bytes(prefix + body)
    good_prompts = folder / "good.npz"
    np.savez(good_prompts, tokens=np.zeros((2, 34, 9)))
    args = {"prompts": ["predict", model_file, hostile, "--out", folder / "out"],
            "model": ["predict", hostile, good_prompts, "--out", folder / "out"],
            "spec": ["train", hostile, "--steps", "2", "--out", folder / "out"]}[role]
    code, _, err = run_main(capsys, *args)
    if code == 0:   # random bytes that happen to be a valid spec train a tiny model: fine
        json.loads((folder / "out").read_text())
        return
    assert_refused(code, err, "" if role == "spec" else role)   # a spec names its own bad field
    assert files_in(folder) == {"input", "good.npz"}


@RANDOM_FILES
@given(data=st.data())
def test_random_npz_members_exit_2_with_one_line(data, capsys, tmp_path_factory, model_file: Path):
    """Valid zips whose tokens.npy is random: a forged header, a shape or dtype from anywhere."""
    folder = tmp_path_factory.mktemp("npz")
    shape = tuple(data.draw(st.lists(st.integers(0, 10**12), max_size=4)))
    descr = data.draw(st.sampled_from(["<f8", "<f4", "<i8", "|b1", "<c16", "|O", "<U3", "|V8"]))
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
    body = data.draw(st.binary(max_size=512))
    with zipfile.ZipFile(folder / "p.npz", "w") as archive:
        archive.writestr("tokens.npy", header.getvalue() + body)
    code, _, err = run_main(capsys, "predict", model_file, folder / "p.npz", "--out", folder / "out")
    assert_refused(code, err, "prompts")
    assert files_in(folder) == {"p.npz"}


def _run_cli(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environ = {name: value for name, value in os.environ.items() if not name.startswith("GLA_MAX_")}
    return subprocess.run([sys.executable, "-m", "gla_core", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={**environ, **(env or {})})


def test_the_command_line_keeps_the_host_limits_that_are_set(tmp_path):
    """GLA_MAX_* set on the host bound the command line too, through the app's own rule; a bad value is
    refused; unset, a run that cannot fit this machine's memory is refused with the batch that fits."""
    out = tmp_path / "run.json"
    limited = _run_cli(["train", "--preset", "default", "--steps", "300", "--batch", "1024", "--out", str(out)],
                       env={"GLA_MAX_STEPS": "5", "GLA_MAX_BATCH": "1"})
    assert limited.returncode == 2 and "steps" in limited.stderr and "at most 5" in limited.stderr
    assert not out.exists()
    garbage = _run_cli(["train", "--preset", "default", "--steps", "3", "--out", str(out)], env={"GLA_MAX_STEPS": "abc"})
    assert garbage.returncode == 2 and "GLA_MAX_STEPS" in garbage.stderr
    spec = tmp_path / "big.json"
    spec.write_text(json.dumps({"d": 16, "tasks": [{"n": 254, "corr": 0.5}] * 8}))
    huge = _run_cli(["train", str(spec), "--gating", "vector", "--layers", "4", "--batch", "8192", "--steps", "1",
                     "--out", str(out)])
    assert huge.returncode == 2 and "choose a batch of at most" in huge.stderr, huge.stderr
    assert len(huge.stderr.strip().splitlines()) == 1
