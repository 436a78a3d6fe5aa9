"""Shared pieces of the load, fault and security tests: a real `streamlit run app.py` on a loopback port,
its memory / CPU / thread count read from /proc, and Chromium pages that record when texts appear.

Everything here stays on 127.0.0.1 and every wait is bounded.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "load"
CHROMIUM = os.environ.get("GLA_CHROMIUM", "/usr/bin/chromium")
VIEWPORT = {"width": 1024, "height": 768}   # a classroom projector
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic",
                 # many tabs at once: keep every page's timers running at full rate
                 "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                 "--disable-backgrounding-occluded-windows"]
HOST = "127.0.0.1"
START_WAIT_S = 60.0
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Texts the app shows (lab_ui.status_line / ended_status); the watcher below records when each first appears.
WATCH_PATTERNS = {
    "waiting": r"Waiting for a free training slot",
    "training": r"Training(?: \(model \d+ of \d+\))?: step \d+",
    "finished": r"Finished · \d+ steps",
    "stopped": r"Stopped · \d+ steps",
    "diverged": r"(Diverged|The training loss became|The test risk reached)[^\n]*· \d+ steps",
    "time_limit": r"(Time limit|stopped after)[^\n]*· \d+ steps",
    "failed": r"Failed[^\n]*· \d+ steps",
    "exception": r"Traceback \(most recent call last\)",
}
TERMINAL = ("finished", "stopped", "diverged", "time_limit", "failed", "exception")   # a run has ended


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def http_get(url: str, timeout: float = 3.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class AppServer:
    """`streamlit run app.py` headless on 127.0.0.1:port; `wrapper` runs it inside another command (it
    must exec the server, so that `pid` stays the server's own process)."""

    def __init__(self, name: str, env: dict[str, str] | None = None, port: int | None = None,
                 wrapper: Sequence[str] = (), extra_args: Sequence[str] = (), cwd: Path = ROOT,
                 python: str = sys.executable):
        self.name = name
        self.port = port or free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
        self.command = [*wrapper, python, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                        "--server.address", HOST, "--server.port", str(self.port),
                        "--browser.gatherUsageStats", "false", *extra_args]
        self.cwd = cwd
        self.process: subprocess.Popen | None = None
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log_path = ARTIFACTS / f"server_{name}.log"
        self._log = None
        self._log_start = 0

    # ------------------------------------------------------------ life cycle
    def start(self, wait_s: float = START_WAIT_S) -> "AppServer":
        self._log = open(self.log_path, "a")
        self._log_start = self._log.tell()   # log_tail reads this server's part only
        self._log.write(f"\n=== start {time.strftime('%H:%M:%S')}: {' '.join(self.command)}\n")
        self._log.flush()
        self.process = subprocess.Popen(self.command, cwd=self.cwd, env=self.env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server {self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            if self.healthy():
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server {self.name} did not answer /_stcore/health in {wait_s:g} s:\n{self.log_tail()}")

    def healthy(self, timeout: float = 2.0) -> bool:
        try:
            return http_get(f"{self.url}/_stcore/health", timeout=timeout)[1] == b"ok"
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM, wait_s: float = 15.0) -> int | None:
        """Send `sig` to the server's process group and wait for it; SIGKILL if it does not exit."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(wait_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
            except ProcessLookupError:
                pass
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.process.returncode

    def __enter__(self) -> "AppServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log_tail(self, chars: int = 4000) -> str:
        try:
            with open(self.log_path, errors="replace") as log:
                log.seek(self._log_start)
                return log.read()[-chars:]
        except OSError:
            return ""

    # ------------------------------------------------------------ what the process uses
    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def rss_mb(self) -> float:
        """Resident memory of the server process alone, MiB."""
        text = Path(f"/proc/{self.pid}/status").read_text()
        return int(re.search(r"^VmRSS:\s+(\d+) kB", text, re.M).group(1)) / 1024

    def processes(self) -> list[int]:
        """The server's process and its descendants (the fork server and the training workers of
        gla_core.workers), by pid."""
        parents = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    parents[int(entry)] = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    pass        # ended while we looked
        tree, added = {self.pid}, True
        while added:
            children = {pid for pid, parent in parents.items() if parent in tree} - tree
            tree |= children
            added = bool(children)
        return sorted(tree)

    def memory_mb(self) -> float:
        """Memory of the server and its worker processes, MiB: their proportional set sizes summed (a page two of
        them share counts half to each), so the pages of torch every worker maps count once in all."""
        total_kb = 0
        for pid in self.processes():
            try:
                text = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except OSError:
                continue
            total_kb += int(re.search(r"^Pss:\s+(\d+) kB", text, re.M).group(1))
        return total_kb / 1024

    def cpu_seconds(self) -> float:
        """User + system CPU time the server and its worker processes have used so far (all their threads, and
        the workers that have ended, through their parents' counts of waited-for children)."""
        total = 0
        for pid in self.processes():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += sum(int(field) for field in fields[11:15])
        return total / CLK_TCK

    def wait_for_workers(self, timeout_s: float = 60.0) -> bool:
        """Wait until the server's training workers are up: its fork server (started by the first page a session
        draws) has imported torch and forked a worker. Until then the server trains runs in its own threads.
        True if they came up within timeout_s."""
        deadline = time.monotonic() + timeout_s
        while len(self.processes()) < 3:        # the server, its fork server, a worker
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/task"))

    def cpu_share(self, window_s: float) -> float:
        """Cores the server kept busy over the next `window_s` seconds (1.0 = one core flat out)."""
        before, started = self.cpu_seconds(), time.monotonic()
        time.sleep(window_s)
        return (self.cpu_seconds() - before) / (time.monotonic() - started)

    def wait_idle(self, timeout_s: float, window_s: float = 1.5, busy_below: float = 0.25) -> tuple[bool, float, float]:
        """Wait until the server uses under `busy_below` of a core over a window: (idle?, seconds waited, last share).

        A training run keeps most of a core busy; an idle Streamlit server uses almost none, so the server's
        own CPU time (not the machine's load, which other jobs share) tells whether any run is still going."""
        started = time.monotonic()
        share = float("nan")
        while time.monotonic() - started < timeout_s:
            share = self.cpu_share(window_s)
            if share < busy_below:
                return True, time.monotonic() - started, share
        return False, time.monotonic() - started, share


# ---------------------------------------------------------------- browser side
WATCH_JS = """
(patterns) => {
  if (window.__glaWatch) return;
  const compiled = Object.entries(patterns).map(([name, source]) => [name, new RegExp(source)]);
  const watch = {seen: {}, last: "", exceptions: 0};
  window.__glaWatch = watch;
  const look = () => {
    const main = document.querySelector('[data-testid="stMain"]');
    const text = main ? main.innerText : "";
    for (const [name, re] of compiled) {
      if (!(name in watch.seen) && re.test(text)) watch.seen[name] = Date.now();
    }
    const bar = document.querySelector('[data-testid="stProgress"]');
    watch.last = bar ? bar.innerText : watch.last;
    watch.exceptions = document.querySelectorAll('[data-testid="stException"]').length;
  };
  look();
  window.__glaWatchTimer = setInterval(look, 200);
}
"""


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def settle(page, timeout_ms: int = 60_000) -> None:
    """Wait until the page's script run has finished."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout_ms)


def open_app(page, url: str, timeout_ms: int = 90_000) -> None:
    page.goto(url, timeout=timeout_ms)
    page.wait_for_selector("h1", timeout=timeout_ms)
    settle(page, timeout_ms)


def page_button(page, name: str):
    """One of the page's own buttons (Streamlit's header has a 'Stop' of its own while a script runs)."""
    return page.get_by_test_id("stMainBlockContainer").get_by_role("button", name=name, exact=True)


def start_watch(page, **more_patterns: str) -> None:
    """Record when each WATCH_PATTERNS text (and each of `more_patterns`) first shows on the page."""
    page.evaluate(WATCH_JS, {**WATCH_PATTERNS, **more_patterns})


def read_watch(page) -> dict:
    return page.evaluate("() => window.__glaWatch ? {...window.__glaWatch, now: Date.now()} : null")


def exceptions_on(page) -> list[str]:
    boxes = page.locator('[data-testid="stException"]')
    return [boxes.nth(i).inner_text()[:500] for i in range(boxes.count())]


def main_text(page) -> str:
    return page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]')?.innerText ?? ''")


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# ---------------------------------------------------------------- Streamlit's own protocol (no browser)
def xsrf_cookie(server: AppServer) -> str:
    """The XSRF cookie value Streamlit sets on its health endpoint (the browser's first request)."""
    with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=5) as response:
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            if name.strip() == "_streamlit_xsrf":
                return rest.split(";")[0]
    raise AssertionError("no _streamlit_xsrf cookie: XSRF protection is off")


class ProtocolSession:
    """One Streamlit session over its WebSocket, as the browser opens it; `session_id` once the first
    script run has started."""

    def __init__(self, server: AppServer, query_string: str = "", timeout_s: float = 60.0):
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
        from websockets.sync.client import connect

        self.xsrf = xsrf_cookie(server)
        self.socket = connect(f"ws://{HOST}:{server.port}/_stcore/stream", subprotocols=["streamlit", self.xsrf],
                              additional_headers={"Cookie": f"_streamlit_xsrf={self.xsrf}", "Origin": server.url},
                              max_size=2 ** 26, open_timeout=timeout_s)
        rerun = BackMsg()
        rerun.rerun_script.query_string = query_string
        rerun.rerun_script.page_script_hash = ""
        self.socket.send(rerun.SerializeToString())
        self.session_id = ""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            message = ForwardMsg()
            message.ParseFromString(self.socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            kind = message.WhichOneof("type")
            if kind == "new_session":
                self.session_id = message.new_session.initialize.session_id
            if kind == "script_finished":
                break
        assert self.session_id, "the server never started a session"

    def send_raw(self, data: bytes) -> None:
        self.socket.send(data)

    def close(self) -> None:
        self.socket.close()


EXPECTED_LOG_ERRORS = ("Error deserializing back message",)   # Streamlit logging garbage a test sent on purpose


def unexpected_tracebacks(log: str) -> list[str]:
    """Tracebacks in a server log, except those Streamlit logs for input a test sent on purpose."""
    found = []
    lines = log.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last)"):
            before = lines[index - 1] if index else ""
            if not any(expected in before for expected in EXPECTED_LOG_ERRORS):
                found.append("\n".join(lines[max(0, index - 2): index + 30]))
    return found
