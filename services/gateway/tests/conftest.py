"""Fixtures for the gateway's own tests.

The HTTP tests run the real gateway app against an in-process gRPC server that
speaks auth's contract from memory (``FakeAuth``), so every error path can be
provoked. The integration tests (test_integration_*.py) run the real auth and
gateway through :func:`auth_and_gateway`.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from aiohttp.test_utils import TestClient, TestServer
from auth.app import AuthRuntime
from auth.app import create_app as create_auth
from auth.config import AuthSettings
from auth.customers.billing_details import BillingDetailsError, check_billing_details
from billing.auth.v1 import auth_pb2, auth_pb2_grpc, portal_access_pb2, portal_access_pb2_grpc
from billing.common.v1 import common_pb2
from billing_kit.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    RateLimited,
    Reason,
    Unauthenticated,
)
from billing_kit.field_rules import (
    PersonName,
    check_email,
    check_http_url,
    check_next_path,
    check_phone_number,
)
from billing_kit.grpc_server import abort_with_domain_error
from billing_kit.testing import BrokerNamespace, RunningService, running_service
from gateway.app import GatewayRuntime, create_app
from gateway.config import GatewaySettings
from pydantic import TypeAdapter

_NAME: TypeAdapter[str] = TypeAdapter(PersonName)


@dataclass
class FakeKey:
    business_id: str
    mode: int
    key_id: str
    revoked: bool = False


@dataclass
class FakeAuth(auth_pb2_grpc.AuthServiceServicer):
    """Auth's customer and API key RPCs, in memory."""

    keys: dict[str, FakeKey] = field(default_factory=dict)
    customers: list[auth_pb2.Customer] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    unavailable: bool = False
    # RPC name -> the refusal it answers with (to show how each refusal reaches a person).
    refusals: dict[str, DomainError] = field(default_factory=dict)

    def add_key(self, business_id: str, mode: int = common_pb2.MODE_TEST) -> str:
        secret = f"sk_{'test' if mode == common_pb2.MODE_TEST else 'live'}_{uuid.uuid4().hex}"
        self.keys[secret] = FakeKey(business_id, mode, f"key_{uuid.uuid4().hex[:8]}")
        return secret

    async def _guard(self, name: str, context: Any) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        if self.unavailable:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "auth is down")
        if name in self.refusals:
            await self._fail(context, self.refusals[name])

    async def _fail(self, context: Any, err: DomainError) -> None:
        await abort_with_domain_error(context, err)

    async def AuthenticateApiKey(self, request: Any, context: Any) -> Any:
        await self._guard("AuthenticateApiKey", context)
        key = self.keys.get(request.secret)
        if key is None or key.revoked:
            await self._fail(context, Unauthenticated("invalid api key"))
        assert key is not None
        return auth_pb2.AuthenticateApiKeyResponse(
            business_id=key.business_id, mode=key.mode, key_id=key.key_id
        )

    async def CreateCustomer(self, request: Any, context: Any) -> Any:
        await self._guard("CreateCustomer", context)
        if request.name == "reject-me":
            await self._fail(
                context, InvalidArgument("name is reserved", reason=Reason.INVALID_NAME)
            )
        for c in self.customers:
            if (c.business_id, c.mode, c.email) == (
                request.business_id,
                request.mode,
                request.email.lower(),
            ):
                return auth_pb2.CreateCustomerResponse(customer=c, created=False)
        customer = auth_pb2.Customer(
            customer_id=f"cus_{uuid.uuid4().hex[:16]}",
            business_id=request.business_id,
            mode=request.mode,
            email=request.email.lower(),
            name=request.name,
            phone_number=request.phone_number,
            metadata=dict(request.metadata),
            preferred_locale=request.preferred_locale,
        )
        customer.created_at.FromDatetime(datetime.now(UTC))
        self.customers.append(customer)
        return auth_pb2.CreateCustomerResponse(customer=customer, created=True)

    async def GetCustomer(self, request: Any, context: Any) -> Any:
        await self._guard("GetCustomer", context)
        for c in self.customers:
            if (c.business_id, c.mode, c.customer_id) == (
                request.business_id,
                request.mode,
                request.customer_id,
            ):
                return c
        await self._fail(context, NotFound("customer not found", reason=Reason.CUSTOMER_NOT_FOUND))

    async def ListCustomers(self, request: Any, context: Any) -> Any:
        await self._guard("ListCustomers", context)
        mine = [
            c
            for c in self.customers
            if c.business_id == request.business_id
            and c.mode == request.mode
            and (not request.email or c.email == request.email.lower())
        ]
        start = request.page_number * request.page_size
        return auth_pb2.ListCustomersResponse(customers=mine[start : start + request.page_size])

    businesses: dict[str, auth_pb2.Business] = field(default_factory=dict)
    # UpdateBusiness's actor of each call, oldest first.
    update_actors: list[str] = field(default_factory=list)

    def add_business(self, name: str, color: str = "#0A7D5A", locale: str = "en") -> str:
        business_id = f"biz_{uuid.uuid4().hex[:12]}"
        self.businesses[business_id] = auth_pb2.Business(
            business_id=business_id,
            name=name,
            branding=auth_pb2.Branding(primary_color=color),
            support_email="help@example.com",
            locale=locale,
        )
        return business_id

    def add_customer(self, business_id: str, email: str, mode: int = common_pb2.MODE_TEST) -> str:
        customer = auth_pb2.Customer(
            customer_id=f"cus_{uuid.uuid4().hex[:16]}",
            business_id=business_id,
            mode=mode,
            email=email,
            name="Ada Lovelace",
        )
        self.customers.append(customer)
        return customer.customer_id

    async def GetBusiness(self, request: Any, context: Any) -> Any:
        await self._guard("GetBusiness", context)
        business = self.businesses.get(request.business_id)
        if business is None:
            await self._fail(context, NotFound("no business", reason=Reason.BUSINESS_NOT_FOUND))
        return business

    async def UpdateBusiness(self, request: Any, context: Any) -> Any:
        await self._guard("UpdateBusiness", context)
        business = self.businesses.get(request.business_id)
        if business is None:
            await self._fail(context, NotFound("no business", reason=Reason.BUSINESS_NOT_FOUND))
        assert business is not None
        if (
            request.HasField("renewal_reminder_days")
            and not 1 <= request.renewal_reminder_days <= 30
        ):
            await self._fail(
                context,
                InvalidArgument(
                    "renewal_reminder_days: out of range", field="renewal_reminder_days"
                ),
            )
        updated = auth_pb2.Business()
        updated.CopyFrom(business)
        if not updated.HasField("portal_settings"):  # a business stored before the settings
            updated.portal_settings.CopyFrom(
                auth_pb2.PortalSettings(
                    allow_cancel=True,
                    allow_pause=True,
                    allow_plan_change=True,
                    allow_quantity_change=True,
                    ask_cancel_reason=True,
                    downgrade_timing=auth_pb2.DOWNGRADE_TIMING_NEXT_BILLING_DATE,
                )
            )
        for name in (
            "allow_cancel",
            "allow_pause",
            "allow_plan_change",
            "allow_quantity_change",
            "ask_cancel_reason",
        ):
            if request.HasField(name):
                setattr(updated.portal_settings, name, getattr(request, name))
        if request.downgrade_timing:
            updated.portal_settings.downgrade_timing = request.downgrade_timing
        for name in ("renewal_reminder_days", "license_grace_days"):
            if request.HasField(name):
                setattr(updated, name, getattr(request, name))
        self.businesses[request.business_id] = updated
        self.update_actors.append(request.actor)
        return updated


