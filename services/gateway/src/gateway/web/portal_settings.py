"""What a business lets its customers do themselves in the portal, read from auth's ``Business``.

Auth owns the settings (``Business.portal_settings``, changed through the merchant
API's ``PATCH /business`` or ``portalctl business set``); the portal only reads
them, through :func:`portal_settings_of`, to hide an action and to refuse its
route (:func:`not_offered_page`). An unset message — an older auth, or a test's
fake — reads as the defaults: every action allowed, reasons asked, downgrades
at the next billing date.

Always allowed, whatever the settings: undoing a scheduled cancellation and
resuming a subscription that is already paused (a customer is never stuck
with a change the business no longer offers).

The portal reads the business through the gateway's business cache, so a
change shows within ``GATEWAY_BUSINESS_CACHE_SECONDS`` (30 by default) — at
once on the gateway that served the ``PATCH /business``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web
from billing.auth.v1 import auth_pb2

from gateway.web.billing_scope import Account
from gateway.web.rendering import render


@dataclass(frozen=True, slots=True)
class PortalSettingsView:
    """The portal's reading of a business's ``PortalSettings``."""

    allow_cancel: bool = True
    allow_pause: bool = True
    allow_plan_change: bool = True
    allow_quantity_change: bool = True
    ask_cancel_reason: bool = True
    downgrades_at_next_billing_date: bool = True


DEFAULT_PORTAL_SETTINGS = PortalSettingsView()


def portal_settings_of(business: Any) -> PortalSettingsView:
    """The settings of ``business`` (an ``auth.v1.Business``); unset or None → the defaults."""
    if business is None or not business.HasField("portal_settings"):
        return DEFAULT_PORTAL_SETTINGS
    settings = business.portal_settings
    return PortalSettingsView(
        allow_cancel=settings.allow_cancel,
        allow_pause=settings.allow_pause,
        allow_plan_change=settings.allow_plan_change,
        allow_quantity_change=settings.allow_quantity_change,
        ask_cancel_reason=settings.ask_cancel_reason,
        downgrades_at_next_billing_date=(
            settings.downgrade_timing != auth_pb2.DOWNGRADE_TIMING_IMMEDIATELY
        ),
    )


def not_offered_page(request: web.Request, account: Account, subscription_id: str) -> web.Response:
    """The 403 page of an action the business does not offer in its portal (inside the
    portal's frame, with the way back to the subscription)."""
    return render(
        request,
        "action_not_offered.html",
        account.values(back_href=account.path(f"subscriptions/{subscription_id}")),
        status=403,
    )
