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


def base_image() -> str:
    """The image FROM names by default: a literal, or the default of the ARG it refers to (BASE_IMAGE,
    which CI sets to its locally made base)."""
    base = only("FROM")
    match = re.fullmatch(r"\$\{?(\w+)\}?", base)
    if not match:
        return base
    defaults = [rest.partition("=")[2] for kw, rest in instructions() if kw == "ARG"
                and rest.partition("=")[0] == match.group(1)]
    assert defaults and defaults[0], f"FROM {base} needs an ARG {match.group(1)}=default before it"
    return defaults[0]


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
    assert base_image().startswith("python:3.11-slim-bookworm"), base_image()

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
            assert re.fullmatch(r"[A-Za-z0-9._-]+(\[[A-Za-z0-9,._-]+\])?==[0-9][A-Za-z0-9.+]*", line), f"{name}: pin {line!r} exactly"
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
    # visitors see a generic message for an uncaught exception, never its type, text or traceback
    assert config["client"]["showErrorDetails"] == "none"
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


# ---------------------------------------------------------------- the built image (scripts/image-test)
# scripts/image-test builds the image with buildah and sets GLA_IMAGE to it; podman runs it here as the
# README does: read-only root, a tmpfs on /tmp, the image's own non-root user, the port on loopback only.
IMAGE = os.environ.get("GLA_IMAGE", "")
IMAGE_LABEL = "gla-image-test"            # every container started here carries it (the script's cleanup)
IMAGE_START_TIMEOUT_S = 90.0
STOP_GRACE_S = 10                          # what `docker stop` / `podman stop` wait before SIGKILL
TRAIN_TIMEOUT_S = 180.0
needs_image = pytest.mark.skipif(not IMAGE, reason="the built image is tested by scripts/image-test (GLA_IMAGE)")


