"""Subscriptions benchmark: the Performance section of issue 11, measured as ratios.

Starts the stack the devstack starts (``Stack.isolated``, as ``portal_read.py``
does) and reuses ``portal_read.py``'s harness (closed-loop load, percentiles,
CPU accounting, gRPC call counts) and its baseline: ``GET /customers/{id}``,
the gateway → one auth gRPC call → one ``find_one`` by ``_id`` chain.

Three parts, each selectable with ``--part``:

1. ``reads``: the signed-in per-business subscriptions page of a customer with
   3 subscriptions and the merchant ``GET /subscriptions?customer_id=``, against
   the baseline in interleaved rounds (targets: ≥ 0.5 x throughput, p99 ≤ 2 x).
2. ``unified``: ``/all/subscriptions`` for an email with purchases at 20
   businesses against the same page for an email with 1 (target: ≤ 1.5 x latency),
   measured unloaded (one client, one request at a time, the two pages
   alternating: what one customer waits, the figure the target is read from) and
   under the 16-worker load (a throughput figure, reported as such); with
   ``--compare-auth-caching`` first with auth's unified-page caching off, then on.
3. ``renewals``: N (2,000) subscriptions come due at one test-clock advance
   and two subscriptions service processes (the stack's and a second replica
   over the same database) renew them; renewals per second, and every
   subscription charged exactly once (read from payments' own collection).

Run from the repository root::

    uv run --frozen python bench/subscriptions_bench.py
    uv run --frozen python bench/subscriptions_bench.py --part reads --seconds 10

Not a test: nothing asserts a time. Read ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
from billing.common.v1 import common_pb2
from billing.payments.v1 import payments_pb2, payments_pb2_grpc
from devstack import Mailbox, Stack, message_link
from devstack.portal import (
    UNIFIED_COOKIE,
    PortalBusiness,
    PortalHttp,
    business_cookie,
    create_portal_business,
)
from devstack.processes import ManagedProcess, python_module
from devstack.topology import free_ports
from dodopayments import AsyncDodoPayments
from portal_read import (
    LoadResult,
    Target,
    _process_cpu_seconds,
    accumulate,
    cpu_per_request,
    cpu_snapshot,
    difference,
    machine_facts,
    per_request,
    percentile,
    rpc_counts,
    run_load,
    run_parameters,
    summarise,
)
from pymongo import AsyncMongoClient
from yarl import URL

log = logging.getLogger("bench.subscriptions")

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TARGET_THROUGHPUT_RATIO = 0.5
TARGET_P99_RATIO = 2.0
TARGET_UNIFIED_LATENCY_RATIO = 1.5
# Auth as it was before its unified-page caching: every page reads each business and
# writes the session's idle deadline (both settings documented in auth's README).
AUTH_WITHOUT_CACHING = {"AUTH_BUSINESS_CACHE_SECONDS": "0", "AUTH_SESSION_TOUCH_SECONDS": "0"}
MAX_SECONDS = 120.0
REQUEST_TIMEOUT_SECONDS = 10.0
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
MONTHLY: dict[str, Any] = {
    "type": "recurring_price",
    "currency": "EUR",
    "price": 1200,
    "discount": 0,
    "purchasing_power_parity": False,
    "payment_frequency_count": 1,
    "payment_frequency_interval": "Month",
    "subscription_period_count": 1,
    "subscription_period_interval": "Year",
}
BILLING: Any = {"country": "IT", "city": "Roma"}
GOOD_CARD = "4242424242424242"
DAY = 86_400


# --- setting the scene as merchants and customers ---------------------------------------


async def save_card(
    stack: Stack, http: aiohttp.ClientSession, business_id: str, mode: str, customer_id: str
) -> str:
    """A saved card, the way a customer saves one: payments' hosted page, form POSTed."""
    async with grpc.aio.insecure_channel(stack.grpc_target("payments")) as channel:
        session = await payments_pb2_grpc.PaymentsServiceStub(channel).CreatePaymentSession(
            payments_pb2.CreatePaymentSessionRequest(
                business_id=business_id,
                mode=common_pb2.MODE_LIVE if mode == "live" else common_pb2.MODE_TEST,
                customer_id=customer_id,
                purpose=payments_pb2.PAYMENT_SESSION_PURPOSE_SAVE_METHOD,
                return_url="https://shop.example/back",
            )
        )
    async with http.get(session.url) as page:
        token = CSRF.search(await page.text())
    if token is None:
        raise RuntimeError("no CSRF token on the hosted page")
    form = {
        "csrf_token": token.group(1),
        "cc-name": "Bench Customer",
        "cc-number": GOOD_CARD,
        "cc-exp": "12/34",
        "cc-csc": "123",
    }
    async with http.post(session.url, data=form, allow_redirects=False) as reply:
        if reply.status != 303:
            raise RuntimeError(f"hosted page answered {reply.status}: {await reply.text()}")
        return dict(URL(reply.headers["Location"]).query)["payment_method_id"]


