"""Scenario knobs, their bounds, TOML files, and the loopback guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.loadtest.main import parser, scenario_from
from server.loadtest.scenario import Scenario, ScenarioError, check_target, load_toml


def test_the_defaults_fit_a_small_machine_and_have_no_problems() -> None:
    s = Scenario()
    assert list(s.problems()) == []
    assert (s.rooms, s.viewers, s.senders, s.duration_s) == (20, 300, 40, 60.0)
    assert (s.gift_rate_per_s, s.gift_burst) == (10.0, 20)  # the contract's limit


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"duration_s": 0.5}, "duration_s must be 1-3600"),
        ({"duration_s": 7200.0}, "duration_s must be 1-3600"),
        ({"clients": 100}, "--clients caps them at 100"),
        ({"senders": 301}, "senders (301) are viewers too"),
        ({"overlays": 21}, "overlays (21) must not outnumber rooms"),
        ({"tap_share": 0.99, "large_share": 0.02}, "tap_share + large_share"),
        ({"workers": 0}, "workers must be 1-32"),
        ({"zipf_s": float("nan")}, "zipf_s must be a finite number"),
    ],
)
def test_problems_name_the_knob(changes: dict[str, object], problem: str) -> None:
    found = list(Scenario().replace(**changes).problems())
    assert any(problem in p for p in found), found


def test_toml_round_trip() -> None:
    s = Scenario(rooms=5, viewers=50, senders=10, zipf_s=1.3, duration_s=12.5, seed=9)
    text = s.to_toml()
    assert "rooms = 5" in text and "# live rooms, each with its own host" in text
    assert load_toml(text) == s


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rooms = ", "not valid TOML"),
        ("roooms = 3", "unknown setting 'roooms'"),
        ("rooms = 2.5", "rooms must be a whole number"),
        ("rooms = true", "rooms must be a number"),
        ('rooms = "3"', "rooms must be a number"),
        ("[scenario]\nrooms = 3", "unknown setting 'scenario'"),
    ],
)
def test_toml_mistakes_are_refused_by_name(text: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        load_toml(text, "my.toml")


def test_an_int_in_toml_is_fine_for_a_float_knob() -> None:
    assert load_toml("duration_s = 30").duration_s == 30.0


def test_flags_win_over_the_file_which_wins_over_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text("rooms = 7\nviewers = 70\n")
    ns = parser().parse_args(["--scenario", str(path), "--viewers", "80", "--duration", "9"])
    s = scenario_from(ns)
    assert (s.rooms, s.viewers, s.duration_s, s.senders) == (7, 80, 9.0, 40)


@pytest.mark.parametrize(
    ("url", "allow_remote", "expected"),
    [
        ("http://127.0.0.1:8000", False, "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/", False, "http://127.0.0.1:8000"),
        ("http://localhost:9000", False, "http://localhost:9000"),
        ("http://[::1]:8000", False, "http://[::1]:8000"),
        ("http://10.0.0.5:8000", False, "refusing 10.0.0.5"),
        ("http://example.com:8000", False, "refusing example.com"),
        ("http://127.0.0.1.example.com:80", False, "refusing"),
        ("http://10.0.0.5:8000", True, "http://10.0.0.5:8000"),
        ("https://127.0.0.1:8000", False, "must look like"),
        ("127.0.0.1:8000", False, "must look like"),
        ("http://127.0.0.1:8000/api", False, "scheme, host and port only"),
        ("http://user@127.0.0.1:8000", False, "scheme, host and port only"),
    ],
)
def test_the_loopback_guard(url: str, allow_remote: bool, expected: str) -> None:
    if expected.startswith("http://"):
        assert check_target(url, allow_remote) == expected
    else:
        with pytest.raises(ScenarioError, match=expected):
            check_target(url, allow_remote)
