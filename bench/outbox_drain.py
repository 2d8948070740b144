"""Outbox drain benchmark: how fast the relay empties a backlog, and how fast it resumes.

Issue 10's performance targets, on this machine with SecantusDB:

1. ``drain``: a backlog of ``--events`` outbox events (10,000 by default,
   written through :func:`billing_kit.outbox.add_to_outbox` in real
   transactions, on top of ``--history`` already-sent events) drained by one
   :class:`~billing_kit.outbox_relay.OutboxRelay` to a running
   :class:`~billing_kit.consumer.EventConsumer` that handles each event
   exactly once (its transaction + ``processed_events`` record). Reported:
   events/s published (relay: backlog → all confirmed and marked sent) and
   events/s handled (consumer: all committed). Target: ≥ 500/s published.
2. ``resume``: the relay's broker link is cut through a TCP proxy for
   ``--outage-seconds`` while events are written; then the broker returns.
   Reported: seconds from the return to the first published event, and to the
   last of them, per round. Target: ≤ 2 s to the first.

It also records the claim query's plan on this server (``explain``), so a
change that loses the index shows up in the results.

Run from the repository root (needs the local RabbitMQ, ``AMQP_URL``)::

    uv run --frozen python bench/outbox_drain.py
    uv run --frozen python bench/outbox_drain.py --events 2000 --rounds 1   # quick look

Not a test: nothing here asserts a time. Results go to
``bench/results/outbox_drain-<date>.json``; read ``bench/README.md``.
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
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from billing_kit.broker import EventPublisher
from billing_kit.consumer import PROCESSED_EVENTS_INDEXES, EventConsumer
from billing_kit.events import CloudEvent, new_event
from billing_kit.mongo import create_mongo_client, ensure_indexes, run_in_transaction
from billing_kit.outbox import (
    OUTBOX_COLLECTION,
    OUTBOX_INDEXES,
    UNSENT_INDEX,
    add_to_outbox,
)
from billing_kit.outbox_relay import OutboxRelay
from billing_kit.testing import (
    TcpProxy,
    amqp_url_from_env,
    broker_namespace,
    free_port,
    mongo_server,
    unique_name,
    with_port,
)
from prometheus_client import REGISTRY
from pydantic import BaseModel
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from yarl import URL

log = logging.getLogger("bench.outbox_drain")

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TARGET_EVENTS_PER_SECOND = 500.0
TARGET_RESUME_SECONDS = 2.0
# Events written per transaction while building the backlog (setup, not measured).
WRITE_CHUNK = 200
# The relay's publish chunk (OutboxRelay's default), for the broker-only baseline.
CHUNK = 200
# Reading the in-process counters walks the whole Prometheus registry: at 10 ms
# it took ~5% of the process that also runs the relay and the consumer.
POLL_SECONDS = 0.05
# Stops a run that never finishes (a broken relay) instead of hanging.
LIMIT_SECONDS = 900.0


class Ping(BaseModel):
    """The benchmark's event payload: about the size of a customer event."""

    key: str
    note: str = "x" * 200


def ping(key: str) -> CloudEvent:
    return new_event("bench.ping", "bench", Ping(key=key))


async def write_events(
    client: AsyncMongoClient[Any], db: AsyncDatabase[Any], keys: list[str]
) -> None:
    """What producers do, in chunks: each event added inside a transaction."""
    for start in range(0, len(keys), WRITE_CHUNK):
        chunk = keys[start : start + WRITE_CHUNK]

        async def write(session: AsyncClientSession, chunk: list[str] = chunk) -> None:
            for key in chunk:
                await add_to_outbox(db, ping(key), session=session)

        await run_in_transaction(client, write)


async def write_history(db: AsyncDatabase[Any], count: int) -> None:
    """Already-sent events (the week of history a busy outbox keeps)."""
    now = dt.datetime.now(dt.UTC)
    for start in range(0, count, 5000):
        await db[OUTBOX_COLLECTION].insert_many(
            [
                {"event_id": f"sent-{i}", "type": "bench.old", "created_at": now, "sent_at": now}
                for i in range(start, min(start + 5000, count))
            ]
        )


async def wait_for_count(
    count: Callable[[str], int], service: str, at_least: int, what: str
) -> float:
    """Poll ``count(service)`` until it reaches ``at_least``; returns the monotonic time it did."""
    started = time.monotonic()
    said = started
    while count(service) < at_least:
        now = time.monotonic()
        if now - started > LIMIT_SECONDS:
            raise RuntimeError(f"not done: {what} after {LIMIT_SECONDS}s")
        if now - said > 10:
            log.info("still waiting for %s (%.0f s)", what, now - started)
            said = now
        await asyncio.sleep(POLL_SECONDS)
    return time.monotonic()


