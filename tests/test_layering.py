"""The layering STYLE.md asks for, read from the source with `ast`.

`server/domain` and `server/protocol` are pure: they import no I/O library. Only `server/web`
imports starlette.
"""

from __future__ import annotations

import ast
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
