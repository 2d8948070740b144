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
* **Add-ons** are lines of their own (type ``addon``) under the same rule: each add-on of
  the old plan is credited ``round_half_up(unit price x old quantity x left / period)``,
  each add-on of the new plan charged ``round_half_up(unit price x new quantity x left /
  period)`` (the new plan's period), every line rounded separately. The immediate charge
  is ``max(0, sum of the charges - sum of the credits)``; ``full_immediately`` charges the
  new plan's and its add-ons' full periods, ``difference_immediately`` full new total
  minus full old total.

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


SUBSCRIPTION_LINE = "subscription"
ADDON_LINE = "addon"


@dataclass(frozen=True)
class AddonSide:
    """One add-on of a plan side: its full period price and who it is."""

    addon_id: str
    name: str
    quantity: int
    unit_price: int
    tax_category: str = ""

    @property
    def amount(self) -> int:
        """A whole period of this add-on, minor units."""
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class PlanSide:
    """One side of a change: the plan's full period price, its add-ons and who it is."""

    product_id: str
    name: str
    quantity: int
    unit_price: int
    # Seconds of one period of this plan (the proration's denominator).
    period_seconds: int
    addons: tuple[AddonSide, ...] = ()

    @property
    def amount(self) -> int:
        """A whole period of this plan alone, minor units."""
        return self.unit_price * self.quantity

    @property
    def total(self) -> int:
        """A whole period of the plan and its add-ons, minor units."""
        return self.amount + sum(addon.amount for addon in self.addons)


@dataclass(frozen=True)
class ProratedLine:
    """A line of the immediate charge: negative ``amount`` = a credit for the old plan.

    ``kind`` is ``subscription`` (``product_id`` = the product) or ``addon``
    (``product_id`` = the add-on's id)."""

    product_id: str
    name: str
    quantity: int
    unit_price: int
    # left / period of the line as a float, for display only (the amount is exact).
    proration_factor: float
    amount: int
    kind: str = SUBSCRIPTION_LINE
    tax_category: str = ""


@dataclass(frozen=True)
class Proration:
    """The lines and what is charged now."""

    lines: tuple[ProratedLine, ...]
    immediate_amount: int


def seconds_between(start: datetime, end: datetime) -> int:
    """Whole seconds from ``start`` to ``end`` (never negative)."""
    return max(0, int((end - start).total_seconds()))


def _lines(side: PlanSide, left: int, period: int, sign: int) -> list[ProratedLine]:
    """The side's plan line and one line per add-on, each ``prorate``d on its own."""
    factor = left / period
    lines = [
        ProratedLine(
            side.product_id,
            side.name,
            side.quantity,
            side.unit_price,
            factor,
            sign * prorate(side.amount, left, period),
        )
    ]
    lines.extend(
        ProratedLine(
            addon.addon_id,
            addon.name,
            addon.quantity,
            addon.unit_price,
            factor,
            sign * prorate(addon.amount, left, period),
            ADDON_LINE,
            addon.tax_category,
        )
        for addon in side.addons
    )
    return lines


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
        # A whole period: left = period = 1 makes every line its full amount.
        charges = _lines(new, 1, 1, 1)
        if mode is ProrationMode.FULL_IMMEDIATELY:
            return Proration(lines=tuple(charges), immediate_amount=new.total)
        credits = _lines(old, 1, 1, -1)
        return Proration(lines=(*credits, *charges), immediate_amount=max(0, new.total - old.total))
    period = max(1, old.period_seconds)
    left = min(seconds_between(at, period_end), seconds_between(period_start, period_end))
    new_period = max(1, new.period_seconds)
    new_left = min(left, new_period)
    credits = _lines(old, left, period, -1)
    charges = _lines(new, new_left, new_period, 1)
    lines = (*credits, *charges)
    return Proration(lines=lines, immediate_amount=max(0, sum(line.amount for line in lines)))
