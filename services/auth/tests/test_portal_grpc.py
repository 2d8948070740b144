"""Integration tests of PortalAccessService over gRPC: real auth runtime, SecantusDB,
RabbitMQ, and a recording stand-in for notifications' EmailService (see conftest)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import grpc
import pytest
from billing.auth.v1 import auth_pb2, portal_access_pb2
from billing.common.v1 import common_pb2, test_clock_pb2
from billing.notifications.v1 import email_pb2
from billing_kit.audit import Actor, audit_trail
from billing_kit.outbox import OUTBOX_COLLECTION
from billing_kit.testing import BrokerNamespace, eventually, tap_exchange

from .conftest import reason, rpc_error

pytestmark = pytest.mark.integration

TEST = common_pb2.MODE_TEST
LIVE = common_pb2.MODE_LIVE
TEST_BASE = "https://portal.example.test/test"
LIVE_BASE = "https://portal.example.test/live"
UNIFIED_BASE = "https://portal.example.test/all"
pb = portal_access_pb2


def unique_email(name: str = "mario") -> str:
    return f"{name}.{uuid.uuid4().hex[:10]}@example.test"


def client_key() -> str:
    return f"client-{uuid.uuid4().hex}"


async def new_business(auth: Any, name: str = "Acme", **fields: Any) -> auth_pb2.Business:
    business: auth_pb2.Business = await auth.stub.CreateBusiness(
        auth_pb2.CreateBusinessRequest(name=name, **fields)
    )
    return business


async def new_customer(
    auth: Any, business_id: str, email: str, mode: int = TEST, name: str = "Mario Rossi"
) -> auth_pb2.Customer:
    response = await auth.stub.CreateCustomer(
        auth_pb2.CreateCustomerRequest(business_id=business_id, mode=mode, email=email, name=name)
    )
    customer: auth_pb2.Customer = response.customer
    return customer


async def email_to(
    auth: Any, address: str, template: int, count: int = 1
) -> email_pb2.SendEmailRequest:
    """Wait until ``count`` emails of ``template`` reached ``address``; return the last."""

    def matching() -> list[email_pb2.SendEmailRequest]:
        return [e for e in auth.emails.to(address) if e.template == template]

    found = await eventually(lambda: len(matching()) >= count, within=10)
    assert found
    return matching()[-1]


def token_of(link: str) -> str:
    token = link.rsplit("/", 1)[1]
    assert token.startswith("cpt_")
    return token


async def magic_link(auth: Any, customer: auth_pb2.Customer, **fields: Any) -> str:
    response = await auth.portal.CreatePortalLink(
        pb.CreatePortalLinkRequest(
            business_id=customer.business_id,
            mode=customer.mode,
            customer_id=customer.customer_id,
            **fields,
        )
    )
    link: str = response.link
    return link


async def signed_in(auth: Any, customer: auth_pb2.Customer) -> pb.ConsumeTokenResponse:
    link = await magic_link(auth, customer)
    response: pb.ConsumeTokenResponse = await auth.portal.ConsumeToken(
        pb.ConsumeTokenRequest(token=token_of(link), mode=customer.mode)
    )
    return response


async def advance(auth: Any, seconds: int) -> None:
    await auth.clock.AdvanceClock(test_clock_pb2.AdvanceClockRequest(seconds=seconds))


class TestStaticLink:
    async def test_known_email_gets_a_one_time_link_unknown_gets_a_notice_same_answer(
        self, auth: Any
    ) -> None:
        business = await new_business(
            auth,
            name="Pizzeria",
            branding=auth_pb2.Branding(primary_color="#AA0000"),
            locale="it",
        )
        known = unique_email()
        customer = await new_customer(auth, business.business_id, known)
        unknown = unique_email("stranger")

        known_answer = await auth.portal.RequestSignInLink(
            pb.RequestSignInLinkRequest(
                business_id=business.business_id,
                mode=TEST,
                email=f"  {known.upper()} ",
                client_key=client_key(),
            )
        )
        unknown_answer = await auth.portal.RequestSignInLink(
            pb.RequestSignInLinkRequest(
                business_id=business.business_id,
                mode=TEST,
                email=unknown,
                client_key=client_key(),
            )
        )
        assert known_answer.SerializeToString() == unknown_answer.SerializeToString() == b""

        sign_in = await email_to(auth, known, email_pb2.EMAIL_TEMPLATE_SIGN_IN_LINK)
        assert sign_in.to == customer.email
        assert sign_in.link.startswith(f"{TEST_BASE}/link/cpt_")
        assert sign_in.link_expires_minutes == 15
        assert sign_in.locale == "it"  # the business's language when the request named none
        assert sign_in.branding.business_name == "Pizzeria"
        assert sign_in.branding.primary_color == "#AA0000"

        notice = await email_to(auth, unknown, email_pb2.EMAIL_TEMPLATE_NO_ACCOUNT_FOUND)
        assert notice.link == ""
        assert notice.business_id == business.business_id

        # Only the hash is stored; the link's token appears nowhere in the database.
        token = token_of(sign_in.link)
        stored = await auth.db.portal_tokens.find_one({"customer_id": customer.customer_id})
        assert stored is not None and token not in json.dumps(stored, default=str)
        assert (stored["expires_at"] - stored["created_at"]).total_seconds() == 15 * 60

        # The link opens the customer's portal once.
        started = await auth.portal.ConsumeToken(pb.ConsumeTokenRequest(token=token, mode=TEST))
        assert started.session.customer_id == customer.customer_id
        assert started.next_path == f"/b/{business.business_id}/"

    async def test_unknown_business_and_bad_email_are_refused(self, auth: Any) -> None:
        err = await rpc_error(
            auth.portal.RequestSignInLink(
                pb.RequestSignInLinkRequest(business_id="bus_nope", mode=TEST, email=unique_email())
            )
        )
        assert err.code() == grpc.StatusCode.NOT_FOUND
        business = await new_business(auth)
        err = await rpc_error(
            auth.portal.RequestSignInLink(
                pb.RequestSignInLinkRequest(
                    business_id=business.business_id, mode=TEST, email="not-an-email"
                )
            )
        )
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT

    async def test_the_email_request_is_stored_with_its_token_and_the_link_sealed(
        self, auth: Any
    ) -> None:
        business = await new_business(auth)
        known = unique_email()
        await new_customer(auth, business.business_id, known)
        auth.emails.down = True  # notifications unreachable: nothing changes for the visitor
        try:
            answer = await auth.portal.RequestSignInLink(
                pb.RequestSignInLinkRequest(
                    business_id=business.business_id, mode=TEST, email=known
                )
            )
        finally:
            auth.emails.down = False
        assert answer == pb.RequestSignInLinkResponse()
        sent = await email_to(auth, known, email_pb2.EMAIL_TEMPLATE_SIGN_IN_LINK)
        token = token_of(sent.link)
        # The outbox row is the durable request: keyed by the token id, link sealed.
        row = await auth.db.outbox.find_one(
            {"type": "email.requested", "event.subject": sent.idempotency_key}
        )
        assert row is not None
        assert sent.idempotency_key.startswith("ptk_")  # the token id: stable for this email
        assert token not in json.dumps(row, default=str)
        assert row["event"]["data"]["sealed_link"]
        await auth.portal.ConsumeToken(pb.ConsumeTokenRequest(token=token, mode=TEST))


class TestRateLimits:
    async def test_a_burst_for_one_email_is_limited_while_other_emails_pass(
        self, auth: Any
    ) -> None:
        business = await new_business(auth)
        target = unique_email()
        await new_customer(auth, business.business_id, target)
        client = client_key()

        async def request(email: str, client: str) -> Any:
            return await auth.portal.RequestSignInLink(
                pb.RequestSignInLinkRequest(
                    business_id=business.business_id, mode=TEST, email=email, client_key=client
                )
            )

        for _ in range(auth.settings.rate_limit_per_email):
            # Case and spaces do not make a different email.
            await request(f" {target.upper()}", client_key())
        err = await rpc_error(request(target, client))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert reason(err) == "RATE_LIMITED"
        # Another email from the same client still works.
        await request(unique_email(), client)
        # Only the allowed requests sent links.
        await eventually(lambda: len(auth.emails.to(target)) == auth.settings.rate_limit_per_email)

    async def test_one_client_is_limited_across_emails(self, auth: Any) -> None:
        business = await new_business(auth)
        client = client_key()
        for _ in range(auth.settings.rate_limit_per_client):
            await auth.portal.RequestSignInLink(
                pb.RequestSignInLinkRequest(
                    business_id=business.business_id,
                    mode=TEST,
                    email=unique_email(),
                    client_key=client,
                )
            )
        err = await rpc_error(
            auth.portal.RequestSignInLink(
                pb.RequestSignInLinkRequest(
                    business_id=business.business_id,
                    mode=TEST,
                    email=unique_email(),
                    client_key=client,
                )
            )
        )
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    async def test_the_window_passes(self, auth: Any) -> None:
        business = await new_business(auth)
        target = unique_email()
        for _ in range(auth.settings.rate_limit_per_email):
            await auth.portal.RequestSignInLink(
                pb.RequestSignInLinkRequest(
                    business_id=business.business_id, mode=TEST, email=target
                )
            )
        request = pb.RequestSignInLinkRequest(
            business_id=business.business_id, mode=TEST, email=target
        )
        assert (await rpc_error(auth.portal.RequestSignInLink(request))).code() == (
            grpc.StatusCode.RESOURCE_EXHAUSTED
        )
        await advance(auth, auth.settings.rate_limit_window_seconds)
        await auth.portal.RequestSignInLink(request)


class TestMagicLinks:
    async def test_link_with_return_url_and_deep_link(self, auth: Any) -> None:
        business = await new_business(auth, default_return_url="https://acme.test/account")
        customer = await new_customer(auth, business.business_id, unique_email(), mode=LIVE)
        next_path = f"/b/{business.business_id}/subscriptions/sub_1/payment-method"
        response = await auth.portal.CreatePortalLink(
            pb.CreatePortalLinkRequest(
                business_id=business.business_id,
                mode=LIVE,
                customer_id=customer.customer_id,
                return_url="https://acme.test/thanks",
                next_path=next_path,
            )
        )
        assert response.link.startswith(f"{LIVE_BASE}/link/cpt_")
        assert response.static_link == f"{LIVE_BASE}/login/{business.business_id}"
        lifetime = (
            response.expires_at.ToDatetime()
            - (await auth.clock.GetClock(test_clock_pb2.GetClockRequest())).now.ToDatetime()
        )
        assert 23.9 * 3600 < lifetime.total_seconds() <= 24 * 3600
        assert auth.emails.to(customer.email) == []  # send_email not asked

        described = await auth.portal.DescribeToken(
            pb.DescribeTokenRequest(token=token_of(response.link))
        )
        assert described.state == pb.TOKEN_STATE_VALID
        assert described.purpose == pb.TOKEN_PURPOSE_MAGIC_LINK
        assert described.mode == LIVE
        started = await auth.portal.ConsumeToken(
            pb.ConsumeTokenRequest(token=token_of(response.link), mode=LIVE)
        )
        assert started.next_path == next_path
        assert started.session.return_url == "https://acme.test/thanks"
        assert started.session.kind == pb.SESSION_KIND_BUSINESS
        assert started.session_secret.startswith("cps_")

        # Without return_url the business default shows.
        plain = await signed_in(auth, customer)
        assert plain.session.return_url == "https://acme.test/account"

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("return_url", "javascript:alert(1)"),
            ("return_url", "ftp://acme.test/"),
            ("next_path", "//evil.test/"),
            ("next_path", "https://evil.test/"),
            ("next_path", "/b/bus_other/"),
        ],
    )
    async def test_bad_return_url_or_next_is_refused_and_nothing_is_written(
        self, auth: Any, field: str, value: str
    ) -> None:
        business = await new_business(auth)
        customer = await new_customer(auth, business.business_id, unique_email())
        err = await rpc_error(
            auth.portal.CreatePortalLink(
                pb.CreatePortalLinkRequest(
                    business_id=business.business_id,
                    mode=TEST,
                    customer_id=customer.customer_id,
                    **{field: value},
                )
            )
        )
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in (err.details() or "")
        assert (
            await auth.db.portal_tokens.count_documents({"customer_id": customer.customer_id}) == 0
        )

    async def test_other_business_or_mode_customer_is_not_found(self, auth: Any) -> None:
        business = await new_business(auth)
        other = await new_business(auth, name="Other")
        customer = await new_customer(auth, business.business_id, unique_email())
        for business_id, mode in ((other.business_id, TEST), (business.business_id, LIVE)):
            err = await rpc_error(
                auth.portal.CreatePortalLink(
                    pb.CreatePortalLinkRequest(
                        business_id=business_id, mode=mode, customer_id=customer.customer_id
                    )
                )
            )
            assert err.code() == grpc.StatusCode.NOT_FOUND

    async def test_send_email_answers_once_queued_even_with_notifications_down(
        self, auth: Any
    ) -> None:
        business = await new_business(auth, name="Acme Mail")
        customer = await new_customer(auth, business.business_id, unique_email())
        link = await magic_link(auth, customer, send_email=True)
        sent = await email_to(auth, customer.email, email_pb2.EMAIL_TEMPLATE_PORTAL_LINK)
        assert sent.link == link
        assert sent.link_expires_minutes == 24 * 60

        auth.emails.down = True
        try:
            second = await magic_link(auth, customer, send_email=True)
        finally:
            auth.emails.down = False
        # Queued durably: the email is requested and its link works.
        again = await email_to(auth, customer.email, email_pb2.EMAIL_TEMPLATE_PORTAL_LINK, 2)
        assert again.link == second
        await auth.portal.ConsumeToken(pb.ConsumeTokenRequest(token=token_of(second), mode=TEST))

    async def test_a_recipient_refused_for_good_is_invalid_and_revokes_the_link(
        self, auth: Any
    ) -> None:
        business = await new_business(auth, name="Acme Bounce")
        customer = await new_customer(auth, business.business_id, unique_email())
        auth.emails.outcome = email_pb2.EMAIL_OUTCOME_REJECTED
        try:
            err = await rpc_error(
                auth.portal.CreatePortalLink(
                    pb.CreatePortalLinkRequest(
                        business_id=business.business_id,
                        mode=TEST,
                        customer_id=customer.customer_id,
                        send_email=True,
                    )
                )
            )
        finally:
            auth.emails.outcome = email_pb2.EMAIL_OUTCOME_PENDING
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert reason(err) == "EMAIL_RECIPIENT_REJECTED"
        # The link the relay refused is not valid any more.
        sent = await email_to(auth, customer.email, email_pb2.EMAIL_TEMPLATE_PORTAL_LINK)
        asked = auth.emails.outcome_requests[-1]
        assert asked.idempotency_key == sent.idempotency_key
        err = await rpc_error(
            auth.portal.ConsumeToken(pb.ConsumeTokenRequest(token=token_of(sent.link), mode=TEST))
        )
        assert err.code() == grpc.StatusCode.NOT_FOUND


class TestConsumingLinks:
    async def test_twenty_concurrent_consumes_start_exactly_one_session(self, auth: Any) -> None:
        business = await new_business(auth)
        customer = await new_customer(auth, business.business_id, unique_email())
        token = token_of(await magic_link(auth, customer))
        results = await asyncio.gather(
            *(
                auth.portal.ConsumeToken(pb.ConsumeTokenRequest(token=token, mode=TEST))
                for _ in range(20)
            ),
            return_exceptions=True,
        )
        winners = [r for r in results if isinstance(r, pb.ConsumeTokenResponse)]
        losers = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
        assert len(winners) == 1 and len(losers) == 19
        assert {reason(e) for e in losers} == {"TOKEN_USED"}
        assert (
            await auth.db.portal_sessions.count_documents({"customer_id": customer.customer_id})
            == 1
        )

    async def test_used_link_says_so_and_a_fresh_link_goes_to_the_address_on_file(
        self, auth: Any
    ) -> None:
        business = await new_business(auth)
        customer = await new_customer(auth, business.business_id, unique_email())
        next_path = f"/b/{business.business_id}/invoices"
        token = token_of(await magic_link(auth, customer, next_path=next_path))
        await auth.portal.ConsumeToken(pb.ConsumeTokenRequest(token=token, mode=TEST))
        err = await rpc_error(
            auth.portal.ConsumeToken(pb.ConsumeTokenRequest(token=token, mode=TEST))
        )
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason(err) == "TOKEN_USED"
        described = await auth.portal.DescribeToken(pb.DescribeTokenRequest(token=token))
        assert described.state == pb.TOKEN_STATE_USED

        await auth.portal.RequestFreshLink(
            pb.RequestFreshLinkRequest(token=token, client_key=client_key(), locale="it")
        )
        fresh = await email_to(auth, customer.email, email_pb2.EMAIL_TEMPLATE_SIGN_IN_LINK)
        assert fresh.locale == "it"
        started = await auth.portal.ConsumeToken(
            pb.ConsumeTokenRequest(token=token_of(fresh.link), mode=TEST)
        )
        assert started.session.customer_id == customer.customer_id
        assert started.next_path == next_path  # the deep link survives

    async def test_expired_link_after_time_moves_and_fresh_link_works(self, auth: Any) -> None:
        business = await new_business(auth)
        address = unique_email()
        customer = await new_customer(auth, business.business_id, address)
        await auth.portal.RequestSignInLink(
            pb.RequestSignInLinkRequest(business_id=business.business_id, mode=TEST, email=address)
        )
        sent = await email_to(auth, address, email_pb2.EMAIL_TEMPLATE_SIGN_IN_LINK)
        token = token_of(sent.link)
        await advance(auth, 15 * 60 + 1)
        described = await auth.portal.DescribeToken(pb.DescribeTokenRequest(token=token))
        assert described.state == pb.TOKEN_STATE_EXPIRED
        err = await rpc_error(
            auth.portal.ConsumeToken(pb.ConsumeTokenRequest(token=token, mode=TEST))
        )
        assert reason(err) == "TOKEN_EXPIRED"

        await auth.portal.RequestFreshLink(pb.RequestFreshLinkRequest(token=token))
        fresh = await email_to(auth, address, email_pb2.EMAIL_TEMPLATE_SIGN_IN_LINK, count=2)
        assert fresh.link != sent.link
        started = await auth.portal.ConsumeToken(
            pb.ConsumeTokenRequest(token=token_of(fresh.link), mode=TEST)
        )
        assert started.session.customer_id == customer.customer_id

    async def test_a_test_mode_link_is_unknown_under_live_and_stays_usable(self, auth: Any) -> None:
        business = await new_business(auth)
        customer = await new_customer(auth, business.business_id, unique_email(), mode=TEST)
        token = token_of(await magic_link(auth, customer))
        err = await rpc_error(
            auth.portal.ConsumeToken(pb.ConsumeTokenRequest(token=token, mode=LIVE))
        )
        assert err.code() == grpc.StatusCode.NOT_FOUND
        assert reason(err) == "TOKEN_UNKNOWN"
        started = await auth.portal.ConsumeToken(pb.ConsumeTokenRequest(token=token, mode=TEST))
        assert started.session.mode == TEST

    @pytest.mark.parametrize("token", ["", "garbage", "cpt_" + "A" * 43, "cps_abc"])
    async def test_unknown_tokens(self, auth: Any, token: str) -> None:
        described = await auth.portal.DescribeToken(pb.DescribeTokenRequest(token=token))
        assert described.state == pb.TOKEN_STATE_UNKNOWN and described.business_id == ""
        err = await rpc_error(
            auth.portal.ConsumeToken(pb.ConsumeTokenRequest(token=token, mode=TEST))
        )
        assert reason(err) == "TOKEN_UNKNOWN"
        # Asking for a fresh link for it answers the same and sends nothing.
        before = len(auth.emails.sent)
        await auth.portal.RequestFreshLink(pb.RequestFreshLinkRequest(token=token))
        assert len(auth.emails.sent) == before


class TestSessions:
    async def test_resolve_end_and_csrf(self, auth: Any) -> None:
        business = await new_business(auth)
        customer = await new_customer(auth, business.business_id, unique_email())
        started = await signed_in(auth, customer)
        resolved = await auth.portal.ResolveSession(
            pb.ResolveSessionRequest(session_secret=started.session_secret)
        )
        assert resolved.session_id == started.session.session_id
        assert resolved.business_id == business.business_id
        assert resolved.customer_id == customer.customer_id
        assert len(resolved.csrf_token) >= 32 and resolved.csrf_token == started.session.csrf_token
        stored = await auth.db.portal_sessions.find_one({"_id": resolved.session_id})
        assert stored is not None and started.session_secret not in json.dumps(stored, default=str)

        await auth.portal.EndSession(pb.EndSessionRequest(session_secret=started.session_secret))
        err = await rpc_error(
            auth.portal.ResolveSession(
                pb.ResolveSessionRequest(session_secret=started.session_secret)
            )
        )
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        # Ending again (or an unknown secret) is harmless.
        await auth.portal.EndSession(pb.EndSessionRequest(session_secret=started.session_secret))
        await auth.portal.EndSession(pb.EndSessionRequest(session_secret="cps_unknown"))

    async def test_idle_timeout(self, auth: Any) -> None:
        business = await new_business(auth)
        customer = await new_customer(auth, business.business_id, unique_email())
        started = await signed_in(auth, customer)
        request = pb.ResolveSessionRequest(session_secret=started.session_secret)
        await advance(auth, 50 * 60)
        await auth.portal.ResolveSession(request)  # use keeps it alive ...
        await advance(auth, 50 * 60)
        await auth.portal.ResolveSession(request)
        await advance(auth, 60 * 60 + 1)  # ... an hour without use ends it
        err = await rpc_error(auth.portal.ResolveSession(request))
        assert reason(err) == "SESSION_INVALID"

    async def test_absolute_timeout_even_when_used(self, auth: Any) -> None:
        business = await new_business(auth)
        customer = await new_customer(auth, business.business_id, unique_email())
        started = await signed_in(auth, customer)
        request = pb.ResolveSessionRequest(session_secret=started.session_secret)
        absolute = started.session.absolute_expires_at.ToDatetime()
        for _ in range(14):  # 14 x 50 min = 11 h 40 min, used all along
            await advance(auth, 50 * 60)
            resolved = await auth.portal.ResolveSession(request)
            assert resolved.idle_expires_at.ToDatetime() <= absolute
        await advance(auth, 21 * 60)  # 12 h 01 min after sign-in
        err = await rpc_error(auth.portal.ResolveSession(request))
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED

    async def test_the_idle_deadline_is_written_only_when_it_moves_a_minute(
        self, auth: Any
    ) -> None:
        business = await new_business(auth)
        customer = await new_customer(auth, business.business_id, unique_email())
        started = await signed_in(auth, customer)
        request = pb.ResolveSessionRequest(session_secret=started.session_secret)
        sessions = auth.db.portal_sessions
        stored = await sessions.find_one({"_id": started.session.session_id})
        await advance(auth, 30)
        resolved = await auth.portal.ResolveSession(request)
        # Used 30 s after sign-in: nothing written, the deadline it answers is the stored one.
        assert await sessions.find_one({"_id": started.session.session_id}) == stored
        assert resolved.idle_expires_at == started.session.idle_expires_at
        await advance(auth, 31)
        resolved = await auth.portal.ResolveSession(request)
        moved = await sessions.find_one({"_id": started.session.session_id})
        assert moved["idle_expires_at"] > stored["idle_expires_at"]
        assert moved["last_seen_at"] > stored["last_seen_at"]
        assert resolved.idle_expires_at.ToDatetime() > started.session.idle_expires_at.ToDatetime()
        # Used within the minute after that write, then idle: valid for 59 more minutes ...
        await advance(auth, 50)
        await auth.portal.ResolveSession(request)
        await advance(auth, 59 * 60 - 50)
        await auth.portal.ResolveSession(request)
        # ... and an hour without use still ends it.
        await advance(auth, 60 * 60 + 1)
        err = await rpc_error(auth.portal.ResolveSession(request))
        assert reason(err) == "SESSION_INVALID"


class TestUnifiedPortal:
    async def test_one_email_sees_its_live_businesses_and_nothing_else(self, auth: Any) -> None:
        address = unique_email("anna")
        first = await new_business(auth, name="Bakery")
        second = await new_business(auth, name="Atelier")
        third = await new_business(auth, name="Elsewhere")
        c1 = await new_customer(auth, first.business_id, address, mode=LIVE, name="Anna")
        c2 = await new_customer(auth, second.business_id, address.upper(), mode=LIVE, name="Anna")
        await new_customer(auth, third.business_id, address, mode=TEST)  # test mode: not shown
        await new_customer(auth, third.business_id, unique_email("other"), mode=LIVE)

        await auth.portal.RequestUnifiedSignInLink(
            pb.RequestUnifiedSignInLinkRequest(email=f" {address} ", client_key=client_key())
        )
        sent = await email_to(auth, address, email_pb2.EMAIL_TEMPLATE_UNIFIED_SIGN_IN_LINK)
        assert sent.link.startswith(f"{UNIFIED_BASE}/link/cpt_")
        token = token_of(sent.link)
        # Unified links are live-only.
        err = await rpc_error(
            auth.portal.ConsumeToken(pb.ConsumeTokenRequest(token=token, mode=TEST))
        )
        assert reason(err) == "TOKEN_UNKNOWN"
        unified = await auth.portal.ConsumeToken(pb.ConsumeTokenRequest(token=token, mode=LIVE))
        assert unified.session.kind == pb.SESSION_KIND_UNIFIED
        assert unified.next_path == "/"

        accounts = await auth.portal.ListUnifiedAccounts(
            pb.ListUnifiedAccountsRequest(session_secret=unified.session_secret)
        )
        assert [(a.business.name, a.customer.customer_id) for a in accounts.accounts] == [
            ("Atelier", c2.customer_id),
            ("Bakery", c1.customer_id),
        ]

        handoff = await auth.portal.OpenBusinessFromUnified(
            pb.OpenBusinessFromUnifiedRequest(
                session_secret=unified.session_secret,
                business_id=first.business_id,
                browser_binding=BROWSER,
            )
        )
        opened = await auth.portal.ConsumeHandoffToken(
            pb.ConsumeHandoffTokenRequest(
                token=handoff.handoff_token, mode=LIVE, browser_binding=BROWSER
            )
        )
        assert opened.session.kind == pb.SESSION_KIND_BUSINESS
        assert opened.session.customer_id == c1.customer_id
        assert opened.session.mode == LIVE
        assert opened.session.unified_session_id == unified.session.session_id
        assert opened.next_path == f"/b/{first.business_id}/"

        err = await rpc_error(
            auth.portal.OpenBusinessFromUnified(
                pb.OpenBusinessFromUnifiedRequest(
                    session_secret=unified.session_secret,
                    business_id=third.business_id,
                    browser_binding=BROWSER,
                )
            )
        )
        assert err.code() == grpc.StatusCode.NOT_FOUND
        # A business session cannot list or open anything.
        err = await rpc_error(
            auth.portal.ListUnifiedAccounts(
                pb.ListUnifiedAccountsRequest(session_secret=opened.session_secret)
            )
        )
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED

        # Signing out of the unified portal signs out of what it opened.
        await auth.portal.EndSession(pb.EndSessionRequest(session_secret=unified.session_secret))
        err = await rpc_error(
            auth.portal.ResolveSession(
                pb.ResolveSessionRequest(session_secret=opened.session_secret)
            )
        )
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED

    async def test_a_business_settings_change_shows_on_the_next_unified_page(
        self, auth: Any
    ) -> None:
        address = unique_email("carla")
        business = await new_business(auth, name="Cached")
        await new_customer(auth, business.business_id, address, mode=LIVE)
        unified = await unified_session(auth, address)
        request = pb.ListUnifiedAccountsRequest(session_secret=unified.session_secret)
        [before] = (await auth.portal.ListUnifiedAccounts(request)).accounts
        assert before.business.portal_settings.allow_cancel
        # The businesses of unified pages are kept briefly; a change must not wait for that.
        await auth.stub.UpdateBusiness(
            auth_pb2.UpdateBusinessRequest(
                business_id=business.business_id, actor="portalctl", allow_cancel=False
            )
        )
        [after] = (await auth.portal.ListUnifiedAccounts(request)).accounts
        assert not after.business.portal_settings.allow_cancel
        assert after.business.name == "Cached"

    async def test_unknown_email_gets_the_same_answer_and_a_notice_without_link(
        self, auth: Any
    ) -> None:
        address = unique_email("nobody")
        answer = await auth.portal.RequestUnifiedSignInLink(
            pb.RequestUnifiedSignInLinkRequest(email=address, client_key=client_key())
        )
        assert answer == pb.RequestSignInLinkResponse()
        notice = await email_to(auth, address, email_pb2.EMAIL_TEMPLATE_UNIFIED_NO_ACCOUNT_FOUND)
        assert len(auth.emails.to(address)) == 1
        assert notice.template == email_pb2.EMAIL_TEMPLATE_UNIFIED_NO_ACCOUNT_FOUND
        assert notice.link == ""


async def unified_session(auth: Any, address: str) -> pb.ConsumeTokenResponse:
    """Sign in to the unified portal with ``address`` (a live customer somewhere)."""
    await auth.portal.RequestUnifiedSignInLink(
        pb.RequestUnifiedSignInLinkRequest(email=address, client_key=client_key())
    )
    sent = await email_to(auth, address, email_pb2.EMAIL_TEMPLATE_UNIFIED_SIGN_IN_LINK)
    response: pb.ConsumeTokenResponse = await auth.portal.ConsumeToken(
        pb.ConsumeTokenRequest(token=token_of(sent.link), mode=LIVE)
    )
    return response


# The live site's cookie value in the browser that pressed "Open" (any 32+ URL-safe chars).
BROWSER = "this-browser-" + "b" * 40
OTHER_BROWSER = "other-browser-" + "o" * 40


async def open_from_unified(
    auth: Any, unified: pb.ConsumeTokenResponse, business_id: str, binding: str = BROWSER
) -> pb.OpenBusinessFromUnifiedResponse:
    response: pb.OpenBusinessFromUnifiedResponse = await auth.portal.OpenBusinessFromUnified(
        pb.OpenBusinessFromUnifiedRequest(
            session_secret=unified.session_secret,
            business_id=business_id,
            browser_binding=binding,
        )
    )
    return response


async def consume_handoff(
    auth: Any, token: str, mode: int = LIVE, binding: str = BROWSER
) -> pb.ConsumeTokenResponse:
    response: pb.ConsumeTokenResponse = await auth.portal.ConsumeHandoffToken(
        pb.ConsumeHandoffTokenRequest(token=token, mode=mode, browser_binding=binding)
    )
    return response


class TestUnifiedHandoff:
    """Unified portal -> live portal (possibly on another host) through a one-time token."""

    async def test_handoff_signs_in_only_the_browser_it_was_opened_for(self, auth: Any) -> None:
        address = unique_email("bound")
        business = await new_business(auth, name="Bound")
        await new_customer(auth, business.business_id, address, mode=LIVE)
        unified = await unified_session(auth, address)

        # Login CSRF: the link, sent to another browser, starts no session there...
        for presented in (OTHER_BROWSER, ""):
            token = (await open_from_unified(auth, unified, business.business_id)).handoff_token
            err = await rpc_error(consume_handoff(auth, token, binding=presented))
            assert reason(err) == "TOKEN_UNKNOWN"
            # ...and is spent: not even the right browser can use it afterwards.
            err = await rpc_error(consume_handoff(auth, token))
            assert reason(err) == "TOKEN_USED"
        opened = {"unified_session_id": unified.session.session_id}
        assert await auth.db.portal_sessions.count_documents(opened) == 0

        # A hand-off without a usable binding is refused and nothing is written.
        for binding in ("", "short", "not url safe " * 4):
            err = await rpc_error(open_from_unified(auth, unified, business.business_id, binding))
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (
            await auth.db.portal_tokens.count_documents(
                {"purpose": "handoff", "unified_session_id": unified.session.session_id}
            )
            == 2
        )

    async def test_handoff_is_a_hashed_one_time_token_for_the_live_site(self, auth: Any) -> None:
        address = unique_email("hana")
        business = await new_business(auth, name="Bakery")
        customer = await new_customer(auth, business.business_id, address, mode=LIVE)
        unified = await unified_session(auth, address)

        handoff = await open_from_unified(auth, unified, business.business_id)
        token = handoff.handoff_token
        assert token.startswith("cpt_") and len(token) >= 4 + 43  # 256 random bits
        assert handoff.handoff_link == f"{LIVE_BASE}/handoff/{token}"
        assert handoff.business_id == business.business_id
        # Opening does not sign in by itself: no business session exists yet.
        assert (
            await auth.db.portal_sessions.count_documents({"customer_id": customer.customer_id})
            == 0
        )
        stored = await auth.db.portal_tokens.find_one(
            {"purpose": "handoff", "business_id": business.business_id}
        )
        assert stored is not None
        assert token not in json.dumps(stored, default=str)  # only its hash is kept
        assert BROWSER not in json.dumps(stored, default=str)  # the binding too
        assert stored["unified_session_id"] == unified.session.session_id
        assert stored["customer_id"] == customer.customer_id
        lifetime = stored["expires_at"] - stored["created_at"]
        assert lifetime.total_seconds() == 120

        opened = await consume_handoff(auth, token)
        assert opened.session.kind == pb.SESSION_KIND_BUSINESS
        assert opened.session.mode == LIVE
        assert opened.session.business_id == business.business_id
        assert opened.session.customer_id == customer.customer_id
        assert opened.session.unified_session_id == unified.session.session_id
        assert opened.next_path == f"/b/{business.business_id}/"
        assert opened.session_secret.startswith("cps_")
        # A business session opened from the unified one never outlives it.
        assert (
            opened.session.absolute_expires_at.ToDatetime()
            <= unified.session.absolute_expires_at.ToDatetime()
        )
        resolved = await auth.portal.ResolveSession(
            pb.ResolveSessionRequest(session_secret=opened.session_secret)
        )
        assert resolved.customer_id == customer.customer_id

        err = await rpc_error(consume_handoff(auth, token))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason(err) == "TOKEN_USED"

    async def test_twenty_concurrent_handoffs_start_exactly_one_session(self, auth: Any) -> None:
        address = unique_email("race")
        business = await new_business(auth)
        customer = await new_customer(auth, business.business_id, address, mode=LIVE)
        unified = await unified_session(auth, address)
        token = (await open_from_unified(auth, unified, business.business_id)).handoff_token
        results = await asyncio.gather(
            *(consume_handoff(auth, token) for _ in range(20)), return_exceptions=True
        )
        winners = [r for r in results if isinstance(r, pb.ConsumeTokenResponse)]
        losers = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
        assert len(winners) == 1 and len(losers) == 19
        assert {reason(e) for e in losers} == {"TOKEN_USED"}
        assert (
            await auth.db.portal_sessions.count_documents({"customer_id": customer.customer_id})
            == 1
        )

    async def test_handoff_expires_after_two_minutes(self, auth: Any) -> None:
        address = unique_email("slow")
        business = await new_business(auth)
        await new_customer(auth, business.business_id, address, mode=LIVE)
        unified = await unified_session(auth, address)
        token = (await open_from_unified(auth, unified, business.business_id)).handoff_token
        await advance(auth, 2 * 60 + 1)
        err = await rpc_error(consume_handoff(auth, token))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason(err) == "TOKEN_EXPIRED"
        # The unified session itself is still fine: a new hand-off works.
        fresh = (await open_from_unified(auth, unified, business.business_id)).handoff_token
        assert (await consume_handoff(auth, fresh)).session.business_id == business.business_id

    async def test_purpose_and_mode_are_enforced(self, auth: Any) -> None:
        address = unique_email("purpose")
        business = await new_business(auth)
        customer = await new_customer(auth, business.business_id, address, mode=LIVE)
        unified = await unified_session(auth, address)
        token = (await open_from_unified(auth, unified, business.business_id)).handoff_token

        # Not a sign-in link: the /link/ pages cannot spend it ...
        err = await rpc_error(
            auth.portal.ConsumeToken(pb.ConsumeTokenRequest(token=token, mode=LIVE))
        )
        assert err.code() == grpc.StatusCode.NOT_FOUND and reason(err) == "TOKEN_UNKNOWN"
        # ... nor the test site, nor can it ask for a fresh link by email.
        err = await rpc_error(consume_handoff(auth, token, mode=TEST))
        assert err.code() == grpc.StatusCode.NOT_FOUND and reason(err) == "TOKEN_UNKNOWN"
        sent_before = len(auth.emails.to(address))
        await auth.portal.RequestFreshLink(
            pb.RequestFreshLinkRequest(token=token, client_key=client_key())
        )
        # The request is answered after its (absent) email would have been queued.
        assert len(auth.emails.to(address)) == sent_before
        # A magic link is not a hand-off, and trying does not burn it.
        magic = token_of(await magic_link(auth, customer))
        err = await rpc_error(consume_handoff(auth, magic))
        assert err.code() == grpc.StatusCode.NOT_FOUND and reason(err) == "TOKEN_UNKNOWN"
        assert (
            await auth.portal.ConsumeToken(pb.ConsumeTokenRequest(token=magic, mode=LIVE))
        ).session.customer_id == customer.customer_id
        # Garbage is unknown too; the failed attempts left the hand-off usable.
        err = await rpc_error(consume_handoff(auth, "cpt_" + "x" * 43))
        assert reason(err) == "TOKEN_UNKNOWN"
        assert (await consume_handoff(auth, token)).session.customer_id == customer.customer_id

    async def test_foreign_business_is_not_found_and_nothing_is_written(self, auth: Any) -> None:
        address = unique_email("own")
        mine = await new_business(auth, name="Mine")
        other = await new_business(auth, name="Other")
        customer = await new_customer(auth, mine.business_id, address, mode=LIVE)
        await new_customer(auth, other.business_id, unique_email("someone"), mode=LIVE)
        # Same email in test mode elsewhere is not a live account either.
        test_only = await new_business(auth, name="Test only")
        await new_customer(auth, test_only.business_id, address, mode=TEST)
        unified = await unified_session(auth, address)
        for business_id in (other.business_id, test_only.business_id, "bus_missing", ""):
            err = await rpc_error(open_from_unified(auth, unified, business_id))
            assert err.code() == grpc.StatusCode.NOT_FOUND
        assert (
            await auth.db.portal_tokens.count_documents(
                {"purpose": "handoff", "unified_session_id": unified.session.session_id}
            )
            == 0
        )
        # Only a unified session may hand off.
        business_session = await signed_in(auth, customer)
        err = await rpc_error(
            auth.portal.OpenBusinessFromUnified(
                pb.OpenBusinessFromUnifiedRequest(
                    session_secret=business_session.session_secret,
                    business_id=mine.business_id,
                    browser_binding=BROWSER,
                )
            )
        )
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED

    async def test_unified_logout_ends_opened_sessions_and_pending_handoffs(
        self, auth: Any
    ) -> None:
        address = unique_email("bye")
        first = await new_business(auth, name="First")
        second = await new_business(auth, name="Second")
        await new_customer(auth, first.business_id, address, mode=LIVE)
        await new_customer(auth, second.business_id, address, mode=LIVE)
        unified = await unified_session(auth, address)
        opened = await consume_handoff(
            auth, (await open_from_unified(auth, unified, first.business_id)).handoff_token
        )
        pending = (await open_from_unified(auth, unified, second.business_id)).handoff_token

        await auth.portal.EndSession(pb.EndSessionRequest(session_secret=unified.session_secret))
        err = await rpc_error(
            auth.portal.ResolveSession(
                pb.ResolveSessionRequest(session_secret=opened.session_secret)
            )
        )
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        err = await rpc_error(consume_handoff(auth, pending))
        assert reason(err) == "TOKEN_EXPIRED"


async def outbox_events(auth: Any, customer_id: str, type_: str) -> list[dict[str, Any]]:
    cursor = auth.db[OUTBOX_COLLECTION].find({"type": type_, "event.subject": customer_id})
    return [doc["event"] async for doc in cursor]


class TestProfile:
    async def test_update_name_and_phone_emits_customer_updated(
        self, auth: Any, broker_namespace: BrokerNamespace
    ) -> None:
        business = await new_business(auth)
        customer = await new_customer(auth, business.business_id, unique_email())
        async with tap_exchange(
            broker_namespace.amqp_url, broker_namespace.exchange, "customer.updated"
        ) as tap:
            updated = await auth.portal.UpdateProfile(
                pb.UpdateProfileRequest(
                    business_id=business.business_id,
                    mode=TEST,
                    customer_id=customer.customer_id,
                    name="Mario Bianchi",
                    phone_number="+39 347 123 4567",
                )
            )
            assert updated.name == "Mario Bianchi"
            assert updated.phone_number == "+393471234567"
            await eventually(lambda: len(tap.messages) >= 1, within=10)
        published = json.loads(tap.messages[0].body)
        assert published["subject"] == customer.customer_id
        assert published["data"]["phone_number"] == "+393471234567"
        assert sorted(published["data"]["changed_fields"]) == ["name", "phone_number"]

        fetched = await auth.stub.GetCustomer(
            auth_pb2.GetCustomerRequest(
                business_id=business.business_id, mode=TEST, customer_id=customer.customer_id
            )
        )
        assert fetched.name == "Mario Bianchi"

        # Clearing the phone (the merchant's PATCH with only phone_number).
        cleared = await auth.portal.UpdateProfile(
            pb.UpdateProfileRequest(
                business_id=business.business_id,
                mode=TEST,
                customer_id=customer.customer_id,
                phone_number="",
            )
        )
        assert cleared.phone_number == "" and cleared.name == "Mario Bianchi"
        assert len(await outbox_events(auth, customer.customer_id, "customer.updated")) == 2

    async def test_bad_phone_is_refused_and_nothing_changes(self, auth: Any) -> None:
        business = await new_business(auth)
        customer = await new_customer(auth, business.business_id, unique_email())
        err = await rpc_error(
            auth.portal.UpdateProfile(
                pb.UpdateProfileRequest(
                    business_id=business.business_id,
                    mode=TEST,
                    customer_id=customer.customer_id,
                    name="New Name",
                    phone_number="12345",
                )
            )
        )
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "phone_number" in (err.details() or "")
        assert reason(err) == "INVALID_PHONE_NUMBER"
        fetched = await auth.stub.GetCustomer(
            auth_pb2.GetCustomerRequest(
                business_id=business.business_id, mode=TEST, customer_id=customer.customer_id
            )
        )
        assert fetched.name == customer.name
        assert await outbox_events(auth, customer.customer_id, "customer.updated") == []

    async def test_another_business_cannot_update_the_customer(self, auth: Any) -> None:
        business = await new_business(auth)
        other = await new_business(auth)
        customer = await new_customer(auth, business.business_id, unique_email())
        err = await rpc_error(
            auth.portal.UpdateProfile(
                pb.UpdateProfileRequest(
                    business_id=other.business_id,
                    mode=TEST,
                    customer_id=customer.customer_id,
                    name="Hijack",
                )
            )
        )
        assert err.code() == grpc.StatusCode.NOT_FOUND


class TestEmailChange:
    async def test_change_takes_effect_only_when_confirmed_and_ends_other_sessions(
        self, auth: Any
    ) -> None:
        business = await new_business(auth)
        old = unique_email("old")
        new = unique_email("new")
        customer = await new_customer(auth, business.business_id, old)
        here = await signed_in(auth, customer)
        elsewhere = await signed_in(auth, customer)

        await auth.portal.RequestEmailChange(
            pb.RequestEmailChangeRequest(
                business_id=business.business_id,
                mode=TEST,
                customer_id=customer.customer_id,
                new_email=new,
                locale="it",
            )
        )
        verify = await email_to(auth, new, email_pb2.EMAIL_TEMPLATE_EMAIL_CHANGE_VERIFY)
        assert verify.link.startswith(f"{TEST_BASE}/email-change/cpt_")
        notice = await email_to(auth, old, email_pb2.EMAIL_TEMPLATE_EMAIL_CHANGE_NOTICE)
        assert notice.link == "" and notice.locale == "it"

        # Not yet: the old address is still the customer's, the new one unknown.
        get = auth_pb2.GetCustomerRequest(
            business_id=business.business_id, mode=TEST, customer_id=customer.customer_id
        )
        assert (await auth.stub.GetCustomer(get)).email == old
        assert await outbox_events(auth, customer.customer_id, "customer.updated") == []
        # An email-change link never signs anyone in.
        err = await rpc_error(
            auth.portal.ConsumeToken(pb.ConsumeTokenRequest(token=token_of(verify.link), mode=TEST))
        )
        assert reason(err) == "TOKEN_UNKNOWN"

        confirmed = await auth.portal.ConfirmEmailChange(
            pb.ConfirmEmailChangeRequest(
                token=token_of(verify.link), mode=TEST, keep_session_secret=here.session_secret
            )
        )
        assert confirmed.email == new
        assert (await auth.stub.GetCustomer(get)).email == new
        await auth.portal.ResolveSession(
            pb.ResolveSessionRequest(session_secret=here.session_secret)
        )
        err = await rpc_error(
            auth.portal.ResolveSession(
                pb.ResolveSessionRequest(session_secret=elsewhere.session_secret)
            )
        )
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        events = await outbox_events(auth, customer.customer_id, "customer.updated")
        assert [e["data"]["email"] for e in events] == [new]
        assert events[0]["data"]["changed_fields"] == ["email"]
        # Audited in the same transaction: who, what, when; no address in the entry.
        trail = await audit_trail(auth.db, "customer", customer.customer_id)
        [entry] = [e for e in trail if e.action == "customer.email_changed"]
        assert entry.actor == Actor(kind="customer", id=customer.customer_id)
        assert entry.resource.business_id == business.business_id
        assert new not in repr(entry) and old not in repr(entry)

        # Single use; and the new address now signs in.
        err = await rpc_error(
            auth.portal.ConfirmEmailChange(
                pb.ConfirmEmailChangeRequest(token=token_of(verify.link), mode=TEST)
            )
        )
        assert reason(err) == "TOKEN_USED"
        await auth.portal.RequestSignInLink(
            pb.RequestSignInLinkRequest(business_id=business.business_id, mode=TEST, email=new)
        )
        await email_to(auth, new, email_pb2.EMAIL_TEMPLATE_SIGN_IN_LINK)

    async def test_newer_request_supersedes_and_the_same_email_is_refused(self, auth: Any) -> None:
        business = await new_business(auth)
        customer = await new_customer(auth, business.business_id, unique_email())
        neighbour = await new_customer(auth, business.business_id, unique_email("neighbour"))

        def change(new_email: str) -> Any:
            return auth.portal.RequestEmailChange(
                pb.RequestEmailChangeRequest(
                    business_id=business.business_id,
                    mode=TEST,
                    customer_id=customer.customer_id,
                    new_email=new_email,
                )
            )

        # A neighbour's address is not refused (that would tell who is a customer) ...
        await change(neighbour.email.upper())
        err = await rpc_error(change(f" {customer.email} "))
        assert reason(err) == "EMAIL_UNCHANGED"
        err = await rpc_error(change("nope"))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT

        first, second = unique_email("first"), unique_email("second")
        await change(first)
        await change(second)
        stale = await email_to(auth, first, email_pb2.EMAIL_TEMPLATE_EMAIL_CHANGE_VERIFY)
        latest = await email_to(auth, second, email_pb2.EMAIL_TEMPLATE_EMAIL_CHANGE_VERIFY)
        err = await rpc_error(
            auth.portal.ConfirmEmailChange(
                pb.ConfirmEmailChangeRequest(token=token_of(stale.link), mode=TEST)
            )
        )
        assert reason(err) == "TOKEN_USED"
        # Under the other mode's base URL the link is unknown.
        err = await rpc_error(
            auth.portal.ConfirmEmailChange(
                pb.ConfirmEmailChangeRequest(token=token_of(latest.link), mode=LIVE)
            )
        )
        assert reason(err) == "TOKEN_UNKNOWN"
        confirmed = await auth.portal.ConfirmEmailChange(
            pb.ConfirmEmailChangeRequest(token=token_of(latest.link), mode=TEST)
        )
        assert confirmed.email == second
        # ... and it never got a link that could take it over.
        assert not [
            e
            for e in auth.emails.to(neighbour.email)
            if e.template == email_pb2.EMAIL_TEMPLATE_EMAIL_CHANGE_VERIFY
        ]

    async def test_a_taken_address_answers_like_a_free_one_and_its_owner_is_told(
        self, auth: Any
    ) -> None:
        business = await new_business(auth)
        requester = await new_customer(auth, business.business_id, unique_email("me"))
        owner = await new_customer(auth, business.business_id, unique_email("owner"))
        free = unique_email("free")

        async def ask(new_email: str) -> Any:
            return await auth.portal.RequestEmailChange(
                pb.RequestEmailChangeRequest(
                    business_id=business.business_id,
                    mode=TEST,
                    customer_id=requester.customer_id,
                    new_email=new_email,
                )
            )

        assert await ask(owner.email) == await ask(free)
        notice = await email_to(auth, owner.email, email_pb2.EMAIL_TEMPLATE_EMAIL_IN_USE_NOTICE)
        assert notice.link == ""
        await email_to(auth, free, email_pb2.EMAIL_TEMPLATE_EMAIL_CHANGE_VERIFY)
        # The requester's old address hears of both requests alike.
        await email_to(auth, requester.email, email_pb2.EMAIL_TEMPLATE_EMAIL_CHANGE_NOTICE, count=2)
        # No verification link ever goes to the taken address.
        assert [e.template for e in auth.emails.to(owner.email)] == [
            email_pb2.EMAIL_TEMPLATE_EMAIL_IN_USE_NOTICE
        ]

    async def test_the_rate_limit_counts_taken_and_free_addresses_alike(self, auth: Any) -> None:
        business = await new_business(auth)
        requester = await new_customer(auth, business.business_id, unique_email("me"))
        owner = await new_customer(auth, business.business_id, unique_email("owner"))

        async def ask(new_email: str) -> Any:
            return await auth.portal.RequestEmailChange(
                pb.RequestEmailChangeRequest(
                    business_id=business.business_id,
                    mode=TEST,
                    customer_id=requester.customer_id,
                    new_email=new_email,
                )
            )

        for n in range(auth.settings.rate_limit_per_email):
            await ask(owner.email if n % 2 else unique_email("free"))
        for address in (owner.email, unique_email("free")):
            err = await rpc_error(ask(address))
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_logs_carry_no_tokens_secrets_or_addresses(
    auth: Any, caplog: pytest.LogCaptureFixture
) -> None:
    business = await new_business(auth)
    address = unique_email("private")
    customer = await new_customer(auth, business.business_id, address)
    caplog.clear()
    with caplog.at_level("DEBUG"):
        await auth.portal.RequestSignInLink(
            pb.RequestSignInLinkRequest(business_id=business.business_id, mode=TEST, email=address)
        )
        sent = await email_to(auth, address, email_pb2.EMAIL_TEMPLATE_SIGN_IN_LINK)
        started = await auth.portal.ConsumeToken(
            pb.ConsumeTokenRequest(token=token_of(sent.link), mode=TEST)
        )
        await auth.portal.ResolveSession(
            pb.ResolveSessionRequest(session_secret=started.session_secret)
        )
        await magic_link(auth, customer, send_email=True)
    assert caplog.records, "the flow logs something"
    for record in caplog.records:
        text = record.getMessage() + json.dumps(record.__dict__, default=str)
        assert "cpt_" not in text and "cps_" not in text
        assert address not in text
