"""Security: nothing a user sends is ever run, files load as data only, the server keeps its guards.

- Static scan of every Python file in the repo: no eval / exec / compile, no pickle-family loads, no
  torch.load without weights_only=True, no np.load(allow_pickle=True), no yaml.load, no shell=True,
  no os.system, no HTML from anything but constants (the scanner is tested on a sample of each).
- Model files: only tensors and plain data load; every corrupt, foreign, mismatched or code-carrying
  file gives a SpecError naming 'model' and runs nothing (tests/test_cli.py covers plain garbage, a
  zip of garbage and a torch.save'd code object; this file covers the rest).
- Presets are looked up by name, never by path.
- A running server: XSRF on (an upload without the token is refused), uploads over
  server.maxUploadSize refused, one session's uploads capped in count and bytes (lab_uploads), garbage on the WebSocket does not take it down; hostile links keep the
  page working and run no script.
- The server works on a read-only root filesystem with only /tmp writable, as a non-root user
  (a mount namespace: `unshare -m`; skipped with the reason where that is not permitted).
"""
from __future__ import annotations

import ast
import copy
import http.client
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import textwrap
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from gla_core import cli
from gla_core.checkpoint import FORMAT, load_model, save_model
from gla_core.gla import GLAConfig, GLAModel
from gla_core.spec import SpecError, default_spec, load_preset, preset_spec
from tests.load import harness

ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = {".venv", "venv", ".git", "artifacts", "runs", "__pycache__", ".pytest_cache", ".hypothesis",
             "node_modules", "shared"}


# ================================================================ static scan
PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "marshal", "shelve", "joblib", "jsonpickle"}
LOADERS = {"load", "loads", "Unpickler", "open"}


def _dotted(node: ast.AST) -> str:
    """'torch.load' for torch.load, 'np.load' for np.load, 'eval' for eval, '' when not a plain name."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    return ""


def _keyword(call: ast.Call, name: str):
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    return None


def _is_constant_text(node: ast.AST, constants: set[str]) -> bool:
    """Built only from string literals and module-level constant names (UPPER_CASE)."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.Name):
        return node.id in constants
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _is_constant_text(node.left, constants) and _is_constant_text(node.right, constants)
    if isinstance(node, ast.IfExp):
        return _is_constant_text(node.body, constants) and _is_constant_text(node.orelse, constants)
    return False


