"""The portal's route table, built from the configured sites.

Each site's pages are mounted under its base URL's path prefix; the handler
learns which site (live, test, unified) it serves from :func:`bind_site`.
"""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.web import (
    billing_details,
    branding,
    handoff,
    invoices,
    license_keys,
    links,
    login,
    payment_method_flow,
    payment_methods,
    plan_change,
    portal,
    profile,
    subscriptions,
    unified,
    unified_billing,
    unified_invoices,
)
from gateway.web.billing_scope import (
    AccountHandler,
    business_account_page,
    unified_account_page,
)
from gateway.web.rendering import STATIC_DIR, bind_site
from gateway.web.sites import SiteKind, Sites


def _slug(prefix: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", prefix).strip("_") or "root"


# The billing pages of one customer of one business, mounted on the business
# portal and (under the same paths) on the unified portal: (method, path after
# /b/{business_id}, handler, name, nav section).
_ACCOUNT_PAGES: tuple[tuple[str, str, AccountHandler, str, str], ...] = (
    ("GET", "/subscriptions", subscriptions.subscriptions_page, "subscriptions", "subscriptions"),
    (
        "GET",
        "/subscriptions/{subscription_id}",
        subscriptions.subscription_page,
        "subscription",
        "subscriptions",
    ),
    (
        "GET",
        "/subscriptions/{subscription_id}/cancel",
        subscriptions.cancel_page,
        "cancel_page",
        "subscriptions",
    ),
    (
        "POST",
        "/subscriptions/{subscription_id}/cancel",
        subscriptions.cancel,
        "cancel",
        "subscriptions",
    ),
    (
        "POST",
        "/subscriptions/{subscription_id}/undo-cancel",
        subscriptions.undo_cancel,
        "undo_cancel",
        "subscriptions",
    ),
    (
        "GET",
        "/subscriptions/{subscription_id}/pause",
        subscriptions.pause_page,
        "pause_page",
        "subscriptions",
    ),
    (
        "POST",
        "/subscriptions/{subscription_id}/pause",
        subscriptions.pause_or_resume,
        "pause",
        "subscriptions",
    ),
    (
        "GET",
        "/subscriptions/{subscription_id}/resume",
        subscriptions.pause_page,
        "resume_page",
        "subscriptions",
    ),
    (
        "POST",
        "/subscriptions/{subscription_id}/resume",
        subscriptions.pause_or_resume,
        "resume",
        "subscriptions",
    ),
    (
        "GET",
        "/subscriptions/{subscription_id}/change-plan",
        plan_change.change_page,
        "change_plan_page",
        "subscriptions",
    ),
    (
        "GET",
        "/subscriptions/{subscription_id}/seats",
        plan_change.change_page,
        "seats_page",
        "subscriptions",
    ),
    (
        "GET",
        "/subscriptions/{subscription_id}/change-plan/preview",
        plan_change.preview_page,
        "change_plan_preview",
        "subscriptions",
    ),
    (
        "POST",
        "/subscriptions/{subscription_id}/change-plan",
        plan_change.confirm,
        "change_plan",
        "subscriptions",
    ),
    (
        "GET",
        "/subscriptions/{subscription_id}/change-plan/done",
        plan_change.done_page,
        "change_plan_done",
        "subscriptions",
    ),
    (
        "POST",
        "/subscriptions/{subscription_id}/change-plan/cancel-scheduled",
        plan_change.cancel_scheduled,
        "cancel_scheduled_change",
        "subscriptions",
    ),
    (
        "GET",
        "/subscriptions/{subscription_id}/payment-method",
        payment_method_flow.edit_page,
        "edit_method",
        "subscriptions",
    ),
    (
        "POST",
        "/subscriptions/{subscription_id}/payment-method",
        payment_method_flow.confirm,
        "confirm_method",
        "subscriptions",
    ),
    (
        "GET",
        "/subscriptions/{subscription_id}/payment-method/added",
        payment_method_flow.card_added,
        "edit_method_added",
        "subscriptions",
    ),
    (
        "GET",
        "/subscriptions/{subscription_id}/payment-method/done",
        payment_method_flow.done_page,
        "edit_method_done",
        "subscriptions",
    ),
    ("GET", "/invoices", invoices.history_page, "invoices", "invoices"),
    ("GET", "/invoices/{payment_id}", invoices.detail_page, "invoice", "invoices"),
    ("GET", "/invoices/{payment_id}/pdf", invoices.download_pdf, "invoice_pdf", "invoices"),
    (
        "POST",
        "/invoices/{payment_id}/reissue",
        billing_details.reissue_invoice,
        "reissue_invoice",
        "invoices",
    ),
    (
        "GET",
        "/billing-details",
        billing_details.billing_details_page,
        "billing_details",
        "profile",
    ),
    (
        "POST",
        "/billing-details",
        billing_details.update_billing_details,
        "update_billing_details",
        "profile",
    ),
    ("GET", "/payment-methods", payment_methods.methods_page, "payment_methods", "payment-methods"),
    ("POST", "/payment-methods/add", payment_methods.add_card, "add_card", "payment-methods"),
    ("GET", "/payment-methods/added", payment_methods.card_added, "card_added", "payment-methods"),
    (
        "POST",
        "/payment-methods/{payment_method_id}/default",
        payment_methods.make_default,
        "default_card",
        "payment-methods",
    ),
    (
        "GET",
        "/payment-methods/{payment_method_id}/remove",
        payment_methods.remove_page,
        "remove_card_page",
        "payment-methods",
    ),
    (
        "POST",
        "/payment-methods/{payment_method_id}/remove",
        payment_methods.remove,
        "remove_card",
        "payment-methods",
    ),
    ("GET", "/license-keys", license_keys.license_keys_page, "license_keys", "license-keys"),
    (
        "GET",
        "/license-keys/instances/{instance_id}/deactivate",
        license_keys.deactivate_page,
        "deactivate_instance_page",
        "license-keys",
    ),
    (
        "POST",
        "/license-keys/instances/{instance_id}/deactivate",
        license_keys.deactivate,
        "deactivate_instance",
        "license-keys",
    ),
)


def _account_routes(unified_site: bool) -> list[tuple[str, str, Handler, str]]:
    wrap = unified_account_page if unified_site else business_account_page
    tag = "unified_" if unified_site else "portal_"
    return [
        (method, f"/b/{{business_id}}{path}", wrap(section)(handler), f"{tag}{name}")
        for method, path, handler, name, section in _ACCOUNT_PAGES
    ]


def _business_routes(prefix: str) -> list[tuple[str, str, Handler, str]]:
    b = "/b/{business_id}"
    routes: list[tuple[str, str, Handler, str]] = [
        ("GET", "/login/{business_id}", login.login_page, "login_page"),
        ("POST", "/login/{business_id}", login.request_sign_in_link, "request_sign_in_link"),
        ("GET", "/link/{token}", links.confirm_link_page, "confirm_link_page"),
        ("POST", "/link/{token}", links.consume_link, "consume_link"),
        ("POST", "/link/{token}/fresh", links.request_fresh_link, "request_fresh_link"),
        ("GET", "/email-change/{token}", profile.confirm_email_change_page, "email_change_page"),
        ("POST", "/email-change/{token}", profile.confirm_email_change, "confirm_email_change"),
        ("GET", b, portal.portal_home_redirect, "portal_home_redirect"),
        ("GET", f"{b}/", portal.portal_home, "portal_home"),
        ("GET", f"{b}/profile", profile.profile_page, "profile_page"),
        ("POST", f"{b}/profile", profile.update_profile, "update_profile"),
        ("POST", f"{b}/profile/email", profile.request_email_change, "request_email_change"),
        ("POST", f"{b}/logout", portal.logout, "logout"),
        # Unified portal -> live portal (only the live site has hand-offs).
        ("GET", "/handoff/begin/{business_id}", handoff.begin_handoff, "begin_handoff"),
        ("GET", "/handoff/{token}", handoff.consume_handoff, "consume_handoff"),
    ]
    routes.extend(_account_routes(unified_site=False))
    return routes


def _unified_routes(prefix: str) -> list[tuple[str, str, Handler, str]]:
    routes: list[tuple[str, str, Handler, str]] = [
        ("GET", "/", unified.accounts_page, "unified_accounts"),
        ("GET", "/login", login.unified_login_page, "unified_login_page"),
        ("POST", "/login", login.request_unified_sign_in_link, "request_unified_sign_in_link"),
        ("GET", "/link/{token}", links.confirm_link_page, "unified_confirm_link_page"),
        ("POST", "/link/{token}", links.consume_link, "unified_consume_link"),
        ("POST", "/link/{token}/fresh", links.request_fresh_link, "unified_request_fresh_link"),
        ("POST", "/open/{business_id}", unified.open_business, "unified_open_business"),
        ("GET", "/open/{business_id}/bound", unified.open_bound, "unified_open_bound"),
        ("POST", "/logout", unified.unified_logout, "unified_logout"),
        ("GET", "/subscriptions", unified_billing.all_subscriptions, "unified_all_subscriptions"),
        ("GET", "/payments", unified_billing.all_payments, "unified_all_payments"),
        ("GET", "/invoices", unified_invoices.all_invoices, "unified_all_invoices"),
        ("GET", "/license-keys", license_keys.all_license_keys, "unified_all_license_keys"),
        *_account_routes(unified_site=True),
    ]
    if prefix:
        routes.append(("GET", "", unified.unified_home_redirect, "unified_home_redirect"))
    return routes


def portal_routes(sites: Sites) -> list[web.AbstractRouteDef]:
    """Every page of every site, plus static assets and brand CSS per prefix.

    Sites that share a prefix (on different hosts) share one route per path;
    the Host header picks the site, and with it the handler (see ``bind_site``).
    """
    table: list[web.AbstractRouteDef] = []
    builders = {"business": _business_routes, "unified": _unified_routes}
    for prefix in sites.prefixes():
        slug = _slug(prefix)
        kinds: list[SiteKind] = list(dict.fromkeys(s.kind for s in sites.at_prefix(prefix)))
        merged: dict[tuple[str, str], dict[SiteKind, tuple[Handler, str]]] = {}
        for kind in kinds:
            for method, path, handler, name in builders[kind](prefix):
                merged.setdefault((method, path), {})[kind] = (handler, name)
        for (method, path), by_kind in merged.items():
            name = "__".join(name for _, name in by_kind.values())
            table.append(
                web.route(
                    method,
                    f"{prefix}{path}",
                    bind_site({kind: h for kind, (h, _) in by_kind.items()}, prefix),
                    name=f"{name}__{slug}",
                    **({"allow_head": False} if method == "GET" else {}),
                )
            )
        table.append(
            web.get(
                f"{prefix}/brand/{{business_id}}.css",
                branding.brand_css,
                name=f"brand_css__{slug}",
                allow_head=False,
            )
        )
        table.append(web.static(f"{prefix}/static", STATIC_DIR, name=f"static__{slug}"))
    return table
