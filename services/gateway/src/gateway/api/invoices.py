"""Merchant API: ``GET /invoices/payments/{payment_id}``, the invoice PDF of a payment.

As Dodo's (the SDK's ``client.invoices.payments.retrieve``): the raw bytes,
``application/pdf``. Scoped to the API key's business and mode, with no
customer: a payment of another business or mode, a payment without an
invoice yet and a malformed id are all the same 404 problem.
"""

from __future__ import annotations

from aiohttp import web
from billing.invoicing.v1 import invoicing_pb2
from billing_kit.errors import InvalidArgument, NotFound, PermissionDenied
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.merchant import merchant_api
from gateway.api.parsing import parse_query
from gateway.api_keys import Merchant
from gateway.keys import INVOICING_STUB
from gateway.problems import resource_not_found
from gateway.web.invoices import pdf_response


class RetrieveInvoiceQuery(BaseModel):
    """Dodo's optional signed-link ``token``: accepted; the API key is what authorizes."""

    model_config = ConfigDict(extra="forbid")

    token: str | None = Field(default=None, max_length=2048)


@merchant_api
async def retrieve_payment_invoice(request: web.Request, merchant: Merchant) -> web.Response:
    """``GET /invoices/payments/{payment_id}``: the stored PDF, byte for byte."""
    parse_query(request, RetrieveInvoiceQuery)
    try:
        pdf = await request.app[INVOICING_STUB].GetInvoicePdf(
            invoicing_pb2.GetInvoicePdfRequest(
                business_id=merchant.business_id,
                mode=merchant.proto_mode,
                payment_id=request.match_info["payment_id"],
            )
        )
    except (NotFound, PermissionDenied, InvalidArgument):
        raise resource_not_found("Invoice") from None
    return pdf_response(pdf)
