"""What every portal-access use case shares: the policy (TTLs, limits, base
URLs), the domain errors, the stores it works on, and the small steps the use
cases are made of (rate limiting, minting a token, queueing its emails,
starting a session and auditing the sign-in).

Raw tokens and session secrets are returned to the caller once and never
logged; logs carry business/customer/token ids only (emails are masked by the
kit's log formatter anyway).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn, TypedDict

from billing_kit.audit import Actor, Resource
from billing_kit.clock import Clock
from billing_kit.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    RateLimited,
    Reason,
    Unauthenticated,
)
from billing_kit.sealing import Sealer

from auth.customers.errors import CustomerNotFound
from auth.customers.models import Customer
from auth.customers.repository import CustomerRepository
from auth.email_client import EmailOutcomes, OutgoingEmail, email_requested_event
from auth.merchants.business_cache import BusinessCache
from auth.merchants.models import Business
from auth.merchants.repository import MerchantRepository
from auth.merchants.service import BusinessNotFound
from auth.portal_access.models import (
    SESSION_ID_PREFIX,
    TOKEN_ID_PREFIX,
    BaseUrls,
    PortalSession,
    PortalToken,
    Purpose,
    SessionKind,
    StartedSession,
    TokenState,
    check_next_path,
    generate_csrf_token,
    generate_portal_token,
    generate_session_secret,
    hits_in_window,
    new_session_times,
    rate_limit_key,
    token_state,
)
from auth.portal_access.repository import PortalRepository
from auth.rules import Mode, check_email, check_mode, hash_secret, new_id
from auth.unit_of_work import AuditAction, Txn, UnitOfWork

log = logging.getLogger(__name__)


class TokenUnknown(NotFound):
    default_reason = Reason.TOKEN_UNKNOWN


class TokenUsed(FailedPrecondition):
    default_reason = Reason.TOKEN_USED


class TokenExpired(FailedPrecondition):
    default_reason = Reason.TOKEN_EXPIRED


class SessionInvalid(Unauthenticated):
    default_reason = Reason.SESSION_INVALID


@dataclass(frozen=True)
class PortalPolicy:
    """The configurable numbers and URLs of portal access."""

    base_urls: BaseUrls
    sign_in_link_ttl_seconds: int = 15 * 60
    magic_link_ttl_seconds: int = 24 * 3600
    email_change_link_ttl_seconds: int = 24 * 3600
    session_idle_seconds: int = 3600
    session_absolute_seconds: int = 12 * 3600
    # Using a session writes its idle deadline only when that moves by this much.
    session_touch_seconds: int = 60
    rate_limit_window_seconds: int = 15 * 60
    rate_limit_per_email: int = 5
    rate_limit_per_client: int = 30
    handoff_ttl_seconds: int = 2 * 60
    # The magic-link API waits this long for the first delivery attempt, so a
    # recipient the relay refuses for good is a 422 instead of a silent bounce.
    email_outcome_wait_seconds: float = 3.0


def parse_mode(value: str) -> Mode:
    try:
        return check_mode(value)
    except ValueError as exc:
        raise InvalidArgument(f"mode: {exc}", field="mode") from None


def parse_email(value: str, field: str = "email") -> str:
    try:
        return check_email(value)
    except ValueError as exc:
        raise InvalidArgument(f"{field}: {exc}", reason=Reason.INVALID_EMAIL, field=field) from None


def parse_next_path(value: str | None, business_id: str) -> str | None:
    try:
        return check_next_path(value, business_id)
    except ValueError as exc:
        raise InvalidArgument(
            f"next_path: {exc}", reason=Reason.INVALID_NEXT_PATH, field="next_path"
        ) from None


def email_locale(
    requested: str | None,
    business: Business | None,
    *,
    customer: Customer | None = None,
    explicit: bool = False,
) -> str:
    """The language of an email.

    A language the visitor picked (switcher, ``?lang=``) wins; then the
    customer's preferred_locale; then the request's page language (which the
    gateway took from the business or the browser); then the business's; then
    English. Notifications renders languages without a catalog in English.
    """
    value = (requested or "").strip()[:35]
    if explicit and value:
        return value
    if customer is not None and customer.preferred_locale:
        return customer.preferred_locale
    return value or (business.locale if business else "") or "en"


def minutes(seconds: int) -> int:
    return max(1, seconds // 60)


class PortalDependencies(TypedDict):
    """The constructor arguments of every :class:`PortalUseCase` (wired once in app.py)."""

    merchants: MerchantRepository
    businesses: BusinessCache
    customers: CustomerRepository
    portal: PortalRepository
    uow: UnitOfWork
    policy: PortalPolicy
    sealer: Sealer
    outcomes: EmailOutcomes
    clock: Clock
    source: str


class PortalUseCase:
    """Dependencies and shared steps of the portal-access use cases."""

    def __init__(
        self,
        *,
        merchants: MerchantRepository,
        businesses: BusinessCache,
        customers: CustomerRepository,
        portal: PortalRepository,
        uow: UnitOfWork,
        policy: PortalPolicy,
        sealer: Sealer,
        outcomes: EmailOutcomes,
        clock: Clock,
        source: str = "auth",
    ) -> None:
        self.merchants = merchants
        self.businesses = businesses
        self.customers = customers
        self.portal = portal
        self.uow = uow
        self.policy = policy
        self.sealer = sealer
        self.outcomes = outcomes
        self.clock = clock
        self.source = source

    # --- helpers ---

    async def _business(self, business_id: str, *, txn: Txn | None = None) -> Business:
        business = await self.merchants.get_business(business_id, txn=txn) if business_id else None
        if business is None:
            raise BusinessNotFound(f"business {business_id!r} not found")
        return business

    async def _customer(
        self, business_id: str, mode: Mode, customer_id: str, *, txn: Txn | None = None
    ) -> Customer:
        customer = (
            await self.customers.get(business_id, mode, customer_id, txn=txn)
            if business_id and customer_id
            else None
        )
        if customer is None:
            raise CustomerNotFound(f"customer {customer_id!r} not found")
        return customer

    async def _limit(self, *, client_key: str | None, subject_key: str | None) -> None:
        """Count one request against the client's and the subject's windows.

        Both counters are hit even when the first is over, so a flood keeps its
        own window full; being over either limit refuses the request.
        """
        policy = self.policy
        now = self.clock.now()
        over = False
        for scope, key, limit in (
            ("client", client_key, policy.rate_limit_per_client),
            ("subject", subject_key, policy.rate_limit_per_email),
        ):
            if not key:
                continue
            # Keeping limit + 1 hits is enough to know whether this one is over.
            hits = await self.portal.record_hit(
                rate_limit_key(scope, key),
                now=now,
                keep=limit + 1,
                expires_at=now + timedelta(seconds=policy.rate_limit_window_seconds),
            )
            over |= hits_in_window(hits, now, policy.rate_limit_window_seconds) > limit
        if over:
            log.info("portal access rate limited")
            raise RateLimited("too many requests: please wait a few minutes and try again")

    async def _queue_emails(
        self,
        emails: list[OutgoingEmail],
        *,
        token: tuple[PortalToken, str] | None = None,
        supersede_email_changes_of: str | None = None,
        audit: Callable[[Txn], Awaitable[None]] | None = None,
    ) -> None:
        """Write the token (if any) and its emails' requests in one transaction,
        spending ``supersede_email_changes_of``'s pending email-change links first
        and recording the ``audit`` entry (if any) in the same transaction.

        The emails exist exactly when the token does: nothing is sent for a
        token that was not stored, and no stored token misses its email.
        """
        events = [email_requested_event(e, self.sealer, source=self.source) for e in emails]
        now = self.clock.now()

        async def write(txn: Txn) -> None:
            if supersede_email_changes_of is not None:
                # A newer request makes the older links worthless.
                await self.portal.spend_pending_email_changes(
                    supersede_email_changes_of, now, txn=txn
                )
            if token is not None:
                record, hashed = token
                await self.portal.insert_token(record, hashed, txn=txn)
            for event in events:
                await self.uow.add_event(event, txn)
            if audit is not None:
                await audit(txn)

        # add_to_outbox wakes the relay once the transaction commits.
        await self.uow.run(write)

    def _new_token(
        self,
        purpose: Purpose,
        *,
        mode: Mode,
        ttl_seconds: int,
        business_id: str | None = None,
        customer_id: str | None = None,
        email: str | None = None,
        next_path: str | None = None,
        return_url: str | None = None,
    ) -> tuple[PortalToken, str, str]:
        """A new one-time token, not stored yet: ``(record, hash, link)`` (the only copy)."""
        raw = generate_portal_token()
        now = self.clock.now()
        record = PortalToken(
            token_id=new_id(TOKEN_ID_PREFIX),
            purpose=purpose,
            business_id=business_id,
            mode=mode,
            customer_id=customer_id,
            email=email,
            next_path=next_path,
            return_url=return_url,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )
        return record, hash_secret(raw), self.policy.base_urls.token_link(purpose, mode, raw)

    async def _start_session(
        self,
        *,
        kind: SessionKind,
        mode: Mode,
        business_id: str | None = None,
        customer_id: str | None = None,
        email: str | None = None,
        return_url: str | None = None,
        unified: PortalSession | None = None,
        next_path: str,
        via: PortalToken,
        txn: Txn,
    ) -> StartedSession:
        """Store a new session in ``txn`` with its audit entry (who signed in, with
        which link); the returned secret is the only copy."""
        now = self.clock.now()
        idle, absolute = new_session_times(
            now,
            idle_seconds=self.policy.session_idle_seconds,
            absolute_seconds=self.policy.session_absolute_seconds,
            absolute_cap=unified.absolute_expires_at if unified else None,
        )
        secret = generate_session_secret()
        session = PortalSession(
            session_id=new_id(SESSION_ID_PREFIX),
            kind=kind,
            business_id=business_id,
            mode=mode,
            customer_id=customer_id,
            email=email,
            csrf_token=generate_csrf_token(),
            created_at=now,
            last_seen_at=now,
            idle_expires_at=idle,
            absolute_expires_at=absolute,
            return_url=return_url,
            unified_session_id=unified.session_id if unified else None,
        )
        await self.portal.insert_session(session, hash_secret(secret), txn=txn)
        await self.uow.audit(txn, **_sign_in_audit(session, via))
        log.info(
            "portal session started",
            extra={
                "session_id": session.session_id,
                "kind": kind.value,
                "business_id": business_id,
                "customer_id": customer_id,
            },
        )
        return StartedSession(session=session, secret=secret, next_path=next_path)

    async def _raise_unusable(
        self, hashed: str, *, mode: Mode, purposes: list[Purpose]
    ) -> NoReturn:
        """Explain why a token could not be used: used, expired, or unknown (other mode too)."""
        token = await self.portal.find_token(hashed)
        if token is not None and (token.mode != mode or token.purpose not in purposes):
            token = None  # a test link under live (or the reverse) is simply unknown there
        state = token_state(token, self.clock.now())
        if state is TokenState.USED:
            raise TokenUsed("this link has already been used")
        if state is TokenState.EXPIRED:
            raise TokenExpired("this link has expired")
        raise TokenUnknown("this link is not valid")


def _sign_in_audit(session: PortalSession, via: PortalToken) -> dict[str, Any]:
    """The audit entry of a sign-in: ids only, never the email or a secret.

    A business session is the customer's act on their record; a unified
    session has no single customer (only a verified email, which is personal
    data), so it names itself as the actor and the resource.
    """
    details = {"session_id": session.session_id, "token_id": via.token_id, "via": via.purpose}
    if session.kind is SessionKind.BUSINESS and session.customer_id:
        actor = Actor(kind="customer", id=session.customer_id)
        resource = Resource(
            kind="customer",
            id=session.customer_id,
            business_id=session.business_id,
            mode=session.mode,
        )
    else:
        actor = Actor(kind="customer", id=session.session_id)
        resource = Resource(kind="unified_session", id=session.session_id, mode=session.mode)
    return {
        "actor": actor,
        "action": AuditAction.SIGNED_IN.value,
        "resource": resource,
        "at": session.created_at,
        "details": details,
    }
