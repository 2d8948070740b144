"""The billing pages' forms: what a submitted form means, or why it is refused.

Pure functions over the submitted fields (CSRF is checked by the handler
first). A refusal names the field and carries a translated message for the
page to show next to it; nothing is sent to a backend.

Double submits: no form makes up a fresh key per POST. The charge behind
"Confirm changes" is keyed by the subscriptions service from the subscription
and its dues, so a double click, a second tab or back + resubmit is the same
charge; the form only carries :func:`dues_fingerprint` of what it showed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from gateway.web import i18n
from gateway.web.billing_views import FEEDBACK_VALUES

MAX_COMMENT_LENGTH = 1000
# Ids are short ASCII tokens ("pm_…", "sub_…"); anything else is not ours.
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
NEW_METHOD = "new"


def valid_id(value: str | None) -> bool:
    """True for something shaped like one of our ids (never echoes garbage to a backend)."""
    return bool(value) and _ID.fullmatch(value or "") is not None


@dataclass(frozen=True, slots=True)
class CancelChoice:
    """A valid cancel form: when, and the optional reason and comment."""

    when: Literal["now", "period_end"]
    feedback: str
    comment: str


def parse_cancel(form: dict[str, str]) -> CancelChoice | dict[str, str]:
    """The cancel form's choice, or ``{field: message}``."""
    errors: dict[str, str] = {}
    when = form.get("when", "")
    if when not in ("now", "period_end"):
        errors["when"] = i18n.gettext("Choose when the subscription ends.")
    feedback = form.get("feedback", "")
    if feedback and feedback not in FEEDBACK_VALUES:
        errors["feedback"] = i18n.gettext("Choose one of the reasons, or none.")
    comment = " ".join((form.get("comment") or "").split())
    if len(comment) > MAX_COMMENT_LENGTH:
        errors["comment"] = i18n.gettext("Keep the comment under %(max)d characters.") % {
            "max": MAX_COMMENT_LENGTH
        }
    if form.get("confirm") != "yes":
        errors["confirm"] = i18n.gettext("Tick the box to confirm the cancellation.")
    if errors:
        return errors
    return CancelChoice(
        when="now" if when == "now" else "period_end", feedback=feedback, comment=comment
    )


def parse_method_choice(form: dict[str, str], saved_ids: set[str]) -> str | dict[str, str]:
    """The chosen saved method's id, ``"new"`` for a new card, or ``{field: message}``.

    Only one of the customer's own saved methods (``saved_ids``) can be chosen:
    another customer's id is refused like a typo.
    """
    chosen = form.get("payment_method_id", "")
    if chosen == NEW_METHOD:
        return NEW_METHOD
    if not chosen:
        return {"payment_method_id": i18n.gettext("Choose a payment method.")}
    if chosen not in saved_ids:
        return {
            "payment_method_id": i18n.gettext(
                "That payment method is not available. Choose another one."
            )
        }
    return chosen


def dues_fingerprint(dues: Any) -> str:
    """What the customer is asked to pay (``subscriptions.v1.Dues``): amount and currency.

    The confirm form carries the fingerprint of the dues the customer was
    shown; the POST compares it with the dues now, so nobody is charged an
    amount they did not see. The period is left out on purpose: paying dues
    starts a fresh period at the moment of payment, so its start moves with
    the clock between the page and the click.
    """
    return f"{int(dues.amount)}-{dues.currency}"
