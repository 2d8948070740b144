"""The ``license_key.created`` webhook's ``data`` is what ``GET /license_keys/{id}`` answers.

Both are built from the same key: the gateway's ``LicenseKeyOut`` from subscriptions'
``LicenseKey`` message, notifications' ``LicenseKeyData`` from the event subscriptions
writes for it (``LicenseKeyCreatedData.of``). A field added, renamed or shaped
differently on one side fails here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from billing.subscriptions.v1 import licenses_pb2
from gateway.api.license_schemas import LicenseKeyOut
from google.protobuf.timestamp_pb2 import Timestamp
from notifications.webhooks.payloads import LicenseKeyEventIn, license_key_data, with_license_key
from subscriptions.licenses.models import LicenseKey, LicenseKeyCreatedData, LicenseKeySource

CREATED = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
KEY = "QWERT-YUIOP-ASDFG-HJKLZ-XCVBN-M2345"


def _stamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _key(**changes: object) -> LicenseKey:
    fields: dict[str, object] = {
        "license_key_id": "lic_1",
        "business_id": "bus_1",
        "mode": "test",
        "customer_id": "cus_1",
        "product_id": "pdt_app",
        "source": LicenseKeySource.AUTO,
        "key_hash": "h",
        "key_sealed": "sealed",
        "activations_limit": 5,
        "expires_at": datetime(2027, 5, 1, 8, 0, tzinfo=UTC),
        "payment_id": "pay_1",
        "purchase_id": "pay_1",
        "product_name": "Desktop App",
        "created_at": CREATED,
        "updated_at": CREATED,
    }
    fields.update(changes)
    return LicenseKey.model_validate(fields)


def _api(key: LicenseKey) -> dict[str, object]:
    """What the merchant API answers for ``key`` (the servicer's message, then the gateway)."""
    message = licenses_pb2.LicenseKey(
        license_key_id=key.license_key_id,
        business_id=key.business_id,
        customer_id=key.customer_id,
        product_id=key.product_id,
        status=key.status_at(CREATED).value,
        source=key.source.value,
        instances_count=key.instances_count,
        payment_id=key.payment_id,
        subscription_id=key.subscription_id,
        created_at=_stamp(key.created_at),
        key=KEY,
    )
    if key.activations_limit is not None:
        message.activations_limit = key.activations_limit
    if key.expires_at is not None:
        message.expires_at.CopyFrom(_stamp(key.expires_at))
    return LicenseKeyOut.from_proto(message).model_dump(mode="json")


def _webhook(key: LicenseKey) -> dict[str, object]:
    """The webhook's ``data`` for the event subscriptions writes when issuing ``key``."""
    event = LicenseKeyCreatedData.of(key).model_dump(mode="json")
    data = license_key_data(LicenseKeyEventIn.model_validate(event), CREATED).model_dump(
        mode="json"
    )
    body = with_license_key(json.dumps({"data": data}, separators=(",", ":")), KEY)
    return dict(json.loads(body)["data"])


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"activations_limit": None, "expires_at": None},
        {"subscription_id": "sub_1", "payment_id": ""},
        {"source": LicenseKeySource.IMPORT, "disabled": True},
    ],
)
def test_webhook_data_matches_the_merchant_api(changes: dict[str, object]) -> None:
    key = _key(**changes)
    api, webhook = _api(key), _webhook(key)
    assert list(webhook) == list(api)  # the same fields, in the same order
    assert webhook == api
