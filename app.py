"""GLA Lab: gated linear attention learns weighted gradient descent — an interactive lab.

Run with `streamlit run app.py`. This file is the frame around every page: page setup, the
navigation bar and the teacher-mode switch. Process-wide settings (torch threads, the cap on
concurrent runs) are made once, when lab_ui is first imported.
"""
import streamlit as st

import lab_ui

st.set_page_config(page_title="GLA Lab", page_icon="🔀", layout="wide", initial_sidebar_state="expanded")

PAGES = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/playground.py", title="Playground", icon="🧪", url_path="playground"),
    st.Page("pages/landscape.py", title="Landscape", icon="⛰️", url_path="landscape"),
    st.Page("pages/gating_vs_linear.py", title="Gating vs linear attention", icon="⚖️", url_path="gating"),
    st.Page("pages/depth.py", title="Depth", icon="🪜", url_path="depth"),
    st.Page("pages/recurrence.py", title="Inside the recurrence", icon="🔁", url_path="recurrence"),
]

page = st.navigation(PAGES, position="top")
with st.sidebar:
    st.toggle("Teacher mode", key="teacher", bind="query-params",
              help="Larger text for a projector, and a choice of controls to hide. The link keeps it.")
lab_ui.apply_display_mode()
page.run()
