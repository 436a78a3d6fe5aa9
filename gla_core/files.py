"""Files the command line reads and writes, on its contract: a file that cannot be read or written is
one SpecError naming the argument it came from, never a traceback.

Reading: every input is opened inside `reading(option, path, what)`, which turns any failure of a
loader (a truncated zip, a pickle, bytes that are not UTF-8, a header that does not parse) into
"option: PATH is not WHAT (reason)". Arrays in .npz files are checked from their headers, before
anything is allocated (`read_npz_array`), so a small file cannot ask for terabytes.

Writing: `check_output(option, path)` refuses a path that cannot be written (an existing directory,
a missing or read-only folder) before the work starts; `write_atomically` writes a temporary file
beside the target and renames it into place only once it is complete, so a failure never leaves a
partial file under the target's name.
"""
from __future__ import annotations

import math
import os
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import numpy as np

from .spec import SpecError

MAX_TEXT_BYTES = 1_000_000   # a spec is a few hundred bytes; the app's uploads are capped at 1 MB too
REASON_MAX_CHARS = 80        # a loader's own message is cut to this, so the error stays one short line
ARRAY_KINDS = "fiub"         # float, signed and unsigned integer, bool: what numbers can be read as float64


def _reason(error: BaseException) -> str:
    text = str(error).splitlines()[0].strip() if str(error).strip() else ""
    text = text if len(text) <= REASON_MAX_CHARS else text[:REASON_MAX_CHARS - 1] + "…"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@contextmanager
def reading(option: str, path: str | Path, what: str) -> Iterator[None]:
    """Run a loader on `path`; any failure becomes SpecError(option, ...). Input files come from users,
    and their loaders (zipfile, numpy, torch, json) raise many types, so every one is caught here."""
    try:
        yield
    except SpecError:
        raise
    except FileNotFoundError:
        raise SpecError(option, f"no such file: {path}") from None
    except PermissionError:
        raise SpecError(option, f"{path} cannot be read (permission denied)") from None
    except MemoryError:
        raise SpecError(option, f"{path} is too large to load into this machine's memory") from None
    except Exception as error:  # noqa: BLE001 - see the docstring
        raise SpecError(option, f"{path} is not {what} ({_reason(error)})") from None


def input_file(option: str, path: str | Path) -> Path:
    """`path` as an existing regular file (not a directory, device or pipe, which could block or never end)."""
    path = Path(path)
    if not path.exists():
        raise SpecError(option, f"no such file: {path}")
    if not path.is_file():
        raise SpecError(option, f"{path} is not a regular file")
    return path


def read_text(option: str, path: str | Path, what: str) -> str:
    """A small UTF-8 text file (at most MAX_TEXT_BYTES)."""
    path = input_file(option, path)
    with reading(option, path, what):
        if path.stat().st_size > MAX_TEXT_BYTES:
            raise SpecError(option, f"{path} is larger than {MAX_TEXT_BYTES} bytes; {what} is far smaller")
        data = path.read_bytes()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise SpecError(option, f"{path} is not UTF-8 text (byte 0x{data[error.start]:02x} at offset "
                                    f"{error.start})") from None


def memory_available_bytes() -> int:
    """Memory this machine can give now: MemAvailable from /proc/meminfo, else all physical memory."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _npy_header(stream: BinaryIO) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from an .npy header, without reading the data."""
    version = np.lib.format.read_magic(stream)
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    if version not in readers:
        raise ValueError(f"unsupported .npy format version {version}")
    shape, _, dtype = readers[version](stream)
    return shape, dtype


def read_npz_array(option: str, path: str | Path, name: str, max_bytes: int) -> np.ndarray:
    """The array `name` of an .npz file, as float64. Its header is checked first: a numeric dtype, and
    a size that the file really holds and that fits in max_bytes as float64, so nothing is allocated
    for an array the file only claims."""
    path = input_file(option, path)
    with reading(option, path, "an .npz file"):
        with zipfile.ZipFile(path) as archive:
            member = f"{name}.npy"
            if member not in archive.namelist():
                raise SpecError(option, f"{path} has no '{name}' array")
            with archive.open(member) as stream:
                shape, dtype = _npy_header(stream)
                header_bytes = stream.tell()
            stored_bytes = archive.getinfo(member).file_size - header_bytes
        if dtype.kind not in ARRAY_KINDS:
            raise SpecError(option, f"{path}: '{name}' holds {dtype} values, not numbers")
        count = math.prod(shape)
        if count * dtype.itemsize != stored_bytes:
            raise SpecError(option, f"{path}: '{name}' claims shape {shape} but the file holds "
                                    f"{stored_bytes} bytes of it (truncated or forged)")
        if count * 8 > max_bytes:
            raise SpecError(option, f"{path}: '{name}' of shape {shape} needs {count * 8 / 2**30:.1f} GiB as float64; "
                                    f"at most {max_bytes / 2**30:.1f} GiB can be loaded here")
        with np.load(path, allow_pickle=False) as data:
            return np.asarray(data[name], dtype=np.float64)


def check_output(option: str, path: str | Path) -> Path:
    """`path` if a file can be written there, else SpecError naming `option`. Called before the work
    starts, so a run is never lost to an output path that could not take its result."""
    path = Path(path)
    if path.is_dir():
        raise SpecError(option, f"{path} is a directory; give a file name")
    if path.exists() and not path.is_file():
        raise SpecError(option, f"{path} is not a regular file")
    folder = path.parent
    if not folder.is_dir():
        raise SpecError(option, f"the folder {folder} does not exist")
    try:  # the one reliable test of writability (permissions, read-only mounts, quotas): try it
        probe, probe_name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
        os.close(probe)
        os.unlink(probe_name)
    except OSError as error:
        raise SpecError(option, f"cannot write in {folder} ({error.strerror or type(error).__name__})") from None
    return path


def write_atomically(option: str, path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Call write(stream) on a temporary file beside `path`, then rename it onto `path` (os.replace is
    atomic on one filesystem): readers see the old file or the complete new one, never a part."""
    path = check_output(option, path)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes 0600; a plain open() would honour the umask
        os.replace(temporary, path)
    except BaseException as error:  # an interrupt too: the temporary file must not outlive the write
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise SpecError(option, f"writing {path} failed ({error.strerror or type(error).__name__})") from None
        raise
