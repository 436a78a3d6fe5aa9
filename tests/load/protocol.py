"""A Streamlit client without a browser: what one student's tab sends and receives, over the app's
WebSocket (/_stcore/stream), for load tests.

A real tab does three things the server notices: it asks for a script run when the page opens and
when a widget is used, it asks for a fragment run every `run_every` seconds while the server says so
(ForwardMsg.auto_rerun), and it keeps the connection open. `Student` does exactly that and records
the texts the page would show (alerts, progress lines, exceptions) with the time each first appeared.
It draws nothing, so on a shared test machine the server's CPU is not taken by twenty Chromium
renderers that, in a class, would run on twenty laptops.

Used from asyncio; everything stays on 127.0.0.1 and every wait is bounded.
"""
from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.asyncio.client import connect

from .harness import HOST, TERMINAL, WATCH_PATTERNS, AppServer, xsrf_cookie

TEXT_FIELDS = {"alert": "body", "progress": "text", "markdown": "body", "text": "body"}


def _texts(element) -> list[str]:
    """The visible strings of one element (alerts, progress lines, markdown, exceptions)."""
    kind = element.WhichOneof("type")
    if kind in TEXT_FIELDS:
        return [getattr(getattr(element, kind), TEXT_FIELDS[kind])]
    if kind == "exception":
        return ["Traceback (most recent call last): " + element.exception.type + ": " + element.exception.message]
    return []


