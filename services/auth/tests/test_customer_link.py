"""CreateCustomerLink: the sealed, idempotent one-time link notifications puts in the
on_hold email (real auth runtime and SecantusDB, see conftest)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
import pytest
from billing.auth.v1 import portal_access_pb2
from billing_kit.errors import Reason
from billing_kit.sealing import Sealer

from .conftest import reason, rpc_error
from .test_portal_grpc import TEST, new_business, new_customer, token_of, unique_email

pytestmark = pytest.mark.integration
pb = portal_access_pb2


def request(customer: Any, key: str, next_path: str) -> pb.CreateCustomerLinkRequest:
    return pb.CreateCustomerLinkRequest(
        business_id=customer.business_id,
        mode=customer.mode,
        customer_id=customer.customer_id,
        next_path=next_path,
        idempotency_key=key,
    )


class TestCreateCustomerLink:
    async def test_same_key_same_sealed_link_used_once_lands_on_next_path(self, auth: Any) -> None:
        business = await new_business(auth)
        customer = await new_customer(auth, business.business_id, unique_email())
        next_path = f"/b/{business.business_id}/subscriptions/sub_1/payment-method"
        key = f"subscription_on_hold:{uuid.uuid4()}"

        first, second, *concurrent = await asyncio.gather(
            auth.portal.CreateCustomerLink(request(customer, key, next_path)),
            auth.portal.CreateCustomerLink(request(customer, key, next_path)),
            auth.portal.CreateCustomerLink(request(customer, key, next_path)),
        )
        assert first.sealed_link == second.sealed_link == concurrent[0].sealed_link
        assert first.expires_minutes == 24 * 60
        assert first.expires_at == second.expires_at
        # Sealed for notifications: the token never appears in clear on the wire...
        assert "cpt_" not in first.sealed_link
        link = Sealer(auth.settings.email_link_keys.get_secret_value()).open(first.sealed_link)
        token = token_of(link)
        # ...nor in the database, which keeps only its hash and the sealed link.
        stored = [d async for d in auth.db["portal_tokens"].find({"link_key": key})]
        assert len(stored) == 1
        assert token not in str(stored[0])

        started = await auth.portal.ConsumeToken(pb.ConsumeTokenRequest(token=token, mode=TEST))
        assert started.session.customer_id == customer.customer_id
        assert started.next_path == next_path
        err = await rpc_error(
            auth.portal.ConsumeToken(pb.ConsumeTokenRequest(token=token, mode=TEST))
        )
        assert err.code() is grpc.StatusCode.FAILED_PRECONDITION
        # After use the same key still answers the same (spent) link, never a fresh one.
        again = await auth.portal.CreateCustomerLink(request(customer, key, next_path))
        assert again.sealed_link == first.sealed_link

    async def test_key_reused_for_another_destination_is_refused(self, auth: Any) -> None:
        business = await new_business(auth)
        customer = await new_customer(auth, business.business_id, unique_email())
        key = f"k-{uuid.uuid4()}"
        base = f"/b/{business.business_id}/subscriptions"
        await auth.portal.CreateCustomerLink(request(customer, key, f"{base}/sub_1"))
        err = await rpc_error(
            auth.portal.CreateCustomerLink(request(customer, key, f"{base}/sub_2"))
        )
        assert err.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert reason(err) is Reason.IDEMPOTENCY_KEY_REUSED

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("idempotency_key", ""),
            ("next_path", ""),
            ("next_path", "https://evil.test/"),
            ("customer_id", "cus_missing"),
        ],
    )
    async def test_bad_requests_are_refused_and_mint_nothing(
        self, auth: Any, field: str, value: str
    ) -> None:
        business = await new_business(auth)
        customer = await new_customer(auth, business.business_id, unique_email())
        key = f"k-{uuid.uuid4()}"
        bad = request(customer, key, f"/b/{business.business_id}/")
        setattr(bad, field, value)
        err = await rpc_error(auth.portal.CreateCustomerLink(bad))
        expected = (
            grpc.StatusCode.NOT_FOUND
            if field == "customer_id"
            else grpc.StatusCode.INVALID_ARGUMENT
        )
        assert err.code() is expected
        assert await auth.db["portal_tokens"].count_documents({"link_key": key}) == 0
