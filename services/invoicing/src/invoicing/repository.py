"""The only module that touches the invoicing database: invoices, numbering, stored PDFs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billing_kit.scoping import (
    CustomerScope,
    Mode,
    PageRequest,
    customer_newest_first_index,
    customers_across_businesses_index,
    newest_first,
)
from gridfs import NoFile
from gridfs.asynchronous import AsyncGridFSBucket
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from invoicing.models import Buyer, Invoice, Seller

INVOICES = "invoices"
COUNTERS = "invoice_counters"
PDF_BUCKET = "invoice_pdfs"
NUMBER_PREFIX = "INV-"
# Invoices whose PDF is not stored yet: the sweeper's claim reads only these.
UNFINISHED = {"pdf_ready": False}

INDEXES: Mapping[str, Sequence[IndexModel]] = {
    INVOICES: [
        # A customer's invoices newest first (the portal's history, scoped get).
        customer_newest_first_index("issued_at"),
        # The unified portal: one customer id per business of an email, across businesses.
        customers_across_businesses_index("issued_at"),
        # Exactly one invoice per payment, whatever the consumer does twice.
        # (A credit note of the same payment has kind credit_note.)
        IndexModel(
            [
                ("business_id", ASCENDING),
                ("mode", ASCENDING),
                ("payment_id", ASCENDING),
                ("kind", ASCENDING),
            ],
            name="one_invoice_per_payment",
            unique=True,
        ),
        # Numbers never repeat within a business and mode.
        IndexModel(
            [("business_id", ASCENDING), ("mode", ASCENDING), ("number", ASCENDING)],
            name="number_unique_per_business",
            unique=True,
        ),
        # The sweeper: unfinished invoices whose lease has run out.
        IndexModel(
            [("finish_lease_until", ASCENDING)],
            name="unfinished_by_lease",
            partialFilterExpression=UNFINISHED,
        ),
    ],
}


def format_number(sequence: int) -> str:
    """The printed number of the ``sequence``-th invoice of a business: ``INV-000042``."""
    return f"{NUMBER_PREFIX}{sequence:06d}"


def invoice_to_document(invoice: Invoice) -> dict[str, Any]:
    """The stored shape: the invoice id is the document ``_id``; the PDF's GridFS id equals it."""
    doc: dict[str, Any] = invoice.model_dump(mode="python")
    doc["_id"] = doc.pop("invoice_id")
    doc["kind"] = invoice.kind.value
    doc["lines"] = [line.model_dump() for line in invoice.lines]
    return doc


def _from_document(doc: Mapping[str, Any]) -> Invoice:
    fields = {k: doc[k] for k in Invoice.model_fields if k in doc}
    return Invoice.model_validate({**fields, "invoice_id": doc["_id"]})


@dataclass(frozen=True)
class InvoiceFilter:
    """Which invoices a list shows: one business's customer(s), or customers across businesses."""

    business_id: str  # "" = the unified portal (customer ids across businesses)
    mode: Mode
    customer_ids: Sequence[str]
    payment_ids: Sequence[str] = ()

    def as_query(self) -> dict[str, Any]:
        """The MongoDB filter (served by the two newest-first indexes)."""
        query: dict[str, Any] = {"mode": self.mode}
        if self.business_id:
            query["business_id"] = self.business_id
        if len(self.customer_ids) == 1:
            query["customer_id"] = self.customer_ids[0]
        else:
            query["customer_id"] = {"$in": list(self.customer_ids)}
        if self.payment_ids:
            query["payment_id"] = {"$in": list(self.payment_ids)}
        return query


