from tests.support.client import Api


async def test_viewer_sends_a_rose(api: Api) -> None:
    host = await api.signup()
    viewer = await api.signup()
    await api.recharge(viewer, "coins_65")
    room = await api.go_live(host)
    async with (
        api.room(room["id"], host.token) as host_ws,
        api.room(room["id"], viewer.token) as ws,
    ):
        welcome = await ws.recv()
        assert welcome["type"] == "welcome"
        assert welcome["you"]["coins"] == 65
        ok = await ws.gift("r1")
        assert ok["type"] == "gift_ok", ok
        assert ok["coins"] == 64
        event = await host_ws.recv_type("gift")
        assert event["shoutout"].endswith("sent Rose")
    me = await api.me(host)
    assert me["diamonds"] == 1