def sdk_for(stack: Stack, key: str) -> AsyncDodoPayments:
    """The official SDK against the stack's gateway."""
    return AsyncDodoPayments(bearer_token=key, base_url=stack.gateway_url, max_retries=0)


@dataclass(frozen=True)
class Subscriber:
    """A customer of one business with a saved card and ``count`` subscriptions."""

    business: PortalBusiness
    customer_id: str
    payment_method_id: str
    subscription_ids: list[str]


async def subscriber(
    stack: Stack,
    http: aiohttp.ClientSession,
    business: PortalBusiness,
    mode: str,
    email: str,
    count: int,
) -> Subscriber:
    """A customer with a card and ``count`` active subscriptions (each a product of its own)."""
    async with sdk_for(stack, business.key(mode)) as sdk:  # type: ignore[arg-type]
        customer = await sdk.customers.create(email=email, name="Bench Customer")
        method = await save_card(stack, http, business.business_id, mode, customer.customer_id)
        ids = []
        for index in range(count):
            product = await sdk.products.create(
                name=f"Plan {index} {uuid.uuid4().hex[:4]}", tax_category="saas", price=MONTHLY
            )
            sub = await sdk.subscriptions.create(
                billing=BILLING,
                customer={"customer_id": customer.customer_id},
                product_id=product.product_id,
                quantity=1,
                extra_body={"payment_method_id": method},
            )
            ids.append(sub.subscription_id)
    return Subscriber(business, customer.customer_id, method, ids)


async def new_businesses(stack: Stack, count: int, label: str) -> list[PortalBusiness]:
    """``count`` businesses with a test and a live key (auth's gRPC API)."""
    async with stack.auth_admin() as admin:
        return [
            await create_portal_business(admin, f"{label} {i} {uuid.uuid4().hex[:6]}")
            for i in range(count)
        ]


async def business_session(stack: Stack, who: Subscriber, mode: str) -> tuple[str, str]:
    """A per-business portal session (magic link → confirm form): (cookie name, value)."""
    async with sdk_for(stack, who.business.key(mode)) as sdk:  # type: ignore[arg-type]
        link = (await sdk.customers.customer_portal.create(who.customer_id)).link
    async with PortalHttp.new_session() as session:
        value = await PortalHttp(session).sign_in_with_link(
            link,
            mode,  # type: ignore[arg-type]
            who.business.business_id,
        )
    return business_cookie(mode, who.business.business_id), value  # type: ignore[arg-type]


async def unified_session(stack: Stack, email: str) -> str:
    """A unified portal session for ``email`` (login form → the mail sink → the link)."""
    async with PortalHttp.new_session() as session:
        http = PortalHttp(session)
        login = await http.get(f"{stack.portal_urls.unified}/login")
        sent = await http.submit(login, {"email": email})
        if sent.status != 200:
            raise RuntimeError(f"unified login answered {sent.status}")
        # Receipts of the purchases go to the same address: wait for the sign-in email.
        mail = await Mailbox(stack.mail_dir).wait_for(email, subject_contains="sign-in link")
        link = message_link(mail, f"{stack.portal_urls.unified}/link/cpt_")
        entered = await http.submit(await http.get(link))
        if entered.status != 303 or UNIFIED_COOKIE not in entered.set_cookies:
            raise RuntimeError(f"unified sign-in answered {entered.status}")
        return entered.set_cookies[UNIFIED_COOKIE]


