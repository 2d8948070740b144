"""Portal read benchmark: the DESIGN.md §9 performance budget, measured as a ratio.

Starts the whole stack in its own namespace (``devstack.Stack.isolated``), sets up
one business, API key, customer and portal session the way a merchant and a
customer would (auth's gRPC API, the official SDK, the magic link's confirm
form), then drives three read scenarios with a bounded closed-loop load
generator against 127.0.0.1 only:

1. ``baseline``: ``GET /customers/{id}`` with the API key — the plain
   gateway → auth → database read chain (API-key cache warm);
2. ``portal_profile``: ``GET /test/b/{business}/profile`` with the session cookie;
3. ``portal_home``: ``GET /test/b/{business}/``.

For each it reports requests/s, p50/p95/p99 latency and errors; the portal
scenarios also get their throughput as a ratio of the baseline (the budget:
≥ 0.5) and the gRPC calls one page costs, counted from the services' own
``/metrics`` (the budget: about three). The result is printed and written to
``bench/results/portal_read-<date>.json``.

Run from the repository root::

    uv run --frozen python bench/portal_read.py --seconds 10 --concurrency 16

Not a test: nothing here asserts a time. Read ``bench/README.md`` for what the
numbers mean.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from devstack import Stack
from devstack.portal import PortalHttp, business_cookie
from devstack.topology import BACKEND_SERVICES
from dodopayments import AsyncDodoPayments
from gateway.config import GatewaySettings
from prometheus_client.parser import text_string_to_metric_families

log = logging.getLogger("bench.portal_read")


def machine_facts(load_at_start: tuple[float, ...] | list[float]) -> dict[str, Any]:
    """What a result file says about the machine it was measured on."""
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_at_start": [round(v, 2) for v in load_at_start],
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        "note": "load generator shares the CPUs with the stack",
    }


def run_parameters(args: argparse.Namespace, startup: float, stack: Stack) -> dict[str, Any]:
    """The command line of a run (without where it writes) and how the stack started."""
    return {
        **{k: v for k, v in vars(args).items() if k not in {"output", "keep_data"}},
        "stack_startup_seconds": round(startup, 2),
        "log_level": stack.log_level,
    }


RESULTS_DIR = Path(__file__).resolve().parent / "results"
# DESIGN.md §9: a portal read reaches half the baseline chain and costs about three calls.
TARGET_RATIO = 0.5
TARGET_CALLS_PER_PAGE = 3.0
# Gateway default (GATEWAY_SESSION_CACHE_SECONDS); waiting past it makes the next
# page resolve its session with auth again.
SESSION_CACHE_SECONDS = 5.0
# Upper bounds that keep a mistaken invocation from loading the machine for long.
MAX_SECONDS = 120.0
MAX_CONCURRENCY = 256
REQUEST_TIMEOUT_SECONDS = 10.0
# Error samples kept per scenario (status or exception name), for the report only.
MAX_ERROR_SAMPLES = 5


@dataclass(frozen=True)
class Target:
    """One scenario: what to GET, with which credentials, and which status is success."""

    name: str
    url: str
    headers: dict[str, str]
    expected_status: int = 200


@dataclass
class LoadResult:
    """What one measured phase of a scenario produced."""

    requests: int = 0
    errors: int = 0
    elapsed_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    error_samples: Counter[str] = field(default_factory=Counter)

    @property
    def requests_per_second(self) -> float:
        """Successful responses per wall-clock second of the phase."""
        return self.requests / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    def add(self, other: LoadResult) -> None:
        """Fold another slice of the same scenario into this one."""
        self.requests += other.requests
        self.errors += other.errors
        self.elapsed_seconds += other.elapsed_seconds
        self.latencies.extend(other.latencies)
        self.error_samples.update(other.error_samples)


def difference(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """``after - before`` per key (counters and CPU seconds only grow)."""
    return {key: after[key] - before.get(key, 0.0) for key in after}


def accumulate(total: dict[str, float], more: dict[str, float]) -> None:
    """Add ``more`` into ``total`` per key."""
    for key, value in more.items():
        total[key] = total.get(key, 0.0) + value


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, round(fraction * len(sorted_values) + 0.5))
    return sorted_values[min(rank, len(sorted_values)) - 1]


async def run_load(
    session: aiohttp.ClientSession,
    target: Target,
    *,
    seconds: float,
    concurrency: int,
    max_requests: int,
) -> LoadResult:
    """A closed loop: ``concurrency`` workers, each sends its next request when the
    previous one is answered, until ``seconds`` pass or ``max_requests`` were sent.

    Closed loop on purpose: the load can never exceed what the stack answers, so
    the run stays bounded, and throughput at a fixed concurrency is what we compare.
    """
    result = LoadResult()
    started = time.perf_counter()
    deadline = started + seconds
    budget = [max_requests]

    async def worker() -> None:
        while time.perf_counter() < deadline and budget[0] > 0:
            budget[0] -= 1
            sent = time.perf_counter()
            try:
                async with session.get(
                    target.url, headers=target.headers, allow_redirects=False
                ) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                result.errors += 1
                result.error_samples[type(exc).__name__] += 1
                continue
            if status != target.expected_status:
                result.errors += 1
                result.error_samples[f"HTTP {status}"] += 1
                continue
            result.requests += 1
            result.latencies.append(time.perf_counter() - sent)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed_seconds = time.perf_counter() - started
    return result


# --- gRPC call counting from /metrics ----------------------------------------------------


async def rpc_counts(session: aiohttp.ClientSession, stack: Stack) -> dict[str, float]:
    """``{"<service> <method>": count}`` of gRPC calls every backend has served so far.

    From ``rpc_server_duration_seconds_count`` on each backend's /metrics; gRPC's own
    health and reflection methods are left out (probes, not page work).
    """
    counts: dict[str, float] = {}
    for service in BACKEND_SERVICES:
        async with session.get(f"{stack.ops_url(service)}/metrics") as response:
            response.raise_for_status()
            text = await response.text()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name != "rpc_server_duration_seconds_count":
                    continue
                method = sample.labels.get("method", "")
                if method.startswith("/grpc."):
                    continue
                key = f"{service} {method.rsplit('/', 1)[-1]}"
                counts[key] = counts.get(key, 0.0) + sample.value
    return counts


def per_request(calls: dict[str, float], pages: int) -> dict[str, Any]:
    """gRPC calls per page from the calls made while serving ``pages``, per service method."""
    deltas = {k: v for k, v in calls.items() if v > 0}
    total = sum(deltas.values())
    return {
        "pages": pages,
        "calls": int(total),
        "calls_per_page": round(total / pages, 3) if pages else None,
        "by_method": {k: round(v / pages, 3) for k, v in sorted(deltas.items())} if pages else {},
    }


async def count_calls(
    session: aiohttp.ClientSession, stack: Stack, target: Target, pages: int
) -> dict[str, Any]:
    """gRPC calls per page for ``pages`` sequential requests (nothing else runs meanwhile)."""
    before = await rpc_counts(session, stack)
    done = 0
    for _ in range(pages):
        async with session.get(target.url, headers=target.headers, allow_redirects=False) as r:
            await r.read()
            if r.status == target.expected_status:
                done += 1
    after = await rpc_counts(session, stack)
    return per_request(difference(before, after), done)


# --- where the CPU goes -------------------------------------------------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _process_cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of one process so far (from /proc/<pid>/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return 0.0
    # Fields after the command name (which may contain spaces and parentheses).
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores (/proc/stat)."""
    try:
        first = Path("/proc/stat").read_text(encoding="ascii").splitlines()[0]
    except OSError:
        return 0.0, 0.0
    ticks = [int(v) for v in first.split()[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    total = sum(ticks[:8])  # guest time is already counted in user
    return (total - idle) / _CLOCK_TICKS, total / _CLOCK_TICKS


def cpu_snapshot(stack: Stack) -> dict[str, float]:
    """CPU seconds used so far by every process of the stack and by this load generator.

    Reads a handful of small /proc files: microseconds, so fine between phases.
    """
    pids: dict[str, int | None] = {name: p.pid for name, p in stack.services.items()}
    if stack.mongo is not None:
        pids["secantusdb"] = stack.mongo.pid
    snapshot = {name: _process_cpu_seconds(pid) for name, pid in pids.items() if pid}
    times = os.times()
    snapshot["load_generator"] = times.user + times.system
    # Whole machine: other people's processes show up as the difference.
    snapshot["@machine_busy"], snapshot["@machine_total"] = _machine_cpu_seconds()
    return snapshot


def cpu_per_request(cpu_used: dict[str, float], requests: int, elapsed: float) -> dict[str, Any]:
    """CPU milliseconds per request and CPU cores busy, per process, over a scenario."""
    used = dict(cpu_used)
    machine_busy = used.pop("@machine_busy", 0.0)
    used.pop("@machine_total", None)
    busy = {name: seconds for name, seconds in used.items() if seconds > 0}
    ours = sum(busy.values())
    return {
        "cpu_ms_per_request": {
            name: round(seconds * 1000 / requests, 3) if requests else None
            for name, seconds in sorted(busy.items(), key=lambda kv: -kv[1])
        },
        "cores_busy": {
            name: round(seconds / elapsed, 2) if elapsed else None
            for name, seconds in sorted(busy.items(), key=lambda kv: -kv[1])
        },
        "cores_busy_total": round(ours / elapsed, 2) if elapsed else None,
        # Everything else on the machine in the same window (other test runs, the
        # broker, the OS): high values mean the numbers above were squeezed.
        "cores_busy_elsewhere": round(max(machine_busy - ours, 0.0) / elapsed, 2)
        if elapsed
        else None,
    }


# --- setting the scene as a merchant and a customer --------------------------------------


@dataclass(frozen=True)
class Scene:
    """The business, key, customer and signed-in session the scenarios read with."""

    business_id: str
    api_key: str
    customer_id: str
    session_cookie: tuple[str, str]


async def set_scene(stack: Stack) -> Scene:
    """Business + API key (auth's gRPC API), customer + magic link (the official SDK),
    and a session from the link's confirm form (raw HTTP, as a browser would post it)."""
    merchant = await stack.create_business(f"Bench {uuid.uuid4().hex[:8]}")
    async with AsyncDodoPayments(
        bearer_token=merchant.api_key_secret, base_url=stack.gateway_url, max_retries=0
    ) as sdk:
        customer = await sdk.customers.create(
            email=f"bench-{uuid.uuid4().hex[:10]}@example.com", name="Bench Customer"
        )
        link = (await sdk.customers.customer_portal.create(customer.customer_id)).link
    async with PortalHttp.new_session() as http_session:
        cookie_value = await PortalHttp(http_session).sign_in_with_link(
            link, "test", merchant.business_id
        )
    return Scene(
        business_id=merchant.business_id,
        api_key=merchant.api_key_secret,
        customer_id=customer.customer_id,
        session_cookie=(business_cookie("test", merchant.business_id), cookie_value),
    )


def targets(stack: Stack, scene: Scene) -> list[Target]:
    """The three scenarios, baseline first."""
    portal = f"{stack.portal_urls.test}/b/{scene.business_id}"
    cookie = {"Cookie": f"{scene.session_cookie[0]}={scene.session_cookie[1]}"}
    return [
        Target(
            "baseline",
            f"{stack.gateway_url}/customers/{scene.customer_id}",
            {"Authorization": f"Bearer {scene.api_key}"},
        ),
        Target("portal_profile", f"{portal}/profile", cookie),
        Target("portal_home", f"{portal}/", cookie),
    ]


# --- the run -----------------------------------------------------------------------------


def summarise(result: LoadResult) -> dict[str, Any]:
    """The numbers of one measured phase (latencies in milliseconds)."""
    ordered = sorted(result.latencies)
    return {
        "requests": result.requests,
        "errors": result.errors,
        "error_samples": dict(result.error_samples.most_common(MAX_ERROR_SAMPLES)),
        "elapsed_seconds": round(result.elapsed_seconds, 3),
        "requests_per_second": round(result.requests_per_second, 1),
        "latency_ms": {
            "p50": round(percentile(ordered, 0.50) * 1000, 2),
            "p95": round(percentile(ordered, 0.95) * 1000, 2),
            "p99": round(percentile(ordered, 0.99) * 1000, 2),
            "max": round(ordered[-1] * 1000, 2) if ordered else 0.0,
        },
    }


@dataclass(frozen=True)
class GatewayCaches:
    """How long the stack's gateway keeps a resolved session and a business."""

    session_seconds: float
    business_seconds: float

    @property
    def worst_seconds(self) -> float:
        """After this long unused, neither is cached any more."""
        return max(self.session_seconds, self.business_seconds)

    @classmethod
    def of(cls, stack: Stack) -> GatewayCaches:
        """The gateway's environment when set, else the settings' defaults."""
        env = stack.services["gateway"].env
        fields = GatewaySettings.model_fields

        def seconds(name: str) -> float:
            raw = env.get(f"GATEWAY_{name.upper()}")
            return float(raw) if raw else float(fields[name].default)

        return cls(seconds("session_cache_seconds"), seconds("business_cache_seconds"))


@dataclass(frozen=True)
class ColdScenes:
    """A business + signed-in customer per portal page, left alone until the cold probe."""

    profile: Scene
    home: Scene
    ready_at: float


async def measure(
    stack: Stack, scene: Scene, cold_scenes: ColdScenes, args: argparse.Namespace
) -> dict[str, dict[str, Any]]:
    """Warm up and measure every scenario in turn; count gRPC calls per page."""
    caches = GatewayCaches.of(stack)
    out: dict[str, dict[str, Any]] = {}
    connector = aiohttp.TCPConnector(limit=args.concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
    # No cookie jar: the session cookie goes explicitly in a header (a __Host- cookie
    # is Secure, which aiohttp would not send back over http://).
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()
    ) as session:
        scenarios = targets(stack, scene)
        for target in scenarios:
            log.info("%s: warm-up %.0fs", target.name, args.warmup)
            await run_load(
                session,
                target,
                seconds=args.warmup,
                concurrency=args.concurrency,
                max_requests=args.max_requests,
            )
        # Interleaved slices: load from outside this benchmark (other test runs on
        # the same 2 cores) drifts over a minute; alternating the scenarios spreads
        # that drift over all of them instead of penalising whichever ran last.
        results = {t.name: LoadResult() for t in scenarios}
        calls: dict[str, dict[str, float]] = {t.name: {} for t in scenarios}
        cpu: dict[str, dict[str, float]] = {t.name: {} for t in scenarios}
        per_round: list[dict[str, float]] = []
        slice_seconds = args.seconds / args.rounds
        for round_number in range(1, args.rounds + 1):
            log.info("round %d/%d: %.1fs per scenario", round_number, args.rounds, slice_seconds)
            this_round: dict[str, float] = {}
            for target in scenarios:
                rpc_before = await rpc_counts(session, stack)
                cpu_before = cpu_snapshot(stack)
                result = await run_load(
                    session,
                    target,
                    seconds=slice_seconds,
                    concurrency=args.concurrency,
                    max_requests=args.max_requests,
                )
                accumulate(cpu[target.name], difference(cpu_before, cpu_snapshot(stack)))
                accumulate(
                    calls[target.name], difference(rpc_before, await rpc_counts(session, stack))
                )
                results[target.name].add(result)
                this_round[target.name] = round(result.requests_per_second, 1)
            per_round.append(this_round)
        for target in scenarios:
            result = results[target.name]
            pages = result.requests + result.errors
            summary = summarise(result)
            summary["url_path"] = target.url.removeprefix(stack.gateway_url)
            summary["requests_per_second_by_round"] = [r[target.name] for r in per_round]
            summary["cpu"] = cpu_per_request(cpu[target.name], pages, result.elapsed_seconds)
            # Calls under load include the session/business cache refreshes the
            # run happened to hit: the steady-state cost per page.
            summary["grpc_under_load"] = per_request(calls[target.name], pages)
            out[target.name] = summary
            log.info(
                "%s: %.0f req/s, p50 %.1f ms, p99 %.1f ms, %d errors",
                target.name,
                result.requests_per_second,
                summary["latency_ms"]["p50"],
                summary["latency_ms"]["p99"],
                result.errors,
            )

        # A page with the session cache warm (the business cache too): sequential, so
        # nothing else runs between the two /metrics snapshots.
        for target in targets(stack, scene):
            out[target.name]["grpc_cache_warm"] = await count_calls(session, stack, target, 20)
        # A page whose session the gateway has not seen for longer than its cache keeps
        # it: auth is asked again. One page per wait, or the first would warm the second.
        for target in targets(stack, scene)[1:]:
            await asyncio.sleep(caches.session_seconds + 1.0)
            out[target.name]["grpc_session_cache_cold"] = await count_calls(
                session, stack, target, 1
            )
        # Worst case: neither the session nor the business is cached (each page has a
        # business and session of its own, unused since the sign-in that set it up).
        wait = cold_scenes.ready_at + caches.worst_seconds + 1.0 - time.monotonic()
        if wait > 0:
            log.info("waiting %.0fs for the gateway's business cache to expire", wait)
            await asyncio.sleep(wait)
        for target, cold in (
            (targets(stack, cold_scenes.profile)[1], "portal_profile"),
            (targets(stack, cold_scenes.home)[2], "portal_home"),
        ):
            out[cold]["grpc_all_caches_cold"] = await count_calls(session, stack, target, 1)
    return out


def verdict(scenarios: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each portal scenario against the budget: ratio to the baseline and calls per page."""
    baseline = scenarios["baseline"]["requests_per_second"]
    judged: dict[str, Any] = {}
    for name in ("portal_profile", "portal_home"):
        s = scenarios[name]
        ratio = s["requests_per_second"] / baseline if baseline else 0.0
        cold = s["grpc_all_caches_cold"]["calls_per_page"] or 0.0
        by_round = [
            page / base if base else 0.0
            for page, base in zip(
                s["requests_per_second_by_round"],
                scenarios["baseline"]["requests_per_second_by_round"],
                strict=True,
            )
        ]
        judged[name] = {
            "ratio_to_baseline": round(ratio, 3),
            "ratio_range_over_rounds": [round(min(by_round), 3), round(max(by_round), 3)],
            "meets_ratio_target": ratio >= TARGET_RATIO,
            "calls_per_page_worst": cold,
            "meets_calls_target": cold <= TARGET_CALLS_PER_PAGE,
            "no_errors": s["errors"] == 0,
        }
    return judged


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    """Start the stack, set the scene, measure, stop the stack; the result document."""
    load_at_start = os.getloadavg()
    data_dir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="bench-portal-read-"))
    stack = Stack.isolated(data_dir / "stack")
    try:
        log.info("starting the stack (logs in %s)", stack.log_dir)
        startup = await stack.start()
        try:
            scene, cold_profile, cold_home = await asyncio.gather(
                set_scene(stack), set_scene(stack), set_scene(stack)
            )
            cold = ColdScenes(cold_profile, cold_home, ready_at=time.monotonic())
            scenarios = await measure(stack, scene, cold, args)
        finally:
            await stack.stop()
    finally:
        if args.keep_data:
            log.info("kept %s", data_dir)
        else:
            await asyncio.to_thread(shutil.rmtree, data_dir, True)
    return {
        "benchmark": "portal_read",
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "nproc": os.cpu_count(),
            "affinity_cpus": len(os.sched_getaffinity(0)),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_at_start": [round(v, 2) for v in load_at_start],
            "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
            "note": "load generator shares the CPUs with the stack",
        },
        "parameters": {
            "seconds": args.seconds,
            "warmup_seconds": args.warmup,
            "concurrency": args.concurrency,
            "rounds": args.rounds,
            "max_requests": args.max_requests,
            "stack_startup_seconds": round(startup, 2),
            "log_level": stack.log_level,
        },
        "targets": {
            "portal_to_baseline_ratio": TARGET_RATIO,
            "grpc_calls_per_page": TARGET_CALLS_PER_PAGE,
        },
        "scenarios": scenarios,
        "verdict": verdict(scenarios),
    }


def write_result(document: dict[str, Any], output: Path | None) -> Path:
    """Write the JSON result (default: bench/results/portal_read-<UTC date>.json)."""
    if output is None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
        output = RESULTS_DIR / f"portal_read-{stamp}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return output


def print_table(document: dict[str, Any]) -> None:
    """A short human summary on stdout."""
    scenarios = document["scenarios"]
    print(
        f"\nportal_read  nproc={document['machine']['nproc']}  "
        f"concurrency={document['parameters']['concurrency']}  "
        f"seconds={document['parameters']['seconds']}"
    )
    print(
        f"{'scenario':<16}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'errors':>8}{'ratio':>8}{'rpc/page':>10}"
    )
    baseline = scenarios["baseline"]["requests_per_second"]
    for name, s in scenarios.items():
        ratio = s["requests_per_second"] / baseline if baseline else 0.0
        calls = s["grpc_under_load"]["calls_per_page"]
        lat = s["latency_ms"]
        print(
            f"{name:<16}{s['requests_per_second']:>9.0f}{lat['p50']:>9.1f}{lat['p95']:>9.1f}"
            f"{lat['p99']:>9.1f}{s['errors']:>8}{ratio:>8.2f}{calls!s:>10}"
        )
    print("\nCPU ms per request (cores busy) during each measured phase:")
    for name, s in scenarios.items():
        cpu = s["cpu"]
        parts = [
            f"{proc} {ms} ({cpu['cores_busy'][proc]})"
            for proc, ms in cpu["cpu_ms_per_request"].items()
            if ms and ms >= 0.01
        ]
        print(
            f"  {name}: "
            + ", ".join(parts)
            + f"; ours {cpu['cores_busy_total']} cores, elsewhere {cpu['cores_busy_elsewhere']}"
        )
    print()
    for name, judged in document["verdict"].items():
        low, high = judged["ratio_range_over_rounds"]
        print(
            f"{name}: ratio {judged['ratio_to_baseline']} (rounds {low}..{high}"
            f"; target >= {TARGET_RATIO}), "
            f"worst-case calls/page {judged['calls_per_page_worst']} "
            f"(target <= {TARGET_CALLS_PER_PAGE})"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (bounded: a typo cannot start an hour-long load)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="measured seconds per scenario (default 10)"
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        help="unmeasured warm-up seconds per scenario (default 2)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=16, help="concurrent closed-loop workers (default 16)"
    )
    parser.add_argument(
        "--max-requests",
        type=int,
        default=100_000,
        help="hard cap on requests per phase (default 100000)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="interleaved slices the measured seconds are split into (default 5)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="result file (default bench/results/portal_read-<date>.json)",
    )
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="keep the stack's data dir (service logs) for a look afterwards",
    )
    args = parser.parse_args(argv)
    if not 0 < args.seconds <= MAX_SECONDS or not 0 <= args.warmup <= MAX_SECONDS:
        parser.error(f"--seconds and --warmup must be within (0, {MAX_SECONDS:.0f}]")
    if not 1 <= args.concurrency <= MAX_CONCURRENCY:
        parser.error(f"--concurrency must be within 1..{MAX_CONCURRENCY}")
    if not 1 <= args.rounds <= 100:
        parser.error("--rounds must be within 1..100")
    if args.max_requests < 1:
        parser.error("--max-requests must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the benchmark, print a table, write the JSON result."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # One line per SDK request is noise here.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        document = asyncio.run(bench(args))
        path = write_result(document, args.output)
        print_table(document)
        print(f"\nwrote {path}")
        return 0
    return 130


if __name__ == "__main__":
    sys.exit(main())