def published_count(service: str) -> int:
    """Events the relay of ``service`` published and the broker confirmed (in-process counter).

    Read from the metric rather than the database: counting the outbox every
    few milliseconds would load the (shared, Python) database server and slow
    down the very drain being measured.
    """
    value = REGISTRY.get_sample_value(
        "events_published_total", {"service": service, "type": "bench.ping"}
    )
    return int(value or 0)


def handled_count(service: str) -> int:
    """Events the consumer of ``service`` committed (in-process counter)."""
    value = REGISTRY.get_sample_value(
        "events_handled_total", {"service": service, "handler": "drain", "outcome": "handled"}
    )
    return int(value or 0)


async def unsent(db: AsyncDatabase[Any]) -> int:
    return await db[OUTBOX_COLLECTION].count_documents({"pending": True}, hint=UNSENT_INDEX)


def plan_summary(explained: dict[str, Any]) -> dict[str, Any]:
    stages = []
    plan = explained["queryPlanner"]["winningPlan"]
    while plan:
        stages.append(plan["stage"] + (f"({plan['indexName']})" if "indexName" in plan else ""))
        plan = plan.get("inputStage") or {}
    stats = explained.get("executionStats", {})
    return {
        "stages": stages,
        "keys_examined": stats.get("totalKeysExamined"),
        "docs_examined": stats.get("totalDocsExamined"),
        "server_ms": stats.get("executionTimeMillis"),
    }


async def broker_baseline(args: argparse.Namespace, amqp_url: str) -> dict[str, Any]:
    """The same backlog through the broker alone: the ratio's denominator.

    ``EventPublisher.publish_many`` in the relay's chunks (publisher confirms,
    the same message size) to a queue whose consumer acks each message, with
    no database at all. What it measures is this machine's pub/sub capacity
    at this moment (the broker, this Python process and whatever else is
    running), so ``drain / baseline`` can be compared between runs on a
    quiet or a busy machine where the absolute events/s cannot.
    """
    async with broker_namespace(amqp_url) as ns:
        connection = await aio_pika.connect(ns.amqp_url)
        try:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=args.prefetch)
            exchange = await channel.declare_exchange(
                ns.exchange, aio_pika.ExchangeType.TOPIC, durable=True
            )
            queue = await channel.declare_queue(
                ns.queue("bench", "baseline"), durable=True, arguments={"x-queue-type": "quorum"}
            )
            await queue.bind(exchange, routing_key="baseline.#")
            received = 0

            async def ack(message: AbstractIncomingMessage) -> None:
                nonlocal received
                await message.ack()
                received += 1

            await queue.consume(ack)
            publisher = EventPublisher(ns.amqp_url, ns.exchange, service=unique_name("baseline"))
            events = [
                new_event("baseline.ping", "bench", Ping(key=f"b{i}")) for i in range(args.events)
            ]
            try:
                started = time.monotonic()
                for start in range(0, len(events), CHUNK):
                    chunk = events[start : start + CHUNK]
                    outcomes = await publisher.publish_many([(e, {}) for e in chunk])
                    if any(outcome is not None for outcome in outcomes):
                        raise RuntimeError("the broker did not confirm the baseline")
                published = time.monotonic()
                await wait_for_count(lambda _: received, "", args.events, "baseline consumer")
                consumed = time.monotonic()
            finally:
                await publisher.close()
        finally:
            await connection.close()
    return {
        "published_per_second": round(args.events / (published - started), 1),
        "consumed_per_second": round(args.events / (consumed - started), 1),
    }


