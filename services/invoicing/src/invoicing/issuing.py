"""Issuing invoices: one per succeeded payment, numbered without gaps, then rendered and stored.

The flow survives a crash at any point:

1. The ``payment.succeeded`` handler runs inside the consumer's transaction
   (the kit writes the ``processed_events`` record in it): it takes the next
   number of the business (``$inc`` on a counter document) and inserts the
   invoice with ``pdf_ready: false``. A redelivered event, or a second event
   for the same payment, issues nothing.
2. After that commit, and from the sweeper for anything left behind, a
   *finisher* leases the invoice, takes the seller/buyer snapshot from auth,
   renders the PDF in a worker thread and stores it in GridFS under the
   invoice id (once: a second store is a duplicate key).
3. One more transaction sets ``pdf_ready: true`` and writes ``invoice.created``
   to the outbox, only if ``pdf_ready`` was still false: one event per invoice.

Auth being down delays step 2 (the lease is pushed back and the sweeper
tries again); it never dead-letters the payment event.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from datetime import timedelta
from typing import Any

from billing_kit.clock import utc_now
from billing_kit.errors import FailedPrecondition, NotFound, Reason, Unavailable
from billing_kit.events import CloudEvent
from billing_kit.mongo import call_after_commit, run_in_transaction
from billing_kit.outbox import add_to_outbox
from billing_kit.scoping import CustomerScope
from pydantic import ValidationError
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from invoicing.models import (
    INVOICE_CREATED,
    INVOICE_REISSUED,
    PAYMENT_SUCCEEDED,
    Buyer,
    BuyerDetails,
    Invoice,
    InvoiceCreatedData,
    InvoiceKind,
    InvoiceLine,
    InvoiceReissuedData,
    InvoiceVersion,
    PaymentSucceededData,
)
from invoicing.parties import PartiesUnavailable, PartyDirectory
from invoicing.pdf import format_address, render_invoice_pdf
from invoicing.repository import (
    InvoicingRepository,
    PdfStore,
    business_counter,
    customer_counter,
    format_number,
)

log = logging.getLogger(__name__)
SOURCE = "invoicing"
PAYMENT_EVENTS = (PAYMENT_SUCCEEDED,)
ISSUE_PURPOSE = "issue-invoices"


class InvalidPaymentEvent(ValueError):
    """A ``payment.succeeded`` whose data cannot be invoiced (names fields, never values).

    Raised from the handler: the transaction rolls back (nothing written) and
    the broker retries, then dead-letters the event for an operator.
    """


def invoice_id_of(business_id: str, mode: str, payment_id: str) -> str:
    """The invoice id of a payment's invoice: derived, so it is the same on every attempt."""
    digest = hashlib.sha256(f"{business_id}\0{mode}\0{payment_id}".encode()).hexdigest()
    return f"inv_{digest[:24]}"


def parse_payment(event: CloudEvent) -> PaymentSucceededData:
    """The invoiceable data of ``event``, or InvalidPaymentEvent naming what is wrong."""
    try:
        return PaymentSucceededData.model_validate(event.data)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) or "data" for e in exc.errors()})
        raise InvalidPaymentEvent(f"invalid {event.type} data: {', '.join(fields)}") from None


