# ruff: noqa: F811  (the world fixture imported from test_invoice_pages is a parameter here)
"""The billing details page and re-issuing an invoice, through the real gateway app.

The fake auth applies auth's own rule (python-stdnum), so what the customer
sees for a bad VAT number is what the running service makes them see; the
fake invoicing re-issues as the contract says (a new version, the old PDF kept).
"""

from __future__ import annotations

import re
from typing import Any

from billing.common.v1 import common_pb2
from billing.invoicing.v1 import invoicing_pb2

from .test_invoice_pages import World, add_payment, world  # noqa: F401  (fixture)
from .test_portal_pages import cookie_header
from .test_unified_handoff import unified_sign_in

VALID = {
    "country": "DE",
    "business_name": "Lovelace GmbH",
    "street": "Unter den Linden 1",
    "zipcode": "10117",
    "city": "Berlin",
    "state": "",
    "tax_id": "DE 136 695 976",
}


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


async def post(world: World, rest: str, form: dict[str, str]) -> Any:
    return await world.client.post(
        world.path(rest), data=form, headers=cookie_header(world.cookies), allow_redirects=False
    )


def saved_details(world: World) -> Any:
    customer = next(c for c in world.auth.customers if c.customer_id == world.customer_id)
    return customer.billing_details if customer.HasField("billing_details") else None


async def test_the_form_has_labels_autocomplete_and_csrf(
    world: World,
) -> None:
    resp = await world.get("billing-details")
    html = await resp.text()
    assert resp.status == 200, html
    for attribute in (
        'autocomplete="country"',
        'autocomplete="organization"',
        'autocomplete="address-line1"',
        'autocomplete="address-level2"',
        'autocomplete="postal-code"',
    ):
        assert attribute in html, attribute
    for field in ("country", "business_name", "street", "zipcode", "city", "tax_id"):
        assert f'<label for="{field}">' in html, field
    assert csrf_of(html)
    assert '<option value="DE">Germany</option>' in html
    italian = await (await world.get("billing-details?lang=it")).text()
    assert "Dati di fatturazione" in italian and '<option value="DE">Germania</option>' in italian
    # Reachable from the profile page.
    profile = await (await world.get("profile")).text()
    assert f'href="{world.path("billing-details")}"' in profile


async def test_an_invalid_vat_number_is_refused_next_to_the_field(
    world: World,
) -> None:
    token = csrf_of(await (await world.get("billing-details")).text())
    bad = {**VALID, "tax_id": "DE136695977", "csrf_token": token}
    resp = await post(world, "billing-details", bad)
    html = await resp.text()
    assert resp.status == 422
    assert 'id="tax_id-error"' in html and "not valid for the country" in html
    assert 'value="DE136695977"' in html and 'value="Unter den Linden 1"' in html
    assert saved_details(world) is None

    # A valid German number on an Italian address: also refused, in Italian.
    resp = await post(
        world, "billing-details?lang=it", {**VALID, "country": "IT", "csrf_token": token}
    )
    html = await resp.text()
    assert resp.status == 422 and "non è valida per il paese" in html
    assert saved_details(world) is None


async def test_valid_details_are_saved_compact(world: World) -> None:
    token = csrf_of(await (await world.get("billing-details")).text())
    resp = await post(world, "billing-details", {**VALID, "csrf_token": token})
    assert resp.status == 303
    assert resp.headers["Location"].endswith("billing-details?saved=1")
    details = saved_details(world)
    assert details is not None and details.tax_id == "DE136695976"
    html = await (await world.get("billing-details?saved=1")).text()
    assert 'id="billing-details-saved"' in html
    assert 'value="DE136695976"' in html and '<option value="DE" selected>' in html


async def test_without_csrf_nothing_is_saved(world: World) -> None:
    resp = await post(world, "billing-details", {**VALID, "csrf_token": "forged"})
    assert resp.status == 400
    assert saved_details(world) is None


async def test_reissue_is_offered_when_details_differ_and_lists_both_versions(
    world: World,
) -> None:
    detail = f"invoices/{world.paid.payment_id}"
    html = await (await world.get(detail)).text()
    assert 'id="reissue-invoice"' not in html  # no billing details yet
    token = csrf_of(html)
    await post(world, "billing-details", {**VALID, "csrf_token": token})
    html = await (await world.get(detail)).text()
    assert 'id="reissue-invoice"' in html

    world.invoicing.reissue_buyer = invoicing_pb2.BuyerDetails(
        country="DE",
        business_name="Lovelace GmbH",
        street="Unter den Linden 1",
        zipcode="10117",
        city="Berlin",
        tax_id="DE136695976",
    )
    forged = await post(world, f"{detail}/reissue", {"csrf_token": "forged"})
    assert forged.status == 400 and world.invoicing.count("ReissueInvoice") == 0
    resp = await post(world, f"{detail}/reissue", {"csrf_token": token})
    assert resp.status == 303 and resp.headers["Location"].endswith("?reissued=1")
    asked = next(r for n, r in world.invoicing.calls if n == "ReissueInvoice")
    assert (asked.customer_id, asked.invoice_id) == (world.customer_id, world.invoice_id)

    html = await (await world.get(f"{detail}?reissued=1")).text()
    assert 'id="reissued"' in html and 'id="invoice-versions"' in html
    assert 'id="version-2"' in html and 'id="version-1"' in html
    assert 'id="reissue-invoice"' not in html  # the invoice now prints these details
    assert "Lovelace GmbH" in html and "DE136695976" in html
    history = await (await world.get("invoices")).text()
    assert "(v2)" in history

    latest = await world.get(f"{detail}/pdf")
    assert await latest.read() == world.invoicing.pdfs[world.invoice_id]
    assert 'filename="invoice-INV-000001-v2.pdf"' in latest.headers["Content-Disposition"]
    first = await world.get(f"{detail}/pdf?version=1")
    assert first.status == 200
    assert await first.read() == world.invoicing.earlier_pdfs[world.invoice_id, 1]
    assert (await world.get(f"{detail}/pdf?version=x")).status == 404


async def test_another_customers_invoice_cannot_be_reissued(world: World) -> None:
    eve = world.auth.add_customer(world.business_id, "eve@example.com")
    theirs = add_payment(world.billing, world.business_id, eve, days=5)
    world.invoicing.issue(theirs)
    token = csrf_of(await (await world.get("billing-details")).text())
    resp = await post(world, f"invoices/{theirs.payment_id}/reissue", {"csrf_token": token})
    assert resp.status == 404
    assert world.invoicing.count("ReissueInvoice") == 0


async def test_the_unified_portal_edits_each_businesss_details(world: World) -> None:
    shop = world.auth.add_business("Shop U")
    grace = world.auth.add_customer(shop, "grace@example.com", mode=common_pb2.MODE_LIVE)
    cookies = await unified_sign_in(world.client, world.auth, "grace@example.com")
    page = f"/all/b/{shop}/billing-details"
    resp = await world.client.get(page, headers=cookie_header(cookies))
    html = await resp.text()
    assert resp.status == 200, html
    assert 'autocomplete="organization"' in html and f'action="{page}"' in html
    resp = await world.client.post(
        page,
        data={**VALID, "csrf_token": csrf_of(html)},
        headers=cookie_header(cookies),
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == f"{page}?saved=1"
    customer = next(c for c in world.auth.customers if c.customer_id == grace)
    assert customer.billing_details.tax_id == "DE136695976"
    # Ada's (the business portal's customer) are untouched.
    assert saved_details(world) is None