# --- interleaved measurement (portal_read's method, any list of targets) ------------------


def client_session(concurrency: int) -> aiohttp.ClientSession:
    """A load-generator session: keep-alive, no cookie jar (cookies go in headers)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS),
        cookie_jar=aiohttp.DummyCookieJar(),
    )


async def measure_interleaved(
    stack: Stack, scenarios: list[Target], args: argparse.Namespace
) -> dict[str, dict[str, Any]]:
    """Warm up each target, then measure them in interleaved rounds (as portal_read does):
    requests/s, latency, errors, CPU per request and gRPC calls per request."""
    out: dict[str, dict[str, Any]] = {}
    async with client_session(args.concurrency) as session:
        for target in scenarios:
            await run_load(
                session,
                target,
                seconds=args.warmup,
                concurrency=args.concurrency,
                max_requests=args.max_requests,
            )
        results = {t.name: LoadResult() for t in scenarios}
        calls: dict[str, dict[str, float]] = {t.name: {} for t in scenarios}
        cpu: dict[str, dict[str, float]] = {t.name: {} for t in scenarios}
        per_round: list[dict[str, dict[str, float]]] = []
        slice_seconds = args.seconds / args.rounds
        for number in range(1, args.rounds + 1):
            log.info("round %d/%d: %.1fs per scenario", number, args.rounds, slice_seconds)
            this_round: dict[str, dict[str, float]] = {}
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
                this_round[target.name] = summarise(result)
            per_round.append(this_round)
        for target in scenarios:
            result = results[target.name]
            pages = result.requests + result.errors
            summary = summarise(result)
            summary["url_path"] = URL(target.url).path_qs
            summary["requests_per_second_by_round"] = [
                r[target.name]["requests_per_second"] for r in per_round
            ]
            summary["p50_ms_by_round"] = [r[target.name]["latency_ms"]["p50"] for r in per_round]
            summary["cpu"] = cpu_per_request(cpu[target.name], pages, result.elapsed_seconds)
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
    return out


def ratio(a: float, b: float) -> float:
    """``a / b`` rounded, 0 when ``b`` is 0."""
    return round(a / b, 3) if b else 0.0


async def _one_page(session: aiohttp.ClientSession, target: Target, result: LoadResult) -> None:
    """GET the target once and add its latency (or its error) to ``result``."""
    sent = time.perf_counter()
    try:
        async with session.get(target.url, headers=target.headers, allow_redirects=False) as reply:
            await reply.read()
            status = reply.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        result.errors += 1
        result.error_samples[type(exc).__name__] += 1
        return
    elapsed = time.perf_counter() - sent
    if status != target.expected_status:
        result.errors += 1
        result.error_samples[f"HTTP {status}"] += 1
        return
    result.requests += 1
    result.latencies.append(elapsed)
    result.elapsed_seconds += elapsed


def _latency_summary(result: LoadResult) -> dict[str, Any]:
    """Samples, errors and p50/p90/p99/mean/max latency (ms) of a sequential phase."""
    ordered = sorted(result.latencies)
    return {
        "samples": result.requests,
        "errors": result.errors,
        "error_samples": dict(result.error_samples.most_common(5)),
        "latency_ms": {
            "p50": round(percentile(ordered, 0.50) * 1000, 2),
            "p90": round(percentile(ordered, 0.90) * 1000, 2),
            "p99": round(percentile(ordered, 0.99) * 1000, 2),
            "mean": round(sum(ordered) / len(ordered) * 1000, 2) if ordered else 0.0,
            "max": round(ordered[-1] * 1000, 2) if ordered else 0.0,
        },
    }


async def measure_unloaded(
    stack: Stack, scenarios: list[Target], *, samples: int, warmup: int
) -> dict[str, Any]:
    """What one customer waits: one client, one request at a time, the targets alternating.

    After ``warmup`` unmeasured rounds, ``samples`` rounds each GET every target
    once; the order flips every round, so neither page always follows the other
    and background load that comes and goes lands on both. Per target:
    p50/p90/p99 latency; for the whole phase: CPU per page (both pages mixed),
    gRPC calls per page, and how busy the rest of the machine was meanwhile.
    """
    async with client_session(1) as session:
        scratch = LoadResult()
        for _ in range(warmup):
            for target in scenarios:
                await _one_page(session, target, scratch)
        results = {t.name: LoadResult() for t in scenarios}
        rpc_before = await rpc_counts(session, stack)
        cpu_before = cpu_snapshot(stack)
        started = time.perf_counter()
        for number in range(samples):
            order = scenarios if number % 2 == 0 else scenarios[::-1]
            for target in order:
                await _one_page(session, target, results[target.name])
        elapsed = time.perf_counter() - started
        cpu = difference(cpu_before, cpu_snapshot(stack))
        calls = difference(rpc_before, await rpc_counts(session, stack))
    pages = sum(r.requests + r.errors for r in results.values())
    out: dict[str, Any] = {name: _latency_summary(r) for name, r in results.items()}
    out["phase"] = {
        "seconds": round(elapsed, 2),
        "warmup_rounds": warmup,
        "cpu_both_pages_mixed": cpu_per_request(cpu, pages, elapsed),
        "grpc_both_pages_mixed": per_request(calls, pages),
    }
    for name, r in results.items():
        log.info(
            "unloaded %s: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms (%d samples, %d errors)",
            name,
            out[name]["latency_ms"]["p50"],
            out[name]["latency_ms"]["p90"],
            out[name]["latency_ms"]["p99"],
            r.requests,
            r.errors,
        )
    return out


# --- part 1: the signed-in subscriptions page and the merchant list -----------------------


async def part_reads(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    """Portal subscriptions page and ``GET /subscriptions?customer_id=`` against the baseline."""
    [business] = await new_businesses(stack, 1, "Bench reads")
    async with aiohttp.ClientSession() as http:
        who = await subscriber(stack, http, business, "test", f"r-{uuid.uuid4().hex[:8]}@ex.com", 3)
    cookie_name, cookie_value = await business_session(stack, who, "test")
    key = {"Authorization": f"Bearer {business.test_key}"}
    cookie = {"Cookie": f"{cookie_name}={cookie_value}"}
    portal = f"{stack.portal_urls.test}/b/{business.business_id}"
    scenarios = [
        Target("baseline", f"{stack.gateway_url}/customers/{who.customer_id}", key),
        Target("portal_subscriptions", f"{portal}/subscriptions", cookie),
        Target(
            "api_list_subscriptions",
            f"{stack.gateway_url}/subscriptions?customer_id={who.customer_id}",
            key,
        ),
    ]
    measured = await measure_interleaved(stack, scenarios, args)
    base = measured["baseline"]
    verdict = {}
    for name in ("portal_subscriptions", "api_list_subscriptions"):
        s = measured[name]
        throughput = ratio(s["requests_per_second"], base["requests_per_second"])
        p99 = ratio(s["latency_ms"]["p99"], base["latency_ms"]["p99"])
        by_round = [
            ratio(x, y)
            for x, y in zip(
                s["requests_per_second_by_round"], base["requests_per_second_by_round"], strict=True
            )
        ]
        verdict[name] = {
            "throughput_ratio": throughput,
            "throughput_ratio_range_over_rounds": [min(by_round), max(by_round)],
            "meets_throughput_target": throughput >= TARGET_THROUGHPUT_RATIO,
            "p99_ratio": p99,
            "meets_p99_target": p99 <= TARGET_P99_RATIO,
            "no_errors": s["errors"] == 0,
        }
    return {"subscriptions_per_customer": 3, "scenarios": measured, "verdict": verdict}


# --- part 2: the unified subscriptions page, 20 businesses against 1 ----------------------


async def unified_email(stack: Stack, businesses: list[PortalBusiness], label: str) -> str:
    """An email that bought one subscription at each business (live mode: the unified
    portal is live only); returns the email."""
    email = f"{label}-{uuid.uuid4().hex[:8]}@example.com"
    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(subscriber(stack, http, b, "live", email, 1) for b in businesses))
    return email


async def configure_auth(stack: Stack, env: dict[str, str]) -> None:
    """Restart the stack's auth process with ``env`` on top of its own settings
    (sessions and data live in the database, so signed-in pages keep working)."""
    process = stack.services["auth"]
    for name in AUTH_WITHOUT_CACHING:
        process.env.pop(name, None)
    process.env.update(env)
    await stack.stop_service("auth")
    await stack.restart_service("auth")


def unified_verdict(
    unloaded: dict[str, Any], loaded: dict[str, Any], one: str, many: str
) -> dict[str, Any]:
    """20 ÷ 1 business ratios: unloaded latency (the target's figure) and under load."""
    u_one, u_many = unloaded[one]["latency_ms"], unloaded[many]["latency_ms"]
    l_one, l_many = loaded[one], loaded[many]
    p50 = ratio(u_many["p50"], u_one["p50"])
    return {
        "unloaded_p50_ratio": p50,
        "unloaded_p90_ratio": ratio(u_many["p90"], u_one["p90"]),
        "unloaded_p99_ratio": ratio(u_many["p99"], u_one["p99"]),
        "meets_latency_target": p50 <= TARGET_UNIFIED_LATENCY_RATIO,
        "target_read_from": "unloaded_p50_ratio",
        "loaded_p50_ratio": ratio(l_many["latency_ms"]["p50"], l_one["latency_ms"]["p50"]),
        "loaded_p99_ratio": ratio(l_many["latency_ms"]["p99"], l_one["latency_ms"]["p99"]),
        "loaded_throughput_ratio": ratio(
            l_one["requests_per_second"], l_many["requests_per_second"]
        ),
        "no_errors": all(x["errors"] == 0 for x in (unloaded[one], unloaded[many], l_one, l_many)),
    }


async def part_unified(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    """``/all/subscriptions`` for an email at 20 businesses and for one at 1 business,
    unloaded and under load; with ``--compare-auth-caching`` first without auth's
    unified-page caching (``before``), then as configured by default (``after``)."""
    many = await new_businesses(stack, args.businesses, "Bench many")
    [one] = await new_businesses(stack, 1, "Bench one")
    email_many = await unified_email(stack, many, "many")
    email_one = await unified_email(stack, [one], "one")
    page = f"{stack.portal_urls.unified}/subscriptions"
    scenarios = [
        Target(
            "unified_1_business",
            page,
            {"Cookie": f"{UNIFIED_COOKIE}={await unified_session(stack, email_one)}"},
        ),
        Target(
            f"unified_{args.businesses}_businesses",
            page,
            {"Cookie": f"{UNIFIED_COOKIE}={await unified_session(stack, email_many)}"},
        ),
    ]
    one_name, many_name = (t.name for t in scenarios)
    # Rows on each page: the page must show every business's subscription.
    async with client_session(1) as session:
        shown = {}
        for target in scenarios:
            async with session.get(target.url, headers=target.headers) as reply:
                text = await reply.text()
                shown[target.name] = len(set(re.findall(r'data-subscription-id="([^"]+)"', text)))
    variants = (
        [("before", AUTH_WITHOUT_CACHING), ("after", {})]
        if args.compare_auth_caching
        else [("as_configured", {})]
    )
    measured: dict[str, Any] = {}
    for label, env in variants:
        if args.compare_auth_caching:
            log.info("unified, auth %s its caching: restarting auth", label)
            await configure_auth(stack, env)
        load_before = [round(v, 2) for v in os.getloadavg()]
        unloaded = await measure_unloaded(
            stack, scenarios, samples=args.unloaded_samples, warmup=args.unloaded_warmup
        )
        loaded = await measure_interleaved(stack, scenarios, args)
        measured[label] = {
            "auth_env": env,
            "load_average_before": load_before,
            "load_average_after": [round(v, 2) for v in os.getloadavg()],
            "unloaded": unloaded,
            "loaded": loaded,
            "verdict": unified_verdict(unloaded, loaded, one_name, many_name),
        }
    final = measured[variants[-1][0]]
    return {
        "businesses": args.businesses,
        "subscriptions_shown": shown,
        "variants": measured,
        # The run's answer: the last variant (auth as it runs by default).
        "verdict": final["verdict"],
    }


# --- part 3: due renewals over two scheduler replicas -------------------------------------


async def second_replica(stack: Stack, poll_seconds: float) -> ManagedProcess:
    """Restart the stack's subscriptions service with a short poll, and start a second
    subscriptions process over the same database (own ports, same everything else)."""
    first = stack.services["subscriptions"]
    await stack.stop_service("subscriptions")
    first.env["SUBSCRIPTIONS_RENEWAL_POLL_SECONDS"] = str(poll_seconds)
    await stack.restart_service("subscriptions")
    grpc_port, ops_port = free_ports(2)
    env = dict(first.env)
    env["SUBSCRIPTIONS_GRPC_PORT"] = str(grpc_port)
    env["SUBSCRIPTIONS_OPS_PORT"] = str(ops_port)
    env.pop("BILLING_TRACES_FILE", None)
    replica = ManagedProcess(
        "subscriptions-2",
        python_module("subscriptions"),
        env=env,
        log_path=stack.log_dir / "subscriptions-2.log",
        cwd=stack.cwd,
    )
    await replica.start()
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as http:
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"http://127.0.0.1:{ops_port}/readyz") as reply:
                    if reply.status == 200:
                        return replica
            if not replica.running or time.monotonic() > deadline:
                raise RuntimeError(f"second replica not ready:\n{replica.tail()}")
            await asyncio.sleep(0.2)


async def create_due(
    stack: Stack, business: PortalBusiness, count: int, concurrency: int
) -> tuple[list[str], int]:
    """``count`` monthly subscriptions of one customer with a good card (SDK creates,
    ``concurrency`` at a time); returns (the business's active subscription ids as
    stored, creates that failed). A create that timed out may still have been stored,
    so the ids are read back from the database, not from the replies, and what is
    missing is created in further passes (at most five) until ``count`` are stored."""
    failures = 0
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_url)
    prefix = stack.external_mongo[1] if stack.external_mongo else ""
    subs = client[f"{prefix}subscriptions"]["subscriptions"]
    stored = {"business_id": business.business_id, "status": "active"}
    try:
        async with aiohttp.ClientSession() as http, sdk_for(stack, business.test_key) as sdk:
            customer = await sdk.customers.create(
                email=f"due-{uuid.uuid4().hex[:8]}@ex.com", name="D"
            )
            method = await save_card(
                stack, http, business.business_id, "test", customer.customer_id
            )
            product = await sdk.products.create(name="Monthly", tax_category="saas", price=MONTHLY)

            async def one_pass(wanted: int) -> None:
                nonlocal failures
                queue = iter(range(wanted))

                async def worker() -> None:
                    nonlocal failures
                    for index in queue:
                        try:
                            await sdk.subscriptions.create(
                                billing=BILLING,
                                customer={"customer_id": customer.customer_id},
                                product_id=product.product_id,
                                quantity=1,
                                extra_body={"payment_method_id": method},
                            )
                        except Exception as exc:  # recorded, not fatal: the DB says what exists
                            failures += 1
                            log.warning("create %d failed: %s", index, type(exc).__name__)
                        if (index + 1) % 250 == 0:
                            log.info("created %d/%d subscriptions", index + 1, wanted)

                await asyncio.gather(*(worker() for _ in range(concurrency)))

            for _ in range(5):
                missing = count - await subs.count_documents(stored)
                if missing <= 0:
                    break
                await one_pass(missing)
        ids = [doc["_id"] async for doc in subs.find(stored, {"_id": 1})]
    finally:
        await client.close()
    return ids, failures


