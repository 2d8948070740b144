"""Use cases of portal access: sign-in links, magic links, sessions, the unified
portal and the customer's profile.

Pure logic over :class:`~auth.portal_repository.PortalRepository`, a
:class:`~billing_kit.sealing.Sealer` for the links in email requests,
:class:`~auth.email_client.EmailOutcomes` and a :class:`~billing_kit.clock.Clock`.
Every email is an ``email.requested`` event written in the same transaction
as the token it carries (see :mod:`auth.email_client`).
Raw tokens and session secrets are returned to the caller once and never
logged; logs carry business/customer/token ids only (emails are masked by the
kit's log formatter anyway).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

from billing_kit.clock import Clock
from billing_kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    RateLimited,
    Reason,
    Unauthenticated,
)
from billing_kit.events import CloudEvent, new_event
from billing_kit.field_rules import NAME_MAX_LENGTH, PersonName
from billing_kit.sealing import Sealer
from pydantic import TypeAdapter, ValidationError

from auth.email_client import EmailKind, EmailOutcomes, OutgoingEmail, email_requested_event
from auth.models import (
    Business,
    Customer,
    Mode,
    check_email,
    check_http_url,
    check_metadata,
    check_mode,
    check_phone_number,
    check_preferred_locale,
    hash_secret,
    new_id,
    normalize_email,
)
from auth.portal_models import (
    CUSTOMER_UPDATED,
    SESSION_ID_PREFIX,
    SESSION_SECRET_PREFIX,
    TOKEN_ID_PREFIX,
    BaseUrls,
    CustomerUpdatedData,
    PortalSession,
    PortalToken,
    Purpose,
    SessionKind,
    StartedSession,
    TokenState,
    browser_binding_hash,
    check_next_path,
    generate_csrf_token,
    generate_portal_token,
    generate_session_secret,
    new_session_times,
    portal_home,
    rate_limit_key,
    rate_window,
    token_hash,
    token_state,
)
from auth.portal_repository import PortalRepository
from auth.service import BusinessNotFound, CustomerNotFound

log = logging.getLogger(__name__)

_PERSON_NAME: TypeAdapter[str] = TypeAdapter(PersonName)
UNIFIED_HOME = "/"
_SESSION_PURPOSES = [p for p in Purpose if p.starts_session]
_INVALID_FIELD_REASONS = {
    "name": Reason.INVALID_NAME,
    "phone_number": Reason.INVALID_PHONE_NUMBER,
    "email": Reason.INVALID_EMAIL,
    "metadata": Reason.INVALID_METADATA,
    "preferred_locale": Reason.INVALID_PREFERRED_LOCALE,
}


class TokenUnknown(NotFound):
    default_reason = Reason.TOKEN_UNKNOWN


class TokenUsed(FailedPrecondition):
    default_reason = Reason.TOKEN_USED


class TokenExpired(FailedPrecondition):
    default_reason = Reason.TOKEN_EXPIRED


class SessionInvalid(Unauthenticated):
    default_reason = Reason.SESSION_INVALID


class EmailUnchanged(InvalidArgument):
    default_reason = Reason.EMAIL_UNCHANGED


class EmailTaken(AlreadyExists):
    default_reason = Reason.EMAIL_TAKEN


@dataclass(frozen=True)
class PortalPolicy:
    """The configurable numbers and URLs of portal access."""

    base_urls: BaseUrls
    sign_in_link_ttl_seconds: int = 15 * 60
    magic_link_ttl_seconds: int = 24 * 3600
    email_change_link_ttl_seconds: int = 24 * 3600
    session_idle_seconds: int = 3600
    session_absolute_seconds: int = 12 * 3600
    rate_limit_window_seconds: int = 15 * 60
    rate_limit_per_email: int = 5
    rate_limit_per_client: int = 30
    handoff_ttl_seconds: int = 2 * 60
    # The magic-link API waits this long for the first delivery attempt, so a
    # recipient the relay refuses for good is a 422 instead of a silent bounce.
    email_outcome_wait_seconds: float = 3.0


def _mode(value: str) -> Mode:
    try:
        return check_mode(value)
    except ValueError as exc:
        raise InvalidArgument(f"mode: {exc}", field="mode") from None


def _email(value: str, field: str = "email") -> str:
    try:
        return check_email(value)
    except ValueError as exc:
        raise InvalidArgument(f"{field}: {exc}", reason=Reason.INVALID_EMAIL, field=field) from None


def _next_path(value: str | None, business_id: str) -> str | None:
    try:
        return check_next_path(value, business_id)
    except ValueError as exc:
        raise InvalidArgument(
            f"next_path: {exc}", reason=Reason.INVALID_NEXT_PATH, field="next_path"
        ) from None


def _locale(
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


def _minutes(seconds: int) -> int:
    return max(1, seconds // 60)


class PortalAccess:
    """The portal-access use cases; one instance per process."""

    def __init__(
        self,
        repository: PortalRepository,
        *,
        policy: PortalPolicy,
        sealer: Sealer,
        outcomes: EmailOutcomes,
        clock: Clock,
        wake_outbox: Callable[[], None] | None = None,
        source: str = "auth",
    ) -> None:
        self.repository = repository
        self.policy = policy
        self.sealer = sealer
        self.outcomes = outcomes
        self.clock = clock
        self.wake_outbox = wake_outbox or (lambda: None)
        self.source = source

    # --- helpers ---

    async def _business(self, business_id: str) -> Business:
        business = await self.repository.get_business(business_id) if business_id else None
        if business is None:
            raise BusinessNotFound(f"business {business_id!r} not found")
        return business

    async def _customer(self, business_id: str, mode: Mode, customer_id: str) -> Customer:
        customer = (
            await self.repository.get_customer(business_id, mode, customer_id)
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
        window = rate_window(self.clock.now(), policy.rate_limit_window_seconds)
        over = False
        if client_key:
            count = await self.repository.count_hit(
                rate_limit_key("client", client_key, window), window.ends_at
            )
            over |= count > policy.rate_limit_per_client
        if subject_key:
            count = await self.repository.count_hit(
                rate_limit_key("subject", subject_key, window), window.ends_at
            )
            over |= count > policy.rate_limit_per_email
        if over:
            log.info("portal access rate limited")
            raise RateLimited("too many requests: please wait a few minutes and try again")

    async def _queue_emails(
        self,
        emails: list[OutgoingEmail],
        *,
        token: tuple[PortalToken, str] | None = None,
        supersede_email_changes_of: str | None = None,
    ) -> None:
        """Write the token (if any) and its emails' requests in one transaction.

        The emails exist exactly when the token does: nothing is sent for a
        token that was not stored, and no stored token misses its email.
        """
        events = [email_requested_event(e, self.sealer, source=self.source) for e in emails]
        await self.repository.store_token_with_emails(
            token,
            events,
            supersede_email_changes_of=supersede_email_changes_of,
            now=self.clock.now(),
        )
        self.wake_outbox()

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
    ) -> StartedSession:
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
        await self.repository.insert_session(session, hash_secret(secret))
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
        token = await self.repository.find_token(hashed)
        if token is not None and (token.mode != mode or token.purpose not in purposes):
            token = None  # a test link under live (or the reverse) is simply unknown there
        state = token_state(token, self.clock.now())
        if state is TokenState.USED:
            raise TokenUsed("this link has already been used")
        if state is TokenState.EXPIRED:
            raise TokenExpired("this link has expired")
        raise TokenUnknown("this link is not valid")

    # --- static link ---

    async def request_sign_in_link(
        self,
        *,
        business_id: str,
        mode: str,
        email: str,
        next_path: str | None = None,
        client_key: str | None = None,
        locale: str | None = None,
        locale_explicit: bool = False,
    ) -> None:
        """Email a one-time sign-in link if the address is a customer, a notice if not.

        The caller learns nothing either way: both answer alike, and both cost
        one lookup and one transaction (the email request, with the token when
        there is one). Whether notifications or the relay are up does not change
        the answer: the request is durable and delivered when they are back.
        """
        checked_mode = _mode(mode)
        address = _email(email)
        next_checked = _next_path(next_path, business_id)
        business = await self._business(business_id)
        await self._limit(
            client_key=client_key,
            subject_key=f"{business.business_id}:{checked_mode}:{normalize_email(address)}",
        )
        await self._send_sign_in(
            business, checked_mode, address, next_checked, locale, locale_explicit
        )

    async def _send_sign_in(
        self,
        business: Business,
        mode: Mode,
        address: str,
        next_path: str | None,
        locale: str | None,
        locale_explicit: bool,
    ) -> None:
        customer = await self.repository.find_customer_by_email(
            business.business_id, mode, normalize_email(address)
        )
        if customer is None:
            log.info(
                "sign-in requested for an unknown email",
                extra={"business_id": business.business_id},
            )
            await self._queue_emails(
                [
                    OutgoingEmail(
                        kind=EmailKind.NO_ACCOUNT_FOUND,
                        to=address,
                        locale=_locale(locale, business),
                        mode=mode,
                        business=business,
                        email_key=new_id("notice_"),
                    )
                ]
            )
            return
        await self._email_sign_in_link(
            business,
            customer,
            next_path=next_path,
            return_url=None,
            locale=locale,
            locale_explicit=locale_explicit,
        )

    async def _email_sign_in_link(
        self,
        business: Business,
        customer: Customer,
        *,
        next_path: str | None,
        return_url: str | None,
        locale: str | None,
        locale_explicit: bool,
    ) -> None:
        ttl = self.policy.sign_in_link_ttl_seconds
        record, hashed, link = self._new_token(
            Purpose.SIGN_IN,
            mode=customer.mode,
            ttl_seconds=ttl,
            business_id=business.business_id,
            customer_id=customer.customer_id,
            next_path=next_path,
            return_url=return_url,
        )
        email = OutgoingEmail(
            kind=EmailKind.SIGN_IN_LINK,
            to=customer.email,
            locale=_locale(locale, business, customer=customer, explicit=locale_explicit),
            mode=customer.mode,
            business=business,
            link=link,
            link_expires_minutes=_minutes(ttl),
            customer_name=customer.name,
            email_key=record.token_id,
        )
        await self._queue_emails([email], token=(record, hashed))
        log.info(
            "sign-in link queued",
            extra={"customer_id": customer.customer_id, "token_id": record.token_id},
        )

    # --- magic link ---

    async def create_portal_link(
        self,
        *,
        business_id: str,
        mode: str,
        customer_id: str,
        send_email: bool = False,
        return_url: str | None = None,
        next_path: str | None = None,
        time_left_seconds: float | None = None,
    ) -> tuple[str, datetime, str]:
        """A one-time portal link for a customer (Dodo's customer-portal session).

        Returns ``(link, expires_at, static_link)``. With ``send_email`` the
        link's email request is stored with the token (one transaction), so the
        answer comes once the email is durably queued; then up to
        ``email_outcome_wait_seconds`` are spent waiting for the first delivery
        attempt (less when the caller's deadline, ``time_left_seconds``, is
        nearer: the answer must reach it). A recipient the relay refuses for
        good revokes the token and is :class:`InvalidArgument`
        (``EMAIL_RECIPIENT_REJECTED``); accepted, still pending or notifications
        unreachable all succeed, and delivery goes on.
        """
        checked_mode = _mode(mode)
        try:
            return_checked = check_http_url(return_url)
        except ValueError as exc:
            raise InvalidArgument(
                f"return_url: {exc}", reason=Reason.INVALID_RETURN_URL, field="return_url"
            ) from None
        next_checked = _next_path(next_path, business_id)
        business = await self._business(business_id)
        customer = await self._customer(business_id, checked_mode, customer_id)
        ttl = self.policy.magic_link_ttl_seconds
        record, hashed, link = self._new_token(
            Purpose.MAGIC_LINK,
            mode=checked_mode,
            ttl_seconds=ttl,
            business_id=business_id,
            customer_id=customer.customer_id,
            next_path=next_checked,
            return_url=return_checked,
        )
        emails = []
        if send_email:
            emails.append(
                OutgoingEmail(
                    kind=EmailKind.PORTAL_LINK,
                    to=customer.email,
                    locale=_locale(None, business, customer=customer),
                    mode=checked_mode,
                    business=business,
                    link=link,
                    link_expires_minutes=_minutes(ttl),
                    customer_name=customer.name,
                    email_key=record.token_id,
                )
            )
        await self._queue_emails(emails, token=(record, hashed))
        if send_email:
            wait = self.policy.email_outcome_wait_seconds
            if time_left_seconds is not None:
                wait = min(wait, max(0.0, time_left_seconds - 1.0))
            await self._refuse_if_rejected(record, wait)
        log.info(
            "portal link created",
            extra={
                "business_id": business_id,
                "customer_id": customer.customer_id,
                "token_id": record.token_id,
                "emailed": send_email,
            },
        )
        static_link = self.policy.base_urls.static_link(business_id, checked_mode)
        return link, record.expires_at, static_link

    async def _refuse_if_rejected(self, record: PortalToken, wait_seconds: float) -> None:
        """Wait briefly for the first attempt of a token's email; a permanent
        refusal of the recipient revokes the token and is InvalidArgument."""
        assert record.business_id is not None
        outcome = await self.outcomes.wait(
            business_id=record.business_id,
            mode=record.mode,
            email_key=record.token_id,
            wait_seconds=wait_seconds,
        )
        if outcome != "rejected":
            return
        await self.repository.delete_token(record.token_id)
        log.info(
            "portal link revoked: the mail server refused the recipient",
            extra={"customer_id": record.customer_id, "token_id": record.token_id},
        )
        raise InvalidArgument(
            "the mail server refused this customer's email address permanently, so the "
            "link was not sent and is not valid; correct the customer's email and try again",
            reason=Reason.EMAIL_RECIPIENT_REJECTED,
        )

    # --- opening links ---

    async def describe_token(self, token: str) -> tuple[TokenState, PortalToken | None]:
        """What a link would do if used now, without using it (the confirm page)."""
        hashed = token_hash(token)
        found = await self.repository.find_token(hashed) if hashed else None
        state = token_state(found, self.clock.now())
        return state, (found if state is not TokenState.UNKNOWN else None)

    async def consume_token(self, *, token: str, mode: str) -> StartedSession:
        """Use a sign-in, magic or unified link once and start its session.

        ``mode`` is the mode of the base URL the link was opened under: a token
        of the other mode is unknown there. Of concurrent calls with one token
        exactly one starts a session; the others get :class:`TokenUsed`.
        """
        checked_mode = _mode(mode)
        hashed = token_hash(token)
        if hashed is None:
            raise TokenUnknown("this link is not valid")
        used = await self.repository.use_token(
            hashed, mode=checked_mode, purposes=_SESSION_PURPOSES, now=self.clock.now()
        )
        if used is None:
            await self._raise_unusable(hashed, mode=checked_mode, purposes=_SESSION_PURPOSES)
        if used.purpose is Purpose.UNIFIED_SIGN_IN:
            return await self._start_session(
                kind=SessionKind.UNIFIED, mode="live", email=used.email, next_path=UNIFIED_HOME
            )
        assert used.business_id is not None and used.customer_id is not None
        business = await self._business(used.business_id)
        customer = await self._customer(used.business_id, checked_mode, used.customer_id)
        return await self._start_session(
            kind=SessionKind.BUSINESS,
            mode=checked_mode,
            business_id=business.business_id,
            customer_id=customer.customer_id,
            return_url=used.return_url or business.default_return_url,
            next_path=used.next_path or portal_home(business.business_id),
        )

    async def request_fresh_link(
        self,
        *,
        token: str,
        client_key: str | None = None,
        locale: str | None = None,
        locale_explicit: bool = False,
    ) -> None:
        """Email a new link to the address on file of an expired or used link.

        Says nothing about the token: an unknown one is answered the same way.
        """
        hashed = token_hash(token)
        found = await self.repository.find_token(hashed) if hashed else None
        if found is None or not found.purpose.starts_session:
            await self._limit(client_key=client_key, subject_key=None)
            return
        subject = found.email if found.purpose is Purpose.UNIFIED_SIGN_IN else found.customer_id
        await self._limit(client_key=client_key, subject_key=f"fresh:{subject}")
        await self._send_fresh_link(found, locale, locale_explicit)

    async def _send_fresh_link(
        self, old: PortalToken, locale: str | None, locale_explicit: bool
    ) -> None:
        if old.purpose is Purpose.UNIFIED_SIGN_IN:
            if old.email:
                await self._send_unified_link(old.email, locale)
            return
        if old.business_id is None or old.customer_id is None:
            return
        business = await self.repository.get_business(old.business_id)
        customer = await self.repository.get_customer(old.business_id, old.mode, old.customer_id)
        if business is None or customer is None:
            return
        # The new link keeps the old one's destination and return button.
        await self._email_sign_in_link(
            business,
            customer,
            next_path=old.next_path,
            return_url=old.return_url,
            locale=locale,
            locale_explicit=locale_explicit,
        )

    # --- sessions ---

    async def resolve_session(self, secret: str) -> PortalSession:
        """The active session behind a cookie value; using it pushes its idle deadline."""
        hashed = token_hash(secret, SESSION_SECRET_PREFIX)
        now = self.clock.now()
        session = (
            await self.repository.touch_session(
                hashed,
                now=now,
                idle_expires_at=now + timedelta(seconds=self.policy.session_idle_seconds),
            )
            if hashed
            else None
        )
        if session is None:
            raise SessionInvalid("session expired or signed out")
        return session

    async def end_session(self, secret: str) -> None:
        """Sign out (idempotent); ending a unified session ends the areas it opened."""
        hashed = token_hash(secret, SESSION_SECRET_PREFIX)
        if hashed is None:
            return
        now = self.clock.now()
        session = await self.repository.end_session(hashed, now)
        if session is None:
            return
        if session.kind is SessionKind.UNIFIED:
            await self.repository.end_sessions_opened_from(session.session_id, now)
        log.info("portal session ended", extra={"session_id": session.session_id})

    # --- unified portal ---

    async def request_unified_sign_in_link(
        self, *, email: str, client_key: str | None = None, locale: str | None = None
    ) -> None:
        """Email a one-time unified sign-in link to an address that is a live customer
        somewhere; the answer is the same for any address."""
        address = _email(email)
        await self._limit(client_key=client_key, subject_key=f"unified:{normalize_email(address)}")
        await self._send_unified_link(address, locale)

    async def _send_unified_link(self, address: str, locale: str | None) -> None:
        normalized = normalize_email(address)
        customers = await self.repository.customers_with_email(normalized, "live")
        if not customers:
            # Same rule as the static link: the address learns (by email, never on
            # the page) that it has no purchases, and to use the purchase email.
            await self._queue_emails(
                [
                    OutgoingEmail(
                        kind=EmailKind.UNIFIED_NO_ACCOUNT_FOUND,
                        to=address,
                        locale=_locale(locale, None),
                        mode="live",
                        email_key=new_id("notice_"),
                    )
                ]
            )
            return
        ttl = self.policy.sign_in_link_ttl_seconds
        record, hashed, link = self._new_token(
            Purpose.UNIFIED_SIGN_IN, mode="live", ttl_seconds=ttl, email=normalized
        )
        await self._queue_emails(
            [
                OutgoingEmail(
                    kind=EmailKind.UNIFIED_SIGN_IN_LINK,
                    to=address,
                    locale=_locale(locale, None),
                    mode="live",
                    link=link,
                    link_expires_minutes=_minutes(ttl),
                    customer_name=customers[0].name,
                    email_key=record.token_id,
                )
            ],
            token=(record, hashed),
        )

    async def _unified_session(self, secret: str) -> PortalSession:
        session = await self.resolve_session(secret)
        if session.kind is not SessionKind.UNIFIED or not session.email:
            raise SessionInvalid("not a unified portal session")
        return session

    async def list_unified_accounts(self, secret: str) -> list[tuple[Business, Customer]]:
        """Every live business where the session's verified email is a customer."""
        session = await self._unified_session(secret)
        assert session.email is not None
        customers = await self.repository.customers_with_email(session.email, "live")
        businesses = {
            b.business_id: b
            for b in await self.repository.get_businesses(
                sorted({c.business_id for c in customers})
            )
        }
        accounts = [
            (businesses[c.business_id], c) for c in customers if c.business_id in businesses
        ]
        return sorted(accounts, key=lambda a: (a[0].name.lower(), a[0].business_id))

    async def open_business_from_unified(
        self, *, secret: str, business_id: str, browser_binding: str
    ) -> tuple[PortalToken, str, str]:
        """A one-time hand-off to the live portal of one of the email's businesses.

        The unified portal and the live portal may be different hosts, and a
        ``__Host-`` cookie can only be set by its own host, so no session is
        started here: the browser carries the token to the live site, which
        spends it with :meth:`consume_handoff_token`. Returns ``(record, token,
        link)``; the token is the only copy. A business where the email is not
        a live customer is :class:`CustomerNotFound` (NOT_FOUND), nothing written.

        ``browser_binding`` is the live site's cookie value in the browser that
        pressed "Open"; only its hash is kept, and only the same value spends
        the hand-off, so a link sent to another browser signs nobody in.
        """
        binding_hash = browser_binding_hash(browser_binding)
        if binding_hash is None:
            raise InvalidArgument("a hand-off needs the browser's binding value")
        unified = await self._unified_session(secret)
        assert unified.email is not None
        customer = (
            await self.repository.find_customer_by_email(business_id, "live", unified.email)
            if business_id
            else None
        )
        if customer is None:
            raise CustomerNotFound("no account at this business for this email")
        business = await self._business(business_id)
        raw = generate_portal_token()
        now = self.clock.now()
        record = PortalToken(
            token_id=new_id(TOKEN_ID_PREFIX),
            purpose=Purpose.HANDOFF,
            business_id=business.business_id,
            mode="live",
            customer_id=customer.customer_id,
            unified_session_id=unified.session_id,
            browser_binding_hash=binding_hash,
            created_at=now,
            # Never beyond the unified session it comes from.
            expires_at=min(
                now + timedelta(seconds=self.policy.handoff_ttl_seconds),
                unified.expires_at,
            ),
        )
        await self.repository.insert_token(record, hash_secret(raw))
        log.info(
            "unified hand-off issued",
            extra={
                "session_id": unified.session_id,
                "business_id": business_id,
                "token_id": record.token_id,
            },
        )
        return record, raw, self.policy.base_urls.token_link(Purpose.HANDOFF, "live", raw)

    async def consume_handoff_token(
        self, *, token: str, mode: str, browser_binding: str
    ) -> StartedSession:
        """Spend a hand-off token once and start the live business session it names.

        Only hand-off tokens, only in live mode: anything else is
        :class:`TokenUnknown`. Of concurrent calls exactly one starts a session
        (one atomic update); the others get :class:`TokenUsed`. If the unified
        session has ended meanwhile (signed out, expired) the hand-off is
        :class:`TokenExpired`. The new session keeps ``unified_session_id`` (so
        unified logout ends it) and never outlives the unified session.

        Presented by a browser other than the one it was bound to (another
        ``browser_binding``) the token is spent and :class:`TokenUnknown`: an
        attacker who sends their own hand-off link to a victim signs nobody in.
        """
        checked_mode = _mode(mode)
        hashed = token_hash(token)
        if hashed is None or checked_mode != "live":
            raise TokenUnknown("this link is not valid")
        now = self.clock.now()
        used = await self.repository.use_token(
            hashed, mode="live", purposes=[Purpose.HANDOFF], now=now
        )
        if used is None:
            await self._raise_unusable(hashed, mode="live", purposes=[Purpose.HANDOFF])
        if used.business_id is None or used.customer_id is None or not used.unified_session_id:
            raise TokenUnknown("this link is not valid")
        presented = browser_binding_hash(browser_binding)
        if (
            presented is None
            or used.browser_binding_hash is None
            or not hmac.compare_digest(presented, used.browser_binding_hash)
        ):
            log.warning("hand-off presented by another browser", extra={"token_id": used.token_id})
            raise TokenUnknown("this link is not valid")
        unified = await self.repository.get_session(used.unified_session_id)
        if unified is None or not unified.is_active(now):
            raise TokenExpired("the unified portal session has ended")
        business = await self._business(used.business_id)
        customer = await self._customer(used.business_id, "live", used.customer_id)
        return await self._start_session(
            kind=SessionKind.BUSINESS,
            mode="live",
            business_id=business.business_id,
            customer_id=customer.customer_id,
            return_url=business.default_return_url,
            unified=unified,
            next_path=portal_home(business.business_id),
        )

    # --- profile ---

    def _updated_event(self, changed: list[str]) -> Callable[[Customer], CloudEvent]:
        updated_at = self.clock.now()

        def make(customer: Customer) -> CloudEvent:
            return new_event(
                CUSTOMER_UPDATED,
                self.source,
                CustomerUpdatedData.from_customer(
                    customer, updated_at=updated_at, changed_fields=changed
                ),
                subject=customer.customer_id,
            )

        return make

    async def update_profile(
        self,
        *,
        business_id: str,
        mode: str,
        customer_id: str,
        name: str | None = None,
        phone_number: str | None = None,
        metadata: dict[str, str] | None = None,
        preferred_locale: str | None = None,
        email: str | None = None,
    ) -> Customer:
        """Change a customer's fields; ``None`` leaves a field as it is.

        The portal's profile page sends name and phone (E.164; ``""`` clears
        it). The merchant API's ``PATCH /customers/{id}`` may also send
        ``metadata`` (replaces all of it; ``{}`` removes every key),
        ``preferred_locale`` (``""`` removes it) and ``email``: the merchant is
        authoritative, so a new email applies at once and ends the customer's
        portal sessions. Every field is checked before anything is written; a
        change and its ``customer.updated`` event commit together; no change,
        no event. Another customer with the new email is :class:`EmailTaken`.
        """
        checked_mode = _mode(mode)
        changes: dict[str, Any] = {}
        problems: dict[str, str] = {}
        if name is not None:
            try:
                changes["name"] = _PERSON_NAME.validate_python(name)
            except ValidationError:
                problems["name"] = (
                    f"must be 1 to {NAME_MAX_LENGTH} characters without control characters"
                )
        if phone_number is not None:
            try:
                changes["phone_number"] = check_phone_number(phone_number)
            except ValueError as exc:
                problems["phone_number"] = str(exc)
        if email is not None:
            try:
                changes["email"] = check_email(email)
            except ValueError as exc:
                problems["email"] = str(exc)
        if metadata is not None:
            try:
                changes["metadata"] = check_metadata(metadata)
            except ValueError as exc:
                problems["metadata"] = str(exc)
        if preferred_locale is not None:
            try:
                changes["preferred_locale"] = check_preferred_locale(preferred_locale)
            except ValueError as exc:
                problems["preferred_locale"] = str(exc)
        if problems:
            # A field-specific reason lets the profile page put the message next to the field.
            first = "phone_number" if "phone_number" in problems else next(iter(problems))
            raise InvalidArgument(
                "; ".join(f"{field}: {message}" for field, message in problems.items()),
                reason=_INVALID_FIELD_REASONS[first],
                field=first,
            )
        current = await self._customer(business_id, checked_mode, customer_id)
        changed = [k for k, v in changes.items() if getattr(current, k) != v]
        if not changed:
            return current
        new_email = changes.get("email") if "email" in changed else None
        if new_email is not None:
            holder = await self.repository.find_customer_by_email(
                business_id, checked_mode, normalize_email(new_email)
            )
            if holder is not None and holder.customer_id != customer_id:
                raise EmailTaken("email: another customer of this business uses this email")
        try:
            updated = await self.repository.update_customer_with_event(
                business_id,
                checked_mode,
                customer_id,
                {k: changes[k] for k in changed},
                self._updated_event(changed),
                # The merchant changed who this customer is: sessions opened by the old
                # address's owner must not outlive it.
                end_sessions_at=self.clock.now() if new_email is not None else None,
            )
        except AlreadyExists:
            # Another customer took the address between the check and the write.
            raise EmailTaken("email: another customer of this business uses this email") from None
        if updated is None:
            raise CustomerNotFound(f"customer {customer_id!r} not found")
        log.info(
            "customer profile updated",
            extra={"customer_id": customer_id, "changed": ",".join(changed)},
        )
        return updated

    async def session_customer_locale(self, session: PortalSession) -> str | None:
        """The preferred_locale of a business session's customer (None for unified/none)."""
        if session.kind is not SessionKind.BUSINESS or not session.business_id:
            return None
        if not session.customer_id:
            return None
        return await self.repository.customer_preferred_locale(
            session.business_id, session.mode, session.customer_id
        )

    async def request_email_change(
        self,
        *,
        business_id: str,
        mode: str,
        customer_id: str,
        new_email: str,
        locale: str | None = None,
        locale_explicit: bool = False,
    ) -> None:
        """Send a verification link to the new address and a notice to the old one.

        Answers the same whether or not another customer of the business holds
        the new address (no enumeration): the rate limit is counted before any
        lookup, the old address gets its notice either way, and a taken
        address's owner is told by email instead of the requester on the page.
        Nothing changes until the link is confirmed; a newer request
        supersedes older pending ones.
        """
        checked_mode = _mode(mode)
        address = _email(new_email, "new_email")
        await self._limit(client_key=None, subject_key=f"email-change:{customer_id}")
        customer = await self._customer(business_id, checked_mode, customer_id)
        if normalize_email(address) == customer.email_normalized:
            # The requester's own address: nothing about anyone else is revealed.
            raise EmailUnchanged("new_email: this is already the email on file", field="new_email")
        business = await self._business(business_id)
        language = _locale(locale, business, customer=customer, explicit=locale_explicit)
        holder = await self.repository.find_customer_by_email(
            business_id, checked_mode, normalize_email(address)
        )
        ttl = self.policy.email_change_link_ttl_seconds
        record, hashed, link = self._new_token(
            Purpose.EMAIL_CHANGE,
            mode=checked_mode,
            ttl_seconds=ttl,
            business_id=business_id,
            customer_id=customer_id,
            email=address,
        )
        notice = OutgoingEmail(
            kind=EmailKind.EMAIL_CHANGE_NOTICE,
            to=customer.email,
            locale=language,
            mode=checked_mode,
            business=business,
            customer_name=customer.name,
            email_key=f"{record.token_id}.notice",
        )
        if holder is not None:
            # The owner learns of the attempt; no token exists that could take the address.
            owner_notice = OutgoingEmail(
                kind=EmailKind.EMAIL_IN_USE_NOTICE,
                to=holder.email,
                locale=_locale(None, business, customer=holder),
                mode=checked_mode,
                business=business,
                customer_name=holder.name,
                email_key=f"{record.token_id}.in-use",
            )
            await self._queue_emails([notice, owner_notice], supersede_email_changes_of=customer_id)
            log.info(
                "email change to an address in use: its owner was notified",
                extra={"customer_id": customer_id},
            )
            return
        verify = OutgoingEmail(
            kind=EmailKind.EMAIL_CHANGE_VERIFY,
            to=address,
            locale=language,
            mode=checked_mode,
            business=business,
            link=link,
            link_expires_minutes=_minutes(ttl),
            customer_name=customer.name,
            email_key=record.token_id,
        )
        await self._queue_emails(
            [verify, notice], token=(record, hashed), supersede_email_changes_of=customer_id
        )
        log.info(
            "email change requested",
            extra={"customer_id": customer_id, "token_id": record.token_id},
        )

    async def confirm_email_change(
        self, *, token: str, mode: str, keep_session_secret: str | None = None
    ) -> Customer:
        """Make a verified new address the customer's email.

        In one transaction: the token is spent, the email changes, every other
        session of the customer ends and ``customer.updated`` enters the outbox.
        """
        checked_mode = _mode(mode)
        hashed = token_hash(token)
        if hashed is None:
            raise TokenUnknown("this link is not valid")
        keep = token_hash(keep_session_secret or "", SESSION_SECRET_PREFIX)
        try:
            customer = await self.repository.confirm_email_change(
                hashed,
                mode=checked_mode,
                now=self.clock.now(),
                keep_session_hash=keep,
                make_event=self._updated_event(["email"]),
            )
        except AlreadyExists:
            raise EmailTaken("another customer of this business already uses this email") from None
        if customer is None:
            await self._raise_unusable(hashed, mode=checked_mode, purposes=[Purpose.EMAIL_CHANGE])
        log.info("customer email changed", extra={"customer_id": customer.customer_id})
        return customer
