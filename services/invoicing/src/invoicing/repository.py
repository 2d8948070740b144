"""The only module that touches the invoicing database: invoices, numbering, stored PDFs."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billing_kit.mongo import model_from_document, model_to_document
from billing_kit.scoping import CustomerScope, Mode, PageRequest
from gridfs import NoFile
from gridfs.asynchronous import AsyncGridFSBucket
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from invoicing.models import Buyer, BuyerDetails, Invoice, InvoiceVersion, Seller

INVOICES = "invoices"
COUNTERS = "invoice_counters"
PDF_BUCKET = "invoice_pdfs"
NUMBER_PREFIX = "INV-"
# Invoices whose PDF is not stored yet: the sweeper's claim reads only these.
UNFINISHED = {"pdf_ready": False}
# The _id index, named: a filter of _id plus conditions (a conditional update)
# is otherwise planned as a collection scan by SecantusDB.
BY_ID = "_id_"
_KNOWN_COUNTERS_CAP = 100_000

INDEXES: Mapping[str, Sequence[IndexModel]] = {
    INVOICES: [
        # A customer's invoices newest first: ``position`` is the customer's
        # n-th invoice (taken in the issuing transaction, so it follows issue
        # order), and a page is a bounded range of it. SecantusDB walks a whole
        # index range before a limit, so a skip/limit over issued_at would read
        # all 10,000 invoices of a big customer for every page; a position
        # range reads one page.
        IndexModel(
            [
                ("business_id", ASCENDING),
                ("mode", ASCENDING),
                ("customer_id", ASCENDING),
                ("position", DESCENDING),
            ],
            name="customer_by_position",
        ),
        # The unified portal: customers of one email across businesses (customer
        # ids are unique across businesses), each a bounded position range.
        IndexModel(
            [("customer_id", ASCENDING), ("mode", ASCENDING), ("position", DESCENDING)],
            name="customers_across_businesses_by_position",
        ),
        # A history page asks for the invoices of its payments (payment ids are unique).
        IndexModel([("payment_id", ASCENDING)], name="by_payment"),
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


def business_counter(business_id: str, mode: Mode) -> str:
    """The counter of a business's invoice numbers."""
    return f"business:{business_id}:{mode}"


def customer_counter(customer_id: str, mode: Mode) -> str:
    """The counter of a customer's invoice positions (customer ids are unique across businesses)."""
    return f"customer:{customer_id}:{mode}"


def invoice_to_document(invoice: Invoice, position: int) -> dict[str, Any]:
    """The stored shape: ``_id`` = invoice id (also the PDF's GridFS id), plus its position."""
    doc = model_to_document(invoice, "invoice_id")
    doc["kind"] = invoice.kind.value
    doc["lines"] = [line.model_dump() for line in invoice.lines]
    doc["position"] = position
    return doc


def _from_document(doc: Mapping[str, Any]) -> Invoice:
    return model_from_document(Invoice, doc, "invoice_id")


def _in_scope(doc: Mapping[str, Any], business_id: str, mode: Mode, customer_id: str) -> bool:
    return (
        doc.get("business_id") == business_id
        and doc.get("mode") == mode
        and (not customer_id or doc.get("customer_id") == customer_id)
    )


@dataclass(frozen=True)
class InvoiceFilter:
    """Which invoices a list shows: one business's customer(s), or customers across businesses."""

    business_id: str  # "" = the unified portal (customer ids across businesses)
    mode: Mode
    customer_ids: Sequence[str]
    payment_ids: Sequence[str] = ()

    def matches(self, doc: Mapping[str, Any]) -> bool:
        """Whether a stored invoice belongs to this list."""
        return (
            doc.get("mode") == self.mode
            and (not self.business_id or doc.get("business_id") == self.business_id)
            and doc.get("customer_id") in self.customer_ids
        )


def _newest_first(doc: Mapping[str, Any]) -> tuple[Any, ...]:
    return (doc["issued_at"], doc.get("position", 0), doc["_id"])


