"""A successful payment on the hosted page becomes the business's next invoice, with its PDF.

Through the whole running stack: the customer pays in the browser on
payments' hosted page, payments emits ``payment.succeeded``, invoicing numbers
the invoice, asks auth for the seller and buyer, renders and stores the PDF.
The test only watches from outside: invoicing's gRPC API and the PDF's text.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import pytest_asyncio
from billing.common.v1 import common_pb2
from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from billing.payments.v1 import payments_pb2, payments_pb2_grpc
from billing_kit.testing import eventually
from devstack import Stack
from devstack.portal import PortalBusiness, create_portal_business
from devstack.seed import DEMO_TAX_ID
from dodopayments import AsyncDodoPayments
from playwright.async_api import Page
from pypdf import PdfReader
from yarl import URL

from .conftest import merchant_sdk

pytestmark = pytest.mark.e2e


@pytest_asyncio.fixture(loop_scope="session")
async def fresh_shop(stack: Stack) -> PortalBusiness:
    """A business with no invoice yet, so its numbers are known from the start."""
    async with stack.auth_admin() as admin:
        return await create_portal_business(admin, f"Trattoria {uuid.uuid4().hex[:6]}")


@pytest_asyncio.fixture(loop_scope="session")
async def stubs(
    stack: Stack,
) -> AsyncIterator[
    tuple[payments_pb2_grpc.PaymentsServiceStub, invoicing_pb2_grpc.InvoicingServiceStub]
]:
    async with (
        grpc.aio.insecure_channel(stack.grpc_target("payments")) as payments,
        grpc.aio.insecure_channel(stack.grpc_target("invoicing")) as invoicing,
    ):
        yield (
            payments_pb2_grpc.PaymentsServiceStub(payments),
            invoicing_pb2_grpc.InvoicingServiceStub(invoicing),
        )


async def _pay_on_the_hosted_page(
    page: Page,
    stack: Stack,
    shop: PortalBusiness,
    payments: payments_pb2_grpc.PaymentsServiceStub,
    customer_id: str,
    amount: int,
) -> str:
    """The customer pays ``amount`` EUR with the 4242 test card; the payment id."""
    session = await payments.CreatePaymentSession(
        payments_pb2.CreatePaymentSessionRequest(
            business_id=shop.business_id,
            mode=common_pb2.MODE_TEST,
            customer_id=customer_id,
            purpose=payments_pb2.PAYMENT_SESSION_PURPOSE_PAY,
            return_url=f"{stack.gateway_url}/openapi.json?back=1",
            branding=payments_pb2.Branding(business_name=shop.name, accent_color="#0A7D5A"),
            amount=amount,
            currency="EUR",
            idempotency_key=f"e2e-invoice-{uuid.uuid4().hex}",
            charge_type=payments_pb2.CHARGE_TYPE_NEW,
            description="Menu degustazione",
        )
    )
    await page.goto(session.url)
    await page.get_by_label("Name on card").fill("Ada Lovelace")
    await page.get_by_label("Card number").fill("4242 4242 4242 4242")
    await page.get_by_label("Expiry date (MM/YY)").fill("12/34")
    await page.get_by_label("Security code (CVC)").fill("123")
    await page.locator("#submit").click()
    await page.wait_for_url(f"{stack.gateway_url}/openapi.json?**")
    back = dict(URL(page.url).query)
    assert back["status"] == "succeeded"
    return back["payment_id"]


async def _issued_pdf(
    invoicing: invoicing_pb2_grpc.InvoicingServiceStub,
    shop: PortalBusiness,
    customer_id: str,
    payment_id: str,
) -> invoicing_pb2.InvoicePdf:
    """Poll invoicing until the payment's invoice has its PDF stored."""
    request = invoicing_pb2.GetInvoicePdfRequest(
        business_id=shop.business_id,
        mode=common_pb2.MODE_TEST,
        customer_id=customer_id,
        payment_id=payment_id,
    )

    async def stored() -> invoicing_pb2.InvoicePdf | None:
        try:
            return await invoicing.GetInvoicePdf(request, timeout=5)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None  # not issued yet, or its PDF not stored yet
            raise

    return await eventually(stored, within=30, interval=0.2, message="the invoice PDF")


def _text(pdf: invoicing_pb2.InvoicePdf) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)


