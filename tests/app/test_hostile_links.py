"""Links made to attack the page, in a real browser: what a user typed or a link carried is shown as
typed (never as a link, an image, a formula or markup), and no link value gives a traceback."""
from urllib.parse import quote

import pytest

from tests.load import harness

pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.browser

PAGE_WAIT = 60_000
PAYLOADS = {   # URL parameter -> a value that Markdown would render as something else
    "gating": "[Your session expired: log in again](https://example.invalid/login)",
    "noise": "![](http://127.0.0.1:9/t.png)",
    "r1": "$\\frac{1}{0}$ <b>bold</b> user@www.example.com",
}


@pytest.fixture(scope="module")
def base_url():
    with harness.AppServer("hostile") as server:
        yield server.url


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=harness.VIEWPORT)
    tab = context.new_page()
    yield tab
    context.close()


def alerts(tab) -> list[str]:
    return tab.evaluate("() => Array.from(document.querySelectorAll('[data-testid=stAlert]')).map(e => e.innerText)")


def test_link_values_are_echoed_literally_and_fetch_nothing(page, base_url):
    fetched = []
    page.on("request", lambda request: fetched.append(request.url) if "127.0.0.1:9" in request.url else None)
    query = "&".join(f"{name}={quote(value)}" for name, value in PAYLOADS.items())
    harness.open_app(page, f"{base_url}/playground?{query}", PAGE_WAIT)
    shown = [text.replace("\u2060", "") for text in alerts(page)]
    for name, value in PAYLOADS.items():
        assert any(f"{name}={value!r}" in text for text in shown), (name, shown)
    rendered = page.evaluate("""() => Array.from(document.querySelectorAll(
        '[data-testid=stAlert] a, [data-testid=stAlert] img, [data-testid=stAlert] .katex, [data-testid=stAlert] b'))
        .length""")
    assert rendered == 0 and fetched == []
    assert harness.exceptions_on(page) == []


@pytest.mark.parametrize("matrix", ["[" * 1000 + "]" * 1000, "[[" + "9" * 4301 + "]]", "[" * 5000])
def test_hostile_matrix_text_gives_a_message_not_a_traceback(page, base_url, matrix):
    harness.open_app(page, f"{base_url}/playground?task_corr={quote(matrix)}", PAGE_WAIT)
    assert harness.exceptions_on(page) == []
    assert any("task_corr" in text for text in alerts(page)), alerts(page)


def test_a_repeated_key_is_named_as_repeated(page, base_url):
    harness.open_app(page, f"{base_url}/playground?d=3&d=5&d=7", PAGE_WAIT)
    assert any("gives d 3 times" in text for text in alerts(page)), alerts(page)
    assert not any("is not an allowed value" in text for text in alerts(page))
