"""The figures of `bench_peers.py`: one `Row` per server and viewer count, the Markdown
table, and the issue's targets set against the figures."""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

from scripts.benchkit import RunOutcome, percentile
from scripts.peerkit import GIFTCAST, PEER_TITLES
from scripts.peerload import Result, SourceResult
from scripts.viewload import ViewerResult, latencies_ms

SOURCE_LAG_S_WARN = 0.1
# The targets, at the largest viewer count measured.
TARGET_VIEWERS = 5000
TARGET_VS_NAIVE = 5.0
TARGET_VS_FLOOR = 2.0
TARGET_P99_MS = 250.0
TARGET_P99_MS_500 = 300.0


class RunShape(Protocol):
    @property
    def duration_s(self) -> float: ...
    @property
    def rate_per_s(self) -> float: ...


@dataclass(slots=True)
class Row:
    server: str
    viewers: int
    figures: dict[str, Any]
    failures: list[str] = field(default_factory=list)

    def get(self, key: str) -> Any:
        return self.figures.get(key)

    def summary(self) -> str:
        f = self.figures
        return (
            f"{self.server} at {self.viewers}: {f['events_delivered_per_s']:.0f} events/s, "
            f"p99 {ms(f['latency_ms_p99'])} ms, missing {f['missing']}, load generator: "
            f"{f['loadgen_cpu_cores']:.2f} cores, rounds of reads up to "
            f"{f['loadgen_round_ms_max']:.0f} ms"
            + (f", FAILED: {self.failures}" if self.failures else "")
        )


def row_of(
    server: str,
    viewers: int,
    args: RunShape,
    results: list[Result],
    outcome: RunOutcome[Result],
    peak_rss_mib: float | None,
    first_seq: int,
) -> Row:
    """Figures and failures of one run; `first_seq` is the seq of the run's first event."""
    tl = outcome.timeline
    seen = [r for r in results if isinstance(r, ViewerResult)]
    sources = [r for r in results if isinstance(r, SourceResult)]
    sent_at: dict[int, float] = {}
    for s in sources:
        sent_at |= s.sent_at
    last_seq = max(sent_at, default=first_seq - 1)
    in_window = [seq for seq, t in sent_at.items() if tl.measure_from <= t < tl.stop_sending]

    missing = gaps = viewers_missing = 0
    for r in seen:
        for next_seq, gap in zip(r.next_seqs, r.gaps, strict=True):
            lost = gap + max(0, last_seq + 1 - next_seq)
            missing += lost
            gaps += gap
            viewers_missing += lost > 0
    latencies = latencies_ms(seen, sent_at, tl, len(in_window))
    delivered = sum(r.delivered_in_window for r in seen)
    server_cpu_s = outcome.server_cpu_s
    loadgen_cpu_s = sum(r.cpu_s for r in results)
    others = None
    if outcome.machine_cpu_s is not None and server_cpu_s is not None:
        others = max(0.0, outcome.machine_cpu_s - server_cpu_s - loadgen_cpu_s)
    closed: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for result in results:
        closed.update(result.closed)
    for s in sources:
        errors.update(s.errors)
    duration = args.duration_s
    figures: dict[str, Any] = {
        "server": server,
        "viewers": viewers,
        "cpus": os.cpu_count(),
        "rate_per_s": args.rate_per_s,
        "duration_s": duration,
        "events_published": len(sent_at),
        "events_sent_per_s": len(in_window) / duration,
        "deliveries_offered_per_s": len(in_window) * viewers / duration,
        "events_delivered_per_s": delivered / duration,
        "deliveries": sum(r.gifts_received for r in seen),  # whole run, every viewer
        "latency_ms_p50": percentile(latencies, 50),
        "latency_ms_p99": percentile(latencies, 99),
        "latency_ms_max": latencies[-1] if latencies else None,
        "latency_viewers_sampled": sum(len(r.samples) for r in seen),
        "missing": missing,
        "gaps": gaps,
        "viewers_with_missing": viewers_missing,
        "repeated": sum(r.repeated + r.late for r in seen),  # or out of order
        "sockets_closed_by_server": dict(closed),
        "welcome_mismatches": sum(r.welcome_mismatches for r in seen),
        "errors": dict(errors),
        "lost_requests": sum(s.lost_requests for s in sources),
        "source_lag_ms_max": max((s.send_lag_s_max for s in sources), default=0.0) * 1000,
        "server_cpu_s": server_cpu_s,
        "server_cpu_cores": None if server_cpu_s is None else server_cpu_s / duration,
        "server_cpu_s_per_million": (
            None if server_cpu_s is None or not delivered else server_cpu_s / delivered * 1e6
        ),
        "server_peak_rss_mib": peak_rss_mib,
        "loadgen_cpu_cores": loadgen_cpu_s / duration,
        "loadgen_round_ms_max": max((r.round_s_max for r in seen), default=0.0) * 1000,
        "loadgen_reads_per_round": max((r.reads_per_round for r in seen), default=0.0),
        "other_cpu_cores": None if others is None else others / duration,
        "event_bytes": max((len(r.sample_gift) for r in seen), default=0),
    }
    row = Row(server, viewers, figures)
    if not sent_at:
        row.failures.append("no event was sent")
    if gaps or figures["repeated"]:
        row.failures.append(f"{gaps} events skipped, {figures['repeated']} repeated/out of order")
    if closed:
        row.failures.append(f"sockets closed by the server: {dict(closed)}")
    if figures["welcome_mismatches"]:
        row.failures.append(f"{figures['welcome_mismatches']} welcomes at an unexpected seq")
    if figures["lost_requests"]:
        row.failures.append(f"{figures['lost_requests']} gift requests never answered")
    violations = [v for s in sources for v in s.violations]
    if violations:
        row.failures.append(f"contract violations, e.g. {violations[:3]}")
    if server == GIFTCAST and missing:
        row.failures.append(f"{missing} viewer-events lost ({viewers_missing} viewers)")
    return row


