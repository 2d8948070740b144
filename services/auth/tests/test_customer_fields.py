"""Customers' ``metadata`` and ``preferred_locale``, and the merchant's email change.

Unit tests of the rules, then the gRPC contract against the real auth runtime,
SecantusDB and RabbitMQ (fixtures in conftest.py): limits, null vs absent on
update, email uniqueness, sessions ended, events, and the language of emails.
"""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest
from auth.customers.models import Customer
from auth.merchants.models import Branding, Business
from auth.portal_access.use_case import email_locale as choose_locale
from auth.rules import CUSTOMER_LOCALES, check_metadata, check_preferred_locale, utc_now
from billing.auth.v1 import auth_pb2, portal_access_pb2
from billing.common.v1 import common_pb2
from billing.notifications.v1 import email_pb2
from billing_kit.outbox import OUTBOX_COLLECTION
from billing_kit.testing import eventually

from .conftest import reason, rpc_error

TEST = common_pb2.MODE_TEST
pb = portal_access_pb2


# --- rules ---------------------------------------------------------------------------------


class TestMetadataRules:
    def test_within_the_limits_is_kept_as_given(self) -> None:
        data = {f"k{i}": "v" * 500 for i in range(50)}
        data["x" * 40] = data.pop("k0")
        assert check_metadata(data) == data
        assert check_metadata(None) == {}
        assert check_metadata({}) == {}

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            ({f"k{i}": "v" for i in range(51)}, "at most 50 keys"),
            ({"x" * 41: "v"}, "1 to 40 characters"),
            ({"": "v"}, "1 to 40 characters"),
            ({"plan": "s" * 501}, "at most 500 characters"),
            ({"plan": 3}, "values must be strings"),
            ({"plan": None}, "values must be strings"),
            (["plan"], "object of string keys"),
        ],
    )
    def test_over_the_limits_is_refused_without_echoing(self, value: Any, message: str) -> None:
        with pytest.raises(ValueError, match=message) as info:
            check_metadata(value)
        assert "plan" not in str(info.value) and "sss" not in str(info.value)

    def test_preferred_locale_is_one_of_dodos_codes(self) -> None:
        assert check_preferred_locale("it") == "it"
        assert check_preferred_locale(None) is None and check_preferred_locale("") is None
        assert {"en", "it", "fr", "de", "zh", "tr"} <= set(CUSTOMER_LOCALES)
        for bad in ("IT", "it-IT", "xx", " it", 3):
            with pytest.raises(ValueError, match="must be one of"):
                check_preferred_locale(bad)


def _business(locale: str = "en") -> Business:
    return Business(
        business_id="bus_1", name="Acme", branding=Branding(), locale=locale, created_at=utc_now()
    )


def _customer(preferred_locale: str | None) -> Customer:
    return Customer(
        customer_id="cus_1",
        business_id="bus_1",
        mode="test",
        email="mario@example.test",
        name="Mario",
        created_at=utc_now(),
        preferred_locale=preferred_locale,
    )


class TestEmailLanguage:
    def test_an_explicit_choice_wins_over_the_customers_language(self) -> None:
        assert choose_locale("en", _business(), customer=_customer("it"), explicit=True) == "en"

    def test_the_customers_language_wins_over_the_page_and_the_business(self) -> None:
        assert choose_locale("en", _business("en"), customer=_customer("it")) == "it"
        assert choose_locale(None, _business("en"), customer=_customer("fr")) == "fr"

    def test_without_a_customer_language_the_request_then_the_business(self) -> None:
        assert choose_locale("it", _business("en"), customer=_customer(None)) == "it"
        assert choose_locale(None, _business("it"), customer=_customer(None)) == "it"
        assert choose_locale(None, None) == "en"


# --- over gRPC -----------------------------------------------------------------------------


def unique_email(name: str = "ada") -> str:
    return f"{name}.{uuid.uuid4().hex[:10]}@example.test"


