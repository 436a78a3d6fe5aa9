"""Property tests (hypothesis) of hostile URL values on every page, through Streamlit's AppTest.

Every URL value a page reads is a field here: the widgets bound to the URL (found by recording
Streamlit's query-parameter bindings while each view renders, so a new control is covered without
listing it) and the values pages read themselves (the lesson's step, the board's class codes, the
run flag, a student link's hidden controls). A value is Markdown or formula text (links, images,
`$…$`, HTML, autolinks), deep nesting, a 4301-digit or overflowing number, or several of them under
one repeated key. For each:

- the page raises nothing;
- no link, image, HTML, formula or autolink on the page comes from the value: every Markdown text
  on the page is parsed by markdown-it (CommonMark) plus the two rules Streamlit's renderer adds
  (`$…$` math and GitHub's www/URL/e-mail autolinks), and no construct absent from the clean view
  may carry text from the value;
- a value a page echoes (a refused setting, a repeated key) reads exactly as given;
- the last valid view is kept: a refused setting shows the clean view's value, every other
  setting keeps its value, and a text box keeps the text as given.

Examples per page follow the hypothesis profile: "ci" (default) or "thorough"
(HYPOTHESIS_PROFILE=thorough, ten times as many).
"""
from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from streamlit.runtime.state.query_params import QueryParams
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Widget

import lab_ui

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60
SCALE = 10 if os.environ.get("HYPOTHESIS_PROFILE", "ci") == "thorough" else 1
EXAMPLES_PER_PAGE = 8 * SCALE

# Each page's views (a clean link), whose bound widgets are the fields: some widgets show only in a
# view (a vector relevance with per-coordinate tasks, the hide box in teacher mode, each lesson step's).
VIEWS = {
    "home": [{}],
    "lesson": [{"step": str(step)} for step in range(1, 11)],
    "playground": [{}, {"per_coord": "true"}, {"teacher": "true"}],
    "landscape": [{}],
    "gating_vs_linear": [{}],
    "depth": [{}],
    "recurrence": [{}],
    "class_board": [{}],
}
# URL values pages read themselves, beyond their bound widgets.
READ_BY_EVERY_PAGE = (lab_ui.LIVE_RUN_PARAM,)
READ_BY_PAGE = {"lesson": ("step",), "class_board": ("join", "board", "teacher_key")}
TEXT_WIDGETS = ("text_input", "text_area")

# ---------------------------------------------------------------- the page, its fields, its view
def open_view(page: str, query: dict[str, str | list[str]]) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update(query)
    at.run()
    if page != "home":
        at.switch_page(f"app_pages/{page}.py").run()
    return at


@lru_cache(maxsize=None)
def view_fields(page: str, view_index: int) -> tuple[str, ...]:
    """The URL fields of one view: the keys Streamlit bound to widgets while it rendered, plus the
    values the page reads itself, less the view's own keys."""
    return tuple(sorted(_recorded_view(page, view_index)[0]))


def echoing_fields(page: str, view_index: int) -> frozenset[str]:
    """The view's fields made through lab_ui.Controls, which names a refused or repeated value."""
    return _recorded_view(page, view_index)[1]


@lru_cache(maxsize=None)
def _recorded_view(page: str, view_index: int) -> tuple[frozenset[str], frozenset[str]]:
    bound, through_controls = [], []
    bind_widget, controls_call = QueryParams.bind_widget, lab_ui.Controls.__call__

    def recording_bind(self, param_key, *args, **kwargs):
        bound.append(param_key)
        return bind_widget(self, param_key, *args, **kwargs)

    def recording_controls(self, widget, label, key, *args, **kwargs):
        through_controls.append(key)
        return controls_call(self, widget, label, key, *args, **kwargs)

    QueryParams.bind_widget, lab_ui.Controls.__call__ = recording_bind, recording_controls
    try:
        view = VIEWS[page][view_index]
        at = open_view(page, view)
        assert not at.exception, (page, view, [error.value for error in at.exception])
    finally:
        QueryParams.bind_widget, lab_ui.Controls.__call__ = bind_widget, controls_call
    fields = set(bound) | set(READ_BY_EVERY_PAGE) | set(READ_BY_PAGE.get(page, ()))
    if "teacher" not in view:   # a student link names the controls to hide
        fields.add(f"hide_{page}")
    return frozenset(fields - set(view)), frozenset(through_controls)


@lru_cache(maxsize=None)
def clean_view(page: str, view_index: int) -> tuple[dict, dict[str, str], frozenset]:
    """The clean view's widget values and kinds, and its Markdown constructs."""
    at = open_view(page, VIEWS[page][view_index])
    values, kinds = widget_values(at)
    return values, kinds, frozenset(page_constructs(at))


