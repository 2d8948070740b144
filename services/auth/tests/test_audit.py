"""Audit entries of auth's use cases, read from the real ``audit_log``: sign-in
(magic link, unified hand-off), profile update (by the customer or the
merchant), email change requested and confirmed. Each writes exactly one entry
with the right actor, action and resource, in the use case's transaction, and
a use case that fails writes none.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
import pytest
from billing.auth.v1 import auth_pb2, portal_access_pb2
from billing.notifications.v1 import email_pb2
from billing_kit.audit import AUDIT_COLLECTION, Actor, AuditEntry, Resource

from .conftest import reason, rpc_error
from .test_portal_grpc import (
    LIVE,
    TEST,
    consume_handoff,
    email_to,
    magic_link,
    new_business,
    new_customer,
    open_from_unified,
    signed_in,
    token_of,
    unified_session,
    unique_email,
)

pytestmark = pytest.mark.integration
pb = portal_access_pb2


async def entries(auth: Any, action: str, **match: Any) -> list[AuditEntry]:
    """Every audit entry of ``action`` whose fields match (dotted keys), oldest first."""
    cursor = auth.db[AUDIT_COLLECTION].find({"action": action, **match}).sort("at", 1)
    return [AuditEntry.model_validate({**doc, "entry_id": doc["_id"]}) async for doc in cursor]


def as_customer(customer: auth_pb2.Customer) -> Resource:
    mode = "live" if customer.mode == LIVE else "test"
    return Resource(
        kind="customer", id=customer.customer_id, business_id=customer.business_id, mode=mode
    )


class TestSignIn:
    async def test_a_session_started_from_a_link_is_audited_once(self, auth: Any) -> None:
        business = await new_business(auth)
        customer = await new_customer(auth, business.business_id, unique_email())
        link = await magic_link(auth, customer)
        started = await auth.portal.ConsumeToken(
            pb.ConsumeTokenRequest(token=token_of(link), mode=TEST)
        )

        [entry] = await entries(auth, "customer.signed_in", **{"resource.id": customer.customer_id})
        assert entry.actor == Actor(kind="customer", id=customer.customer_id)
        assert entry.resource == as_customer(customer)
        assert entry.details["session_id"] == started.session.session_id
        assert entry.details["via"] == "magic_link"
        # Ids only: neither the session secret nor the link's token is in the entry.
        assert started.session_secret not in repr(entry) and token_of(link) not in repr(entry)

        # Spending the link again fails and audits nothing more.
        err = await rpc_error(
            auth.portal.ConsumeToken(pb.ConsumeTokenRequest(token=token_of(link), mode=TEST))
        )
        assert reason(err) == "TOKEN_USED"
        assert (
            len(await entries(auth, "customer.signed_in", **{"resource.id": customer.customer_id}))
            == 1
        )

    async def test_twenty_concurrent_spends_audit_one_sign_in(self, auth: Any) -> None:
        business = await new_business(auth)
        customer = await new_customer(auth, business.business_id, unique_email())
        link = await magic_link(auth, customer)
        request = pb.ConsumeTokenRequest(token=token_of(link), mode=TEST)
        results = await asyncio.gather(
            *(auth.portal.ConsumeToken(request) for _ in range(20)), return_exceptions=True
        )
        winners = [r for r in results if isinstance(r, pb.ConsumeTokenResponse)]
        assert len(winners) == 1
        [entry] = await entries(auth, "customer.signed_in", **{"resource.id": customer.customer_id})
        assert entry.details["session_id"] == winners[0].session.session_id

    async def test_a_hand_off_sign_in_is_audited_and_a_refused_one_is_not(self, auth: Any) -> None:
        address = unique_email("handoff")
        business = await new_business(auth, "Live Shop")
        customer = await new_customer(auth, business.business_id, address, mode=LIVE)
        unified = await unified_session(auth, address)
        [unified_entry] = await entries(
            auth, "customer.signed_in", **{"resource.id": unified.session.session_id}
        )
        # A unified session has no single customer: it is its own actor and resource.
        assert unified_entry.resource.kind == "unified_session"
        assert address not in repr(unified_entry)

        # Another browser presenting the hand-off: refused, no session, no entry.
        wrong = await open_from_unified(auth, unified, business.business_id)
        err = await rpc_error(consume_handoff(auth, wrong.handoff_token, binding="x" * 43))
        assert err.code() == grpc.StatusCode.NOT_FOUND
        assert (
            await entries(auth, "customer.signed_in", **{"resource.id": customer.customer_id}) == []
        )

        handoff = await open_from_unified(auth, unified, business.business_id)
        started = await consume_handoff(auth, handoff.handoff_token)
        [entry] = await entries(auth, "customer.signed_in", **{"resource.id": customer.customer_id})
        assert entry.actor == Actor(kind="customer", id=customer.customer_id)
        assert entry.resource == as_customer(customer)
        assert (entry.details["session_id"], entry.details["via"]) == (
            started.session.session_id,
            "handoff",
        )


class TestProfileUpdate:
    async def test_the_portal_change_is_the_customers(self, auth: Any) -> None:
        business = await new_business(auth)
        customer = await new_customer(auth, business.business_id, unique_email())
        await auth.portal.UpdateProfile(
            pb.UpdateProfileRequest(
                business_id=business.business_id,
                mode=TEST,
                customer_id=customer.customer_id,
                name="Maria Rossi",
            )
        )
        [entry] = await entries(
            auth, "customer.profile_updated", **{"resource.id": customer.customer_id}
        )
        assert entry.actor == Actor(kind="customer", id=customer.customer_id)
        assert entry.resource == as_customer(customer)
        assert entry.details == {"changed_fields": "name"}

    async def test_the_merchant_api_change_is_the_merchants(self, auth: Any) -> None:
        business = await new_business(auth)
        customer = await new_customer(auth, business.business_id, unique_email())
        new_email = unique_email("moved")
        await auth.portal.UpdateProfile(
            pb.UpdateProfileRequest(
                business_id=business.business_id,
                mode=TEST,
                customer_id=customer.customer_id,
                email=new_email,
                metadata=auth_pb2.CustomerMetadata(values={"plan": "gold"}),
                merchant_key_id="key_merchant1",
            )
        )
        [entry] = await entries(
            auth, "customer.profile_updated", **{"resource.id": customer.customer_id}
        )
        assert entry.actor == Actor(kind="merchant", id="key_merchant1")
        assert entry.details == {"changed_fields": "email,metadata"}
        assert new_email not in repr(entry) and customer.email not in repr(entry)

    async def test_refused_and_unchanged_updates_audit_nothing(self, auth: Any) -> None:
        business = await new_business(auth)
        taken = await new_customer(auth, business.business_id, unique_email("taken"))
        customer = await new_customer(auth, business.business_id, unique_email())
        base = {
            "business_id": business.business_id,
            "mode": TEST,
            "customer_id": customer.customer_id,
        }
        err = await rpc_error(
            auth.portal.UpdateProfile(pb.UpdateProfileRequest(**base, phone_number="12"))
        )
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        err = await rpc_error(
            auth.portal.UpdateProfile(
                pb.UpdateProfileRequest(**base, email=taken.email, merchant_key_id="key_m")
            )
        )
        assert reason(err) == "EMAIL_TAKEN"
        # An actor that is no API key id: refused before anything is written.
        err = await rpc_error(
            auth.portal.UpdateProfile(
                pb.UpdateProfileRequest(**base, name="Someone Else", merchant_key_id="x" * 300)
            )
        )
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        stored = await auth.db.customers.find_one({"_id": customer.customer_id})
        assert stored["name"] == customer.name
        # The same name as on file: no change, so no event and no entry.
        await auth.portal.UpdateProfile(pb.UpdateProfileRequest(**base, name=customer.name))
        assert (
            await entries(auth, "customer.profile_updated", **{"resource.id": customer.customer_id})
            == []
        )


class TestEmailChange:
    async def test_request_and_confirmation_each_write_one_entry(self, auth: Any) -> None:
        business = await new_business(auth)
        customer = await new_customer(auth, business.business_id, unique_email())
        here = await signed_in(auth, customer)
        new = unique_email("new")
        await auth.portal.RequestEmailChange(
            pb.RequestEmailChangeRequest(
                business_id=business.business_id,
                mode=TEST,
                customer_id=customer.customer_id,
                new_email=new,
            )
        )
        by_id = {"resource.id": customer.customer_id}
        [requested] = await entries(auth, "customer.email_change_requested", **by_id)
        assert requested.actor == Actor(kind="customer", id=customer.customer_id)
        assert requested.resource == as_customer(customer)
        assert new not in repr(requested)
        assert await entries(auth, "customer.email_changed", **by_id) == []

        verify = await email_to(auth, new, email_pb2.EMAIL_TEMPLATE_EMAIL_CHANGE_VERIFY)
        await auth.portal.ConfirmEmailChange(
            pb.ConfirmEmailChangeRequest(
                token=token_of(verify.link), mode=TEST, keep_session_secret=here.session_secret
            )
        )
        [changed] = await entries(auth, "customer.email_changed", **by_id)
        assert changed.actor == Actor(kind="customer", id=customer.customer_id)
        assert changed.resource == as_customer(customer)
        assert len(await entries(auth, "customer.email_change_requested", **by_id)) == 1

    async def test_failed_requests_and_confirmations_write_none(self, auth: Any) -> None:
        business = await new_business(auth)
        customer = await new_customer(auth, business.business_id, unique_email())
        other = await new_customer(auth, business.business_id, unique_email("other"))
        by_id = {"resource.id": customer.customer_id}
        request = {
            "business_id": business.business_id,
            "mode": TEST,
            "customer_id": customer.customer_id,
        }
        # Own address, bad address: refused before anything is written.
        err = await rpc_error(
            auth.portal.RequestEmailChange(
                pb.RequestEmailChangeRequest(**request, new_email=customer.email)
            )
        )
        assert reason(err) == "EMAIL_UNCHANGED"
        err = await rpc_error(
            auth.portal.RequestEmailChange(pb.RequestEmailChangeRequest(**request, new_email="x@"))
        )
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert await entries(auth, "customer.email_change_requested", **by_id) == []

        # A valid request, whose address another customer takes before it is confirmed:
        # the confirmation fails as a whole (token unused, email unchanged, no entry).
        new = unique_email("race")
        await auth.portal.RequestEmailChange(pb.RequestEmailChangeRequest(**request, new_email=new))
        verify = await email_to(auth, new, email_pb2.EMAIL_TEMPLATE_EMAIL_CHANGE_VERIFY)
        await auth.portal.UpdateProfile(
            pb.UpdateProfileRequest(
                business_id=business.business_id,
                mode=TEST,
                customer_id=other.customer_id,
                email=new,
                merchant_key_id="key_m",
            )
        )
        err = await rpc_error(
            auth.portal.ConfirmEmailChange(
                pb.ConfirmEmailChangeRequest(token=token_of(verify.link), mode=TEST)
            )
        )
        assert reason(err) == "EMAIL_TAKEN"
        err = await rpc_error(
            auth.portal.ConfirmEmailChange(
                pb.ConfirmEmailChangeRequest(token=f"cpt_{uuid.uuid4().hex}", mode=TEST)
            )
        )
        assert reason(err) == "TOKEN_UNKNOWN"
        assert await entries(auth, "customer.email_changed", **by_id) == []
        stored = await auth.db.customers.find_one({"_id": customer.customer_id})
        assert stored["email"] == customer.email
