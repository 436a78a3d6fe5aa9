"""Page speed: each page's render after a warm-up, through Streamlit's AppTest (no browser).

Every page is opened once to warm Streamlit's caches (analytic solutions, landscapes); then each
timing is a fresh session opening the app and switching to the page, and only the page's own run is
timed. The baseline is the home page, measured the same way. Target (issue 5): under 1 s.
The time from pressing Train to the finished comparison needs a browser: tests/app/test_browser.py
records it in artifacts/browser/timings.json, which the report quotes when it is there.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from .timing import median_seconds

ROOT = Path(__file__).resolve().parent.parent
PAGE_DIR = ROOT / "app_pages"
BROWSER_TIMINGS = ROOT / "artifacts" / "browser" / "timings.json"
TARGET_SECONDS = 1.0
TIMEOUT = 60


def _render_seconds(page: str) -> float:
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    if page != "home":
        app.run()
        app.switch_page(f"app_pages/{page}.py")
    start = time.perf_counter()
    app.run()
    seconds = time.perf_counter() - start
    if app.exception:
        raise RuntimeError(f"page {page} raised: {[error.value for error in app.exception]}")
    return seconds


def run(quick: bool) -> dict:
    if not (ROOT / "app.py").is_file() or not PAGE_DIR.is_dir():
        print("  skipped: no app.py / app_pages here", flush=True)
        return {"skipped": "no app.py / app_pages"}
    # AppTest's bare-mode warning ("missing ScriptRunContext"), printed for every cached call
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").disabled = True
    pages = sorted(path.stem for path in PAGE_DIR.glob("*.py"))
    for page in pages:                       # warm-up: fill the caches every page reads
        _render_seconds(page)
    rows = []
    for page in pages:
        seconds = median_seconds(lambda: _render_seconds(page), repeats=2 if quick else 5, warmup=0)
        rows.append({"page": page, "ms": 1e3 * seconds, "of_target": seconds / TARGET_SECONDS})
    home = next((row["ms"] for row in rows if row["page"] == "home"), None)
    for row in rows:
        row["vs_home"] = row["ms"] / home if home else None
        print(f"  {row['page']:18s} {row['ms']:8.0f} ms  ({row['of_target']:.2f} of the 1 s target)", flush=True)
    if not BROWSER_TIMINGS.is_file():
        return {"rows": rows, "browser": None}
    written = time.strftime("%Y-%m-%d %H:%M", time.localtime(BROWSER_TIMINGS.stat().st_mtime))
    return {"rows": rows, "browser": json.loads(BROWSER_TIMINGS.read_text()), "browser_written": written}
