"""Class board: a whole class pools its trained runs, so "unique up to scaling" is seen thirty times.

    board = open_board()                                  # GLA_DATABASE_URL, else SQLite in the data directory
    room = board.create_class("Tuesday lab")              # room.code: 20 characters, 100 random bits
    name = board.join_class(room.code)                    # "amber-heron": generated, never typed
    board.post_run(room.code, name, trainer.result())     # one transaction; a diverged run is refused
    runs = board.list_runs(room.code)                     # BoardRun rows, oldest first
    board.clear_board(room.code, room.teacher_key)        # the teacher's key, known only to their session

The module-level `post_run`, `join_class`, ... call the same methods on the process's `default_board()`.

Storage is one code path for two backends: the standard library's sqlite3 (a file, WAL mode, made on
first use) or PostgreSQL through psycopg 3 when GLA_DATABASE_URL=postgresql://..., so replicas behind
a sticky proxy share one board. The SQL is fixed text with placeholders; the only dialect difference
is the placeholder's spelling. Every operation is one transaction on its own connection, retried a
few times when the database is briefly unreachable (a restart); a post carries its own id, so a
retried post that had in fact been committed is not stored twice. Nothing personal is kept: a
student is a generated name, a class a title, and everything goes when the class expires.

No Streamlit here; the app's session glue is lab_ui/board.py.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import math
import os
import secrets
import sqlite3
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from .limits import HostLimits, host_limits
from .spec import list_presets
from .train import ANALYTIC_KEY, Status

DEFAULT_DAYS = 7.0
MAX_DAYS = 90.0
MAX_TITLE_CHARS = 80
# The settings a teacher may leave open to students: lab_ui.SETTING_LABELS' names (tests check they agree).
ADJUSTABLE_SETTINGS = ("data", "tasks", "advanced", "gating", "layers", "training")
# Class codes: 20 characters of Crockford's base32 (no I, L, O, U) = 100 random bits, in groups of 5
# so a code read off a projector can be typed. Typing is forgiving: case, spaces, dashes, O for 0, I/L for 1.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 20
CODE_GROUP = 5
_TYPO = str.maketrans({"O": "0", "I": "1", "L": "1"})
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 4.0)      # seconds between tries while the database is away (~8 s)
POSTABLE_STATUSES = (Status.FINISHED, Status.STOPPED, Status.TIME_LIMIT)
# What a posted run keeps of Trainer.result(): no history, no trajectory (a board row stays a few kB).
ANALYTIC_KEYS = ("zero", "linear_attention", "scalar_gla", "vector_gla", "optimal")

ADJECTIVES = ("amber", "azure", "bold", "brisk", "calm", "clever", "coral", "crisp", "dawn", "deft", "eager",
              "fern", "fleet", "gentle", "golden", "hazel", "honey", "ivory", "jade", "keen", "lively", "lunar",
              "maple", "mellow", "misty", "nimble", "olive", "pearl", "plucky", "quiet", "rapid", "rosy", "ruby",
              "sage", "silver", "steady", "sunny", "swift", "tidal", "vivid", "warm", "witty")
ANIMALS = ("badger", "beaver", "bison", "crane", "dolphin", "eagle", "falcon", "ferret", "finch", "gecko",
           "gibbon", "heron", "ibis", "jackal", "koala", "lemur", "lynx", "magpie", "marten", "moose", "newt",
           "ocelot", "otter", "owl", "panda", "puffin", "quail", "raven", "robin", "salmon", "seal", "stoat",
           "swan", "tapir", "tern", "toucan", "turtle", "vole", "walrus", "wombat", "wren", "yak")

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS board_classes (
        code TEXT PRIMARY KEY,
        teacher_key_hash TEXT NOT NULL,
        title TEXT NOT NULL,
        preset TEXT NOT NULL,
        open_settings TEXT NOT NULL,
        created DOUBLE PRECISION NOT NULL,
        expires DOUBLE PRECISION NOT NULL,
        closed INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS board_students (
        code TEXT NOT NULL,
        student TEXT NOT NULL,
        joined DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (code, student))""",
    """CREATE TABLE IF NOT EXISTS board_runs (
        run_id TEXT PRIMARY KEY,
        code TEXT NOT NULL,
        student TEXT NOT NULL,
        posted DOUBLE PRECISION NOT NULL,
        settings TEXT NOT NULL,
        record TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS board_runs_by_class ON board_runs (code, posted)",
)


class BoardError(ValueError):
    """Something a user asked of the board that it cannot do (bad code, closed class, limit reached,
    a diverged run). The message says what and what to do, in words a student can act on."""


class BoardUnavailable(RuntimeError):
    """The board's database could not be reached, even after retrying: nothing was changed."""


