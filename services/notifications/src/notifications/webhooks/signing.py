"""Standard Webhooks signatures (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``).

``v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>``, where the key is the
base64 part of a ``whsec_<base64>`` secret, decoded. The header may carry several
space-separated signatures: during a secret rotation each delivery is signed
with the new and the previous secret, so receivers holding either verify it.

Hand-written (a few lines of ``hmac``) rather than the ``standardwebhooks``
package's ``Webhook.sign``: that one signs with a single secret, and pulling it
into the service would add an HTTP client the service does not use. The tests
check this signer against the specification's known-answer example and verify
real deliveries with the package and with the Dodo SDK's ``unwrap``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
SECRET_BYTES = 24


class InvalidSecret(ValueError):
    """Not a ``whsec_<base64>`` secret."""


def new_secret() -> str:
    """A fresh ``whsec_`` secret: 24 random bytes, base64 (as Svix and Dodo issue them)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except ValueError:
        raise InvalidSecret("the secret is not whsec_<base64>") from None
    if not key:
        raise InvalidSecret("the secret is empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """One ``v1,<base64>`` signature of ``body`` sent as ``msg_id`` at ``timestamp``."""
    signed = f"{msg_id}.{timestamp}.{body}".encode()
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets_: Sequence[str], msg_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` value: one signature per secret, space-separated."""
    if not secrets_:
        raise InvalidSecret("no secret to sign with")
    return " ".join(sign(s, msg_id, timestamp, body) for s in secrets_)


def webhook_headers(
    secrets_: Sequence[str], msg_id: str, timestamp: int, body: str
) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets_, msg_id, timestamp, body),
    }
