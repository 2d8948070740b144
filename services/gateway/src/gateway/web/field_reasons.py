"""What the portal says when auth refuses a field: its reason, as a translated message.

Auth owns every field rule (billing_kit.field_rules); it answers INVALID_ARGUMENT
with a machine-readable reason and the field. Pages only look the reason up here
and put the message next to the field; they never check the value themselves.
"""

from __future__ import annotations

from billing_kit.errors import DomainError

from gateway.web.i18n import N_, gettext

_MESSAGES = {
    "INVALID_NAME": N_("Enter your name, on one line and in at most 200 characters."),
    "INVALID_PHONE_NUMBER": N_(
        "Enter a phone number in international format, starting with + and the "
        "country code, e.g. +39 333 123 4567."
    ),
    "EMAIL_UNCHANGED": N_("This is already your email address."),
    "INVALID_EMAIL": N_("Enter a valid email address."),
    "INVALID_NEXT_PATH": N_(
        "This sign-in link pointed outside your portal, so that part was dropped. "
        "Ask for the link again."
    ),
}
_FALLBACK = N_("Check this value and try again.")


def field_message(error: DomainError) -> str:
    """The customer-facing message for a refused field, in the request's language."""
    return gettext(_MESSAGES.get(error.reason, _FALLBACK))
