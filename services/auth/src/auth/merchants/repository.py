"""The only module that writes ``businesses`` and ``api_keys``.

Documents use the prefixed id as ``_id``: it is unique and indexed for free.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from billing_kit.mongo import model_from_document, model_to_document
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from auth.merchants.models import PORTAL_SETTING_FIELDS, ApiKey, Business
from auth.unit_of_work import Txn

BUSINESSES = "businesses"
API_KEYS = "api_keys"

Document = dict[str, Any]

MERCHANT_INDEXES: dict[str, list[IndexModel]] = {
    BUSINESSES: [IndexModel([("created_at", DESCENDING), ("_id", DESCENDING)], name="by_created")],
    API_KEYS: [
        IndexModel([("secret_hash", ASCENDING)], unique=True, name="secret_hash_unique"),
        IndexModel([("business_id", ASCENDING), ("created_at", DESCENDING)], name="by_business"),
    ],
}


def _business_doc(business: Business) -> Document:
    return model_to_document(business, "business_id")


def _business(doc: Document) -> Business:
    return model_from_document(Business, doc, "business_id")


def _api_key(doc: Document) -> ApiKey:
    return ApiKey(
        key_id=doc["_id"],
        business_id=doc["business_id"],
        mode=doc["mode"],
        name=doc["name"],
        display_prefix=doc["display_prefix"],
        created_at=doc["created_at"],
        revoked_at=doc.get("revoked_at"),
    )


class MerchantRepository:
    """Reads and writes businesses and API keys."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.businesses = db[BUSINESSES]
        self.api_keys = db[API_KEYS]

    # --- businesses ---

    async def insert_business(self, business: Business) -> None:
        """Store a new business."""
        await self.businesses.insert_one(_business_doc(business))

    async def get_business(self, business_id: str, *, txn: Txn | None = None) -> Business | None:
        """One business by id."""
        doc = await self.businesses.find_one({"_id": business_id}, session=txn)
        return _business(doc) if doc else None

    async def update_business(
        self, business_id: str, changes: dict[str, Any], *, txn: Txn
    ) -> Business | None:
        """Set the given fields (portal settings by name, each on its own) in ``txn``.

        Settings are set one by one, so a business stored before they existed
        keeps the defaults for the ones not given. None when there is no such business.
        """
        updates = {
            (f"portal_settings.{k}" if k in PORTAL_SETTING_FIELDS else k): v
            for k, v in changes.items()
        }
        doc = await self.businesses.find_one_and_update(
            {"_id": business_id},
            {"$set": updates},
            return_document=ReturnDocument.AFTER,
            session=txn,
        )
        return _business(doc) if doc else None

    async def get_businesses(self, business_ids: list[str]) -> list[Business]:
        """Several businesses in one indexed read."""
        if not business_ids:
            return []
        return [_business(d) async for d in self.businesses.find({"_id": {"$in": business_ids}})]

    async def business_exists(self, business_id: str) -> bool:
        """Whether a business with this id exists (an indexed, projected read)."""
        return await self.businesses.find_one({"_id": business_id}, {"_id": 1}) is not None

    async def list_businesses(self, *, limit: int, skip: int) -> list[Business]:
        """Businesses, newest first."""
        cursor = (
            self.businesses.find({})
            .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
            .skip(skip)
            .limit(limit)
        )
        return [_business(doc) async for doc in cursor]

    # --- API keys ---

    async def insert_api_key(self, api_key: ApiKey, secret_hash: str) -> None:
        """Store a new key with the hash of its secret (never the secret)."""
        doc = model_to_document(api_key, "key_id")
        doc["secret_hash"] = secret_hash
        await self.api_keys.insert_one(doc)

    async def list_api_keys(self, business_id: str) -> list[ApiKey]:
        """A business's keys, newest first (revoked ones included, marked)."""
        cursor = self.api_keys.find({"business_id": business_id}).sort("created_at", DESCENDING)
        return [_api_key(doc) async for doc in cursor]

    async def revoke_api_key(self, business_id: str, key_id: str, now: datetime) -> ApiKey | None:
        """Mark a key revoked (keeping the first revocation time); None if not this business's."""
        await self.api_keys.update_one(
            {"_id": key_id, "business_id": business_id, "revoked_at": None},
            {"$set": {"revoked_at": now}},
        )
        doc = await self.api_keys.find_one({"_id": key_id, "business_id": business_id})
        return _api_key(doc) if doc else None

    async def find_api_key_by_hash(self, secret_hash: str) -> ApiKey | None:
        """The key whose secret hashes to ``secret_hash``."""
        doc = await self.api_keys.find_one({"secret_hash": secret_hash})
        return _api_key(doc) if doc else None