@dataclass(frozen=True)
class ClassInfo:
    """A class as its members see it. `teacher_key` is set only in create_class's answer: the one secret
    that clears the board or closes the class; the database keeps only its hash."""

    code: str
    title: str
    preset: str
    open_settings: tuple[str, ...]
    created: float
    expires: float
    closed: bool
    teacher_key: str | None = None

    @property
    def display_code(self) -> str:
        """The code in groups of five, for reading aloud or off a projector: 'A1B2C-...'."""
        return "-".join(self.code[i:i + CODE_GROUP] for i in range(0, len(self.code), CODE_GROUP))


@dataclass(frozen=True)
class BoardRun:
    """One posted run: who (generated name), when, which settings group, and its record (board_record)."""

    run_id: str
    student: str
    posted: float
    settings: str
    record: dict


# ---------------------------------------------------------------- codes, names, records
def new_class_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(text: str) -> str:
    """A typed or linked class code in its stored form. Raises BoardError for text that cannot be one."""
    code = "".join(str(text).upper().split()).replace("-", "").translate(_TYPO)
    if len(code) != CODE_LENGTH or any(char not in CODE_ALPHABET for char in code):
        raise BoardError(f"class code: expected {CODE_LENGTH} letters and digits (groups of {CODE_GROUP}, dashes "
                         "optional), as your teacher's link or projector shows it")
    return code


def random_student_name() -> str:
    return f"{secrets.choice(ADJECTIVES)}-{secrets.choice(ANIMALS)}"


def _finite_or_none(value) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


def board_record(result: dict) -> dict:
    """What the board keeps of a Trainer.result(): settings, measurements, the first layer's induced
    weights (the ones the run's cosine compares) and the analytic weights and risks they are drawn
    against. Raises BoardError for a run that must not be shared (diverged, failed, unfinished)."""
    status = result.get("status")
    if status not in POSTABLE_STATUSES:
        reason = f": {result['reason']}" if result.get("reason") else ""
        raise BoardError(f"run status: only a run that ended normally ({', '.join(POSTABLE_STATUSES)}) is posted "
                         f"to the class board; this one is {status!r}{reason}")
    test_risk = _finite_or_none(result.get("test_risk"))
    if test_risk is None or not result.get("induced_weights"):
        raise BoardError("run: it has no test risk or induced weights yet, so there is nothing to post")
    config = result["config"]
    return {
        "spec": result["spec"],
        "gating": config["gating"], "layers": config["layers"],
        "lr": config["lr"], "batch": config["batch"], "seed": config["seed"], "total_steps": config["steps"],
        "status": status,
        "test_risk": test_risk, "test_risk_se": _finite_or_none(result.get("test_risk_se")),
        "cosine": _finite_or_none(result.get("cosine")),
        "steps": int(result["steps"]), "seconds": float(result["seconds"]),
        "induced": result["induced_weights"][0],
        "analytic": {key: {"risk": result["analytic"][key]["risk"], "omega": result["analytic"][key]["omega"]}
                     for key in ANALYTIC_KEYS},
    }


def settings_key(record: dict) -> str:
    """What puts two runs in one group: the prompt, the gating and the depth (their analytic weights are
    the same); seed, steps, learning rate and batch may differ within a group."""
    return json.dumps({"spec": record["spec"], "gating": record["gating"], "layers": record["layers"]},
                      sort_keys=True)


def _numbers(values: Sequence) -> str:
    return "/".join(f"{value:g}" for value in values)


def settings_label(record: dict) -> str:
    """A short human name for a settings group: 'scalar gates, 1 layer; n 10/10/10, relevance 0.2/0.5/0.9;
    d 5, noise 0.1'."""
    spec, layers = record["spec"], record["layers"]
    model = ("linear attention" if record["gating"] == "none" else f"{record['gating']} gates")
    tasks = spec["tasks"]
    extra = "" if float(spec.get("feature_condition", 1.0)) == 1.0 else f", condition {spec['feature_condition']:g}"
    return (f"{model}, {layers} layer{'s' if layers != 1 else ''}; n {_numbers(t['n'] for t in tasks)}, relevance "
            f"{_numbers(t['corr'] for t in tasks)}; d {spec['d']}, noise {spec['noise']:g}{extra}")


