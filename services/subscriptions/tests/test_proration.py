"""The proration rules, as a table: to the second, integer minor units, one rounding rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from subscriptions.subscriptions.proration import (
    PlanSide,
    ProrationMode,
    compute,
    prorate,
    round_half_up,
)

MONTH_START = datetime(2026, 3, 1, tzinfo=UTC)
MONTH_END = datetime(2026, 4, 1, tzinfo=UTC)  # 31 days
YEAR_START = datetime(2026, 1, 1, tzinfo=UTC)
YEAR_END = datetime(2027, 1, 1, tzinfo=UTC)  # 365 days


def _expected(amount: int, left: int, period: int) -> int:
    """Round half up of the exact fraction (an independent statement of the rule)."""
    exact = Fraction(amount * left, period)
    floor = exact.numerator // exact.denominator
    return floor + (1 if exact - floor >= Fraction(1, 2) else 0)


def _side(pid: str, unit: int, qty: int, start: datetime, end: datetime) -> PlanSide:
    return PlanSide(pid, pid, qty, unit, int((end - start).total_seconds()))


# (name, currency, (start, end), at, old (unit, qty), new (unit, qty))
CASES = [
    # monthly, USD upgrade 10.00 -> 25.00 at the start, middle and last second
    ("usd-month-start", (MONTH_START, MONTH_END), MONTH_START, (1000, 1), (2500, 1)),
    (
        "usd-month-middle",
        (MONTH_START, MONTH_END),
        MONTH_START + timedelta(days=15, hours=12),
        (1000, 1),
        (2500, 1),
    ),
    (
        "usd-month-last",
        (MONTH_START, MONTH_END),
        MONTH_END - timedelta(seconds=1),
        (1000, 1),
        (2500, 1),
    ),
    # yearly, EUR 99.99 -> 199.99, awkward seconds
    ("eur-year-start", (YEAR_START, YEAR_END), YEAR_START, (9999, 1), (19999, 1)),
    (
        "eur-year-middle",
        (YEAR_START, YEAR_END),
        YEAR_START + timedelta(days=182, seconds=12345),
        (9999, 1),
        (19999, 1),
    ),
    (
        "eur-year-last",
        (YEAR_START, YEAR_END),
        YEAR_END - timedelta(seconds=1),
        (9999, 1),
        (19999, 1),
    ),
    # JPY has no minor units: amounts are yen
    (
        "jpy-month-middle",
        (MONTH_START, MONTH_END),
        MONTH_START + timedelta(days=10, seconds=7),
        (980, 1),
        (1980, 1),
    ),
    (
        "jpy-year-last",
        (YEAR_START, YEAR_END),
        YEAR_END - timedelta(seconds=1),
        (9800, 1),
        (19800, 1),
    ),
    ("jpy-year-start", (YEAR_START, YEAR_END), YEAR_START, (9800, 1), (19800, 1)),
    # downgrade: nothing charged now (the credit is not refunded)
    (
        "usd-month-downgrade",
        (MONTH_START, MONTH_END),
        MONTH_START + timedelta(days=3),
        (2500, 1),
        (1000, 1),
    ),
    # seats 1 -> 5 on the same plan
    (
        "eur-month-seats",
        (MONTH_START, MONTH_END),
        MONTH_START + timedelta(days=20, minutes=1),
        (1500, 1),
        (1500, 5),
    ),
    (
        "jpy-year-seats",
        (YEAR_START, YEAR_END),
        YEAR_START + timedelta(days=300),
        (1200, 1),
        (1200, 5),
    ),
]


@pytest.mark.parametrize(("name", "period", "at", "old", "new"), CASES, ids=[c[0] for c in CASES])
def test_prorated_immediately_to_the_second(
    name: str,
    period: tuple[datetime, datetime],
    at: datetime,
    old: tuple[int, int],
    new: tuple[int, int],
) -> None:
    start, end = period
    seconds = int((end - start).total_seconds())
    left = int((end - at).total_seconds())
    old_side = _side("pdt_old", *old, start, end)
    new_side = _side("pdt_new", *new, start, end)
    result = compute(
        ProrationMode.PRORATED_IMMEDIATELY,
        old_side,
        new_side,
        period_start=start,
        period_end=end,
        at=at,
    )
    credit = _expected(old[0] * old[1], left, seconds)
    charge = _expected(new[0] * new[1], left, seconds)
    assert [line.amount for line in result.lines] == [-credit, charge]
    assert result.immediate_amount == max(0, charge - credit)
    # the keep-cycle variant charges the same
    same = compute(
        ProrationMode.PRORATED_IMMEDIATELY_KEEP_CYCLE,
        old_side,
        new_side,
        period_start=start,
        period_end=end,
        at=at,
    )
    assert same.immediate_amount == result.immediate_amount
    if "downgrade" in name:
        assert result.immediate_amount == 0
    if at == start:
        assert result.immediate_amount == new_side.amount - old_side.amount
    if at == end - timedelta(seconds=1):
        # one second of a period: at most a minor unit or so either way
        assert result.immediate_amount <= 1


def test_the_middle_of_a_month_is_exactly_half() -> None:
    start = datetime(2026, 4, 1, tzinfo=UTC)
    end = datetime(2026, 5, 1, tzinfo=UTC)  # 30 days
    result = compute(
        ProrationMode.PRORATED_IMMEDIATELY,
        _side("a", 1000, 1, start, end),
        _side("b", 2500, 1, start, end),
        period_start=start,
        period_end=end,
        at=start + timedelta(days=15),
    )
    assert result.immediate_amount == 1250 - 500


def test_rounding_is_half_up_on_each_line_separately() -> None:
    assert round_half_up(5, 2) == 3
    assert round_half_up(4, 3) == 1
    assert round_half_up(3, 2) == 2
    # 1 minor unit for half the period: 0.5 rounds up on each line
    assert prorate(1, 1, 2) == 1
    start = datetime(2026, 4, 1, tzinfo=UTC)
    end = start + timedelta(seconds=2)
    result = compute(
        ProrationMode.PRORATED_IMMEDIATELY,
        PlanSide("a", "a", 1, 1, 2),
        PlanSide("b", "b", 1, 3, 2),
        period_start=start,
        period_end=end,
        at=start + timedelta(seconds=1),
    )
    assert [line.amount for line in result.lines] == [-1, 2]
    assert result.immediate_amount == 1


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (ProrationMode.FULL_IMMEDIATELY, 2500),
        (ProrationMode.DIFFERENCE_IMMEDIATELY, 1500),
        (ProrationMode.DO_NOT_BILL, 0),
    ],
)
def test_the_other_modes(mode: ProrationMode, expected: int) -> None:
    result = compute(
        mode,
        _side("a", 1000, 1, MONTH_START, MONTH_END),
        _side("b", 2500, 1, MONTH_START, MONTH_END),
        period_start=MONTH_START,
        period_end=MONTH_END,
        at=MONTH_START + timedelta(days=9),
    )
    assert result.immediate_amount == expected


def test_a_difference_downgrade_charges_nothing() -> None:
    result = compute(
        ProrationMode.DIFFERENCE_IMMEDIATELY,
        _side("a", 2500, 1, MONTH_START, MONTH_END),
        _side("b", 1000, 1, MONTH_START, MONTH_END),
        period_start=MONTH_START,
        period_end=MONTH_END,
        at=MONTH_START + timedelta(days=9),
    )
    assert result.immediate_amount == 0
    assert [line.amount for line in result.lines] == [-2500, 1000]


def test_which_modes_restart_the_cycle() -> None:
    assert ProrationMode.PRORATED_IMMEDIATELY.restarts_cycle
    assert ProrationMode.FULL_IMMEDIATELY.restarts_cycle
    assert ProrationMode.DIFFERENCE_IMMEDIATELY.restarts_cycle
    assert not ProrationMode.DO_NOT_BILL.restarts_cycle
    assert not ProrationMode.PRORATED_IMMEDIATELY_KEEP_CYCLE.restarts_cycle