async def test_a_payment_on_the_hosted_page_issues_the_next_invoice_with_its_pdf(
    stack: Stack,
    fresh_shop: PortalBusiness,
    stubs: tuple[payments_pb2_grpc.PaymentsServiceStub, invoicing_pb2_grpc.InvoicingServiceStub],
    page: Page,
) -> None:
    payments, invoicing = stubs
    async with merchant_sdk(stack, fresh_shop) as sdk:
        ada = await _customer(sdk, "Ada Lovelace", "it")
        grace = await _customer(sdk, "Grace Hopper", "en")

    first_payment = await _pay_on_the_hosted_page(
        page, stack, fresh_shop, payments, ada, amount=35620
    )
    first = await _issued_pdf(invoicing, fresh_shop, ada, first_payment)
    assert first.invoice.number == "INV-000001"
    text = _text(first)
    for expected in (fresh_shop.name, "Ada Lovelace", "INV-000001", "356,20 €", "Fattura"):
        assert expected in text, expected
    assert DEMO_TAX_ID in text  # the seller block: the business's tax id from auth
    assert "Visa che termina con 4242" in text

    second_payment = await _pay_on_the_hosted_page(
        page, stack, fresh_shop, payments, grace, amount=1999
    )
    second = await _issued_pdf(invoicing, fresh_shop, grace, second_payment)
    # The next number of this business: N + 1, no gap.
    assert second.invoice.number == "INV-000002"
    english = _text(second)
    for expected in ("Grace Hopper", "INV-000002", "€19.99", "Invoice", "Menu degustazione"):
        assert expected in english, expected

    # Downloading again gives the same bytes; Ada's invoice is not Grace's to download.
    again = await _issued_pdf(invoicing, fresh_shop, ada, first_payment)
    assert again.content == first.content
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await invoicing.GetInvoicePdf(
            invoicing_pb2.GetInvoicePdfRequest(
                business_id=fresh_shop.business_id,
                mode=common_pb2.MODE_TEST,
                customer_id=grace,
                payment_id=first_payment,
            ),
            timeout=5,
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND

    listed = await invoicing.ListInvoices(
        invoicing_pb2.ListInvoicesRequest(
            business_id=fresh_shop.business_id, mode=common_pb2.MODE_TEST, customer_id=ada
        ),
        timeout=5,
    )
    assert [i.payment_id for i in listed.invoices] == [first_payment]
    assert listed.invoices[0].total == 35620 and listed.invoices[0].pdf_ready


async def test_a_checkout_invoice_prints_each_product_and_the_billing_address(
    stack: Stack,
    fresh_shop: PortalBusiness,
    stubs: tuple[payments_pb2_grpc.PaymentsServiceStub, invoicing_pb2_grpc.InvoicingServiceStub],
    page: Page,
) -> None:
    """A real cart of two products, paid on the hosted page: one invoice line per product."""
    _, invoicing = stubs
    tag = uuid.uuid4().hex[:6]
    async with merchant_sdk(stack, fresh_shop) as sdk:
        book = await sdk.products.create(
            name=f"Cookbook {tag}",
            tax_category="saas",
            price=_one_time(2450),
        )
        apron = await sdk.products.create(
            name=f"Apron {tag}",
            tax_category="saas",
            price=_one_time(1200),
        )
        session = await sdk.checkout_sessions.create(
            product_cart=[
                {"product_id": book.product_id, "quantity": 1},
                {"product_id": apron.product_id, "quantity": 2},
            ],
            customer={"email": f"cart-{tag}@example.com", "name": "Ada Lovelace"},
            billing_address={
                "country": "IT",
                "city": "Torino",
                "street": "Corso Francia 12",
                "zipcode": "10138",
            },
            tax_id="IT98765432109",
            return_url=f"{stack.gateway_url}/openapi.json?back=1",
        )
        assert session.checkout_url
        await page.goto(session.checkout_url)
        await page.get_by_label("Name on card").fill("Ada Lovelace")
        await page.get_by_label("Card number").fill("4242 4242 4242 4242")
        await page.get_by_label("Expiry date (MM/YY)").fill("12/34")
        await page.get_by_label("Security code (CVC)").fill("123")
        await page.locator("#submit").click()
        await page.wait_for_url(f"{stack.gateway_url}/openapi.json?**")
        back = dict(URL(page.url).query)
        assert back["status"] == "succeeded"
        payment = await sdk.payments.retrieve(back["payment_id"])
        # The merchant API's Payment carries Dodo's product_cart and billing.
        assert payment.product_cart is not None
        assert [(x.product_id, x.quantity) for x in payment.product_cart] == [
            (book.product_id, 1),
            (apron.product_id, 2),
        ]
        assert (payment.billing.country, payment.billing.city) == ("IT", "Torino")
        customer_id = payment.customer.customer_id

    invoice = await _issued_pdf(invoicing, fresh_shop, customer_id, back["payment_id"])
    assert [(x.description, x.quantity, x.unit_amount) for x in invoice.invoice.lines] == [
        (f"Cookbook {tag}", 1, 2450),
        (f"Apron {tag}", 2, 1200),
    ]
    text = _text(invoice)
    for expected in (
        f"Cookbook {tag}",
        f"Apron {tag}",
        "Corso Francia 12",
        "10138 Torino",
        "€48.50",
    ):
        assert expected in text, expected
    assert "Checkout cks_" not in text


def _one_time(price: int) -> Any:
    return {"type": "one_time_price", "currency": "EUR", "price": price}


async def _customer(sdk: AsyncDodoPayments, name: str, locale: str) -> str:
    created = await sdk.customers.create(
        email=f"inv-{uuid.uuid4().hex[:8]}@example.com", name=name, preferred_locale=locale
    )
    return created.customer_id