def reached_optimum(record: dict) -> bool:
    """Whether a run's test risk is at the best risk its gating can reach: within 2 standard errors of it
    (noise never beats the theory), or within 1% when the run has no standard error."""
    reachable = record["analytic"][ANALYTIC_KEY[record["gating"]]]["risk"]
    se = record["test_risk_se"]
    return record["test_risk"] <= reachable + (2 * se if se is not None else 0.01 * abs(reachable))


TABLE_COLUMNS = ("name", "settings", "risk", "risk_se", "cosine", "steps", "seconds", "seed", "lr", "batch")


def table_rows(runs: Sequence[BoardRun]) -> list[dict]:
    """The board's table: one row per run (TABLE_COLUMNS), numbers as numbers so a table can sort them."""
    return [{"name": run.student, "settings": settings_label(run.record), "risk": run.record["test_risk"],
             "risk_se": run.record["test_risk_se"], "cosine": run.record["cosine"], "steps": run.record["steps"],
             "seconds": round(run.record["seconds"], 2), "seed": run.record["seed"], "lr": run.record["lr"],
             "batch": run.record["batch"]} for run in runs]


def table_csv(runs: Sequence[BoardRun]) -> str:
    """The table as CSV (an empty cell for a missing standard error or cosine). A name or label never
    starts with = + - @ (generated names, numeric labels), so a spreadsheet reads no formula from it."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=TABLE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: "" if value is None else value for key, value in row.items()} for row in table_rows(runs))
    return out.getvalue()


# ---------------------------------------------------------------- storage
@dataclass(frozen=True)
class _Dialect:
    """How one backend connects and spells a placeholder; everything else is shared SQL."""

    name: str
    connect: Callable[[], object]     # a DB-API connection in autocommit mode (we say BEGIN/COMMIT ourselves)
    placeholder: str
    transient: Callable[[BaseException], bool]   # whether an error is worth retrying: the database is away or busy


def data_dir(environ=None) -> Path:
    """Where the app keeps files (the SQLite board): GLA_DATA_DIR, else ~/.local/share/gla-lab, else, when
    home is not writable (a read-only root filesystem), a folder under the system's temporary directory."""
    environ = os.environ if environ is None else environ
    if environ.get("GLA_DATA_DIR", "").strip():
        return Path(environ["GLA_DATA_DIR"].strip())
    for candidate in (Path.home() / ".local" / "share" / "gla-lab", Path(tempfile.gettempdir()) / "gla-lab"):
        try:
            candidate.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(candidate, os.W_OK):
            return candidate
    raise BoardUnavailable("no writable data directory: set GLA_DATA_DIR to a writable folder")


def _sqlite_dialect(path: Path) -> _Dialect:
    path.parent.mkdir(parents=True, exist_ok=True)

    def connect():
        # timeout: wait up to 10 s for another process's write instead of failing at once.
        connection = sqlite3.connect(path, timeout=10.0, isolation_level=None)
        # WAL with synchronous=NORMAL: a crash of the app loses nothing committed and never corrupts the file;
        # only a power cut may lose the last commits. It spares a disk flush per post.
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    def transient(error: BaseException) -> bool:   # busy past the timeout, or the file briefly unreachable
        return isinstance(error, sqlite3.OperationalError) and any(
            word in str(error) for word in ("locked", "busy", "unable to open", "disk I/O"))

    return _Dialect("sqlite", connect, "?", transient)


def _postgres_dialect(url: str) -> _Dialect:
    import psycopg   # only a PostgreSQL deployment needs it loaded

    def connect():
        return psycopg.connect(url, autocommit=True, connect_timeout=5)

    def transient(error: BaseException) -> bool:   # refused, dropped or restarting connections
        return isinstance(error, psycopg.OperationalError)

    return _Dialect("postgresql", connect, "%s", transient)


