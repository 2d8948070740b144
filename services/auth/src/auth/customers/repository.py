"""The only module that writes ``customers``.

Every read takes the owning ``business_id`` and ``mode`` (except the unified
portal's lookup by verified email), so a foreign id is simply "not found".
Writes take the use case's transaction; the unique email index is the arbiter
between concurrent writers and a clash is :class:`~auth.customers.errors.EmailTaken`.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from auth.customers.billing_details import BillingDetails
from auth.customers.errors import EmailTaken
from auth.customers.models import Customer
from auth.rules import Mode, normalize_email
from auth.unit_of_work import Txn

CUSTOMERS = "customers"

Document = dict[str, Any]

CUSTOMER_INDEXES: dict[str, list[IndexModel]] = {
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
        # The unified portal: every live customer with one email, across businesses.
        IndexModel(
            [("email_normalized", ASCENDING), ("mode", ASCENDING)], name="by_email_across_business"
        ),
    ],
}


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
        billing_details=doc.get("billing_details"),
    )


def _is_email_clash(exc: DuplicateKeyError) -> bool:
    details = exc.details or {}
    key_pattern = details.get("keyPattern") or {}
    return "email_normalized" in key_pattern or "email_unique" in str(details.get("errmsg", ""))


def _email_taken() -> EmailTaken:
    return EmailTaken("email: another customer of this business already uses this email")


class CustomerRepository:
    """Reads and writes customers."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.customers = db[CUSTOMERS]

    async def insert(self, customer: Customer, *, txn: Txn) -> None:
        """Store a new customer; :class:`EmailTaken` when its email is taken in the
        business+mode (any other duplicate key is a bug and propagates as is)."""
        try:
            await self.customers.insert_one(_customer_doc(customer), session=txn)
        except DuplicateKeyError as exc:
            if not _is_email_clash(exc):
                raise
            raise _email_taken() from None

    async def update(
        self, business_id: str, mode: Mode, customer_id: str, changes: Document, *, txn: Txn
    ) -> Customer | None:
        """Apply ``changes`` (model field names; ``metadata`` as a dict) and return the
        customer after them; None when it is not this business's. A new ``email``
        also moves ``email_normalized``; :class:`EmailTaken` when another customer has it.
        """
        update = dict(changes)
        if "metadata" in update:
            update["metadata"] = metadata_doc(update["metadata"])
        if isinstance(update.get("billing_details"), BillingDetails):
            update["billing_details"] = update["billing_details"].model_dump()
        if "email" in update:
            update["email_normalized"] = normalize_email(update["email"])
        try:
            doc = await self.customers.find_one_and_update(
                {"_id": customer_id, "business_id": business_id, "mode": mode},
                {"$set": update},
                return_document=ReturnDocument.AFTER,
                session=txn,
            )
        except DuplicateKeyError as exc:
            if not _is_email_clash(exc):
                raise
            raise _email_taken() from None
        return _customer(doc) if doc else None

    async def find_by_email(
        self, business_id: str, mode: Mode, email_normalized: str, *, txn: Txn | None = None
    ) -> Customer | None:
        """The customer with this (normalized) email in a business+mode."""
        doc = await self.customers.find_one(
            {"business_id": business_id, "mode": mode, "email_normalized": email_normalized},
            session=txn,
        )
        return _customer(doc) if doc else None

    async def get(
        self, business_id: str, mode: Mode, customer_id: str, *, txn: Txn | None = None
    ) -> Customer | None:
        """One customer, only if it belongs to this business and mode."""
        doc = await self.customers.find_one(
            {"_id": customer_id, "business_id": business_id, "mode": mode}, session=txn
        )
        return _customer(doc) if doc else None

    async def list_page(
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

    async def with_email(self, email_normalized: str, mode: Mode) -> list[Customer]:
        """Every customer (any business) with this email in a mode: the unified portal."""
        cursor = self.customers.find({"email_normalized": email_normalized, "mode": mode})
        return [_customer(doc) async for doc in cursor.limit(500)]

    async def preferred_locale(self, business_id: str, mode: Mode, customer_id: str) -> str | None:
        """A customer's preferred_locale (one projected read by id); None when none."""
        doc = await self.customers.find_one(
            {"_id": customer_id, "business_id": business_id, "mode": mode},
            {"preferred_locale": 1},
        )
        return doc.get("preferred_locale") if doc else None
