"""bench/results/<date>.md: every case of every database, and the issue's targets marked met or not."""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from bench.cases import Case
from bench.order_events import Result as OrderEventsResult

DEMO_DATA_LIMIT_S = 300


@dataclass
class Load:
    """How long `crm demo-data` took for this database: in this run, or as recorded when it ran."""

    seconds: float | None
    customers: int | None = None
    when: str | None = None
    this_run: bool = False

    def describe(self) -> str:
        if self.seconds is None:
            return "the data was loaded without a recorded time (`--reload` measures it)"
        where = "in this run" if self.this_run else f"on {self.when} (recorded by an earlier run)"
        return f"{self.customers:,} customers in {self.seconds:.0f} s, {where}"


@dataclass(frozen=True)
class Posted:
    """The measured POST run's creates, checked against the rows stored."""

    answered: int  # 201 answers
    answered_twice: int  # the same email answered 201 more than once
    missing: int  # answered 201, not stored
    stored_twice: int  # emails stored more than once
    unanswered: int  # stored, answer not seen: in flight when wrk stopped (at most one per connection)

    def exactly_once(self, connections: int) -> bool:
        return self.answered_twice == self.missing == self.stored_twice == 0 and self.unanswered <= connections

    def describe(self) -> str:
        text = f"{self.answered:,} answered 201, "
        if self.answered_twice or self.missing or self.stored_twice:
            text += (
                f"**{self.missing} of them not stored, {self.stored_twice} stored twice, "
                f"{self.answered_twice} answered twice**"
            )
        else:
            text += "each stored exactly once"
        return text + f"; {self.unanswered} more stored while in flight when wrk stopped"


@dataclass
class DatabaseRun:
    label: str  # "embedded PostgreSQL 18, tuned" or the server's URL without a password
    server: str  # SELECT version()
    settings: dict[str, str]
    sizes: dict[str, int]
    load: Load
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    rss: list[int] = field(default_factory=list)  # peak per worker process, bytes
    connections: int = 32
    posted: Posted | None = None
    # GET by id with metrics off, on, and with tracing (bench/run.py OBSERVABILITY_VARIANTS)
    observability: dict[str, dict[str, Any]] = field(default_factory=dict)
    # bench/events.py's table: commit-to-broker latency and relay throughput
    events: list[str] = field(default_factory=list)
    # N order events through RabbitMQ into the projection (bench/order_events.py)
    order_events: OrderEventsResult | None = None


def output_path(results_dir: Path) -> Path:
    """Today's file; a second run on the same day gets -2, -3, ...: earlier results stay."""
    day = f"{datetime.now(UTC):%Y-%m-%d}"
    path = results_dir / f"{day}.md"
    number = 2
    while path.exists():
        path = results_dir / f"{day}-{number}.md"
        number += 1
    return path


def write(path: Path, header: list[str], cases: list[Case], runs: list[DatabaseRun]) -> None:
    lines = [f"# Benchmark {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", ""]
    lines += [
        f"- machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; wrk on the same machine",
        *header,
        "",
    ]
    summary = ["## Targets, per database", "", "| target | " + " | ".join(r.label for r in runs) + " |"]
    summary.append("|---|" + "---|" * len(runs))
    verdicts = [{name: (measured, met) for name, measured, met in targets(cases, run)} for run in runs]
    for name in dict.fromkeys(name for v in verdicts for name in v):
        cells = [f"{verdict(v[name][1])}: {v[name][0]}" if name in v else "-" for v in verdicts]
        summary.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [*summary, ""]
    for run in runs:
        lines += database_section(cases, run)
    path.write_text("\n".join(lines) + "\n")