def podman(*args: str, timeout: float = 60.0, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, f"podman {' '.join(args)}: exit {result.returncode}\n{result.stderr[-2000:]}"
    return result


class Container:
    """One `podman run -d` of the image, reachable at url; `env` adds -e NAME=value, `network` picks
    podman's network (default: its bridge)."""

    def __init__(self, env: dict[str, str] | None = None, network: str | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.name = f"gla-image-test-{os.getpid()}-{self.port}"
        env_args = [arg for name, value in (env or {}).items() for arg in ("-e", f"{name}={value}")]
        env_args += ["--network", network] if network else []
        podman("run", "-d", "--name", self.name, "--label", IMAGE_LABEL, "--read-only", "--tmpfs", "/tmp",
               "-p", f"127.0.0.1:{self.port}:8501", *env_args, IMAGE)
        self.started = time.monotonic()

    def wait_healthy(self) -> float:
        """Seconds from `podman run` until the image's own HEALTHCHECK passes (run by `podman healthcheck
        run`: without systemd podman never schedules it)."""
        while True:
            result = podman("healthcheck", "run", self.name, check=False)
            if result.returncode == 0:
                return time.monotonic() - self.started
            state = podman("inspect", "--format", "{{.State.Status}}", self.name).stdout.strip()
            if state != "running" or time.monotonic() - self.started > IMAGE_START_TIMEOUT_S:
                pytest.fail(f"health check never passed (container {state}): {result.stdout}{result.stderr}\n"
                            f"--- log ---\n{self.log()[-3000:]}")
            time.sleep(0.5)

    def exec(self, *command: str) -> subprocess.CompletedProcess:
        return podman("exec", self.name, *command, check=False)

    def log(self) -> str:
        result = podman("logs", self.name, check=False)
        return result.stdout + result.stderr

    def remove(self) -> None:
        podman("rm", "--force", "--time", "0", self.name, check=False)


@pytest.fixture(scope="module")
def container():
    running = Container()
    try:
        running.ready_s = running.wait_healthy()
        yield running
    finally:
        running.remove()


@needs_image
def test_image_passes_its_health_check_and_serves_the_app(container):
    print(f"image healthy {container.ready_s:.1f} s after start")
    assert podman("healthcheck", "run", container.name).stdout.strip() in ("", "healthy")
    with urllib.request.urlopen(f"{container.url}/_stcore/health", timeout=5) as response:
        assert response.status == 200 and response.read().decode().strip() == "ok"
    with urllib.request.urlopen(f"{container.url}/", timeout=5) as response:
        assert response.status == 200
        assert '<div id="root">' in response.read().decode()


@needs_image
def test_image_runs_as_its_user_on_a_read_only_root(container):
    assert container.exec("id", "-u").stdout.strip() == "10001"
    for folder in ("/", "/app"):
        result = container.exec("sh", "-c", f"echo x > {folder.rstrip('/')}/probe")
        assert result.returncode != 0 and "Read-only file system" in result.stderr, (folder, result)
    assert container.exec("sh", "-c", "echo x > /tmp/probe").returncode == 0   # the tmpfs stays writable


def image_student(container: Container, metrics: list, monkeypatch):
    """A protocol Student (tests/load/protocol.py) on the container that also records the page's
    st.metric elements as (time, label, value, delta)."""
    from tests.load import protocol

    plain_texts = protocol._texts

    def texts_and_metrics(element):
        if element.WhichOneof("type") == "metric":
            metric = element.metric
            metrics.append((time.time(), metric.label, metric.body, metric.delta))
        return plain_texts(element)

    monkeypatch.setattr(protocol, "_texts", texts_and_metrics)
    return protocol.Student(container, page="playground")


@needs_image
def test_image_trains_the_default_preset_to_the_theory(container, monkeypatch):
    """A real session over Streamlit's protocol: the default preset with its default settings trains to
    the end, and the page then reports the trained risk at the theory line (within 2 standard errors)."""
    import asyncio

    metrics: list = []
    student = image_student(container, metrics, monkeypatch)

    async def train():
        await student.open()
        await student.click("Train")
        deadline = time.monotonic() + TRAIN_TIMEOUT_S
        while time.monotonic() < deadline:
            finished_at = student.seen.get("finished")
            after = [m for m in metrics if finished_at and m[0] >= finished_at and m[1] == "Trained model"]
            if after or (student.ended() and "finished" not in student.seen):
                break
            await asyncio.sleep(0.5)
        await student.close()

    asyncio.run(train())
    assert not student.exceptions, student.exceptions
    assert "finished" in student.seen, f"run did not finish: {student.last_status!r}\n{container.log()[-2000:]}"
    final = [m for m in metrics if m[0] >= student.seen["finished"]]
    trained = [m for m in final if m[1] == "Trained model"][-1]
    cosine = [m for m in final if m[1] == "Cosine"][-1]
    print(f"in-image run: {student.last_status}; trained risk {trained[2]} ({trained[3]}); cosine {cosine[2]}")
    assert trained[3].startswith("at the theory line"), trained
    assert float(cosine[2]) > 0.9, cosine


BOARD_ROUND_TRIP = """
import json
from gla_core import board
info = board.create_class("Image test")
student = board.join_class(info.code)
print(json.dumps({"code": info.code, "student": student, "title": board.get_class(info.code).title,
                  "data_dir": str(board.data_dir())}))
"""


def board_round_trip(container: Container) -> dict:
    """Create a class and join it inside the container, with the server's own environment."""
    result = container.exec("python", "-c", BOARD_ROUND_TRIP)
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["title"] == "Image test" and answer["student"]
    return answer


@needs_image
def test_image_keeps_the_class_board_in_sqlite_on_its_writable_mount(container):
    answer = board_round_trip(container)
    assert answer["data_dir"].startswith("/tmp/"), answer
    database = f"{answer['data_dir']}/board.sqlite3"
    assert container.exec("test", "-s", database).returncode == 0, f"no {database}"


@needs_image
@pytest.mark.skipif(not os.environ.get("GLA_TEST_DATABASE_URL"),
                    reason="GLA_TEST_DATABASE_URL: the PostgreSQL server CI starts for the board's tests")
def test_image_keeps_the_class_board_in_postgresql():
    """GLA_DATABASE_URL as several replicas would set it; the class is then read back from the host.
    CI's server listens on the host's loopback, which slirp4netns shows the container as 10.0.2.2."""
    import psycopg

    host_url = os.environ["GLA_TEST_DATABASE_URL"]
    container_url = re.sub(r"@(127\.0\.0\.1|localhost)([:/])", r"@10.0.2.2\2", host_url)
    running = Container(env={"GLA_DATABASE_URL": container_url}, network="slirp4netns:allow_host_loopback=true")
    try:
        running.wait_healthy()
        answer = board_round_trip(running)
    finally:
        running.remove()
    with psycopg.connect(host_url) as connection:
        row = connection.execute("SELECT title FROM board_classes WHERE code = %s", (answer["code"],)).fetchone()
    assert row == ("Image test",)


@needs_image
def test_image_stops_on_sigterm_within_the_grace_period():
    running = Container()
    try:
        running.wait_healthy()
        started = time.monotonic()
        podman("stop", "--time", str(STOP_GRACE_S), running.name, timeout=STOP_GRACE_S + 30)
        stop_s = time.monotonic() - started
        exit_code = int(podman("inspect", "--format", "{{.State.ExitCode}}", running.name).stdout)
    finally:
        running.remove()
    print(f"stopped {stop_s:.1f} s after SIGTERM, exit {exit_code}")
    assert stop_s < STOP_GRACE_S and exit_code == 0, (stop_s, exit_code)
