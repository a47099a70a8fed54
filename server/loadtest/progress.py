"""The live progress line, refreshed each second: sockets, gifts/s, delivered events/s,
p50/p99 ack and delivery latency, errors by code, CPU of the load generator and the server.

On a terminal the line is rewritten in place; otherwise (a log, a pipe) one line is printed
every `PLAIN_EVERY_S` seconds so a log stays readable.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import TextIO

from server.loadtest.stats import Second

PLAIN_EVERY_S = 5
ERRORS_SHOWN = 4


def ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def line(s: Second, duration_s: float, errors_total: Counter[str]) -> str:
    """One second as a line (the errors are the run's totals so far)."""
    gifts, events = s.counts["gifts_sent"], s.counts["events"]
    errors = ", ".join(f"{code} {n}" for code, n in errors_total.most_common(ERRORS_SHOWN))
    cpu = f"client {sum(s.worker_cpu.values()):.2f}"
    if s.server_cpu is not None:
        cpu += f" server {s.server_cpu:.2f}"
    return (
        f"{s.t:>4}/{duration_s:.0f}s  sockets {s.sockets:,}  gifts/s {gifts:,}"
        f" (acked {s.counts['gifts_acked']:,})  events/s {events:,}"
        f"  ack p50/p99 {ms(s.ack_ms.percentile(50))}/{ms(s.ack_ms.percentile(99))} ms"
        f"  delivery p50/p99 {ms(s.delivery_ms.percentile(50))}/"
        f"{ms(s.delivery_ms.percentile(99))} ms  errors: {errors or 'none'}  cores: {cpu}"
    )


class Progress:
    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.tty = self.out.isatty()
        self.dirty = False

    def second(self, s: Second, duration_s: float, errors_total: Counter[str]) -> None:
        text = line(s, duration_s, errors_total)
        if self.tty:
            self.out.write("\r\x1b[K" + text)
            self.dirty = True
        elif s.t % PLAIN_EVERY_S == 0:
            self.out.write(text + "\n")
        self.out.flush()

    def say(self, text: str) -> None:
        """A line of its own (a phase, a warning), never overwritten."""
        if self.dirty:
            self.out.write("\n")
            self.dirty = False
        self.out.write(text + "\n")
        self.out.flush()
