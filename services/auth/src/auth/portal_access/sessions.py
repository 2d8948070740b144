"""Use cases of sessions: describing and spending a sign-in link (which starts a
session, audited in the same transaction), resolving and ending sessions, and
the unified portal's list of accounts.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from auth.customers.models import Customer
from auth.merchants.models import Business
from auth.portal_access.models import (
    SESSION_SECRET_PREFIX,
    PortalSession,
    PortalToken,
    Purpose,
    SessionKind,
    StartedSession,
    TokenState,
    portal_home,
    token_hash,
    token_state,
)
from auth.portal_access.use_case import PortalUseCase, SessionInvalid, TokenUnknown, parse_mode
from auth.unit_of_work import Txn

log = logging.getLogger(__name__)

UNIFIED_HOME = "/"
_SESSION_PURPOSES = [p for p in Purpose if p.starts_session]


class Sessions(PortalUseCase):
    """Opening links into sessions, and the sessions themselves."""

    async def describe_token(self, token: str) -> tuple[TokenState, PortalToken | None]:
        """What a link would do if used now, without using it (the confirm page)."""
        hashed = token_hash(token)
        found = await self.portal.find_token(hashed) if hashed else None
        state = token_state(found, self.clock.now())
        return state, (found if state is not TokenState.UNKNOWN else None)

    async def consume_token(self, *, token: str, mode: str) -> StartedSession:
        """Use a sign-in, magic or unified link once and start its session.

        ``mode`` is the mode of the base URL the link was opened under: a token
        of the other mode is unknown there. Of concurrent calls with one token
        exactly one starts a session; the others get :class:`TokenUsed`.
        """
        checked_mode = parse_mode(mode)
        hashed = token_hash(token)
        if hashed is None:
            raise TokenUnknown("this link is not valid")
        now = self.clock.now()

        async def sign_in(txn: Txn) -> StartedSession | None:
            # Spending the link, the session and its audit entry commit together.
            used = await self.portal.use_token(
                hashed, mode=checked_mode, purposes=_SESSION_PURPOSES, now=now, txn=txn
            )
            if used is None:
                return None
            return await self._session_for(used, txn)

        started = await self.uow.run(sign_in)
        if started is None:
            await self._raise_unusable(hashed, mode=checked_mode, purposes=_SESSION_PURPOSES)
        return started

    async def _session_for(self, used: PortalToken, txn: Txn) -> StartedSession:
        """The session a spent sign-in, magic or unified link opens."""
        if used.purpose is Purpose.UNIFIED_SIGN_IN:
            return await self._start_session(
                kind=SessionKind.UNIFIED,
                mode="live",
                email=used.email,
                next_path=UNIFIED_HOME,
                via=used,
                txn=txn,
            )
        if used.business_id is None or used.customer_id is None:
            raise TokenUnknown("this link is not valid")
        business = await self._business(used.business_id, txn=txn)
        customer = await self._customer(used.business_id, used.mode, used.customer_id, txn=txn)
        return await self._start_session(
            kind=SessionKind.BUSINESS,
            mode=used.mode,
            business_id=business.business_id,
            customer_id=customer.customer_id,
            return_url=used.return_url or business.default_return_url,
            next_path=used.next_path or portal_home(business.business_id),
            via=used,
            txn=txn,
        )

    async def resolve_session(self, secret: str) -> PortalSession:
        """The active session behind a cookie value; using it pushes its idle deadline.

        The deadline is written only when it moves by at least the touch step
        (``session_touch_seconds``, at most a tenth of the idle limit): every
        unified page resolves its session, and a write per page costs the
        database more than the read that usually suffices. So a session in use
        stays valid for between the idle limit minus that step and the idle
        limit after its last use (59-60 minutes by default).
        """
        hashed = token_hash(secret, SESSION_SECRET_PREFIX)
        now = self.clock.now()
        session = await self.portal.active_session(hashed, now=now) if hashed else None
        if hashed is None or session is None:
            raise SessionInvalid("session expired or signed out")
        idle = self.policy.session_idle_seconds
        pushed = now + timedelta(seconds=idle)
        step = timedelta(seconds=min(self.policy.session_touch_seconds, idle // 10))
        if pushed - session.idle_expires_at < step:
            return session
        touched = await self.portal.touch_session(hashed, now=now, idle_expires_at=pushed)
        if touched is None:  # ended (signed out) between the read and the write
            raise SessionInvalid("session expired or signed out")
        return touched

    async def end_session(self, secret: str) -> None:
        """Sign out (idempotent); ending a unified session ends the areas it opened."""
        hashed = token_hash(secret, SESSION_SECRET_PREFIX)
        if hashed is None:
            return
        now = self.clock.now()

        async def sign_out(txn: Txn) -> PortalSession | None:
            session = await self.portal.end_session(hashed, now, txn=txn)
            if session is not None and session.kind is SessionKind.UNIFIED:
                # The business areas opened from it must not outlive it.
                await self.portal.end_sessions_opened_from(session.session_id, now, txn=txn)
            return session

        session = await self.uow.run(sign_out)
        if session is None:
            return
        log.info("portal session ended", extra={"session_id": session.session_id})

    async def _unified_session(self, secret: str) -> PortalSession:
        session = await self.resolve_session(secret)
        if session.kind is not SessionKind.UNIFIED or not session.email:
            raise SessionInvalid("not a unified portal session")
        return session

    async def list_unified_accounts(self, secret: str) -> list[tuple[Business, Customer]]:
        """Every live business where the session's verified email is a customer."""
        session = await self._unified_session(secret)
        assert session.email is not None
        customers = await self.customers.with_email(session.email, "live")
        businesses = {
            b.business_id: b
            for b in await self.businesses.get_many(sorted({c.business_id for c in customers}))
        }
        accounts = [
            (businesses[c.business_id], c) for c in customers if c.business_id in businesses
        ]
        return sorted(accounts, key=lambda a: (a[0].name.lower(), a[0].business_id))
