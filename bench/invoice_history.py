"""Invoice history benchmark: issue 12's "10,000 invoices vs 10" figure, as a ratio.

Starts the stack the devstack starts (``Stack.isolated``, as ``portal_read.py``
does) and reuses its harness (closed-loop load, percentiles, CPU accounting,
gRPC calls per page, counted from the services' own ``/metrics``) through
``subscriptions_bench.measure_interleaved``.

The scene: one business (auth's gRPC API), two customers (the official SDK):
``heavy`` with 10,000 succeeded payments and their invoices, ``light`` with
10. Issuing 10,000 invoices through real charges would take the pipeline an
hour on this machine, so the payments and invoices are written straight into
the payments and invoicing databases of the isolated stack, each built with
the service's own model and stored-shape function (``StoredPayment`` →
``payments.charges.repository._to_document``; ``Invoice`` →
``invoicing.repository.invoice_to_document``), so they are exactly what the
services write. Each customer signs in through a magic link (its confirm
form), then the signed-in ``GET /test/b/{business}/invoices`` of each is
measured in interleaved rounds. The target: the heavy page's latency is at
most 1.2 x the light one's.

Also recorded: the same page deep in the heavy history (page 400: offset
pagination walks the index to it, so it is *expected* to cost more; not part
of the target), and the database's ``explain`` of the two queries a page
makes (payments' list, invoicing's lookup by payment ids), to show they are
index-backed.

Run from the repository root::

    uv run --frozen python bench/invoice_history.py
    uv run --frozen python bench/invoice_history.py --seconds 20 --rounds 5 --invoices 10000

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
import uuid
from pathlib import Path
from typing import Any

from devstack import Stack
from devstack.portal import PortalHttp, business_cookie
from dodopayments import AsyncDodoPayments
from invoicing.models import Invoice
from invoicing.repository import (
    COUNTERS,
    INVOICES,
    business_counter,
    customer_counter,
    invoice_to_document,
)
from payments.charges.models import ChargeType, PaymentStatus, StoredPayment
from payments.charges.repository import _to_document as payment_to_document
from portal_read import Target, machine_facts, run_parameters
from pymongo import AsyncMongoClient
from subscriptions_bench import client_session, measure_interleaved, new_businesses, ratio

log = logging.getLogger("bench.invoice_history")

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TARGET_LATENCY_RATIO = 1.2
MAX_SECONDS = 120.0
PAGE_SIZE = 20  # the gateway's history page (gateway.web.invoices.PAGE_SIZE)
DEEP_PAGE = 400
INSERT_BATCH = 1_000
ROW = re.compile(r'data-payment-id="([^"]+)"')


# --- seeding straight into the services' databases -----------------------------------------


def payment_document(business_id: str, customer_id: str, index: int, start: dt.datetime) -> Any:
    """One succeeded renewal payment, stored as payments stores it (newest = highest index)."""
    at = start + dt.timedelta(hours=index)
    payment = StoredPayment(
        payment_id=f"pay_{uuid.uuid4().hex}",
        business_id=business_id,
        mode="test",
        customer_id=customer_id,
        subscription_id=f"sub_bench_{customer_id[-6:]}",
        total_amount=1200 + index % 100,
        currency="EUR",
        status=PaymentStatus.SUCCEEDED,
        charge_type=ChargeType.RENEWAL,
        payment_method_id=f"pm_bench_{customer_id[-6:]}",
        card_brand="visa",
        card_last_four="4242",
        idempotency_key=f"bench:{customer_id}:{index}",
        description="Bench plan",
        created_at=at,
        updated_at=at,
        processor_token="tok_bench",
    )
    return payment, payment_to_document(payment)


def invoice_document(payment: StoredPayment, number: int, position: int) -> dict[str, Any]:
    """The invoice of ``payment``, stored as invoicing stores it.

    The fields of invoicing's ``Invoice`` model are offered; only those the
    model has are kept, so a model change shows up as a validation error here.
    """
    offered: dict[str, Any] = {
        "invoice_id": f"inv_{uuid.uuid4().hex}",
        "number": f"INV-{number:06d}",
        "business_id": payment.business_id,
        "mode": payment.mode,
        "customer_id": payment.customer_id,
        "payment_id": payment.payment_id,
        "subscription_id": payment.subscription_id,
        "kind": "invoice",
        "total": payment.total_amount,
        "subtotal": payment.total_amount,
        "tax": 0,
        "currency": payment.currency,
        "issued_at": payment.created_at,
        "paid_at": payment.created_at,
        "payment_method_brand": payment.card_brand,
        "payment_method_last4": payment.card_last_four,
        "seller": {"name": "Bench business", "support_email": "help@example.com"},
        "buyer": {"name": "Bench Customer", "email": "bench@example.com"},
        # Issued and rendered (the list never reads the PDF itself).
        "pdf_ready": True,
        "locale": "en",
        "description": "Bench plan",
        "lines": [
            {
                "description": "Bench plan",
                "quantity": 1,
                "unit_amount": payment.total_amount,
                "amount": payment.total_amount,
            }
        ],
    }
    kept = {k: v for k, v in offered.items() if k in Invoice.model_fields}
    invoice = Invoice.model_validate(kept)
    return invoice_to_document(invoice, position)


async def seed_history(
    stack: Stack, business_id: str, customer_id: str, count: int, first_number: int
) -> dict[str, Any]:
    """``count`` payments with an invoice each; returns how long it took and the db names."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_url)
    prefix = stack.external_mongo[1] if stack.external_mongo else ""
    payments = client[f"{prefix}payments"]["payments"]
    invoicing = client[f"{prefix}invoicing"]
    invoices = invoicing[INVOICES]
    # One payment an hour, the newest an hour ago (as a busy customer's history).
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=count)
    loop = asyncio.get_running_loop()
    began = loop.time()
    try:
        for offset in range(0, count, INSERT_BATCH):
            batch = [
                payment_document(business_id, customer_id, i, start)
                for i in range(offset, min(count, offset + INSERT_BATCH))
            ]
            await payments.insert_many([doc for _, doc in batch], ordered=False)
            await invoices.insert_many(
                # The customer's n-th invoice has position n (issue order).
                [
                    invoice_document(p, first_number + offset + i, offset + i + 1)
                    for i, (p, _) in enumerate(batch)
                ],
                ordered=False,
            )
            log.info("seeded %d/%d for %s", min(count, offset + INSERT_BATCH), count, customer_id)
        # The counters issuing keeps: the customer's last position, the business's last number.
        counters = invoicing[COUNTERS]
        await counters.update_one(
            {"_id": customer_counter(customer_id, "test")}, {"$set": {"seq": count}}, upsert=True
        )
        await counters.update_one(
            {"_id": business_counter(business_id, "test")},
            {"$max": {"seq": first_number + count - 1}},
            upsert=True,
        )
    finally:
        await client.close()
    return {"count": count, "seconds": round(loop.time() - began, 1)}