async def new_business(auth: Any, locale: str = "en") -> auth_pb2.Business:
    business: auth_pb2.Business = await auth.stub.CreateBusiness(
        auth_pb2.CreateBusinessRequest(name="Acme", locale=locale)
    )
    return business


async def new_customer(auth: Any, business_id: str, email: str, **fields: Any) -> auth_pb2.Customer:
    reply = await auth.stub.CreateCustomer(
        auth_pb2.CreateCustomerRequest(
            business_id=business_id, mode=TEST, email=email, name="Ada Lovelace", **fields
        )
    )
    customer: auth_pb2.Customer = reply.customer
    return customer


async def get_customer(auth: Any, customer: auth_pb2.Customer) -> auth_pb2.Customer:
    fetched: auth_pb2.Customer = await auth.stub.GetCustomer(
        auth_pb2.GetCustomerRequest(
            business_id=customer.business_id, mode=TEST, customer_id=customer.customer_id
        )
    )
    return fetched


async def update(auth: Any, customer: auth_pb2.Customer, **fields: Any) -> auth_pb2.Customer:
    updated: auth_pb2.Customer = await auth.portal.UpdateProfile(
        pb.UpdateProfileRequest(
            business_id=customer.business_id, mode=TEST, customer_id=customer.customer_id, **fields
        )
    )
    return updated


async def events(auth: Any, customer_id: str, type_: str) -> list[dict[str, Any]]:
    cursor = auth.db[OUTBOX_COLLECTION].find({"type": type_, "event.subject": customer_id})
    return [doc["event"] async for doc in cursor]


async def sign_in(auth: Any, customer: auth_pb2.Customer) -> str:
    link = await auth.portal.CreatePortalLink(
        pb.CreatePortalLinkRequest(
            business_id=customer.business_id, mode=TEST, customer_id=customer.customer_id
        )
    )
    started = await auth.portal.ConsumeToken(
        pb.ConsumeTokenRequest(token=link.link.rsplit("/", 1)[1], mode=TEST)
    )
    secret: str = started.session_secret
    return secret


async def email_locale(auth: Any, address: str, template: int, count: int) -> str:
    def matching() -> list[email_pb2.SendEmailRequest]:
        return [e for e in auth.emails.to(address) if e.template == template]

    assert await eventually(lambda: len(matching()) >= count, within=10)
    locale: str = matching()[count - 1].locale
    return locale


@pytest.mark.integration
class TestCreateAndRead:
    async def test_metadata_and_language_are_stored_returned_and_in_the_event(
        self, auth: Any
    ) -> None:
        business = await new_business(auth)
        # Keys MongoDB could not use as field names are just data here.
        metadata = {"crm.id": "42", "$plan": "pro", "note": "x" * 500}
        customer = await new_customer(
            auth, business.business_id, unique_email(), metadata=metadata, preferred_locale="it"
        )
        assert dict(customer.metadata) == metadata and customer.preferred_locale == "it"
        fetched = await get_customer(auth, customer)
        assert dict(fetched.metadata) == metadata and fetched.preferred_locale == "it"
        listed = await auth.stub.ListCustomers(
            auth_pb2.ListCustomersRequest(
                business_id=business.business_id, mode=TEST, email=customer.email
            )
        )
        assert [dict(c.metadata) for c in listed.customers] == [metadata]
        (created,) = await events(auth, customer.customer_id, "customer.created")
        assert created["data"]["metadata"] == metadata
        assert created["data"]["preferred_locale"] == "it" and created["data"]["locale"] == "it"

    async def test_without_them_metadata_is_empty_and_language_none(self, auth: Any) -> None:
        business = await new_business(auth)
        customer = await new_customer(auth, business.business_id, unique_email())
        assert dict(customer.metadata) == {} and customer.preferred_locale == ""
        (created,) = await events(auth, customer.customer_id, "customer.created")
        assert created["data"]["preferred_locale"] is None and created["data"]["metadata"] == {}

    @pytest.mark.parametrize(
        ("fields", "named"),
        [
            ({"metadata": {f"k{i}": "v" for i in range(51)}}, "metadata"),
            ({"metadata": {"k" * 41: "v"}}, "metadata"),
            ({"metadata": {"secret": "s3cr3t" * 100}}, "metadata"),
            ({"preferred_locale": "klingon"}, "preferred_locale"),
        ],
    )
    async def test_bad_values_are_refused_naming_the_field_and_nothing_is_written(
        self, auth: Any, fields: dict[str, Any], named: str
    ) -> None:
        business = await new_business(auth)
        email = unique_email()
        err = await rpc_error(new_customer(auth, business.business_id, email, **fields))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert named in (err.details() or "")
        assert "s3cr3t" not in (err.details() or "") and "klingon" not in (err.details() or "")
        assert await auth.db["customers"].count_documents({"email": email}) == 0