async def drain(
    args: argparse.Namespace, client: AsyncMongoClient[Any], amqp_url: str
) -> dict[str, Any]:
    db = client[unique_name("bench_drain")]
    try:
        await ensure_indexes(db, OUTBOX_INDEXES)
        await ensure_indexes(db, PROCESSED_EVENTS_INDEXES)
        service = unique_name("bench")
        async with broker_namespace(amqp_url, known_consumers=[(service, "drain")]) as ns:
            log.info("writing %d sent events of history", args.history)
            await write_history(db, args.history)
            keys = [f"e{i}" for i in range(args.events)]
            log.info("writing a backlog of %d events", args.events)
            started = time.monotonic()
            await write_events(client, db, keys)
            write_seconds = time.monotonic() - started

            async def count_effect(event: CloudEvent, session: AsyncClientSession) -> None:
                await db.effects.insert_one({"_id": event.data["key"]}, session=session)

            consumer = EventConsumer(
                amqp_url=ns.amqp_url,
                exchange=ns.exchange,
                service=service,
                purpose="drain",
                bindings=["bench.#"],
                handler=count_effect,
                client=client,
                db=db,
                queue_prefix=ns.queue_prefix,
                prefetch=args.prefetch,
            )
            # Declared either way, so the broker keeps what the relay publishes.
            await consumer.start()
            if args.without_consumer:
                await consumer.stop(grace_seconds=1)
            publisher = EventPublisher(ns.amqp_url, ns.exchange, service=service)
            relay = OutboxRelay(
                db, publisher, service=service, batch_size=args.batch_size, use_change_stream=False
            )
            plan = plan_summary(await relay.explain_claim())
            try:
                started = time.monotonic()
                await relay.start()
                published_at = await wait_for_count(
                    published_count, service, args.events, "relay draining the backlog"
                )
                handled_at = (
                    published_at
                    if args.without_consumer
                    else await wait_for_count(
                        handled_count, service, args.events, "consumer handling the backlog"
                    )
                )
            finally:
                await relay.stop()
                await publisher.close()
                await consumer.stop(grace_seconds=5)
            effects = await db.effects.count_documents({})
            left = await unsent(db)
            if args.without_consumer:
                effects = args.events  # nothing consumed them: not measured
        publish_seconds = published_at - started
        handle_seconds = handled_at - started
        return {
            "events": args.events,
            "sent_history": args.history,
            "batch_size": args.batch_size,
            "consumer_prefetch": args.prefetch,
            "consumer_running": not args.without_consumer,
            "backlog_write_seconds": round(write_seconds, 2),
            "publish_seconds": round(publish_seconds, 2),
            "published_per_second": round(args.events / publish_seconds, 1),
            "handled_seconds": round(handle_seconds, 2),
            "handled_per_second": round(args.events / handle_seconds, 1),
            "effects": effects,
            "each_handled_once": effects == args.events,
            "unsent_left": left,
            "claim_plan": plan,
        }
    finally:
        await client.drop_database(db.name)


