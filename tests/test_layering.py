"""The layering STYLE.md asks for, read from the source with `ast`.

`server/domain` and `server/protocol` are pure: they import no I/O library. Only `server/web`
imports starlette.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SERVER = Path(__file__).resolve().parent.parent / "server"
IO_LIBRARIES = frozenset(
    {"asyncio", "starlette", "aiosqlite", "asyncpg", "redis", "uvicorn", "websockets"}
)


def imported_roots(source: str, filename: str = "<source>") -> set[str]:
    """The top-level package of every import, wherever it sits (lazy imports count too)."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def modules(*packages: str) -> list[Path]:
    found = sorted(p for package in packages for p in (SERVER / package).rglob("*.py"))
    assert found, f"no modules under {packages}"
    return found


def _id(path: Path) -> str:
    return str(path.relative_to(SERVER.parent))


@pytest.mark.parametrize(
    ("source", "roots"),
    [
        ("import asyncio", {"asyncio"}),
        ("import asyncio.locks as locks, json", {"asyncio", "json"}),
        ("from starlette.websockets import WebSocket", {"starlette"}),
        ("def f():\n    import redis.asyncio\n", {"redis"}),
        ("if TYPE_CHECKING:\n    from aiosqlite import Connection\n", {"aiosqlite"}),
        ("from . import rooms\nfrom .money import UserId", set()),
        ("x = 'import asyncio'  # import uvicorn", set()),
    ],
)
def test_the_checker_sees_imports(source: str, roots: set[str]) -> None:
    assert imported_roots(source) == roots


@pytest.mark.parametrize("path", modules("domain", "protocol"), ids=_id)
def test_the_pure_core_imports_no_io_library(path: Path) -> None:
    found = imported_roots(path.read_text("utf-8"), str(path)) & IO_LIBRARIES
    assert not found, f"{_id(path)} imports {sorted(found)}"


@pytest.mark.parametrize(
    "path", [p for p in modules(".") if "web" not in p.relative_to(SERVER).parts[:1]], ids=_id
)
def test_only_web_imports_starlette(path: Path) -> None:
    assert "starlette" not in imported_roots(path.read_text("utf-8"), str(path))


def test_web_is_where_starlette_lives() -> None:
    assert any("starlette" in imported_roots(p.read_text("utf-8")) for p in modules("web"))


# --- the load tester: a client of the wire, in the package so a plain install has it ---------

LOADTEST_PURE = ("scenario.py", "model.py", "stats.py", "records.py", "verify.py", "report.py")
LOADTEST_ALLOWED_ROOTS = frozenset({"websockets", "orjson", "server"})


def _server_modules_imported(source: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] == "server":
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "server")
    return found


@pytest.mark.parametrize("path", modules("loadtest"), ids=_id)
def test_the_load_tester_talks_to_the_server_over_the_wire_only(path: Path) -> None:
    source = path.read_text("utf-8")
    third_party = {
        root
        for root in imported_roots(source, str(path))
        if root not in sys.stdlib_module_names and root != "__future__"
    }
    assert third_party <= LOADTEST_ALLOWED_ROOTS, f"{_id(path)} imports {sorted(third_party)}"
    inside = _server_modules_imported(source)
    outside = {m for m in inside if not m.startswith("server.loadtest")}
    assert not outside, f"{_id(path)} imports {sorted(outside)}: use HTTP or the socket"


@pytest.mark.parametrize("name", LOADTEST_PURE)
def test_the_load_testers_rules_and_figures_are_pure(name: str) -> None:
    path = SERVER / "loadtest" / name
    found = imported_roots(path.read_text("utf-8"), str(path)) & (
        IO_LIBRARIES | {"multiprocessing"}
    )
    assert not found, f"{_id(path)} imports {sorted(found)}"
    for module in _server_modules_imported(path.read_text("utf-8")):
        assert module.removeprefix("server.loadtest.") + ".py" in LOADTEST_PURE, (
            f"{_id(path)} imports {module}, which is not pure"
        )


def test_nothing_in_the_server_imports_the_load_tester_but_the_command_line() -> None:
    users = {
        _id(p)
        for p in modules(".")
        if "loadtest" not in p.relative_to(SERVER).parts[:1]
        and any(m.startswith("server.loadtest") for m in _server_modules_imported(p.read_text()))
    }
    assert users == {"server/cli.py"}
