"""The only module that writes ``license_keys`` and ``license_key_instances``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billing_kit.audit import AUDIT_INDEXES, Actor, Resource, record_audit
from billing_kit.mongo import model_from_document, model_to_document
from billing_kit.scoping import (
    Mode,
    PageRequest,
    customer_newest_first_index,
    customers_across_businesses_index,
    newest_first,
)
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from subscriptions.licenses.models import LicenseKey, LicenseKeyInstance, LicenseKeyStatus

LICENSE_KEYS = "license_keys"
LICENSE_KEY_INSTANCES = "license_key_instances"
Txn = AsyncClientSession

INDEXES: Mapping[str, Sequence[IndexModel]] = {
    # Merchant and customer changes write an audit entry (record_change below).
    **AUDIT_INDEXES,
    LICENSE_KEYS: [
        # The public API finds a key by its hash only.
        IndexModel([("key_hash", ASCENDING)], unique=True, name="by_key_hash"),
        # One key per unit of what was bought: a redelivered event issues nothing twice.
        IndexModel(
            [("purchase_id", ASCENDING), ("product_id", ASCENDING), ("unit", ASCENDING)],
            unique=True,
            name="one_per_unit",
        ),
        IndexModel(
            [("business_id", ASCENDING), ("mode", ASCENDING), ("created_at", DESCENDING)],
            name="business_newest_first",
        ),
        customer_newest_first_index(),
        customers_across_businesses_index(),
    ],
    LICENSE_KEY_INSTANCES: [
        IndexModel(
            [("license_key_id", ASCENDING), ("created_at", DESCENDING)], name="by_license_key"
        ),
        IndexModel(
            [("business_id", ASCENDING), ("mode", ASCENDING), ("created_at", DESCENDING)],
            name="business_newest_first",
        ),
        customers_across_businesses_index(),
    ],
}


def _key_doc(key: LicenseKey) -> dict[str, Any]:
    return model_to_document(key, "license_key_id")


def _key_from(doc: Mapping[str, Any]) -> LicenseKey:
    return model_from_document(LicenseKey, doc, "license_key_id")


def _instance_doc(instance: LicenseKeyInstance) -> dict[str, Any]:
    return model_to_document(instance, "instance_id")


def _instance_from(doc: Mapping[str, Any]) -> LicenseKeyInstance:
    return model_from_document(LicenseKeyInstance, doc, "instance_id")


@dataclass(frozen=True)
class Scope:
    """Whose records a read may see: one business and mode, optionally some customers.

    ``business_id`` empty with ``customer_ids`` set is the unified portal (customer
    ids are unique across businesses).
    """

    business_id: str
    mode: Mode
    customer_ids: tuple[str, ...] = ()

    def as_filter(self) -> dict[str, Any]:
        """The MongoDB filter every scoped query starts from."""
        query: dict[str, Any] = {"mode": self.mode}
        if self.business_id:
            query["business_id"] = self.business_id
        if self.customer_ids:
            query["customer_id"] = {"$in": list(self.customer_ids)}
        return query


@dataclass(frozen=True)
class KeyFilter:
    """The merchant's and the portal's list filters."""

    scope: Scope
    product_id: str = ""
    status: LicenseKeyStatus | None = None
    now: datetime | None = None

    def as_query(self) -> dict[str, Any]:
        """The filter; status is read against ``now`` (the business's clock)."""
        query = self.scope.as_filter()
        if self.product_id:
            query["product_id"] = self.product_id
        if self.status is LicenseKeyStatus.DISABLED:
            query["disabled"] = True
        elif self.status is LicenseKeyStatus.EXPIRED:
            query |= {"disabled": False, "expires_at": {"$ne": None, "$lte": self.now}}
        elif self.status is LicenseKeyStatus.ACTIVE:
            query |= {
                "disabled": False,
                "$or": [{"expires_at": None}, {"expires_at": {"$gt": self.now}}],
            }
        return query


class LicensesRepository:
    """Keys and instances; every read by id is scoped to its business and mode."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._db = db
        self._keys = db[LICENSE_KEYS]
        self._instances = db[LICENSE_KEY_INSTANCES]

    async def record_change(
        self,
        *,
        actor: Actor,
        action: str,
        resource: Resource,
        at: datetime,
        txn: Txn,
        details: Mapping[str, str] | None = None,
    ) -> None:
        """The audit entry of a change, in its transaction (ids only, never a key)."""
        await record_audit(
            self._db,
            actor=actor,
            action=action,
            resource=resource,
            at=at,
            session=txn,
            details=details,
        )

    # Keys.

    async def insert_key(self, key: LicenseKey, txn: Txn | None = None) -> None:
        """Store a new key (DuplicateKeyError on a hash or unit already stored)."""
        await self._keys.insert_one(_key_doc(key), session=txn)

    async def unit_issued(
        self, purchase_id: str, product_id: str, unit: int, txn: Txn | None = None
    ) -> bool:
        """Whether this unit of this purchase already has its key."""
        doc = await self._keys.find_one(
            {"purchase_id": purchase_id, "product_id": product_id, "unit": unit},
            {"_id": 1},
            session=txn,
        )
        return doc is not None

    async def hash_taken(self, key_hash: str, txn: Txn | None = None) -> bool:
        """Whether a key with this hash exists (any business)."""
        doc = await self._keys.find_one({"key_hash": key_hash}, {"_id": 1}, session=txn)
        return doc is not None

    async def find_by_hash(self, key_hash: str, txn: Txn | None = None) -> LicenseKey | None:
        """The key presented by the software, whoever owns it."""
        doc = await self._keys.find_one({"key_hash": key_hash}, session=txn)
        return None if doc is None else _key_from(doc)

    async def get_key(
        self, scope: Scope, license_key_id: str, txn: Txn | None = None
    ) -> LicenseKey | None:
        """The key if it is in ``scope``; None when unknown or someone else's."""
        doc = await self._keys.find_one({"_id": license_key_id, **scope.as_filter()}, session=txn)
        return None if doc is None else _key_from(doc)

    async def list_keys(self, query: KeyFilter, page: PageRequest) -> list[LicenseKey]:
        """A page of keys, newest first."""
        cursor = (
            self._keys.find(query.as_query())
            .sort(newest_first())
            .skip(page.skip)
            .limit(page.page_size)
        )
        return [_key_from(doc) async for doc in cursor]

    async def update_key(
        self, scope: Scope, license_key_id: str, changes: Mapping[str, Any], txn: Txn | None = None
    ) -> LicenseKey | None:
        """Set ``changes`` on the key in scope; the updated key, None when not found."""
        doc = await self._keys.find_one_and_update(
            {"_id": license_key_id, **scope.as_filter()},
            {"$set": dict(changes)},
            return_document=ReturnDocument.AFTER,
            session=txn,
        )
        return None if doc is None else _key_from(doc)

    # Activations.

    async def take_slot(self, key: LicenseKey, txn: Txn) -> bool:
        """Count one more instance if the limit allows; False when it is reached.

        The guard and the increment are one conditional update, so concurrent
        activations cannot together go past the limit.
        """
        query: dict[str, Any] = {"_id": key.license_key_id}
        if key.activations_limit is not None:
            query["instances_count"] = {"$lt": key.activations_limit}
        result = await self._keys.update_one(query, {"$inc": {"instances_count": 1}}, session=txn)
        return result.modified_count == 1

    async def insert_instance(self, instance: LicenseKeyInstance, txn: Txn) -> None:
        """Store a new activation (its slot taken in the same transaction)."""
        await self._instances.insert_one(_instance_doc(instance), session=txn)

    async def remove_instance(self, license_key_id: str, instance_id: str, txn: Txn) -> bool:
        """Delete one of the key's instances and free its slot; False when it is not the key's."""
        result = await self._instances.delete_one(
            {"_id": instance_id, "license_key_id": license_key_id}, session=txn
        )
        if result.deleted_count != 1:
            return False
        await self._keys.update_one(
            {"_id": license_key_id, "instances_count": {"$gt": 0}},
            {"$inc": {"instances_count": -1}},
            session=txn,
        )
        return True

    async def get_instance(
        self, scope: Scope, instance_id: str, txn: Txn | None = None
    ) -> LicenseKeyInstance | None:
        """The instance if it is in ``scope``."""
        doc = await self._instances.find_one({"_id": instance_id, **scope.as_filter()}, session=txn)
        return None if doc is None else _instance_from(doc)

    async def find_instance(
        self, license_key_id: str, instance_id: str, txn: Txn | None = None
    ) -> LicenseKeyInstance | None:
        """One of this key's instances."""
        doc = await self._instances.find_one(
            {"_id": instance_id, "license_key_id": license_key_id}, session=txn
        )
        return None if doc is None else _instance_from(doc)

    async def list_instances(
        self, scope: Scope, license_key_id: str, page: PageRequest
    ) -> list[LicenseKeyInstance]:
        """A page of instances in scope (of one key when ``license_key_id``), newest first."""
        query = scope.as_filter()
        if license_key_id:
            query["license_key_id"] = license_key_id
        cursor = (
            self._instances.find(query).sort(newest_first()).skip(page.skip).limit(page.page_size)
        )
        return [_instance_from(doc) async for doc in cursor]

    async def rename_instance(
        self, scope: Scope, instance_id: str, name: str, txn: Txn | None = None
    ) -> LicenseKeyInstance | None:
        """Rename an instance in scope; None when not found."""
        doc = await self._instances.find_one_and_update(
            {"_id": instance_id, **scope.as_filter()},
            {"$set": {"name": name}},
            return_document=ReturnDocument.AFTER,
            session=txn,
        )
        return None if doc is None else _instance_from(doc)
