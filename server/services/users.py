"""Accounts: sign-up, bearer tokens and who is calling.

The token secret comes from settings or is generated once and kept in the data directory
(mode 0600), so tokens survive a restart.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from server.config import Settings
from server.domain.errors import Code, Refusal
from server.domain.money import UserId
from server.domain.timefmt import utc_date
from server.domain.tokens import issue_user_token, read_user_token
from server.domain.users import ADULT_AGE_YEARS, age_on, check_name, parse_birthdate
from server.services.clock import Clock
from server.storage.base import LedgerStore, UserRow


@dataclass(frozen=True, slots=True)
class Caller:
    id: UserId
    name: str
    adult: bool


@dataclass(frozen=True, slots=True)
class SignedUp:
    user: UserRow
    token: str


def load_secret(settings: Settings) -> bytes:
    if settings.secret:
        return settings.secret.encode()
    path = Path(settings.data_dir) / "secret"
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = secrets.token_urlsafe(48).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(fresh)
    return fresh


class UserService:
    def __init__(self, settings: Settings, store: LedgerStore, secret: bytes, clock: Clock):
        self.settings = settings
        self.store = store
        self.secret = secret
        self.clock = clock
        self._cache: OrderedDict[UserId, UserRow] = OrderedDict()

    def today(self) -> dt.date:
        return utc_date(self.clock())

    def token_for(self, user: UserId) -> str:
        return issue_user_token(
            self.secret, user, self.clock() // 1000, self.settings.user_token_ttl_s
        )

    async def sign_up(self, name: object, birthdate: object) -> SignedUp | Refusal:
        checked_name = check_name(name)
        if isinstance(checked_name, Refusal):
            return checked_name
        born = parse_birthdate(birthdate, self.today())
        if isinstance(born, Refusal):
            return born
        user = await self.store.create_user(checked_name, born, self.clock())
        if user is None:
            return Refusal(Code.NAME_TAKEN, f"the name {checked_name!r} is taken; pick another")
        self._remember(user)
        return SignedUp(user, self.token_for(user.id))

    def _remember(self, user: UserRow) -> None:
        self._cache[user.id] = user
        self._cache.move_to_end(user.id)
        if len(self._cache) > self.settings.user_cache_max:
            self._cache.popitem(last=False)

    async def user(self, user_id: UserId) -> UserRow | None:
        found = self._cache.get(user_id)
        if found is None:
            found = await self.store.get_user(user_id)
            if found is not None:
                self._remember(found)
        return found

    async def authenticate(self, token: str | None) -> Caller | None:
        """The caller behind a valid, unexpired user token, or None."""
        if not token:
            return None
        claim = read_user_token(self.secret, token, self.clock() // 1000)
        if claim is None:
            return None
        user = await self.user(claim.user)
        if user is None:
            return None  # signed by us, but for a user this database does not have
        return self.caller(user)

    def caller(self, user: UserRow) -> Caller:
        adult = age_on(user.birthdate, self.today()) >= ADULT_AGE_YEARS
        return Caller(user.id, user.name, adult)
