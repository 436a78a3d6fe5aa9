"""Each preset shows what its description promises, by the theory's numbers."""
import pytest

from gla_core.spec import preset_spec
from gla_core.theory import solve


def risks(name: str) -> dict:
    solution = solve(preset_spec(name))
    return {key: solution[key]["risk"] for key in ("optimal", "linear_attention", "scalar_gla", "vector_gla")}


@pytest.mark.parametrize("name", ["default", "monotone"])
def test_monotone_relevance_lets_scalar_gla_reach_the_optimum(name):
    r = risks(name)
    assert r["scalar_gla"] == pytest.approx(r["optimal"], rel=1e-6)
    assert r["scalar_gla"] < 0.9 * r["linear_attention"]


def test_far_relevant_task_costs_a_visible_gap_but_beats_linear_attention():
    r = risks("far_relevant")
    assert r["scalar_gla"] > 1.1 * r["optimal"]
    assert r["scalar_gla"] < 0.95 * r["linear_attention"]


def test_equal_tasks_gain_nothing_from_gating():
    r = risks("equal_tasks")
    assert r["linear_attention"] == pytest.approx(r["optimal"], rel=1e-6)
    assert r["scalar_gla"] == pytest.approx(r["optimal"], rel=1e-6)


def test_per_coordinate_relevance_favours_vector_gating():
    r = risks("per_coordinate")
    assert r["vector_gla"] < 0.95 * r["scalar_gla"]
