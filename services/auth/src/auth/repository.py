"""The only module of the auth service that touches MongoDB.

Every read of a merchant-owned record takes the owning ``business_id`` (and
``mode``) as a parameter, so a foreign id is simply "not found".
Documents use the prefixed id as ``_id``: it is unique and indexed for free.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from billing_kit.errors import AlreadyExists, Reason
from billing_kit.events import CloudEvent
from billing_kit.mongo import run_in_transaction
from billing_kit.outbox import add_to_outbox
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.asynchronous.mongo_client import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from auth.models import ApiKey, Business, Customer, Mode

BUSINESSES = "businesses"
API_KEYS = "api_keys"
CUSTOMERS = "customers"

INDEXES: dict[str, list[IndexModel]] = {
    BUSINESSES: [IndexModel([("created_at", DESCENDING), ("_id", DESCENDING)], name="by_created")],
    API_KEYS: [
        IndexModel([("secret_hash", ASCENDING)], unique=True, name="secret_hash_unique"),
        IndexModel([("business_id", ASCENDING), ("created_at", DESCENDING)], name="by_business"),
    ],
    CUSTOMERS: [
        # One customer per email in a business+mode; also serves the email filter.
        IndexModel(
            [("business_id", ASCENDING), ("mode", ASCENDING), ("email_normalized", ASCENDING)],
            unique=True,
            name="email_unique",
        ),
        # Newest-first pages; _id breaks ties between customers created in the same millisecond.
        IndexModel(
            [
                ("business_id", ASCENDING),
                ("mode", ASCENDING),
                ("created_at", DESCENDING),
                ("_id", DESCENDING),
            ],
            name="list_by_created",
        ),
    ],
}

Document = dict[str, Any]


def _business_doc(business: Business) -> Document:
    doc = business.model_dump()
    doc["_id"] = doc.pop("business_id")
    return doc


def _business(doc: Document) -> Business:
    return Business(business_id=doc["_id"], **{k: v for k, v in doc.items() if k != "_id"})


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


def metadata_doc(metadata: dict[str, str]) -> list[Document]:
    """Metadata as stored: a list of ``{"key", "value"}`` pairs.

    Merchant keys may contain ``.`` or start with ``$``, which MongoDB field
    names must not; as values inside a list they are just strings (order kept).
    """
    return [{"key": key, "value": value} for key, value in metadata.items()]


def _metadata(stored: Any) -> dict[str, str]:
    return {pair["key"]: pair["value"] for pair in stored or []}


def _customer_doc(customer: Customer) -> Document:
    doc = customer.model_dump()
    doc["_id"] = doc.pop("customer_id")
    doc["email_normalized"] = customer.email_normalized
    doc["metadata"] = metadata_doc(customer.metadata)
    return doc


def _customer(doc: Document) -> Customer:
    return Customer(
        customer_id=doc["_id"],
        business_id=doc["business_id"],
        mode=doc["mode"],
        email=doc["email"],
        name=doc["name"],
        phone_number=doc.get("phone_number"),
        created_at=doc["created_at"],
        # Customers stored before these fields existed have neither.
        metadata=_metadata(doc.get("metadata")),
        preferred_locale=doc.get("preferred_locale"),
    )


T = TypeVar("T")


def _is_email_clash(exc: DuplicateKeyError) -> bool:
    details = exc.details or {}
    key_pattern = details.get("keyPattern") or {}
    return "email_normalized" in key_pattern or "email_unique" in str(details.get("errmsg", ""))


async def write_customer(
    client: AsyncMongoClient[Document],
    write: Callable[[AsyncClientSession], Awaitable[T]],
    *,
    clash: AlreadyExists,
) -> T:
    """Run a customer write (and its outbox event) in one transaction.

    The unique email index is the arbiter between concurrent writers: when the
    email is already taken in the business+mode, nothing is written and
    ``clash`` is raised. Any other duplicate key (say an outbox event id) is a
    bug, not a conflict to report, and propagates as is.
    """
    try:
        return await run_in_transaction(client, write)
    except DuplicateKeyError as exc:
        if not _is_email_clash(exc):
            raise
        raise clash from None


class AuthRepository:
    """Reads and writes businesses, API keys and customers."""

    def __init__(self, client: AsyncMongoClient[Document], db: AsyncDatabase[Document]) -> None:
        self.client = client
        self.db = db
        self.businesses = db[BUSINESSES]
        self.api_keys = db[API_KEYS]
        self.customers = db[CUSTOMERS]

    # --- businesses ---

    async def insert_business(self, business: Business) -> None:
        """Store a new business."""
        await self.businesses.insert_one(_business_doc(business))

    async def get_business(self, business_id: str) -> Business | None:
        """One business by id."""
        doc = await self.businesses.find_one({"_id": business_id})
        return _business(doc) if doc else None

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
        doc = api_key.model_dump()
        doc["_id"] = doc.pop("key_id")
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

    # --- customers ---

    async def insert_customer_with_event(self, customer: Customer, event: CloudEvent) -> None:
        """Store a customer and its ``customer.created`` event in one transaction.

        Raises :class:`AlreadyExists` when the email is already taken in the
        business+mode (a concurrent create won the race); nothing is written then.
        """

        async def write(session: AsyncClientSession) -> None:
            await self.customers.insert_one(_customer_doc(customer), session=session)
            await add_to_outbox(self.db, event, session=session)

        await write_customer(
            self.client,
            write,
            clash=AlreadyExists(
                "a customer with this email already exists", reason=Reason.CUSTOMER_EXISTS
            ),
        )

    async def find_customer_by_email(
        self, business_id: str, mode: Mode, email_normalized: str
    ) -> Customer | None:
        """The customer with this (normalized) email in a business+mode."""
        doc = await self.customers.find_one(
            {"business_id": business_id, "mode": mode, "email_normalized": email_normalized}
        )
        return _customer(doc) if doc else None

    async def get_customer(self, business_id: str, mode: Mode, customer_id: str) -> Customer | None:
        """One customer, only if it belongs to this business and mode."""
        doc = await self.customers.find_one(
            {"_id": customer_id, "business_id": business_id, "mode": mode}
        )
        return _customer(doc) if doc else None

    async def list_customers(
        self, business_id: str, mode: Mode, *, email_normalized: str | None, limit: int, skip: int
    ) -> list[Customer]:
        """A page of a business's customers, newest first."""
        query: Document = {"business_id": business_id, "mode": mode}
        if email_normalized is not None:
            query["email_normalized"] = email_normalized
        cursor = (
            self.customers.find(query)
            .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
            .skip(skip)
            .limit(limit)
        )
        return [_customer(doc) async for doc in cursor]
