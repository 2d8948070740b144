"""Use cases that email portal links: the static link's sign-in (or "no account"
notice), the merchant's magic link, a fresh link for a spent one, and the
unified portal's sign-in link.

Every email is an ``email.requested`` event written in the same transaction as
the token it carries (see :mod:`auth.email_client`); the answer never says
whether an address is a customer.
"""

from __future__ import annotations

import logging
from datetime import datetime

from billing_kit.errors import InvalidArgument, Reason

from auth.customers.models import Customer
from auth.email_client import EmailKind, OutgoingEmail
from auth.merchants.models import Business
from auth.portal_access.customer_links import CustomerLinks
from auth.portal_access.models import PortalToken, Purpose, token_hash
from auth.portal_access.use_case import (
    email_locale,
    minutes,
    parse_email,
    parse_mode,
    parse_next_path,
)
from auth.rules import Mode, check_http_url, new_id, normalize_email

log = logging.getLogger(__name__)


class SignInLinks(CustomerLinks):
    """Sign-in, magic, fresh and unified links (and, inherited, other services' links)."""

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
        checked_mode = parse_mode(mode)
        address = parse_email(email)
        next_checked = parse_next_path(next_path, business_id)
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
        customer = await self.customers.find_by_email(
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
                        locale=email_locale(locale, business),
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
            locale=email_locale(locale, business, customer=customer, explicit=locale_explicit),
            mode=customer.mode,
            business=business,
            link=link,
            link_expires_minutes=minutes(ttl),
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
        checked_mode = parse_mode(mode)
        try:
            return_checked = check_http_url(return_url)
        except ValueError as exc:
            raise InvalidArgument(
                f"return_url: {exc}", reason=Reason.INVALID_RETURN_URL, field="return_url"
            ) from None
        next_checked = parse_next_path(next_path, business_id)
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
                    locale=email_locale(None, business, customer=customer),
                    mode=checked_mode,
                    business=business,
                    link=link,
                    link_expires_minutes=minutes(ttl),
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
        await self.portal.delete_token(record.token_id)
        log.info(
            "portal link revoked: the mail server refused the recipient",
            extra={"customer_id": record.customer_id, "token_id": record.token_id},
        )
        raise InvalidArgument(
            "the mail server refused this customer's email address permanently, so the "
            "link was not sent and is not valid; correct the customer's email and try again",
            reason=Reason.EMAIL_RECIPIENT_REJECTED,
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
        found = await self.portal.find_token(hashed) if hashed else None
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
        business = await self.merchants.get_business(old.business_id)
        customer = await self.customers.get(old.business_id, old.mode, old.customer_id)
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

    async def request_unified_sign_in_link(
        self, *, email: str, client_key: str | None = None, locale: str | None = None
    ) -> None:
        """Email a one-time unified sign-in link to an address that is a live customer
        somewhere; the answer is the same for any address."""
        address = parse_email(email)
        await self._limit(client_key=client_key, subject_key=f"unified:{normalize_email(address)}")
        await self._send_unified_link(address, locale)

    async def _send_unified_link(self, address: str, locale: str | None) -> None:
        normalized = normalize_email(address)
        customers = await self.customers.with_email(normalized, "live")
        if not customers:
            # Same rule as the static link: the address learns (by email, never on
            # the page) that it has no purchases, and to use the purchase email.
            await self._queue_emails(
                [
                    OutgoingEmail(
                        kind=EmailKind.UNIFIED_NO_ACCOUNT_FOUND,
                        to=address,
                        locale=email_locale(locale, None),
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
                    locale=email_locale(locale, None),
                    mode="live",
                    link=link,
                    link_expires_minutes=minutes(ttl),
                    customer_name=customers[0].name,
                    email_key=record.token_id,
                )
            ],
            token=(record, hashed),
        )
