"""Teacher mode and the URL-bound controls: the projector's styles, the replays' autoplay, the
teacher's hidden controls, the student link, the hide-the-theory switch, the phone check."""
from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Callable
from urllib.parse import urlencode

import streamlit as st

from lab_ui import keys
from lab_ui.board import class_rules
from lab_ui.messages import literal

BASE_CSS = """
<style>
/* Hidden controls (teacher mode) keep working but take no space. */
[class*="st-key-hidden_"] { display: none !important; }
/* Narrower side padding: charts get the width on a 1024 px projector. */
.stMainBlockContainer { padding-left: 2rem; padding-right: 2rem; padding-top: 2.5rem; }
</style>
"""
PROJECTOR_CSS = """
<style>
.stApp { font-size: 1.3rem; }
.stApp h1 { font-size: 3rem; }
.stApp .stMarkdown p, .stApp label p, .stApp .stCaption { font-size: 1.3rem !important; }
.stApp .katex { font-size: 1.35em; }
.stApp .katex-display { overflow-x: auto; overflow-y: hidden; padding-bottom: 0.3rem; }
.stApp .stButton button p, .stApp .stDownloadButton button p { font-size: 1.3rem !important; }
.stApp .stButton button { min-height: 3rem; }
.stApp [data-testid="stMetricValue"] { font-size: 2.6rem; }
</style>
"""

# Plays each replay once by itself, in the browser: a figure with a replay id (figures.training_replay's
# layout.meta.replay) gets its Play button pressed the first time this tab shows that id. One watcher per
# tab, polling the page 3 times a second; the ids already played are kept in the tab's sessionStorage.
AUTOPLAY_SCRIPT = """<script>
(function () {
  const host = window.parent || window;
  if (host.__glaReplayWatcher) return;
  host.__glaReplayWatcher = host.setInterval(function () {
    const played = JSON.parse(host.sessionStorage.getItem("gla-played") || "[]");
    host.document.querySelectorAll(".js-plotly-plot").forEach(function (chart) {
      const id = chart.layout && chart.layout.meta && chart.layout.meta.replay;
      const button = chart.querySelector(".updatemenu-button");
      if (!id || !button || played.includes(id)) return;
      played.push(id);
      host.sessionStorage.setItem("gla-played", JSON.stringify(played.slice(-100)));
      button.dispatchEvent(new MouseEvent("click", {bubbles: true}));
    });
  }, 300);
})();
</script>"""


def teacher_mode() -> bool:
    return bool(st.session_state.get(keys.TEACHER, False))


def apply_display_mode() -> None:
    """The styles for hidden controls and, in teacher mode, projector-sized text; the replays' autoplay."""
    st.html(BASE_CSS + (PROJECTOR_CSS if teacher_mode() else ""))
    st.html(AUTOPLAY_SCRIPT, unsafe_allow_javascript=True, width="content")