@dataclass
class FakeToken:
    purpose: int
    business_id: str
    mode: int
    customer_id: str = ""
    email: str = ""
    used: bool = False
    expired: bool = False
    next_path: str = ""
    new_email: str = ""
    unified_session_id: str = ""
    browser_binding: str = ""


@dataclass
class FakePortal(portal_access_pb2_grpc.PortalAccessServiceServicer):
    """Auth's PortalAccessService rules that matter to the gateway, in memory."""

    auth: FakeAuth
    tokens: dict[str, FakeToken] = field(default_factory=dict)
    sessions: dict[str, portal_access_pb2.PortalSession] = field(default_factory=dict)
    sign_in_requests: list[Any] = field(default_factory=list)
    fresh_requests: list[str] = field(default_factory=list)
    email_changes: list[Any] = field(default_factory=list)
    rate_limited_emails: set[str] = field(default_factory=set)
    profile_updates: list[Any] = field(default_factory=list)

    def issue(self, purpose: int, business_id: str, mode: int, **kw: Any) -> str:
        token = f"cpt_{uuid.uuid4().hex}{uuid.uuid4().hex[:8]}"
        self.tokens[token] = FakeToken(purpose, business_id, mode, **kw)
        return token

    def start_session(self, token: FakeToken) -> tuple[str, portal_access_pb2.PortalSession]:
        secret = f"cps_{uuid.uuid4().hex}"
        kind = (
            portal_access_pb2.SESSION_KIND_UNIFIED
            if token.purpose == portal_access_pb2.TOKEN_PURPOSE_UNIFIED_SIGN_IN
            else portal_access_pb2.SESSION_KIND_BUSINESS
        )
        session = portal_access_pb2.PortalSession(
            session_id=f"ses_{uuid.uuid4().hex[:8]}",
            kind=kind,
            business_id=token.business_id,
            mode=token.mode,
            customer_id=token.customer_id,
            email=token.email,
            csrf_token=uuid.uuid4().hex,
        )
        session.absolute_expires_at.FromDatetime(datetime.now(UTC) + timedelta(hours=12))
        self.sessions[secret] = session
        return secret, session

    async def RequestSignInLink(self, request: Any, context: Any) -> Any:
        await self.auth._guard("RequestSignInLink", context)
        if request.email.strip().lower() in self.rate_limited_emails:
            await self.auth._fail(context, RateLimited("slow down"))
        await self._rule(context, "email", "INVALID_EMAIL", check_email, request.email)
        await self._next_path(context, request)
        self.sign_in_requests.append(request)
        return portal_access_pb2.RequestSignInLinkResponse()

    async def RequestUnifiedSignInLink(self, request: Any, context: Any) -> Any:
        await self.auth._guard("RequestUnifiedSignInLink", context)
        await self._rule(context, "email", "INVALID_EMAIL", check_email, request.email)
        self.sign_in_requests.append(request)
        return portal_access_pb2.RequestSignInLinkResponse()

    async def _next_path(self, context: Any, request: Any) -> None:
        await self._rule(
            context,
            "next_path",
            "INVALID_NEXT_PATH",
            check_next_path,
            request.next_path,
            request.business_id,
        )

    async def _rule(self, context: Any, field: str, reason: str, check: Any, *args: Any) -> Any:
        """Apply one of auth's shared field rules, refusing as auth does (reason + field)."""
        try:
            return check(*args)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError too
            await self.auth._fail(
                context, InvalidArgument(f"{field}: {exc}", reason=reason, field=field)
            )

    async def CreatePortalLink(self, request: Any, context: Any) -> Any:
        await self.auth._guard("CreatePortalLink", context)
        if not any(
            (c.business_id, c.mode, c.customer_id)
            == (request.business_id, request.mode, request.customer_id)
            for c in self.auth.customers
        ):
            await self.auth._fail(
                context, NotFound("no customer", reason=Reason.CUSTOMER_NOT_FOUND)
            )
        await self._rule(
            context, "return_url", "INVALID_RETURN_URL", check_http_url, request.return_url
        )
        await self._next_path(context, request)
        token = self.issue(
            portal_access_pb2.TOKEN_PURPOSE_MAGIC_LINK,
            request.business_id,
            request.mode,
            customer_id=request.customer_id,
            next_path=request.next_path,
        )
        base = (
            "http://localhost:8080/test"
            if request.mode == common_pb2.MODE_TEST
            else ("http://localhost:8080/live")
        )
        return portal_access_pb2.CreatePortalLinkResponse(link=f"{base}/link/{token}")

    async def DescribeToken(self, request: Any, context: Any) -> Any:
        await self.auth._guard("DescribeToken", context)
        token = self.tokens.get(request.token)
        if token is None:
            return portal_access_pb2.DescribeTokenResponse(
                state=portal_access_pb2.TOKEN_STATE_UNKNOWN
            )
        state = (
            portal_access_pb2.TOKEN_STATE_USED
            if token.used
            else portal_access_pb2.TOKEN_STATE_EXPIRED
            if token.expired
            else portal_access_pb2.TOKEN_STATE_VALID
        )
        return portal_access_pb2.DescribeTokenResponse(
            state=state, purpose=token.purpose, business_id=token.business_id, mode=token.mode
        )

    async def ConsumeToken(self, request: Any, context: Any) -> Any:
        await self.auth._guard("ConsumeToken", context)
        token = self.tokens.get(request.token)
        if (
            token is None
            or token.mode != request.mode
            or token.purpose == portal_access_pb2.TOKEN_PURPOSE_HANDOFF
        ):
            await self.auth._fail(context, NotFound("unknown token", reason=Reason.TOKEN_UNKNOWN))
        assert token is not None
        if token.used or token.expired:
            await self.auth._fail(context, FailedPrecondition("used", reason=Reason.TOKEN_USED))
        token.used = True
        secret, session = self.start_session(token)
        return portal_access_pb2.ConsumeTokenResponse(
            session=session, session_secret=secret, next_path=token.next_path
        )

    async def RequestFreshLink(self, request: Any, context: Any) -> Any:
        await self.auth._guard("RequestFreshLink", context)
        self.fresh_requests.append(request.token)
        return portal_access_pb2.RequestFreshLinkResponse()

    async def ResolveSession(self, request: Any, context: Any) -> Any:
        await self.auth._guard("ResolveSession", context)
        session = self.sessions.get(request.session_secret)
        if session is None:
            await self.auth._fail(
                context, Unauthenticated("no session", reason=Reason.SESSION_INVALID)
            )
        assert session is not None
        reply = portal_access_pb2.PortalSession()
        reply.CopyFrom(session)
        # Like auth: a business session carries its customer's current language.
        for c in self.auth.customers:
            if c.customer_id == session.customer_id:
                reply.customer_preferred_locale = c.preferred_locale
        return reply

    async def EndSession(self, request: Any, context: Any) -> Any:
        await self.auth._guard("EndSession", context)
        self.sessions.pop(request.session_secret, None)
        return portal_access_pb2.EndSessionResponse()

    async def ListUnifiedAccounts(self, request: Any, context: Any) -> Any:
        await self.auth._guard("ListUnifiedAccounts", context)
        session = self.sessions.get(request.session_secret)
        if session is None:
            await self.auth._fail(context, NotFound("no session"))
        assert session is not None
        accounts = [
            portal_access_pb2.UnifiedAccount(
                business=self.auth.businesses[c.business_id], customer=c
            )
            for c in self.auth.customers
            if c.email == session.email
            and c.mode == common_pb2.MODE_LIVE
            and c.business_id in self.auth.businesses
        ]
        return portal_access_pb2.ListUnifiedAccountsResponse(accounts=accounts)

    async def OpenBusinessFromUnified(self, request: Any, context: Any) -> Any:
        await self.auth._guard("OpenBusinessFromUnified", context)
        session = self.sessions.get(request.session_secret)
        if session is None or session.kind != portal_access_pb2.SESSION_KIND_UNIFIED:
            await self.auth._fail(context, Unauthenticated("not a unified session"))
        assert session is not None
        if len(request.browser_binding) < 32:
            await self.auth._fail(context, InvalidArgument("no browser binding"))
        for c in self.auth.customers:
            if (c.email, c.business_id, c.mode) == (
                session.email,
                request.business_id,
                common_pb2.MODE_LIVE,
            ):
                token = self.issue(
                    portal_access_pb2.TOKEN_PURPOSE_HANDOFF,
                    c.business_id,
                    common_pb2.MODE_LIVE,
                    customer_id=c.customer_id,
                    unified_session_id=session.session_id,
                    browser_binding=request.browser_binding,
                )
                return portal_access_pb2.OpenBusinessFromUnifiedResponse(
                    handoff_token=token,
                    handoff_link=f"http://localhost:8080/live/handoff/{token}",
                    business_id=c.business_id,
                )
        await self.auth._fail(context, NotFound("not yours"))

    async def ConsumeHandoffToken(self, request: Any, context: Any) -> Any:
        await self.auth._guard("ConsumeHandoffToken", context)
        token = self.tokens.get(request.token)
        if (
            token is None
            or token.mode != request.mode
            or token.purpose != portal_access_pb2.TOKEN_PURPOSE_HANDOFF
        ):
            await self.auth._fail(context, NotFound("unknown token", reason=Reason.TOKEN_UNKNOWN))
        assert token is not None
        if token.expired:
            await self.auth._fail(
                context, FailedPrecondition("expired", reason=Reason.TOKEN_EXPIRED)
            )
        if token.used:
            await self.auth._fail(context, FailedPrecondition("used", reason=Reason.TOKEN_USED))
        token.used = True
        if not request.browser_binding or request.browser_binding != token.browser_binding:
            # Another browser: spent, and nobody signed in.
            await self.auth._fail(context, NotFound("other browser", reason=Reason.TOKEN_UNKNOWN))
        secret, session = self.start_session(token)
        session.unified_session_id = token.unified_session_id
        return portal_access_pb2.ConsumeTokenResponse(
            session=session, session_secret=secret, next_path=f"/b/{token.business_id}/"
        )

    def _customer(self, business_id: str, mode: int, customer_id: str) -> auth_pb2.Customer:
        for c in self.auth.customers:
            if (c.business_id, c.mode, c.customer_id) == (business_id, mode, customer_id):
                return c
        raise KeyError(customer_id)

    async def UpdateProfile(self, request: Any, context: Any) -> Any:
        await self.auth._guard("UpdateProfile", context)
        try:
            customer = self._customer(request.business_id, request.mode, request.customer_id)
        except KeyError:
            await self.auth._fail(context, NotFound("no customer"))
            raise
        if request.HasField("name"):
            await self._rule(context, "name", "INVALID_NAME", _NAME.validate_python, request.name)
        if request.HasField("phone_number"):
            phone = await self._rule(
                context,
                "phone_number",
                "INVALID_PHONE_NUMBER",
                check_phone_number,
                request.phone_number,
            )
            request.phone_number = phone or ""
        self.profile_updates.append(request)
        if request.HasField("email"):
            if any(
                c.email == request.email.lower() and c.customer_id != customer.customer_id
                for c in self.auth.customers
                if (c.business_id, c.mode) == (customer.business_id, customer.mode)
            ):
                await self.auth._fail(
                    context, AlreadyExists("email taken", reason=Reason.EMAIL_TAKEN)
                )
            customer.email = request.email.lower()
        if request.HasField("name"):
            customer.name = request.name
        if request.HasField("phone_number"):
            customer.phone_number = request.phone_number
        if request.HasField("metadata"):
            customer.metadata.clear()
            customer.metadata.update(request.metadata.values)
        if request.HasField("preferred_locale"):
            customer.preferred_locale = request.preferred_locale
        return customer

    async def UpdateBillingDetails(self, request: Any, context: Any) -> Any:
        """Auth's own rule (python-stdnum), so a page test sees a real refusal."""
        await self.auth._guard("UpdateBillingDetails", context)
        try:
            customer = self._customer(request.business_id, request.mode, request.customer_id)
        except KeyError:
            await self.auth._fail(context, NotFound("no customer"))
            raise
        typed = request.billing_details
        try:
            checked = check_billing_details(
                **{
                    name: getattr(typed, name)
                    for name in auth_pb2.CustomerBillingDetails.DESCRIPTOR.fields_by_name
                }
            )
        except BillingDetailsError as exc:
            await self.auth._fail(context, InvalidArgument(str(exc), field=exc.field))
            raise
        customer.billing_details.CopyFrom(auth_pb2.CustomerBillingDetails(**checked.model_dump()))
        return customer

    async def RequestEmailChange(self, request: Any, context: Any) -> Any:
        await self.auth._guard("RequestEmailChange", context)
        customer = self._customer(request.business_id, request.mode, request.customer_id)
        if request.new_email.strip().lower() == customer.email.lower():
            await self.auth._fail(
                context,
                InvalidArgument(
                    "new_email: already", reason=Reason.EMAIL_UNCHANGED, field="new_email"
                ),
            )
        self.email_changes.append(request)
        self.issue(
            portal_access_pb2.TOKEN_PURPOSE_EMAIL_CHANGE,
            request.business_id,
            request.mode,
            customer_id=request.customer_id,
            new_email=request.new_email,
        )
        return portal_access_pb2.RequestEmailChangeResponse()

    async def ConfirmEmailChange(self, request: Any, context: Any) -> Any:
        await self.auth._guard("ConfirmEmailChange", context)
        token = self.tokens[request.token]
        token.used = True
        customer = self._customer(token.business_id, token.mode, token.customer_id)
        customer.email = token.new_email
        for secret in list(self.sessions):
            if (
                self.sessions[secret].customer_id == customer.customer_id
                and secret != request.keep_session_secret
            ):
                del self.sessions[secret]
        return customer