def invoice_for(payment: PaymentSucceededData, sequence: int) -> Invoice:
    """The invoice documenting ``payment``, numbered ``sequence`` (parties not yet known).

    One line per line the payment carries (product name, quantity, unit
    amount); tax is the payment's when it carries one, else 0. A payment
    without lines (older events), or whose lines do not add up to its total
    less tax, gets one line: its description, quantity 1.
    """
    tax = payment.tax or 0
    lines = tuple(
        InvoiceLine(
            description=line.product_name or line.product_id,
            quantity=line.quantity,
            unit_amount=line.unit_amount,
            amount=line.quantity * line.unit_amount,
        )
        for line in payment.lines
    )
    subtotal = sum(line.amount for line in lines)
    if not lines or subtotal + tax != payment.total_amount:
        if lines:
            log.warning(
                "payment lines do not add up to its total; invoiced as one line",
                extra={"payment_id": payment.payment_id},
            )
        tax = 0
        subtotal = payment.total_amount
        lines = (
            InvoiceLine(
                description=payment.description or "Payment",
                quantity=1,
                unit_amount=payment.total_amount,
                amount=payment.total_amount,
            ),
        )
    return Invoice(
        invoice_id=invoice_id_of(payment.business_id, payment.mode, payment.payment_id),
        number=format_number(sequence),
        business_id=payment.business_id,
        mode=payment.mode,
        customer_id=payment.customer_id,
        payment_id=payment.payment_id,
        subscription_id=payment.subscription_id,
        lines=lines,
        subtotal=subtotal,
        tax=tax,
        total=payment.total_amount,
        currency=payment.currency,
        issued_at=utc_now(),
        paid_at=payment.updated_at,
        payment_method_brand=payment.card_brand,
        payment_method_last4=payment.card_last_four,
        billing_address=payment.billing,
        buyer_tax_id=payment.tax_id,
    )


def created_event(invoice: Invoice) -> CloudEvent:
    """``invoice.created`` for ``invoice``; its id is derived, so a consumer dedupes it."""
    data = InvoiceCreatedData(
        invoice_id=invoice.invoice_id,
        number=invoice.number,
        business_id=invoice.business_id,
        mode=invoice.mode,
        customer_id=invoice.customer_id,
        payment_id=invoice.payment_id,
        subscription_id=invoice.subscription_id,
        total=invoice.total,
        currency=invoice.currency,
        locale=invoice.locale,
        pdf_filename=invoice.pdf_filename,
    )
    return CloudEvent(
        id=f"{invoice.invoice_id}.created",
        source=SOURCE,
        type=INVOICE_CREATED,
        time=utc_now(),
        subject=invoice.invoice_id,
        data=data.model_dump(mode="json"),
    )


def payment_details(invoice: Invoice) -> BuyerDetails:
    """The buyer details the payment carried (its billing address and tax id)."""
    address = invoice.billing_address
    if address is None:
        return BuyerDetails(tax_id=invoice.buyer_tax_id)
    return BuyerDetails(
        country=address.country,
        city=address.city or "",
        state=address.state or "",
        street=address.street or "",
        zipcode=address.zipcode or "",
        tax_id=invoice.buyer_tax_id,
    )


def buyer_printing(buyer: Buyer, details: BuyerDetails, locale: str) -> Buyer:
    """Auth's buyer (name, email) completed with ``details``: address, tax id, company.

    The customer's own billing details (when set) take precedence over what
    the payment carried; the caller picks which ``details`` to print.
    """
    return buyer.model_copy(
        update={
            "address": format_address(details.address(), locale),
            "tax_id": details.tax_id,
            "business_name": details.business_name,
        }
    )


def details_fingerprint(details: BuyerDetails) -> str:
    """A short digest of ``details``: the same details re-issued name the same PDF."""
    canonical = "\0".join(details.model_dump().values())
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def reissued_event(invoice: Invoice, version: int) -> CloudEvent:
    """``invoice.reissued`` for ``version`` of ``invoice``; the id is derived (deduped)."""
    view = invoice.as_version(version)
    data = InvoiceReissuedData(
        invoice_id=invoice.invoice_id,
        number=invoice.number,
        version=version,
        business_id=invoice.business_id,
        mode=invoice.mode,
        customer_id=invoice.customer_id,
        payment_id=invoice.payment_id,
        replaces_issued_at=invoice.issued_at,
        pdf_filename=view.pdf_filename,
    )
    return CloudEvent(
        id=f"{invoice.invoice_id}.v{version}.reissued",
        source=SOURCE,
        type=INVOICE_REISSUED,
        time=utc_now(),
        subject=invoice.invoice_id,
        data=data.model_dump(mode="json"),
    )


