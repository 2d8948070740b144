"""Customers' ``metadata``, ``preferred_locale`` and the merchant's email change over
HTTP (against in-memory auth, conftest.FakeAuth/FakePortal), and the portal's
language order with a signed-in customer's own language.
"""

from __future__ import annotations

import json
from typing import Any, get_args

import dodopayments
import pytest
from auth.rules import CUSTOMER_LOCALES
from dodopayments import AsyncDodoPayments
from dodopayments.types import Locale as SdkLocale
from gateway.api.schemas import LOCALES

from .test_portal_pages import cookie_header, form_page, sign_in


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def sdk_for(client: Any, key: str) -> AsyncDodoPayments:
    return AsyncDodoPayments(
        bearer_token=key, base_url=str(client.make_url("")).rstrip("/"), max_retries=0
    )


def test_the_language_codes_are_dodos_everywhere() -> None:
    assert list(LOCALES) == list(get_args(SdkLocale)) == list(CUSTOMER_LOCALES)


async def test_create_and_retrieve_carry_metadata_and_language_through_the_sdk(
    gateway: Any,
) -> None:
    client, fake = gateway
    key = fake.add_key(fake.add_business("Acme"))
    async with sdk_for(client, key) as sdk:
        created = await sdk.customers.create(
            email="ada@example.com",
            name="Ada",
            metadata={"crm_id": "42"},
            preferred_locale="it",
        )
        assert created.metadata == {"crm_id": "42"} and created.preferred_locale == "it"
        fetched = await sdk.customers.retrieve(created.customer_id)
        assert fetched.metadata == {"crm_id": "42"} and fetched.preferred_locale == "it"
        plain = await sdk.customers.create(email="grace@example.com", name="Grace")
        assert plain.metadata == {} and plain.preferred_locale is None
    # On the wire: an empty object and an explicit null, as Dodo's API answers.
    resp = await client.get(f"/customers/{plain.customer_id}", headers=bearer(key))
    body = await resp.json()
    assert body["metadata"] == {} and "preferred_locale" in body
    assert body["preferred_locale"] is None


async def test_patch_null_removes_absent_leaves_and_values_replace(gateway: Any) -> None:
    client, fake = gateway
    key = fake.add_key(fake.add_business("Acme"))
    async with sdk_for(client, key) as sdk:
        customer = await sdk.customers.create(
            email="ada@example.com",
            name="Ada",
            metadata={"crm_id": "42", "tier": "gold"},
            preferred_locale="it",
        )
        path = f"/customers/{customer.customer_id}"
        renamed = await sdk.customers.update(customer.customer_id, name="Ada King")
        sent = fake.portal.profile_updates[-1]
        assert not sent.HasField("preferred_locale") and not sent.HasField("metadata")
        # Auth audits the change as the calling key's (the merchant), not the customer's.
        assert sent.merchant_key_id == fake.keys[key].key_id
        assert renamed.preferred_locale == "it" and renamed.metadata == {
            "crm_id": "42",
            "tier": "gold",
        }
        replaced = await sdk.customers.update(customer.customer_id, metadata={"crm_id": "43"})
        assert replaced.metadata == {"crm_id": "43"} and replaced.preferred_locale == "it"
        cleared = await sdk.customers.update(customer.customer_id, preferred_locale=None)
        sent = fake.portal.profile_updates[-1]
        assert sent.HasField("preferred_locale") and sent.preferred_locale == ""
        assert cleared.preferred_locale is None and cleared.metadata == {"crm_id": "43"}
    resp = await client.patch(path, json={"metadata": None}, headers=bearer(key))
    body = await resp.json()
    assert resp.status == 200 and body["metadata"] == {} and body["name"] == "Ada King"
    assert fake.portal.profile_updates[-1].HasField("metadata")


async def test_patch_email_applies_and_a_taken_one_is_a_409(gateway: Any) -> None:
    client, fake = gateway
    business_id = fake.add_business("Acme")
    key = fake.add_key(business_id)
    ada = fake.add_customer(business_id, "ada@example.com")
    fake.add_customer(business_id, "grace@example.com")
    async with sdk_for(client, key) as sdk:
        changed = await sdk.customers.update(ada, email="ada.king@example.com")
        assert changed.email == "ada.king@example.com"
        with pytest.raises(dodopayments.ConflictError) as info:
            await sdk.customers.update(ada, email="grace@example.com")
    assert info.value.status_code == 409
    assert info.value.response.headers["content-type"].startswith("application/problem+json")
    assert info.value.body["code"] == "EMAIL_TAKEN"  # type: ignore[index]
    assert info.value.response.headers["x-should-retry"] == "false"
    assert fake.portal._customer(business_id, 1, ada).email == "ada.king@example.com"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"metadata": {f"k{i}": "v" for i in range(51)}}, "metadata"),
        ({"metadata": {"k" * 41: "v"}}, "metadata"),
        ({"metadata": {"plan": "s3cr3t" * 100}}, "metadata.plan"),
        ({"metadata": {"plan": 3}}, "metadata.plan"),
        ({"metadata": {"plan": True}}, "metadata.plan"),
        ({"preferred_locale": "IT"}, "preferred_locale"),
        ({"email": None}, "body"),
    ],
)
async def test_bad_fields_are_a_422_problem_and_nothing_is_written(
    gateway: Any, body: dict[str, Any], field: str
) -> None:
    client, fake = gateway
    business_id = fake.add_business("Acme")
    key = fake.add_key(business_id)
    customer_id = fake.add_customer(business_id, "ada@example.com")
    resp = await client.patch(f"/customers/{customer_id}", json=body, headers=bearer(key))
    problem = await resp.json()
    assert resp.status == 422 and resp.content_type == "application/problem+json"
    assert field in [e["field"].split(".[key]")[0] for e in problem["errors"]] or (
        field == "metadata" and any(e["field"].startswith("metadata") for e in problem["errors"])
    )
    assert "s3cr3t" not in json.dumps(problem)
    assert fake.portal.profile_updates == []
    created = await client.post(
        "/customers",
        json={"email": "new@example.com", "name": "New", **body},
        headers=bearer(key),
    )
    if field != "body":  # email: null is only meaningful on PATCH
        assert created.status == 422
        assert fake.calls.get("CreateCustomer", 0) == 0


