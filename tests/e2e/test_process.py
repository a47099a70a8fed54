"""`giftcast serve` as a real process: first run, logs, SIGTERM under load, restart."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.support.client import Api
from tests.support.live import ADMIN_TOKEN
from tests.support.process import ServerProcess

REPO = Path(__file__).resolve().parents[2]
ADMIN = ADMIN_TOKEN  # what Api.audit sends


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    # `python -m server` from a directory that is not the repo: the package must be installed.
    return tmp_path


async def test_first_run_creates_the_database_under_data_and_logs_where_it_listens(
    workdir: Path,
) -> None:
    server = await ServerProcess.start(workdir, {"GIFTCAST_ADMIN_TOKEN": ADMIN})
    try:
        assert (workdir / "data" / "giftcast.db").is_file()
        assert (workdir / "data" / "secret").is_file()
        assert server.db == "sqlite:///data/giftcast.db"
        api = Api(server.url)
        try:
            health = await api.call("GET", "/healthz")
            assert health.status_code == 200
            assert health.json() == {"ok": True}
        finally:
            await api.close()
    finally:
        assert await server.terminate() == 0


async def test_sigterm_answers_every_gift_closes_sockets_with_1001_and_exits_0(
    workdir: Path,
) -> None:
    server = await ServerProcess.start(
        workdir, {"GIFTCAST_ADMIN_TOKEN": ADMIN, "GIFTCAST_GIFT_RATE_PER_S": "1000"}
    )
    api = Api(server.url)
    tokens: list[str] = []
    try:
        host = await api.signup()
        room = await api.go_live(host)
        viewers = [await api.signup() for _ in range(4)]
        tokens = [host.token, *(v.token for v in viewers)]
        for viewer in viewers:
            await api.recharge(viewer, "coins_1321")
        answers: dict[str, dict[str, object]] = {}
        sent: list[str] = []

        async def send_until_closed(n: int, token: str) -> tuple[int | None, str]:
            async with api.room(room["id"], token) as ws:
                await ws.recv_type("welcome")
                for i in range(400):
                    request_id = f"v{n}-{i}"
                    try:
                        await ws.send(
                            {"type": "gift", "id": request_id, "gift_id": "rose", "count": 1}
                        )
                    except Exception:
                        break
                    sent.append(request_id)
                    await asyncio.sleep(0.002)
                while True:
                    try:
                        doc = await ws.recv(timeout=10)
                    except Exception:
                        break
                    if doc.get("type") in ("gift_ok", "error") and "id" in doc:
                        answers[str(doc["id"])] = doc
                return await ws.closed()

        senders = [
            asyncio.create_task(send_until_closed(n, v.token)) for n, v in enumerate(viewers)
        ]
        await asyncio.sleep(0.3)
        exit_code = await server.terminate()
        closes = await asyncio.gather(*senders)
        assert exit_code == 0, server.log()
        assert all(code == 1001 for code, _ in closes), (closes, server.log())
        # Every gift that reached the server before it stopped reading was answered.
        unanswered = [r for r in sent if r not in answers]
        accepted = {r for r, doc in answers.items() if doc["type"] == "gift_ok"}
        assert accepted, "some gifts must have been accepted before the signal"
        for doc in answers.values():
            if doc["type"] == "error":
                assert doc["code"] == "unavailable", doc

        # Restart on the same data: every acknowledged gift is in the ledger, once.
        again = await ServerProcess.start(workdir, {"GIFTCAST_ADMIN_TOKEN": ADMIN})
        api2 = Api(again.url)
        try:
            report = await api2.audit()
            assert report["balanced"], report
            spent = 0
            for viewer in viewers:
                me = await api2.me(viewer)
                spent += 1321 - me["coins"]
            assert spent == len(accepted)
            # An unanswered request resent after the restart gets exactly one outcome.
            for request_id in unanswered[:5]:
                n = int(request_id[1:].split("-")[0])
                async with api2.room(room["id"], viewers[n].token) as ws:
                    await ws.recv_type("welcome")
                    doc = await ws.gift(request_id)
                    assert doc["type"] == "gift_ok", doc
        finally:
            await api2.close()
            assert await again.terminate() == 0
    finally:
        await api.close()
        await server.kill()
    log = server.log()
    assert "Traceback" not in log, log
    for token in tokens:
        assert token not in log, "tokens must never appear in logs"


async def test_environment_selects_host_port_and_database(workdir: Path) -> None:
    db = workdir / "elsewhere" / "gifts.db"
    server = await ServerProcess.start(workdir, {"GIFTCAST_DB": f"sqlite:///{db}"})
    try:
        assert db.is_file()
        assert server.db == f"sqlite:///{db}"
    finally:
        assert await server.terminate() == 0
    assert os.path.exists(db)


async def test_a_replacement_catalog_is_served_and_a_broken_one_stops_the_start(
    workdir: Path,
) -> None:
    catalog = workdir / "catalog.json"
    catalog.write_text(
        '{"currency": "EUR", "packages": [{"id": "small", "coins": 10, "price_cents": 199}],'
        ' "gifts": [{"id": "star", "name": "Star", "coins": 3, "streakable": true,'
        ' "animation": "small"}]}'
    )
    server = await ServerProcess.start(workdir, {"GIFTCAST_CATALOG": str(catalog)})
    api = Api(server.url)
    try:
        doc = (await api.call("GET", "/api/catalog")).json()
        assert [g["id"] for g in doc["gifts"]] == ["star"]
        assert doc["packages"] == [
            {"id": "small", "coins": 10, "price_cents": 199, "currency": "EUR"}
        ]
    finally:
        await api.close()
        assert await server.terminate() == 0

    catalog.write_text('{"packages": [], "gifts": []}')
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        "serve",
        "--port",
        "0",
        cwd=workdir,
        env={**os.environ, "GIFTCAST_CATALOG": str(catalog)},
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    message = err.decode()
    assert "cannot use the catalog" in message and "gifts must be a non-empty list" in message
    assert "Traceback" not in message


async def test_tokens_survive_a_restart_with_the_generated_secret(workdir: Path) -> None:
    server = await ServerProcess.start(workdir)
    api = Api(server.url)
    try:
        user = await api.signup()
    finally:
        await api.close()
        assert await server.terminate() == 0
    again = await ServerProcess.start(workdir)  # no GIFTCAST_SECRET: the kept one is reused
    api = Api(again.url)
    try:
        me = await api.call("GET", "/api/me", user.token)
        assert me.status_code == 200, me.text
        assert me.json()["name"] == user.name
    finally:
        await api.close()
        assert await again.terminate() == 0
    assert oct((workdir / "data" / "secret").stat().st_mode & 0o777) == "0o600"
