"""Keeping secrets out of logs and traces.

Every secret the platform hands out carries a readable prefix (STYLE.md:
"tokens are greppable"): one-time portal tokens ``cpt_…``, session secrets
``cps_…``, API key secrets ``sk_test_…``/``sk_live_…``. Anything that writes
text somewhere durable (the JSON log formatter, the span exporters) passes
it through :func:`redact_secrets`, so a token that reaches a log line by any
path — a URL, an exception message, a traceback — is written as
``cpt_[REDACTED]``. The prefix stays, so the line still says what kind of
secret was there.

Short values such as an API key's display prefix (``sk_test_AbCd``, four
characters) are left alone: they identify a key without unlocking it.
"""

from __future__ import annotations

import re

SECRET_PREFIXES = ("cpt_", "cps_", "sk_test_", "sk_live_")
REDACTED = "[REDACTED]"
# At least 8 characters after the prefix: longer than any display prefix, far
# shorter than any secret we issue (43).
_SECRET = re.compile(
    r"(?<![A-Za-z0-9])(" + "|".join(re.escape(p) for p in SECRET_PREFIXES) + r")[A-Za-z0-9_-]{8,}"
)


def redact_secrets(text: str) -> str:
    """``text`` with every prefixed secret's value replaced by ``[REDACTED]``."""
    return _SECRET.sub(r"\1" + REDACTED, text)


def contains_secret(text: str) -> bool:
    """Whether ``text`` carries a prefixed secret value."""
    return _SECRET.search(text) is not None