def database_section(cases: list[Case], run: DatabaseRun) -> list[str]:
    sizes = run.sizes
    lines = [
        f"## {run.label}",
        "",
        f"- server: {run.server}",
        "- settings: " + ", ".join(f"{k}={v}" for k, v in run.settings.items()),
        f"- data: {sizes['customers']:,} customers, {sizes['contacts']:,} contacts, "
        f"{sizes['interactions']:,} interactions",
        f"- `crm demo-data`: {run.load.describe()}",
        "- peak RSS per worker process: " + ", ".join(f"{v / 2**20:.0f} MB" for v in sorted(run.rss)),
        "",
        "| case | request | alone ms | requests/s | p50 ms | p99 ms | max ms | errors | timeouts | target | met |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for case in cases:
        r = run.results.get(case.name)
        if r is None:
            continue
        request = f"`{urllib.parse.unquote(case.path.replace('{q}', case.values[0] if case.values else ''))}`"
        if len(case.values) > 1:
            request += f" and {len(case.values) - 1} more"
        lines.append(
            f"| {case.name} | {request} | {r['alone_ms']:.0f}{status(r)} | {r['rps']:.0f} | {r['p50_ms']:.1f} "
            f"| {r['p99_ms']:.1f} | {r['max_ms']:.0f} | {r['errors']} | {r['timeouts']} "
            f"| {CASE_TARGETS[case.target]} | {'-' if case.baseline else verdict(case_met(case, cases, run))} |"
        )
    lines.append("")
    lines.append(
        "alone: one request with the case's first values, before the load; an answer other than 2xx fails the case."
    )
    lines.append("")
    lines.append("| target | measured | verdict |")
    lines.append("|---|---|---|")
    lines += [f"| {name} | {measured} | {verdict(met)} |" for name, measured, met in targets(cases, run)]
    events = ["Events (bench/events.py):", "", *run.events, ""] if run.events else []
    return [*lines, "", *observability_section(run), *events]


def observability_section(run: DatabaseRun) -> list[str]:
    """GET by id with metrics off and on and with tracing, each on a freshly started service."""
    costs = run.observability
    off = costs.get("metrics off")
    if not costs or off is None:
        return []
    lines = [
        "GET customer by id with the service's observability set each way (each on a freshly started service):",
        "",
        "| setting | requests/s | vs metrics off | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in costs.items():
        lines.append(
            f"| {name} | {r['rps']:.0f} | {r['rps'] / off['rps']:.0%} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} "
            f"| {r['errors']} |"
        )
    on = costs.get("metrics on (the default)")
    if on is not None:
        met = on["rps"] >= 0.95 * off["rps"]
        lines += ["", f"Metrics cost within 5% of metrics off: {verdict(met)} ({on['rps'] / off['rps']:.0%})."]
    return [*lines, ""]


CASE_TARGETS = {
    "get": "p99 < 100 ms",
    "fast": "p99 < 50 ms",
    "by_id": "p99 < 50 ms, >= 75% of baseline",
    "post": ">= 1,000/s, stored once",
    "baseline": "-",
}


def clean(r: dict[str, Any]) -> bool:
    """Answers came, and every one of them 2xx in time."""
    return bool(r["requests"] > 0 and r["errors"] == 0 and r["timeouts"] == 0 and r["alone_status"] < 300)


def case_met(case: Case, cases: list[Case], run: DatabaseRun) -> bool | None:
    r = run.results[case.name]
    if case.target == "baseline":
        return None
    if case.target == "post":
        once = run.posted is not None and run.posted.exactly_once(run.connections)
        return r["rps"] >= 1000 and once and clean(r)
    if case.target == "by_id":
        base = next((c.name for c in cases if c.target == "baseline"), None)
        if base is None or base not in run.results:
            return None
        return r["rps"] >= 0.75 * run.results[base]["rps"] and r["p99_ms"] < 50 and clean(r)
    return r["p99_ms"] < (50 if case.target == "fast" else 100) and clean(r)


def status(r: dict[str, Any]) -> str:
    return "" if r["alone_status"] < 300 else f" (**{r['alone_status']}**)"


def verdict(met: bool | None) -> str:
    return "not measured" if met is None else "met" if met else "**not met**"


def targets(cases: list[Case], run: DatabaseRun) -> list[tuple[str, str, bool | None]]:
    """The issue's targets against one database's results: (target, what was measured, met)."""
    results = run.results
    gets = [c for c in cases if c.target in ("get", "fast", "by_id") and c.name in results]
    worst = max(gets, key=lambda c: results[c.name]["p99_ms"], default=None)
    failing = [c.name for c in gets if results[c.name]["p99_ms"] >= 100 or not clean(results[c.name])]
    rows: list[tuple[str, str, bool | None]] = []
    if worst is not None:
        measured = f"{len(gets) - len(failing)} of {len(gets)} met; worst p99 {results[worst.name]['p99_ms']:.0f} ms"
        rows.append(("every GET: p99 < 100 ms, no errors or timeouts", f"{measured} ({worst.name})", not failing))
    by_id = next((c for c in cases if c.target == "by_id" and c.name in results), None)
    base = next((c for c in cases if c.target == "baseline" and c.name in results), None)
    if by_id is not None and base is not None:
        r = results[by_id.name]
        ratio = r["rps"] / results[base.name]["rps"]
        rows.append(
            (
                "GET customer by id: >= 75% of the bare baseline, p99 < 50 ms",
                f"{ratio:.0%} ({r['rps']:.0f} / {results[base.name]['rps']:.0f} req/s), p99 {r['p99_ms']:.0f} ms",
                ratio >= 0.75 and r["p99_ms"] < 50 and clean(r),
            )
        )
    fast = [c for c in cases if c.target == "fast" and c.name in results]
    if fast:
        rows.append(
            (
                "first page, cursor page, segments, all-time statistics: p99 < 50 ms",
                "; ".join(f"{c.name} {results[c.name]['p99_ms']:.0f} ms" for c in fast),
                all(results[c.name]["p99_ms"] < 50 and clean(results[c.name]) for c in fast),
            )
        )
    post = next((c for c in cases if c.target == "post" and c.name in results), None)
    if post is not None and run.posted is not None:
        r = results[post.name]
        rows.append(
            (
                "POST customer: >= 1,000/s, each stored exactly once",
                f"{r['rps']:.0f}/s; {run.posted.describe()}; {r['non2xx']} non-2xx, {r['timeouts']} timeouts",
                r["rps"] >= 1000 and run.posted.exactly_once(run.connections) and clean(r),
            )
        )
    if run.order_events is not None:
        events = run.order_events
        rows.append(
            (
                "order events: >= 2,000/s consumed, the projection exact after",
                events.describe(),
                events.per_second >= 2000 and events.exact,
            )
        )
    peak = max(run.rss, default=0) / 2**20
    rows.append(("memory: < 250 MB RSS per worker", f"{peak:.0f} MB peak", 0 < peak < 250))
    load = run.load
    rows.append(
        (
            "`crm demo-data --customers 1000000`: < 5 minutes",
            load.describe(),
            None if load.seconds is None or load.customers != 1_000_000 else load.seconds < DEMO_DATA_LIMIT_S,
        )
    )
    return rows