def unsafe_calls(source: str, filename: str = "<source>") -> list[str]:
    """Every call in `source` that could run code from data, as 'file:line: what'."""
    tree = ast.parse(source, filename)
    constants = {target.id for node in tree.body if isinstance(node, ast.Assign)
                 for target in node.targets if isinstance(target, ast.Name) and target.id.isupper()}
    aliases: dict[str, str] = {}   # local name -> module.name for `from pickle import loads as x`
    modules: dict[str, str] = {}   # local name -> module for `import pickle as p`
    found = []

    def report(node: ast.AST, what: str) -> None:
        found.append(f"{filename}:{node.lineno}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                modules[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                if node.module.split(".")[0] in PICKLE_MODULES and alias.name in LOADERS:
                    report(node, f"imports {node.module}.{alias.name}")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        head, _, tail = name.partition(".")
        full = aliases.get(name, f"{modules.get(head, head)}.{tail}" if tail else modules.get(head, head))
        module, _, function = full.rpartition(".")
        if full in ("eval", "exec", "compile", "builtins.eval", "builtins.exec", "__import__"):
            report(node, f"calls {full}()")
        elif module.split(".")[0] in PICKLE_MODULES and function in LOADERS:
            report(node, f"calls {full}()")
        elif full == "torch.load":
            weights_only = _keyword(node, "weights_only")
            if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                report(node, "torch.load without weights_only=True")
        elif full in ("numpy.load", "np.load"):
            allow = _keyword(node, "allow_pickle")
            if allow is not None and not (isinstance(allow, ast.Constant) and allow.value is False):
                report(node, "np.load with allow_pickle")
        elif full in ("yaml.load", "yaml.unsafe_load", "yaml.full_load", "yaml.load_all"):
            report(node, f"calls {full}() (use yaml.safe_load)")
        elif full in ("os.system", "os.popen") or (full.startswith("subprocess.") and isinstance(
                _keyword(node, "shell"), ast.Constant) and _keyword(node, "shell").value is True):
            report(node, f"runs a shell: {full}")
        elif function in ("html", "markdown", "write", "caption") and (
                function == "html" or _keyword(node, "unsafe_allow_html") is not None):
            unsafe = _keyword(node, "unsafe_allow_html")
            if function != "html" and not (isinstance(unsafe, ast.Constant) and unsafe.value is True):
                continue
            if not node.args or not _is_constant_text(node.args[0], constants):
                report(node, f"{name}() renders HTML built from non-constant text")
    return found


def python_files() -> list[Path]:
    files = []
    for path in ROOT.rglob("*.py"):
        if not SKIP_DIRS.intersection(path.relative_to(ROOT).parts):
            files.append(path)
    return sorted(files)


SCANNER_SAMPLES = {
    "eval(text)": "calls eval",
    "exec(code)": "calls exec",
    "compile(src, 'f', 'exec')": "calls compile",
    "import pickle\npickle.loads(blob)": "calls pickle.loads",
    "import pickle as p\np.load(f)": "calls pickle.load",
    "from pickle import loads\nloads(blob)": "imports pickle.loads",
    "import dill\ndill.load(f)": "calls dill.load",
    "import marshal\nmarshal.loads(b)": "calls marshal.loads",
    "import torch\ntorch.load(path)": "torch.load without weights_only=True",
    "import torch\ntorch.load(path, weights_only=False)": "torch.load without weights_only=True",
    "import torch\ntorch.load(path, weights_only=flag)": "torch.load without weights_only=True",
    "import numpy as np\nnp.load(path, allow_pickle=True)": "np.load with allow_pickle",
    "import yaml\nyaml.load(text)": "calls yaml.load",
    "import os\nos.system(cmd)": "runs a shell",
    "import subprocess\nsubprocess.run(cmd, shell=True)": "runs a shell",
    "import streamlit as st\nst.html(user_text)": "renders HTML",
    "import streamlit as st\nst.markdown(f'<b>{name}</b>', unsafe_allow_html=True)": "renders HTML",
}
SCANNER_SAFE = [
    "import torch\ntorch.load(path, map_location='cpu', weights_only=True)",
    "import numpy as np\nnp.load(path)\nnp.load(path, allow_pickle=False)",
    "import yaml\nyaml.safe_load(text)",
    "import pickle\npickle.dumps(obj)",
    "import subprocess\nsubprocess.run(['ls'], check=True)",
    "import streamlit as st\nCSS = '<style></style>'\nst.html(CSS + ('' if x else CSS))",
    "import streamlit as st\nst.markdown(user_text)",
    "model.eval()",
]


@pytest.mark.parametrize("source, expected", list(SCANNER_SAMPLES.items()))
def test_the_scanner_catches_each_unsafe_form(source, expected):
    found = unsafe_calls(source)
    assert any(expected in line for line in found), (source, found)


@pytest.mark.parametrize("source", SCANNER_SAFE)
def test_the_scanner_passes_safe_forms(source):
    assert unsafe_calls(source) == []


def test_no_python_file_runs_code_from_data():
    files = python_files()
    assert len(files) > 20 and ROOT / "gla_core" / "checkpoint.py" in files and ROOT / "app.py" in files
    found = [line for path in files for line in unsafe_calls(path.read_text(encoding="utf-8"),
                                                              str(path.relative_to(ROOT)))]
    # This file's own samples are strings, not calls; the test files that build hostile pickles only dump.
    assert found == [], "\n".join(found)


# ================================================================ model files
@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> tuple[Path, dict]:
    spec = default_spec()
    model = GLAModel(GLAConfig(token_width=spec.token_width, label_index=spec.label_index))
    path = tmp_path_factory.mktemp("model") / "model.pt"
    save_model(model, spec, path)
    return path, torch.load(path, weights_only=True)


def _assert_model_error(path: Path) -> SpecError:
    with pytest.raises(SpecError) as caught:
        load_model(path)
    error = caught.value
    assert error.field == "model", str(error)
    assert "\n" not in str(error) and len(str(error)) < 400 + len(str(path)), str(error)
    return error


def _mutations(payload: dict) -> dict[str, dict]:
    config, state = payload["config"], payload["state_dict"]

    def changed(**changes) -> dict:
        out = copy.deepcopy(payload)
        for key, value in changes.items():
            if value is KeyError:
                out.pop(key, None)
            else:
                out[key] = value
        return out

    first = next(iter(state))
    return {
        "no spec": changed(spec=KeyError),
        "no config": changed(config=KeyError),
        "no weights": changed(state_dict=KeyError),
        "spec not an object": changed(spec="d=5"),
        "invalid spec": changed(spec={"d": 0, "tasks": []}),
        "config not an object": changed(config=[1, 2]),
        "config unknown key": changed(config={**config, "evil": 1}),
        "config missing keys": changed(config={}),
        "config layers out of range": changed(config={**config, "layers": 0}),
        "config layers text": changed(config={**config, "layers": "2"}),
        "config layers float": changed(config={**config, "layers": 1.0}),
        "config gating unknown": changed(config={**config, "gating": "cosmic"}),
        "config form unknown": changed(config={**config, "form": "fast"}),
        "config width huge": changed(config={**config, "token_width": 10 ** 6}),
        "config width not the spec's": changed(config={**config, "token_width": config["token_width"] + 1}),
        "config label index not the spec's": changed(config={**config, "label_index": 1}),
        "config chunk huge": changed(config={**config, "chunk_size": 10 ** 9}),
        "config chunk zero": changed(config={**config, "chunk_size": 0}),
        "spec for another model": changed(spec={"d": 2, "tasks": [{"n": 3, "corr": 0.5}]}),
        "weights not a dict": changed(state_dict=[1, 2]),
        "weights wrong shapes": changed(state_dict={k: torch.zeros(1) for k in state}),
        "weights extra key": changed(state_dict={**state, "evil": torch.zeros(1)}),
        "weights missing key": changed(state_dict={k: v for k, v in state.items() if k != first}),
        "weights not tensors": changed(state_dict={k: 1.0 for k in state}),
        "weights NaN": changed(state_dict={k: torch.full_like(v, float("nan")) for k, v in state.items()}),
        "weights infinite": changed(state_dict={k: torch.full_like(v, float("inf")) for k, v in state.items()}),
        "version 2": changed(version=2),
        "version text": changed(version="1"),
        "format other": changed(format="other-model"),
    }


MUTATION_NAMES = list(_mutations({"format": FORMAT, "version": 1, "spec": {}, "config": {"token_width": 9},
                                   "state_dict": {"w": torch.zeros(1)}}))


@pytest.mark.parametrize("name", MUTATION_NAMES)
def test_a_damaged_model_file_gives_a_clear_error(name, saved_model, tmp_path):
    _, payload = saved_model
    path = tmp_path / "model.pt"
    torch.save(_mutations(payload)[name], path)
    _assert_model_error(path)


def test_the_saved_model_itself_loads(saved_model):
    path, _ = saved_model
    model, spec = load_model(path)
    assert spec == default_spec() and isinstance(model, GLAModel)


@pytest.mark.parametrize("damage", ["empty", "truncated", "bit flips", "directory", "json", "npz"])
def test_a_corrupt_or_foreign_file_gives_a_clear_error(damage, saved_model, tmp_path):
    good, _ = saved_model
    raw = good.read_bytes()
    path = tmp_path / "model.pt"
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "bit flips":
        path.write_bytes(bytes(b ^ 0x5A if i % 61 == 7 else b for i, b in enumerate(raw)))
    elif damage == "directory":
        path.mkdir()
    elif damage == "json":
        path.write_text(json.dumps({"format": FORMAT, "version": 1}))
    else:
        np.savez(path.with_suffix(".npz"), tokens=np.zeros(3))
        path = path.with_suffix(".npz")
    _assert_model_error(path)


class _Owned:
    """Unpickling this calls Path.touch(marker): if any loader runs code from a file, the marker appears."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("packing", ["plain pickle", "legacy torch format", "inside the state_dict"])
def test_a_file_carrying_code_never_runs_it(packing, saved_model, tmp_path):
    _, payload = saved_model
    marker = tmp_path / "owned"
    path = tmp_path / "model.pt"
    if packing == "plain pickle":
        path.write_bytes(pickle.dumps({"format": FORMAT, "version": 1, "x": _Owned(marker)}))
    elif packing == "legacy torch format":
        torch.save({"format": FORMAT, "version": 1, "x": _Owned(marker)}, path, _use_new_zipfile_serialization=False)
    else:
        hostile = copy.deepcopy(payload)
        hostile["state_dict"]["evil"] = _Owned(marker)
        torch.save(hostile, path)
    _assert_model_error(path)
    assert not marker.exists(), "loading the file ran code from it"


def test_prompts_with_pickled_objects_are_refused(saved_model, tmp_path, capsys):
    model_path, _ = saved_model
    marker = tmp_path / "owned"
    prompts = tmp_path / "p.npz"
    np.savez(prompts, tokens=np.array([_Owned(marker)], dtype=object))
    code = cli.main(["predict", str(model_path), str(prompts), "--out", str(tmp_path / "out.npy")])
    err = capsys.readouterr().err
    assert code == 2 and "prompts:" in err and len(err.strip().splitlines()) == 1, err
    assert not marker.exists()


# ================================================================ presets by name only
@pytest.mark.parametrize("name", ["../../etc/passwd", "../presets/default", "/etc/hostname", "default/../default",
                                  "", ".", "..", "de\x00fault"])
def test_presets_are_looked_up_by_name_never_by_path(name):
    with pytest.raises(SpecError) as caught:
        load_preset(name)
    assert caught.value.field == "preset"
    assert preset_spec("default") == default_spec()


# ================================================================ hosting configuration
def test_streamlit_config_keeps_the_guards():
    """Beyond tests/test_container.py: no agent API, no static file serving, no raised limits."""
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    server = config["server"]
    assert server.get("enableAgentApi", False) is False, "the agent API lets any HTTP client drive the app"
    assert server.get("enableStaticServing", False) is False
    assert 0 < server["maxUploadSize"] <= 1 and server.get("maxMessageSize", 200) <= 200
    assert "cookieSecret" not in server, "the cookie secret comes from the environment, never the repo"
    for env in (ROOT / "deploy" / "docker-compose.yml", ROOT / "deploy" / "k8s.yaml", ROOT / "Dockerfile"):
        text = env.read_text()
        assert not re.search(r"ENABLE_XSRF_PROTECTION\W+(false|0)", text, re.I), env
        assert not re.search(r"COOKIE_SECRET\s*[:=]\s*['\"]?[0-9a-f]{16,}", text, re.I), f"a secret in {env.name}"


# ================================================================ a running server
@pytest.fixture(scope="module")
def server():
    with harness.AppServer("security") as running:
        yield running
    problems = harness.unexpected_tracebacks(running.log_tail(1_000_000))
    assert problems == [], "\n\n".join(problems)


def _put_upload(server: harness.AppServer, session_id: str, headers: dict, body: bytes | None,
                content_length: int | None = None, file_id: str = "spec-file", method: str = "PUT") -> int:
    """PUT to Streamlit's upload endpoint; with content_length and no body, send headers only (a large
    upload is refused from its Content-Length before its body is read). method="DELETE" removes it."""
    connection = http.client.HTTPConnection(harness.HOST, server.port, timeout=15)
    try:
        connection.putrequest(method, f"/_stcore/upload_file/{session_id}/{file_id}")
        length = len(body) if body is not None else content_length
        for key, value in {**headers, "Content-Length": str(length)}.items():
            connection.putheader(key, value)
        connection.endheaders(body)
        return connection.getresponse().status
    finally:
        connection.close()


def _multipart(payload: bytes) -> tuple[dict, bytes]:
    boundary = "gla-lab-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"spec.json\"\r\n"
            f"Content-Type: application/json\r\n\r\n").encode() + payload + f"\r\n--{boundary}--\r\n".encode()
    return {"Content-Type": f"multipart/form-data; boundary={boundary}"}, body


def test_xsrf_is_on_and_uploads_are_capped(server):
    session = harness.ProtocolSession(server)
    try:
        token = {"X-Xsrftoken": session.xsrf, "Cookie": f"_streamlit_xsrf={session.xsrf}"}
        headers, small = _multipart(json.dumps(default_spec().to_dict()).encode())
        assert _put_upload(server, session.session_id, headers, small) == 403, "an upload without the XSRF token"
        assert _put_upload(server, session.session_id, {**headers, "X-Xsrftoken": "2|00|00|0",
                                                        "Cookie": f"_streamlit_xsrf={session.xsrf}"}, small) == 403
        assert _put_upload(server, session.session_id, {**headers, **token}, small) in (200, 204)
        limit = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]["maxUploadSize"]
        over = (limit + 2) * 1024 * 1024
        assert _put_upload(server, session.session_id, {**headers, **token}, None, content_length=over) == 413
        _, large = _multipart(b" " * int((limit + 0.5) * 1024 * 1024))
        assert _put_upload(server, session.session_id, {**headers, **token}, large) == 413
    finally:
        session.close()
    assert server.healthy()


def test_one_session_cannot_park_more_than_its_upload_ceiling(server):
    """No page has an upload widget, yet any live session can PUT files: each is capped by
    server.maxUploadSize, and lab_uploads caps what one session holds (before it, 200 files of 0.9 MB
    all landed and the server grew by 182 MiB). Deleting a file frees its share; another session has
    its own."""
    import lab_uploads
    payload = b"x" * int(0.9 * 1024 * 1024)
    headers, body = _multipart(payload)
    _, tiny = _multipart(b"{}")
    session, other, small = (harness.ProtocolSession(server) for _ in range(3))
    try:
        def put(who, file_id: str, method: str = "PUT", content: bytes = body) -> int:
            token = {"X-Xsrftoken": who.xsrf, "Cookie": f"_streamlit_xsrf={who.xsrf}"}
            return _put_upload(server, who.session_id, {**headers, **token}, content if method == "PUT" else b"",
                               file_id=file_id, method=method)

        rss_before = server.rss_mb()
        statuses = [put(session, f"file-{index}") for index in range(40)]
        rss_after = server.rss_mb()
        accepted = [index for index, status in enumerate(statuses) if status == 204]
        fits = min(lab_uploads.MAX_SESSION_UPLOAD_FILES, lab_uploads.MAX_SESSION_UPLOAD_BYTES // len(payload))
        assert accepted == list(range(fits)), statuses
        assert set(statuses[fits:]) == {413}, statuses
        assert rss_after - rss_before < 20, f"the server grew by {rss_after - rss_before:.0f} MiB"
        assert put(session, "file-0") == 204, "a file replacing one of the same id counts once"
        assert put(session, "file-0", method="DELETE") == 204
        assert put(session, "file-after-delete") == 204, "a deleted file frees its share"
        assert put(other, "file-0") == 204, "each session has its own ceiling"
        small_statuses = [put(small, f"tiny-{index}", content=tiny) for index in range(10)]
        assert small_statuses == [204] * lab_uploads.MAX_SESSION_UPLOAD_FILES + [413] * (
            10 - lab_uploads.MAX_SESSION_UPLOAD_FILES), "the file count is capped too"
    finally:
        for each in (session, other, small):
            each.close()
    assert server.healthy()


def test_garbage_on_the_websocket_does_not_take_the_server_down(server):
    session = harness.ProtocolSession(server)
    try:
        for frame in (b"", b"\x00", b"\xff" * 64, os.urandom(4096), b"\x0a\xff\xff\xff\xff\x0f" + b"a" * 10):
            try:
                session.send_raw(frame)
            except Exception:   # the server may close a misbehaving connection: that is fine
                break
        time.sleep(1.0)
    finally:
        session.close()
    assert server.healthy()
    other = harness.ProtocolSession(server)   # and it still serves new sessions
    other.close()


# ---------------------------------------------------------------- hostile links (browser)
HOSTILE_LINKS = {
    # query: the slider whose value must stay what a clean link shows (None: check the page only)
    "lr=abc": "lr",
    "lr=1e999": "lr",
    "lr=" + "9" * 5000: "lr",
    "d=999": "d",
    "d=-1": "d",
    "tasks=9": "tasks",
    "steps=7": "steps",
    "noise=nan": "noise",
    "seed=-5": None,
    "gating=cosmic": None,
    "preset=..%2F..%2Fetc%2Fpasswd": None,
    "per_coord=true&rv1=%3Cimg%20src%3Dx%20onerror%3Dwindow.__xss%3D1%3E": None,
    "per_coord=true&rv1=%5Bx%5D(javascript%3Awindow.__xss%3D1)": None,
    "task_corr=%3Cscript%3Ewindow.__xss%3D1%3C%2Fscript%3E": None,
}


def slider_value(page, key: str) -> str:
    return page.locator(f'.st-key-{key} [data-testid="stSliderThumbValue"]').first.inner_text()


@pytest.fixture
def page(browser):
    """A fresh tab at projector size (1024 x 768)."""
    context = browser.new_context(viewport=harness.VIEWPORT)
    yield context.new_page()
    context.close()


@pytest.mark.browser
def test_hostile_links_keep_the_page_working_and_run_no_script(server, page):
    harness.open_app(page, f"{server.url}/playground")
    clean = {key: slider_value(page, key) for key in set(HOSTILE_LINKS.values()) if key}
    for query, key in HOSTILE_LINKS.items():
        harness.open_app(page, f"{server.url}/playground?{query}")
        assert page.locator("h1").first.inner_text() == "Playground", query
        assert harness.exceptions_on(page) == [], (query, harness.exceptions_on(page))
        assert page.evaluate("() => window.__xss === undefined"), f"{query}: a script from the link ran"
        assert page.locator('img[src="x"]').count() == 0, query
        if key is not None:
            assert slider_value(page, key) == clean[key], (query, slider_value(page, key), clean[key])


@pytest.mark.browser
def test_a_bad_link_value_is_reported(server, page):
    harness.open_app(page, f"{server.url}/playground?lr=abc")
    page.wait_for_timeout(1500)
    text = page.evaluate("() => document.body.innerText")
    assert re.search(r"\blr\b[^\n]*(not an allowed|not a valid|invalid|ignored|cannot)", text, re.I), text[:500]


# ================================================================ read-only root, non-root user
APP_UID = 10001   # the Dockerfile's user

RO_SCRIPT = textwrap.dedent(r"""
    set -eu
    mount --make-rprivate /
    # A checkout under /tmp would vanish under the fresh /tmp: park it on /mnt and put it back.
    case "$REPO/" in /tmp/*) mount --bind "$REPO" /mnt ;; esac
    mount -t tmpfs -o size=512m,mode=1777 tmpfs /tmp
    case "$REPO/" in /tmp/*) mkdir -p "$REPO" && mount --bind /mnt "$REPO" && mount -o remount,bind,ro "$REPO" ;; esac
    # The interpreter may live under a directory other users cannot enter (e.g. pyenv under /root):
    # cover that directory with an empty one and put the interpreter back, read-only.
    if [ -n "$BLOCKED_DIR" ]; then
        mkdir -p /tmp/.gla-stage
        mount --bind "$PYTHON_PREFIX" /tmp/.gla-stage
        mount -t tmpfs -o mode=755 tmpfs "$BLOCKED_DIR"
        mkdir -p "$PYTHON_PREFIX"
        mount --bind /tmp/.gla-stage "$PYTHON_PREFIX"
        mount -o remount,bind,ro "$PYTHON_PREFIX"
        mount -o remount,ro "$BLOCKED_DIR"
    fi
    mount -o remount,bind,ro /
    if touch "$REPO/.gla-ro-probe" 2>/dev/null || touch /gla-ro-probe 2>/dev/null; then
        echo "root is still writable"; exit 97
    fi
    mkdir -p /tmp/home
    echo "GLA-RO: root read-only, /tmp writable, running as uid $APP_UID"
    exec setpriv --reuid="$APP_UID" --regid="$APP_UID" --clear-groups -- "$@"
""")


def _blocked_ancestor(path: Path) -> Path | None:
    """The first directory above `path` that other users cannot enter, or None."""
    for parent in reversed(path.parents):
        if parent != Path("/") and not os.stat(parent).st_mode & 0o001:
            return parent
    return None


def _namespace_problem() -> str | None:
    if os.geteuid() != 0:
        return "needs root to make a mount namespace (unshare -m); the container itself runs as uid 10001"
    for tool in ("unshare", "setpriv", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs tmpfs /mnt && mount -o remount,bind,ro /"],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return f"mount namespaces are not permitted here: {probe.stderr.strip()[:200]}"
    if _blocked_ancestor(ROOT / "app.py") is not None:
        return f"{_blocked_ancestor(ROOT / 'app.py')} is closed to other users, so uid {APP_UID} cannot read the app"
    return None


@pytest.mark.browser
def test_the_server_runs_on_a_read_only_root_as_a_non_root_user(browser, tmp_path):
    problem = _namespace_problem()
    if problem:
        pytest.skip(problem)
    prefix = Path(sys.base_prefix).resolve()
    blocked = _blocked_ancestor(prefix / "bin")
    env = {"REPO": str(ROOT), "APP_UID": str(APP_UID), "PYTHON_PREFIX": str(prefix),
           "BLOCKED_DIR": str(blocked) if blocked else "",
           # as the Dockerfile sets them: everything the app writes goes under /tmp
           "HOME": "/tmp/home", "TMPDIR": "/tmp", "XDG_CONFIG_HOME": "/tmp/.config", "XDG_CACHE_HOME": "/tmp/.cache",
           "MPLCONFIGDIR": "/tmp/.config/matplotlib", "TORCH_HOME": "/tmp/.cache/torch",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"}
    wrapper = ["unshare", "-m", "--propagation", "private", "bash", "-c", RO_SCRIPT, "gla-read-only"]
    server = harness.AppServer("read_only", env=env, wrapper=wrapper)
    try:
        server.start()
        status = Path(f"/proc/{server.pid}/status").read_text()
        assert re.search(rf"^Uid:\s+{APP_UID}\s", status, re.M), "the server does not run as the app user"
        assert "GLA-RO: root read-only" in server.log_tail()
        context = browser.new_context()
        page = context.new_page()
        try:
            harness.open_app(page, f"{server.url}/playground?steps=25&batch=16")
            harness.page_button(page, "Train").click()
            page.get_by_text(re.compile(r"Finished · 25 steps")).wait_for(timeout=180_000)
            assert harness.exceptions_on(page) == []
        finally:
            context.close()
        log = server.log_tail(100_000)
        assert harness.unexpected_tracebacks(log) == [], log[-3000:]
        assert not re.search(r"Read-only file system|Permission denied", log), log[-3000:]
    finally:
        server.stop()
    # the namespace never touched this machine's own mounts
    probe = ROOT / "artifacts" / "load" / ".write-probe"
    probe.write_text("ok")
    probe.unlink()
