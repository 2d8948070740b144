"""Integration tests: the auth service over gRPC against a real SecantusDB and RabbitMQ."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import pytest
from auth.customers.models import Customer, CustomerCreatedData
from auth.customers.repository import CustomerRepository
from auth.rules import hash_secret, new_id, utc_now
from auth.unit_of_work import Txn, UnitOfWork
from billing.auth.v1 import auth_pb2
from billing.common.v1 import common_pb2
from billing_kit.errors import AlreadyExists
from billing_kit.events import new_event
from billing_kit.grpc_client import domain_error_from
from billing_kit.outbox import OUTBOX_COLLECTION
from billing_kit.testing import BrokerNamespace, eventually, tap_exchange

from .conftest import rpc_error

pytestmark = pytest.mark.integration

TEST = common_pb2.MODE_TEST
LIVE = common_pb2.MODE_LIVE


async def new_business(auth: Any, name: str = "Acme") -> auth_pb2.Business:
    business: auth_pb2.Business = await auth.stub.CreateBusiness(
        auth_pb2.CreateBusinessRequest(name=name)
    )
    return business


async def new_customer(
    auth: Any, business_id: str, email: str, mode: int = TEST, name: str = "Mario Rossi"
) -> auth_pb2.CreateCustomerResponse:
    response: auth_pb2.CreateCustomerResponse = await auth.stub.CreateCustomer(
        auth_pb2.CreateCustomerRequest(business_id=business_id, mode=mode, email=email, name=name)
    )
    return response


class TestBusinesses:
    async def test_create_get_and_list(self, auth: Any) -> None:
        created = await auth.stub.CreateBusiness(
            auth_pb2.CreateBusinessRequest(
                name="Pizzeria da Mario",
                branding=auth_pb2.Branding(
                    logo_url="https://cdn.mario.test/logo.png", primary_color="#c0392b"
                ),
                support_email="aiuto@mario.example.com",
                default_return_url="https://mario.test/account",
                locale="it",
                address="Via Roma 1\n20121 Milano",
                tax_id="IT01234567890",
            )
        )
        assert created.business_id.startswith("bus_")
        assert created.branding.primary_color == "#C0392B"
        # Printed on invoices: kept as given.
        assert (created.address, created.tax_id) == ("Via Roma 1\n20121 Milano", "IT01234567890")
        fetched = await auth.stub.GetBusiness(
            auth_pb2.GetBusinessRequest(business_id=created.business_id)
        )
        assert fetched == created
        listed = await auth.stub.ListBusinesses(auth_pb2.ListBusinessesRequest(page_size=100))
        assert created.business_id in [b.business_id for b in listed.businesses]

    async def test_bad_branding_is_refused_and_nothing_is_written(self, auth: Any) -> None:
        before = await auth.db.businesses.count_documents({})
        err = await rpc_error(
            auth.stub.CreateBusiness(
                auth_pb2.CreateBusinessRequest(
                    name="Bad", branding=auth_pb2.Branding(primary_color="blue")
                )
            )
        )
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "primary_color" in (err.details() or "")
        assert await auth.db.businesses.count_documents({}) == before

    async def test_renewal_reminder_days_default_three_and_bounded(self, auth: Any) -> None:
        default = await auth.stub.CreateBusiness(auth_pb2.CreateBusinessRequest(name="Default"))
        assert default.renewal_reminder_days == 3
        weekly = await auth.stub.CreateBusiness(
            auth_pb2.CreateBusinessRequest(name="Weekly", renewal_reminder_days=7)
        )
        fetched = await auth.stub.GetBusiness(
            auth_pb2.GetBusinessRequest(business_id=weekly.business_id)
        )
        assert fetched.renewal_reminder_days == 7
        before = await auth.db.businesses.count_documents({})
        for days in (-1, 31):
            err = await rpc_error(
                auth.stub.CreateBusiness(
                    auth_pb2.CreateBusinessRequest(name="Bad", renewal_reminder_days=days)
                )
            )
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "renewal_reminder_days" in (err.details() or "")
        assert await auth.db.businesses.count_documents({}) == before

    async def test_license_grace_days_zero_means_the_default_and_bounded(self, auth: Any) -> None:
        default = await auth.stub.CreateBusiness(auth_pb2.CreateBusinessRequest(name="Default"))
        assert default.license_grace_days == 0  # subscriptions applies its own default
        lenient = await auth.stub.CreateBusiness(
            auth_pb2.CreateBusinessRequest(name="Lenient", license_grace_days=30)
        )
        fetched = await auth.stub.GetBusiness(
            auth_pb2.GetBusinessRequest(business_id=lenient.business_id)
        )
        assert fetched.license_grace_days == 30
        before = await auth.db.businesses.count_documents({})
        for days in (-1, 366):
            err = await rpc_error(
                auth.stub.CreateBusiness(
                    auth_pb2.CreateBusinessRequest(name="Bad", license_grace_days=days)
                )
            )
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "license_grace_days" in (err.details() or "")
        assert await auth.db.businesses.count_documents({}) == before

    async def test_unknown_business_is_not_found(self, auth: Any) -> None:
        err = await rpc_error(
            auth.stub.GetBusiness(auth_pb2.GetBusinessRequest(business_id="bus_x"))
        )
        assert err.code() == grpc.StatusCode.NOT_FOUND


class TestApiKeys:
    async def test_issued_key_authenticates_and_only_its_hash_is_stored(self, auth: Any) -> None:
        business = await new_business(auth)
        issued = await auth.stub.CreateApiKey(
            auth_pb2.CreateApiKeyRequest(business_id=business.business_id, mode=LIVE, name="prod")
        )
        assert issued.secret.startswith("sk_live_")
        assert issued.api_key.display_prefix == issued.secret[: len("sk_live_") + 4]
        assert not issued.api_key.HasField("revoked_at")

        stored = await auth.db.api_keys.find_one({"_id": issued.api_key.key_id})
        assert stored is not None
        assert stored["secret_hash"] == hash_secret(issued.secret)
        assert issued.secret not in json.dumps(stored, default=str)

        principal = await auth.stub.AuthenticateApiKey(
            auth_pb2.AuthenticateApiKeyRequest(secret=issued.secret)
        )
        assert (principal.business_id, principal.mode, principal.key_id) == (
            business.business_id,
            LIVE,
            issued.api_key.key_id,
        )

        listed = await auth.stub.ListApiKeys(
            auth_pb2.ListApiKeysRequest(business_id=business.business_id)
        )
        assert [k.key_id for k in listed.api_keys] == [issued.api_key.key_id]

    async def test_revoked_key_no_longer_authenticates(self, auth: Any) -> None:
        business = await new_business(auth)
        issued = await auth.stub.CreateApiKey(
            auth_pb2.CreateApiKeyRequest(business_id=business.business_id, mode=TEST)
        )
        revoked = await auth.stub.RevokeApiKey(
            auth_pb2.RevokeApiKeyRequest(
                business_id=business.business_id, key_id=issued.api_key.key_id
            )
        )
        assert revoked.HasField("revoked_at")
        err = await rpc_error(
            auth.stub.AuthenticateApiKey(auth_pb2.AuthenticateApiKeyRequest(secret=issued.secret))
        )
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        # Revoking again is harmless and keeps the first revocation time.
        again = await auth.stub.RevokeApiKey(
            auth_pb2.RevokeApiKeyRequest(
                business_id=business.business_id, key_id=issued.api_key.key_id
            )
        )
        assert again.revoked_at == revoked.revoked_at

    async def test_another_business_cannot_revoke_a_key(self, auth: Any) -> None:
        owner = await new_business(auth, "Owner")
        intruder = await new_business(auth, "Intruder")
        issued = await auth.stub.CreateApiKey(
            auth_pb2.CreateApiKeyRequest(business_id=owner.business_id, mode=TEST)
        )
        err = await rpc_error(
            auth.stub.RevokeApiKey(
                auth_pb2.RevokeApiKeyRequest(
                    business_id=intruder.business_id, key_id=issued.api_key.key_id
                )
            )
        )
        assert err.code() == grpc.StatusCode.NOT_FOUND
        principal = await auth.stub.AuthenticateApiKey(
            auth_pb2.AuthenticateApiKeyRequest(secret=issued.secret)
        )
        assert principal.business_id == owner.business_id

    @pytest.mark.parametrize("secret", ["", "sk_test_" + "A" * 43, "not-a-key", "sk_live_" * 40])
    async def test_unknown_secrets_are_unauthenticated(self, auth: Any, secret: str) -> None:
        err = await rpc_error(
            auth.stub.AuthenticateApiKey(auth_pb2.AuthenticateApiKeyRequest(secret=secret))
        )
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        error = domain_error_from(err)
        assert error is not None and error.reason == "INVALID_API_KEY"

    async def test_key_needs_an_existing_business_and_a_mode(self, auth: Any) -> None:
        err = await rpc_error(
            auth.stub.CreateApiKey(auth_pb2.CreateApiKeyRequest(business_id="bus_nope", mode=TEST))
        )
        assert err.code() == grpc.StatusCode.NOT_FOUND
        business = await new_business(auth)
        err = await rpc_error(
            auth.stub.CreateApiKey(auth_pb2.CreateApiKeyRequest(business_id=business.business_id))
        )
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "mode" in (err.details() or "")
        assert await auth.db.api_keys.count_documents({"business_id": business.business_id}) == 0


class TestCreateCustomer:
    async def test_creates_customer_and_outbox_event_which_is_published(
        self, auth: Any, broker_namespace: BrokerNamespace
    ) -> None:
        business = await new_business(auth)
        # Listen on the run's exchange to see the relay really publish the event.
        async with tap_exchange(
            broker_namespace.amqp_url, broker_namespace.exchange, "customer.created"
        ) as tap:
            response = await auth.stub.CreateCustomer(
                auth_pb2.CreateCustomerRequest(
                    business_id=business.business_id,
                    mode=TEST,
                    email="  Mario.Rossi@Example.com ",
                    name="Mario Rossi",
                    phone_number="+39 347 123 4567",
                )
            )
            customer = response.customer
            assert response.created is True
            assert customer.customer_id.startswith("cus_")
            assert customer.email == "Mario.Rossi@Example.com"
            assert customer.phone_number == "+393471234567"
            assert customer.mode == TEST

            stored = await auth.db.customers.find_one({"_id": customer.customer_id})
            assert stored is not None
            assert stored["email_normalized"] == "mario.rossi@example.com"

            outbox = (
                await auth.db[OUTBOX_COLLECTION]
                .find({"type": "customer.created", "event.subject": customer.customer_id})
                .to_list()
            )
            assert len(outbox) == 1
            data = outbox[0]["event"]["data"]
            assert outbox[0]["event"]["source"] == "auth"
            assert data["customer_id"] == customer.customer_id
            assert data["business_id"] == business.business_id
            assert (data["mode"], data["email"], data["name"], data["phone_number"]) == (
                "test",
                "Mario.Rossi@Example.com",
                "Mario Rossi",
                "+393471234567",
            )

            def published() -> dict[str, Any] | None:
                for message in tap.messages:
                    body: dict[str, Any] = json.loads(message.body)
                    if body["data"]["customer_id"] == customer.customer_id:
                        return body
                return None

            event = await eventually(published, within=15, message="customer.created published")
            assert event["type"] == "customer.created"
            assert event["id"] == outbox[0]["event_id"]

    async def test_same_email_returns_the_existing_customer(self, auth: Any) -> None:
        business = await new_business(auth)
        first = await new_customer(auth, business.business_id, "anna@example.com", name="Anna")
        second = await new_customer(auth, business.business_id, " ANNA@Example.COM", name="Other")
        assert first.created is True and second.created is False
        assert second.customer == first.customer  # returned unchanged, name not overwritten
        assert await auth.db.customers.count_documents({"business_id": business.business_id}) == 1
        events = await auth.db[OUTBOX_COLLECTION].count_documents(
            {"event.data.business_id": business.business_id}
        )
        assert events == 1

    async def test_same_email_in_other_mode_or_business_is_a_different_customer(
        self, auth: Any
    ) -> None:
        one = await new_business(auth, "One")
        two = await new_business(auth, "Two")
        test = await new_customer(auth, one.business_id, "luca@example.com", mode=TEST)
        live = await new_customer(auth, one.business_id, "luca@example.com", mode=LIVE)
        other = await new_customer(auth, two.business_id, "luca@example.com", mode=TEST)
        ids = {test.customer.customer_id, live.customer.customer_id, other.customer.customer_id}
        assert len(ids) == 3 and test.created and live.created and other.created

    async def test_concurrent_creates_make_one_customer(self, auth: Any) -> None:
        business = await new_business(auth)
        responses = await asyncio.gather(
            *(new_customer(auth, business.business_id, "race@example.com") for _ in range(8))
        )
        assert len({r.customer.customer_id for r in responses}) == 1
        assert sum(r.created for r in responses) == 1
        assert await auth.db.customers.count_documents({"business_id": business.business_id}) == 1
        assert (
            await auth.db[OUTBOX_COLLECTION].count_documents(
                {"event.data.business_id": business.business_id}
            )
            == 1
        )

    @pytest.mark.parametrize(
        ("fields", "bad"),
        [
            ({"email": "not-an-email", "name": "X"}, "email"),
            ({"email": "", "name": "X"}, "email"),
            ({"email": "x@example.com", "name": ""}, "name"),
            ({"email": "x@example.com", "name": "X", "phone_number": "12345"}, "phone_number"),
        ],
    )
    async def test_bad_input_is_invalid_argument_and_writes_nothing(
        self, auth: Any, fields: dict[str, str], bad: str
    ) -> None:
        business = await new_business(auth)
        err = await rpc_error(
            auth.stub.CreateCustomer(
                auth_pb2.CreateCustomerRequest(
                    business_id=business.business_id, mode=TEST, **fields
                )
            )
        )
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert bad in (err.details() or "")
        assert await auth.db.customers.count_documents({"business_id": business.business_id}) == 0
        assert (
            await auth.db[OUTBOX_COLLECTION].count_documents(
                {"event.data.business_id": business.business_id}
            )
            == 0
        )

    async def test_unknown_business_or_missing_mode(self, auth: Any) -> None:
        err = await rpc_error(new_customer(auth, "bus_missing", "a@example.com"))
        assert err.code() == grpc.StatusCode.NOT_FOUND
        business = await new_business(auth)
        err = await rpc_error(
            auth.stub.CreateCustomer(
                auth_pb2.CreateCustomerRequest(
                    business_id=business.business_id, email="a@example.com", name="A"
                )
            )
        )
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT

    async def test_customer_and_event_commit_together(self, auth: Any) -> None:
        """If the outbox write fails, the customer is not kept either (one transaction)."""
        business = await new_business(auth)
        customers = CustomerRepository(auth.runtime.db)
        uow = UnitOfWork(auth.runtime.client, auth.runtime.db)
        customer = Customer(
            customer_id=new_id("cus_"),
            business_id=business.business_id,
            mode="test",
            email="atomic@example.com",
            name="Atomic",
            created_at=utc_now(),
        )
        event = new_event("customer.created", "auth", CustomerCreatedData.from_customer(customer))
        # An outbox row with the same event id already exists, so the event insert fails
        # after the customer insert succeeded inside the transaction.
        await auth.db[OUTBOX_COLLECTION].insert_one(
            {"event_id": event.id, "type": "poison", "sent_at": utc_now(), "created_at": utc_now()}
        )

        async def write(txn: Txn) -> None:
            await customers.insert(customer, txn=txn)
            await uow.add_event(event, txn)

        with pytest.raises(Exception) as exc:
            await uow.run(write)
        assert not isinstance(exc.value, AlreadyExists)  # not mistaken for an email clash
        assert await auth.db.customers.find_one({"_id": customer.customer_id}) is None


class TestGetAndListCustomers:
    async def test_get_is_scoped_to_business_and_mode(self, auth: Any) -> None:
        owner = await new_business(auth, "Owner")
        other = await new_business(auth, "Other")
        created = (await new_customer(auth, owner.business_id, "giulia@example.com")).customer

        got = await auth.stub.GetCustomer(
            auth_pb2.GetCustomerRequest(
                business_id=owner.business_id, mode=TEST, customer_id=created.customer_id
            )
        )
        assert got == created
        for business_id, mode in [(other.business_id, TEST), (owner.business_id, LIVE)]:
            err = await rpc_error(
                auth.stub.GetCustomer(
                    auth_pb2.GetCustomerRequest(
                        business_id=business_id, mode=mode, customer_id=created.customer_id
                    )
                )
            )
            assert err.code() == grpc.StatusCode.NOT_FOUND
            # Same answer as for an id that does not exist at all: nothing is revealed.
            assert created.email not in (err.details() or "")

    async def test_list_pages_newest_first_and_filters_by_email(self, auth: Any) -> None:
        business = await new_business(auth)
        emails = [f"user{i}@example.com" for i in range(5)]
        ids = []
        for email in emails:
            ids.append((await new_customer(auth, business.business_id, email)).customer.customer_id)
        # A customer of another mode never shows up.
        await new_customer(auth, business.business_id, "live@example.com", mode=LIVE)

        async def page(number: int, size: int = 2, email: str = "") -> list[str]:
            response = await auth.stub.ListCustomers(
                auth_pb2.ListCustomersRequest(
                    business_id=business.business_id,
                    mode=TEST,
                    page_size=size,
                    page_number=number,
                    email=email,
                )
            )
            return [c.customer_id for c in response.customers]

        pages = [await page(0), await page(1), await page(2), await page(3)]
        assert [len(p) for p in pages] == [2, 2, 1, 0]
        assert [cid for p in pages for cid in p] == list(reversed(ids))
        assert await page(0, size=0) == list(reversed(ids))  # default size 10
        assert await page(0, email="  USER3@EXAMPLE.com") == [ids[3]]
        assert await page(0, email="nobody@example.com") == []

        err = await rpc_error(
            auth.stub.ListCustomers(
                auth_pb2.ListCustomersRequest(
                    business_id=business.business_id, mode=TEST, page_size=101
                )
            )
        )
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "page_size" in (err.details() or "")
