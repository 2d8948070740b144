"""Use cases of the hosted payment page: open a session, take a card, finish.

The card number and CVC reach :meth:`HostedPageService.submit_card` as a
:class:`~payments.processor.cards.CardInput` and go no further than the
processor's ``tokenize``: what is stored is the token, brand, last four
digits, expiry and fingerprint.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from billing_kit.clock import Clock
from billing_kit.errors import FailedPrecondition, InvalidArgument, NotFound, Reason
from billing_kit.events import new_event
from billing_kit.field_rules import is_http_url
from billing_kit.scoping import CustomerScope, Mode
from yarl import URL

from payments.charges.models import BillingAddress, ChargeType, PaymentLine, PaymentStatus
from payments.charges.service import SOURCE, ChargeInput, ChargesService, check_lines
from payments.hosted.models import (
    Branding,
    PaymentMethodSavedData,
    PaymentSession,
    SessionPurpose,
    SessionStatus,
)
from payments.hosted.repository import PaymentSessionsRepository
from payments.methods.service import PaymentMethodsService
from payments.processor.cards import CardInput
from payments.processor.processor import ChargeStatus, Processor
from payments.unit_of_work import Txn, UnitOfWork

LOCALES = ("en", "it")
METHOD_SAVED = "payment_method.saved"
_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class NewSession:
    """What a caller asks for when it sends a customer to the page."""

    scope: CustomerScope
    purpose: SessionPurpose | None
    return_url: str
    locale: str = ""
    branding: Branding = field(default_factory=Branding)
    amount: int = 0
    currency: str = ""
    idempotency_key: str = ""
    charge_type: ChargeType = ChargeType.NEW
    subscription_id: str = ""
    description: str = ""
    metadata: dict[str, str] | None = None
    lines: list[PaymentLine] = field(default_factory=list)
    billing: BillingAddress | None = None
    tax_id: str = ""

    def validate(self) -> None:
        """Each bad field is an INVALID_ARGUMENT naming it."""
        if self.purpose is None:
            raise InvalidArgument("purpose is required: SAVE_METHOD or PAY", field="purpose")
        if not is_http_url(self.return_url):
            raise InvalidArgument("return_url must be an http(s) URL", field="return_url")
        if self.locale not in ("", *LOCALES):
            raise InvalidArgument("locale must be en or it", field="locale")
        if self.purpose is SessionPurpose.PAY:
            if not 0 < self.amount <= 10**12:
                raise InvalidArgument(
                    "amount must be a positive number of minor units", field="amount"
                )
            if not _CURRENCY.match(self.currency):
                raise InvalidArgument("currency must be an ISO 4217 code", field="currency")
            if not 0 < len(self.idempotency_key) <= 255:
                raise InvalidArgument(
                    "idempotency_key is required for PAY", field="idempotency_key"
                )
            check_lines(self.lines, self.amount)
            if len(self.tax_id) > 64:
                raise InvalidArgument("tax_id is too long (64 at most)", field="tax_id")


@dataclass(frozen=True)
class CardRefused:
    """The processor refused the card: the page shows ``message`` and stays open."""

    code: str
    message: str


def session_not_found() -> NotFound:
    """The one answer for an unknown session."""
    return NotFound(
        "payment session not found", reason=Reason.PAYMENT_SESSION_NOT_FOUND, field="session_id"
    )


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` added to its query (existing parameters kept)."""
    return str(URL(url).extend_query({k: v for k, v in params.items() if v}))