class InvoicingRepository:
    """Invoices and their counters (business numbers, customer positions)."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._invoices = db[INVOICES]
        self._counters = db[COUNTERS]
        self._known_counters: set[str] = set()

    # --- issuing (inside the consumer's transaction) ---

    async def ensure_counters(self, business_id: str, mode: Mode, customer_id: str) -> None:
        """Create the business's and the customer's counters if missing, outside any transaction.

        Two transactions that both upsert a missing counter fail with a duplicate
        key (not retried as transient); created beforehand, every transaction
        only ``$inc``s an existing document, and concurrent ones conflict and
        are rerun by the transaction runner instead.
        """
        for key in (business_counter(business_id, mode), customer_counter(customer_id, mode)):
            if key in self._known_counters:
                continue
            try:
                await self._counters.update_one(
                    {"_id": key}, {"$setOnInsert": {"seq": 0}}, upsert=True
                )
            except DuplicateKeyError:
                pass  # another replica created it at the same moment: it exists
            if len(self._known_counters) >= _KNOWN_COUNTERS_CAP:
                self._known_counters.clear()
            self._known_counters.add(key)

    async def take_next(self, counter: str, session: AsyncClientSession) -> int:
        """The next value of ``counter``, taken inside ``session``'s transaction.

        The ``$inc`` commits or rolls back with the invoice it numbers, so a
        failed issue leaves no gap; two transactions incrementing at once
        conflict, and the loser is rerun with the next value. (An update and a
        read by ``_id`` rather than ``find_one_and_update``, which SecantusDB
        answers by scanning the collection.)
        """
        await self._counters.update_one(
            {"_id": counter}, {"$inc": {"seq": 1}}, upsert=True, session=session
        )
        doc = await self._counters.find_one({"_id": counter}, session=session)
        assert doc is not None  # written just above in this transaction
        return int(doc["seq"])

    async def exists(self, invoice_id: str, session: AsyncClientSession | None = None) -> bool:
        """Whether ``invoice_id`` was issued."""
        found = await self._invoices.find_one({"_id": invoice_id}, {"_id": 1}, session=session)
        return found is not None

    async def insert(
        self, invoice: Invoice, position: int, session: AsyncClientSession | None = None
    ) -> None:
        """Store a newly issued invoice (its PDF not yet stored), the customer's ``position``-th."""
        doc = invoice_to_document(invoice, position)
        doc["finish_lease_until"] = invoice.issued_at  # claimable by the sweeper at once
        await self._invoices.insert_one(doc, session=session)

    # --- finishing (render, store, publish) ---

    async def claim_unfinished(
        self, now: datetime, lease_until: datetime, invoice_id: str | None = None
    ) -> Invoice | None:
        """Lease one unfinished invoice (``invoice_id``, or any whose lease ran out).

        The conditional update is atomic, so two replicas never work on the
        same invoice at once; a replica that dies holding a lease loses it when
        it runs out.
        """
        due = {**UNFINISHED, "finish_lease_until": {"$lte": now}}
        if invoice_id is not None:
            candidates = [invoice_id]
        else:
            cursor = (
                self._invoices.find(due, {"_id": 1}).sort("finish_lease_until", ASCENDING).limit(5)
            )
            candidates = [doc["_id"] async for doc in cursor]
        for candidate in candidates:
            claimed = await self._invoices.update_one(
                {"_id": candidate, **due},
                {"$set": {"finish_lease_until": lease_until}},
                hint=BY_ID,
            )
            if claimed.modified_count == 1:
                doc = await self._invoices.find_one({"_id": candidate})
                return _from_document(doc) if doc else None
        return None

    async def postpone(self, invoice_id: str, until: datetime) -> None:
        """Give up the lease until ``until`` (a dependency is down: try again later)."""
        await self._invoices.update_one(
            {"_id": invoice_id, **UNFINISHED},
            {"$set": {"finish_lease_until": until}},
            hint=BY_ID,
        )

    async def has_due_unfinished(self, now: datetime) -> bool:
        """Whether some unfinished invoice's lease has run out (the sweeper goes on)."""
        doc = await self._invoices.find_one(
            {**UNFINISHED, "finish_lease_until": {"$lte": now}}, {"_id": 1}
        )
        return doc is not None

    async def record_parties(
        self,
        invoice_id: str,
        seller: Seller,
        buyer: Buyer,
        locale: str,
        buyer_details: BuyerDetails | None = None,
    ) -> Invoice | None:
        """Fill seller, buyer (and what it was printed from) and language once
        (a later call keeps the first snapshot)."""
        await self._invoices.update_one(
            {"_id": invoice_id, "seller": None},
            {
                "$set": {
                    "seller": seller.model_dump(),
                    "buyer": buyer.model_dump(),
                    "locale": locale,
                    "buyer_details": buyer_details.model_dump() if buyer_details else None,
                }
            },
            hint=BY_ID,
        )
        doc = await self._invoices.find_one({"_id": invoice_id})
        return _from_document(doc) if doc else None

    async def mark_pdf_ready(self, invoice_id: str, session: AsyncClientSession) -> bool:
        """Set ``pdf_ready``; False when it already was (another replica finished first)."""
        result = await self._invoices.update_one(
            {"_id": invoice_id, **UNFINISHED},
            {"$set": {"pdf_ready": True}, "$unset": {"finish_lease_until": ""}},
            hint=BY_ID,
            session=session,
        )
        return result.modified_count == 1

    async def add_version(
        self, invoice_id: str, reissues: int, entry: InvoiceVersion, session: AsyncClientSession
    ) -> bool:
        """Append a re-issued version if the invoice still has ``reissues`` of them.

        False when another re-issue was recorded meanwhile (that one stands).
        The original fields are never touched: version 1 stays as it was issued.
        """
        counted: dict[str, Any] = (
            {"reissues": reissues} if reissues else {"reissues": {"$exists": False}}
        )
        result = await self._invoices.update_one(
            {"_id": invoice_id, **counted},
            {"$push": {"versions": entry.model_dump()}, "$set": {"reissues": reissues + 1}},
            hint=BY_ID,
            session=session,
        )
        return result.modified_count == 1

    # --- reads (always scoped) ---

    async def get_invoice(self, scope: CustomerScope, invoice_id: str) -> Invoice | None:
        """The invoice if it belongs to ``scope``; another customer's is simply absent."""
        doc = await self._invoices.find_one({"_id": invoice_id})
        if doc is None or not _in_scope(doc, scope.business_id, scope.mode, scope.customer_id):
            return None
        return _from_document(doc)

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
        if invoice_id:
            doc = await self._invoices.find_one({"_id": invoice_id})
        else:
            docs = await self._invoices.find({"payment_id": payment_id}).to_list()
            doc = next((d for d in docs if d.get("kind") == "invoice"), None)
        if doc is None or not _in_scope(doc, business_id, mode, customer_id):
            return None
        return _from_document(doc)

    async def list_invoices(self, where: InvoiceFilter, page: PageRequest) -> list[Invoice]:
        """One page, newest first, reading about one page per customer from the index."""
        if where.payment_ids:
            # At most 100 payments: read them by id, keep the caller's, page in memory.
            found = await self._invoices.find(
                {"payment_id": {"$in": list(where.payment_ids)}}
            ).to_list()
            docs = sorted((d for d in found if where.matches(d)), key=_newest_first, reverse=True)
            return [_from_document(d) for d in docs[page.skip : page.skip + page.page_size]]
        counters = await self._counters.find(
            {"_id": {"$in": [customer_counter(c, where.mode) for c in where.customer_ids]}}
        ).to_list()
        last = {doc["_id"]: int(doc["seq"]) for doc in counters}
        per_customer = await asyncio.gather(
            *(
                self._newest_of(
                    where, customer_id, last.get(customer_counter(customer_id, where.mode), 0), page
                )
                for customer_id in where.customer_ids
            )
        )
        if len(per_customer) == 1:
            docs = per_customer[0]  # exactly the page, by position
        else:
            every = sorted(
                (d for docs in per_customer for d in docs), key=_newest_first, reverse=True
            )
            docs = every[page.skip : page.skip + page.page_size]
        return [_from_document(d) for d in docs]

    async def _newest_of(
        self, where: InvoiceFilter, customer_id: str, last: int, page: PageRequest
    ) -> list[dict[str, Any]]:
        """The customer's newest ``skip + page_size`` invoices (one page when alone), newest first.

        Positions run 1..last without holes (taken with the invoice in one
        transaction), so the page is the position range (low, high].
        """
        alone = len(where.customer_ids) == 1
        high = last - page.skip if alone else last
        low = high - (page.page_size if alone else page.skip + page.page_size)
        if high <= 0:
            return []
        query: dict[str, Any] = {
            "customer_id": customer_id,
            "mode": where.mode,
            "position": {"$gt": max(low, 0), "$lte": high},
        }
        if where.business_id:
            query = {"business_id": where.business_id, **query}
        docs = await self._invoices.find(query).to_list()
        # The position range is exact; the scope check drops a foreign business's
        # customer a caller might have named.
        mine = (d for d in docs if where.matches(d))
        return sorted(mine, key=lambda d: int(d["position"]), reverse=True)


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
