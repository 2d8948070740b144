"""In-memory subscriptions and payments gRPC services for the billing page tests.

They keep the contracts' scoping rules (business + mode + customer: anyone
else's id is NOT_FOUND) and count calls, so the tests can show that a page
asks each service one question and that a repeated form never charges twice.
The real services are exercised in their own tests and in tests/e2e.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from billing.common.v1 import common_pb2
from billing.payments.v1 import payments_pb2, payments_pb2_grpc
from billing.subscriptions.v1 import subscriptions_pb2 as subs
from billing.subscriptions.v1 import subscriptions_pb2_grpc
from billing_kit.errors import FailedPrecondition, InvalidArgument, NotFound, Reason
from billing_kit.grpc_server import abort_with_domain_error

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)
# Cards whose next charge is declined in the fake (the test cards' roles).
DECLINING_LAST4 = {"0002": ("card_declined", "Your card was declined.")}
CHALLENGE_LAST4 = {"3184"}


@dataclass
class FakeBilling(
    subscriptions_pb2_grpc.SubscriptionsServiceServicer, payments_pb2_grpc.PaymentsServiceServicer
):
    """Both services' state, shared so a reactivation charge shows up as a payment."""

    subscriptions: dict[str, subs.Subscription] = field(default_factory=dict)
    methods: dict[str, payments_pb2.PaymentMethod] = field(default_factory=dict)
    payments: dict[str, payments_pb2.Payment] = field(default_factory=dict)
    sessions: dict[str, payments_pb2.PaymentSession] = field(default_factory=dict)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    # Dues charges by (subscription, period start): the service's idempotency rule.
    dues_charges: dict[tuple[str, int, str], str] = field(default_factory=dict)
    # Plans by product id (one plan group); a subscription on one of them may switch.
    plans: dict[str, subs.PlanOption] = field(default_factory=dict)
    # ChangePlan replies by idempotency key, and the changes a 3-D Secure payment awaits.
    plan_changes: dict[str, subs.ChangePlanResponse] = field(default_factory=dict)
    awaiting: dict[str, subs.PlanChangePreview] = field(default_factory=dict)

    # -- seeding -----------------------------------------------------------------

    def add_method(self, business_id: str, customer_id: str, last4: str, **kw: Any) -> str:
        method_id = f"pm_{uuid.uuid4().hex[:12]}"
        self.methods[method_id] = payments_pb2.PaymentMethod(
            payment_method_id=method_id,
            business_id=business_id,
            mode=kw.pop("mode", common_pb2.MODE_TEST),
            customer_id=customer_id,
            brand=kw.pop("brand", "visa"),
            last4=last4,
            expiry_month=12,
            expiry_year=2030,
            **kw,
        )
        return method_id

    def add_subscription(self, business_id: str, customer_id: str, **kw: Any) -> str:
        sub_id = f"sub_{uuid.uuid4().hex[:12]}"
        sub = subs.Subscription(
            subscription_id=sub_id,
            business_id=business_id,
            mode=kw.pop("mode", common_pb2.MODE_TEST),
            customer_id=customer_id,
            product_id="pdt_1",
            product_name=kw.pop("product_name", "Pro plan"),
            status=kw.pop("status", subs.SUBSCRIPTION_STATUS_ACTIVE),
            recurring_pre_tax_amount=kw.pop("amount", 1999),
            currency="EUR",
            payment_frequency_count=1,
            payment_frequency_interval=subs.TIME_INTERVAL_MONTH,
            **kw,
        )
        sub.next_billing_date.FromDatetime(NOW + timedelta(days=30))
        if sub.status == subs.SUBSCRIPTION_STATUS_ON_HOLD:
            sub.next_billing_date.FromDatetime(NOW - timedelta(days=1))
            sub.amount_due = sub.recurring_pre_tax_amount
        self.subscriptions[sub_id] = sub
        return sub_id

    def add_plan(self, product_id: str, name: str, unit_price: int, max_quantity: int = 0) -> str:
        self.plans[product_id] = subs.PlanOption(
            product_id=product_id,
            name=name,
            description=f"{name}, for teams",
            unit_price=unit_price,
            currency="EUR",
            payment_frequency_count=1,
            payment_frequency_interval=subs.TIME_INTERVAL_MONTH,
            max_quantity=max_quantity,
        )
        return product_id

    def add_addon(
        self, product_id: str, addon_id: str, name: str, unit_price: int, max_quantity: int = 0
    ) -> str:
        """Offer an add-on on a plan (several plans may offer the same one)."""
        self.plans[product_id].addons.append(
            subs.AddonOption(
                addon_id=addon_id,
                name=name,
                description=f"{name}, billed per unit",
                unit_price=unit_price,
                max_quantity=max_quantity,
            )
        )
        return addon_id

    def count(self, name: str) -> int:
        return sum(1 for n, _ in self.calls if n == name)

    # -- helpers -----------------------------------------------------------------

    async def _not_found(self, context: Any, what: str, reason: Reason) -> None:
        await abort_with_domain_error(context, NotFound(f"{what} not found", reason=reason))

    def _owned(self, item: Any, request: Any) -> bool:
        return bool(
            item.business_id == request.business_id
            and item.mode == request.mode
            and (not request.customer_id or item.customer_id == request.customer_id)
        )

    async def _sub(self, request: Any, context: Any) -> subs.Subscription:
        sub = self.subscriptions.get(request.subscription_id)
        if sub is None or not self._owned(sub, request):
            await self._not_found(context, "subscription", Reason.SUBSCRIPTION_NOT_FOUND)
        assert sub is not None
        return sub

    def _in_scope(self, item: Any, request: Any, customers: list[str]) -> bool:
        # An empty business_id with customer_ids: the unified portal's question.
        if request.business_id and item.business_id != request.business_id:
            return False
        return bool(item.mode == request.mode and (not customers or item.customer_id in customers))

    # -- subscriptions -----------------------------------------------------------

    async def GetSubscription(self, request: Any, context: Any) -> Any:
        self.calls.append(("GetSubscription", request))
        return await self._sub(request, context)

    async def ListSubscriptions(self, request: Any, context: Any) -> Any:
        self.calls.append(("ListSubscriptions", request))
        customers = [*request.customer_ids, *([request.customer_id] if request.customer_id else [])]
        found = [s for s in self.subscriptions.values() if self._in_scope(s, request, customers)]
        return subs.ListSubscriptionsResponse(subscriptions=found)

    async def CancelSubscription(self, request: Any, context: Any) -> Any:
        self.calls.append(("CancelSubscription", request))
        sub = await self._sub(request, context)
        if sub.status not in (subs.SUBSCRIPTION_STATUS_ACTIVE, subs.SUBSCRIPTION_STATUS_ON_HOLD):
            await abort_with_domain_error(
                context,
                FailedPrecondition("not cancellable", reason=Reason.SUBSCRIPTION_STATE_CONFLICT),
            )
        if request.at_period_end:
            sub.cancel_at_next_billing_date = True
        else:
            sub.status = subs.SUBSCRIPTION_STATUS_CANCELLED
            sub.cancelled_at.FromDatetime(NOW)
            sub.ClearField("next_billing_date")
        sub.cancellation_feedback = request.cancellation_feedback
        sub.cancellation_comment = request.cancellation_comment
        return sub

    async def UpdateSubscription(self, request: Any, context: Any) -> Any:
        self.calls.append(("UpdateSubscription", request))
        sub = await self._sub(request, context)
        if request.pause or request.resume:
            # The service's table: pause from active only, resume from paused only.
            wanted = (
                subs.SUBSCRIPTION_STATUS_ACTIVE
                if request.pause
                else subs.SUBSCRIPTION_STATUS_PAUSED
            )
            if sub.status != wanted:
                await abort_with_domain_error(
                    context,
                    FailedPrecondition("not allowed", reason=Reason.SUBSCRIPTION_STATE_CONFLICT),
                )
            if request.pause:
                sub.status = subs.SUBSCRIPTION_STATUS_PAUSED
                sub.paused_at.FromDatetime(NOW)
            else:
                sub.status = subs.SUBSCRIPTION_STATUS_ACTIVE
                sub.ClearField("paused_at")
        if request.HasField("cancel_at_next_billing_date"):
            sub.cancel_at_next_billing_date = request.cancel_at_next_billing_date
        return sub

    async def PreviewDues(self, request: Any, context: Any) -> Any:
        self.calls.append(("PreviewDues", request))
        sub = await self._sub(request, context)
        dues = subs.Dues(amount=sub.amount_due, currency=sub.currency)
        dues.period_start.CopyFrom(sub.next_billing_date)
        dues.period_end.FromDatetime(sub.next_billing_date.ToDatetime(UTC) + timedelta(days=30))
        dues.next_billing_date.CopyFrom(dues.period_end)
        return dues

    async def UpdatePaymentMethod(self, request: Any, context: Any) -> Any:
        self.calls.append(("UpdatePaymentMethod", request))
        sub = await self._sub(request, context)
        method = self.methods.get(request.payment_method_id)
        if method is None or method.customer_id != sub.customer_id:
            await self._not_found(context, "payment method", Reason.PAYMENT_METHOD_NOT_FOUND)
        assert method is not None
        sub.payment_method_id = method.payment_method_id
        if sub.status != subs.SUBSCRIPTION_STATUS_ON_HOLD:
            return subs.UpdatePaymentMethodResponse(
                result=subs.UpdatePaymentMethodResponse.RESULT_SWITCHED, subscription=sub
            )
        key = (sub.subscription_id, sub.next_billing_date.seconds, method.payment_method_id)
        payment = self.payments.get(self.dues_charges.get(key, ""))
        if payment is None:
            payment = self._charge(sub, method)
            self.dues_charges[key] = payment.payment_id
        outcome = subs.ChargeOutcome(
            payment_id=payment.payment_id,
            status=subs.ChargeOutcome.Status.Value(
                "STATUS_"
                + payments_pb2.PaymentStatus.Name(payment.status).removeprefix("PAYMENT_STATUS_")
            ),
            amount=payment.total_amount,
            currency=payment.currency,
            error_code=payment.error_code,
            error_message=payment.error_message,
            challenge_url=payment.challenge_url,
        )
        return subs.UpdatePaymentMethodResponse(
            result=subs.UpdatePaymentMethodResponse.RESULT_CHARGED,
            subscription=sub,
            payment=outcome,
        )

    # -- plan changes (half the period is left: each line is half its period) --------

    async def ListPlanOptions(self, request: Any, context: Any) -> Any:
        self.calls.append(("ListPlanOptions", request))
        sub = await self._sub(request, context)
        if sub.product_id not in self.plans:
            return subs.ListPlanOptionsResponse()
        current = self.plans[sub.product_id]
        options = []
        for plan in sorted(self.plans.values(), key=lambda p: p.unit_price):
            option = subs.PlanOption()
            option.CopyFrom(plan)
            option.current = plan.product_id == sub.product_id
            option.upgrade = plan.unit_price > current.unit_price
            options.append(option)
        return subs.ListPlanOptionsResponse(options=options)

    def _addons_of(self, plan: subs.PlanOption, request: Any) -> list[subs.SubscriptionAddon]:
        """The request's add-ons priced from the plan's offer; ValueError for one it refuses."""
        offered = {a.addon_id: a for a in plan.addons}
        chosen = []
        for wanted in request.addons:
            option = offered.get(wanted.addon_id)
            if option is None or wanted.quantity < 1:
                raise ValueError(wanted.addon_id)
            if option.max_quantity and wanted.quantity > option.max_quantity:
                raise ValueError(wanted.addon_id)
            chosen.append(
                subs.SubscriptionAddon(
                    addon_id=option.addon_id,
                    name=option.name,
                    quantity=wanted.quantity,
                    unit_price=option.unit_price,
                )
            )
        return chosen

    def _preview(self, sub: subs.Subscription, request: Any) -> subs.PlanChangePreview:
        plan = self.plans[request.product_id]
        addons = self._addons_of(plan, request)
        new_total = plan.unit_price * request.quantity + sum(
            a.unit_price * a.quantity for a in addons
        )
        scheduled = request.effective_at == subs.PLAN_CHANGE_EFFECTIVE_AT_NEXT_BILLING_DATE
        new = subs.Subscription()
        new.CopyFrom(sub)
        new.product_id, new.product_name = plan.product_id, plan.name
        new.quantity, new.recurring_pre_tax_amount = request.quantity, new_total
        del new.addons[:]
        new.addons.extend(addons)
        preview = subs.PlanChangePreview(currency=sub.currency, new_plan=new, scheduled=scheduled)
        if scheduled:
            preview.effective_at.CopyFrom(sub.next_billing_date)
        else:
            preview.effective_at.FromDatetime(NOW)
            # Half the period left, each line rounded half up: the old lines credited,
            # the new ones charged (the service's rule, at a fixed share).
            old_plan = sub.recurring_pre_tax_amount - sum(
                a.unit_price * a.quantity for a in sub.addons
            )
            lines = [
                self._line(
                    "subscription",
                    sub.product_id,
                    sub.product_name,
                    sub.quantity,
                    old_plan,
                    credit=True,
                )
            ]
            lines += [
                self._line(
                    "addon", a.addon_id, a.name, a.quantity, a.unit_price * a.quantity, credit=True
                )
                for a in sub.addons
            ]
            lines.append(
                self._line(
                    "subscription",
                    plan.product_id,
                    plan.name,
                    request.quantity,
                    plan.unit_price * request.quantity,
                )
            )
            lines += [
                self._line("addon", a.addon_id, a.name, a.quantity, a.unit_price * a.quantity)
                for a in addons
            ]
            preview.line_items.extend(lines)
            preview.immediate_amount = max(0, sum(line.amount for line in lines))
            new.next_billing_date.FromDatetime(NOW + timedelta(days=30))
        return preview

    def _line(
        self, kind: str, item_id: str, name: str, quantity: int, period: int, credit: bool = False
    ) -> subs.PlanChangeLine:
        half = (period + 1) // 2
        return subs.PlanChangeLine(
            type=kind,
            id=item_id,
            name=name,
            quantity=quantity,
            unit_price=period // max(quantity, 1),
            proration_factor=0.5,
            amount=-half if credit else half,
            currency="EUR",
        )

    async def _previewed(self, request: Any, context: Any) -> subs.PlanChangePreview:
        sub = await self._sub(request, context)
        try:
            return self._preview(sub, request)
        except ValueError as refused:
            await abort_with_domain_error(
                context, InvalidArgument(f"add-on {refused} refused", field="addons")
            )
            raise

    async def PreviewChangePlan(self, request: Any, context: Any) -> Any:
        self.calls.append(("PreviewChangePlan", request))
        return await self._previewed(request, context)

    def apply_change(self, sub: subs.Subscription, preview: subs.PlanChangePreview) -> None:
        if preview.scheduled:
            new = preview.new_plan
            sub.scheduled_change.CopyFrom(
                subs.ScheduledPlanChange(
                    product_id=new.product_id,
                    product_name=new.product_name,
                    quantity=new.quantity,
                    addons=[
                        subs.AddonQuantity(addon_id=a.addon_id, quantity=a.quantity)
                        for a in new.addons
                    ],
                    effective_at=preview.effective_at,
                    recurring_pre_tax_amount=new.recurring_pre_tax_amount,
                )
            )
            return
        sub.CopyFrom(preview.new_plan)
        sub.ClearField("scheduled_change")
        sub.pending_payment_id = ""

    async def ChangePlan(self, request: Any, context: Any) -> Any:
        self.calls.append(("ChangePlan", request))
        sub = await self._sub(request, context)
        if request.idempotency_key in self.plan_changes:
            return self.plan_changes[request.idempotency_key]
        preview = await self._previewed(request, context)
        reply = subs.ChangePlanResponse(applied=preview)
        if preview.immediate_amount > 0:
            method = self.methods[sub.payment_method_id]
            payment = self._charge(sub, method, amount=preview.immediate_amount, plan_change=True)
            reply.payment.CopyFrom(self._outcome(payment))
            if payment.status == payments_pb2.PAYMENT_STATUS_SUCCEEDED:
                self.apply_change(sub, preview)
            elif payment.status == payments_pb2.PAYMENT_STATUS_REQUIRES_CUSTOMER_ACTION:
                self.awaiting[payment.payment_id] = preview
        else:
            self.apply_change(sub, preview)
        reply.subscription.CopyFrom(sub)
        self.plan_changes[request.idempotency_key] = reply
        return reply

    def finish_challenge(self, payment_id: str, passed: bool) -> None:
        """The customer completed (or failed) 3-D Secure; the payment event arrives."""
        payment = self.payments[payment_id]
        sub = self.subscriptions[payment.subscription_id]
        sub.pending_payment_id = ""
        if passed:
            payment.status = payments_pb2.PAYMENT_STATUS_SUCCEEDED
            self.apply_change(sub, self.awaiting.pop(payment_id))
        else:
            payment.status = payments_pb2.PAYMENT_STATUS_FAILED
            payment.error_code = "authentication_failed"

    async def CancelScheduledChange(self, request: Any, context: Any) -> Any:
        self.calls.append(("CancelScheduledChange", request))
        sub = await self._sub(request, context)
        if not sub.HasField("scheduled_change"):
            await abort_with_domain_error(
                context,
                FailedPrecondition("nothing scheduled", reason=Reason.SUBSCRIPTION_STATE_CONFLICT),
            )
        sub.ClearField("scheduled_change")
        return sub

    def _outcome(self, payment: Any) -> subs.ChargeOutcome:
        return subs.ChargeOutcome(
            payment_id=payment.payment_id,
            status=subs.ChargeOutcome.Status.Value(
                "STATUS_"
                + payments_pb2.PaymentStatus.Name(payment.status).removeprefix("PAYMENT_STATUS_")
            ),
            amount=payment.total_amount,
            currency=payment.currency,
            error_code=payment.error_code,
            error_message=payment.error_message,
            challenge_url=payment.challenge_url,
        )

    def _charge(
        self,
        sub: subs.Subscription,
        method: payments_pb2.PaymentMethod,
        amount: int | None = None,
        plan_change: bool = False,
    ) -> Any:
        payment = payments_pb2.Payment(
            payment_id=f"pay_{uuid.uuid4().hex[:12]}",
            business_id=sub.business_id,
            mode=sub.mode,
            customer_id=sub.customer_id,
            subscription_id=sub.subscription_id,
            total_amount=sub.amount_due if amount is None else amount,
            currency=sub.currency,
            charge_type=(
                payments_pb2.CHARGE_TYPE_ON_DEMAND
                if plan_change
                else payments_pb2.CHARGE_TYPE_RENEWAL
            ),
            payment_method_id=method.payment_method_id,
            card_brand=method.brand,
            card_last_four=method.last4,
        )
        payment.created_at.FromDatetime(NOW)
        if method.last4 in DECLINING_LAST4:
            payment.status = payments_pb2.PAYMENT_STATUS_FAILED
            payment.error_code, payment.error_message = DECLINING_LAST4[method.last4]
        elif method.last4 in CHALLENGE_LAST4:
            payment.status = payments_pb2.PAYMENT_STATUS_REQUIRES_CUSTOMER_ACTION
            payment.challenge_url = f"https://pay.example/3ds/{payment.payment_id}"
            sub.pending_payment_id = payment.payment_id
        else:
            payment.status = payments_pb2.PAYMENT_STATUS_SUCCEEDED
            if not plan_change:
                self.reactivate(sub)
        self.payments[payment.payment_id] = payment
        return payment

    def reactivate(self, sub: subs.Subscription) -> None:
        sub.status = subs.SUBSCRIPTION_STATUS_ACTIVE
        sub.amount_due = 0
        sub.pending_payment_id = ""
        sub.next_billing_date.FromDatetime(
            sub.next_billing_date.ToDatetime(UTC) + timedelta(days=30)
        )

    # -- payments ----------------------------------------------------------------

    async def ListPaymentMethods(self, request: Any, context: Any) -> Any:
        self.calls.append(("ListPaymentMethods", request))
        customers = [*request.customer_ids, *([request.customer_id] if request.customer_id else [])]
        found = [m for m in self.methods.values() if self._in_scope(m, request, customers)]
        return payments_pb2.ListPaymentMethodsResponse(payment_methods=found)

    async def ListPayments(self, request: Any, context: Any) -> Any:
        self.calls.append(("ListPayments", request))
        found = [
            p
            for p in self.payments.values()
            if self._in_scope(p, request, list(request.customer_ids))
            and (not request.subscription_id or p.subscription_id == request.subscription_id)
        ]
        # Newest first, one page: the service's order and paging.
        found.sort(key=lambda p: (p.created_at.seconds, p.payment_id), reverse=True)
        size = request.page_size or 10
        found = found[request.page_number * size : (request.page_number + 1) * size]
        return payments_pb2.ListPaymentsResponse(payments=found)

    async def GetPayment(self, request: Any, context: Any) -> Any:
        self.calls.append(("GetPayment", request))
        payment = self.payments.get(request.payment_id)
        if payment is None or not self._owned(payment, request):
            await self._not_found(context, "payment", Reason.PAYMENT_NOT_FOUND)
        return payment

    async def _method(self, request: Any, context: Any) -> payments_pb2.PaymentMethod:
        method = self.methods.get(request.payment_method_id)
        if method is None or not self._owned(method, request):
            await self._not_found(context, "payment method", Reason.PAYMENT_METHOD_NOT_FOUND)
        assert method is not None
        return method

    async def SetDefaultPaymentMethod(self, request: Any, context: Any) -> Any:
        self.calls.append(("SetDefaultPaymentMethod", request))
        chosen = await self._method(request, context)
        for m in self.methods.values():
            if m.customer_id == chosen.customer_id:
                m.is_default = m.payment_method_id == chosen.payment_method_id
        return chosen

    async def DeletePaymentMethod(self, request: Any, context: Any) -> Any:
        self.calls.append(("DeletePaymentMethod", request))
        method = await self._method(request, context)
        del self.methods[method.payment_method_id]
        return payments_pb2.DeletePaymentMethodResponse()

    async def CreatePaymentSession(self, request: Any, context: Any) -> Any:
        self.calls.append(("CreatePaymentSession", request))
        session = payments_pb2.PaymentSession(
            session_id=f"ps_{uuid.uuid4().hex[:12]}",
            business_id=request.business_id,
            mode=request.mode,
            customer_id=request.customer_id,
            purpose=request.purpose,
            status=payments_pb2.PAYMENT_SESSION_STATUS_OPEN,
            return_url=request.return_url,
        )
        session.url = f"https://pay.example/session/{session.session_id}"
        self.sessions[session.session_id] = session
        return session

    def finish_session(self, session_id: str, last4: str) -> str:
        """The customer saved a card on the hosted page."""
        session = self.sessions[session_id]
        method_id = self.add_method(
            session.business_id, session.customer_id, last4, mode=session.mode
        )
        session.status = payments_pb2.PAYMENT_SESSION_STATUS_SUCCEEDED
        session.payment_method_id = method_id
        return method_id

    async def GetPaymentSession(self, request: Any, context: Any) -> Any:
        self.calls.append(("GetPaymentSession", request))
        session = self.sessions.get(request.session_id)
        if session is None or session.business_id != request.business_id:
            await self._not_found(context, "payment session", Reason.PAYMENT_SESSION_NOT_FOUND)
        return session


async def start_fake_billing() -> tuple[FakeBilling, grpc.aio.Server, int]:
    """Both fakes on one in-process server: (state, server, port)."""
    fake = FakeBilling()
    server = grpc.aio.server()
    subscriptions_pb2_grpc.add_SubscriptionsServiceServicer_to_server(fake, server)
    payments_pb2_grpc.add_PaymentsServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return fake, server, port