async def explain_queries(
    stack: Stack, business_id: str, customer_id: str, payment_ids: list[str]
) -> dict[str, Any]:
    """The database's plan of the two reads a history page makes (winning plan only)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_url)
    prefix = stack.external_mongo[1] if stack.external_mongo else ""
    out: dict[str, Any] = {}
    try:
        queries = {
            "payments_list": (
                client[f"{prefix}payments"],
                "payments",
                {"mode": "test", "business_id": business_id, "customer_id": customer_id},
                {"created_at": -1, "_id": -1},
            ),
            # What payments asks first for one customer's page (its recent window).
            "payments_list_recent_window": (
                client[f"{prefix}payments"],
                "payments",
                {
                    "mode": "test",
                    "business_id": business_id,
                    "customer_id": customer_id,
                    "created_at": {"$gte": dt.datetime.now(dt.UTC) - dt.timedelta(days=2)},
                },
                {"created_at": -1, "_id": -1},
            ),
            "invoices_by_payment_ids": (
                client[f"{prefix}invoicing"],
                "invoices",
                # Invoicing reads a page's invoices by payment id, then keeps the caller's.
                {"payment_id": {"$in": payment_ids}},
                None,
            ),
        }
        for name, (db, collection, query, sort) in queries.items():
            command: dict[str, Any] = {"find": collection, "filter": query, "limit": PAGE_SIZE}
            if sort:
                command["sort"] = sort
            try:
                plan = await db.command({"explain": command, "verbosity": "executionStats"})
            except Exception as exc:  # recorded, not fatal: a server without explain
                out[name] = {"error": type(exc).__name__}
                continue
            stats = plan.get("executionStats", {})
            out[name] = {
                "winning_plan": _plan_stages(plan.get("queryPlanner", {}).get("winningPlan", {})),
                "keys_examined": stats.get("totalKeysExamined"),
                "docs_examined": stats.get("totalDocsExamined"),
                "returned": stats.get("nReturned"),
            }
    finally:
        await client.close()
    return out


def _plan_stages(plan: dict[str, Any]) -> str:
    """``LIMIT <- FETCH <- IXSCAN(name)`` from a winning plan."""
    stages = []
    node: dict[str, Any] | None = plan
    while node:
        stage = str(node.get("stage", "?"))
        if node.get("indexName"):
            stage += f"({node['indexName']})"
        stages.append(stage)
        node = node.get("inputStage")
    return " <- ".join(stages)


# --- the scene -------------------------------------------------------------------------------


async def customer_with_session(
    stack: Stack, key: str, business_id: str, label: str
) -> tuple[str, str]:
    """A customer (SDK) and its signed-in session (magic link → confirm): (id, cookie)."""
    async with AsyncDodoPayments(
        bearer_token=key, base_url=stack.gateway_url, max_retries=0
    ) as sdk:
        customer = await sdk.customers.create(
            email=f"{label}-{uuid.uuid4().hex[:8]}@example.com", name="Bench Customer"
        )
        link = (await sdk.customers.customer_portal.create(customer.customer_id)).link
    async with PortalHttp.new_session() as session:
        value = await PortalHttp(session).sign_in_with_link(link, "test", business_id)
    return customer.customer_id, f"{business_cookie('test', business_id)}={value}"


async def run(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    """Seed, check the pages show what was seeded, measure, explain."""
    [business] = await new_businesses(stack, 1, "Bench invoices")
    heavy_id, heavy_cookie = await customer_with_session(
        stack, business.test_key, business.business_id, "heavy"
    )
    light_id, light_cookie = await customer_with_session(
        stack, business.test_key, business.business_id, "light"
    )
    seeded = {
        "heavy": await seed_history(stack, business.business_id, heavy_id, args.invoices, 1),
        "light": await seed_history(
            stack, business.business_id, light_id, args.light, args.invoices + 1
        ),
    }
    page = f"{stack.portal_urls.test}/b/{business.business_id}/invoices"
    scenarios = [
        Target("history_light", page, {"Cookie": light_cookie}),
        Target("history_heavy", page, {"Cookie": heavy_cookie}),
    ]
    deep = Target(
        f"history_heavy_page_{DEEP_PAGE}", f"{page}?page={DEEP_PAGE}", scenarios[1].headers
    )
    shown: dict[str, Any] = {}
    async with client_session(1) as session:
        for target in (*scenarios, deep):
            async with session.get(target.url, headers=target.headers) as reply:
                text = await reply.text()
                shown[target.name] = {
                    "status": reply.status,
                    "rows": len(ROW.findall(text)),
                    "download_links": text.count('/pdf"'),
                }
    first_page_ids: list[str] = []
    async with client_session(1) as session:
        async with session.get(page, headers=scenarios[1].headers) as reply:
            first_page_ids = ROW.findall(await reply.text())
    plans = await explain_queries(stack, business.business_id, heavy_id, first_page_ids)
    measured = await measure_interleaved(stack, scenarios, args)
    deep_measured = {}
    if args.deep:
        deep_measured = await measure_interleaved(stack, [scenarios[1], deep], args)
    light, heavy = measured["history_light"], measured["history_heavy"]
    p50 = ratio(heavy["latency_ms"]["p50"], light["latency_ms"]["p50"])
    by_round = [
        ratio(h, lo)
        for h, lo in zip(heavy["p50_ms_by_round"], light["p50_ms_by_round"], strict=True)
    ]
    return {
        "invoices": {"heavy": args.invoices, "light": args.light},
        "seeding": seeded,
        "shown": shown,
        "query_plans": plans,
        "scenarios": measured,
        "deep_page": deep_measured,
        "verdict": {
            "p50_latency_ratio_heavy_to_light": p50,
            "p50_ratio_range_over_rounds": [min(by_round), max(by_round)],
            "p99_latency_ratio_heavy_to_light": ratio(
                heavy["latency_ms"]["p99"], light["latency_ms"]["p99"]
            ),
            "throughput_ratio_light_to_heavy": ratio(
                light["requests_per_second"], heavy["requests_per_second"]
            ),
            # A page that never answered has no latency: it cannot meet the target.
            "meets_latency_target": 0 < p50 <= TARGET_LATENCY_RATIO
            and heavy["errors"] == 0
            and light["errors"] == 0,
            "pages_show_a_full_page": shown["history_heavy"]["rows"] == PAGE_SIZE
            and shown["history_light"]["rows"] == min(PAGE_SIZE, args.light),
            "no_errors": light["errors"] == 0 and heavy["errors"] == 0,
        },
    }


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    """Start the stack, run, stop the stack; the result document."""
    load_at_start = os.getloadavg()
    data_dir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="bench-invoices-"))
    stack = Stack.isolated(data_dir / "stack")
    try:
        log.info("starting the stack (logs in %s)", stack.log_dir)
        startup = await stack.start(limit_seconds=120)
        try:
            result = await run(stack, args)
        finally:
            await stack.stop()
    finally:
        if args.keep_data:
            log.info("kept %s", data_dir)
        else:
            await asyncio.to_thread(shutil.rmtree, data_dir, True)
    return {
        "benchmark": "invoice_history",
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_facts(load_at_start),
        "parameters": run_parameters(args, startup, stack),
        "targets": {"latency_ratio_max": TARGET_LATENCY_RATIO},
        **result,
    }


def print_summary(document: dict[str, Any]) -> None:
    """A short human summary on stdout."""
    for group in ("scenarios", "deep_page"):
        for scenario, s in document.get(group, {}).items():
            lat = s["latency_ms"]
            print(
                f"{group:<10}{scenario:<28}{s['requests_per_second']:>8.0f} req/s"
                f"  p50 {lat['p50']:>7.1f}  p99 {lat['p99']:>7.1f} ms  errors {s['errors']}"
                f"  rpc/req {s['grpc_under_load']['calls_per_page']}"
            )
    print(json.dumps(document["query_plans"], indent=1))
    print(json.dumps(document["verdict"], indent=1))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (bounded)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--light", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-requests", type=int, default=100_000)
    parser.add_argument("--deep", action="store_true", help=f"also measure page {DEEP_PAGE}")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--keep-data", action="store_true")
    args = parser.parse_args(argv)
    if not 0 < args.seconds <= MAX_SECONDS or not 0 <= args.warmup <= MAX_SECONDS:
        parser.error(f"--seconds and --warmup must be within (0, {MAX_SECONDS:.0f}]")
    if not 1 <= args.concurrency <= 256 or not 1 <= args.rounds <= 100:
        parser.error("--concurrency within 1..256, --rounds within 1..100")
    if not 1 <= args.invoices <= 100_000 or not 1 <= args.light <= 1_000:
        parser.error("--invoices within 1..100000, --light within 1..1000")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point: run, print, write bench/results/invoice_history-<date>.json."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        document = asyncio.run(bench(args))
        output = args.output
        if output is None:
            stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
            output = RESULTS_DIR / f"invoice_history-{stamp}.json"
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
        print_summary(document)
        print(f"\nwrote {output}")
        return 0
    return 130


if __name__ == "__main__":
    sys.exit(main())
