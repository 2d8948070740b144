"""What the portal says when auth refuses a field: its reason, as a translated message.

Auth owns every field rule (billing_kit.field_rules); it answers INVALID_ARGUMENT
with a machine-readable reason and the field. Pages look the reason's message up
in the one error table (``gateway.problems.ERROR_TABLE``) and put it next to the
field; they never check the value themselves.
"""

from __future__ import annotations

from billing_kit.errors import DomainError

from gateway.problems import error_row
from gateway.web.i18n import gettext


def field_message(error: DomainError) -> str:
    """The customer-facing message for a refused field, in the request's language."""
    return gettext(error_row(error).message)
