# ruff: noqa: F811  (the fixtures imported from test_issuing are parameters here)
"""The buyer's billing details from auth on new invoices, and re-issuing a past invoice
as a new version (real auth, broker and SecantusDB, as in test_issuing)."""

from __future__ import annotations

import io
from typing import Any

import grpc
import pytest
from billing.auth.v1 import auth_pb2, portal_access_pb2, portal_access_pb2_grpc
from billing.common.v1 import common_pb2
from billing.invoicing.v1 import invoicing_pb2
from billing_kit.broker import EventPublisher
from billing_kit.testing import RunningService, eventually
from invoicing.app import InvoicingRuntime
from pypdf import PdfReader

from .test_issuing import (  # noqa: F401  (fixtures)
    Shop,
    _count,
    auth,
    ns,
    payment_event,
    publisher,
    replicas,
    shop,
    stub_of,
)

pytestmark = pytest.mark.integration
TEST = common_pb2.MODE_TEST


async def set_details(auth: RunningService[Any], shop: Shop, **fields: str) -> None:
    portal = portal_access_pb2_grpc.PortalAccessServiceStub(auth.channel)
    await portal.UpdateBillingDetails(
        portal_access_pb2.UpdateBillingDetailsRequest(
            business_id=shop.business_id,
            mode=TEST,
            customer_id=shop.it_customer,
            billing_details=auth_pb2.CustomerBillingDetails(**fields),
        )
    )


async def pdf(
    service: RunningService[InvoicingRuntime], shop: Shop, invoice_id: str, version: int = 0
) -> tuple[invoicing_pb2.Invoice, str]:
    reply = await stub_of(service).GetInvoicePdf(
        invoicing_pb2.GetInvoicePdfRequest(
            business_id=shop.business_id,
            mode=TEST,
            customer_id=shop.it_customer,
            invoice_id=invoice_id,
            version=version,
        )
    )
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(reply.content)).pages)
    return reply.invoice, text


def reissue_request(shop: Shop, invoice_id: str, customer_id: str = "") -> Any:
    return invoicing_pb2.ReissueInvoiceRequest(
        business_id=shop.business_id,
        mode=TEST,
        customer_id=customer_id or shop.it_customer,
        invoice_id=invoice_id,
    )


async def test_billing_details_from_auth_win_over_the_payments_address(
    replicas: list[RunningService[InvoicingRuntime]],
    shop: Shop,
    publisher: EventPublisher,
    auth: RunningService[Any],
) -> None:
    await set_details(
        auth,
        shop,
        country="DE",
        city="Berlin",
        street="Unter den Linden 1",
        zipcode="10117",
        tax_id="DE136695976",
        business_name="Lovelace GmbH",
    )
    billing = {"country": "IT", "city": "Torino", "street": "Corso Francia 12", "zipcode": "10138"}
    await publisher.publish(payment_event(shop, "pay_de", billing=billing, tax_id="IT98765432109"))
    await eventually(lambda: _count(replicas[0], {"pdf_ready": True}, 1), within=30)
    found = await replicas[0].runtime.db["invoices"].find_one({"payment_id": "pay_de"})
    invoice, text = await pdf(replicas[0], shop, found["_id"])
    for expected in (
        "Lovelace GmbH",
        "Unter den Linden 1",
        "10117 Berlin",
        "Germania",
        "Partita IVA: DE136695976",
    ):
        assert expected in text, expected
    assert "Corso Francia" not in text and "IT98765432109" not in text
    assert invoice.buyer.tax_id == "DE136695976" and invoice.version == 1


async def test_reissue_adds_a_version_that_replaces_the_original_and_keeps_it(
    replicas: list[RunningService[InvoicingRuntime]],
    shop: Shop,
    publisher: EventPublisher,
    auth: RunningService[Any],
) -> None:
    billing = {"country": "IT", "city": "Torino", "street": "Corso Francia 12", "zipcode": "10138"}
    await publisher.publish(payment_event(shop, "pay_old", billing=billing))
    await eventually(lambda: _count(replicas[0], {"pdf_ready": True}, 1), within=30)
    found = await replicas[0].runtime.db["invoices"].find_one({"payment_id": "pay_old"})
    invoice_id = found["_id"]
    original, original_text = await pdf(replicas[0], shop, invoice_id)
    stub = stub_of(replicas[0])

    # Nothing corrected yet: a re-issue adds nothing.
    same = await stub.ReissueInvoice(reissue_request(shop, invoice_id))
    assert same.version == 1 and len(same.versions) == 1

    await set_details(
        auth, shop, country="IT", city="Milano", street="Via Dante 7", tax_id="IT00743110157"
    )
    reissued = await stub.ReissueInvoice(reissue_request(shop, invoice_id))
    assert reissued.number == original.number  # no new number: numbering stays gapless
    assert reissued.version == 2
    assert [v.version for v in reissued.versions] == [1, 2]
    assert reissued.pdf_filename == f"invoice-{original.number}-v2.pdf"
    assert reissued.buyer.tax_id == "IT00743110157"

    latest, text = await pdf(replicas[0], shop, invoice_id)
    assert latest.version == 2
    assert f"Sostituisce la fattura {original.number} emessa il" in text
    assert f"{original.number} (v2) · pagina 1" in text
    assert "Partita IVA: IT00743110157" in text and "Via Dante 7" in text
    assert "Corso Francia" not in text

    # The original is kept, byte for byte, and still downloadable.
    first, first_text = await pdf(replicas[1], shop, invoice_id, version=1)
    assert first.version == 1 and first_text == original_text
    assert "Corso Francia 12" in first_text and "Sostituisce" not in first_text

    # Re-issuing again with unchanged details: the same version, not v3.
    again = await stub_of(replicas[1]).ReissueInvoice(reissue_request(shop, invoice_id))
    assert again.version == 2 and len(again.versions) == 2
    events = await replicas[0].runtime.db["outbox"].find({"type": "invoice.reissued"}).to_list()
    assert [e["event"]["data"]["version"] for e in events] == [2]

    # Another customer cannot re-issue it, nor read version 2.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ReissueInvoice(reissue_request(shop, invoice_id, customer_id=shop.en_customer))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await pdf(replicas[0], shop, invoice_id, version=3)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
