"""Settings that the server cannot run with are refused before it starts."""

from __future__ import annotations

import pytest

from server.config import ConfigError, Settings


@pytest.mark.parametrize("impl", ["websockets-sansio", "websockets", "wsproto", "auto", ""])
def test_only_the_giftcast_websocket_implementation_is_accepted(impl: str) -> None:
    with pytest.raises(ConfigError, match="ws_impl"):
        Settings(ws_impl=impl).validate()
    Settings(ws_impl="giftcast").validate()
    assert Settings.from_env({"GIFTCAST_WS_IMPL": "giftcast"}).ws_impl == "giftcast"
    with pytest.raises(ConfigError, match="ws_impl"):
        Settings.from_env({"GIFTCAST_WS_IMPL": "wsproto"})
