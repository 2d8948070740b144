"""Profile: view and update name and phone, change the email with verification.

Every change goes through auth's PortalAccessService (which emits
``customer.updated``). A new email takes effect only when the link sent to it
is confirmed at ``/email-change/{token}``; auth then ends the customer's other
sessions and notifies the old address.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from billing.auth.v1 import auth_pb2, portal_access_pb2
from billing_kit.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from billing_kit.scoping import mode_to_proto

from gateway.keys import AUTH_STUB, BUSINESSES, PORTAL_STUB
from gateway.web import i18n
from gateway.web.audiences import PortalContext, portal_page, portal_shell, public_page
from gateway.web.field_reasons import field_message
from gateway.web.forms import read_form
from gateway.web.links import describe, link_problem
from gateway.web.login import MAX_EMAIL_LENGTH, csrf_failed_error
from gateway.web.rendering import redirect, render, render_form, site_of
from gateway.web.security import (
    CSRF_FIELD,
    business_cookie_name,
    check_login_csrf,
    tokens_match,
)

MAX_NAME_LENGTH = 200  # only bounds what is echoed back into the form


def profile_fields(form: dict[str, str]) -> tuple[str, str]:
    """(name with its white space folded, phone as typed): auth decides if they are valid."""
    name = " ".join((form.get("name") or "").split())
    return name, (form.get("phone_number") or "").strip()


async def _customer(request: web.Request, context: PortalContext) -> auth_pb2.Customer:
    customer: auth_pb2.Customer = await request.app[AUTH_STUB].GetCustomer(
        auth_pb2.GetCustomerRequest(
            business_id=context.business_id,
            mode=context.mode,
            customer_id=context.session.customer_id,
        ),
    )
    return customer


def _profile_values(
    context: PortalContext, customer: auth_pb2.Customer, **overrides: Any
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "customer": customer,
        "name": customer.name,
        "phone_number": customer.phone_number,
        "new_email": "",
        "errors": {},
        "email_errors": {},
        "saved": None,
        "profile_action": context.path("profile"),
        "email_action": context.path("profile/email"),
        "billing_details_href": context.path("billing-details"),
    }
    values.update(overrides)
    return portal_shell(context, "profile", **values)


@portal_page
async def profile_page(request: web.Request, context: PortalContext) -> web.StreamResponse:
    """``GET /b/{business_id}/profile``."""
    customer = await _customer(request, context)
    saved = request.query.get("saved")
    return render(
        request,
        "profile.html",
        _profile_values(context, customer, saved=saved if saved in ("profile", "email") else None),
    )


@portal_page
async def update_profile(request: web.Request, context: PortalContext) -> web.StreamResponse:
    """``POST /b/{business_id}/profile``: name and phone; errors inline, nothing written."""
    form = await read_form(request)
    if not tokens_match(context.session.csrf_token, form.get(CSRF_FIELD)):
        customer = await _customer(request, context)
        errors = {"form": csrf_failed_error()}
        return render(
            request, "profile.html", _profile_values(context, customer, errors=errors), status=400
        )
    name, phone = profile_fields(form)
    try:
        await request.app[PORTAL_STUB].UpdateProfile(
            portal_access_pb2.UpdateProfileRequest(
                business_id=context.business_id,
                mode=context.mode,
                customer_id=context.session.customer_id,
                name=name,
                phone_number=phone,
            ),
        )
    except InvalidArgument as exc:
        field = exc.field if exc.field in ("name", "phone_number") else "name"
        errors = {field: field_message(exc)}
    else:
        return redirect(context.path("profile?saved=profile"))
    customer = await _customer(request, context)
    values = _profile_values(
        context,
        customer,
        name=(form.get("name") or "")[:MAX_NAME_LENGTH],
        phone_number=(form.get("phone_number") or "")[:40],
        errors=errors,
    )
    return render(request, "profile.html", values, status=422)


@portal_page
async def request_email_change(request: web.Request, context: PortalContext) -> web.StreamResponse:
    """``POST /b/{business_id}/profile/email``: send a verification link to the new address."""
    form = await read_form(request)
    customer = await _customer(request, context)
    typed = (form.get("new_email") or "").strip()[:MAX_EMAIL_LENGTH]
    if not tokens_match(context.session.csrf_token, form.get(CSRF_FIELD)):
        errors = {"new_email": csrf_failed_error()}
        values = _profile_values(context, customer, new_email=typed, email_errors=errors)
        return render(request, "profile.html", values, status=400)
    # Whether the address is valid is auth's rule; its reason becomes the message.
    error = None
    try:
        await request.app[PORTAL_STUB].RequestEmailChange(
            portal_access_pb2.RequestEmailChangeRequest(
                business_id=context.business_id,
                mode=context.mode,
                customer_id=context.session.customer_id,
                new_email=typed,
                locale=i18n.current_lang(),
                locale_explicit=i18n.explicit_choice(request) is not None,
            ),
        )
    except InvalidArgument as exc:
        error = field_message(exc)
    except (AlreadyExists, FailedPrecondition):
        error = i18n.gettext("This email address cannot be used. Try another one.")
    else:
        return redirect(context.path("profile?saved=email"))
    values = _profile_values(context, customer, new_email=typed, email_errors={"new_email": error})
    return render(request, "profile.html", values, status=422)


@public_page
async def confirm_email_change_page(request: web.Request) -> web.StreamResponse:
    """``GET /email-change/{token}``: a confirm button (scanners cannot confirm)."""
    token = request.match_info["token"]
    link = await describe(request, token, email_change=True)
    if link.state != portal_access_pb2.TOKEN_STATE_VALID:
        return await link_problem(request, token, link, email_change=True)
    business = await request.app[BUSINESSES].get(link.business_id)
    return render_form(
        request,
        "email_change_confirm.html",
        {"business": business, "action": site_of(request).path(f"/email-change/{token}")},
        token_page=True,
    )


@public_page
async def confirm_email_change(request: web.Request) -> web.StreamResponse:
    """``POST /email-change/{token}``: make the new email the customer's email."""
    site = site_of(request)
    token = request.match_info["token"]
    form = await read_form(request)
    link = await describe(request, token, email_change=True)
    if link.state != portal_access_pb2.TOKEN_STATE_VALID:
        return await link_problem(request, token, link, email_change=True)
    business = await request.app[BUSINESSES].get(link.business_id)
    if not check_login_csrf(request, form):
        return render_form(
            request,
            "email_change_confirm.html",
            {
                "business": business,
                "action": site.path(f"/email-change/{token}"),
                "errors": {"form": csrf_failed_error()},
            },
            status=400,
            token_page=True,
        )
    keep = request.cookies.get(business_cookie_name(site.mode, link.business_id), "")
    customer = await request.app[PORTAL_STUB].ConfirmEmailChange(
        portal_access_pb2.ConfirmEmailChangeRequest(
            token=token, mode=mode_to_proto(site.mode), keep_session_secret=keep
        ),
    )
    return render(
        request,
        "email_changed.html",
        {
            "business": business,
            "new_email": customer.email,
            "profile_href": site.url(f"/b/{link.business_id}/profile"),
        },
        token_page=True,
    )
