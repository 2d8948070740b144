"""Invoice history, detail and PDF download through the real gateway app, against fakes.

What a customer (or a merchant) would notice: the history lists every
transaction newest first with its invoice and a download link, in their
language; the download is the stored PDF as an attachment named after the
invoice; another customer's payment is the same 404 as an unknown one; a page
asks each backend one question; the unified history shows each business's
name and asks once for every business of the email.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from billing.common.v1 import common_pb2
from billing.payments.v1 import payments_pb2
from gateway.app import create_app

from .billing_fakes import FakeBilling, start_fake_billing
from .conftest import settings_for
from .invoicing_fakes import FakeInvoicing, start_fake_invoicing
from .test_portal_pages import cookie_header, sign_in
from .test_unified_handoff import unified_sign_in

Client = TestClient[Any, Any]
DAY_ONE = datetime(2026, 11, 1, 9, tzinfo=UTC)


def add_payment(
    billing: FakeBilling,
    business_id: str,
    customer_id: str,
    *,
    days: int = 0,
    amount: int = 35620,
    status: int = payments_pb2.PAYMENT_STATUS_SUCCEEDED,
    mode: int = common_pb2.MODE_TEST,
) -> payments_pb2.Payment:
    payment = payments_pb2.Payment(
        payment_id=f"pay_{uuid.uuid4().hex[:12]}",
        business_id=business_id,
        mode=mode,
        customer_id=customer_id,
        subscription_id="sub_1",
        total_amount=amount,
        currency="EUR",
        status=status,
        card_brand="visa",
        card_last_four="4242",
    )
    if status == payments_pb2.PAYMENT_STATUS_FAILED:
        payment.error_code = "card_declined"
    payment.created_at.FromDatetime(DAY_ONE + timedelta(days=days))
    billing.payments[payment.payment_id] = payment
    return payment


class World:
    """A signed-in customer of one business with a paid, a failed and a refunded payment."""

    def __init__(
        self, client: Client, auth: Any, billing: FakeBilling, invoicing: FakeInvoicing
    ) -> None:
        self.client, self.auth, self.billing, self.invoicing = client, auth, billing, invoicing
        self.business_id = auth.add_business("Acme Italia")
        self.customer_id = auth.add_customer(self.business_id, "ada@example.com")
        self.paid = add_payment(billing, self.business_id, self.customer_id, days=2)
        self.invoice_id = invoicing.issue(self.paid)
        self.failed = add_payment(
            billing,
            self.business_id,
            self.customer_id,
            days=1,
            status=payments_pb2.PAYMENT_STATUS_FAILED,
        )
        self.refunded = add_payment(billing, self.business_id, self.customer_id, days=0)
        invoicing.credit(invoicing.issue(self.refunded))
        self.cookies: dict[str, str] = {}

    def path(self, rest: str) -> str:
        return f"/test/b/{self.business_id}/{rest}"

    async def get(self, rest: str, cookies: dict[str, str] | None = None) -> Any:
        return await self.client.get(
            self.path(rest),
            headers=cookie_header(self.cookies if cookies is None else cookies),
            allow_redirects=False,
        )

    def clear_calls(self) -> None:
        self.billing.calls.clear()
        self.invoicing.calls.clear()


@pytest.fixture
async def world(fake_auth: tuple[Any, int]) -> AsyncIterator[World]:
    auth, auth_port = fake_auth
    billing, billing_server, billing_port = await start_fake_billing()
    invoicing, invoicing_server, invoicing_port = await start_fake_invoicing()
    settings = settings_for(
        auth_port,
        subscriptions_target=f"127.0.0.1:{billing_port}",
        payments_target=f"127.0.0.1:{billing_port}",
        invoicing_target=f"127.0.0.1:{invoicing_port}",
    )
    try:
        async with TestClient(TestServer(create_app(settings))) as client:
            w = World(client, auth, billing, invoicing)
            _, w.cookies = await sign_in(client, auth, w.business_id, w.customer_id)
            yield w
    finally:
        await billing_server.stop(None)
        await invoicing_server.stop(None)


async def test_history_lists_every_transaction_newest_first_with_two_calls(world: World) -> None:
    world.clear_calls()
    resp = await world.get("invoices")
    html = await resp.text()
    assert resp.status == 200, html
    order = [html.index(f'id="row-{p.payment_id}"') for p in (world.paid, world.failed)]
    assert order == sorted(order)
    assert html.index(f'id="row-{world.failed.payment_id}"') < html.index(
        f'id="row-{world.refunded.payment_id}"'
    )
    assert "€356.20" in html and "Nov 3, 2026" in html
    assert 'data-status="succeeded"' in html and 'data-status="failed"' in html
    assert 'data-status="refunded"' in html
    assert "INV-000001" in html and "Download PDF" in html
    assert f'href="{world.path(f"invoices/{world.paid.payment_id}/pdf")}"' in html
    # The failed payment has no invoice and no download.
    assert f"invoices/{world.failed.payment_id}/pdf" not in html
    # One page of payments, then the invoices of exactly those payments.
    assert world.billing.count("ListPayments") == 1
    assert world.invoicing.count("ListInvoices") == 1
    asked = next(r for n, r in world.invoicing.calls if n == "ListInvoices")
    assert set(asked.payment_ids) == {p.payment_id for p in world.billing.payments.values()}
    assert asked.customer_id == world.customer_id and asked.business_id == world.business_id
    listed = next(r for n, r in world.billing.calls if n == "ListPayments")
    assert list(listed.customer_ids) == [world.customer_id]


async def test_history_reads_italian(world: World) -> None:
    resp = await world.get("invoices?lang=it")
    html = await resp.text()
    assert resp.status == 200
    assert "Storico fatture" in html and "356,20\xa0€" in html and "Scarica PDF" in html
    assert "Rimborsato" in html and "3 nov 2026" in html


async def test_history_pages_by_twenty(world: World) -> None:
    for day in range(3, 25):
        add_payment(world.billing, world.business_id, world.customer_id, days=day)
    html = await (await world.get("invoices")).text()
    assert html.count('id="row-') == 20 and 'id="older-page"' in html
    assert 'id="newer-page"' not in html
    html = await (await world.get("invoices?page=2")).text()
    assert html.count('id="row-') == 5 and 'id="newer-page"' in html
    assert f'id="row-{world.refunded.payment_id}"' in html
    for bad in ("invoices?page=0", "invoices?page=x", "invoices?page=-1"):
        assert (await world.get(bad)).status == 404


async def test_detail_shows_seller_buyer_lines_totals_and_method(world: World) -> None:
    resp = await world.get(f"invoices/{world.paid.payment_id}")
    html = await resp.text()
    assert resp.status == 200, html
    assert "Invoice INV-000001" in html
    assert 'id="seller">Acme Italia S.r.l.' in html and "Ada Lovelace" in html
    assert 'id="payment-method">Visa •••• 4242' in html
    assert 'id="invoice-lines"' in html and "Pro plan" in html
    assert 'id="total">€356.20' in html and "Subtotal" in html and "Tax" in html
    assert 'id="download-pdf"' in html


async def test_detail_of_a_failed_payment_says_there_is_no_invoice(world: World) -> None:
    html = await (await world.get(f"invoices/{world.failed.payment_id}")).text()
    assert 'id="no-invoice"' in html and "Your card was declined" in html
    assert 'id="download-pdf"' not in html


async def test_download_is_the_stored_pdf_as_an_attachment(world: World) -> None:
    resp = await world.get(f"invoices/{world.paid.payment_id}/pdf")
    assert resp.status == 200
    body = await resp.read()
    assert body == world.invoicing.pdfs[world.invoice_id] and body.startswith(b"%PDF")
    assert resp.headers["Content-Type"] == "application/pdf"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="invoice-INV-000001.pdf"'
    assert resp.headers["Cache-Control"] == "no-store"
    asked = next(r for n, r in world.invoicing.calls if n == "GetInvoicePdf")
    assert asked.customer_id == world.customer_id and asked.payment_id == world.paid.payment_id


async def test_another_customers_payment_is_the_same_404(world: World) -> None:
    eve = world.auth.add_customer(world.business_id, "eve@example.com")
    theirs = add_payment(world.billing, world.business_id, eve, days=5)
    world.invoicing.issue(theirs)
    for rest in (
        f"invoices/{theirs.payment_id}",
        f"invoices/{theirs.payment_id}/pdf",
        "invoices/pay_nope/pdf",
        "invoices/%3Cscript%3E",
    ):
        resp = await world.get(rest)
        assert resp.status == 404, rest
        assert "Page not found" in await resp.text() or "does not exist" in await resp.text()
        assert resp.headers["Content-Type"].startswith("text/html")
    html = await (await world.get("invoices")).text()
    assert theirs.payment_id not in html


async def test_signed_out_download_goes_to_sign_in(world: World) -> None:
    resp = await world.get(f"invoices/{world.paid.payment_id}/pdf", cookies={})
    assert resp.status in (302, 303)
    assert f"/login/{world.business_id}" in resp.headers["Location"]
    assert world.invoicing.count("GetInvoicePdf") == 0


async def test_unified_history_shows_every_business_with_three_calls(world: World) -> None:
    shops = [world.auth.add_business(f"Shop {i}") for i in range(2)]
    payments = []
    for i, shop in enumerate(shops):
        customer = world.auth.add_customer(shop, "grace@example.com", mode=common_pb2.MODE_LIVE)
        payment = add_payment(
            world.billing, shop, customer, days=10 + i, amount=1000 + i, mode=common_pb2.MODE_LIVE
        )
        world.invoicing.issue(payment)
        payments.append((shop, payment))
    eve = world.auth.add_customer(shops[0], "eve@example.com", mode=common_pb2.MODE_LIVE)
    theirs = add_payment(world.billing, shops[0], eve, days=20, mode=common_pb2.MODE_LIVE)
    world.invoicing.issue(theirs)
    cookies = await unified_sign_in(world.client, world.auth, "grace@example.com")
    world.clear_calls()
    resp = await world.client.get("/all/invoices", headers=cookie_header(cookies))
    html = await resp.text()
    assert resp.status == 200, html
    assert "Shop 0" in html and "Shop 1" in html and "€10.01" in html
    assert theirs.payment_id not in html
    assert world.billing.count("ListPayments") == 1 and world.invoicing.count("ListInvoices") == 1
    asked = next(r for n, r in world.invoicing.calls if n == "ListInvoices")
    assert not asked.business_id and len(asked.customer_ids) == 2
    # Detail and download live on the unified portal's per-business pages.
    shop, payment = payments[0]
    detail = f"/all/b/{shop}/invoices/{payment.payment_id}"
    assert f'href="{detail}"' in html
    resp = await world.client.get(detail, headers=cookie_header(cookies))
    assert resp.status == 200 and 'id="download-pdf"' in await resp.text()
    resp = await world.client.get(f"{detail}/pdf", headers=cookie_header(cookies))
    assert resp.status == 200 and (await resp.read()).startswith(b"%PDF")
    # Another customer's payment through a business of the email: 404.
    resp = await world.client.get(
        f"/all/b/{shops[0]}/invoices/{theirs.payment_id}/pdf", headers=cookie_header(cookies)
    )
    assert resp.status == 404


async def test_merchant_api_returns_the_pdf_of_its_own_business_only(world: World) -> None:
    key = world.auth.add_key(world.business_id)
    resp = await world.client.get(
        f"/invoices/payments/{world.paid.payment_id}",
        headers={"Authorization": f"Bearer {key}", "Accept": "application/pdf"},
    )
    assert resp.status == 200
    assert await resp.read() == world.invoicing.pdfs[world.invoice_id]
    assert resp.headers["Content-Type"] == "application/pdf"
    assert 'filename="invoice-INV-000001.pdf"' in resp.headers["Content-Disposition"]
    asked = next(r for n, r in world.invoicing.calls if n == "GetInvoicePdf")
    assert asked.business_id == world.business_id and not asked.customer_id
    other = world.auth.add_key(world.auth.add_business("Other"))
    live = world.auth.add_key(world.business_id, mode=common_pb2.MODE_LIVE)
    for secret in (other, live):
        resp = await world.client.get(
            f"/invoices/payments/{world.paid.payment_id}",
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert resp.status == 404
        problem = await resp.json()
        assert problem["code"] == "NOT_FOUND" and resp.content_type == "application/problem+json"
    resp = await world.client.get(f"/invoices/payments/{world.paid.payment_id}")
    assert resp.status == 401
    resp = await world.client.get(
        f"/invoices/payments/{world.paid.payment_id}?bogus=1",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert resp.status == 422


async def test_a_paid_payment_not_yet_invoiced_says_so(world: World) -> None:
    fresh = add_payment(world.billing, world.business_id, world.customer_id, days=30)
    html = await (await world.get("invoices")).text()
    row = html[html.index(f'id="row-{fresh.payment_id}"') :]
    assert "Invoice being issued" in row[: row.index("</tr>")]
    html = await (await world.get(f"invoices/{fresh.payment_id}")).text()
    assert 'id="invoice-pending"' in html and 'id="download-pdf"' not in html
