"""Schemathesis against a real `giftcast serve` process, checked against `/openapi.json`.

For each documented operation, Hypothesis generates requests that fit the document
(positive) and requests that do not (negative), sent with a signed-in user's token (or the
admin token on `/api/admin/*`) so the authenticated paths are reached. The user hosts room 1,
holds diamonds from a gift, has a pending payout and a recharge, so ending, goals, overlay
tokens, refunds, payouts and settling all have something real to act on. Every answer must:
not be a 5xx, have a status the document lists for the operation, have the documented
content type, and match the documented schema. At the end the ledger still balances.

Bounded and reproducible: a fixed number of examples per operation, derandomized.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import APIOperation, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from websockets.sync.client import connect

from server.web.openapi import OPENAPI
from tests.support.process import LISTENING

ADMIN = "schemathesis-admin-token"
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25"))  # raise it to explore by hand
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
SCHEMA = schemathesis.openapi.from_dict(OPENAPI)
OPERATIONS: dict[str, APIOperation[Any, Any, Any, Any]] = {}
for _found in SCHEMA.get_all_operations():
    assert isinstance(_found, Ok), _found  # the document loads without an error
    OPERATIONS[_found.ok().label] = _found.ok()


@dataclass
class Target:
    url: str
    user_token: str
    session: requests.Session


def _start(workdir: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    log_path = workdir / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIFTCAST_")}
    env.update({"GIFTCAST_ADMIN_TOKEN": ADMIN, "GIFTCAST_LOG_LEVEL": "info"})
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--port", "0"],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    for _ in range(300):
        found = LISTENING.search(log_path.read_text(errors="replace"))
        if found:
            return proc, int(found.group(2)), log_path
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"giftcast did not start:\n{log_path.read_text(errors='replace')}")


def _stage(url: str) -> str:
    """A host live in room 1 with diamonds, a pending payout and a recharge; its token."""
    with httpx.Client(base_url=url, timeout=10) as http:

        def signup(name: str) -> str:
            r = http.post("/api/users", json={"name": name, "birthdate": "1990-01-01"})
            assert r.status_code == 201, r.text
            token: str = r.json()["token"]
            return token

        def recharge(token: str, package: str, key: str) -> None:
            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
            r = http.post("/api/wallet/recharge", json={"package_id": package}, headers=headers)
            assert r.status_code == 200, r.text

        host, viewer = signup("st_host"), signup("st_viewer")
        recharge(host, "coins_330", "host-1")
        recharge(viewer, "coins_3303", "viewer-1")
        r = http.post(
            "/api/rooms", json={"title": "fuzzed"}, headers={"Authorization": f"Bearer {host}"}
        )
        assert r.status_code == 201 and r.json()["id"] == 1, r.text
        ws_url = url.replace("http://", "ws://") + f"/ws/rooms/1?token={viewer}"
        with connect(ws_url, compression=None) as ws:
            assert orjson.loads(ws.recv(5))["type"] == "welcome"
            gift = {"type": "gift", "id": "g1", "gift_id": "whale_diving", "count": 1}
            ws.send(orjson.dumps(gift).decode())
            while (answer := orjson.loads(ws.recv(5)))["type"] not in ("gift_ok", "error"):
                pass
            assert answer["type"] == "gift_ok", answer
        headers = {"Authorization": f"Bearer {host}", "Idempotency-Key": "payout-1"}
        r = http.post("/api/payouts", json={"diamonds": 2000}, headers=headers)
        assert r.status_code == 202, r.text
        return host


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    workdir = tmp_path_factory.mktemp("schemathesis")
    proc, port, log_path = _start(workdir)
    url = f"http://127.0.0.1:{port}"
    try:
        with requests.Session() as session:
            yield Target(url, _stage(url), session)
        r = httpx.get(f"{url}/api/admin/audit", headers={"Authorization": f"Bearer {ADMIN}"})
        assert r.status_code == 200 and r.json()["balanced"], r.text
        log = log_path.read_text(errors="replace")
        assert "Traceback" not in log, log[-5000:]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                assert proc.wait(20) == 0
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


def _auth(case: Any, target: Target) -> None:
    if not case.operation.definition.raw.get("security"):
        return
    token = ADMIN if case.path.startswith("/api/admin/") else target.user_token
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}


def _breakable(label: str) -> bool:
    """Whether the operation has an input that some request could violate."""
    raw = OPERATIONS[label].definition.raw
    params = raw.get("parameters", [])
    return "requestBody" in raw or any(p["schema"] != {"type": "string"} for p in params)


# Negative data needs something to break: operations whose only inputs are free text (or
# that have none) run positive only.
RUNS = [
    pytest.param(label, mode, id=f"{label}-{mode.value}")
    for label in sorted(OPERATIONS)
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or _breakable(label)
]


@pytest.mark.parametrize(("label", "mode"), RUNS)
def test_every_answer_matches_the_document(
    target: Target, label: str, mode: GenerationMode
) -> None:
    operation = OPERATIONS[label]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        _auth(case, target)
        case.call_and_validate(
            base_url=target.url, session=target.session, checks=CHECKS, timeout=10
        )

    run()
