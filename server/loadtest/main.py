"""`giftcast loadtest [flags]` (also `scripts/loadtest.py`): the command line.

Every scenario knob is a flag (`--rooms 20`, `--duration 60`, ...); `--scenario FILE` reads
knobs from TOML first and flags win; `--save-scenario FILE` writes the resulting scenario and
exits. `--verify-only RECORD` checks a finished run's `record.json` against the server again.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
from pathlib import Path

import orjson

from server.loadtest import coordinator
from server.loadtest.http import Api, HttpError
from server.loadtest.progress import Progress
from server.loadtest.scenario import (
    Scenario,
    ScenarioError,
    check_target,
    knob_fields,
    load_toml,
    with_values,
)
from server.loadtest.verify import RunRecord

FLAG_NAMES = {"duration_s": ("--duration", "--duration-s")}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="giftcast loadtest",
        description="Simulate a live-gifting platform against a giftcast server, report its"
        " figures, then check every acknowledged gift against the server's ledger.",
    )
    target = p.add_argument_group("target")
    target.add_argument(
        "--url", help="a running server (default: start our own on a temporary database)"
    )
    target.add_argument(
        "--allow-remote", action="store_true", help="allow a --url that is not loopback"
    )
    target.add_argument(
        "--admin-token",
        default=os.environ.get("GIFTCAST_ADMIN_TOKEN", ""),
        help="the --url server's GIFTCAST_ADMIN_TOKEN (default: from the environment)",
    )
    files = p.add_argument_group("files")
    files.add_argument("--scenario", type=Path, help="read the scenario from a TOML file")
    files.add_argument("--save-scenario", type=Path, help="write the scenario as TOML and exit")
    files.add_argument(
        "--out", type=Path, help="where the reports go (default ./loadtest-<UTC time>)"
    )
    files.add_argument(
        "--verify-only", type=Path, metavar="RECORD", help="check a run's record.json again"
    )
    knobs = p.add_argument_group("scenario (defaults in brackets)")
    for f in knob_fields():
        names = FLAG_NAMES.get(f.name, ("--" + f.name.replace("_", "-"),))
        kind = type(f.default)
        knobs.add_argument(
            *names,
            dest=f.name,
            type=kind,
            default=None,
            metavar="N" if kind is int else "X",
            help=f"{f.metadata['doc']} [{f.default:g}]",
        )
    return p


def scenario_from(ns: argparse.Namespace) -> Scenario:
    scenario = Scenario()
    if ns.scenario is not None:
        try:
            text = ns.scenario.read_text("utf-8")
        except OSError as exc:
            raise ScenarioError(f"cannot read {ns.scenario}: {exc}") from exc
        scenario = load_toml(text, str(ns.scenario))
    given = {f.name: getattr(ns, f.name) for f in knob_fields() if getattr(ns, f.name) is not None}
    return with_values(scenario, given, "the command line")


def main(argv: list[str] | None = None) -> int:
    p = parser()
    ns = p.parse_args(argv)
    progress = Progress()
    try:
        scenario = scenario_from(ns)
        problems = list(scenario.problems())
        if problems:
            raise ScenarioError("; ".join(problems))
        url = None if ns.url is None else check_target(ns.url, ns.allow_remote)
    except ScenarioError as exc:
        p.error(str(exc))
    if ns.save_scenario is not None:
        ns.save_scenario.write_text(scenario.to_toml(), "utf-8")
        print(f"wrote {ns.save_scenario}")
        return 0
    if ns.verify_only is not None:
        return verify_only(ns, url, progress)
    if url is not None and not ns.admin_token:
        p.error(
            "--url needs --admin-token (or GIFTCAST_ADMIN_TOKEN): verification reads the ledger"
        )
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    out = ns.out or Path(f"loadtest-{stamp}")
    options = coordinator.Options(scenario, url, ns.admin_token, out)
    try:
        return coordinator.run(options, progress)
    except KeyboardInterrupt:
        progress.say("giftcast loadtest: interrupted")
        return 130


def verify_only(ns: argparse.Namespace, url: str | None, progress: Progress) -> int:
    try:
        record = RunRecord.from_json(orjson.loads(ns.verify_only.read_bytes()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        progress.say(f"giftcast loadtest: cannot read the record {ns.verify_only}: {exc}")
        return 2
    base_url = url or check_target(record.base_url, ns.allow_remote)
    api = Api(base_url, ns.admin_token)
    try:
        verification = asyncio.run(coordinator.verify(api, record, None))
    except HttpError as exc:
        progress.say(f"giftcast loadtest: cannot read the server's ledger: {exc}")
        return 2
    coordinator.show_verdict(progress, verification.problems)
    return 0 if verification.passed else 1


if __name__ == "__main__":
    sys.exit(main())
