"""The container contract, checked without Docker (no engine on CI).

We parse the Dockerfile and run its ENTRYPOINT exactly as written, from the repo root (the image's
WORKDIR holds the same files), with this venv's bin first on PATH and the Dockerfile's ENV applied;
then we run its HEALTHCHECK command exactly as written. Two substitutions, both through the
environment, never by editing the commands:
  - STREAMLIT_SERVER_PORT is set to a free port (the image sets it to 8501; the entrypoint passes no
    port flag and the health check reads the same variable), so the test never fights a local 8501;
  - ENV values under /tmp (HOME, XDG dirs, ...) are moved to a fresh temporary folder, which also
    mimics the image's read-only root with a writable /tmp.
Also checks the Dockerfile, .dockerignore, requirements and Streamlit config carry what a hosted
deployment needs.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
STARTUP_TIMEOUT_S = 25.0


# ---------------------------------------------------------------- Dockerfile parsing
def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and line continuations joined."""
    result, pending = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        keyword, _, rest = full.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def only(keyword: str) -> str:
    found = [rest for kw, rest in instructions() if kw == keyword]
    assert len(found) == 1, f"expected one {keyword} in the Dockerfile, found {len(found)}"
    return found[0]


def entrypoint() -> list[str]:
    command = json.loads(only("ENTRYPOINT"))  # exec form is a JSON array
    assert isinstance(command, list) and all(isinstance(part, str) for part in command)
    return command


def healthcheck() -> tuple[dict[str, str], list[str]]:
    """(options such as interval, CMD in exec form)."""
    options_text, sep, cmd = only("HEALTHCHECK").partition("CMD ")
    assert sep, "HEALTHCHECK must use CMD"
    options = dict(re.findall(r"--([a-z-]+)=(\S+)", options_text))
    command = json.loads(cmd)
    assert isinstance(command, list), "HEALTHCHECK CMD must be in exec form"
    return options, command


def dockerfile_env() -> dict[str, str]:
    env = {}
    for keyword, rest in instructions():
        if keyword == "ENV":
            for item in shlex.split(rest):
                name, sep, value = item.partition("=")
                assert sep, f"use ENV NAME=value form, got {item!r}"
                env[name] = value
    return env


# ---------------------------------------------------------------- static checks
def test_dockerfile_has_the_hosting_pieces():
    kinds = [kw for kw, _ in instructions()]
    assert kinds[0] == "FROM" or (kinds[0] == "ARG" and "FROM" in kinds)
    base = only("FROM")
    assert base.startswith("python:3.11-slim"), base

    user = only("USER").split(":")[0]
    assert user not in ("root", "0"), "the app must not run as root"
    assert "8501" in only("EXPOSE").split()
    assert only("WORKDIR").startswith("/")

    options, command = healthcheck()
    assert command[0] == "python", "the health check uses Python's urllib (no curl in the image)"
    assert "/_stcore/health" in " ".join(command)
    assert {"interval", "timeout", "retries"} <= set(options)

    command = entrypoint()
    assert command[:3] == ["streamlit", "run", "app.py"]
    assert "--server.address=0.0.0.0" in command
    assert "--server.headless=true" in command
    env = dockerfile_env()
    assert env["STREAMLIT_SERVER_PORT"] == "8501"
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        assert env[name].isdigit(), f"{name} is set for a shared server"
    for name in ("HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        assert env[name].startswith("/tmp"), f"{name} must point at the writable /tmp"

    # Requirements in their own layer, before the app is copied; torch comes from requirements.txt.
    copies = [rest for kw, rest in instructions() if kw == "COPY"]
    assert copies[0].split()[0] == "requirements.txt" and copies[-1].split()[0] == "."
    text = DOCKERFILE.read_text()
    assert "-r requirements.txt" in text
    assert not re.search(r"torch==\d", text), "torch is pinned in requirements.txt only"
    assert "ARG TORCH_VARIANT=cpu" in text


def test_requirements_are_pinned_and_torch_is_2_13():
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / name).read_text().splitlines():
            line = line.split("#")[0].strip()
            if not line or line.startswith("-r "):
                continue
            assert re.fullmatch(r"[A-Za-z0-9._-]+==[0-9][A-Za-z0-9.+]*", line), f"{name}: pin {line!r} exactly"
    runtime = (ROOT / "requirements.txt").read_text()
    assert re.search(r"^torch==2\.13\.0$", runtime, re.M)
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text()


def test_dockerignore_keeps_dev_files_out():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", "tests", ".pytest_cache", "**/__pycache__"} <= ignored


def test_streamlit_config_suits_a_hosted_class():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    server = config["server"]
    assert server["headless"] is True
    assert server["enableXsrfProtection"] is True
    assert server.get("enableCORS", True) is True  # Streamlit needs CORS protection on for XSRF
    assert server["maxUploadSize"] <= 1
    assert config["browser"]["gatherUsageStats"] is False
    assert config["client"]["toolbarMode"] in ("viewer", "minimal")
    assert config["theme"]["primaryColor"].upper() == "#0072B2"


# ---------------------------------------------------------------- run the entrypoint
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def container_env(tmp_path: Path, port: int) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in dockerfile_env().items():
        if value == "/tmp" or value.startswith("/tmp/"):
            value = str(tmp_path / value[len("/tmp"):].lstrip("/"))  # the image's writable /tmp
        env[name] = value
    env["STREAMLIT_SERVER_PORT"] = str(port)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_healthcheck(command: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_entrypoint_serves_the_app_and_passes_the_healthcheck(tmp_path):
    port = free_port()
    env = container_env(tmp_path, port)
    options, health_command = healthcheck()
    health_timeout = float(options.get("timeout", "5s").rstrip("s"))
    log = (tmp_path / "server.log").open("w+")
    started = time.monotonic()
    server = subprocess.Popen(entrypoint(), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        # The health check fails until the server listens; poll it like Docker's start period does.
        while True:
            result = run_healthcheck(health_command, env, timeout=health_timeout + 5)
            if result.returncode == 0:
                break
            if server.poll() is not None or time.monotonic() - started > STARTUP_TIMEOUT_S:
                log.seek(0)
                pytest.fail(f"health check never passed (server exit {server.poll()}):\n"
                            f"{result.stderr[-1500:]}\n--- server log ---\n{log.read()[-3000:]}")
            time.sleep(0.25)
        ready_s = time.monotonic() - started

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5) as response:
            assert response.status == 200 and response.read().decode().strip() == "ok"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            page = response.read().decode()
        assert response.status == 200
        assert '<div id="root">' in page, page[:500]
        assert ready_s < STARTUP_TIMEOUT_S
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=5)
        log.close()
    # Streamlit exits cleanly on SIGTERM (what `docker stop` sends).
    assert server.returncode in (0, -signal.SIGTERM), f"server exit code {server.returncode}"
    # After the stop, the health check must fail again.
    assert run_healthcheck(health_command, env, timeout=health_timeout + 5).returncode != 0
