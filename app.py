"""GLA Lab: gated linear attention learns weighted gradient descent — an interactive lab.

Run with `streamlit run app.py`. This file is the frame around every page: page setup, the
navigation bar, the teacher-mode switch and the per-session upload ceiling (lab_uploads). Process-wide
settings (torch threads, the cap on concurrent runs) are made once, when lab_ui is first imported.
"""
import streamlit as st

import lab_ui
import lab_uploads

st.set_page_config(page_title="GLA Lab", page_icon=":material/call_split:", layout="wide",
                   initial_sidebar_state="expanded")

PAGES = [
    st.Page("app_pages/home.py", title="Home: gating is weighting", icon=":material/home:", default=True),
    st.Page("app_pages/lesson.py", title="Lesson: predict, then check", icon=":material/school:", url_path="lesson"),
    st.Page("app_pages/playground.py", title="Playground", icon=":material/science:", url_path="playground"),
    st.Page("app_pages/landscape.py", title="Landscape", icon=":material/landscape:", url_path="landscape"),
    st.Page("app_pages/gating_vs_linear.py", title="Gating vs linear attention", icon=":material/balance:",
            url_path="gating"),
    st.Page("app_pages/depth.py", title="Depth", icon=":material/stacks:", url_path="depth"),
    st.Page("app_pages/recurrence.py", title="Inside the recurrence", icon=":material/replay:", url_path="recurrence"),
    st.Page("app_pages/class_board.py", title="Class board", icon=":material/groups:", url_path="board"),
]

lab_uploads.install()   # a ceiling on what one session may upload (no page has an upload widget)
page = st.navigation(PAGES)
with st.sidebar:
    st.toggle("Teacher mode", key=lab_ui.keys.TEACHER, bind="query-params",
              help="Larger text for a projector, and a choice of controls to hide. The link keeps it.")
lab_ui.apply_display_mode()
lab_ui.training_workers()   # started with the first page a server draws, so the first Train finds them ready
lab_ui.flag_live_runs()
lab_ui.board.keep_seat()
page.run()
