"""Billing details: the customer's billing address, company and tax id (VAT number), and
re-issuing a past invoice with them.

Auth owns the details and every rule about them (the tax id is checked there
against the country); a refused field comes back as INVALID_ARGUMENT naming it,
and this page puts a message next to that field. Invoicing owns re-issuing
(a new version of the invoice, same number, the original kept). The same
handlers serve the business portal (``/b/{id}/billing-details``) and the
unified portal's per-business pages (``/all/b/{id}/billing-details``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from babel import Locale
from billing.auth.v1 import auth_pb2, portal_access_pb2
from billing.invoicing.v1 import invoicing_pb2
from billing_kit.errors import FailedPrecondition, InvalidArgument

from gateway.keys import AUTH_STUB, INVOICING_STUB, PORTAL_STUB
from gateway.web import i18n
from gateway.web.billing_scope import Account
from gateway.web.forms import read_form
from gateway.web.i18n import N_
from gateway.web.invoices import payment_id_of
from gateway.web.rendering import error_page, redirect, render
from gateway.web.security import CSRF_FIELD, tokens_match

FIELDS = ("country", "business_name", "street", "city", "state", "zipcode", "tax_id")
# Only bounds what is echoed back into the form; auth holds the real limits.
_ECHO_LIMIT = 600
# What the page says when auth refuses a field (auth names the field; the rule is auth's).
_FIELD_MESSAGES = {
    "country": N_("Choose the country of your billing address."),
    "tax_id": N_(
        "This tax ID is not valid for the country you chose. Check the number "
        "(an EU VAT number starts with its country code, e.g. DE123456789)."
    ),
}
_TOO_LONG = N_("This is too long or contains characters that cannot be used.")
# Two-letter regions the country list leaves out (groupings and placeholders).
_NOT_COUNTRIES = frozenset({"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ"})


def countries(lang: str) -> list[tuple[str, str]]:
    """(code, name) of every country, named and sorted in ``lang``."""
    names = Locale.parse(lang).territories
    return sorted(
        (
            (code, str(name))
            for code, name in names.items()
            if isinstance(code, str)
            and len(code) == 2
            and code.isalpha()
            and code not in _NOT_COUNTRIES
        ),
        key=lambda pair: pair[1].casefold(),
    )


async def _customer(request: web.Request, account: Account) -> auth_pb2.Customer:
    customer: auth_pb2.Customer = await request.app[AUTH_STUB].GetCustomer(
        auth_pb2.GetCustomerRequest(
            business_id=account.business_id, mode=account.mode, customer_id=account.customer_id
        )
    )
    return customer


def _values(account: Account, typed: dict[str, str], **more: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "form": typed,
        "countries": countries(i18n.current_lang()),
        "action": account.path("billing-details"),
        "invoices_href": account.path("invoices"),
        "errors": {},
        "saved": False,
    }
    return account.values(**{**values, **more})


def _current(customer: auth_pb2.Customer) -> dict[str, str]:
    if not customer.HasField("billing_details"):
        return dict.fromkeys(FIELDS, "")
    details = customer.billing_details
    return {name: str(getattr(details, name)) for name in FIELDS}


async def billing_details_page(request: web.Request, account: Account) -> web.StreamResponse:
    """``GET …/billing-details``: the form, filled with what is saved."""
    customer = await _customer(request, account)
    saved = request.query.get("saved") == "1"
    return render(
        request, "billing_details.html", _values(account, _current(customer), saved=saved)
    )


async def update_billing_details(request: web.Request, account: Account) -> web.StreamResponse:
    """``POST …/billing-details``: save, or show auth's refusal next to the field."""
    form = await read_form(request)
    typed = {name: (form.get(name) or "")[:_ECHO_LIMIT] for name in FIELDS}
    if not tokens_match(account.csrf_token, form.get(CSRF_FIELD)):
        return error_page(request, 400)
    try:
        await request.app[PORTAL_STUB].UpdateBillingDetails(
            portal_access_pb2.UpdateBillingDetailsRequest(
                **account.scope(),
                billing_details=auth_pb2.CustomerBillingDetails(
                    **{name: (form.get(name) or "") for name in FIELDS}
                ),
            )
        )
    except InvalidArgument as exc:
        field = exc.field if exc.field in FIELDS else "country"
        message = i18n.gettext(_FIELD_MESSAGES.get(field, _TOO_LONG))
        values = _values(account, typed, errors={field: message})
        return render(request, "billing_details.html", values, status=422)
    return redirect(account.path("billing-details?saved=1"))


async def reissue_invoice(request: web.Request, account: Account) -> web.StreamResponse:
    """``POST …/invoices/{payment_id}/reissue``: a new version with the current details."""
    payment_id = payment_id_of(request)
    form = await read_form(request)
    if not tokens_match(account.csrf_token, form.get(CSRF_FIELD)):
        return error_page(request, 400)
    reply = await request.app[INVOICING_STUB].ListInvoices(
        invoicing_pb2.ListInvoicesRequest(**account.scope(), payment_ids=[payment_id], page_size=2)
    )
    invoice = next(
        (i for i in reply.invoices if i.kind == invoicing_pb2.INVOICE_KIND_INVOICE), None
    )
    if invoice is None:
        raise web.HTTPNotFound()
    try:
        await request.app[INVOICING_STUB].ReissueInvoice(
            invoicing_pb2.ReissueInvoiceRequest(**account.scope(), invoice_id=invoice.invoice_id)
        )
    except FailedPrecondition:
        return redirect(account.path(f"invoices/{payment_id}?reissued=later"))
    return redirect(account.path(f"invoices/{payment_id}?reissued=1"))
