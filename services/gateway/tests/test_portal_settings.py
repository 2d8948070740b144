"""The one reading of a business's portal settings: unset means the defaults."""

from __future__ import annotations

from billing.auth.v1 import auth_pb2
from gateway.web.portal_settings import DEFAULTS, portal_settings_of


def test_an_unset_message_reads_as_everything_allowed_and_downgrades_at_renewal() -> None:
    settings = portal_settings_of(auth_pb2.Business(business_id="biz_1"))
    assert settings == DEFAULTS
    assert settings.allow_plan_change and settings.allow_quantity_change
    assert settings.downgrade_timing == "next_billing_date"


def test_a_present_message_is_the_business_choice_even_when_all_false() -> None:
    business = auth_pb2.Business(business_id="biz_1")
    business.portal_settings.SetInParent()
    settings = portal_settings_of(business)
    assert not settings.allow_plan_change and not settings.allow_quantity_change
    assert not settings.allow_cancel and settings.downgrade_timing == "next_billing_date"


def test_downgrades_immediately_when_the_business_says_so() -> None:
    business = auth_pb2.Business(
        portal_settings=auth_pb2.PortalSettings(
            allow_plan_change=True, downgrade_timing=auth_pb2.DOWNGRADE_TIMING_IMMEDIATELY
        )
    )
    settings = portal_settings_of(business)
    assert settings.allow_plan_change and not settings.allow_quantity_change
    assert settings.downgrade_timing == "immediately"