async def test_openapi_documents_the_fields(gateway: Any) -> None:
    client, _ = gateway
    doc = await (await client.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    for name in ("CreateCustomerBody", "UpdateCustomerBody", "CustomerOut"):
        props = schemas[name]["properties"]
        assert {"metadata", "preferred_locale"} <= set(props), name
    assert "email" in schemas["UpdateCustomerBody"]["properties"]
    locale = json.dumps(schemas["UpdateCustomerBody"]["properties"]["preferred_locale"])
    assert '"it"' in locale and '"tr"' in locale
    assert "409" in doc["paths"]["/customers/{customer_id}"]["patch"]["responses"]


# --- the portal's language ------------------------------------------------------------------


async def test_portal_speaks_the_customers_language_unless_the_visitor_picked_one(
    gateway: Any,
) -> None:
    client, fake = gateway
    business_id = fake.add_business("Acme", locale="en")
    customer_id = fake.add_customer(business_id, "ada@example.com")
    fake.customers[-1].preferred_locale = "it"
    _, cookies = await sign_in(client, fake, business_id, customer_id)
    headers = {**cookie_header(cookies), "Accept-Language": "en-US"}
    html = await (await client.get(f"/test/b/{business_id}/profile", headers=headers)).text()
    assert '<html lang="it">' in html
    resp = await client.get(f"/test/b/{business_id}/profile?lang=en", headers=headers)
    assert '<html lang="en">' in await resp.text()
    with_cookie = cookie_header({**cookies, "cp_lang": "en"})
    resp = await client.get(f"/test/b/{business_id}/profile", headers=with_cookie)
    assert '<html lang="en">' in await resp.text()


async def test_a_language_without_a_catalog_falls_back_to_the_browser_then_the_business(
    gateway: Any,
) -> None:
    client, fake = gateway
    business_id = fake.add_business("Bottega", locale="it")
    customer_id = fake.add_customer(business_id, "jean@example.com")
    fake.customers[-1].preferred_locale = "fr"
    _, cookies = await sign_in(client, fake, business_id, customer_id)
    profile = f"/test/b/{business_id}/profile"
    # The browser reads English: its own setting beats the business's language.
    headers = {**cookie_header(cookies), "Accept-Language": "en-US"}
    assert '<html lang="en">' in await (await client.get(profile, headers=headers)).text()
    # Nothing we have in the browser's list either: the business's language.
    headers = {**cookie_header(cookies), "Accept-Language": "fr-FR,fr;q=0.9"}
    assert '<html lang="it">' in await (await client.get(profile, headers=headers)).text()


async def test_an_italian_browser_reads_italian_at_an_english_business(gateway: Any) -> None:
    client, fake = gateway
    business_id = fake.add_business("Acme", locale="en")
    customer_id = fake.add_customer(business_id, "ada@example.com")
    italian = {"Accept-Language": "it-IT"}
    html = await (await client.get(f"/test/login/{business_id}", headers=italian)).text()
    assert '<html lang="it">' in html and "Accedi a Acme" in html
    _, cookies = await sign_in(client, fake, business_id, customer_id)
    headers = {**cookie_header(cookies), **italian}
    html = await (await client.get(f"/test/b/{business_id}/", headers=headers)).text()
    assert '<html lang="it">' in html


async def test_sign_in_request_says_whether_the_language_was_picked(gateway: Any) -> None:
    client, fake = gateway
    business_id = fake.add_business("Acme", locale="it")
    for path, explicit in ((f"/test/login/{business_id}", False), ("?lang=en", True)):
        url = f"/test/login/{business_id}" + (path if path.startswith("?") else "")
        _, _, csrf, cookies = await form_page(client, url)
        await client.post(
            f"/test/login/{business_id}",
            data={"email": "ada@example.com", "csrf_token": csrf},
            headers=cookie_header(cookies),
        )
        sent = fake.portal.sign_in_requests[-1]
        assert sent.locale_explicit is explicit
        assert sent.locale == ("en" if explicit else "it")
