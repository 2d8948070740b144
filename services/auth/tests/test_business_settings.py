"""A business's portal settings and UpdateBusiness, over gRPC against the real database:
defaults (also for a business stored before the settings existed), changing only
what is given, range checks that write nothing, and one audit entry per change."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from billing.auth.v1 import auth_pb2
from billing_kit.audit import AUDIT_COLLECTION

from .conftest import rpc_error
from .test_auth_grpc import new_business

pytestmark = pytest.mark.integration

KEY_ID = "key_settingsTest"


def update(business_id: str, actor: str = KEY_ID, **fields: Any) -> auth_pb2.UpdateBusinessRequest:
    return auth_pb2.UpdateBusinessRequest(business_id=business_id, actor=actor, **fields)


async def audit_entries(auth: Any, business_id: str) -> list[dict[str, Any]]:
    cursor = auth.db[AUDIT_COLLECTION].find(
        {"action": "business.updated", "resource.id": business_id}
    )
    return [doc async for doc in cursor]


DEFAULTS = auth_pb2.PortalSettings(
    allow_cancel=True,
    allow_pause=True,
    allow_plan_change=True,
    allow_quantity_change=True,
    ask_cancel_reason=True,
    downgrade_timing=auth_pb2.DOWNGRADE_TIMING_NEXT_BILLING_DATE,
)


class TestDefaults:
    async def test_a_new_business_allows_everything(self, auth: Any) -> None:
        business = await new_business(auth)
        assert business.portal_settings == DEFAULTS

    async def test_a_business_stored_before_the_settings_gets_the_defaults(self, auth: Any) -> None:
        business = await new_business(auth)
        await auth.db.businesses.update_one(
            {"_id": business.business_id}, {"$unset": {"portal_settings": ""}}
        )
        fetched = await auth.stub.GetBusiness(
            auth_pb2.GetBusinessRequest(business_id=business.business_id)
        )
        assert fetched.HasField("portal_settings")
        assert fetched.portal_settings == DEFAULTS
        # Changing one setting of such a business keeps the defaults of the others.
        changed = await auth.stub.UpdateBusiness(update(business.business_id, allow_pause=False))
        assert changed.portal_settings.allow_pause is False
        assert changed.portal_settings.allow_cancel is True
        assert changed.portal_settings.ask_cancel_reason is True


class TestUpdateBusiness:
    async def test_only_the_given_fields_change_and_stay_changed(self, auth: Any) -> None:
        business = await new_business(auth)
        changed = await auth.stub.UpdateBusiness(
            update(
                business.business_id,
                allow_plan_change=False,
                allow_cancel=False,
                downgrade_timing=auth_pb2.DOWNGRADE_TIMING_IMMEDIATELY,
                renewal_reminder_days=10,
                license_grace_days=0,
            )
        )
        settings = changed.portal_settings
        assert (settings.allow_plan_change, settings.allow_cancel) == (False, False)
        assert (settings.allow_pause, settings.allow_quantity_change) == (True, True)
        assert settings.ask_cancel_reason is True
        assert settings.downgrade_timing == auth_pb2.DOWNGRADE_TIMING_IMMEDIATELY
        assert changed.renewal_reminder_days == 10
        fetched = await auth.stub.GetBusiness(
            auth_pb2.GetBusinessRequest(business_id=business.business_id)
        )
        assert fetched == changed
        assert fetched.name == business.name
        # A second change leaves the first one's fields alone.
        again = await auth.stub.UpdateBusiness(
            update(business.business_id, ask_cancel_reason=False, allow_cancel=True)
        )
        assert again.portal_settings.allow_plan_change is False
        assert again.portal_settings.allow_cancel is True
        assert again.portal_settings.ask_cancel_reason is False
        assert again.portal_settings.downgrade_timing == auth_pb2.DOWNGRADE_TIMING_IMMEDIATELY

    @pytest.mark.parametrize(
        ("fields", "named"),
        [
            ({"renewal_reminder_days": 0}, "renewal_reminder_days"),
            ({"renewal_reminder_days": 31}, "renewal_reminder_days"),
            ({"license_grace_days": -1}, "license_grace_days"),
            ({"license_grace_days": 366}, "license_grace_days"),
            ({"downgrade_timing": 9}, "downgrade_timing"),
        ],
    )
    async def test_out_of_range_values_are_refused_and_nothing_is_written(
        self, auth: Any, fields: dict[str, Any], named: str
    ) -> None:
        business = await new_business(auth)
        err = await rpc_error(
            auth.stub.UpdateBusiness(update(business.business_id, allow_cancel=False, **fields))
        )
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert named in (err.details() or "")
        fetched = await auth.stub.GetBusiness(
            auth_pb2.GetBusinessRequest(business_id=business.business_id)
        )
        assert fetched.portal_settings.allow_cancel is True  # nothing partial
        assert await audit_entries(auth, business.business_id) == []

    async def test_unknown_business_and_missing_actor(self, auth: Any) -> None:
        err = await rpc_error(auth.stub.UpdateBusiness(update("bus_missing", allow_pause=False)))
        assert err.code() == grpc.StatusCode.NOT_FOUND
        business = await new_business(auth)
        err = await rpc_error(
            auth.stub.UpdateBusiness(update(business.business_id, actor="", allow_pause=False))
        )
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "actor" in (err.details() or "")

    async def test_each_change_is_audited_with_who_and_what(self, auth: Any) -> None:
        business = await new_business(auth)
        await auth.stub.UpdateBusiness(
            update(business.business_id, allow_plan_change=False, allow_pause=False)
        )
        await auth.stub.UpdateBusiness(
            update(business.business_id, actor="portalctl", license_grace_days=30)
        )
        # Setting what is already set changes nothing and is not audited.
        await auth.stub.UpdateBusiness(update(business.business_id, allow_pause=False))
        entries = sorted(await audit_entries(auth, business.business_id), key=lambda e: e["at"])
        assert [e["actor"] for e in entries] == [
            {"kind": "merchant", "id": KEY_ID},
            {"kind": "operator", "id": "portalctl"},
        ]
        assert [e["details"]["changed_fields"] for e in entries] == [
            "allow_pause,allow_plan_change",
            "license_grace_days",
        ]
        assert entries[0]["resource"]["business_id"] == business.business_id

    async def test_listed_businesses_carry_their_settings(self, auth: Any) -> None:
        business = await new_business(auth)
        await auth.stub.UpdateBusiness(update(business.business_id, allow_quantity_change=False))
        listed = await auth.stub.ListBusinesses(auth_pb2.ListBusinessesRequest(page_size=100))
        mine = next(b for b in listed.businesses if b.business_id == business.business_id)
        assert mine.portal_settings.allow_quantity_change is False