async def resume(
    args: argparse.Namespace, client: AsyncMongoClient[Any], amqp_url: str
) -> dict[str, Any]:
    db = client[unique_name("bench_resume")]
    broker = URL(amqp_url)
    rounds = []
    try:
        await ensure_indexes(db, OUTBOX_INDEXES)
        async with (
            broker_namespace(amqp_url) as ns,
            TcpProxy(free_port(), broker.host or "127.0.0.1", broker.port or 5672) as proxy,
        ):
            # Defaults as a service runs them (ServiceRuntime): only the URL differs.
            service = unique_name("bench")
            publisher = EventPublisher(
                with_port(ns.amqp_url, proxy.listen_port), ns.exchange, service=service
            )
            relay = OutboxRelay(db, publisher, service=service)
            await relay.start()
            try:
                for number in range(args.rounds):
                    await write_events(client, db, [f"warm{number}"])
                    done = published_count(service) + 1
                    await wait_for_count(published_count, service, done, "warm-up")
                    await proxy.cut()
                    keys = [f"r{number}-{i}" for i in range(args.outage_events)]
                    spread = args.outage_seconds / max(len(keys), 1)
                    for key in keys:  # written all through the outage
                        await write_events(client, db, [key])
                        await asyncio.sleep(spread)
                    before = published_count(service)
                    await proxy.restore()
                    returned = time.monotonic()
                    first = await wait_for_count(
                        published_count, service, before + 1, "first event after the return"
                    )
                    last = await wait_for_count(
                        published_count, service, before + len(keys), "outage backlog"
                    )
                    rounds.append(
                        {
                            "outage_seconds": args.outage_seconds,
                            "events_written_during_outage": len(keys),
                            "first_published_after_return_seconds": round(first - returned, 3),
                            "all_published_after_return_seconds": round(last - returned, 3),
                        }
                    )
                    log.info("resume round %d: %s", number, rounds[-1])
            finally:
                await relay.stop()
                await publisher.close()
    finally:
        await client.drop_database(db.name)
    firsts = [r["first_published_after_return_seconds"] for r in rounds]
    return {"rounds": rounds, "first_published_worst_seconds": max(firsts) if firsts else None}


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    amqp_url = amqp_url_from_env()
    load_at_start = os.getloadavg()
    async with mongo_server() as mongo_url:
        client = create_mongo_client(mongo_url, app_name="bench-outbox-drain")
        try:
            # Before and after the drain: a machine whose load changes during
            # the run moves the mean of the two, not one side of the ratio.
            baselines = [await broker_baseline(args, amqp_url)]
            drained = await drain(args, client, amqp_url)
            baselines.append(await broker_baseline(args, amqp_url))
            resumed = (
                {"rounds": [], "first_published_worst_seconds": None}
                if args.skip_resume
                else await resume(args, client, amqp_url)
            )
        finally:
            await client.close()
    baseline = round(sum(run["consumed_per_second"] for run in baselines) / len(baselines), 1)
    return {
        "benchmark": "outbox_drain",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "database": "MongoDB (MONGODB_URL)" if os.environ.get("MONGODB_URL") else "SecantusDB",
        "machine": {
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": [round(v, 2) for v in load_at_start],
            "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        },
        "targets": {
            "published_per_second_at_least": TARGET_EVENTS_PER_SECOND,
            "first_published_after_return_seconds_at_most": TARGET_RESUME_SECONDS,
        },
        "broker_baseline": {
            "what": "the same backlog published with confirms and consumed, no database",
            "runs": baselines,
            "consumed_per_second_mean": baseline,
        },
        "drain": drained,
        "resume": resumed,
        "ratio": {
            "published_to_baseline": round(drained["published_per_second"] / baseline, 3),
            "handled_to_baseline": round(drained["handled_per_second"] / baseline, 3),
        },
        "verdict": {
            "drain_target_met": drained["published_per_second"] >= TARGET_EVENTS_PER_SECOND,
            "resume_target_met": resumed["first_published_worst_seconds"] is not None
            and resumed["first_published_worst_seconds"] <= TARGET_RESUME_SECONDS,
        },
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000, help="backlog size")
    parser.add_argument("--history", type=int, default=20_000, help="already-sent events")
    parser.add_argument("--batch-size", type=int, default=1000, help="relay batch size (one query)")
    parser.add_argument("--prefetch", type=int, default=16, help="consumer prefetch")
    parser.add_argument("--rounds", type=int, default=3, help="broker outages to measure")
    parser.add_argument("--outage-seconds", type=float, default=10.0)
    parser.add_argument("--outage-events", type=int, default=20)
    parser.add_argument(
        "--without-consumer",
        action="store_true",
        help="drain with no consumer sharing the database (the relay's own ceiling)",
    )
    parser.add_argument("--skip-resume", action="store_true", help="only the drain")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    if not (1 <= args.events <= 200_000 and 0 <= args.history <= 500_000):
        parser.error("--events must be 1..200000 and --history 0..500000")
    if not (0 < args.outage_seconds <= 120 and 1 <= args.rounds <= 10):
        parser.error("--outage-seconds must be in (0, 120] and --rounds 1..10")
    return args


def write_result(document: dict[str, Any], output: Path | None) -> Path:
    """Write the JSON result (default: bench/results/outbox_drain-<UTC date>.json)."""
    if output is None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
        output = RESULTS_DIR / f"outbox_drain-{stamp}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return output


def print_table(document: dict[str, Any]) -> None:
    drained, resumed = document["drain"], document["resume"]
    print(f"\noutbox_drain  nproc={document['machine']['nproc']}  {document['database']}")
    print(
        f"drain   {drained['events']} events over {drained['sent_history']} sent: "
        f"published {drained['published_per_second']}/s ({drained['publish_seconds']} s), "
        f"handled {drained['handled_per_second']}/s, once each: {drained['each_handled_once']}"
    )
    print(
        f"baseline {document['broker_baseline']['consumed_per_second_mean']}/s through the "
        f"broker alone; ratio published {document['ratio']['published_to_baseline']}, "
        f"handled {document['ratio']['handled_to_baseline']}"
    )
    print(f"claim plan: {' <- '.join(drained['claim_plan']['stages'])}")
    for number, round_ in enumerate(resumed["rounds"]):
        print(
            f"resume  round {number}: "
            f"first after {round_['first_published_after_return_seconds']} s, "
            f"all {round_['events_written_during_outage']} after "
            f"{round_['all_published_after_return_seconds']} s"
        )
    print(f"verdict {document['verdict']}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the benchmark, print a summary, write the JSON result."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("aio_pika").setLevel(logging.ERROR)  # reconnect noise during the cuts
    logging.getLogger("aiormq").setLevel(logging.ERROR)
    with contextlib.suppress(KeyboardInterrupt):
        document = asyncio.run(bench(args))
        path = write_result(document, args.output)
        print_table(document)
        print(f"\nwrote {path}")
        return 0
    return 130


if __name__ == "__main__":
    sys.exit(main())