@pytest.fixture
async def fake_auth() -> AsyncIterator[tuple[FakeAuth, int]]:
    fake = FakeAuth()
    server = grpc.aio.server()
    auth_pb2_grpc.add_AuthServiceServicer_to_server(fake, server)
    fake.portal = FakePortal(fake)  # type: ignore[attr-defined]
    portal_access_pb2_grpc.add_PortalAccessServiceServicer_to_server(
        fake.portal,  # type: ignore[attr-defined]
        server,
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield fake, port
    finally:
        await server.stop(None)


def settings_for(auth_port: int, **overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "auth_target": f"127.0.0.1:{auth_port}",
        "http_port": 0,
        "ops_port": 0,
        "backend_timeout_seconds": 2.0,
    }
    return GatewaySettings(**(values | overrides))


@pytest.fixture
async def gateway(
    fake_auth: tuple[FakeAuth, int],
) -> AsyncIterator[tuple[TestClient[Any, Any], FakeAuth]]:
    fake, port = fake_auth
    app = create_app(settings_for(port))
    async with TestClient(TestServer(app)) as client:
        yield client, fake


@contextlib.asynccontextmanager
async def auth_and_gateway(
    mongo_url: str,
    broker: BrokerNamespace,
    *,
    auth: dict[str, Any] | None = None,
    gateway: dict[str, Any] | None = None,
) -> AsyncIterator[tuple[RunningService[AuthRuntime], GatewayRuntime]]:
    """The real auth (kit ``running_service``) and a gateway in front of it, on free ports."""
    async with running_service(
        create_auth,
        AuthSettings,
        mongo_url=mongo_url,
        broker=broker,
        shutdown_grace_seconds=2,
        **(auth or {}),
    ) as auth_service:
        runtime = GatewayRuntime(
            GatewaySettings(
                auth_target=auth_service.grpc_target,
                http_port=0,
                ops_port=0,
                shutdown_grace_seconds=2,
                **(gateway or {}),
            )
        )
        await runtime.start()
        try:
            yield auth_service, runtime
        finally:
            await runtime.stop()
