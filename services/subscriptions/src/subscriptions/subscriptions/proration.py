"""Proration of a plan change: pure arithmetic in integer minor units, to the second.

Rules (also in the service README):

* The current period is ``[previous_billing_date, next_billing_date)``; ``left`` is the
  whole seconds from the change to ``next_billing_date`` (clamped to ``[0, period]``),
  ``period`` the seconds of the current period.
* **One rounding rule**: a prorated line is ``round_half_up(amount x left / period)``,
  computed with integers only (``(2 x amount x left + period) // (2 x period)``). The
  credit for the old plan and the charge for the new plan are rounded separately; the
  immediate charge is ``max(0, charge - credit)`` (a downgrade's credit is not refunded).
* The new plan's line uses the current period's length when its payment frequency is the
  old one's; otherwise the length of one new-plan interval counted from
  ``previous_billing_date`` (so a monthly -> yearly change charges the yearly price for
  the seconds left of the month, out of a year).
* ``amount`` is a whole period's price of the plan (unit price x quantity). Currencies
  without minor units (JPY) need nothing special: the amounts already are whole yen.

Modes (Dodo's ``proration_billing_mode``):

``prorated_immediately``
    credit old x left/period, charge new x left/period; the cycle restarts at the change.
``prorated_immediately_keep_cycle``
    the same amounts; ``next_billing_date`` stays where it was.
``full_immediately``
    the new plan's full period price (no credit); the cycle restarts at the change.
``difference_immediately``
    full new price minus full old price, when positive; the cycle restarts at the change.
``do_not_bill``
    nothing now; the new price from the next renewal (``next_billing_date`` stays).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class ProrationMode(StrEnum):
    """Dodo's ``proration_billing_mode`` values."""

    PRORATED_IMMEDIATELY = "prorated_immediately"
    FULL_IMMEDIATELY = "full_immediately"
    DIFFERENCE_IMMEDIATELY = "difference_immediately"
    DO_NOT_BILL = "do_not_bill"
    PRORATED_IMMEDIATELY_KEEP_CYCLE = "prorated_immediately_keep_cycle"

    @property
    def restarts_cycle(self) -> bool:
        """True when the billing cycle starts again at the change."""
        return self in (
            ProrationMode.PRORATED_IMMEDIATELY,
            ProrationMode.FULL_IMMEDIATELY,
            ProrationMode.DIFFERENCE_IMMEDIATELY,
        )


def round_half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half up, for ``numerator >= 0, denominator > 0``."""
    if denominator <= 0 or numerator < 0:
        raise ValueError("round_half_up needs numerator >= 0 and denominator > 0")
    return (2 * numerator + denominator) // (2 * denominator)


def prorate(amount: int, left: int, period: int) -> int:
    """``amount x left / period`` rounded half up (integers only)."""
    return round_half_up(amount * left, period)


@dataclass(frozen=True)
class PlanSide:
    """One side of a change: the plan's full period price and who it is."""

    product_id: str
    name: str
    quantity: int
    unit_price: int
    # Seconds of one period of this plan (the proration's denominator).
    period_seconds: int

    @property
    def amount(self) -> int:
        """A whole period of this plan, minor units."""
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class ProratedLine:
    """A line of the immediate charge: negative ``amount`` = a credit for the old plan."""

    product_id: str
    name: str
    quantity: int
    unit_price: int
    # left / period of the line as a float, for display only (the amount is exact).
    proration_factor: float
    amount: int


@dataclass(frozen=True)
class Proration:
    """The lines and what is charged now."""

    lines: tuple[ProratedLine, ...]
    immediate_amount: int


def seconds_between(start: datetime, end: datetime) -> int:
    """Whole seconds from ``start`` to ``end`` (never negative)."""
    return max(0, int((end - start).total_seconds()))


def compute(
    mode: ProrationMode,
    old: PlanSide,
    new: PlanSide,
    *,
    period_start: datetime,
    period_end: datetime,
    at: datetime,
) -> Proration:
    """What a change from ``old`` to ``new`` at ``at`` charges now (see the module rules)."""
    if mode is ProrationMode.DO_NOT_BILL:
        return Proration(lines=(), immediate_amount=0)
    if mode in (ProrationMode.FULL_IMMEDIATELY, ProrationMode.DIFFERENCE_IMMEDIATELY):
        charge = ProratedLine(
            new.product_id, new.name, new.quantity, new.unit_price, 1.0, new.amount
        )
        if mode is ProrationMode.FULL_IMMEDIATELY:
            return Proration(lines=(charge,), immediate_amount=new.amount)
        credit = ProratedLine(
            old.product_id, old.name, old.quantity, old.unit_price, 1.0, -old.amount
        )
        return Proration(lines=(credit, charge), immediate_amount=max(0, new.amount - old.amount))
    period = max(1, old.period_seconds)
    left = min(seconds_between(at, period_end), seconds_between(period_start, period_end))
    new_period = max(1, new.period_seconds)
    new_left = min(left, new_period)
    credit_amount = prorate(old.amount, left, period)
    charge_amount = prorate(new.amount, new_left, new_period)
    credit = ProratedLine(
        old.product_id, old.name, old.quantity, old.unit_price, left / period, -credit_amount
    )
    charge = ProratedLine(
        new.product_id,
        new.name,
        new.quantity,
        new.unit_price,
        new_left / new_period,
        charge_amount,
    )
    return Proration(lines=(credit, charge), immediate_amount=max(0, charge_amount - credit_amount))