class Issuing:
    """Issues invoices from payment events and finishes them (PDF + ``invoice.created``)."""

    def __init__(
        self,
        *,
        repository: InvoicingRepository,
        pdfs: PdfStore,
        parties: PartyDirectory,
        client: AsyncMongoClient[Any],
        db: AsyncDatabase[Any],
        lease_seconds: float = 60.0,
        retry_later_seconds: float = 15.0,
        sweep_seconds: float = 30.0,
        render_concurrency: int = 2,
    ) -> None:
        self._repository = repository
        self._pdfs = pdfs
        self._parties = parties
        self._client = client
        self._db = db
        self._lease = timedelta(seconds=lease_seconds)
        self._retry_later = timedelta(seconds=retry_later_seconds)
        self._sweep_seconds = sweep_seconds
        self._renders = asyncio.Semaphore(render_concurrency)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        # Invoices this process numbered (committed): shows work spread over replicas.
        self.issued_here = 0

    # --- step 1: the consumer's handler ---

    async def on_payment_succeeded(self, event: CloudEvent, session: AsyncClientSession) -> None:
        """Issue the payment's invoice inside the consumer's transaction (once per payment)."""
        payment = parse_payment(event)
        # Outside the transaction and idempotent: see ensure_counters.
        await self._repository.ensure_counters(
            payment.business_id, payment.mode, payment.customer_id
        )
        invoice_id = invoice_id_of(payment.business_id, payment.mode, payment.payment_id)
        if await self._repository.exists(invoice_id, session):
            log.info("payment already invoiced", extra={"invoice_id": invoice_id})
            return
        sequence = await self._repository.take_next(
            business_counter(payment.business_id, payment.mode), session
        )
        position = await self._repository.take_next(
            customer_counter(payment.customer_id, payment.mode), session
        )
        invoice = invoice_for(payment, sequence)
        await self._repository.insert(invoice, position, session)
        call_after_commit(session, ("finish", invoice_id), lambda: self._issued(invoice_id))

    def _issued(self, invoice_id: str) -> None:
        self.issued_here += 1
        self.finish_soon(invoice_id)

    # --- steps 2 and 3: PDF, then pdf_ready + invoice.created ---

    def finish_soon(self, invoice_id: str) -> None:
        """Finish ``invoice_id`` in the background (called once its issue has committed).

        Not while stopping: the invoice waits, unfinished, for a sweeper.
        """
        if self._stopping:
            return
        task = asyncio.create_task(self._finish_logged(invoice_id), name=f"finish-{invoice_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish_logged(self, invoice_id: str | None) -> bool:
        try:
            return await self.finish(invoice_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The lease runs out and the sweeper tries again.
            log.exception("finishing an invoice failed; the sweeper will retry")
            return False

    async def finish(self, invoice_id: str | None = None) -> bool:
        """Lease one unfinished invoice (``invoice_id``, or any due), store its PDF, announce it.

        False when there was nothing to lease (finished already, or leased by
        another replica) or auth was unavailable (retried later).
        """
        now = utc_now()
        invoice = await self._repository.claim_unfinished(now, now + self._lease, invoice_id)
        if invoice is None:
            return False
        if invoice.seller is None:
            try:
                parties = await self._parties.parties_of(invoice)
            except PartiesUnavailable as exc:
                await self._repository.postpone(invoice.invoice_id, utc_now() + self._retry_later)
                log.warning(
                    "auth unavailable; invoice PDF deferred",
                    extra={"invoice_id": invoice.invoice_id, "error": str(exc)},
                )
                return False
            details = parties.billing or payment_details(invoice)
            buyer = buyer_printing(parties.buyer, details, parties.locale)
            recorded = await self._repository.record_parties(
                invoice.invoice_id, parties.seller, buyer, parties.locale, details
            )
            if recorded is None:
                return False
            invoice = recorded
        async with self._renders:
            content = await asyncio.to_thread(render_invoice_pdf, invoice)
        await self._pdfs.store_once(invoice.invoice_id, invoice.pdf_filename, content)
        final = invoice

        async def announce(session: AsyncClientSession) -> None:
            if await self._repository.mark_pdf_ready(final.invoice_id, session):
                await add_to_outbox(self._db, created_event(final), session=session)

        await run_in_transaction(self._client, announce)
        log.info(
            "invoice issued", extra={"invoice_id": invoice.invoice_id, "number": invoice.number}
        )
        return True

    # --- re-issue with corrected buyer details ---

    async def reissue(self, scope: CustomerScope, invoice_id: str) -> Invoice:
        """A new version of the customer's invoice with their current billing details.

        Same number (numbering stays gapless), a new PDF stored under its own id
        that says which invoice it replaces; the earlier versions and PDFs stay.
        Details equal to the latest version's add nothing (the invoice is
        answered as it is): re-issuing twice never makes a third version. The
        new version and ``invoice.reissued`` commit together; a concurrent
        re-issue that committed first wins and is answered.
        """
        invoice = await self._repository.get_invoice(scope, invoice_id)
        if invoice is None:
            raise NotFound("invoice not found", reason=Reason.INVOICE_NOT_FOUND)
        if invoice.kind is not InvoiceKind.INVOICE:
            raise FailedPrecondition("a credit note is not re-issued")
        if not invoice.pdf_ready or invoice.buyer is None:
            # Not INVOICE_PDF_NOT_READY: that reason is a 404 (download later); a re-issue of
            # an invoice still being rendered is a precondition, answered "try again later".
            raise FailedPrecondition("the invoice PDF is not ready yet: re-issue it later")
        try:
            parties = await self._parties.parties_of(invoice)
        except PartiesUnavailable as exc:
            raise Unavailable("auth unavailable; try again") from exc
        details = parties.billing or invoice.latest_details()
        if details == invoice.latest_details():
            return invoice
        version = invoice.latest_version + 1
        # Name and email as auth knows them now; the language stays the invoice's.
        buyer = buyer_printing(parties.buyer, details, invoice.locale)
        entry = InvoiceVersion(
            version=version,
            issued_at=utc_now(),
            buyer=buyer,
            buyer_details=details,
            pdf_id=f"{invoice.invoice_id}.v{version}.{details_fingerprint(details)}",
        )
        draft = invoice.model_copy(update={"versions": (*invoice.versions, entry)})
        view = draft.as_version(version)
        async with self._renders:
            content = await asyncio.to_thread(render_invoice_pdf, view)
        # Stored before the version is recorded: a crash in between leaves an
        # unreferenced file that the same details' retry reuses.
        await self._pdfs.store_once(entry.pdf_id, view.pdf_filename, content)

        async def record(session: AsyncClientSession) -> None:
            if await self._repository.add_version(
                invoice.invoice_id, len(invoice.versions), entry, session
            ):
                await add_to_outbox(self._db, reissued_event(draft, version), session=session)

        await run_in_transaction(self._client, record)
        current = await self._repository.get_invoice(scope, invoice_id)
        assert current is not None  # it existed above and invoices are never deleted
        log.info(
            "invoice re-issued",
            extra={"invoice_id": invoice.invoice_id, "version": current.latest_version},
        )
        return current

    # --- the sweeper ---

    async def sweep(self, limit: int = 200) -> int:
        """Finish every unfinished invoice whose lease has run out; how many were finished."""
        finished = 0
        for _ in range(limit):
            try:
                done = await self.finish()
            except PyMongoError as exc:
                log.warning("sweep stopped: database error", extra={"error": type(exc).__name__})
                break
            if not done and not await self._repository.has_due_unfinished(utc_now()):
                break
            finished += int(done)
        return finished

    async def start(self) -> None:
        """Start the periodic sweeper (it sweeps once at once: work left by a crash)."""
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="invoice-sweeper")

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Stop the sweeper and give in-flight finishes ``grace_seconds`` to end.

        One cut short leaves its invoice unfinished under a lease that runs
        out; a sweeper (another replica's, or this one's next start) ends it.
        """
        self._stopping = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace_seconds)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)

    def wake(self) -> None:
        """Ask for a sweep now (tests; an operator's nudge)."""
        self._wake.set()

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("invoice sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._sweep_seconds)
            self._wake.clear()