@dataclass
class Student:
    """One browser tab on the page `page` with the URL parameters `query`."""

    server: AppServer
    page: str = "playground"
    query: str = ""
    seen: dict = field(default_factory=dict)       # WATCH_PATTERNS name -> time.time() first seen
    last_status: str = ""                          # the latest progress / waiting line
    texts: list = field(default_factory=list)      # every status-like text, in order (bounded)
    exceptions: list = field(default_factory=list)
    script_runs: int = 0
    fragment_runs: int = 0
    session_id: str = ""
    clicked_at: float | None = None
    events: list = field(default_factory=list)     # (time, what) of every message sent and run seen (bounded)
    disconnected_at: float | None = None           # when the server closed the connection, if it did
    headings: list = field(default_factory=list)   # every heading's text, in order (bounded)

    def __post_init__(self):
        self._buttons: dict[str, str] = {}
        self._auto: tuple[float, str] | None = None
        self._page_script_hash = ""
        self._finished = asyncio.Event()
        self._socket = None
        self._tasks: list[asyncio.Task] = []
        self._patterns = {name: re.compile(source) for name, source in WATCH_PATTERNS.items()}

    # ------------------------------------------------------------ connection
    async def open(self, timeout_s: float = 120.0) -> "Student":
        xsrf = await asyncio.to_thread(xsrf_cookie, self.server)
        self._socket = await connect(f"ws://{HOST}:{self.server.port}/_stcore/stream",
                                     subprotocols=["streamlit", xsrf],
                                     additional_headers={"Cookie": f"_streamlit_xsrf={xsrf}",
                                                         "Origin": self.server.url},
                                     max_size=2 ** 27, open_timeout=timeout_s, ping_interval=None)
        self._tasks.append(asyncio.create_task(self._receive()))
        self._tasks.append(asyncio.create_task(self._auto_rerun()))
        await self._rerun()
        await asyncio.wait_for(self._wait_script_finished(), timeout_s)
        return self

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._socket is not None:
            await self._socket.close()

    # ------------------------------------------------------------ what the tab sends
    async def _rerun(self, trigger: str | None = None, fragment_id: str = "") -> None:
        message = BackMsg()
        state = message.rerun_script
        state.query_string = self.query
        # As a tab does: the page by name until the server has said which script it is, then by its hash
        # (a rerun the server starts itself, e.g. st.rerun() in a fragment, reuses what the tab sent last).
        state.page_script_hash = self._page_script_hash
        state.page_name = "" if self._page_script_hash else self.page
        if fragment_id:
            state.fragment_id = fragment_id
            state.is_auto_rerun = True
        if trigger is not None:
            widget = state.widget_states.widgets.add()
            widget.id = trigger
            widget.trigger_value = True
        self._finished.clear()
        self._event(f"send rerun fragment={fragment_id[:8]} trigger={bool(trigger)}")
        await self._socket.send(message.SerializeToString())

    async def navigate(self, page: str, query: str = "", timeout_s: float = 120.0) -> None:
        """Go to another page in the same session (the sidebar's link), with these URL parameters."""
        self.page, self.query, self._page_script_hash = page, query, ""
        self._buttons.clear()
        await self._rerun()
        await asyncio.wait_for(self._wait_script_finished(), timeout_s)

    async def rerun(self, timeout_s: float = 120.0) -> float:
        """One script run of the page as it is (a refresh without a reload); its seconds, send to finish."""
        started = time.monotonic()
        await self._rerun()
        await asyncio.wait_for(self._wait_script_finished(), timeout_s)
        return time.monotonic() - started

    async def click(self, label: str) -> None:
        """Press the button labelled `label` (as the tab would: one script run with its trigger)."""
        assert label in self._buttons, f"no button {label!r} on the page (buttons: {sorted(self._buttons)})"
        self.clicked_at = time.time()
        await self._rerun(trigger=self._buttons[label])

    async def _auto_rerun(self) -> None:
        """Fragment runs every `interval` seconds while the server has asked for them."""
        while True:
            if self._auto is None:
                await asyncio.sleep(0.1)
                continue
            interval, fragment_id = self._auto
            await asyncio.sleep(interval)
            if self._auto == (interval, fragment_id) and self.disconnected_at is None:
                self.fragment_runs += 1
                await self._rerun(fragment_id=fragment_id)

    # ------------------------------------------------------------ what the tab receives
    async def _wait_script_finished(self) -> None:
        await self._finished.wait()

    async def _receive(self) -> None:
        try:
            await self._receive_messages()
        except Exception as error:   # the connection broke: the tab would show "Connection error"
            self._event(f"connection lost: {type(error).__name__}: {error}")
        self.disconnected_at = time.time()
        self.seen.setdefault("disconnected", self.disconnected_at)

    async def _receive_messages(self) -> None:
        async for data in self._socket:
            message = ForwardMsg()
            message.ParseFromString(data)
            kind = message.WhichOneof("type")
            if kind in ("new_session", "auto_rerun", "stop_auto_rerun", "script_finished"):
                self._event(f"recv {kind} fragments={[f[:8] for f in message.metadata.run.fragment_ids]} "
                            f"{message.auto_rerun.fragment_id[:8] if kind == 'auto_rerun' else ''}"
                            f"{message.script_finished if kind == 'script_finished' else ''}")
            if kind == "new_session":
                self.session_id = message.new_session.initialize.session_id or self.session_id
                if not message.metadata.run.fragment_ids:   # a full run: it sets its fragment timers again
                    self.script_runs += 1
                    self._auto = None
            elif kind == "navigation":   # st.navigation says which page this run shows
                self._page_script_hash = message.navigation.page_script_hash or self._page_script_hash
            elif kind == "auto_rerun":
                self._auto = (message.auto_rerun.interval, message.auto_rerun.fragment_id)
            elif kind == "stop_auto_rerun":
                if self._auto is not None and self._auto[1] in message.stop_auto_rerun.fragment_ids:
                    self._auto = None
            elif kind == "script_finished":
                self._finished.set()
            elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
                element = message.delta.new_element
                if element.WhichOneof("type") == "button":
                    self._buttons[element.button.label] = element.button.id
                elif element.WhichOneof("type") == "heading" and len(self.headings) < 2000:
                    self.headings.append(element.heading.body)
                for text in _texts(element):
                    self._note(text, element.WhichOneof("type"))

    def _event(self, what: str) -> None:
        if len(self.events) < 5000:
            self.events.append((round(time.time(), 2), what))

    def _note(self, text: str, kind: str) -> None:
        now = time.time()
        for name, pattern in self._patterns.items():
            if name not in self.seen and pattern.search(text):
                self.seen[name] = now
        if kind == "exception":
            self.exceptions.append(text[:500])
        if kind == "progress" or "Waiting for a free training slot" in text:
            self.last_status = text
            if len(self.texts) < 2000:
                self.texts.append((round(now, 2), text[:120]))

    def ended(self) -> bool:
        return any(state in self.seen for state in TERMINAL + ("disconnected",))
