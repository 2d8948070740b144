"""The state machine is one table, printed in the README; anything else is refused."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from billing_kit.errors import Reason
from subscriptions.subscriptions.models import SubscriptionStatus as S
from subscriptions.subscriptions.state_machine import (
    IllegalTransition,
    Transition,
    table_markdown,
    transition,
)

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_prints_the_table_the_code_runs() -> None:
    assert table_markdown() in README.read_text()


@pytest.mark.parametrize(
    ("use_case", "status"),
    [
        (Transition.CANCEL_NOW, S.CANCELLED),
        (Transition.SCHEDULE_CANCEL, S.EXPIRED),
        (Transition.DUES_PAID, S.ACTIVE),
        (Transition.RENEWAL_SUCCEEDED, S.ON_HOLD),
        (Transition.SWITCH_PAYMENT_METHOD, S.FAILED),
        (Transition.CHARGE_ON_DEMAND, S.ON_HOLD),
    ],
)
def test_a_change_not_in_the_table_is_a_conflict(use_case: Transition, status: S) -> None:
    with pytest.raises(IllegalTransition) as err:
        transition(use_case, status)
    assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert err.value.reason is Reason.SUBSCRIPTION_STATE_CONFLICT


def test_legal_moves() -> None:
    assert transition(Transition.RENEWAL_FAILED, S.ACTIVE) is S.ON_HOLD
    assert transition(Transition.DUES_PAID, S.ON_HOLD) is S.ACTIVE
    assert transition(Transition.CANCEL_AT_PERIOD_END, S.ACTIVE) is S.CANCELLED
