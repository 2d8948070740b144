"""gRPC adapters of ``billing.auth.v1.PortalAccessService``: proto <-> use cases, nothing else.

(The development-only test clock service is the kit's
:mod:`billing_kit.clock_service`.)

Raw tokens and session secrets pass through here in memory only; domain errors
are raised as they are and the kit's interceptor turns them into statuses.
"""

from __future__ import annotations

from datetime import datetime

from billing.auth.v1 import (
    auth_pb2,
    portal_access_pb2,
    portal_access_pb2_grpc,
)
from billing_kit.scoping import mode_from_proto, mode_to_proto
from google.protobuf.timestamp_pb2 import Timestamp

from auth.customers.email_change import EmailChanges
from auth.portal_access.handoff import Handoff
from auth.portal_access.links import SignInLinks
from auth.portal_access.models import (
    PortalSession,
    Purpose,
    SessionKind,
    StartedSession,
    TokenState,
)
from auth.servicer import Context, business_to_proto, customer_to_proto

_KIND = {
    SessionKind.BUSINESS: portal_access_pb2.SESSION_KIND_BUSINESS,
    SessionKind.UNIFIED: portal_access_pb2.SESSION_KIND_UNIFIED,
}
_STATE = {
    TokenState.VALID: portal_access_pb2.TOKEN_STATE_VALID,
    TokenState.USED: portal_access_pb2.TOKEN_STATE_USED,
    TokenState.EXPIRED: portal_access_pb2.TOKEN_STATE_EXPIRED,
    TokenState.UNKNOWN: portal_access_pb2.TOKEN_STATE_UNKNOWN,
}
_PURPOSE = {
    Purpose.SIGN_IN: portal_access_pb2.TOKEN_PURPOSE_SIGN_IN,
    Purpose.MAGIC_LINK: portal_access_pb2.TOKEN_PURPOSE_MAGIC_LINK,
    Purpose.UNIFIED_SIGN_IN: portal_access_pb2.TOKEN_PURPOSE_UNIFIED_SIGN_IN,
    Purpose.EMAIL_CHANGE: portal_access_pb2.TOKEN_PURPOSE_EMAIL_CHANGE,
    Purpose.HANDOFF: portal_access_pb2.TOKEN_PURPOSE_HANDOFF,
}


def _timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def session_to_proto(session: PortalSession) -> portal_access_pb2.PortalSession:
    """The wire form of a session (never its secret)."""
    return portal_access_pb2.PortalSession(
        session_id=session.session_id,
        kind=_KIND[session.kind],
        business_id=session.business_id or "",
        mode=mode_to_proto(session.mode),
        customer_id=session.customer_id or "",
        email=session.email or "",
        csrf_token=session.csrf_token,
        # What the gateway needs is when the session stops working: the earlier limit.
        idle_expires_at=_timestamp(session.expires_at),
        absolute_expires_at=_timestamp(session.absolute_expires_at),
        return_url=session.return_url or "",
        unified_session_id=session.unified_session_id or "",
    )


def started_to_proto(started: StartedSession) -> portal_access_pb2.ConsumeTokenResponse:
    """A new session with the only copy of its cookie value."""
    return portal_access_pb2.ConsumeTokenResponse(
        session=session_to_proto(started.session),
        session_secret=started.secret,
        next_path=started.next_path,
    )


