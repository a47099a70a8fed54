"""Signed tokens: a round trip works; anything forged, altered, expired or odd reads as None."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import pytest

from server.domain import tokens
from server.domain.money import RoomId, UserId
from server.domain.tokens import (
    TOKEN_CHARS_MAX,
    OverlayClaim,
    UserClaim,
    issue_overlay_token,
    issue_user_token,
    read_overlay_token,
    read_user_token,
)

SECRET = b"test-secret"
NOW_S = 1_795_521_600
TTL_S = 3600


def signed(payload: str, secret: bytes = SECRET) -> str:
    """A token with a genuine signature over `payload`: only the content can be wrong."""
    return f"{payload}.{tokens._sign(secret, payload)}"


def user_token() -> str:
    return issue_user_token(SECRET, UserId(42), NOW_S, TTL_S)


def test_user_token_round_trip() -> None:
    token = user_token()
    assert token.startswith("u.42.")
    assert len(token) <= TOKEN_CHARS_MAX
    assert read_user_token(SECRET, token, NOW_S) == UserClaim(UserId(42), NOW_S + TTL_S)
    assert read_user_token(SECRET, token, NOW_S + TTL_S - 1) is not None


def test_overlay_token_round_trip() -> None:
    token = issue_overlay_token(SECRET, RoomId(7), 3)
    assert read_overlay_token(SECRET, token) == OverlayClaim(RoomId(7), 3)


def test_the_largest_ids_still_round_trip() -> None:
    big = 10**18 - 1
    token = issue_user_token(SECRET, UserId(big), 0, big)
    assert len(token) <= TOKEN_CHARS_MAX
    assert read_user_token(SECRET, token, 0) == UserClaim(UserId(big), big)


def _flip_last(token: str) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


def _replace_part(index: int, value: str) -> Callable[[str], str]:
    def edit(token: str) -> str:
        parts = token.split(".")
        parts[index] = value
        return ".".join(parts)

    return edit


BAD_USER_TOKENS: list[tuple[str, Callable[[str], str]]] = [
    ("tampered signature", _flip_last),
    ("signature cut short", lambda t: t[:-2]),
    ("no signature", lambda t: t.rsplit(".", 1)[0]),
    ("empty signature", _replace_part(3, "")),
    ("non-ascii signature", _replace_part(3, "é" * 32)),
    ("tampered user id", _replace_part(1, "43")),
    ("tampered expiry", _replace_part(2, str(NOW_S + 10 * TTL_S))),
    ("wrong prefix", _replace_part(0, "o")),
    ("upper-case prefix", _replace_part(0, "U")),
    ("an extra part", lambda t: t + ".x"),
    ("leading space", lambda t: " " + t),
    ("trailing newline", lambda t: t + "\n"),
    ("empty", lambda t: ""),
    ("only dots", lambda t: "..."),
    ("overlong", lambda t: t + "A" * (TOKEN_CHARS_MAX - len(t) + 1)),
    ("wrong secret", lambda t: issue_user_token(b"other-secret", UserId(42), NOW_S, TTL_S)),
    ("expired exactly now", lambda t: issue_user_token(SECRET, UserId(42), NOW_S - TTL_S, TTL_S)),
    ("expired long ago", lambda t: issue_user_token(SECRET, UserId(42), 0, 1)),
    ("an overlay token", lambda t: issue_overlay_token(SECRET, RoomId(42), NOW_S + TTL_S)),
    # Genuinely signed, but the content is not what a user token holds.
    ("19-digit user id", lambda t: signed(f"u.{10**18}.{NOW_S + TTL_S}")),
    ("huge expiry", lambda t: signed(f"u.42.{2**200}")),
    ("Arabic-Indic digits", lambda t: signed(f"u.١٢.{NOW_S + TTL_S}")),
    ("full-width digits", lambda t: signed(f"u.１２.{NOW_S + TTL_S}")),
    ("superscript digits", lambda t: signed(f"u.²³.{NOW_S + TTL_S}")),
    ("negative id", lambda t: signed(f"u.-1.{NOW_S + TTL_S}")),
    ("plus sign", lambda t: signed(f"u.+42.{NOW_S + TTL_S}")),
    ("empty id", lambda t: signed(f"u..{NOW_S + TTL_S}")),
    ("spaces in a number", lambda t: signed(f"u. 42.{NOW_S + TTL_S}")),
    ("underscore in a number", lambda t: signed(f"u.4_2.{NOW_S + TTL_S}")),
    ("a float expiry", lambda t: signed(f"u.42.{NOW_S + TTL_S}.5")),
]


@pytest.mark.parametrize(
    "edit", [e for _, e in BAD_USER_TOKENS], ids=[n for n, _ in BAD_USER_TOKENS]
)
def test_bad_user_tokens_read_as_none(edit: Callable[[str], str]) -> None:
    assert read_user_token(SECRET, edit(user_token()), NOW_S) is None


@pytest.mark.parametrize("token", [None, 42, b"u.42.1.sig", ["u", "42"]])
def test_a_token_that_is_not_a_string_reads_as_none(token: object) -> None:
    assert read_user_token(SECRET, cast(str, token), NOW_S) is None
    assert read_overlay_token(SECRET, cast(str, token)) is None


BAD_OVERLAY_TOKENS: list[tuple[str, Callable[[str], str]]] = [
    ("tampered signature", _flip_last),
    ("tampered room", _replace_part(1, "8")),
    ("tampered version", _replace_part(2, "4")),
    ("wrong secret", lambda t: issue_overlay_token(b"other-secret", RoomId(7), 3)),
    ("a user token", lambda t: issue_user_token(SECRET, UserId(7), 0, 3)),
    ("non-ascii digits", lambda t: signed("o.٧.3")),
    ("overlong", lambda t: t + "A" * TOKEN_CHARS_MAX),
]


@pytest.mark.parametrize(
    "edit", [e for _, e in BAD_OVERLAY_TOKENS], ids=[n for n, _ in BAD_OVERLAY_TOKENS]
)
def test_bad_overlay_tokens_read_as_none(edit: Callable[[str], str]) -> None:
    assert read_overlay_token(SECRET, edit(issue_overlay_token(SECRET, RoomId(7), 3))) is None
