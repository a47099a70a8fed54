"""The disk fills up under a running `giftcast serve`: its file-size limit is lowered from
outside (`prlimit`), so every write to the database files fails with EFBIG as it would with
no space left, then raised again.

While the disk is full, gifts and money calls answer `unavailable` and nothing is partial;
reads go on; once space returns, the same requests succeed, once each, with no restart.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.faultkit import limit_file_size
from tests.support.client import Api
from tests.support.live import ADMIN_TOKEN
from tests.support.process import ServerProcess


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


async def test_a_full_disk_answers_unavailable_and_the_service_resumes_when_space_returns(
    workdir: Path,
) -> None:
    server = await ServerProcess.start(
        workdir, {"GIFTCAST_ADMIN_TOKEN": ADMIN_TOKEN}, piped_log=True
    )
    api = Api(server.url)
    try:
        host, viewer = await api.signup(), await api.signup()
        await api.recharge(viewer, "coins_330")
        room = await api.go_live(host)
        async with api.room(room["id"], viewer.token) as ws:
            await ws.recv_type("welcome")
            assert (await ws.gift("before"))["type"] == "gift_ok"
            limit_file_size(server.proc.pid, 0)
            try:
                full = [await ws.gift(f"full-{i}", timeout=10) for i in range(3)]
                for doc in full:
                    assert doc["type"] == "error" and doc["code"] == "unavailable", doc
                r = await api.call(
                    "POST",
                    "/api/wallet/recharge",
                    viewer.token,
                    json={"package_id": "coins_65"},
                    headers={"Idempotency-Key": "while-full"},
                )
                assert r.status_code == 503 and r.json()["error"]["code"] == "unavailable", r.text
                assert (await api.me(viewer))["coins"] == 329
            finally:
                limit_file_size(server.proc.pid, None)
            for i in range(3):
                again = await ws.gift(f"full-{i}")
                assert again["type"] == "gift_ok" and not again.get("duplicate"), again
            r = await api.call(
                "POST",
                "/api/wallet/recharge",
                viewer.token,
                json={"package_id": "coins_65"},
                headers={"Idempotency-Key": "while-full"},
            )
            assert r.status_code == 200, r.text
        assert (await api.me(viewer))["coins"] == 329 - 3 + 65
        report = await api.audit()
        assert report["balanced"], report
    finally:
        await api.close()
        code = await server.terminate()
    log = server.log()
    assert code == 0, log
    assert "Traceback" not in log and "CRITICAL" not in log, log
    assert "gift batch failed" in log, "the log must survive the fault and say what failed"
