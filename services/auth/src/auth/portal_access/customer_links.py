"""CreateCustomerLink: one-time portal links for emails another service sends
(notifications' on_hold email), sealed for that service and idempotent on its key."""

from __future__ import annotations

import logging
from datetime import datetime

from billing_kit.errors import FailedPrecondition, InvalidArgument, Reason
from pymongo.errors import DuplicateKeyError

from auth.portal_access.models import Purpose
from auth.portal_access.use_case import PortalUseCase, minutes, parse_mode, parse_next_path

log = logging.getLogger(__name__)


class CustomerLinks(PortalUseCase):
    """Links minted for other services' emails."""

    async def create_customer_link(
        self,
        *,
        business_id: str,
        mode: str,
        customer_id: str,
        next_path: str,
        idempotency_key: str,
    ) -> tuple[str, datetime, int]:
        """A one-time link for an email another service sends (notifications' on_hold
        email): ``(sealed_link, expires_at, expires_minutes)``.

        The same machinery as the magic link (confirm page, single use, the magic
        link's expiry, then ``next_path``), but the link leaves auth only sealed
        for notifications, and the same ``idempotency_key`` returns the same
        sealed link, so a redelivered event never mints a second token. The
        token is stored hashed; the sealed link is kept with it for the repeat.
        """
        checked_mode = parse_mode(mode)
        key = idempotency_key.strip()
        if not key or len(key) > 255:
            raise InvalidArgument(
                "idempotency_key: required, at most 255 characters", field="idempotency_key"
            )
        next_checked = parse_next_path(next_path, business_id)
        if next_checked is None:
            raise InvalidArgument(
                "next_path: required", reason=Reason.INVALID_NEXT_PATH, field="next_path"
            )
        ttl = self.policy.magic_link_ttl_seconds
        existing = await self.portal.find_token_by_link_key(business_id, checked_mode, key)
        if existing is None:
            business = await self._business(business_id)
            customer = await self._customer(business.business_id, checked_mode, customer_id)
            record, hashed, link = self._new_token(
                Purpose.MAGIC_LINK,
                mode=checked_mode,
                ttl_seconds=ttl,
                business_id=business.business_id,
                customer_id=customer.customer_id,
                next_path=next_checked,
            )
            record = record.model_copy(
                update={"link_key": key, "sealed_link": self.sealer.seal(link)}
            )
            try:
                await self._queue_emails([], token=(record, hashed))
            except DuplicateKeyError:
                # A concurrent call with the same key stored first: answer with its link.
                existing = await self.portal.find_token_by_link_key(business_id, checked_mode, key)
                if existing is None:
                    raise
            else:
                existing = record
                log.info(
                    "customer link minted",
                    extra={
                        "business_id": business_id,
                        "customer_id": customer.customer_id,
                        "token_id": record.token_id,
                    },
                )
        if (
            existing.customer_id != customer_id
            or existing.next_path != next_checked
            or not existing.sealed_link
        ):
            raise FailedPrecondition(
                "idempotency_key was already used for another customer or destination",
                reason=Reason.IDEMPOTENCY_KEY_REUSED,
                field="idempotency_key",
            )
        return existing.sealed_link, existing.expires_at, minutes(ttl)
