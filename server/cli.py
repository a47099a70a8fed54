"""`giftcast serve [--host H] [--port P] [--db URL] [--broker URL]` (also `python -m server`),
and `giftcast loadtest [flags]` (see `giftcast loadtest --help`)."""

from __future__ import annotations

import argparse
import sys

from server.config import ConfigError, Settings


def check_catalog(settings: Settings) -> None:
    """Refuse to start on a catalog that cannot be read, naming the file and the entry."""
    from server.domain.catalog import CatalogError
    from server.web.runtime import load_catalog

    try:
        load_catalog(settings.catalog)
    except (OSError, ValueError, CatalogError) as exc:
        where = settings.catalog or "the packaged catalog"
        raise ConfigError(f"cannot use the catalog {where}: {exc}") from exc


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    if given[:1] == ["loadtest"]:
        from server.loadtest.main import main as loadtest

        return loadtest(given[1:])
    parser = argparse.ArgumentParser(prog="giftcast", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server in the foreground")
    serve.add_argument("--host", help="address to listen on (GIFTCAST_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (GIFTCAST_PORT, default 8000; 0: any)")
    serve.add_argument(
        "--db", help="database URL (GIFTCAST_DB; default sqlite:///./data/giftcast.db)"
    )
    serve.add_argument(
        "--broker", help="fan-out URL for several processes (GIFTCAST_BROKER; default: none)"
    )
    commands.add_parser(
        "loadtest", help="simulate a platform against a server and verify its ledger"
    )
    args = parser.parse_args(given)
    try:
        settings = Settings.from_env(host=args.host, port=args.port, db=args.db, broker=args.broker)
        check_catalog(settings)
    except ConfigError as exc:
        print(f"giftcast: {exc}", file=sys.stderr)
        return 2
    from server.web.runner import serve as run

    return run(settings)


if __name__ == "__main__":
    sys.exit(main())
