"""Sealing a secret value (a one-time link) for one reader, so it can sit in an
outbox, a queue or a job record as ciphertext only.

Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) under a key shared by
the writer and the reader through a secret setting. Several keys may be given,
comma-separated: the first seals, all of them open, so a key can be rotated by
adding the new one in front, waiting until everything sealed under the old one
has been delivered, then removing it.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

# Development and tests only: services refuse to start in production without
# their own key (see the services' settings). Never use it for anything real.
DEVELOPMENT_SEALING_KEY = "ZGV2ZWxvcG1lbnQtb25seS1saW5rLXNlYWxpbmchISE="


class SealError(ValueError):
    """The ciphertext was not sealed with any of our keys, or was altered."""


def new_sealing_key() -> str:
    """A fresh random key, in the form the settings take."""
    return Fernet.generate_key().decode()


def check_sealing_keys(value: str) -> str:
    """Validate a comma-separated key list (for settings validators); returns it."""
    keys = [k.strip() for k in value.split(",") if k.strip()]
    if not keys:
        raise ValueError("must hold at least one key")
    for key in keys:
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ValueError(
                "each key must be 32 url-safe base64-encoded bytes (Fernet.generate_key())"
            ) from None
    return ",".join(keys)


class Sealer:
    """Seals and opens short secrets with the configured keys."""

    def __init__(self, keys: str) -> None:
        self._fernet = MultiFernet([Fernet(k) for k in check_sealing_keys(keys).split(",")])

    def seal(self, plaintext: str) -> str:
        """The ciphertext of ``plaintext`` (ASCII, safe in JSON)."""
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, ciphertext: str) -> str:
        """The plaintext; :class:`SealError` when no key opens it or it was tampered with."""
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except (InvalidToken, ValueError):
            raise SealError("sealed value could not be opened") from None
