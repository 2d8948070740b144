"""Use cases of license keys: issue on a purchase, activate, deactivate, validate, manage.

Rules (also in the README's Licenses section):

* A key is valid when it is not disabled, not past ``expires_at`` (the
  business's clock: the test clock in test mode), and the purchase still
  entitles it: a key of a subscription follows it — active: yes; on_hold: until
  the paid period's end plus the grace period (the business's ``license_grace_days``
  from auth, else ``SUBSCRIPTIONS_LICENSE_GRACE_DAYS``);
  cancelled, expired or paused: until the paid period ends; pending or failed: no.
* An unknown, malformed, disabled or no longer entitled key gets one answer
  (``LICENSE_KEY_INVALID``), so the public API reveals nothing more.
* Activation counts instances with a conditional ``$inc`` guarded by the limit,
  in the same transaction as the instance insert: concurrent activations never
  go past it. Deactivation frees the slot.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from billing_kit.audit import Actor, Resource
from billing_kit.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, Reason
from billing_kit.events import new_event
from billing_kit.outbox import add_to_outbox
from billing_kit.scoping import Mode, PageRequest
from billing_kit.sealing import Sealer
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from subscriptions.licenses.models import (
    INSTANCE_PREFIX,
    LICENSE_KEY_CREATED,
    LICENSE_KEY_PREFIX,
    MAX_KEY_LENGTH,
    MAX_NAME_LENGTH,
    LicenseKey,
    LicenseKeyCreatedData,
    LicenseKeyInstance,
    LicenseKeySource,
    LicenseKeyStatus,
    hash_key,
    new_license_key,
    normalize_key,
)
from subscriptions.licenses.rate_limits import RateLimiter
from subscriptions.licenses.repository import KeyFilter, LicensesRepository, Scope
from subscriptions.products.models import Product
from subscriptions.subscriptions.models import Subscription, SubscriptionStatus, TimeInterval
from subscriptions.subscriptions.periods import add_intervals, boundary
from subscriptions.subscriptions.repository import SubscriptionsRepository
from subscriptions.subscriptions.service import ProductReader
from subscriptions.subscriptions.test_clock import BusinessClocks

Txn = AsyncClientSession
SOURCE = "subscriptions"


SYSTEM = Actor(kind="system", id="subscriptions")
# The audit actions of license keys (dotted, past tense).
KEY_IMPORTED = "license_key.imported"
KEY_UPDATED = "license_key.updated"
INSTANCE_RENAMED = "license_key_instance.renamed"
INSTANCE_DEACTIVATED = "license_key_instance.deactivated"


def merchant(api_key_id: str) -> Actor:
    """The merchant's API key that asked, or the system when none is named."""
    return Actor(kind="merchant", id=api_key_id) if api_key_id else SYSTEM


def _key_resource(key: LicenseKey) -> Resource:
    return Resource(
        kind="license_key", id=key.license_key_id, business_id=key.business_id, mode=key.mode
    )


def _instance_resource(instance: LicenseKeyInstance) -> Resource:
    return Resource(
        kind="license_key_instance",
        id=instance.instance_id,
        business_id=instance.business_id,
        mode=instance.mode,
    )


def invalid_key() -> NotFound:
    """The one answer for a key that does not (or no longer) work, whatever the cause."""
    return NotFound("license key is invalid", reason=Reason.LICENSE_KEY_INVALID)


def _key_not_found() -> NotFound:
    return NotFound("license key not found", reason=Reason.LICENSE_KEY_NOT_FOUND)


def _instance_not_found() -> NotFound:
    return NotFound("license key instance not found", reason=Reason.LICENSE_KEY_INSTANCE_NOT_FOUND)


def _bad(message: str, field_name: str) -> InvalidArgument:
    return InvalidArgument(message, reason=Reason.INVALID_LICENSE_KEY_REQUEST, field=field_name)


class GraceDays(Protocol):
    """A business's own grace period for on_hold subscriptions' keys."""

    async def license_grace_days(self, business_id: str) -> int | None:
        """Days, or None for the service default (unset, or not readable now)."""
        ...


def paid_until(sub: Subscription) -> datetime | None:
    """The end of the period the subscription has paid for (None when it never paid one)."""
    if sub.billing_anchor is None:
        return sub.cancelled_at
    return boundary(sub, sub.period + 1)


def subscription_entitles(sub: Subscription, now: datetime, grace: timedelta) -> bool:
    """Whether a subscription's key still works at ``now`` (rules in the module docstring)."""
    if sub.status is SubscriptionStatus.ACTIVE:
        return True
    end = paid_until(sub)
    if end is None:
        return False
    if sub.status is SubscriptionStatus.ON_HOLD:
        return now < end + grace
    if sub.status in (
        SubscriptionStatus.CANCELLED,
        SubscriptionStatus.EXPIRED,
        SubscriptionStatus.PAUSED,
        SubscriptionStatus.PAST_DUE,
    ):
        return now < end
    return False