@pytest.mark.integration
class TestMerchantUpdate:
    async def test_absent_leaves_a_field_null_or_empty_clears_it(self, auth: Any) -> None:
        business = await new_business(auth)
        customer = await new_customer(
            auth,
            business.business_id,
            unique_email(),
            metadata={"crm": "1", "tier": "gold"},
            preferred_locale="it",
        )
        renamed = await update(auth, customer, name="Ada King")
        assert renamed.preferred_locale == "it" and dict(renamed.metadata) == {
            "crm": "1",
            "tier": "gold",
        }
        replaced = await update(
            auth, customer, metadata=auth_pb2.CustomerMetadata(values={"crm": "2"})
        )
        assert dict(replaced.metadata) == {"crm": "2"} and replaced.preferred_locale == "it"
        relanguaged = await update(auth, customer, preferred_locale="fr")
        assert relanguaged.preferred_locale == "fr"
        cleared = await update(auth, customer, preferred_locale="")
        assert cleared.preferred_locale == "" and dict(cleared.metadata) == {"crm": "2"}
        emptied = await update(auth, customer, metadata=auth_pb2.CustomerMetadata())
        assert dict(emptied.metadata) == {}
        fetched = await get_customer(auth, customer)
        assert (fetched.name, fetched.preferred_locale, dict(fetched.metadata)) == (
            "Ada King",
            "",
            {},
        )
        changed = [
            e["data"]["changed_fields"]
            for e in sorted(
                await events(auth, customer.customer_id, "customer.updated"),
                key=lambda e: e["data"]["updated_at"],
            )
        ]
        assert sorted(map(tuple, changed)) == sorted(
            [("name",), ("metadata",), ("preferred_locale",), ("preferred_locale",), ("metadata",)]
        )
        # Sending the same values again changes nothing and emits nothing.
        await update(auth, customer, preferred_locale="", metadata=auth_pb2.CustomerMetadata())
        assert len(await events(auth, customer.customer_id, "customer.updated")) == 5

    async def test_bad_update_is_refused_and_nothing_changes(self, auth: Any) -> None:
        business = await new_business(auth)
        customer = await new_customer(
            auth, business.business_id, unique_email(), metadata={"crm": "1"}
        )
        too_many = auth_pb2.CustomerMetadata(values={f"k{i}": "v" for i in range(51)})
        for fields, why in (
            ({"metadata": too_many, "name": "New Name"}, "INVALID_METADATA"),
            ({"preferred_locale": "xx"}, "INVALID_PREFERRED_LOCALE"),
            ({"email": "not-an-email"}, "INVALID_EMAIL"),
        ):
            err = await rpc_error(update(auth, customer, **fields))
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and reason(err) == why
        fetched = await get_customer(auth, customer)
        assert fetched.name == "Ada Lovelace" and dict(fetched.metadata) == {"crm": "1"}
        assert await events(auth, customer.customer_id, "customer.updated") == []

    async def test_email_change_applies_at_once_ends_sessions_and_emits_the_event(
        self, auth: Any
    ) -> None:
        business = await new_business(auth)
        customer = await new_customer(auth, business.business_id, unique_email())
        other = await new_customer(auth, business.business_id, unique_email("grace"))
        secret = await sign_in(auth, customer)
        # The customer's own pending change must not undo the merchant's later on.
        await auth.portal.RequestEmailChange(
            pb.RequestEmailChangeRequest(
                business_id=business.business_id,
                mode=TEST,
                customer_id=customer.customer_id,
                new_email=unique_email("pending"),
            )
        )

        taken = await rpc_error(update(auth, customer, email=f"  {other.email.upper()} "))
        assert taken.code() == grpc.StatusCode.ALREADY_EXISTS and reason(taken) == "EMAIL_TAKEN"
        assert (await get_customer(auth, customer)).email == customer.email
        await auth.portal.ResolveSession(pb.ResolveSessionRequest(session_secret=secret))
        assert await events(auth, customer.customer_id, "customer.updated") == []

        new_email = unique_email("ada.new")
        changed = await update(auth, customer, email=new_email)
        assert changed.email == new_email
        by_email = await auth.stub.ListCustomers(
            auth_pb2.ListCustomersRequest(
                business_id=business.business_id, mode=TEST, email=new_email.upper()
            )
        )
        assert [c.customer_id for c in by_email.customers] == [customer.customer_id]
        ended = await rpc_error(
            auth.portal.ResolveSession(pb.ResolveSessionRequest(session_secret=secret))
        )
        assert ended.code() == grpc.StatusCode.UNAUTHENTICATED
        (event,) = await events(auth, customer.customer_id, "customer.updated")
        assert event["data"]["changed_fields"] == ["email"]
        assert event["data"]["email"] == new_email
        pending = await auth.db["portal_tokens"].count_documents(
            {"customer_id": customer.customer_id, "purpose": "email_change", "used_at": None}
        )
        assert pending == 0
        # The old address is free again for another customer.
        again = await new_customer(auth, business.business_id, customer.email)
        assert again.customer_id != customer.customer_id