async def part_renewals(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    """N due renewals at one test-clock advance, two replicas; each charged once?"""
    [business] = await new_businesses(stack, 1, "Bench renewals")
    started = time.perf_counter()
    ids, create_failures = await create_due(stack, business, args.renewals, args.create_concurrency)
    created_seconds = time.perf_counter() - started
    replica = await second_replica(stack, args.poll_seconds)
    pids = {"replica_1": stack.services["subscriptions"].pid, "replica_2": replica.pid}
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_url)
    prefix = stack.external_mongo[1] if stack.external_mongo else ""
    payments = client[f"{prefix}payments"]["payments"]
    renewal_filter = {"business_id": business.business_id, "charge_type": "renewal"}
    try:
        cpu_before = {name: _process_cpu_seconds(pid or 0) for name, pid in pids.items()}
        advanced_at = time.perf_counter()
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{stack.gateway_url}/test-helpers/clock/advance",
                json={"seconds": 32 * DAY},
                headers={"Authorization": f"Bearer {business.test_key}"},
            ) as reply:
                if reply.status != 200:
                    raise RuntimeError(f"clock advance answered {reply.status}")
        progress: list[tuple[float, int]] = []
        deadline = advanced_at + args.renewals_timeout
        done = 0
        while time.perf_counter() < deadline:
            await asyncio.sleep(1.0)
            done = await payments.count_documents({**renewal_filter, "status": "succeeded"})
            progress.append((round(time.perf_counter() - advanced_at, 1), done))
            if done >= len(ids):
                break
        # Let the schedulers write the last outcomes before counting the renewed.
        elapsed = time.perf_counter() - advanced_at
        cpu = {
            name: round(_process_cpu_seconds(pid or 0) - cpu_before[name], 2)
            for name, pid in pids.items()
        }
        await asyncio.sleep(3)
        charges: Counter[str] = Counter()
        statuses: Counter[str] = Counter()
        async for doc in payments.find(renewal_filter, {"subscription_id": 1, "status": 1}):
            charges[doc["subscription_id"]] += 1
            statuses[doc["status"]] += 1
        subs = client[f"{prefix}subscriptions"]["subscriptions"]
        after: Counter[str] = Counter()
        async for doc in subs.find({"_id": {"$in": ids}}, {"status": 1}):
            after[doc["status"]] += 1
    finally:
        await client.close()
        await replica.stop(15)
    per_sub = Counter(charges.get(i, 0) for i in ids)
    return {
        "renewals": len(ids),
        "created_seconds": round(created_seconds, 1),
        "create_failures": create_failures,
        "renewal_seconds": round(elapsed, 2),
        "renewals_per_second": round(done / elapsed, 1) if elapsed else 0.0,
        "progress_seconds_to_succeeded": progress,
        "replica_cpu_seconds": cpu,
        "charges_per_subscription": {str(k): v for k, v in sorted(per_sub.items())},
        "renewal_payment_statuses": dict(statuses),
        "subscription_statuses_after": dict(after),
        "verdict": {
            "each_charged_exactly_once": set(per_sub) == {1},
            # Within --renewals-timeout: a run cut short still shows no double charge.
            "none_charged_twice": max(per_sub, default=0) <= 1,
            "all_renewed_in_time": per_sub.get(0, 0) == 0,
            "both_replicas_worked": all(v > 0.5 for v in cpu.values()),
        },
    }


