"""Host limits from environment variables: defaults, overrides, and errors that name the variable."""
from dataclasses import fields
from pathlib import Path

import pytest

from gla_core import spec
from gla_core.limits import LIMITS, HostLimits, LimitError, host_limits

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_when_nothing_is_set():
    limits = HostLimits.from_env({})
    assert limits == HostLimits()
    assert (limits.max_concurrent_runs, limits.max_steps, limits.max_seconds, limits.max_tokens,
            limits.max_batch) == (2, 5000, 120.0, 2048, 256)


def test_empty_value_means_default():
    assert HostLimits.from_env({"GLA_MAX_STEPS": "", "GLA_MAX_SECONDS": "  "}) == HostLimits()


def test_overrides():
    limits = HostLimits.from_env({"GLA_MAX_CONCURRENT_RUNS": "4", "GLA_MAX_STEPS": " 200 ",
                                  "GLA_MAX_SECONDS": "2.5", "GLA_MAX_TOKENS": "512",
                                  "GLA_MAX_BATCH": "8", "UNRELATED": "x"})
    assert limits == HostLimits(max_concurrent_runs=4, max_steps=200, max_seconds=2.5, max_tokens=512,
                                max_batch=8)
    assert isinstance(limits.max_steps, int) and isinstance(limits.max_seconds, float)


def test_reads_os_environ(monkeypatch):
    monkeypatch.setenv("GLA_MAX_BATCH", "16")
    assert HostLimits.from_env().max_batch == 16


def test_range_ends_are_allowed():
    for info in LIMITS:
        for value in (info.low, info.high):
            text = str(int(value)) if info.kind is int else f"{value:g}"
            assert getattr(HostLimits.from_env({info.variable: text}), info.field) == value


def test_tokens_never_exceed_the_spec_cap():
    token_info = next(info for info in LIMITS if info.variable == "GLA_MAX_TOKENS")
    assert token_info.high == spec.MAX_TOKENS
    assert HostLimits().max_tokens <= spec.MAX_TOKENS
    with pytest.raises(LimitError, match=f"GLA_MAX_TOKENS: must be from 1 to {spec.MAX_TOKENS}"):
        HostLimits.from_env({"GLA_MAX_TOKENS": str(spec.MAX_TOKENS + 1)})


@pytest.mark.parametrize("variable,value,expected", [
    ("GLA_MAX_CONCURRENT_RUNS", "0", "from 1 to 64"),
    ("GLA_MAX_CONCURRENT_RUNS", "two", "whole number from 1 to 64"),
    ("GLA_MAX_STEPS", "-5", "from 1 to 100000"),
    ("GLA_MAX_STEPS", "1e3", "whole number"),
    ("GLA_MAX_STEPS", "2.5", "whole number"),
    ("GLA_MAX_SECONDS", "0", "from 1 to 86400"),
    ("GLA_MAX_SECONDS", "nan", "number of seconds"),
    ("GLA_MAX_SECONDS", "inf", "number of seconds"),
    ("GLA_MAX_SECONDS", "soon", "number of seconds"),
    ("GLA_MAX_BATCH", "100000", "from 1 to 8192"),
])
def test_bad_values_name_the_variable_and_range(variable, value, expected):
    with pytest.raises(LimitError) as caught:
        HostLimits.from_env({variable: value})
    message = str(caught.value)
    assert caught.value.variable == variable
    assert message.startswith(f"{variable}: ")
    assert expected in message
    assert repr(value) in message  # the bad value is echoed back
    assert isinstance(caught.value, ValueError)


def test_dataclass_defaults_match_the_table():
    assert [f.name for f in fields(HostLimits)] == [info.field for info in LIMITS]
    assert [f.default for f in fields(HostLimits)] == [info.default for info in LIMITS]
    for info in LIMITS:
        assert info.low <= info.default <= info.high, info.variable


def test_host_limits_is_read_once(monkeypatch):
    host_limits.cache_clear()
    monkeypatch.setenv("GLA_MAX_STEPS", "7")
    try:
        assert host_limits().max_steps == 7
        monkeypatch.setenv("GLA_MAX_STEPS", "8")
        assert host_limits().max_steps == 7
    finally:
        host_limits.cache_clear()


@pytest.mark.parametrize("doc", ["README.md", "docs/deploy.md"])
def test_docs_list_every_variable_with_its_default(doc):
    text = (ROOT / doc).read_text(encoding="utf-8")
    for info in LIMITS:
        row = next((line for line in text.splitlines() if line.startswith(f"| `{info.variable}`")), None)
        assert row is not None, f"{doc} has no table row for {info.variable}"
        assert f"| {info.default:g} |" in row, f"{doc}: default of {info.variable} is not {info.default:g}"
