"""Lesson: the paper's claims in ten steps. Each step asks a question, the student commits to a guess,
and the reveal checks it against the theory or a short training run for the settings on screen.
The steps are drawn by lab_ui/lesson_steps.py, their questions and answers come from gla_core/lesson.py;
this page shows one step at a time, with the step in the URL (?step=4)."""
import hashlib

import streamlit as st

import lab_ui
from gla_core import lesson
from lab_ui import keys
from lab_ui.lesson_steps import STEPS


def current_step() -> int:
    text = st.query_params.get("step", "1")
    if not (text.isascii() and text.isdigit() and len(text) <= 3 and 1 <= int(text) <= len(STEPS)):
        shown = text if len(text) <= 40 else f"{text[:40]}… ({len(text)} characters)"
        st.warning(f"The link's step={lab_ui.literal(repr(shown))} is not a step of this lesson (1 to {len(STEPS)}); "
                   "showing step 1.")
        return 1
    return int(text)


def go_to(step: int) -> None:
    st.query_params["step"] = str(step)


def ask(step: int, question: lesson.Question, answer, settings: str) -> None:
    """The question; after the student's choice (or the teacher's Show), the computed answer."""
    key = f"lesson_q{step}_" + hashlib.sha256(settings.encode()).hexdigest()[:12]
    st.subheader("Your prediction")
    choice = st.radio(question.prompt, question.choices, index=None, key=key)
    shown = st.session_state.setdefault(keys.LESSON_SHOWN, set())
    hold = False
    if lab_ui.teacher_mode():
        hold_col, show_col = st.columns(2)
        hold = hold_col.toggle("Hold the reveal until the class has voted", value=True, key="lesson_hold")
        if show_col.button("Show the answer", key=f"show_{key}", icon=":material/visibility:"):
            shown.add(key)
    if key not in shown and (choice is None or hold):
        return
    result = answer()
    correct = question.choices[result.correct]
    if choice is None:
        st.info(f"**The answer: {correct}.** {result.why}", icon=":material/lightbulb:")
    elif choice == correct:
        st.success(f"**Right: {correct}.** {result.why}", icon=":material/check_circle:")
    else:
        st.error(f"**Not this time.** The answer is **{correct}**. {result.why}", icon=":material/cancel:")


step = current_step()
title, draw = STEPS[step - 1]
st.title(f"Lesson, step {step} of {len(STEPS)}: {title}")
st.progress(step / len(STEPS))
ask(step, *draw())
back_col, next_col, _ = st.columns([1, 1, 3])
back_col.button("Back", on_click=go_to, args=(step - 1,), disabled=step == 1, icon=":material/arrow_back:",
                width="stretch", key="lesson_back")
next_col.button("Next", on_click=go_to, args=(step + 1,), disabled=step == len(STEPS), type="primary",
                icon=":material/arrow_forward:", width="stretch", key="lesson_next")