class PortalAccessServicer(portal_access_pb2_grpc.PortalAccessServiceServicer):
    """Serves ``billing.auth.v1.PortalAccessService``: links, sessions (with the
    unified hand-off) and the customer's profile and email change."""

    def __init__(self, *, links: SignInLinks, sessions: Handoff, profiles: EmailChanges) -> None:
        self.links = links
        self.sessions = sessions
        self.profiles = profiles

    async def RequestSignInLink(
        self, request: portal_access_pb2.RequestSignInLinkRequest, context: Context
    ) -> portal_access_pb2.RequestSignInLinkResponse:
        """Static link: email a sign-in link (or a not-found notice); same answer for both."""
        await self.links.request_sign_in_link(
            business_id=request.business_id,
            mode=mode_from_proto(request.mode),
            email=request.email,
            next_path=request.next_path or None,
            client_key=request.client_key or None,
            locale=request.locale or None,
            locale_explicit=request.locale_explicit,
        )
        return portal_access_pb2.RequestSignInLinkResponse()

    async def CreatePortalLink(
        self, request: portal_access_pb2.CreatePortalLinkRequest, context: Context
    ) -> portal_access_pb2.CreatePortalLinkResponse:
        """Magic link for a customer, optionally emailed."""
        link, expires_at, static_link = await self.links.create_portal_link(
            business_id=request.business_id,
            mode=mode_from_proto(request.mode),
            customer_id=request.customer_id,
            send_email=request.send_email,
            return_url=request.return_url or None,
            next_path=request.next_path or None,
            # The wait for the email's first attempt must end before the caller gives up.
            time_left_seconds=context.time_remaining(),
        )
        return portal_access_pb2.CreatePortalLinkResponse(
            link=link, expires_at=_timestamp(expires_at), static_link=static_link
        )

    async def CreateCustomerLink(
        self, request: portal_access_pb2.CreateCustomerLinkRequest, context: Context
    ) -> portal_access_pb2.CreateCustomerLinkResponse:
        """A sealed one-time link for another service's email; idempotent on the key."""
        sealed, expires_at, expires_minutes = await self.links.create_customer_link(
            business_id=request.business_id,
            mode=mode_from_proto(request.mode),
            customer_id=request.customer_id,
            next_path=request.next_path,
            idempotency_key=request.idempotency_key,
        )
        return portal_access_pb2.CreateCustomerLinkResponse(
            sealed_link=sealed, expires_at=_timestamp(expires_at), expires_minutes=expires_minutes
        )

    async def DescribeToken(
        self, request: portal_access_pb2.DescribeTokenRequest, context: Context
    ) -> portal_access_pb2.DescribeTokenResponse:
        """A link's state without using it."""
        state, token = await self.sessions.describe_token(request.token)
        if token is None:
            return portal_access_pb2.DescribeTokenResponse(state=_STATE[state])
        return portal_access_pb2.DescribeTokenResponse(
            state=_STATE[state],
            purpose=_PURPOSE[token.purpose],
            business_id=token.business_id or "",
            mode=mode_to_proto(token.mode),
        )

    async def ConsumeToken(
        self, request: portal_access_pb2.ConsumeTokenRequest, context: Context
    ) -> portal_access_pb2.ConsumeTokenResponse:
        """Use a link once and start its session."""
        started = await self.sessions.consume_token(
            token=request.token, mode=mode_from_proto(request.mode)
        )
        return started_to_proto(started)

    async def RequestFreshLink(
        self, request: portal_access_pb2.RequestFreshLinkRequest, context: Context
    ) -> portal_access_pb2.RequestFreshLinkResponse:
        """Email a new link for an expired or used one."""
        await self.links.request_fresh_link(
            token=request.token,
            client_key=request.client_key or None,
            locale=request.locale or None,
            locale_explicit=request.locale_explicit,
        )
        return portal_access_pb2.RequestFreshLinkResponse()

    async def ResolveSession(
        self, request: portal_access_pb2.ResolveSessionRequest, context: Context
    ) -> portal_access_pb2.PortalSession:
        """The session behind a cookie value, or UNAUTHENTICATED."""
        session = await self.sessions.resolve_session(request.session_secret)
        reply = session_to_proto(session)
        # The portal's language when the visitor picked none (cached by the gateway).
        reply.customer_preferred_locale = await self.profiles.session_customer_locale(session) or ""
        return reply

    async def EndSession(
        self, request: portal_access_pb2.EndSessionRequest, context: Context
    ) -> portal_access_pb2.EndSessionResponse:
        """Sign out."""
        await self.sessions.end_session(request.session_secret)
        return portal_access_pb2.EndSessionResponse()

    async def RequestUnifiedSignInLink(
        self, request: portal_access_pb2.RequestUnifiedSignInLinkRequest, context: Context
    ) -> portal_access_pb2.RequestSignInLinkResponse:
        """Unified portal: email a one-time link; same answer for any address."""
        await self.links.request_unified_sign_in_link(
            email=request.email,
            client_key=request.client_key or None,
            locale=request.locale or None,
        )
        return portal_access_pb2.RequestSignInLinkResponse()

    async def ListUnifiedAccounts(
        self, request: portal_access_pb2.ListUnifiedAccountsRequest, context: Context
    ) -> portal_access_pb2.ListUnifiedAccountsResponse:
        """The businesses of a unified session's email."""
        accounts = await self.sessions.list_unified_accounts(request.session_secret)
        return portal_access_pb2.ListUnifiedAccountsResponse(
            accounts=[
                portal_access_pb2.UnifiedAccount(
                    business=business_to_proto(business), customer=customer_to_proto(customer)
                )
                for business, customer in accounts
            ]
        )

    async def OpenBusinessFromUnified(
        self, request: portal_access_pb2.OpenBusinessFromUnifiedRequest, context: Context
    ) -> portal_access_pb2.OpenBusinessFromUnifiedResponse:
        """A one-time hand-off from a unified session to one of its live businesses."""
        record, token, link = await self.sessions.open_business_from_unified(
            secret=request.session_secret,
            business_id=request.business_id,
            browser_binding=request.browser_binding,
        )
        return portal_access_pb2.OpenBusinessFromUnifiedResponse(
            handoff_token=token,
            handoff_link=link,
            expires_at=_timestamp(record.expires_at),
            business_id=record.business_id or "",
        )

    async def ConsumeHandoffToken(
        self, request: portal_access_pb2.ConsumeHandoffTokenRequest, context: Context
    ) -> portal_access_pb2.ConsumeTokenResponse:
        """Spend a hand-off once and start the live business session."""
        started = await self.sessions.consume_handoff_token(
            token=request.token,
            mode=mode_from_proto(request.mode),
            browser_binding=request.browser_binding,
        )
        return started_to_proto(started)

    async def UpdateProfile(
        self, request: portal_access_pb2.UpdateProfileRequest, context: Context
    ) -> auth_pb2.Customer:
        """Name and phone (portal profile page); also metadata, preferred_locale and
        email (the merchant's PATCH /customers/{id}). Absent fields stay as they are."""
        customer = await self.profiles.update_profile(
            business_id=request.business_id,
            mode=mode_from_proto(request.mode),
            customer_id=request.customer_id,
            name=request.name if request.HasField("name") else None,
            phone_number=request.phone_number if request.HasField("phone_number") else None,
            metadata=dict(request.metadata.values) if request.HasField("metadata") else None,
            preferred_locale=(
                request.preferred_locale if request.HasField("preferred_locale") else None
            ),
            email=request.email if request.HasField("email") else None,
            # The audit entry names who changed the profile: the merchant's key, or the
            # customer on the portal's profile page.
            merchant_key_id=request.merchant_key_id or None,
        )
        return customer_to_proto(customer)

    async def UpdateBillingDetails(
        self, request: portal_access_pb2.UpdateBillingDetailsRequest, context: Context
    ) -> auth_pb2.Customer:
        """Replace the session customer's billing details (the portal's billing details page)."""
        details = request.billing_details
        customer = await self.profiles.update_billing_details(
            business_id=request.business_id,
            mode=mode_from_proto(request.mode),
            customer_id=request.customer_id,
            country=details.country,
            city=details.city,
            state=details.state,
            street=details.street,
            zipcode=details.zipcode,
            tax_id=details.tax_id,
            business_name=details.business_name,
        )
        return customer_to_proto(customer)

    async def RequestEmailChange(
        self, request: portal_access_pb2.RequestEmailChangeRequest, context: Context
    ) -> portal_access_pb2.RequestEmailChangeResponse:
        """Send the verification link to the new address."""
        await self.profiles.request_email_change(
            business_id=request.business_id,
            mode=mode_from_proto(request.mode),
            customer_id=request.customer_id,
            new_email=request.new_email,
            locale=request.locale or None,
            locale_explicit=request.locale_explicit,
        )
        return portal_access_pb2.RequestEmailChangeResponse()

    async def ConfirmEmailChange(
        self, request: portal_access_pb2.ConfirmEmailChangeRequest, context: Context
    ) -> auth_pb2.Customer:
        """Apply a verified email change."""
        customer = await self.profiles.confirm_email_change(
            token=request.token,
            mode=mode_from_proto(request.mode),
            keep_session_secret=request.keep_session_secret or None,
        )
        return customer_to_proto(customer)
