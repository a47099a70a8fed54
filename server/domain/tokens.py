"""Signed bearer tokens (HMAC-SHA256). Time is a parameter; the secret is given.

    user token:     u.<user id>.<expires, unix seconds>.<signature>
    overlay token:  o.<room id>.<overlay version>.<signature>

An overlay token lives as long as its room and its version: rotating the room's overlay
version makes every older token invalid. Signatures are compared in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from server.domain.money import RoomId, UserId

TOKEN_CHARS_MAX = 200


@dataclass(frozen=True, slots=True)
class UserClaim:
    user: UserId
    expires_s: int


@dataclass(frozen=True, slots=True)
class OverlayClaim:
    room: RoomId
    version: int


def _sign(secret: bytes, payload: str) -> str:
    digest = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")


def _parts(secret: bytes, token: str, prefix: str) -> tuple[int, int] | None:
    if not isinstance(token, str) or len(token) > TOKEN_CHARS_MAX:
        return None
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != prefix:
        return None
    if not (
        parts[1].isascii() and parts[1].isdigit() and parts[2].isascii() and parts[2].isdigit()
    ):
        return None
    if len(parts[1]) > 18 or len(parts[2]) > 18:
        return None
    expected = _sign(secret, ".".join(parts[:3]))
    if not hmac.compare_digest(expected.encode(), parts[3].encode("ascii", "replace")):
        return None
    return int(parts[1]), int(parts[2])


def issue_user_token(secret: bytes, user: UserId, now_s: int, ttl_s: int) -> str:
    payload = f"u.{int(user)}.{now_s + ttl_s}"
    return f"{payload}.{_sign(secret, payload)}"


def read_user_token(secret: bytes, token: str, now_s: int) -> UserClaim | None:
    """The claim of a valid, unexpired user token; None for anything else."""
    parts = _parts(secret, token, "u")
    if parts is None or parts[1] <= now_s:
        return None
    return UserClaim(UserId(parts[0]), parts[1])


def issue_overlay_token(secret: bytes, room: RoomId, version: int) -> str:
    payload = f"o.{int(room)}.{version}"
    return f"{payload}.{_sign(secret, payload)}"


def read_overlay_token(secret: bytes, token: str) -> OverlayClaim | None:
    parts = _parts(secret, token, "o")
    return None if parts is None else OverlayClaim(RoomId(parts[0]), parts[1])
