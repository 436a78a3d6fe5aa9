"""A ceiling on what one session may park on the server through Streamlit's upload endpoint.

Streamlit accepts a PUT to /_stcore/upload_file/<session>/<file id> from any live session (with the
XSRF token), whether or not a page shows an st.file_uploader: the ids come from a WebSocket request
that any client can send. server.maxUploadSize caps each file, not how many a session keeps, so one
session could hold hundreds of megabytes (200 files of 0.9 MB: the server grew by 182 MiB). No GLA
Lab page has an upload widget; the ceiling below leaves room for one small file widget while bounding
every session to MAX_SESSION_UPLOAD_BYTES.

The upload route holds on to the runtime's one MemoryUploadedFileManager object, so the ceiling is
put on that object itself (install, called by the frame on every script run; it acts from the first
script run of the process on). A refused upload gets HTTP 413 and its bytes are dropped at once.
"""
from __future__ import annotations

import threading

from starlette.exceptions import HTTPException
from streamlit.runtime import Runtime
from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
from streamlit.runtime.uploaded_file_manager import UploadedFileRec

MAX_SESSION_UPLOAD_FILES = 4                  # files one session holds at once
MAX_SESSION_UPLOAD_BYTES = 2 * 1024 * 1024    # their bytes together (server.maxUploadSize is 1 MB a file)

_CEILING_LOCK = threading.Lock()


class SessionCappedUploads(MemoryUploadedFileManager):
    """Streamlit's in-memory upload store, refusing a file that would take its session past
    MAX_SESSION_UPLOAD_FILES files or MAX_SESSION_UPLOAD_BYTES bytes (a file replacing one of the same
    id counts once). Deleting a file, or the session ending, frees its share."""

    def add_file(self, session_id: str, file: UploadedFileRec) -> None:
        with _CEILING_LOCK:   # the check and the store together: racing uploads cannot both pass
            with self._lock:
                held = {file_id: len(rec.data) for file_id, rec in self.file_storage.get(session_id, {}).items()
                        if file_id != file.file_id}
            if len(held) + 1 > MAX_SESSION_UPLOAD_FILES:
                raise HTTPException(status_code=413,
                                    detail=f"A session holds at most {MAX_SESSION_UPLOAD_FILES} uploaded files")
            if sum(held.values()) + len(file.data) > MAX_SESSION_UPLOAD_BYTES:
                raise HTTPException(status_code=413,
                                    detail=f"A session holds at most {MAX_SESSION_UPLOAD_BYTES} uploaded bytes")
            super().add_file(session_id, file)


def install() -> None:
    """Put the per-session ceiling on the running server's upload store (once; later calls see it is
    there). The object keeps its identity and its files, so the upload route, which holds it, obeys."""
    if not Runtime.exists():   # a script run without a server (AppTest): no upload endpoint
        return
    manager = Runtime.instance().uploaded_file_mgr
    if type(manager) is MemoryUploadedFileManager:
        manager.__class__ = SessionCappedUploads
