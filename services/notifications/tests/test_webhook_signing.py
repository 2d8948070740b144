"""The Standard Webhooks signer and the address guard's rules (no I/O)."""

from __future__ import annotations

import ipaddress
import time

import pytest
from notifications.webhooks.address_guard import AddressRefused, check_url_target, refusal
from notifications.webhooks.signing import new_secret, sign, signature_header, webhook_headers
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

# The specification's known-answer example (standard-webhooks, "Verifying webhooks").
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = '{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signer_passes_the_specifications_known_answer() -> None:
    assert sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_the_library_verifies_our_headers_and_rejects_a_changed_body() -> None:
    secret = new_secret()
    now = int(time.time())
    headers = webhook_headers([secret], "msg_1", now, '{"a":1}')
    Webhook(secret).verify('{"a":1}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify('{"a":2}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify('{"a":1}', headers)


def test_rotation_header_carries_one_signature_per_secret() -> None:
    old, new = new_secret(), new_secret()
    header = signature_header([new, old], "msg_1", 1, "{}")
    assert header.split(" ") == [sign(new, "msg_1", 1, "{}"), sign(old, "msg_1", 1, "{}")]


def test_secrets_are_fresh_whsec_values() -> None:
    a, b = new_secret(), new_secret()
    assert a.startswith("whsec_") and a != b


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link_local"),
        ("10.0.0.5", "private"),
        ("192.168.1.1", "private"),
        ("172.16.0.1", "private"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),
        ("100.64.0.1", "not_global"),
    ],
)
def test_internal_addresses_are_refused(address: str, why: str) -> None:
    assert refusal(ipaddress.ip_address(address)) == why


def test_public_addresses_pass() -> None:
    assert refusal(ipaddress.ip_address("93.184.216.34")) is None
    assert refusal(ipaddress.ip_address("2606:4700::1111")) is None


def test_ip_literal_urls_are_checked_before_any_connection() -> None:
    with pytest.raises(AddressRefused):
        check_url_target("http://[::1]:8080/hook")
    check_url_target("https://merchant.example/hook")  # names are checked on resolve
