"""What a run leaves behind: a summary table on the terminal, a JSON report, and an HTML
report with latency-over-time and throughput-over-time charts as inline SVG (no scripts, no
fonts, nothing fetched: the file opens anywhere, offline).

`build()` makes the JSON document from the run's seconds and totals; `summary_table()` and
`html()` render that document, so all three always agree.
"""

from __future__ import annotations

import html as h
from collections.abc import Sequence
from typing import Any

CHART_W, CHART_H, PAD = 760, 240, 48
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd")


def summary_table(doc: dict[str, Any]) -> str:
    t, lat = doc["totals"], doc["latency"]
    rows = [
        ("duration (s)", f"{doc['measured_s']:.1f}"),
        ("sockets (peak)", f"{t['sockets_peak']:,}"),
        ("gifts sent / acknowledged", f"{t['gifts_sent']:,} / {t['gifts_acked']:,}"),
        ("gifts/s acknowledged", f"{t['gifts_acked_per_s']:,.1f}"),
        ("events delivered (/s)", f"{t['events']:,} ({t['events_per_s']:,.0f}/s)"),
        ("ack latency p50 / p99 / max (ms)", _lat(lat["ack"])),
        ("delivery latency p50 / p99 / max (ms)", _lat(lat["delivery"])),
        (
            "reconnects, sign-ups, recharges",
            f"{t['reconnects']:,}, {t['signups']:,}, {t['recharges']:,}",
        ),
        ("errors", ", ".join(f"{k} {v}" for k, v in doc["errors"].items()) or "none"),
        (
            "load generator CPU (cores, mean / peak worker)",
            f"{doc['cpu']['client_cores_mean']:.2f} / {doc['cpu']['worker_peak_cores']:.2f}",
        ),
        ("server CPU (cores, mean)", _num(doc["cpu"]["server_cores_mean"])),
        ("verification", _verdict(doc)),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)


def _verdict(doc: dict[str, Any]) -> str:
    v = doc["verification"]
    if v is None:
        return "not run"
    if v["passed"]:
        return "PASS (" + ", ".join(f"{k} {n:,}" for k, n in v["checked"].items()) + ")"
    return f"FAIL: {len(v['problems'])} problem(s)"


def _lat(s: dict[str, Any]) -> str:
    return f"{_num(s['p50_ms'])} / {_num(s['p99_ms'])} / {_num(s['max_ms'])}"


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:,.1f}"


# --- HTML ------------------------------------------------------------------------------------


def _ticks(top: float) -> list[float]:
    if top <= 0:
        return [0.0]
    step = 10 ** len(str(int(top))) / 10
    while top / step > 6:
        step *= 2
    while top / step < 3 and step > 1e-9:
        step /= 2
    return [i * step for i in range(int(top / step) + 1)]


