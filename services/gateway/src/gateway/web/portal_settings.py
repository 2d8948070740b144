"""What a business lets its customers do themselves in the portal (issue 14).

Auth answers ``Business.portal_settings``; a business whose message is UNSET
(never chosen, or an auth that predates the settings) gets the defaults: every
action allowed, cancellation reasons asked, downgrades at the next billing
date. Only a present message is the business's own choice. Every page and
endpoint reads the settings through :func:`portal_settings_of`, so the rule
lives here once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from billing.auth.v1 import auth_pb2

DowngradeTiming = Literal["next_billing_date", "immediately"]


@dataclass(frozen=True, slots=True)
class PortalSettings:
    """The self-service actions a business allows (undoing a scheduled cancel always is)."""

    allow_cancel: bool = True
    allow_pause: bool = True
    allow_plan_change: bool = True
    allow_quantity_change: bool = True
    ask_cancel_reason: bool = True
    downgrade_timing: DowngradeTiming = "next_billing_date"


DEFAULTS = PortalSettings()


def portal_settings_of(business: Any) -> PortalSettings:
    """The business's settings (an ``auth.v1.Business``); unset reads as :data:`DEFAULTS`."""
    if business is None or not business.HasField("portal_settings"):
        return DEFAULTS
    found = business.portal_settings
    immediately = found.downgrade_timing == auth_pb2.DOWNGRADE_TIMING_IMMEDIATELY
    return PortalSettings(
        allow_cancel=found.allow_cancel,
        allow_pause=found.allow_pause,
        allow_plan_change=found.allow_plan_change,
        allow_quantity_change=found.allow_quantity_change,
        ask_cancel_reason=found.ask_cancel_reason,
        downgrade_timing="immediately" if immediately else "next_billing_date",
    )
