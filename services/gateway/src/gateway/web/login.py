"""Static link sign-in: ``/login/{business_id}`` and the unified ``/login``.

The customer types the email used at purchase; auth emails a one-time link
when the email is known and a "no purchases found" notice when it is not. The
page answers the same either way, so it never reveals who is a customer.
Auth rate limits per email and per client (shared across gateway replicas);
a refusal is the 429 page.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from billing.auth.v1 import portal_access_pb2
from billing_kit.errors import InvalidArgument
from billing_kit.scoping import mode_to_proto

from gateway.keys import BUSINESSES, PORTAL_STUB
from gateway.web import i18n
from gateway.web.audiences import public_page
from gateway.web.field_reasons import field_message
from gateway.web.forms import read_form
from gateway.web.rendering import render, render_form, site_of
from gateway.web.security import check_login_csrf, client_key
from gateway.web.sites import valid_business_id

MAX_EMAIL_LENGTH = 320


def csrf_failed_error() -> str:
    """The inline message shown when a form's CSRF token does not match."""
    return i18n.gettext("This form expired. Please try again.")


async def _business(request: web.Request, business_id: str) -> Any:
    if not valid_business_id(business_id):
        raise web.HTTPNotFound()
    business = await request.app[BUSINESSES].get(business_id)
    if business is None:
        raise web.HTTPNotFound()
    return business


@public_page
async def login_page(request: web.Request) -> web.StreamResponse:
    """``GET /login/{business_id}``: the branded email form."""
    business = await _business(request, request.match_info["business_id"])
    # Only carried along: auth decides whether it is a path of this business's portal.
    next_path = request.query.get("next")
    return render_form(
        request,
        "login.html",
        {
            "business": business,
            "next_path": next_path or "",
            "email": "",
            "errors": {},
            "signed_out": request.query.get("signed_out") == "1",
            "action": site_of(request).path(f"/login/{business.business_id}"),
        },
    )


@public_page
async def request_sign_in_link(request: web.Request) -> web.StreamResponse:
    """``POST /login/{business_id}``: ask auth to email a sign-in link."""
    site = site_of(request)
    business = await _business(request, request.match_info["business_id"])
    form = await read_form(request)
    next_path = form.get("next")
    values = {
        "business": business,
        "next_path": next_path or "",
        "email": (form.get("email") or "").strip()[:MAX_EMAIL_LENGTH],
        "signed_out": False,
        "action": site.path(f"/login/{business.business_id}"),
    }
    if not check_login_csrf(request, form):
        return render_form(
            request, "login.html", {**values, "errors": {"form": csrf_failed_error()}}, status=400
        )
    # Auth decides whether the address is valid (the same rule as everywhere else).
    email = (form.get("email") or "").strip()
    try:
        await request.app[PORTAL_STUB].RequestSignInLink(
            portal_access_pb2.RequestSignInLinkRequest(
                business_id=business.business_id,
                mode=mode_to_proto(site.mode),
                email=email,
                next_path=next_path or "",
                client_key=client_key(request),
                locale=i18n.current_lang(),
                locale_explicit=i18n.explicit_choice(request) is not None,
            ),
        )
    except InvalidArgument as exc:
        if exc.field == "email":
            error = i18n.gettext("Enter the email address you used for your purchase.")
            return render_form(
                request, "login.html", {**values, "errors": {"email": error}}, status=422
            )
        if exc.field != "next_path":
            raise
        # Auth refused where the link would lead (the same answer the merchant API
        # gets): say so and drop it, so sending the form again signs in to the home page.
        errors = {"form": field_message(exc)}
        return render_form(
            request, "login.html", {**values, "next_path": "", "errors": errors}, status=422
        )
    return render(request, "check_email.html", {"business": business, "kind": "sign_in"})


@public_page
async def unified_login_page(request: web.Request) -> web.StreamResponse:
    """``GET /login`` on the unified portal."""
    return render_form(
        request,
        "unified_login.html",
        {
            "email": "",
            "errors": {},
            "signed_out": request.query.get("signed_out") == "1",
            "action": site_of(request).path("/login"),
        },
    )


@public_page
async def request_unified_sign_in_link(request: web.Request) -> web.StreamResponse:
    """``POST /login`` on the unified portal: a one-time link to that email."""
    form = await read_form(request)
    values = {
        "email": (form.get("email") or "").strip()[:MAX_EMAIL_LENGTH],
        "signed_out": False,
        "action": site_of(request).path("/login"),
    }
    if not check_login_csrf(request, form):
        return render_form(
            request,
            "unified_login.html",
            {**values, "errors": {"form": csrf_failed_error()}},
            status=400,
        )
    try:
        await request.app[PORTAL_STUB].RequestUnifiedSignInLink(
            portal_access_pb2.RequestUnifiedSignInLinkRequest(
                email=(form.get("email") or "").strip(),
                client_key=client_key(request),
                locale=i18n.current_lang(),
            ),
        )
    except InvalidArgument as exc:
        if exc.field != "email":
            raise
        # Auth's rule for addresses; the page only says so next to the field.
        error = i18n.gettext("Enter the email address you used for your purchases.")
        return render_form(
            request, "unified_login.html", {**values, "errors": {"email": error}}, status=422
        )
    return render(request, "check_email.html", {"kind": "unified"})