def svg_chart(
    title: str, xs: Sequence[float], series: Sequence[tuple[str, Sequence[float | None]]], unit: str
) -> str:
    """A line chart as inline SVG: one polyline per series (gaps where a value is None)."""
    values = [v for _, vs in series for v in vs if v is not None]
    top = max(values, default=1.0) * 1.1 or 1.0
    x0, x1 = min(xs, default=0.0), max(xs, default=1.0)
    span = (x1 - x0) or 1.0

    def px(x: float) -> float:
        return PAD + (x - x0) / span * (CHART_W - 2 * PAD)

    def py(y: float) -> float:
        return CHART_H - PAD + -y / top * (CHART_H - 2 * PAD)

    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{CHART_W}" '
        f'height="{CHART_H}" viewBox="0 0 {CHART_W} {CHART_H}" role="img">',
        f"<title>{h.escape(title)}</title>",
        f'<text x="{PAD}" y="18" font-size="14" font-weight="bold">{h.escape(title)}</text>',
        f'<line x1="{PAD}" y1="{CHART_H - PAD}" x2="{CHART_W - PAD}" y2="{CHART_H - PAD}"'
        ' stroke="#333"/>',
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{CHART_H - PAD}" stroke="#333"/>',
    ]
    for tick in _ticks(top):
        y = py(tick)
        parts.append(
            f'<line x1="{PAD}" y1="{y:.1f}" x2="{CHART_W - PAD}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{PAD - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">'
            f"{tick:g}</text>"
        )
    for tick in _ticks(x1 - x0):
        parts.append(
            f'<text x="{px(x0 + tick):.1f}" y="{CHART_H - PAD + 14}" font-size="10"'
            f' text-anchor="middle">{x0 + tick:g}</text>'
        )
    parts.append(
        f'<text x="{CHART_W / 2}" y="{CHART_H - 12}" font-size="11" text-anchor="middle">'
        f"seconds since gifting started; y: {h.escape(unit)}</text>"
    )
    for i, (name, vs) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        runs: list[list[str]] = [[]]
        for x, v in zip(xs, vs, strict=True):
            if v is None:
                runs.append([])
            else:
                runs[-1].append(f"{px(x):.1f},{py(v):.1f}")
        for run in runs:
            if run:
                parts.append(
                    f'<polyline fill="none" stroke="{colour}" stroke-width="1.5"'
                    f' points="{" ".join(run)}"/>'
                )
        lx = PAD + 10 + i * 150
        parts.append(
            f'<rect x="{lx}" y="{PAD - 18}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{lx + 14}" y="{PAD - 9}" font-size="11">{h.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def html(doc: dict[str, Any]) -> str:
    rows = [r for r in doc["seconds"] if r["t"] >= 0]
    xs = [float(r["t"]) for r in rows]

    def col(name: str) -> list[float | None]:
        return [r[name] for r in rows]

    charts = [
        svg_chart(
            "Latency over time",
            xs,
            [
                ("ack p50", col("ack_p50_ms")),
                ("ack p99", col("ack_p99_ms")),
                ("delivery p50", col("delivery_p50_ms")),
                ("delivery p99", col("delivery_p99_ms")),
            ],
            "ms",
        ),
        svg_chart(
            "Gift throughput over time",
            xs,
            [("gifts sent/s", col("gifts_sent")), ("gifts acked/s", col("gifts_acked"))],
            "gifts per second",
        ),
        svg_chart("Delivered events over time", xs, [("events/s", col("events"))], "events/s"),
        svg_chart(
            "CPU over time",
            xs,
            [("load generator", col("client_cpu_cores")), ("server", col("server_cpu_cores"))],
            "cores",
        ),
    ]
    table = "".join(
        f"<tr><th>{h.escape(k)}</th><td>{h.escape(v)}</td></tr>"
        for k, v in (line.strip().split("  ", 1) for line in summary_table(doc).splitlines())
    )
    v = doc["verification"]
    verdict = "not run" if v is None else ("PASS" if v["passed"] else "FAIL")
    problems = (
        ""
        if v is None or v["passed"]
        else (
            "<h2>Verification problems</h2><ul>"
            + "".join(f"<li>{h.escape(p)}</li>" for p in v["problems"])
            + "</ul>"
        )
    )
    warnings = "".join(f"<li>{h.escape(w)}</li>" for w in doc["warnings"])
    scenario = "".join(
        f"<tr><th>{h.escape(k)}</th><td>{h.escape(str(val))}</td></tr>"
        for k, val in doc["scenario"].items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>giftcast load test {h.escape(doc["started_at"])}: {verdict}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ text-align: left; padding: 2px 12px 2px 0; vertical-align: top; }}
.verdict {{ font-size: 20px; font-weight: bold; }}
.PASS {{ color: #2a7d2a; }} .FAIL {{ color: #b00020; }}
svg.chart {{ display: block; margin: 1em 0; }}
</style></head><body>
<h1>giftcast load test</h1>
<p>Started {h.escape(doc["started_at"])} against {h.escape(doc["target"])}.</p>
<p class="verdict {verdict}">Verification: {verdict}</p>
{problems}
<h2>Summary</h2><table>{table}</table>
{"<h2>Warnings</h2><ul>" + warnings + "</ul>" if warnings else ""}
<h2>Charts</h2>
{"".join(charts)}
<h2>Scenario</h2><table>{scenario}</table>
</body></html>
"""