# --- the run -------------------------------------------------------------------------------

PARTS = {"reads": part_reads, "unified": part_unified, "renewals": part_renewals}


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    """Start the stack, run the chosen parts, stop the stack; the result document."""
    load_at_start = os.getloadavg()
    data_dir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="bench-subscriptions-"))
    stack = Stack.isolated(data_dir / "stack")
    parts: dict[str, Any] = {}
    try:
        log.info("starting the stack (logs in %s)", stack.log_dir)
        startup = await stack.start(limit_seconds=120)  # a busy machine starts slowly
        try:
            for name in args.part:
                log.info("part %s", name)
                parts[name] = await PARTS[name](stack, args)
        finally:
            await stack.stop()
    finally:
        if args.keep_data:
            log.info("kept %s", data_dir)
        else:
            await asyncio.to_thread(shutil.rmtree, data_dir, True)
    return {
        "benchmark": "subscriptions",
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_facts(load_at_start),
        "parameters": run_parameters(args, startup, stack),
        "targets": {
            "throughput_ratio_min": TARGET_THROUGHPUT_RATIO,
            "p99_ratio_max": TARGET_P99_RATIO,
            "unified_latency_ratio_max": TARGET_UNIFIED_LATENCY_RATIO,
        },
        "parts": parts,
    }