class HostedPageService:
    """Sessions of the hosted payment page."""

    def __init__(
        self,
        uow: UnitOfWork,
        repository: PaymentSessionsRepository,
        methods: PaymentMethodsService,
        charges: ChargesService,
        processor: Processor,
        clock: Clock,
        ttl: timedelta,
        page_url: Callable[[str], str],
    ) -> None:
        self._uow = uow
        self._repository = repository
        self._methods = methods
        self._charges = charges
        self._processor = processor
        self._clock = clock
        self._ttl = ttl
        self.page_url = page_url

    async def create_session(self, request: NewSession) -> PaymentSession:
        """A fresh single-use session; its page is at ``page_url(session_id)``."""
        request.validate()
        assert request.purpose is not None  # validate() said so
        now = self._clock.now()
        session = PaymentSession(
            session_id=f"ps_{secrets.token_urlsafe(24)}",
            business_id=request.scope.business_id,
            mode=request.scope.mode,
            customer_id=request.scope.customer_id,
            purpose=request.purpose,
            status=SessionStatus.OPEN,
            return_url=request.return_url,
            locale=request.locale,
            branding=request.branding,
            amount=request.amount,
            currency=request.currency,
            idempotency_key=request.idempotency_key,
            charge_type=request.charge_type,
            subscription_id=request.subscription_id,
            description=request.description,
            metadata=request.metadata or {},
            lines=request.lines,
            billing=request.billing,
            tax_id=request.tax_id,
            expires_at=now + self._ttl,
            created_at=now,
        )
        await self._repository.insert(session)
        return session

    async def get_session(self, business_id: str, mode: Mode, session_id: str) -> PaymentSession:
        """The business's session with its outcome (a PAY session's comes from its payment)."""
        session = await self._repository.get(session_id)
        if session is None or session.business_id != business_id or session.mode != mode:
            raise session_not_found()
        return await self._with_outcome(session)

    async def open_session(self, session_id: str) -> PaymentSession:
        """The session behind a page request, as it stands now (expired ones say so)."""
        session = await self._repository.get(session_id)
        if session is None:
            raise session_not_found()
        return await self._with_outcome(session)

    async def _with_outcome(self, session: PaymentSession) -> PaymentSession:
        if session.status is SessionStatus.OPEN and session.expires_at <= self._clock.now():
            return session.model_copy(update={"status": SessionStatus.EXPIRED})
        if session.status is SessionStatus.CHARGED and session.payment_id:
            payment = await self._charges.get_payment(
                session.business_id, session.mode, session.payment_id
            )
            status = {
                PaymentStatus.SUCCEEDED: SessionStatus.SUCCEEDED,
                PaymentStatus.FAILED: SessionStatus.FAILED,
                PaymentStatus.CANCELLED: SessionStatus.FAILED,
            }.get(payment.status, SessionStatus.CHARGED)
            return session.model_copy(
                update={"status": status, "error_message": payment.error_message}
            )
        return session

    async def submit_card(self, session_id: str, card: CardInput) -> str | CardRefused:
        """Save (and for PAY charge) the card; the URL to send the browser to, or the refusal."""
        session = await self.open_session(session_id)
        if session.status is not SessionStatus.OPEN:
            raise FailedPrecondition("this payment page was already used or has expired")
        scope = CustomerScope(
            business_id=session.business_id, mode=session.mode, customer_id=session.customer_id
        )
        tokenized = self._processor.tokenize(card, business_id=session.business_id)
        verdict = await self._processor.verify(tokenized.token)
        if verdict.status is not ChargeStatus.SUCCEEDED:
            return CardRefused(verdict.error_code, verdict.error_message)

        async def save(txn: Txn) -> str:
            method = await self._methods.save_card(scope, tokenized, card.holder_name, txn)
            status = (
                SessionStatus.SUCCEEDED
                if session.purpose is SessionPurpose.SAVE_METHOD
                else SessionStatus.CHARGED
            )
            changes = {"status": status, "payment_method_id": method.payment_method_id}
            if not await self._repository.finish(session.session_id, changes, txn):
                raise FailedPrecondition("this payment page was already used")
            if session.purpose is SessionPurpose.SAVE_METHOD and session.subscription_id:
                data = PaymentMethodSavedData(
                    payment_method_id=method.payment_method_id,
                    business_id=session.business_id,
                    mode=session.mode,
                    customer_id=session.customer_id,
                    subscription_id=session.subscription_id,
                    session_id=session.session_id,
                )
                event = new_event(METHOD_SAVED, SOURCE, data, subject=method.payment_method_id)
                await self._uow.add_event(event, txn)
            return method.payment_method_id

        payment_method_id = await self._uow.run(save)
        back = with_query(
            session.return_url,
            payment_session_id=session.session_id,
            payment_method_id=payment_method_id,
        )
        if session.purpose is SessionPurpose.SAVE_METHOD:
            return with_query(back, status="succeeded")
        payment = await self._charges.charge(
            ChargeInput(
                scope=scope,
                payment_method_id=payment_method_id,
                amount=session.amount,
                currency=session.currency,
                idempotency_key=session.idempotency_key,
                charge_type=session.charge_type,
                customer_present=True,
                subscription_id=session.subscription_id,
                return_url=back,
                description=session.description,
                metadata=session.metadata,
                session_id=session.session_id,
                lines=session.lines,
                billing=session.billing,
                tax_id=session.tax_id,
            )
        )
        await self._repository_link_payment(session.session_id, payment.payment_id)
        if payment.status is PaymentStatus.REQUIRES_CUSTOMER_ACTION:
            return payment.challenge_url
        return with_query(back, payment_id=payment.payment_id, status=str(payment.status))

    async def _repository_link_payment(self, session_id: str, payment_id: str) -> None:
        async def link(txn: Txn) -> None:
            await self._repository.link_payment(session_id, payment_id, txn)

        await self._uow.run(link)
