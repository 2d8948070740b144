"""Renewal reminders: ``subscription.renewal_reminder`` once per period, a number
of days (per business, from auth; default 3) before the renewal charge.

Run by the renewal scheduler after each pass's renewals, so it follows the
business's test clock and wakes when that clock moves. A subscription is
reminded when ``now < next_billing_date <= now + days``, it is active and no
cancel is scheduled. The stored marker ``reminded_billing_date`` (the renewal
date the reminder was for) is set by a conditional update in the same
transaction as the outbox write: two replicas racing for one subscription
conflict, the loser's retry no longer matches, and exactly one event is
written per period. The marker lives outside the ``Subscription`` model, so
the use cases' ``$set`` saves never erase it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

import grpc
from billing.auth.v1 import auth_pb2, auth_pb2_grpc
from billing_kit.errors import DomainError
from billing_kit.grpc_client import create_channel
from billing_kit.scoping import Mode

from subscriptions.subscriptions import models as m
from subscriptions.subscriptions.models import Subscription
from subscriptions.subscriptions.repository import SubscriptionsRepository
from subscriptions.subscriptions.unit_of_work import Txn, UnitOfWork

log = logging.getLogger(__name__)

DEFAULT_REMINDER_DAYS = 3
# auth refuses more; candidates are read this far ahead and filtered per business.
MAX_REMINDER_DAYS = 30
BATCH = 200


class ReminderDays(Protocol):
    """How many days before a renewal a business's customers are reminded."""

    async def days(self, business_id: str) -> int | None:
        """The business's setting; None when it cannot be read now (retried next pass)."""
        ...


class FixedReminderDays:
    """The same number of days for every business (tests, or auth not wired)."""

    def __init__(self, days: int = DEFAULT_REMINDER_DAYS) -> None:
        self._days = days

    async def days(self, business_id: str) -> int | None:
        """Always the configured number."""
        return self._days


class AuthReminderDays:
    """A business's settings from auth's GetBusiness, cached briefly: the renewal
    reminder days (``Business.renewal_reminder_days``) and, for license keys, the
    on_hold grace period (``Business.license_grace_days``)."""

    def __init__(self, target: str, *, timeout: float, cache_seconds: float) -> None:
        self._target = target
        self._timeout = timeout
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, auth_pb2.Business]] = {}
        self._channel: grpc.aio.Channel | None = None

    async def start(self) -> None:
        """Open the channel (nothing is dialled until the first call)."""
        self._channel = create_channel(self._target, name="auth", timeout=self._timeout)

    async def stop(self) -> None:
        """Close the channel."""
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    async def _business(self, business_id: str) -> auth_pb2.Business | None:
        now = time.monotonic()
        hit = self._cache.get(business_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        if self._channel is None:
            await self.start()
        assert self._channel is not None
        try:
            business: auth_pb2.Business = await auth_pb2_grpc.AuthServiceStub(
                self._channel
            ).GetBusiness(auth_pb2.GetBusinessRequest(business_id=business_id))
        except (DomainError, grpc.aio.AioRpcError) as exc:
            log.warning("business settings unavailable: %s", type(exc).__name__)
            return None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[business_id] = (now + self._cache_seconds, business)
        return business

    async def days(self, business_id: str) -> int | None:
        """The business's reminder days (0 on the wire = the default); None if auth is down."""
        business = await self._business(business_id)
        if business is None:
            return None
        return min(business.renewal_reminder_days or DEFAULT_REMINDER_DAYS, MAX_REMINDER_DAYS)

    async def license_grace_days(self, business_id: str) -> int | None:
        """The business's license grace days; None for the service default (0 on the
        wire) or when auth cannot be asked now."""
        business = await self._business(business_id)
        if business is None or business.license_grace_days <= 0:
            return None
        return int(business.license_grace_days)


def reminder_is_due(sub: Subscription, now: datetime, days: int) -> bool:
    """Whether ``sub`` should be reminded now: renewal ahead, within ``days``, will renew."""
    renewal = sub.next_billing_date
    if renewal is None or sub.cancel_at_next_billing_date:
        return False
    if sub.status is not m.SubscriptionStatus.ACTIVE:
        return False
    return now < renewal <= now + timedelta(days=days)


class RenewalReminders:
    """Emits each due reminder once (see the module docstring)."""

    def __init__(
        self, repository: SubscriptionsRepository, uow: UnitOfWork, days: ReminderDays
    ) -> None:
        self.repository = repository
        self.uow = uow
        self.reminder_days = days

    async def run(
        self, now: datetime, *, business: tuple[str, Mode] | None, skip: Sequence[str] = ()
    ) -> int:
        """Remind every subscription (of ``business``, else all but the ``skip`` businesses'
        test mode, which follow their own clocks) due at ``now``; returns how many."""
        sent = 0
        seen = 0
        while True:
            # Reminding changes no field of the query, so pages stay stable while we go.
            batch = await self.repository.reminder_candidates(
                after_now=now,
                until=now + timedelta(days=MAX_REMINDER_DAYS),
                business=business,
                skip=seen,
                limit=BATCH,
            )
            seen += len(batch)
            for sub, reminded_for in batch:
                if business is None and sub.mode == "test" and sub.business_id in skip:
                    continue
                if reminded_for is not None and reminded_for == sub.next_billing_date:
                    continue
                days = await self.reminder_days.days(sub.business_id)
                if days is None or not reminder_is_due(sub, now, days):
                    continue
                if await self._remind(sub):
                    sent += 1
            if len(batch) < BATCH:
                return sent

    async def _remind(self, sub: Subscription) -> bool:
        renewal = sub.next_billing_date
        assert renewal is not None

        async def write(txn: Txn) -> bool:
            if not await self.repository.mark_reminded(sub.subscription_id, renewal, txn):
                return False  # another replica reminded it, or it changed meanwhile
            await self.uow.emit(m.SUBSCRIPTION_RENEWAL_REMINDER, sub, txn)
            return True

        reminded = await self.uow.run(write)
        if reminded:
            log.info(
                "renewal reminder queued",
                extra={"subscription_id": sub.subscription_id, "business_id": sub.business_id},
            )
        return reminded