def nodes(at: AppTest):
    yield from at.main
    yield from at.sidebar


def widget_values(at: AppTest) -> tuple[dict, dict[str, str]]:
    values, kinds = {}, {}
    for node in nodes(at):
        if isinstance(node, Widget) and node.key:
            values[node.key], kinds[node.key] = node.value, node.type
    return values, kinds


MARKDOWN_TYPES = {"markdown", "caption", "warning", "error", "info", "success", "toast", "title", "header",
                  "subheader", "metric", "expander"}


def markdown_texts(at: AppTest) -> list[str]:
    """Every text on the page that Streamlit renders as Markdown: bodies, labels and help."""
    texts = []
    for node in nodes(at):
        if node.type in MARKDOWN_TYPES or isinstance(node, Widget):
            proto = getattr(node, "proto", None)
            for field in ("body", "label", "help"):
                text = getattr(proto, field, None)
                if isinstance(text, str) and text:
                    texts.append(text)
    return texts


MARKDOWN = MarkdownIt("commonmark", {"html": True})
INLINE_MATH = re.compile(r"(?<!\\)\$+((?:\\.|[^$\\])+?)(?<!\\)\$+")   # remark-math: $…$ and $$…$$, unescaped
GFM_AUTOLINK = re.compile(r"(?i)\bwww\.[^\s<]+|\b[a-z][a-z0-9+.-]*://[^\s<]+|[\w.+-]+@[\w-]+\.[\w.-]+")


def constructs(markdown: str) -> set[tuple[str, str]]:
    """(kind, text) of each link, image, HTML, formula and autolink this Markdown renders."""
    found = set()
    for block in MARKDOWN.parse(markdown):
        if block.type == "html_block":
            found.add(("html", block.content))
        inline = block.children or []
        for token in inline:
            if token.type == "link_open":
                found.add(("link", token.attrGet("href") or ""))
            elif token.type == "image":
                found.add(("image", token.attrGet("src") or ""))
            elif token.type == "html_inline":
                found.add(("html", token.content))
        text = "".join(token.content for token in inline if token.type == "text")
        found |= {("autolink", match.group(0)) for match in GFM_AUTOLINK.finditer(text)}
    found |= {("math", match.group(1)) for match in INLINE_MATH.finditer(markdown)}
    return found


def page_constructs(at: AppTest) -> set[tuple[str, str]]:
    return set().union(*(constructs(text) for text in markdown_texts(at)))


def rendered_text(markdown: str) -> str:
    """What the Markdown reads as on screen (text and code), word joiners dropped."""
    parts = [token.content for block in MARKDOWN.parse(markdown) for token in block.children or []
             if token.type in ("text", "code_inline")]
    return "".join(parts).replace(lab_ui.messages.WORD_JOINER, "")


def check_hostile_view(page: str, view_index: int, hostile: dict[str, list[str]]) -> None:
    view = VIEWS[page][view_index]
    at = open_view(page, {**view, **{field: values if len(values) > 1 else values[0]
                                     for field, values in hostile.items()}})
    assert not at.exception, (page, hostile, [error.value for error in at.exception])

    # nothing rendered from the value
    clean_values, kinds, clean_constructs = clean_view(page, view_index)
    given = [value for values in hostile.values() for value in values]
    from_value = [(kind, text) for kind, text in page_constructs(at) - clean_constructs
                  if text.strip() and any(text.strip() in value for value in given)]
    assert from_value == [], (page, hostile, from_value)

    # the last valid view kept
    values, _ = widget_values(at)
    for key, value in values.items():
        if key not in clean_values or key not in view_fields(page, view_index):
            continue
        if key in hostile and kinds[key] in TEXT_WIDGETS:
            assert value in hostile[key] or value == clean_values[key], (page, key, value)
        else:
            assert value == clean_values[key], (page, key, value, "clean:", clean_values[key])

    # an echoed value reads as given: a refused setting and a repeated key are named with it
    on_screen = [rendered_text(text) for text in markdown_texts(at)]
    for field, field_values in hostile.items():
        shown_as_text = kinds.get(field) in (*TEXT_WIDGETS, "multiselect")
        if field in echoing_fields(page, view_index) and field in values and not shown_as_text:
            for value in field_values:
                assert any(repr(value) in text for text in on_screen), (page, field, value, on_screen)


