"""Every name the app keeps in a session's state or owns in the URL, in one place.

Widget keys are also URL parameters where the widget binds to the query string (bind="query-params"):
those of the settings are the settings' own names (`d`, `gating`, `steps`, ...) and live beside their
widgets in lab_ui.settings; the ones here are the app's own.
"""

# URL parameters (and the keys of the widgets bound to them)
TEACHER = "teacher"                 # teacher mode's switch (app.py)
THEORY_HIDDEN = "hide_theory"       # the hide-the-theory-until-the-run-ends switch (controls.theory_switch)
LIVE_RUN_PARAM = "training"             # set while the session has a run alive (runs.flag_live_runs)
HIDDEN_CONTROLS_PREFIX = "hide_"    # hide_<page>: the controls a teacher hid on that page
STOP_AT_TARGET = "stop_at_target"   # the Depth page's switch: each model stops once at its L-step target
SEAT = "seat"                       # CODE.name.mac: this tab's place in its class, kept over a reload (board.keep_seat)

# st.session_state keys
LIVE_RUN_FLAGGED = "_live_run_flagged"    # this session put LIVE_RUN_PARAM in the URL itself
FIGURE_MEMO = "_figure_memo"              # chart key -> (fingerprint, figure) last drawn (charts.chart)
LAST_REFRESH = "_last_refresh"            # the live panel's one rerun as its run starts, pauses, ends
PLAYGROUND_ENDED = "_playground_ended"    # (run id, settings) of the Playground run that ended last
BOARD_CLASS = "board_class"               # the joined class's code (board.joined_class)
BOARD_STUDENT = "board_student"           # this tab's generated name in that class
BOARD_TEACHER = "board_teacher"           # (code, teacher key) of the class this tab created or opened
BOARD_MESSAGE = "_board_message"          # a message the Class board shows once after a rerun
LESSON_PICKS = "lesson_picks"             # what the student picked in the Lesson, kept across its steps
LESSON_SHOWN = "lesson_shown"             # the Lesson's questions whose answer the teacher has shown
