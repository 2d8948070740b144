"""Use cases of a customer's profile: the portal's profile page (name, phone) and
the merchant API's ``PATCH /customers/{id}`` (also metadata, preferred locale
and email), one transaction each with its ``customer.updated`` event and an
audit entry naming who changed it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from billing_kit.audit import Actor, Resource
from billing_kit.errors import InvalidArgument, Reason
from billing_kit.events import CloudEvent, new_event
from billing_kit.field_rules import NAME_MAX_LENGTH, PersonName
from pydantic import TypeAdapter, ValidationError

from auth.customers.billing_details import BillingDetailsError, check_billing_details
from auth.customers.errors import CustomerNotFound, EmailTaken
from auth.customers.models import CUSTOMER_UPDATED, Customer, CustomerUpdatedData
from auth.merchants.models import API_KEY_PREFIX
from auth.portal_access.models import PortalSession, SessionKind
from auth.portal_access.use_case import PortalUseCase, parse_mode
from auth.rules import (
    check_email,
    check_metadata,
    check_phone_number,
    check_preferred_locale,
    normalize_email,
)
from auth.unit_of_work import AuditAction, Txn

log = logging.getLogger(__name__)

_PERSON_NAME: TypeAdapter[str] = TypeAdapter(PersonName)
# Key ids are "key_" + 22 characters; anything much longer is not one of ours.
_MAX_KEY_ID = 64
_INVALID_FIELD_REASONS = {
    "name": Reason.INVALID_NAME,
    "phone_number": Reason.INVALID_PHONE_NUMBER,
    "email": Reason.INVALID_EMAIL,
    "metadata": Reason.INVALID_METADATA,
    "preferred_locale": Reason.INVALID_PREFERRED_LOCALE,
}


class ProfileUpdates(PortalUseCase):
    """The customer's profile, changed by the customer or by the merchant."""

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
        merchant_key_id: str | None = None,
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

        ``merchant_key_id`` names who asked, for the audit entry written with
        the change: the merchant's API key (the merchant API); None means the
        customer (the portal's profile page). Not a key id -> :class:`InvalidArgument`.
        """
        checked_mode = parse_mode(mode)
        who = _actor(customer_id, merchant_key_id)
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
            holder = await self.customers.find_by_email(
                business_id, checked_mode, normalize_email(new_email)
            )
            if holder is not None and holder.customer_id != customer_id:
                raise EmailTaken("email: another customer of this business uses this email")
        make_event = self._updated_event(changed)
        now = self.clock.now()

        async def write(txn: Txn) -> Customer | None:
            # A concurrent taker of the new address makes this raise EmailTaken (unique index).
            updated = await self.customers.update(
                business_id, checked_mode, customer_id, {k: changes[k] for k in changed}, txn=txn
            )
            if updated is None:
                return None
            if new_email is not None:
                # The merchant changed who this customer is: sessions opened by the old
                # address's owner must not outlive it, and a link the customer asked for
                # earlier must not undo the merchant's change.
                await self.portal.end_customer_sessions(
                    business_id, checked_mode, customer_id, now, txn=txn
                )
                await self.portal.spend_pending_email_changes(customer_id, now, txn=txn)
            await self.uow.add_event(make_event(updated), txn)
            await self.uow.audit(
                txn,
                actor=who,
                action=AuditAction.PROFILE_UPDATED.value,
                resource=customer_resource(updated),
                at=now,
                details={"changed_fields": ",".join(changed)},
            )
            return updated

        updated = await self.uow.run(write)
        if updated is None:
            raise CustomerNotFound(f"customer {customer_id!r} not found")
        log.info(
            "customer profile updated",
            extra={"customer_id": customer_id, "changed": ",".join(changed), "by": who.kind},
        )
        return updated

    async def update_billing_details(
        self,
        *,
        business_id: str,
        mode: str,
        customer_id: str,
        country: str,
        city: str = "",
        state: str = "",
        street: str = "",
        zipcode: str = "",
        tax_id: str = "",
        business_name: str = "",
    ) -> Customer:
        """Replace the customer's billing details (the portal's billing details page).

        Every field is checked (the tax id against the country, see
        :mod:`auth.customers.billing_details`) before anything is read or
        written: a bad one is :class:`InvalidArgument` naming it. The change,
        its ``customer.updated`` event and an audit entry commit together; no
        change, no event. Another business's or mode's customer is
        :class:`CustomerNotFound`.
        """
        checked_mode = parse_mode(mode)
        try:
            details = check_billing_details(
                country=country,
                city=city,
                state=state,
                street=street,
                zipcode=zipcode,
                tax_id=tax_id,
                business_name=business_name,
            )
        except BillingDetailsError as exc:
            raise InvalidArgument(str(exc), field=exc.field) from None
        current = await self._customer(business_id, checked_mode, customer_id)
        if current.billing_details == details:
            return current
        make_event = self._updated_event(["billing_details"])
        now = self.clock.now()

        async def write(txn: Txn) -> Customer | None:
            updated = await self.customers.update(
                business_id, checked_mode, customer_id, {"billing_details": details}, txn=txn
            )
            if updated is None:
                return None
            await self.uow.add_event(make_event(updated), txn)
            await self.uow.audit(
                txn,
                actor=Actor(kind="customer", id=customer_id),
                action=AuditAction.PROFILE_UPDATED.value,
                resource=customer_resource(updated),
                at=now,
                details={"changed_fields": "billing_details"},
            )
            return updated

        updated = await self.uow.run(write)
        if updated is None:
            raise CustomerNotFound(f"customer {customer_id!r} not found")
        log.info("customer billing details updated", extra={"customer_id": customer_id})
        return updated

    async def session_customer_locale(self, session: PortalSession) -> str | None:
        """The preferred_locale of a business session's customer (None for unified/none)."""
        if session.kind is not SessionKind.BUSINESS or not session.business_id:
            return None
        if not session.customer_id:
            return None
        return await self.customers.preferred_locale(
            session.business_id, session.mode, session.customer_id
        )


def _actor(customer_id: str, merchant_key_id: str | None) -> Actor:
    """Who changes the profile: the merchant's key, else the customer."""
    if merchant_key_id is None:
        return Actor(kind="customer", id=customer_id)
    if not merchant_key_id.startswith(API_KEY_PREFIX) or len(merchant_key_id) > _MAX_KEY_ID:
        raise InvalidArgument("merchant_key_id: not an API key id", field="merchant_key_id")
    return Actor(kind="merchant", id=merchant_key_id)


def customer_resource(customer: Customer) -> Resource:
    """A customer as the resource of an audit entry."""
    return Resource(
        kind="customer",
        id=customer.customer_id,
        business_id=customer.business_id,
        mode=customer.mode,
    )
