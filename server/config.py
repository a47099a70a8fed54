"""One frozen Settings object: every knob and every limit of the server.

Limits carry their unit in their name (`_ms`, `_bytes`, `_max`, ...). Each field can be set from
the environment as `GIFTCAST_<FIELD NAME IN CAPITALS>`; the CLI overrides the few that the
contract names (`--host`, `--port`, `--db`, `--broker`). Nothing else in the server reads the
environment.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A setting has a value the server cannot run with."""


@dataclass(frozen=True, slots=True)
class Settings:
    # --- where it runs -------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: str = "./data"
    db: str = ""  # empty: sqlite:///<data_dir>/giftcast.db
    broker: str = ""  # empty: in-process fan-out; redis://... for several processes
    admin_token: str = ""  # empty: /api/admin/* answers 403
    secret: str = ""  # empty: generated once and kept in <data_dir>/secret
    catalog: str = ""  # empty: the packaged catalog (server/data/catalog.json)
    allowed_origins: tuple[str, ...] = ()  # besides the server's own origin and localhost
    log_level: str = "info"
    # uvicorn's WebSocket implementation: only "giftcast" (web/ws_protocol.py). The hub writes
    # through its `giftcast.socket` extension, which uvicorn's own implementations lack.
    ws_impl: str = "giftcast"

    # --- tokens ---------------------------------------------------------------------------
    user_token_ttl_s: int = 30 * 24 * 3600

    # --- WebSocket and HTTP limits --------------------------------------------------------
    ws_frame_bytes_max: int = 4096
    http_body_bytes_max: int = 16 * 1024
    ws_heartbeat_interval_s: float = 20.0
    ws_heartbeat_timeout_s: float = 20.0
    outbox_frames_max: int = 512  # per connection; a viewer this far behind is closed with 1013
    replay_events_per_frame_max: int = 200
    batch_events_per_frame_max: int = 500
    connections_per_user_max: int = 8
    connections_per_ip_max: int = 2000
    viewers_per_room_max: int = 20000
    rooms_per_host_max: int = 1  # live rooms at once
    close_grace_ms: int = 2000  # how long a closing socket may take to drain its outbox

    # --- fan-out --------------------------------------------------------------------------
    fanout_flush_ms: int = 100  # events arriving within this window share one batch frame
    # A room whose flushes take long (thousands of sockets) waits up to this long between them:
    # at least three times its last flush's duration (server/web/hub.py, flush_gap_s).
    fanout_flush_max_ms: int = 500
    room_update_interval_ms: int = 1000  # viewers / top / goal: at most once per interval
    room_events_kept_min: int = 1000  # replayable history per room (pruning keeps at least this)
    room_events_prune_every: int = 500  # prune a room's history every N events

    # --- gifts ----------------------------------------------------------------------------
    accepted_ids_cached_max: int = 200_000  # recent accepted gift ids answered from memory
    gift_rate_per_s: int = 10
    gift_burst: int = 20
    streak_window_ms: int = 3000
    leaderboard_size: int = 10
    gift_batch_max: int = 512  # gifts gathered into one group commit
    gift_queue_max: int = 20000  # gifts waiting for the writer; beyond: `unavailable`

    # --- money ----------------------------------------------------------------------------
    diamonds_per_coin: int = 1
    cents_per_100_diamonds: int = 50
    payout_minimum_diamonds: int = 2000
    payout_daily_cents_max: int = 100_000  # $1,000 a calendar day per creator
    payout_review_ms: int = 24 * 3600 * 1000  # pending this long: listed for the operator
    coins_balance_max: int = 10**12  # no wallet grows past this (guards integer overflow)
    refund_window_ms: int = 48 * 3600 * 1000  # a recharge can be refunded this long after
    spending_limit_cooling_off_ms: int = (
        24 * 3600 * 1000
    )  # before a raised or removed limit applies

    # --- storage --------------------------------------------------------------------------
    db_busy_timeout_ms: int = 5000
    # SQLite's page cache, per connection (the writer and the reader each have one). Its
    # default of 2 MiB made the group commit re-read index pages from the OS for every batch
    # once the ledger outgrew it: 64 MiB was ~20% more gifts a second in bench_gifts.
    db_cache_mib: int = 64
    # WAL pages after which a commit copies the WAL back into the database (SQLite's default:
    # 1,000, i.e. a checkpoint every few batches under load). The WAL file is cut back to
    # twice this after a checkpoint, so it stays bounded.
    db_checkpoint_pages: int = 10_000
    idempotency_key_chars_max: int = 64
    transactions_page_max: int = 100
    room_gifts_page_max: int = 1000  # GET /api/admin/rooms/{id}/gifts
    rooms_list_max: int = 200
    room_title_chars_max: int = 100
    goal_title_chars_max: int = 100
    goal_coins_max: int = 10**9
    user_cache_max: int = 100_000

    # --- garbage collector ----------------------------------------------------------------
    # A full collection walks every live object: with thousands of sockets that stalled the
    # loop for ~190 ms. Start-up objects are frozen and collections made rarer.
    gc_gen0_threshold: int = 50_000
    gc_gen1_threshold: int = 20
    gc_gen2_threshold: int = 100

    # --- shutdown -------------------------------------------------------------------------
    shutdown_drain_ms: int = 5000

    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def db_url(self) -> str:
        if self.db:
            return self.db
        return f"sqlite:///{Path(self.data_dir) / 'giftcast.db'}"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then `GIFTCAST_*` variables, then explicit overrides (the CLI's)."""
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name == "extra":
                continue
            raw = source.get(f"GIFTCAST_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool):
                continue
            if isinstance(value, int | float) and value < 0:
                raise ConfigError(f"{f.name} must not be negative, got {value}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be 0-65535, got {self.port}")
        if self.ws_impl != "giftcast":
            raise ConfigError(
                f"ws_impl must be 'giftcast' (got {self.ws_impl!r}): the room hub writes through"
                " its giftcast.socket extension, which uvicorn's own implementations lack"
            )
        if self.ws_frame_bytes_max < 256:
            raise ConfigError("ws_frame_bytes_max must be at least 256")
        if self.gift_rate_per_s < 1 or self.gift_burst < 1:
            raise ConfigError("gift_rate_per_s and gift_burst must be at least 1")
        if self.diamonds_per_coin < 1 or self.cents_per_100_diamonds < 0:
            raise ConfigError("diamonds_per_coin must be at least 1")
        if self.room_events_kept_min < 1000:
            raise ConfigError("room_events_kept_min must be at least 1000 (the contract's floor)")
        if self.fanout_flush_max_ms < self.fanout_flush_ms:
            raise ConfigError("fanout_flush_max_ms must be at least fanout_flush_ms")
        if not 1 <= self.db_cache_mib <= 65536:
            raise ConfigError("db_cache_mib must be 1-65536")
        if not 100 <= self.db_checkpoint_pages <= 1_000_000:
            raise ConfigError("db_checkpoint_pages must be 100-1000000")
        if self.leaderboard_size < 10:
            raise ConfigError("leaderboard_size must be at least 10 (the contract's floor)")


def _parse(name: str, type_name: Any, raw: str) -> Any:
    kind = str(type_name)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind.startswith("tuple"):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"GIFTCAST_{name.upper()}: {raw!r} is not a valid {kind}") from exc
    return raw