class InvoicingRepository:
    """Invoices and their per-business counters."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._invoices = db[INVOICES]
        self._counters = db[COUNTERS]
        self._known_counters: set[str] = set()

    # --- issuing (inside the consumer's transaction) ---

    async def ensure_counter(self, business_id: str, mode: Mode) -> None:
        """Create the business's counter at 0 if missing, outside any transaction.

        Two transactions that both upsert a missing counter fail with a duplicate
        key (not retried as transient); created beforehand, every transaction
        only ``$inc``s an existing document, and concurrent ones conflict and
        are retried by the transaction runner instead.
        """
        key = f"{business_id}:{mode}"
        if key in self._known_counters:
            return
        try:
            await self._counters.update_one({"_id": key}, {"$setOnInsert": {"seq": 0}}, upsert=True)
        except DuplicateKeyError:
            pass  # another replica created it at the same moment: it exists
        self._known_counters.add(key)

    async def next_sequence(self, business_id: str, mode: Mode, session: AsyncClientSession) -> int:
        """The next number of the business, taken inside ``session``'s transaction.

        The ``$inc`` commits or rolls back with the invoice it numbers, so a
        failed issue leaves no gap; two transactions incrementing at once
        conflict, and the loser is rerun with the next number.
        """
        doc = await self._counters.find_one_and_update(
            {"_id": f"{business_id}:{mode}"},
            {"$inc": {"seq": 1}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        assert doc is not None  # upsert with ReturnDocument.AFTER always returns it
        return int(doc["seq"])

    async def invoice_of_payment(
        self, business_id: str, mode: Mode, payment_id: str, session: AsyncClientSession | None
    ) -> Invoice | None:
        """The invoice (not a credit note) issued for ``payment_id``, if any."""
        doc = await self._invoices.find_one(
            {"business_id": business_id, "mode": mode, "payment_id": payment_id, "kind": "invoice"},
            session=session,
        )
        return _from_document(doc) if doc else None

    async def insert(self, invoice: Invoice, session: AsyncClientSession | None = None) -> None:
        """Store a newly issued invoice (its PDF not yet stored)."""
        doc = invoice_to_document(invoice)
        doc["finish_lease_until"] = invoice.issued_at  # claimable by the sweeper at once
        await self._invoices.insert_one(doc, session=session)

    # --- finishing (render, store, publish) ---

    async def claim_unfinished(
        self, now: datetime, lease_until: datetime, invoice_id: str | None = None
    ) -> Invoice | None:
        """Lease one unfinished invoice (``invoice_id``, or any whose lease ran out).

        Atomic, so two replicas never work on the same invoice at once; a
        replica that dies holding a lease loses it when it runs out.
        """
        query: dict[str, Any] = {**UNFINISHED, "finish_lease_until": {"$lte": now}}
        if invoice_id is not None:
            query["_id"] = invoice_id
        doc = await self._invoices.find_one_and_update(
            query,
            {"$set": {"finish_lease_until": lease_until}},
            sort=[("finish_lease_until", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )
        return _from_document(doc) if doc else None

    async def postpone(self, invoice_id: str, until: datetime) -> None:
        """Give up the lease until ``until`` (a dependency is down: try again later)."""
        await self._invoices.update_one(
            {"_id": invoice_id, **UNFINISHED}, {"$set": {"finish_lease_until": until}}
        )

    async def has_due_unfinished(self, now: datetime) -> bool:
        """Whether some unfinished invoice's lease has run out (the sweeper goes on)."""
        doc = await self._invoices.find_one(
            {**UNFINISHED, "finish_lease_until": {"$lte": now}}, {"_id": 1}
        )
        return doc is not None

    async def record_parties(
        self, invoice_id: str, seller: Seller, buyer: Buyer, locale: str
    ) -> Invoice | None:
        """Fill seller, buyer and language once (a later call keeps the first snapshot)."""
        await self._invoices.update_one(
            {"_id": invoice_id, "seller": None},
            {
                "$set": {
                    "seller": seller.model_dump(),
                    "buyer": buyer.model_dump(),
                    "locale": locale,
                }
            },
        )
        doc = await self._invoices.find_one({"_id": invoice_id})
        return _from_document(doc) if doc else None

    async def mark_pdf_ready(self, invoice_id: str, session: AsyncClientSession) -> bool:
        """Set ``pdf_ready``; False when it already was (another replica finished first)."""
        result = await self._invoices.update_one(
            {"_id": invoice_id, **UNFINISHED},
            {"$set": {"pdf_ready": True}, "$unset": {"finish_lease_until": ""}},
            session=session,
        )
        return result.modified_count == 1

    # --- reads (always scoped) ---

    async def get_invoice(self, scope: CustomerScope, invoice_id: str) -> Invoice | None:
        """The invoice if it belongs to ``scope``; another customer's is simply absent."""
        doc = await self._invoices.find_one({"_id": invoice_id, **scope.as_filter()})
        return _from_document(doc) if doc else None

    async def find_for_download(
        self,
        business_id: str,
        mode: Mode,
        customer_id: str,
        *,
        invoice_id: str = "",
        payment_id: str = "",
    ) -> Invoice | None:
        """The invoice by id or by payment within one business and mode (and customer if given)."""
        query: dict[str, Any] = {"business_id": business_id, "mode": mode}
        if customer_id:
            query["customer_id"] = customer_id
        if invoice_id:
            query["_id"] = invoice_id
        else:
            query |= {"payment_id": payment_id, "kind": "invoice"}
        doc = await self._invoices.find_one(query)
        return _from_document(doc) if doc else None

    async def list_invoices(self, where: InvoiceFilter, page: PageRequest) -> list[Invoice]:
        """One page, newest first."""
        cursor = (
            self._invoices.find(where.as_query())
            .sort(newest_first("issued_at"))
            .skip(page.skip)
            .limit(page.page_size)
        )
        return [_from_document(doc) async for doc in cursor]


class PdfStore:
    """The rendered PDFs in GridFS, under the invoice's id: stored once, never replaced."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._bucket = AsyncGridFSBucket(db, bucket_name=PDF_BUCKET)
        self._files = db[f"{PDF_BUCKET}.files"]
        self._chunks = db[f"{PDF_BUCKET}.chunks"]

    async def store_once(self, invoice_id: str, filename: str, content: bytes) -> None:
        """Store ``content`` as the PDF of ``invoice_id`` unless one is already stored.

        The file id is the invoice id, so a retry (or a second replica) can
        never store a second file: its insert is a duplicate key. The caller
        holds the invoice's lease, so chunks without a file document are the
        remains of an upload that died half-way and are removed first.
        """
        if await self._files.find_one({"_id": invoice_id}, {"_id": 1}) is not None:
            return
        await self._chunks.delete_many({"files_id": invoice_id})
        try:
            await self._bucket.upload_from_stream_with_id(
                invoice_id, filename, content, metadata={"contentType": "application/pdf"}
            )
        except DuplicateKeyError:
            pass  # stored meanwhile by a replica whose lease had run out: that one stands

    async def read(self, invoice_id: str) -> bytes | None:
        """The stored PDF, or None when it is not stored (yet)."""
        try:
            stream = await self._bucket.open_download_stream(invoice_id)
        except NoFile:
            return None
        content: bytes = await stream.read()
        return content