# ---------------------------------------------------------------- hostile values
URLS = st.sampled_from(["https://e.invalid/login", "http://127.0.0.1:9/t.png", "javascript:window.__xss=1"])
WORDS = st.text(alphabet="abcxyz019 ", min_size=1, max_size=10).filter(lambda text: text.strip())
MARKUP = st.one_of(
    st.builds("[{}]({})".format, WORDS, URLS),
    st.builds("![{}]({})".format, WORDS, URLS),
    st.builds("${}$".format, WORDS),
    st.builds("$${}$$".format, WORDS),
    st.just(r"$\frac{1}{0}$"),
    st.builds("<b>{}</b>".format, WORDS),
    st.just("<img src=x onerror=window.__xss=1>"),
    st.builds("<{}>".format, URLS),
    URLS,
    st.sampled_from(["www.example.invalid", "user@www.example.invalid"]),
    st.builds("**{}**".format, WORDS),
)
NESTED = st.builds(lambda depth, pair, closed: pair[0] * depth + (pair[1] * depth if closed else ""),
                   st.integers(50, 3000), st.sampled_from(["[]", "()", "{}"]), st.booleans())
HUGE = st.sampled_from(["9" * 4301, "1" + "0" * 4300, "-" + "9" * 4301, "1e999", "-1e999",
                        "[[" + "9" * 4301 + "]]"])
VALUE = st.one_of(MARKUP, st.builds("{}{}{}".format, st.sampled_from(["", "0.5", "3", "scalar", "default"]),
                                    MARKUP, st.sampled_from(["", " ", "0.5"])), NESTED, HUGE)
VALUES = st.lists(VALUE, min_size=1, max_size=3)   # more than one: the key repeated


@st.composite
def hostile_links(draw, page: str):
    """(view index, {field: values}): one view of the page with one or more of its fields hostile."""
    view_index = draw(st.integers(0, len(VIEWS[page]) - 1))
    fields = view_fields(page, view_index)
    chosen = draw(st.lists(st.sampled_from(fields), min_size=1, max_size=min(4, len(fields)), unique=True))
    hostile = {field: draw(VALUES) for field in chosen}
    return view_index, hostile or {chosen[0]: ["[x](https://e.invalid)"]}


# ---------------------------------------------------------------- the tests
NAMED = ["[x](https://e.invalid)", "![](http://127.0.0.1:9/t.png)", "$x$", "[" * 1000 + "]" * 1000,
         "9" * 4301, "user@www.example.invalid <b>bold</b>"]


@pytest.mark.parametrize("page", list(VIEWS))
def test_every_url_field_of_every_view_takes_each_named_payload(page):
    """Each field alone, in the first view that has it, with the named payloads in turn (they rotate
    over the fields, so every payload meets every kind of field across the pages); every other field
    gets its key repeated."""
    seen: set[str] = set()
    position = 0
    for view_index in range(len(VIEWS[page])):
        for field in view_fields(page, view_index):
            if field in seen:
                continue
            seen.add(field)
            values = [NAMED[position % len(NAMED)]] + ([NAMED[(position + 1) % len(NAMED)]] if position % 2 else [])
            position += 1
            check_hostile_view(page, view_index, {field: values})


@pytest.mark.parametrize("page", list(VIEWS))
def test_hostile_url_values_keep_every_page_literal_and_working(page):
    @settings(max_examples=EXAMPLES_PER_PAGE, deadline=None, derandomize=SCALE == 1,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(hostile_links(page))
    @example((0, {"teacher": ["[Your session expired: log in again](https://example.invalid/login)"]}))
    def check(link):
        check_hostile_view(page, *link)

    check()


@pytest.mark.parametrize("page, field, value", [
    ("playground", "seed", "9" * 4301),
    ("playground", "seed", "1e999"),
    ("recurrence", "rc_seed", "-1e999"),
    ("lesson", "step", "9" * 4301),
    ("lesson", "step", "\u00b2"),
])
def test_numbers_that_once_raised_on_the_page_give_a_message(page, field, value):
    """Streamlit read a whole-number box's link value with int() (int(inf) raises), and the lesson parsed its
    step with int() (4,300 digits at most; "²" is a digit to str.isdigit but not to int)."""
    at = open_view(page, {field: value})
    assert not at.exception, [error.value[:200] for error in at.exception]


def test_the_checks_see_what_an_unescaped_value_would_render():
    """The construct finder is the oracle above: it must find each payload in raw Markdown, and
    nothing in the same payload once escaped as the pages do."""
    for payload, kind in [("[x](https://e.invalid)", "link"), ("![](http://127.0.0.1:9/t.png)", "image"),
                          ("$x+1$", "math"), ("<b>bold</b>", "html"), ("see www.example.invalid", "autolink"),
                          ("user@www.example.invalid", "autolink"), ("<https://e.invalid>", "link")]:
        assert kind in {found for found, _ in constructs(f"The link's d={payload} is refused")}, payload
        assert constructs(f"The link's d={lab_ui.literal(payload)} is refused") == set(), payload
        assert payload in rendered_text(lab_ui.literal(payload))