class Controls:
    """The URL-bound widgets of one page. In teacher mode the teacher picks controls to hide: a
    hidden control keeps working (its value still comes from the URL) but is not shown.

    hideable: name -> what it hides, for what the teacher may hide (the names are shown as they are:
    URL values of choice widgets are the shown labels, so they stay short words); a widget belongs to
    the name given as `hide_as` (several widgets can share one, e.g. every task's size), or else to its key.

    follows_class: on a page whose runs go to the class board, a student in a class trains the class's
    preset, and the settings the teacher did not open are fixed at its values: shown, disabled, and
    never read from the URL or the browser.
    """

    def __init__(self, page: str, hideable: dict[str, str], follows_class: bool = False):
        self.hidden: set[str] = set()
        self.class_rules = class_rules() if follows_class else None
        # the preset box is fixed with the first fixed setting: it would change them all
        locked = self.class_rules.locked if self.class_rules else frozenset()
        self.locked: set[str] = {"preset", *locked} if locked else set()
        if self.class_rules:
            fixed = (f"fixes the preset and {', '.join(sorted(locked))}" if locked
                     else "leaves every setting to you")
            st.sidebar.info(f"Your class, {literal(self.class_rules.title)}, starts from the preset "
                            f"**{self.class_rules.preset}** and {fixed}.", icon=":material/groups:")
        key = keys.HIDDEN_CONTROLS_PREFIX + page
        if teacher_mode():
            with st.sidebar:
                self.hidden = set(st.multiselect(
                    "Hide these controls", options=list(hideable), key=key, bind="query-params",
                    help="Hidden controls keep their values; the link keeps the choice. "
                         + "; ".join(f"**{name}**: {label}" for name, label in hideable.items())))
                st.text_input("Student link", value=student_link(), disabled=False, key=f"student_link_{page}",
                              help="This page with these settings and these controls hidden, without teacher "
                                   "mode: copy it for the class.")
        else:   # a student link: the teacher's choice of hidden controls, without the box that makes it
            self.hidden = {name for name in st.query_params.get_all(key) if name in hideable}

    def group(self, *names: str):
        """A container for a heading or section that is hidden when all of `names` are."""
        hidden = set(names) <= self.hidden
        return st.container(key=f"hidden_group_{'_'.join(names)}") if hidden else nullcontext()

    def __call__(self, widget: Callable, label: str, key: str, hide_as: str | None = None, **kwargs) -> Any:
        hidden = (hide_as or key) in self.hidden
        if (hide_as or key) in self.locked:
            with st.container(key=f"hidden_{key}") if hidden else nullcontext():
                return self._fixed(widget, label, key, kwargs)
        from_link, repeated = st.query_params.get(key), st.query_params.get_all(key)   # before the widget rewrites them
        with st.container(key=f"hidden_{key}") if hidden else nullcontext():
            value = widget(label, key=key, bind="query-params", **kwargs)
        shown = f"{value:g}" if isinstance(value, float) else value
        if len(repeated) > 1 and widget is not st.multiselect:
            st.warning(f"The link gives {key} {len(repeated)} times ({literal(', '.join(map(repr, repeated)))}); "
                       f"a setting takes one value: showing {literal(shown)}.")
        # Streamlit drops a link value the widget cannot take and shows its default: say so.
        elif from_link is not None and _link_value_refused(from_link, value):
            st.warning(f"The link's {key}={literal(repr(from_link))} is not an allowed value for {label.lower()}; "
                       f"showing {literal(shown)} instead.")
        return value


    def _fixed(self, widget: Callable, label: str, key: str, kwargs: dict) -> Any:
        """A setting the class fixes: its default (the class preset's value, since the preset box is
        fixed too), shown in a disabled copy of its widget that is bound to nothing."""
        if "value" in kwargs:
            value = kwargs["value"]
        else:
            value = list(kwargs["options"])[kwargs.get("index", 0)]
        shown = {name: option for name, option in kwargs.items() if name not in ("on_change", "args", "help")}
        widget(label, key=f"class_fixed_{key}", disabled=True, help="Fixed by your class.", **shown)
        return value


def student_link() -> str:
    """The page's address with its settings, less teacher mode and this tab's own marks (its live run, its
    seat in a class)."""
    base = (st.context.url or "").split("?")[0]
    query = [(name, value) for name in st.query_params if name not in (keys.TEACHER, keys.LIVE_RUN_PARAM, keys.SEAT)
             for value in st.query_params.get_all(name)]
    return base + ("?" + urlencode(query) if query else "")


def _link_value_refused(from_link: str, value: Any) -> bool:
    """Whether the widget ended up with something other than the URL's text (lists are not checked)."""
    if isinstance(value, (list, tuple)) or str(value).lower() == from_link.lower():
        return False
    try:
        return float(from_link) != float(value)
    except (TypeError, ValueError):
        return True


def on_phone() -> bool:
    """A phone browser (by its user agent): pages show precomputed results instead of training."""
    return "Mobi" in (st.context.headers.get("User-Agent") or "")


def theory_switch(controls: "Controls") -> bool:
    """The sidebar switch that hides analytic markers, lines and the cosine until a run ends, so a class
    can predict first; bound to the URL, so a teacher's link sets it."""
    with st.sidebar:
        return controls(st.toggle, "Hide the theory until the run ends", keys.THEORY_HIDDEN, hide_as="theory",
                        value=False, help="Analytic weights, risk lines and the cosine appear when the run ends: "
                                          "predict first, then check.")