def _print_loaded(scenarios: dict[str, Any], indent: str = "") -> None:
    for scenario, s in scenarios.items():
        lat = s["latency_ms"]
        print(
            f"{indent}{scenario:<28}{s['requests_per_second']:>8.0f} req/s  p50 {lat['p50']:>7.1f}"
            f"  p99 {lat['p99']:>7.1f} ms  errors {s['errors']}"
            f"  rpc/req {s['grpc_under_load']['calls_per_page']}"
        )


def _print_unloaded(unloaded: dict[str, Any], indent: str = "") -> None:
    for scenario, s in unloaded.items():
        if scenario == "phase":
            continue
        lat = s["latency_ms"]
        print(
            f"{indent}{scenario:<28} unloaded  p50 {lat['p50']:>7.1f}  p90 {lat['p90']:>7.1f}"
            f"  p99 {lat['p99']:>7.1f} ms  ({s['samples']} samples, errors {s['errors']})"
        )


def print_summary(document: dict[str, Any]) -> None:
    """A short human summary on stdout."""
    for name, part in document["parts"].items():
        print(f"\n== {name}")
        _print_loaded(part.get("scenarios", {}))
        for label, variant in part.get("variants", {}).items():
            print(f"-- auth {label} (load {variant['load_average_before'][0]})")
            _print_unloaded(variant["unloaded"], "  ")
            _print_loaded(variant["loaded"], "  ")
            print("  " + json.dumps(variant["verdict"]))
        if name == "renewals":
            print(
                f"{part['renewals']} renewals in {part['renewal_seconds']} s = "
                f"{part['renewals_per_second']}/s; charges per subscription "
                f"{part['charges_per_subscription']}; replica CPU s {part['replica_cpu_seconds']}"
            )
        print(json.dumps(part["verdict"], indent=1))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (bounded)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--part", action="append", choices=sorted(PARTS), default=None)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-requests", type=int, default=100_000)
    parser.add_argument("--businesses", type=int, default=20)
    parser.add_argument("--unloaded-samples", type=int, default=300)
    parser.add_argument("--unloaded-warmup", type=int, default=20)
    parser.add_argument("--compare-auth-caching", action="store_true")
    parser.add_argument("--renewals", type=int, default=2000)
    parser.add_argument("--renewals-timeout", type=float, default=600.0)
    parser.add_argument("--create-concurrency", type=int, default=4)
    parser.add_argument("--poll-seconds", type=float, default=1.0)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--keep-data", action="store_true")
    args = parser.parse_args(argv)
    args.part = args.part or ["reads", "unified", "renewals"]
    if not 0 < args.seconds <= MAX_SECONDS or not 0 <= args.warmup <= MAX_SECONDS:
        parser.error(f"--seconds and --warmup must be within (0, {MAX_SECONDS:.0f}]")
    if not 1 <= args.concurrency <= 256 or not 1 <= args.rounds <= 100:
        parser.error("--concurrency within 1..256, --rounds within 1..100")
    if not 1 <= args.unloaded_samples <= 5_000 or not 0 <= args.unloaded_warmup <= 500:
        parser.error("--unloaded-samples within 1..5000, --unloaded-warmup within 0..500")
    if not 1 <= args.businesses <= 100 or not 1 <= args.renewals <= 20_000:
        parser.error("--businesses within 1..100, --renewals within 1..20000")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point: run, print, write bench/results/subscriptions-<date>.json."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        document = asyncio.run(bench(args))
        output = args.output
        if output is None:
            stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
            output = RESULTS_DIR / f"subscriptions-{stamp}.json"
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        print_summary(document)
        print(f"\nwrote {output}")
        return 0
    return 130


if __name__ == "__main__":
    sys.exit(main())