# --- the table and the targets --------------------------------------------------------------


def ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "lost"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def num(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def ratio(giftcast: Row | None, row: Row) -> float | None:
    if giftcast is None or not row.get("events_delivered_per_s"):
        return None
    return float(giftcast.get("events_delivered_per_s")) / float(row.get("events_delivered_per_s"))


def table_text(rows: list[Row], args: RunShape) -> str:
    head = (
        "| server | viewers | events/s delivered | giftcast x | latency p50 / p99 (ms) "
        "| server CPU s per M deliveries | server cores | peak RSS (MiB) | missing "
        "| load gen cores | other cores |"
    )
    lines = [
        f"Offered: {args.rate_per_s:g} events/s into one room for {args.duration_s:g} s "
        "(deliveries offered = events/s x viewers).",
        "",
        head,
        "|" + "---|" * head.count(" | ") + "---|",
    ]
    for row in rows:
        f = row.figures
        giftcast = next(
            (r for r in rows if r.server == GIFTCAST and r.viewers == row.viewers), None
        )
        lines.append(
            f"| {PEER_TITLES.get(row.server, row.server)} | {row.viewers:,} "
            f"| {num(f['events_delivered_per_s'])} | {num(ratio(giftcast, row), 2)} "
            f"| {ms(f['latency_ms_p50'])} / {ms(f['latency_ms_p99'])} "
            f"| {num(f['server_cpu_s_per_million'], 2)} | {num(f['server_cpu_cores'], 2)} "
            f"| {num(f['server_peak_rss_mib'])} | {f['missing']:,} "
            f"| {num(f['loadgen_cpu_cores'], 2)} | {num(f['other_cpu_cores'], 2)} |"
        )
    sizes = {r.server: r.get("event_bytes") for r in rows}
    lines.append(
        "\nOne gift event as received: "
        + ", ".join(f"{name} {size} bytes" for name, size in sizes.items())
    )
    lagging = [r for r in rows if r.get("source_lag_ms_max") > SOURCE_LAG_S_WARN * 1000]
    if lagging:
        lines.append(
            "\nThe source ran behind schedule (held back by the server, or short of CPU), by up "
            "to: "
            + ", ".join(
                f"{r.server} at {r.viewers:,} {r.get('source_lag_ms_max'):.0f} ms" for r in lagging
            )
        )
    return "\n".join(lines)


def target_lines(rows: list[Row], rate_per_s: float) -> list[str]:
    """The issue's targets, judged where giftcast was measured with 5,000 viewers."""
    if not any(r.server == GIFTCAST and r.viewers == TARGET_VIEWERS for r in rows):
        return [f"targets: judged at {TARGET_VIEWERS:,} viewers with giftcast; not measured here"]
    v = TARGET_VIEWERS
    at_v = {r.server: r for r in rows if r.viewers == v}
    giftcast = at_v[GIFTCAST]
    lines: list[str] = []

    def judge(text: str, ok: bool | None) -> None:
        verdict = "n/a" if ok is None else ("met" if ok else "NOT MET")
        lines.append(f"target at {v:,} viewers: {text}: {verdict}")

    for peer, factor in (("starlette_naive", TARGET_VS_NAIVE), ("ws_broadcast", TARGET_VS_FLOOR)):
        r = ratio(giftcast, at_v[peer]) if peer in at_v else None
        judge(
            f"giftcast >= {factor:g}x {peer} events/s (x{num(r, 2)})",
            None if r is None else r >= factor,
        )
    p99 = giftcast.get("latency_ms_p99")
    judge(
        f"giftcast p99 < {TARGET_P99_MS:g} ms ({ms(p99)})", p99 is not None and p99 < TARGET_P99_MS
    )
    if rate_per_s >= 500:
        judge(
            f"giftcast at {rate_per_s:g} gifts/s: nothing lost ({giftcast.get('missing')}) and "
            f"p99 < {TARGET_P99_MS_500:g} ms ({ms(p99)})",
            giftcast.get("missing") == 0 and p99 is not None and p99 < TARGET_P99_MS_500,
        )
    return lines