@pytest.mark.integration
class TestEmailLanguageOverGrpc:
    async def test_emails_follow_the_customers_language_unless_one_was_picked(
        self, auth: Any
    ) -> None:
        business = await new_business(auth, locale="en")
        italian = await new_customer(
            auth, business.business_id, unique_email("it"), preferred_locale="it"
        )
        plain = await new_customer(auth, business.business_id, unique_email("plain"))

        await auth.portal.CreatePortalLink(
            pb.CreatePortalLinkRequest(
                business_id=business.business_id,
                mode=TEST,
                customer_id=italian.customer_id,
                send_email=True,
            )
        )
        portal_link = email_pb2.EMAIL_TEMPLATE_PORTAL_LINK
        assert await email_locale(auth, italian.email, portal_link, 1) == "it"

        sign_in_link = email_pb2.EMAIL_TEMPLATE_SIGN_IN_LINK
        for address, locale, explicit, expected in (
            (italian.email, "en", False, "it"),  # the page's language was only negotiated
            (italian.email, "en", True, "en"),  # the visitor picked English
            (plain.email, "it", False, "it"),  # no preferred language: the page's
        ):
            sent = len([e for e in auth.emails.to(address) if e.template == sign_in_link])
            await auth.portal.RequestSignInLink(
                pb.RequestSignInLinkRequest(
                    business_id=business.business_id,
                    mode=TEST,
                    email=address,
                    client_key=uuid.uuid4().hex,
                    locale=locale,
                    locale_explicit=explicit,
                )
            )
            assert await email_locale(auth, address, sign_in_link, sent + 1) == expected

    async def test_a_session_carries_its_customers_language(self, auth: Any) -> None:
        business = await new_business(auth)
        customer = await new_customer(
            auth, business.business_id, unique_email(), preferred_locale="it"
        )
        secret = await sign_in(auth, customer)
        request = pb.ResolveSessionRequest(session_secret=secret)
        assert (await auth.portal.ResolveSession(request)).customer_preferred_locale == "it"
        await update(auth, customer, preferred_locale="")
        assert (await auth.portal.ResolveSession(request)).customer_preferred_locale == ""