class Board:
    """The class board on one database: SQLite at `sqlite_path`, or PostgreSQL at `url`
    (postgresql://...). The schema is made on first use. Thread- and process-safe: every method is
    one transaction on a connection of its own."""

    def __init__(self, url: str | None = None, sqlite_path: Path | str | None = None,
                 limits: HostLimits | None = None, clock: Callable[[], float] = time.time):
        if url and not url.startswith(("postgresql://", "postgres://")):
            raise BoardError(f"GLA_DATABASE_URL: must start with postgresql:// (or be unset for SQLite), got "
                             f"{url.split(':', 1)[0]!r}://...")
        self.dialect = (_postgres_dialect(url) if url
                        else _sqlite_dialect(Path(sqlite_path) if sqlite_path else data_dir() / "board.sqlite3"))
        self._limits = limits
        self.clock = clock
        self._create_schema()

    @property
    def limits(self) -> HostLimits:
        return self._limits if self._limits is not None else host_limits()

    # -------------------------------------------------------------- transactions
    @contextmanager
    def _transaction(self) -> Iterator[Callable]:
        """One transaction on a fresh connection; yields execute(sql, *params) -> cursor."""
        connection = self.dialect.connect()
        try:
            connection.execute("BEGIN")

            def execute(sql: str, *params):
                return connection.execute(sql.replace("?", self.dialect.placeholder), params)

            yield execute
            connection.execute("COMMIT")
        except BaseException:
            try:
                connection.execute("ROLLBACK")
            except Exception:   # the connection is gone: the server rolls the transaction back itself
                pass
            raise
        finally:
            connection.close()

    def _retrying(self, work: Callable[[Callable], object]):
        """work(execute) in one transaction, tried again after each delay while the database is away."""
        for delay in (*RETRY_DELAYS, None):
            try:
                with self._transaction() as execute:
                    return work(execute)
            except Exception as error:
                if not self.dialect.transient(error):
                    raise
                if delay is None:
                    raise BoardUnavailable(f"the class board's database did not answer ({type(error).__name__}: "
                                           f"{error}); nothing was changed: try again in a minute") from error
                time.sleep(delay)

    def _create_schema(self) -> None:
        if self.dialect.name == "sqlite":
            connection = self.dialect.connect()
            try:   # WAL: readers (the projector's refresh) never block a student's post; it persists in the file
                connection.execute("PRAGMA journal_mode=WAL")
            finally:
                connection.close()

        def create(execute):
            for statement in SCHEMA:
                execute(statement)

        try:
            self._retrying(create)
        except BoardUnavailable:
            raise
        except Exception:   # two replicas creating the same PostgreSQL table at once: the other one won
            self._retrying(create)

    # -------------------------------------------------------------- classes
    def create_class(self, title: str, preset: str = "default", open_settings: Sequence[str] = ADJUSTABLE_SETTINGS,
                     days: float = DEFAULT_DAYS) -> ClassInfo:
        """A new class. Its answer carries the teacher's key, which is never stored (only its hash).
        Expired classes are deleted here, runs and all."""
        title = " ".join(str(title).split())
        if not 1 <= len(title) <= MAX_TITLE_CHARS:
            raise BoardError(f"class name: 1 to {MAX_TITLE_CHARS} characters, got {len(title)}")
        if preset not in list_presets():
            raise BoardError(f"preset: unknown preset {preset!r} (choose from: {', '.join(list_presets())})")
        unknown = sorted(set(open_settings) - set(ADJUSTABLE_SETTINGS))
        if unknown:
            raise BoardError(f"open settings: unknown {', '.join(unknown)} (choose from: "
                             f"{', '.join(ADJUSTABLE_SETTINGS)})")
        if not (isinstance(days, (int, float)) and 1 / 24 <= days <= MAX_DAYS):
            raise BoardError(f"expires after: from 1 hour to {MAX_DAYS:g} days, got {days!r} days")
        now = self.clock()
        info = ClassInfo(code=new_class_code(), title=title, preset=preset,
                         open_settings=tuple(name for name in ADJUSTABLE_SETTINGS if name in set(open_settings)),
                         created=now, expires=now + days * 86400.0, closed=False,
                         teacher_key=secrets.token_urlsafe(24))

        def create(execute):
            self._delete_expired(execute, now)
            execute("INSERT INTO board_classes (code, teacher_key_hash, title, preset, open_settings, created, "
                    "expires, closed) VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
                    info.code, _hash(info.teacher_key), info.title, info.preset, json.dumps(info.open_settings),
                    info.created, info.expires)

        self._retrying(create)
        return info

    @staticmethod
    def _delete_expired(execute, now: float) -> None:
        for table in ("board_runs", "board_students"):   # fixed names, not user input
            execute(f"DELETE FROM {table} WHERE code IN (SELECT code FROM board_classes WHERE expires <= ?)", now)
        execute("DELETE FROM board_classes WHERE expires <= ?", now)

    def _class_row(self, execute, code: str, for_posting: bool = False) -> ClassInfo:
        """The class with this (normalised) code, or BoardError: unknown, expired, or (for_posting) closed."""
        row = execute("SELECT code, title, preset, open_settings, created, expires, closed FROM board_classes "
                      "WHERE code = ?", code).fetchone()
        if row is None:
            raise BoardError("class code: no class has this code; check it with your teacher (classes are deleted "
                             "when they expire)")
        info = ClassInfo(code=row[0], title=row[1], preset=row[2], open_settings=tuple(json.loads(row[3])),
                         created=row[4], expires=row[5], closed=bool(row[6]))
        if info.expires <= self.clock():
            raise BoardError("class code: this class has expired; ask your teacher for a new one")
        if for_posting and info.closed:
            raise BoardError("class: your teacher has closed this class; its board takes no more runs")
        return info

    def _lock_class(self, execute, code: str) -> ClassInfo:
        """The open class, locked until the transaction ends. Writing first takes the lock (PostgreSQL: the
        class's row; SQLite: the database), so what the transaction then counts cannot change before it
        writes: thirty students posting at once never pass a limit, two joining never get one name."""
        execute("UPDATE board_classes SET closed = closed WHERE code = ?", code)
        return self._class_row(execute, code, for_posting=True)

    def get_class(self, code: str) -> ClassInfo:
        """The class (title, preset, open settings, expiry) by code; BoardError if unknown or expired."""
        code = normalise_code(code)
        return self._retrying(lambda execute: self._class_row(execute, code))

    def join_class(self, code: str) -> str:
        """Join an open class: returns the student's generated name, unique in the class."""
        code = normalise_code(code)

        def join(execute):
            self._lock_class(execute, code)
            taken = {row[0] for row in execute("SELECT student FROM board_students WHERE code = ?", code)}
            name = next((candidate for candidate in (random_student_name() for _ in range(50))
                         if candidate not in taken), None)
            while name is None or name in taken:   # a crowded class: a number keeps names unique
                name = f"{random_student_name()}-{secrets.randbelow(900) + 100}"
            execute("INSERT INTO board_students (code, student, joined) VALUES (?, ?, ?)", code, name, self.clock())
            return name

        return self._retrying(join)

    def _teacher(self, execute, code: str, teacher_key: str) -> None:
        row = execute("SELECT teacher_key_hash FROM board_classes WHERE code = ?", code).fetchone()
        if row is None or not secrets.compare_digest(row[0], _hash(teacher_key)):
            raise BoardError("teacher key: only the session that created this class can clear or close it")

    def is_teacher(self, code: str, teacher_key: str) -> bool:
        """Whether this key is the class's teacher key (a teacher link reopening the class's controls)."""
        code = normalise_code(code)

        def check(execute):
            try:
                self._teacher(execute, code, teacher_key)
            except BoardError:
                return False
            return True

        return self._retrying(check)

    def clear_board(self, code: str, teacher_key: str) -> int:
        """Delete every run on the class's board (students stay joined). Returns how many were deleted."""
        code = normalise_code(code)

        def clear(execute):
            self._teacher(execute, code, teacher_key)
            return execute("DELETE FROM board_runs WHERE code = ?", code).rowcount

        return self._retrying(clear)

    def close_class(self, code: str, teacher_key: str) -> None:
        """No more joins or posts; the board stays readable until the class expires."""
        code = normalise_code(code)

        def close(execute):
            self._teacher(execute, code, teacher_key)
            execute("UPDATE board_classes SET closed = 1 WHERE code = ?", code)

        self._retrying(close)

    # -------------------------------------------------------------- runs
    def post_run(self, class_code: str, student: str, result: dict) -> str:
        """Post a finished run (Trainer.result()) to the class board, in one transaction. Returns its run id.
        Raises BoardError for a diverged or failed run, an unknown, expired or closed class, a name that
        has not joined it, or a limit reached (GLA_MAX_BOARD_RUNS_PER_STUDENT / _PER_CLASS)."""
        code = normalise_code(class_code)
        record = board_record(result)
        run_id = secrets.token_hex(12)   # chosen before the first try: a retried post cannot land twice
        per_student, per_class = self.limits.max_board_runs_per_student, self.limits.max_board_runs_per_class

        def post(execute):
            self._lock_class(execute, code)
            if execute("SELECT 1 FROM board_runs WHERE run_id = ?", run_id).fetchone():
                return   # an earlier try committed before its answer was lost
            if not execute("SELECT 1 FROM board_students WHERE code = ? AND student = ?", code, student).fetchone():
                raise BoardError("student: this name has not joined the class; join it again with the class link")
            mine, everyone = execute("SELECT COALESCE(SUM(CASE WHEN student = ? THEN 1 ELSE 0 END), 0), COUNT(*) "
                                     "FROM board_runs WHERE code = ?", student, code).fetchone()
            if mine >= per_student:
                raise BoardError(f"board limit: you have posted {mine} runs, the most this server allows one student "
                                 f"(GLA_MAX_BOARD_RUNS_PER_STUDENT = {per_student}); withdraw one to post another")
            if everyone >= per_class:
                raise BoardError(f"board limit: the class board holds {everyone} runs, the most this server allows "
                                 f"(GLA_MAX_BOARD_RUNS_PER_CLASS = {per_class}); your teacher can clear it")
            execute("INSERT INTO board_runs (run_id, code, student, posted, settings, record) VALUES (?, ?, ?, ?, ?, ?)",
                    run_id, code, student, self.clock(), settings_key(record), json.dumps(record))

        self._retrying(post)
        return run_id

    def withdraw_run(self, class_code: str, student: str, run_id: str) -> bool:
        """Take one of your own runs off the board. Returns whether there was such a run."""
        code = normalise_code(class_code)
        return self._retrying(lambda execute: execute(
            "DELETE FROM board_runs WHERE run_id = ? AND code = ? AND student = ?", run_id, code, student).rowcount > 0)

    def list_runs(self, class_code: str) -> list[BoardRun]:
        """Every run on this class's board, oldest first (and no other class's)."""
        code = normalise_code(class_code)

        def read(execute):
            self._class_row(execute, code)
            return [BoardRun(run_id=row[0], student=row[1], posted=row[2], settings=row[3], record=json.loads(row[4]))
                    for row in execute("SELECT run_id, student, posted, settings, record FROM board_runs "
                                       "WHERE code = ? ORDER BY posted, run_id", code)]

        return self._retrying(read)


