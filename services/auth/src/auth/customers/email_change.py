"""Use cases of a customer's email change from the portal: the request (a
verification link to the new address, notices, no enumeration) and its
confirmation, each one transaction with an audit entry.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from billing_kit.audit import Actor

from auth.customers.errors import EmailUnchanged
from auth.customers.models import Customer
from auth.customers.profile import ProfileUpdates, customer_resource
from auth.email_client import EmailKind, OutgoingEmail
from auth.portal_access.models import SESSION_SECRET_PREFIX, Purpose, token_hash
from auth.portal_access.use_case import (
    TokenUnknown,
    email_locale,
    minutes,
    parse_email,
    parse_mode,
)
from auth.rules import normalize_email
from auth.unit_of_work import AuditAction, Txn

log = logging.getLogger(__name__)


class EmailChanges(ProfileUpdates):
    """The customer's own email change, verified by a link to the new address."""

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
        checked_mode = parse_mode(mode)
        address = parse_email(new_email, "new_email")
        await self._limit(client_key=None, subject_key=f"email-change:{customer_id}")
        customer = await self._customer(business_id, checked_mode, customer_id)
        if normalize_email(address) == customer.email_normalized:
            # The requester's own address: nothing about anyone else is revealed.
            raise EmailUnchanged("new_email: this is already the email on file", field="new_email")
        business = await self._business(business_id)
        language = email_locale(locale, business, customer=customer, explicit=locale_explicit)
        holder = await self.customers.find_by_email(
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
                locale=email_locale(None, business, customer=holder),
                mode=checked_mode,
                business=business,
                customer_name=holder.name,
                email_key=f"{record.token_id}.in-use",
            )
            await self._queue_emails(
                [notice, owner_notice],
                supersede_email_changes_of=customer_id,
                audit=self._requested_audit(customer),
            )
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
            link_expires_minutes=minutes(ttl),
            customer_name=customer.name,
            email_key=record.token_id,
        )
        await self._queue_emails(
            [verify, notice],
            token=(record, hashed),
            supersede_email_changes_of=customer_id,
            audit=self._requested_audit(customer),
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
        checked_mode = parse_mode(mode)
        hashed = token_hash(token)
        if hashed is None:
            raise TokenUnknown("this link is not valid")
        keep = token_hash(keep_session_secret or "", SESSION_SECRET_PREFIX)
        make_event = self._updated_event(["email"])
        now = self.clock.now()

        async def confirm(txn: Txn) -> Customer | None:
            used = await self.portal.use_token(
                hashed, mode=checked_mode, purposes=[Purpose.EMAIL_CHANGE], now=now, txn=txn
            )
            if used is None or used.business_id is None or used.email is None:
                return None
            # Another customer taking the address meanwhile raises EmailTaken here,
            # which rolls the spending of the token back too.
            customer = await self.customers.update(
                used.business_id,
                checked_mode,
                used.customer_id or "",
                {"email": used.email},
                txn=txn,
            )
            if customer is None:
                return None
            # Whoever knew the old address must not stay signed in; the confirming browser may.
            await self.portal.end_customer_sessions(
                customer.business_id,
                checked_mode,
                customer.customer_id,
                now,
                keep_secret_hash=keep,
                txn=txn,
            )
            await self.uow.add_event(make_event(customer), txn)
            # Who changed which customer's email, when: ids only, never the addresses.
            await self.uow.audit(
                txn,
                actor=Actor(kind="customer", id=customer.customer_id),
                action=AuditAction.EMAIL_CHANGED.value,
                resource=customer_resource(customer),
                at=now,
            )
            return customer

        customer = await self.uow.run(confirm)
        if customer is None:
            await self._raise_unusable(hashed, mode=checked_mode, purposes=[Purpose.EMAIL_CHANGE])
        log.info("customer email changed", extra={"customer_id": customer.customer_id})
        return customer

    def _requested_audit(self, customer: Customer) -> Callable[[Txn], Awaitable[None]]:
        """The audit entry of an email-change request, for the emails' transaction.

        The same entry whether or not the new address is taken, and never the address.
        """
        at = self.clock.now()

        async def record(txn: Txn) -> None:
            await self.uow.audit(
                txn,
                actor=Actor(kind="customer", id=customer.customer_id),
                action=AuditAction.EMAIL_CHANGE_REQUESTED.value,
                resource=customer_resource(customer),
                at=at,
            )

        return record
