"""Use cases of the unified portal's hand-off to one business's live portal:
minting the one-time hand-off token, and spending it (which starts the live
business session, audited in the same transaction).
"""

from __future__ import annotations

import hmac
import logging
from datetime import timedelta

from billing_kit.errors import DomainError, InvalidArgument

from auth.customers.errors import CustomerNotFound
from auth.portal_access.models import (
    TOKEN_ID_PREFIX,
    PortalSession,
    PortalToken,
    Purpose,
    SessionKind,
    StartedSession,
    browser_binding_hash,
    generate_portal_token,
    portal_home,
    token_hash,
)
from auth.portal_access.sessions import Sessions
from auth.portal_access.use_case import TokenExpired, TokenUnknown, parse_mode
from auth.rules import hash_secret, new_id
from auth.unit_of_work import Txn

log = logging.getLogger(__name__)


class Handoff(Sessions):
    """Unified portal -> live business portal, through a one-time token."""

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
            await self.customers.find_by_email(business_id, "live", unified.email)
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

        async def issue(txn: Txn) -> None:
            await self.portal.insert_token(record, hash_secret(raw), txn=txn)

        await self.uow.run(issue)
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
        checked_mode = parse_mode(mode)
        hashed = token_hash(token)
        if hashed is None or checked_mode != "live":
            raise TokenUnknown("this link is not valid")
        now = self.clock.now()

        async def hand_off(txn: Txn) -> StartedSession | DomainError | None:
            used = await self.portal.use_token(
                hashed, mode="live", purposes=[Purpose.HANDOFF], now=now, txn=txn
            )
            if used is None:
                return None
            unified = await self._unified_behind(used, browser_binding, txn)
            if isinstance(unified, DomainError):
                # Returned, not raised: the token stays spent (another browser
                # must not get a second try), and no session starts.
                return unified
            assert used.business_id is not None and used.customer_id is not None
            business = await self._business(used.business_id, txn=txn)
            customer = await self._customer(used.business_id, "live", used.customer_id, txn=txn)
            return await self._start_session(
                kind=SessionKind.BUSINESS,
                mode="live",
                business_id=business.business_id,
                customer_id=customer.customer_id,
                return_url=business.default_return_url,
                unified=unified,
                next_path=portal_home(business.business_id),
                via=used,
                txn=txn,
            )

        outcome = await self.uow.run(hand_off)
        if outcome is None:
            await self._raise_unusable(hashed, mode="live", purposes=[Purpose.HANDOFF])
        if isinstance(outcome, DomainError):
            raise outcome
        return outcome

    async def _unified_behind(
        self, used: PortalToken, browser_binding: str, txn: Txn
    ) -> PortalSession | DomainError:
        """The active unified session a just-spent hand-off comes from, or why the
        hand-off opens no session."""
        if used.business_id is None or used.customer_id is None or not used.unified_session_id:
            return TokenUnknown("this link is not valid")
        presented = browser_binding_hash(browser_binding)
        if (
            presented is None
            or used.browser_binding_hash is None
            or not hmac.compare_digest(presented, used.browser_binding_hash)
        ):
            log.warning("hand-off presented by another browser", extra={"token_id": used.token_id})
            return TokenUnknown("this link is not valid")
        unified = await self.portal.get_session(used.unified_session_id, txn=txn)
        if unified is None or not unified.is_active(self.clock.now()):
            return TokenExpired("the unified portal session has ended")
        return unified