def _hash(teacher_key: str) -> str:
    return hashlib.sha256(str(teacher_key).encode()).hexdigest()


@functools.cache
def default_board() -> Board:
    """The process's board: PostgreSQL when GLA_DATABASE_URL is set, else SQLite under data_dir()."""
    return Board(url=os.environ.get("GLA_DATABASE_URL", "").strip() or None)


def create_class(title: str, preset: str = "default", open_settings: Sequence[str] = ADJUSTABLE_SETTINGS,
                 days: float = DEFAULT_DAYS) -> ClassInfo:
    return default_board().create_class(title, preset, open_settings, days)


def get_class(code: str) -> ClassInfo:
    return default_board().get_class(code)


def join_class(code: str) -> str:
    return default_board().join_class(code)


def post_run(class_code: str, student: str, result: dict) -> None:
    """Post a finished run to the class board (Board.post_run); raises BoardError or BoardUnavailable."""
    default_board().post_run(class_code, student, result)


def withdraw_run(class_code: str, student: str, run_id: str) -> bool:
    return default_board().withdraw_run(class_code, student, run_id)


def list_runs(class_code: str) -> list[BoardRun]:
    return default_board().list_runs(class_code)


def is_teacher(code: str, teacher_key: str) -> bool:
    return default_board().is_teacher(code, teacher_key)


def clear_board(code: str, teacher_key: str) -> int:
    return default_board().clear_board(code, teacher_key)


def close_class(code: str, teacher_key: str) -> None:
    default_board().close_class(code, teacher_key)
