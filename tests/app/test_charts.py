"""lab_ui.chart: a chart's figure is rebuilt only when what it draws changes (a live panel redraws every
second in every training or waiting tab; building Plotly figures is what made that expensive)."""
from functools import partial

import numpy as np
import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

import lab_ui


def chart_page() -> None:
    """The script AppTest runs (its body alone, so it imports what it uses): one chart of the values in
    session_state, whose builder notes in session_state["built"] each time it is called."""
    from functools import partial

    import plotly.graph_objects as go
    import streamlit as st

    import lab_ui

    def line(values) -> go.Figure:
        st.session_state["built"] = st.session_state.get("built", []) + [list(values)]
        return go.Figure(go.Scatter(y=list(values)))

    lab_ui.chart(partial(line, st.session_state.get("values", [1.0, 2.0, 3.0])), "A line.", key="line")


def test_a_chart_is_rebuilt_only_when_its_data_change():
    at = AppTest.from_function(chart_page, default_timeout=30)
    at.run()
    at.run()
    assert not at.exception
    assert at.session_state["built"] == [[1.0, 2.0, 3.0]]           # the second run reused the figure
    assert '"y":[1.0,2.0,3.0]' in at.get("plotly_chart")[0].proto.spec.replace(" ", "")   # ... and drew it
    at.session_state["values"] = [1.0, 2.0, 4.0]
    at.run()
    assert at.session_state["built"] == [[1.0, 2.0, 3.0], [1.0, 2.0, 4.0]]
    assert '"y":[1.0,2.0,4.0]' in at.get("plotly_chart")[0].proto.spec.replace(" ", "")
    at.session_state["teacher"] = True                                 # projector fonts: a different figure
    at.run()
    assert len(at.session_state["built"]) == 3
    assert '"size":18' in at.get("plotly_chart")[0].proto.spec.replace(" ", "")


def test_fingerprints_see_every_number():
    long = np.zeros(5000)
    changed = long.copy()
    changed[2500] = 1e-9                                               # repr() abbreviates both to the same text
    assert lab_ui.charts.fingerprint(partial(go.Scatter, y=long)) == lab_ui.charts.fingerprint(partial(go.Scatter, y=long.copy()))
    assert lab_ui.charts.fingerprint(partial(go.Scatter, y=long)) != lab_ui.charts.fingerprint(partial(go.Scatter, y=changed))
    assert (lab_ui.charts.fingerprint(partial(go.Scatter, {"y": [1, 2]}))
            != lab_ui.charts.fingerprint(partial(go.Scatter, {"y": [1, 3]})))
    assert lab_ui.charts.fingerprint(partial(go.Scatter, [1])) != lab_ui.charts.fingerprint(partial(go.Bar, [1]))


def test_a_recipe_with_arguments_that_are_not_data_is_refused():
    with pytest.raises(TypeError, match="plain data, got object"):
        lab_ui.charts.fingerprint(partial(go.Scatter, object()))