@dataclass(frozen=True)
class Purchase:
    """What a payment (or a subscription) bought of one product."""

    business_id: str
    mode: Mode
    customer_id: str
    product: Product
    quantity: int
    purchase_id: str
    payment_id: str = ""
    subscription_id: str = ""


@dataclass(frozen=True)
class Activation:
    """A new instance, with the key's owner and product for the API's answer."""

    instance: LicenseKeyInstance
    key: LicenseKey


@dataclass(frozen=True)
class KeyChanges:
    """A merchant's update: only the fields given change (``clear_*`` sets null)."""

    activations_limit: int | None = None
    clear_activations_limit: bool = False
    disabled: bool | None = None
    expires_at: datetime | None = None
    clear_expires_at: bool = False


class LicensesService:
    """License keys of every business; one instance per process."""

    def __init__(
        self,
        repository: LicensesRepository,
        subscriptions: SubscriptionsRepository,
        clocks: BusinessClocks,
        products: ProductReader,
        sealer: Sealer,
        db: AsyncDatabase[dict[str, Any]],
        transact: Callable[[Callable[[Txn], Awaitable[Any]]], Awaitable[Any]],
        *,
        grace: timedelta,
        limiter: RateLimiter | None = None,
        grace_days: GraceDays | None = None,
    ) -> None:
        self.repository = repository
        self.subscriptions = subscriptions
        self.clocks = clocks
        self.products = products
        self.sealer = sealer
        self.db = db
        self.transact = transact
        # The service default; a business's own (auth's license_grace_days) wins.
        self.grace = grace
        self.grace_days = grace_days
        self.limiter = limiter

    def open_key(self, key: LicenseKey) -> str:
        """The key's plaintext, for its owner (merchant API, portal)."""
        return self.sealer.open(key.key_sealed)

    # Issuing.

    async def issue(self, purchase: Purchase, txn: Txn) -> list[LicenseKey]:
        """One key per unit bought, each with its ``license_key.created`` event, in ``txn``.

        A unit that already has its key is skipped, so a redelivered event (or a
        subscription activated again after a hold) issues nothing twice.
        """
        product = purchase.product
        if not product.license_key_enabled:
            return []
        now = await self.clocks.now(purchase.business_id, purchase.mode)
        duration = product.license_key_duration
        expires_at = (
            add_intervals(now, duration.count, TimeInterval(duration.interval))
            if duration is not None
            else None
        )
        issued: list[LicenseKey] = []
        for unit in range(purchase.quantity):
            if await self.repository.unit_issued(
                purchase.purchase_id, product.product_id, unit, txn
            ):
                continue
            plaintext = new_license_key()
            key = LicenseKey(
                license_key_id=LICENSE_KEY_PREFIX + secrets.token_hex(12),
                business_id=purchase.business_id,
                mode=purchase.mode,
                customer_id=purchase.customer_id,
                product_id=product.product_id,
                source=LicenseKeySource.AUTO,
                key_hash=hash_key(plaintext),
                key_sealed=self.sealer.seal(plaintext),
                activations_limit=product.license_key_activations_limit,
                expires_at=expires_at,
                payment_id=purchase.payment_id,
                subscription_id=purchase.subscription_id,
                purchase_id=purchase.purchase_id,
                unit=unit,
                activation_message=product.license_key_activation_message or "",
                product_name=product.name,
                created_at=now,
                updated_at=now,
            )
            await self.repository.insert_key(key, txn)
            event = new_event(
                LICENSE_KEY_CREATED,
                SOURCE,
                LicenseKeyCreatedData.of(key),
                subject=key.license_key_id,
            )
            await add_to_outbox(self.db, event, session=txn)
            issued.append(key)
        return issued

    # The public API.

    async def _entitled(self, key: LicenseKey, txn: Txn | None = None) -> bool:
        now = await self.clocks.now(key.business_id, key.mode)
        if key.status_at(now) is not LicenseKeyStatus.ACTIVE:
            return False
        if not key.subscription_id:
            return True
        sub = await self.subscriptions.get(key.business_id, key.mode, key.subscription_id, txn=txn)
        if sub is None:
            return False
        grace = self.grace
        if sub.status is SubscriptionStatus.ON_HOLD and self.grace_days is not None:
            # Asked only when it matters; auth down or unset: the service default.
            days = await self.grace_days.license_grace_days(key.business_id)
            grace = timedelta(days=days) if days is not None else self.grace
        return subscription_entitles(sub, now, grace)

    async def _working_key(self, license_key: str, txn: Txn | None = None) -> LicenseKey:
        """The presented key if it works now; the one invalid answer otherwise."""
        if not 0 < len(normalize_key(license_key)) <= MAX_KEY_LENGTH:
            raise invalid_key()
        key = await self.repository.find_by_hash(hash_key(license_key), txn)
        if key is None or not await self._entitled(key, txn):
            raise invalid_key()
        return key

    async def _count_call(self, client_key: str, license_key: str) -> None:
        if self.limiter is not None:
            await self.limiter.hit(client_key, license_key)

    async def activate(self, license_key: str, name: str, *, client_key: str = "") -> Activation:
        """Activate the key for a new instance named ``name``, within its limit."""
        await self._count_call(client_key, license_key)
        name = name.strip()
        if not 0 < len(name) <= MAX_NAME_LENGTH:
            raise _bad(f"name must be 1 to {MAX_NAME_LENGTH} characters", "name")
        key = await self._working_key(license_key)

        async def work(txn: Txn) -> Activation:
            if not await self.repository.take_slot(key, txn):
                raise FailedPrecondition(
                    "the license key has reached its activation limit",
                    reason=Reason.LICENSE_KEY_ACTIVATION_LIMIT,
                )
            instance = LicenseKeyInstance(
                instance_id=INSTANCE_PREFIX + secrets.token_hex(12),
                license_key_id=key.license_key_id,
                business_id=key.business_id,
                mode=key.mode,
                customer_id=key.customer_id,
                name=name,
                created_at=await self.clocks.now(key.business_id, key.mode),
            )
            await self.repository.insert_instance(instance, txn)
            return Activation(instance, key)

        result: Activation = await self.transact(work)
        return result

    async def deactivate(self, license_key: str, instance_id: str, *, client_key: str = "") -> None:
        """Remove one of the key's instances, freeing its slot."""
        await self._count_call(client_key, license_key)
        key = await self._working_key(license_key)
        await self._remove(key.license_key_id, instance_id)

    async def _remove(self, license_key_id: str, instance_id: str) -> None:
        async def work(txn: Txn) -> bool:
            return await self.repository.remove_instance(license_key_id, instance_id, txn)

        if not instance_id or not await self.transact(work):
            raise _instance_not_found()

    async def validate(
        self, license_key: str, instance_id: str = "", *, client_key: str = ""
    ) -> bool:
        """Whether the key works now (and, when given, the instance is one of its own)."""
        await self._count_call(client_key, license_key)
        try:
            key = await self._working_key(license_key)
        except NotFound:
            return False
        if instance_id:
            return await self.repository.find_instance(key.license_key_id, instance_id) is not None
        return True

    # The merchant API and the portal.

    async def import_key(
        self,
        business_id: str,
        mode: Mode,
        customer_id: str,
        product_id: str,
        plaintext: str,
        *,
        activations_limit: int | None = None,
        expires_at: datetime | None = None,
        actor: Actor = SYSTEM,
    ) -> LicenseKey:
        """Store a merchant's own key for one of its customers and products (audited)."""
        plaintext = normalize_key(plaintext)
        if not 0 < len(plaintext) <= MAX_KEY_LENGTH:
            raise _bad(f"key must be 1 to {MAX_KEY_LENGTH} characters", "key")
        if not 0 < len(customer_id) <= 128:
            raise _bad("customer_id is required", "customer_id")
        if activations_limit is not None and activations_limit < 0:
            raise _bad("activations_limit must be 0 or more", "activations_limit")
        product = await self.products.get_product(business_id, mode, product_id)
        now = await self.clocks.now(business_id, mode)
        key_id = LICENSE_KEY_PREFIX + secrets.token_hex(12)
        key = LicenseKey(
            license_key_id=key_id,
            business_id=business_id,
            mode=mode,
            customer_id=customer_id,
            product_id=product.product_id,
            source=LicenseKeySource.IMPORT,
            key_hash=hash_key(plaintext),
            key_sealed=self.sealer.seal(plaintext),
            activations_limit=activations_limit,
            expires_at=expires_at,
            purchase_id=f"import:{key_id}",
            activation_message=product.license_key_activation_message or "",
            product_name=product.name,
            created_at=now,
            updated_at=now,
        )

        async def work(txn: Txn) -> None:
            if await self.repository.hash_taken(key.key_hash, txn):
                raise AlreadyExists(
                    "this license key already exists", reason=Reason.LICENSE_KEY_EXISTS, field="key"
                )
            await self.repository.insert_key(key, txn)
            await self.repository.record_change(
                actor=actor, action=KEY_IMPORTED, resource=_key_resource(key), at=now, txn=txn
            )

        await self.transact(work)
        return key

    async def get_key(self, scope: Scope, license_key_id: str) -> LicenseKey:
        """The key in scope (another business's or customer's is NOT_FOUND)."""
        found = await self.repository.get_key(scope, license_key_id) if license_key_id else None
        if found is None:
            raise _key_not_found()
        return found

    async def list_keys(
        self,
        scope: Scope,
        page: PageRequest,
        *,
        product_id: str = "",
        status: str = "",
    ) -> list[LicenseKey]:
        """A page of keys in scope, newest first."""
        try:
            wanted = LicenseKeyStatus(status) if status else None
        except ValueError:
            raise _bad("status must be active, expired or disabled", "status") from None
        now = await self.clocks.now(scope.business_id, scope.mode) if scope.business_id else None
        if now is None:
            now = self.clocks.real.now()
        query = KeyFilter(scope, product_id=product_id, status=wanted, now=now)
        return await self.repository.list_keys(query, page)

    async def update_key(
        self, scope: Scope, license_key_id: str, changes: KeyChanges, actor: Actor = SYSTEM
    ) -> LicenseKey:
        """Change the limit, the disabled flag or the expiry of a key in scope (audited)."""
        update: dict[str, Any] = {}
        if changes.clear_activations_limit:
            update["activations_limit"] = None
        elif changes.activations_limit is not None:
            if changes.activations_limit < 0:
                raise _bad("activations_limit must be 0 or more", "activations_limit")
            update["activations_limit"] = changes.activations_limit
        if changes.disabled is not None:
            update["disabled"] = changes.disabled
        if changes.clear_expires_at:
            update["expires_at"] = None
        elif changes.expires_at is not None:
            update["expires_at"] = changes.expires_at
        current = await self.get_key(scope, license_key_id)
        if not update:
            return current
        now = await self.clocks.now(current.business_id, current.mode)
        fields = ",".join(sorted(update))
        update["updated_at"] = now

        async def work(txn: Txn) -> LicenseKey:
            updated = await self.repository.update_key(scope, license_key_id, update, txn)
            if updated is None:
                raise _key_not_found()
            await self.repository.record_change(
                actor=actor,
                action=KEY_UPDATED,
                resource=_key_resource(updated),
                at=now,
                txn=txn,
                details={"fields": fields},
            )
            return updated

        result: LicenseKey = await self.transact(work)
        return result

    async def status_of(self, key: LicenseKey) -> LicenseKeyStatus:
        """The key's status on its business's clock."""
        return key.status_at(await self.clocks.now(key.business_id, key.mode))

    async def get_instance(self, scope: Scope, instance_id: str) -> LicenseKeyInstance:
        """The instance in scope."""
        found = await self.repository.get_instance(scope, instance_id) if instance_id else None
        if found is None:
            raise _instance_not_found()
        return found

    async def list_instances(
        self, scope: Scope, license_key_id: str, page: PageRequest
    ) -> list[LicenseKeyInstance]:
        """A page of instances in scope, newest first."""
        return await self.repository.list_instances(scope, license_key_id, page)

    async def rename_instance(
        self, scope: Scope, instance_id: str, name: str, actor: Actor = SYSTEM
    ) -> LicenseKeyInstance:
        """Rename an instance in scope (audited)."""
        name = name.strip()
        if not 0 < len(name) <= MAX_NAME_LENGTH:
            raise _bad(f"name must be 1 to {MAX_NAME_LENGTH} characters", "name")
        now = await self.clocks.now(scope.business_id, scope.mode)

        async def work(txn: Txn) -> LicenseKeyInstance:
            found = await self.repository.rename_instance(scope, instance_id, name, txn)
            if found is None:
                raise _instance_not_found()
            await self.repository.record_change(
                actor=actor,
                action=INSTANCE_RENAMED,
                resource=_instance_resource(found),
                at=now,
                txn=txn,
            )
            return found

        result: LicenseKeyInstance = await self.transact(work)
        return result

    async def remove_instance(self, scope: Scope, instance_id: str) -> None:
        """The portal's deactivate: one of the customer's instances frees its slot (audited,
        the customer as the actor)."""
        instance = await self.get_instance(scope, instance_id)
        now = await self.clocks.now(instance.business_id, instance.mode)

        async def work(txn: Txn) -> bool:
            removed = await self.repository.remove_instance(
                instance.license_key_id, instance.instance_id, txn
            )
            if removed:
                await self.repository.record_change(
                    actor=Actor(kind="customer", id=instance.customer_id),
                    action=INSTANCE_DEACTIVATED,
                    resource=_instance_resource(instance),
                    at=now,
                    txn=txn,
                    details={"license_key_id": instance.license_key_id},
                )
            return removed

        if not await self.transact(work):
            raise _instance_not_found()


def customers(customer_id: str, customer_ids: Sequence[str]) -> tuple[str, ...]:
    """One customer (per-business portal) or several (unified portal), as a scope wants them."""
    return tuple(dict.fromkeys([*([customer_id] if customer_id else []), *customer_ids]))
